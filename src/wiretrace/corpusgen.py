"""Synthetic news corpora with derived copies of known provenance, for benchmarks and tests.

Why generate: the real sets in ``../shared`` are small (20k stories) and research-only, while
the questions benchmarks ask ("how fast at 1M stories?") need archives of any size, the same
every run. So a word-level Markov model is trained on real wire text when a path is given
(Reuters-21578 / C50 JSONL), or on a built-in template generator otherwise, and stories are
sampled from it:

* deterministic by seed, and by *block*: story ``i`` is always the same text, generated with
  the rest of its block of ``block_size`` stories from ``rng([seed, block])`` — streaming, so
  1M stories never sit in memory, and any story can be regenerated for a query;
* distinct: order-2 sampling mixed with order-1 jumps (so the chain never copies long runs of
  its training text) and numbers re-drawn per story, so generated stories share stock phrases
  the way wire copy does, not whole sentences;
* generation is vectorised across a block (one numpy step per word position for all stories).

Queries are derived from indexed stories the ways outlets reuse wire copy (verbatim with
chrome, trimmed lead, excerpt inside local text, merged, edited, OCR-noisy) plus negatives
(unrelated story, local prose), each with ``sources`` [{story_id, fraction, accept}] in the
format of ``../shared/eval/synthetic-dev`` so ``wiretrace.evaluation.score`` reads them.

CLI: ``python -m wiretrace.corpusgen --stories 1000000 --queries 2000 --out-dir D [--source P]``.
"""

from __future__ import annotations

import argparse
import gzip
import html
import itertools
import json
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import IO, Any

import numpy as np
import numpy.typing as npt

BOS, EOS = 0, 1
_EOS_MARK = "\x1e"
_SENT_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[\"'(A-Z])")
_NUMERIC = re.compile(r"^\d[\d,.]*$")
_MAX_SENTENCE_WORDS = 55

KINDS_DERIVED = ("verbatim", "trimmed", "excerpt", "merged", "edited", "noisy")
KINDS_ORIGINAL = ("unrelated", "local")
KINDS = KINDS_DERIVED + KINDS_ORIGINAL
# The kinds that tell index settings apart (issue 15): copy that keeps few long runs of words, and
# negatives that look like positives. ``noisy@R`` is OCR noise on a share R of the characters.
NOISE_RATES = (0.02, 0.05, 0.08, 0.12)
KINDS_HARD_DERIVED = ("short_excerpt", "brief", *(f"noisy@{r:g}" for r in NOISE_RATES))
KINDS_HARD_ORIGINAL = ("sibling",)
KINDS_HARD = KINDS_HARD_DERIVED + KINDS_HARD_ORIGINAL
DEFAULT_NOISE_RATE = 0.03

_CITIES = (
    "LONDON",
    "NEW YORK",
    "WASHINGTON",
    "TOKYO",
    "PARIS",
    "BEIRUT",
    "FRANKFURT",
    "SINGAPORE",
    "NAIROBI",
    "SYDNEY",
    "MOSCOW",
    "BRUSSELS",
    "HONG KONG",
    "MEXICO CITY",
    "JOHANNESBURG",
    "SEOUL",
    "MUMBAI",
    "CAIRO",
)
_MONTHS = ("Jan", "Feb", "March", "April", "May", "June", "July", "Aug", "Sept", "Oct", "Nov", "Dec")
_OUTLETS = ("The Daily Ledger", "Morning Courier", "Valley Times", "The Harbour Post", "Metro Herald")
_SHORTHAND = {"pct": "percent", "mln": "million", "bln": "billion", "U.S.": "United States", "vs": "versus"}
_SYNONYMS = {
    "said": "stated",
    "rose": "climbed",
    "fell": "dropped",
    "company": "firm",
    "year": "12 months",
    "expected": "forecast",
    "increase": "rise",
    "government": "administration",
    "week": "seven days",
    "sales": "revenues",
    "shares": "stock",
    "told": "informed",
    "also": "additionally",
    "but": "however",
}

# --- the Markov model --------------------------------------------------------


def _sentences(text: str) -> list[list[str]]:
    """Whitespace words of each sentence of a wire body (line wraps, entities and sign-offs undone)."""
    text = html.unescape(" ".join(text.split()))
    text = re.sub(r"\s*REUTERS?\s*$", "", text)
    out = []
    for s in _SENT_SPLIT.split(text):
        words = s.split()
        if 4 <= len(words) <= 80:
            out.append(words)
    return out


