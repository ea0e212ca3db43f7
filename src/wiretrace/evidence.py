"""Rewrite evidence: is an article rewritten from a story, or another report of the same event?

A rewrite (a news brief, a sentence-by-sentence paraphrase) keeps few runs of
words, so exact passages cannot decide it. What it keeps is its source's rarer
word pairs and phrases, more of them than any other story on the same event
offers. An independent report shares the event's names and, above all, the
words of the people it quotes: quoted speech belongs to the speaker, whom every
reporter quotes, so it is weaker evidence of copying and is discounted here.

The decision combines a few language-independent features of the best
candidate with a logistic model (``rewrite_model.json``, trained by
``make train-rewrite`` on the sets the team can see, see
``benchmarks/train_rewrite.py``); its probability threshold is a setting.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import numpy as np
import regex

from wiretrace.scoring import Alignment, shared_terms
from wiretrace.shingling import I64, U32, Ragged, distinct, sorted_unique

# Quotation spans within one paragraph: “…”, "…", «…», „…“, ‘…’ and British '…'
# (an opening mark after a space or a bracket, a closing one before a space or punctuation,
# so the apostrophes of "don't" or "the jury's" neither open nor close a quote).
_QUOTED = regex.compile(
    r"“[^”\n]{1,3000}”"
    r'|"[^"\n]{1,3000}"'
    r"|«[^»\n]{1,3000}»"
    r"|„[^“”\n]{1,3000}[“”]"
    r"|(?<![\w’'])[‘'](?=\w)[^\n]{1,3000}?(?<=[\w.,!?;:])[’'](?![\w’'])"
)

FEATURES = (
    "share",  # IDF-weighted share of the article's word pairs found in the story
    "margin",  # ... minus the best rival story's
    "log_ratio",  # ... log of the two's ratio
    "words",  # IDF-weighted share of the article's words found in the story
    "word_margin",
    "word_log_ratio",
    "spread",  # share of the article's 20-word stretches whose words mostly recur in the story
    "phrases",  # share of the article's distinct 4-word shingles found in the story
    "phrase_margin",
    "containment",  # share of the article inside exact passages
    "log_length",  # log(1 + article words)
    "figures",  # share of the article's figures found in the story
)
SPREAD_CHUNK = 20
RIVALS = 8  # candidates, by pair share, whose words and phrases are compared
_DIGITS = regex.compile(r"\d+")


def quoted_tokens(text: str, starts: I64) -> np.ndarray:
    """Which tokens (by their start offsets into ``text``) lie inside quotation marks."""
    inside = np.zeros(starts.size, dtype=bool)
    if starts.size == 0:
        return inside
    for m in _QUOTED.finditer(text):
        lo, hi = np.searchsorted(starts, [m.start(), m.end()])
        inside[lo:hi] = True
    return inside


def numeric_tokens(text: str, starts: I64, ends: I64) -> np.ndarray:
    """Which tokens hold a digit (figures: sums, ages, scores, dates), in any script's digits."""
    out = np.zeros(starts.size, dtype=bool)
    runs = [(m.start(), m.end()) for m in _DIGITS.finditer(text)]
    if starts.size == 0 or not runs:
        return out
    lo, hi = np.array(runs, dtype=np.int64).T
    at = np.searchsorted(ends, lo, side="right")  # the first token ending after the run starts
    ok = at < starts.size
    at, hi = at[ok], hi[ok]
    out[at[starts[at] < hi]] = True
    return out