def _template_sentences(seed: int, n: int) -> Iterator[list[str]]:
    """The built-in fallback: wire-like sentences from word lists and made-up proper names."""
    rng = np.random.default_rng(seed)
    syll = [
        "ka",
        "lo",
        "mi",
        "ra",
        "ten",
        "vo",
        "sel",
        "an",
        "dor",
        "is",
        "ba",
        "ru",
        "pe",
        "lin",
        "mar",
        "go",
        "tha",
        "ven",
        "cor",
        "el",
    ]

    def names(k: int, parts: int) -> list[str]:
        return ["".join(rng.choice(syll, parts)).capitalize() for _ in range(k)]

    people = [f"{a} {b}" for a, b in zip(names(800, 2), names(800, 3), strict=True)]
    orgs = [
        f"{a} {s}"
        for a, s in zip(
            names(600, 3),
            rng.choice(["Corp", "Inc", "Group", "Bank", "Holdings", "Ltd", "Ministry", "Council"], 600),
            strict=True,
        )
    ]
    places = names(300, 3)
    metrics = [
        "profit",
        "revenue",
        "output",
        "exports",
        "imports",
        "sales",
        "earnings",
        "production",
        "inflation",
        "spending",
        "demand",
    ]
    moves = ["rose", "fell", "climbed", "dropped", "increased", "decreased", "jumped", "slipped", "eased", "surged"]
    periods = ["the first quarter", "the second quarter", "last year", "the month", "the week", "the half", "1987"]
    verbs = [
        "said",
        "announced",
        "reported",
        "expected",
        "warned",
        "confirmed",
        "estimated",
        "forecast",
        "added",
        "noted",
    ]
    reasons = [
        "citing weaker demand",
        "after a strike at its main plant",
        "helped by lower costs",
        "as prices recovered",
        "because of the strong dollar",
        "amid talks with creditors",
        "following the merger",
        "due to higher interest rates",
        "on the back of strong exports",
    ]
    templates = [
        "{org} {verb} its {metric} {move} {num} pct to {num} mln dlrs in {period}, {reason}.",
        "{person}, a spokesman for {org}, {verb} the {metric} of {place} would reach {num} mln tonnes.",
        "Officials in {place} {verb} on {day} that {metric} {move} {num} pct from {period}.",
        "{org} {verb} it would buy a {num} pct stake in {org2} for {num} mln dlrs.",
        "The {metric} figures, {verb} {person}, showed a gap of {num} bln dlrs with {place}.",
        '"We expect {metric} to stay firm," {person} {verb}, adding that {org} had no plans to cut jobs.',
        "Analysts {verb} {org} shares {move} {num} cents to {num} dlrs {reason}.",
        "{place} and {place2} agreed to review {metric} quotas by {period}, {person} {verb}.",
    ]
    days = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]
    for _ in range(n):
        t = templates[int(rng.integers(len(templates)))]

        def num() -> str:
            whole = int(rng.integers(1, 1000))
            return str(whole) if rng.random() < 0.6 else f"{whole % 100}.{rng.integers(10)}"

        s = t.format(
            org=orgs[rng.integers(600)],
            org2=orgs[rng.integers(600)],
            person=people[rng.integers(800)],
            place=places[rng.integers(300)],
            place2=places[rng.integers(300)],
            verb=verbs[rng.integers(10)],
            metric=metrics[rng.integers(len(metrics))],
            move=moves[rng.integers(10)],
            num=num(),
            period=periods[rng.integers(len(periods))],
            reason=reasons[rng.integers(len(reasons))],
            day=days[rng.integers(5)],
        )
        yield s.split()


@dataclass
class MarkovModel:
    """Order-2 word transitions in CSR form (plus order-1 ones for mixing), ready for vector sampling."""

    vocab: npt.NDArray[np.object_]  # id -> word
    state_keys: npt.NDArray[np.int64]  # sorted first*V + second of each state
    state_second: npt.NDArray[np.int64]
    off2: npt.NDArray[np.int64]
    succ2: npt.NDArray[np.int64]
    off1: npt.NDArray[np.int64]  # by word
    succ1: npt.NDArray[np.int64]
    numeric: npt.NDArray[np.bool_]  # word is a bare number (re-drawn per story)
    number_pool: npt.NDArray[np.int64]  # ids of fresh numbers to draw from
    source: str = "fallback"
    trained_words: int = 0

    @classmethod
    def train(cls, sentences: Iterable[list[str]], source: str, seed: int = 0) -> MarkovModel:
        ids: dict[str, int] = {"<s>": BOS, "</s>": EOS}
        seqs: list[int] = []
        for words in sentences:
            seqs.extend((BOS, BOS))
            seqs.extend(ids.setdefault(w, len(ids)) for w in words)
            seqs.append(EOS)
        rng = np.random.default_rng(seed)
        pool_words = [str(int(x)) for x in rng.integers(1, 10_000, 3000)] + [
            f"{a}.{b}" for a, b in zip(rng.integers(0, 100, 3000), rng.integers(0, 100, 3000), strict=True)
        ]
        pool_ids = np.array([ids.setdefault(w, len(ids)) for w in pool_words], dtype=np.int64)
        v = len(ids)
        seq = np.array(seqs, dtype=np.int64)
        a, b, c = seq[:-2], seq[1:-1], seq[2:]
        keep = b != EOS  # a trigram never starts inside the padding of the next sentence
        keep &= a != EOS
        a, b, c = a[keep], b[keep], c[keep]
        keys = a * v + b
        state_keys, state_of = np.unique(keys, return_inverse=True)
        order = np.argsort(state_of, kind="stable")
        succ2 = c[order]
        off2 = np.zeros(state_keys.size + 1, dtype=np.int64)
        np.cumsum(np.bincount(state_of, minlength=state_keys.size), out=off2[1:])
        order1 = np.argsort(b, kind="stable")
        succ1 = c[order1]
        off1 = np.zeros(v + 1, dtype=np.int64)
        np.cumsum(np.bincount(b, minlength=v), out=off1[1:])
        vocab = np.empty(v, dtype=object)
        for w, i in ids.items():
            vocab[i] = w
        vocab[EOS] = _EOS_MARK
        numeric = np.array([bool(_NUMERIC.match(w)) for w in vocab], dtype=bool)
        return cls(
            vocab, state_keys, state_keys % v, off2, succ2, off1, succ1, numeric, pool_ids, source, int(keep.sum())
        )

    @classmethod
    def from_path(cls, path: Path, max_words: int = 1_500_000) -> MarkovModel:
        """Train on the bodies of a JSONL(.gz) of stories (fields ``body`` or ``text``)."""
        opener = gzip.open if path.suffix == ".gz" else open

        def sents() -> Iterator[list[str]]:
            n = 0
            with opener(path, "rt", encoding="utf-8") as fh:
                for line in fh:
                    obj = json.loads(line)
                    for s in _sentences(str(obj.get("body") or obj.get("text") or "")):
                        yield s
                        n += len(s)
                    if n >= max_words:
                        return

        return cls.train(sents(), source=str(path))

    @classmethod
    def fallback(cls, seed: int = 0, n_sentences: int = 60_000) -> MarkovModel:
        return cls.train(_template_sentences(seed, n_sentences), source="fallback")

    @property
    def v(self) -> int:
        return int(self.vocab.shape[0])

    def sample(self, rng: np.random.Generator, targets: npt.NDArray[np.int64], mix: float = 0.35) -> list[list[str]]:
        """One text per target length (in words), as a list of sentences each."""
        n = int(targets.shape[0])
        t_max = int(targets.max()) + 2 * _MAX_SENTENCE_WORDS + 10
        out = np.full((n, t_max), -1, dtype=np.int64)
        state = np.zeros(n, dtype=np.int64)  # (BOS, BOS) is key 0, state 0
        words = np.zeros(n, dtype=np.int64)
        sent_len = np.zeros(n, dtype=np.int64)
        done = np.zeros(n, dtype=bool)
        for t in range(t_max):
            live = ~done
            if not live.any():
                break
            u = rng.random(n)
            second = self.state_second[state]
            lo2, hi2 = self.off2[state], self.off2[state + 1]
            w = self.succ2[lo2 + (u * (hi2 - lo2)).astype(np.int64)]
            jump = (rng.random(n) < mix) & (second != BOS)
            if jump.any():
                lo1, hi1 = self.off1[second], self.off1[second + 1]
                w1 = self.succ1[lo1 + (u * (hi1 - lo1)).astype(np.int64)]
                w = np.where(jump, w1, w)
            w = np.where(sent_len >= _MAX_SENTENCE_WORDS, EOS, w)
            eos = w == EOS
            out[live, t] = w[live]
            words += live & ~eos
            sent_len = np.where(eos, 0, sent_len + 1)
            done |= eos & (words >= targets)
            nxt = np.searchsorted(self.state_keys, second * self.v + w)
            state = np.where(eos | done, 0, np.minimum(nxt, self.state_keys.size - 1))
        num = self.numeric[np.maximum(out, 0)] & (out >= 0)
        out[num] = self.number_pool[rng.integers(0, self.number_pool.size, int(num.sum()))]
        texts: list[list[str]] = []
        for row in out:
            text = " ".join(self.vocab[row[row >= 0]])
            sents = []
            for s in text.split(_EOS_MARK):
                s = s.strip()
                if len(s) > 1:
                    sents.append(s if s[-1] in ".!?\"'" else s + ".")
            texts.append(sents)
        return texts


@lru_cache(maxsize=4)
def load_model(source: str | None) -> MarkovModel:
    """The model for a text path, or the built-in fallback when none is given or it is absent."""
    if source:
        p = Path(source)
        if p.exists():
            return MarkovModel.from_path(p)
    return MarkovModel.fallback()


# --- stories -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GenStory:
    story_id: str
    headline: str
    dateline: str
    paragraphs: tuple[str, ...]
    resend_of: str | None = None

    @property
    def body(self) -> str:
        return self.dateline + "\n\n".join(self.paragraphs)

    def as_json(self) -> dict[str, Any]:
        return {"story_id": self.story_id, "headline": self.headline, "body": self.body}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> GenStory:
        """A story of a JSONL wire file (``story_id``, ``body``, ``headline``), paragraphs split at blank
        lines; its ``body`` is the file's body, so offsets into it hold for the stored story."""
        body = str(obj["body"])
        return cls(str(obj["story_id"]), str(obj.get("headline") or ""), "", tuple(body.split("\n\n")))


def _paragraphs(rng: np.random.Generator, sentences: list[str]) -> tuple[str, ...]:
    paras: list[str] = []
    i = 0
    while i < len(sentences):
        k = 1 + int(rng.integers(0, 3))
        paras.append(" ".join(sentences[i : i + k]))
        i += k
    return tuple(paras)


def _headline(sentence: str) -> str:
    words = re.sub(r"[^\w\s'-]", "", sentence).split()[:8]
    return " ".join(w.capitalize() if w.islower() else w for w in words)