@dataclass(frozen=True, slots=True)
class RewriteModel:
    """A logistic combination of FEATURES; ``probability`` of "rewritten from this story"."""

    intercept: float
    weights: tuple[float, ...]
    means: tuple[float, ...]
    scales: tuple[float, ...]

    def probability(self, features: np.ndarray) -> np.ndarray:
        """Rows of ``features`` (in FEATURES order) -> probabilities."""
        z = (np.asarray(features, dtype=np.float64) - np.array(self.means)) / np.array(self.scales)
        logit = z @ np.array(self.weights) + self.intercept
        out: np.ndarray = 1.0 / (1.0 + np.exp(-logit))
        return out

    def as_json(self) -> dict[str, Any]:
        return {
            "features": list(FEATURES),
            "intercept": self.intercept,
            "weights": list(self.weights),
            "means": list(self.means),
            "scales": list(self.scales),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RewriteModel:
        if tuple(data["features"]) != FEATURES:
            raise ValueError(f"rewrite model features {data['features']} differ from this version's {list(FEATURES)}")
        return cls(
            intercept=float(data["intercept"]),
            weights=tuple(float(w) for w in data["weights"]),
            means=tuple(float(w) for w in data["means"]),
            scales=tuple(float(w) for w in data["scales"]),
        )


@cache
def builtin_model() -> RewriteModel:
    """The model shipped with the package (``rewrite_model.json``)."""
    text = resources.files("wiretrace").joinpath("rewrite_model.json").read_text(encoding="utf-8")
    return RewriteModel.from_json(json.loads(text))


def load_model(path: str) -> RewriteModel:
    """``path`` to a JSON model written by ``benchmarks/train_rewrite.py``, or "" for the shipped one."""
    if not path:
        return builtin_model()
    with open(path, encoding="utf-8") as f:
        return RewriteModel.from_json(json.load(f))


@dataclass(frozen=True, slots=True)
class ArticleTerms:
    """An article's terms as verification weighs them (quoted speech already discounted)."""

    shingles: U32
    bigrams: U32  # one per token but the last
    pair_weights: np.ndarray  # IDF weight of each bigram
    tokens: U32
    word_weights: np.ndarray  # IDF weight of each token's word
    figures: U32  # tokens holding a digit
    quoted: np.ndarray  # bool per token: inside quotation marks


def _share(terms: U32, weights: np.ndarray, stories: Ragged) -> np.ndarray:
    """Each story's share of the article's distinct terms, by weight."""
    if terms.size == 0 or len(stories) == 0:
        return np.zeros(len(stories))
    total = float(weights[distinct(terms)[1]].sum())
    return shared_terms(terms, weights, stories)[1] / total if total > 0 else np.zeros(len(stories))


def _spread(art: ArticleTerms, story: U32, chunk: int = SPREAD_CHUNK) -> float:
    """Share of the article's stretches of ``chunk`` words that mostly (by weight) recur in the
    story (its tokens, sorted).

    A rewrite has a counterpart for most of its sentences; a report of the same event meets
    the story only where the names and the quotes are.
    """
    n = art.tokens.size
    if n == 0:
        return 0.0
    present = _present(art.tokens, story)
    starts = np.arange(0, n, chunk)
    got = np.add.reduceat(art.word_weights * present, starts)
    of = np.add.reduceat(art.word_weights, starts)
    return float(np.mean(got >= 0.5 * np.maximum(of, 1e-9)))


def _present(values: U32, sorted_story: U32) -> np.ndarray:
    """Which values occur in the (sorted) story: ``np.isin`` without its sort of both."""
    if sorted_story.size == 0:
        return np.zeros(values.size, dtype=bool)
    at = np.minimum(np.searchsorted(sorted_story, values), sorted_story.size - 1)
    found: np.ndarray = sorted_story[at] == values
    return found


def _ratio(mine: float, rival: float) -> float:
    return math.log((mine + 0.01) / (rival + 0.01))


def feature_row(
    art: ArticleTerms,
    tokens: Ragged,
    story_shingles: Ragged,
    best: int,
    shares: np.ndarray,
    rival: float,
    alignment: Alignment | None,
) -> np.ndarray:
    """FEATURES of the best candidate (``best``, by pair share): its evidence, and how far it
    stands above its best rival's.

    Shares depend on the size of the index (IDF is flatter over 600 stories than over a
    million), so the rivals' evidence, measured the same way, is the yardstick.
    """
    share = float(shares[best])

    # The rivals: the next stories by pair share (those further down share less of everything).
    top = np.argsort(-shares, kind="stable")[:RIVALS]
    top = np.concatenate(([best], top[top != best]))

    def over_rivals(values: np.ndarray) -> tuple[float, float]:
        return float(values[0]), float(values[1:].max()) if values.size > 1 else 0.0

    words, word_rival = over_rivals(_share(art.tokens, art.word_weights, tokens.take(top)))
    phrases, phrase_rival = over_rivals(_share(art.shingles, np.ones(art.shingles.size), story_shingles.take(top)))
    story = np.sort(tokens[best])
    figures = sorted_unique(art.figures)
    found = int(_present(figures, story).sum())
    row = {
        "share": share,
        "margin": share - rival,
        "log_ratio": _ratio(share, rival),
        "words": words,
        "word_margin": words - word_rival,
        "word_log_ratio": _ratio(words, word_rival),
        "spread": _spread(art, story),
        "phrases": phrases,
        "phrase_margin": phrases - phrase_rival,
        "containment": alignment.containment if alignment is not None else 0.0,
        "log_length": math.log1p(art.tokens.size),
        "figures": (found + 0.5) / (figures.size + 1.0),  # no figures at all: no evidence either way
    }
    return np.array([row[f] for f in FEATURES], dtype=np.float64)