@dataclass
class CorpusGenerator:
    """Deterministic stories (by index) and derived queries over the first ``n`` of them."""

    seed: int = 0
    source: str | None = None
    block_size: int = 1000
    mean_words: int = 600
    resend_rate: float = 0.01
    prefix: str = "g"
    _model: MarkovModel | None = field(default=None, repr=False)
    _cache: dict[int, tuple[GenStory, ...]] = field(default_factory=dict, repr=False)

    @property
    def model(self) -> MarkovModel:
        if self._model is None:
            self._model = load_model(self.source)
        return self._model

    def _rng(self, *path: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, *path])

    def story_id(self, i: int) -> str:
        return f"{self.prefix}{i:08d}"

    def _make(self, rng: np.random.Generator, ids: list[str], datelines: bool = True) -> list[GenStory]:
        n = len(ids)
        targets = np.clip(rng.normal(self.mean_words, self.mean_words * 0.12, n), 60, None).astype(np.int64)
        texts = self.model.sample(rng, targets)
        out: list[GenStory] = []
        for sid, sents in zip(ids, texts, strict=True):
            dl = ""
            if datelines:
                city = _CITIES[int(rng.integers(len(_CITIES)))]
                dl = f"{city}, {_MONTHS[int(rng.integers(12))]} {int(rng.integers(1, 29))} (Reuters) - "
            out.append(GenStory(sid, _headline(sents[0]) if sents else sid, dl, _paragraphs(rng, sents)))
        return out

    def block(self, b: int) -> list[GenStory]:
        """Stories ``b*block_size .. (b+1)*block_size - 1``; a few are re-sends of earlier ones."""
        return list(self._block(b))

    def _block(self, b: int) -> tuple[GenStory, ...]:
        """A block, from a small cache: queries and ``story(i)`` re-read the blocks just streamed."""
        hit = self._cache.get(b)
        if hit is None:
            hit = self._cache[b] = self._generate_block(b)
            while len(self._cache) > 8:
                self._cache.pop(next(iter(self._cache)))
        return hit

    def _generate_block(self, b: int) -> tuple[GenStory, ...]:
        rng = self._rng(0, b)
        first = b * self.block_size
        stories = self._make(rng, [self.story_id(first + j) for j in range(self.block_size)])
        resend = np.flatnonzero(rng.random(self.block_size) < self.resend_rate)
        for j in resend.tolist():
            if j == 0:
                continue
            src = stories[int(rng.integers(0, j))]
            if src.resend_of is not None:
                continue
            stories[j] = GenStory(
                stories[j].story_id, "REFILE-" + src.headline, src.dateline, src.paragraphs, resend_of=src.story_id
            )
        return tuple(stories)

    def story(self, i: int) -> GenStory:
        return self._block(i // self.block_size)[i % self.block_size]

    def stories(self, n: int, start: int = 0) -> Iterator[GenStory]:
        """Stories ``start .. n-1`` in order, one block in memory at a time."""
        i = start
        while i < n:
            b = i // self.block_size
            blk = self._block(b)
            j = i - b * self.block_size
            take = min(self.block_size - j, n - i)
            yield from blk[j : j + take]
            i += take

    def _shadow(self, key: int, count: int, datelines: bool) -> list[GenStory]:
        """Texts from the same model that are never indexed (negatives, local prose)."""
        return self._make(self._rng(1, key), [f"local-{key}-{j}" for j in range(count)], datelines)

    # --- queries ---------------------------------------------------------

    def queries(
        self, n_stories: int, n_queries: int, kinds: tuple[str, ...] = KINDS, per_block: int = 16
    ) -> Iterator[dict[str, Any]]:
        """``n_queries`` derived articles (kinds in turn) whose sources lie in stories ``0 .. n_stories-1``.

        Sources are drawn ``per_block`` at a time from one block so that a query set over 1M stories
        regenerates only a few blocks.
        """
        n_blocks = max(1, -(-n_stories // self.block_size))
        rng = self._rng(2, n_stories)
        made = 0
        group = 0
        while made < n_queries:
            b = int(rng.integers(n_blocks))
            hi = min(self.block_size, n_stories - b * self.block_size)
            blk = self._block(b)[:hi]
            groups: dict[str, list[str]] = {}
            for s in blk:
                groups.setdefault(s.resend_of or s.story_id, []).append(s.story_id)
            shadow = self._shadow(n_stories * 1000 + group, per_block, datelines=True)
            for j in range(min(per_block, n_queries - made)):
                kind = kinds[made % len(kinds)]
                q = self._derive(kind, rng, blk, groups, shadow[j], shadow[(j + 1) % per_block])
                q["query_id"] = f"q-{kind}-{made}"
                yield q
                made += 1
            group += 1

    def queries_from(
        self, stories: Sequence[GenStory], n_queries: int, kinds: tuple[str, ...], per_group: int = 16, key: int = 0
    ) -> Iterator[dict[str, Any]]:
        """``n_queries`` articles (kinds in turn) derived from given stories, e.g. a real wire set
        (``GenStory.from_json``), with local prose and negatives from the model. Deterministic by
        seed, ``key`` and the stories; every story is its own only ``accept`` id."""
        rng = self._rng(3, key, len(stories))
        same: dict[str, list[str]] = {}  # identical bodies: a re-sent story is as good a source
        for st in stories:
            same.setdefault(st.body, []).append(st.story_id)
        groups = {ids[0]: ids for ids in same.values() if len(ids) > 1}
        first = {i: ids[0] for ids in groups.values() for i in ids}
        made = 0
        group = 0
        while made < n_queries:
            pool = tuple(
                replace(st, resend_of=first.get(st.story_id))
                for st in (stories[int(i)] for i in rng.choice(len(stories), size=min(64, len(stories)), replace=False))
            )
            shadow = self._make(self._rng(4, key, group), [f"local-x{key}-{group}-{j}" for j in range(per_group)])
            for j in range(min(per_group, n_queries - made)):
                kind = kinds[made % len(kinds)]
                q = self._derive(kind, rng, pool, groups, shadow[j], shadow[(j + 1) % per_group])
                q["query_id"] = f"q{key}-{kind}-{made}"
                yield q
                made += 1
            group += 1

    def _derive(
        self,
        kind: str,
        rng: np.random.Generator,
        blk: tuple[GenStory, ...],
        groups: dict[str, list[str]],
        other: GenStory,
        other2: GenStory,
    ) -> dict[str, Any]:
        picks = [blk[int(i)] for i in rng.choice(len(blk), size=min(3, len(blk)), replace=False)]
        s = picks[0]

        def accept(st: GenStory) -> list[str]:
            return groups.get(st.resend_of or st.story_id, [st.story_id])

        def wc(t: str) -> int:
            return len(t.split())

        parts: list[tuple[str, GenStory | None]] = []  # (text, source story or None)
        # Passage truth for parts that are not a plain copy of their story's text: part index ->
        # [(part start, part end, story body start, story body end)] (plain copies are located).
        spans: dict[int, list[tuple[int, int, int, int]]] = {}
        headline = s.headline
        extra: dict[str, Any] = {}
        if kind == "verbatim":
            parts = [(_OUTLETS[int(rng.integers(len(_OUTLETS)))], None), (_curly(s.body), s)]
            parts.append(("Copyright 2025 Syndicated content. All rights reserved.", None))
        elif kind == "trimmed":
            k = max(1, int(len(s.paragraphs) * rng.uniform(0.25, 0.55)))
            parts = [(s.dateline + "\n\n".join(s.paragraphs[:k]), s)]
        elif kind == "excerpt":
            n = len(s.paragraphs)
            k = max(1, min(n, int(rng.integers(2, 4))))
            a = int(rng.integers(0, max(1, n - k)))
            parts = [
                ("\n\n".join(other.paragraphs[:3]), None),
                ("\n\n".join(s.paragraphs[a : a + k]), s),
                ("\n\n".join(other.paragraphs[3:5]), None),
            ]
            headline = other.headline
        elif kind == "merged":
            m = 2 + int(rng.integers(0, 2))
            for st in picks[:m]:
                k = 2 + int(rng.integers(0, 3))
                a = int(rng.integers(0, max(1, len(st.paragraphs) - k)))
                parts.append(("\n\n".join(st.paragraphs[a : a + k]), st))
        elif kind == "edited":
            text, spans[0] = _edited_passages(rng, s.paragraphs, len(s.dateline))
            parts = [(text, s)]
        elif (rate := noise_rate(kind)) is not None:
            text, moved = ocr_noise_mapped(rng, s.body, rate)
            spans[0] = [(moved[len(s.dateline)], moved[len(s.body)], len(s.dateline), len(s.body))]
            parts = [(text, s)]
        elif kind in _HARD:
            pieces, headline, s = _HARD[kind](rng, picks, other, other2)
            parts = [(t, s if copied else None) for t, copied in pieces]
            if kind in KINDS_HARD_ORIGINAL:
                extra["same_subject_as"] = s.story_id
        elif kind == "unrelated":
            parts = [(other.body, None)]
            headline = other.headline
        elif kind == "local":
            parts = [("\n\n".join(other.paragraphs[:4] + other2.paragraphs[:3]), None)]
            headline = other.headline
        else:
            raise ValueError(f"unknown kind {kind!r}")
        text = "\n\n".join(t for t, _ in parts if t)
        total = max(1, wc(text))
        by_story: dict[str, tuple[GenStory, int]] = {}
        for t, part in parts:
            if part is not None:
                prev = by_story.get(part.story_id, (part, 0))[1]
                by_story[part.story_id] = (part, prev + wc(t))
        ranked = sorted(by_story.items(), key=lambda item: -item[1][1])
        sources = [
            {"story_id": sid, "fraction": round(min(1.0, w / total), 3), "accept": accept(st)}
            for sid, (st, w) in ranked
        ]
        return {
            "kind": kind,
            "headline": headline,
            "text": text,
            "derived": bool(sources),
            "sources": sources,
            "passages": _passage_truth(text, parts, spans),
            **extra,
        }


def _word_bounds(text: str, start: int, end: int) -> tuple[int, int]:
    """[start, end) narrowed to its first and last letters or digits (empty when it has none)."""
    while start < end and not text[start].isalnum():
        start += 1
    while end > start and not text[end - 1].isalnum():
        end -= 1
    return start, end


def _passage_truth(
    text: str, parts: list[tuple[str, GenStory | None]], spans: dict[int, list[tuple[int, int, int, int]]]
) -> list[dict[str, Any]]:
    """Where each reused passage sits in the query text and in its story's body (code points).

    A passage is a run of the story's paragraphs copied in order: its span starts at its first
    word and ends at its last (surrounding punctuation and the story's dateline are not part of
    it: the dateline is the story's heading, not its prose). Edits inside it (a changed word, a
    dropped sentence, OCR noise) leave it one passage.
    """
    out: list[dict[str, Any]] = []
    at = 0
    for i, (t, st) in enumerate(parts):
        if not t:
            continue
        if st is not None:
            located = spans.get(i)
            if located is None:
                body = st.body
                pos = body.find(t)
                if pos < 0:
                    pos = _curly(body).find(t)
                located = [] if pos < 0 else [(0, len(t), pos, pos + len(t))]
            for a0, a1, s0, s1 in located:
                cut = max(0, len(st.dateline) - s0)  # a copy that starts with the dateline
                a0, s0 = a0 + cut, s0 + cut
                a0, a1 = _word_bounds(text, at + a0, at + a1)
                s0, s1 = _word_bounds(st.body, s0, s1)
                if a1 > a0 and s1 > s0:
                    out.append(
                        {
                            "story_id": st.story_id,
                            "article_start": a0,
                            "article_end": a1,
                            "story_start": s0,
                            "story_end": s1,
                        }
                    )
        at += len(t) + 2  # parts are joined with "\n\n"
    return out


def _curly(text: str) -> str:
    out, open_q = [], True
    for ch in text:
        if ch == '"':
            out.append("\u201c" if open_q else "\u201d")
            open_q = not open_q
        else:
            out.append("\u2019" if ch == "'" else ch)
    return "".join(out)


def edited(rng: np.random.Generator, paragraphs: tuple[str, ...] | list[str]) -> str:
    """A copy editor's version: two paragraphs swapped and one dropped (past the lead, when there are
    more than three), wire shorthand expanded, synonyms swapped in, a sentence dropped now and then."""
    return _edited_passages(rng, paragraphs)[0]


def _edited_passages(
    rng: np.random.Generator, paragraphs: tuple[str, ...] | list[str], body_start: int = 0
) -> tuple[str, list[tuple[int, int, int, int]]]:
    """``edited``, and its passages: runs of paragraphs still in the story's order, as (text
    start, text end, body start, body end), the paragraphs starting at `body_start` of the body,
    joined with blank lines."""
    order = list(range(len(paragraphs)))
    if len(order) > 3:
        i, j = 1 + int(rng.integers(len(order) - 2)), 1 + int(rng.integers(len(order) - 2))
        order[i], order[j] = order[j], order[i]
        del order[int(rng.integers(1, len(order)))]
    where = np.cumsum([body_start] + [len(p) + 2 for p in paragraphs]).tolist()
    out: list[str] = []
    runs: list[tuple[int, int, int, int]] = []
    at = 0
    prev = -2
    for i in order:
        text, lo, hi = _edit_tracked(rng, paragraphs[i])
        base = int(where[i])
        if i == prev + 1:  # the next paragraph of the story: the passage goes on
            a0, _, s0, _ = runs[-1]
            runs[-1] = (a0, at + len(text), s0, base + hi)
        else:
            runs.append((at, at + len(text), base + lo, base + hi))
        prev = i
        out.append(text)
        at += len(text) + 2
    return "\n\n".join(out), runs


def _edit(rng: np.random.Generator, para: str, synonym_rate: float = 0.5, drop_rate: float = 0.3) -> str:
    """Expand wire shorthand, swap in synonyms, drop a sentence now and then."""
    return _edit_tracked(rng, para, synonym_rate, drop_rate)[0]


def _edit_tracked(
    rng: np.random.Generator, para: str, synonym_rate: float = 0.5, drop_rate: float = 0.3
) -> tuple[str, int, int]:
    """``_edit``, and where in `para` the kept text starts and ends (a dropped first or last
    sentence moves them)."""
    bounds: list[tuple[int, int]] = []
    start = 0
    for m in _SENT_SPLIT.finditer(para):
        bounds.append((start, m.start()))
        start = m.end()
    bounds.append((start, len(para)))
    sents = [para[a:b] for a, b in bounds]
    if len(sents) > 1 and rng.random() < drop_rate:
        drop = int(rng.integers(len(sents)))
        del sents[drop]
        del bounds[drop]
    words = " ".join(sents).split()
    for i, w in enumerate(words):
        core = w.rstrip(".,;:")
        tail = w[len(core) :]
        rep = _SHORTHAND.get(core) or (_SYNONYMS.get(core) if rng.random() < synonym_rate else None)
        if rep:
            words[i] = rep + tail
    return " ".join(words), bounds[0][0], bounds[-1][1]


_OCR = {"m": "rn", "l": "1", "o": "0", "e": "c", "i": "l", "S": "5", "B": "8", "a": "o"}


def noise_rate(kind: str) -> float | None:
    """The OCR noise of a ``noisy`` (3%) or ``noisy@R`` kind: the share R of characters changed; else None."""
    if kind == "noisy":
        return DEFAULT_NOISE_RATE
    if not kind.startswith("noisy@"):
        return None
    try:
        rate = float(kind.removeprefix("noisy@"))
    except ValueError:
        raise ValueError(f"kind {kind!r}: expected noisy@RATE, e.g. noisy@0.08") from None
    if not 0.0 < rate < 1.0:
        raise ValueError(f"kind {kind!r}: the noise rate must be between 0 and 1")
    return rate


def ocr_noise(rng: np.random.Generator, text: str, rate: float = DEFAULT_NOISE_RATE) -> str:
    """OCR-like noise on a share ``rate`` of the characters: see ``ocr_noise_mapped``."""
    return ocr_noise_mapped(rng, text, rate)[0]


def ocr_noise_mapped(rng: np.random.Generator, text: str, rate: float = DEFAULT_NOISE_RATE) -> tuple[str, list[int]]:
    """OCR-like noise on a share ``rate`` of the characters (each one changed once, in one of four ways):
    a confusable letter (m -> rn, l -> 1, ...), a dropped letter or space, a doubled character, or a
    word split after it. Where a way does not apply (no confusable, not a letter) the character is doubled,
    so the rate is the share of characters changed, comparable between texts. Also returns where each
    character of `text` (and its end) went in the noisy text."""
    chars = list(text)
    hits = np.flatnonzero(rng.random(len(chars)) < rate)
    ops = rng.integers(0, 4, hits.size)
    for i, op in zip(hits.tolist(), ops.tolist(), strict=True):
        c = chars[i]
        if op == 0 and c in _OCR:
            chars[i] = _OCR[c]
        elif op == 1 and (c.isalpha() or c == " "):
            chars[i] = ""  # a dropped letter, or two words run together
        elif op == 3 and c.isalpha():
            chars[i] = c + " "
        else:
            chars[i] = c + c
    moved = [0]  # where each character of `text` (and its end) went in the noisy text
    for c in chars:
        moved.append(moved[-1] + len(c))
    return "".join(chars), moved


# Look-alike letters of ``../shared/eval/synthetic-dev``'s noisy kind, as a scan misreads them.
LOOKALIKES = {"e": "c", "l": "1", "o": "0", "m": "rn", "i": "l", "a": "o", "h": "b"}


def lookalike_noise(rng: np.random.Generator, text: str, rate: float) -> str:
    """OCR noise as in the shared evaluation set: each look-alike letter (``LOOKALIKES``) is misread
    with probability `rate`, and each space is lost with probability `rate` / 3 (two words run together)."""
    chars = list(text)
    draw = rng.random(len(chars))
    for i, c in enumerate(chars):
        if c == " ":
            if draw[i] < rate / 3:
                chars[i] = ""
        elif c in LOOKALIKES and draw[i] < rate:
            chars[i] = LOOKALIKES[c]
    return "".join(chars)


# --- the hard kinds (issue 15) -------------------------------------------------
#
# Each takes indexed stories to choose from (the first, unless it does not suit) and two
# never-indexed texts of the same model (local prose), and returns the article's pieces as
# (text, copied from the story?), its headline and the story chosen.

_WORD = re.compile(r"\S+")
_ATTRIBUTION_FIRST = re.compile(
    r"^(?P<who>(?:[A-Z][\w'.&-]*\s){0,4}(?:[A-Z][\w'.&-]*|it|he|she|they)) said(?: that| on \w+)? (?P<what>.+?)[.]?$"
)
_ATTRIBUTION_LAST = re.compile(r"^(?P<what>.+), (?P<who>(?:[\w'.&-]+\s){0,4}[\w'.&-]+) (?:said|added|told \w+)[.]?$")
_PROPER = re.compile(r"(?<![.!?]\s)(?<!^)\b[A-Z][a-zA-Z'&-]+(?:\s[A-Z][a-zA-Z'&-]+)*")
_FIGURE = re.compile(r"\b\d[\d,.]*\d\b|\b\d\b")
_QUOTE = re.compile(r"\"([^\"]{10,90})\"")


def _sentences_of(story: GenStory) -> list[str]:
    return [x.strip() for p in story.paragraphs for x in _SENT_SPLIT.split(p) if x.strip()]


def _short_excerpt(
    rng: np.random.Generator, picks: list[GenStory], other: GenStory, other2: GenStory
) -> tuple[list[tuple[str, bool]], str, GenStory]:
    """30-60 words of one paragraph (sentences whole when they fit), inside local text.

    The first of ``picks`` with a paragraph that long is used; a story with none (tables, flashes)
    gives its longest stretch from a paragraph start. The stretch is a substring of the story's
    body, so its place in both texts is exact.
    """
    s = next((p for p in picks if any(len(x.split()) >= 30 for x in p.paragraphs)), picks[0])
    body = s.body
    spans = [(m.start(), m.end()) for m in _WORD.finditer(body)]
    para = np.cumsum([0] + [int("\n\n" in body[e:b]) for (_, e), (b, _) in itertools.pairwise(spans)])
    starts = [i for i in range(len(spans)) if i == 0 or para[i] != para[i - 1] or body[spans[i - 1][1] - 1] in ".!?"]
    one = [a for a in starts if a + 29 < len(spans) and para[a + 29] == para[a]]
    a = one[int(rng.integers(len(one)))] if one else 0
    b = min(len(spans), a + int(rng.integers(30, 61)))
    if one:
        b = min(b, int(np.searchsorted(para, para[a], side="right")))  # the paragraph's last word
    ends = [j + 1 for j in range(a + 29, b) if body[spans[j][1] - 1] in ".!?"]
    if ends:  # end on a sentence end when one falls in 30-60 words
        b = ends[-1]
    excerpt = body[spans[a][0] : spans[b - 1][1]]
    before = "\n\n".join(other.paragraphs[:2])
    after = "\n\n".join(other.paragraphs[2:4] or other2.paragraphs[:2])
    return [(before, False), (excerpt, True), (after, False)], other.headline, s


def _clauses_cut(rng: np.random.Generator, sentence: str) -> str:
    """Drop some middle clauses (between commas) and parentheses, as a sub-editor cuts for length."""
    sentence = re.sub(r"\s*\([^)]*\)", "", sentence)
    parts = sentence.split(", ")
    if len(parts) > 2:
        keep = [parts[0]] + [c for c in parts[1:-1] if rng.random() < 0.4] + [parts[-1]]
        sentence = ", ".join(keep)
    return sentence


def _attribution_moved(sentence: str) -> str:
    """'X said Y.' -> 'Y, X said.' and back: the brief keeps the claim but not the sentence's shape."""
    sentence = sentence.rstrip()
    m = _ATTRIBUTION_FIRST.match(sentence)
    if m and len(m["what"].split()) >= 4:
        what = m["what"]
        return f"{what[0].upper()}{what[1:]}, {m['who'] if m['who'][0].isupper() else m['who'].lower()} said."
    m = _ATTRIBUTION_LAST.match(sentence.rstrip("."))
    if m and len(m["what"].split()) >= 4:
        what = m["what"]
        first = what.split()[0]
        keep_case = first.isupper() or (first[:1].isupper() and not first.istitle())  # U.S., McDonald's
        lowered = what if keep_case else what[0].lower() + what[1:]
        return f"{m['who'][0].upper()}{m['who'][1:]} said {lowered}."
    return sentence


def _brief(
    rng: np.random.Generator, picks: list[GenStory], other: GenStory, other2: GenStory
) -> tuple[list[tuple[str, bool]], str, GenStory]:
    """A news-in-brief: the lead sentence and a fact or two (sentences with figures), clauses cut,
    attribution moved, wire shorthand expanded and synonyms swapped in; 20-90 words."""
    s = next((p for p in picks if len(p.body.split()) >= 40), picks[0])
    sents = _sentences_of(s)
    lead, rest = sents[0], sents[1:10]
    facts = [x for x in rest if _FIGURE.search(x)] or rest
    k = min(len(facts), 1 + int(rng.integers(0, 2)))
    picked = sorted(rng.choice(len(facts), size=k, replace=False).tolist()) if k else []
    out: list[str] = []
    for x in [lead] + [facts[i] for i in picked]:
        x = _edit(rng, _attribution_moved(_clauses_cut(rng, x)), synonym_rate=0.6, drop_rate=0.0)
        if out and len(" ".join(out).split()) + len(x.split()) > 90:
            break
        out.append(x)
    words = " ".join(out).split()
    if len(words) > 90:  # a very long lead: cut at the clause before 90 words
        cut = " ".join(words[:90])
        words = (cut.rsplit(", ", 1)[0] if ", " in cut else cut).rstrip(",;:").split()
        words[-1] = words[-1].rstrip(".") + "."
    for x in rest:  # too short: add the next sentence as it is
        if len(words) >= 20:
            break
        if x not in out:
            words += _edit(rng, x, synonym_rate=0.6, drop_rate=0.0).split()
    return [(" ".join(words[:90]), True)], _headline(" ".join(words)), s


def _sibling(
    rng: np.random.Generator, picks: list[GenStory], other: GenStory, other2: GenStory
) -> tuple[list[tuple[str, bool]], str, GenStory]:
    """A story on the same subject, written separately: never-indexed prose that names the story's
    companies, people and places and quotes its figures (and now and then a short quote of it,
    under 12 words, as every reporter of an event quotes the same speaker), but shares no
    sentence with it."""
    s = picks[0]
    names = list(dict.fromkeys(m.group(0) for p in s.paragraphs for m in _PROPER.finditer(p)))
    figures = list(dict.fromkeys(m.group(0) for p in s.paragraphs for m in _FIGURE.finditer(p)))
    paras = list(other.paragraphs[:6]) or list(other2.paragraphs[:6])
    counter = [0, 0]

    def name(m: re.Match[str]) -> str:
        if not names:
            return m.group(0)
        counter[0] += 1
        return names[(counter[0] - 1) % min(len(names), 6)]  # the story's leading names, again and again

    def figure(m: re.Match[str]) -> str:
        if not figures or rng.random() < 0.5:
            return m.group(0)
        counter[1] += 1
        return figures[(counter[1] - 1) % len(figures)]

    out = [_FIGURE.sub(figure, _PROPER.sub(name, p)) for p in paras]
    quotes = [m.group(1) for p in s.paragraphs for m in _QUOTE.finditer(p) if len(m.group(1).split()) < 12]
    if quotes and rng.random() < 0.5:
        who = names[0] if names else "A spokesman"
        out.insert(min(2, len(out)), f'"{quotes[int(rng.integers(len(quotes)))]}," {who} said.')
    headline = _headline(" ".join(names[:2]) + " " + " ".join(other.headline.split()[:5]))
    return [("\n\n".join(out), False)], headline, s


_HARD = {"short_excerpt": _short_excerpt, "brief": _brief, "sibling": _sibling}


# --- files -------------------------------------------------------------------


def _open_out(path: Path) -> IO[str]:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".gz":
        return gzip.open(path, "wt", encoding="utf-8", compresslevel=3)
    return path.open("w", encoding="utf-8")


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> int:
    n = 0
    with _open_out(path) as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False))
            fh.write("\n")
            n += 1
    return n


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--stories", type=int, default=10_000)
    ap.add_argument("--queries", type=int, default=800)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--source", default=None, help="JSONL(.gz) of real stories to train on (default: built-in)")
    ap.add_argument("--out-dir", type=Path, required=True)
    ap.add_argument("--no-gzip", action="store_true")
    args = ap.parse_args(argv)
    gen = CorpusGenerator(seed=args.seed, source=args.source)
    ext = ".jsonl" if args.no_gzip else ".jsonl.gz"
    n = write_jsonl(args.out_dir / f"stories{ext}", (s.as_json() for s in gen.stories(args.stories)))
    m = write_jsonl(args.out_dir / f"queries{ext}", gen.queries(args.stories, args.queries))
    print(f"wrote {n} stories and {m} queries to {args.out_dir} (model: {gen.model.source})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
