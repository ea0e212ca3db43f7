"""The corpus generator's hard kinds (issue 15): what each promises about its text and its truth."""

from __future__ import annotations

import difflib
import re
from typing import Any

import numpy as np
import pytest

from wiretrace.corpusgen import (
    KINDS_HARD,
    KINDS_HARD_ORIGINAL,
    CorpusGenerator,
    GenStory,
    noise_rate,
    ocr_noise,
)

N_STORIES = 400


@pytest.fixture(scope="module")
def gen() -> CorpusGenerator:
    return CorpusGenerator(seed=3, block_size=200)  # the built-in model: no ../shared needed


@pytest.fixture(scope="module")
def queries(gen: CorpusGenerator) -> list[dict[str, Any]]:
    return list(gen.queries(N_STORIES, 10 * len(KINDS_HARD), kinds=KINDS_HARD))


def _of(queries: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    out = [q for q in queries if q["kind"] == kind]
    assert len(out) == 10
    return out


def _body(gen: CorpusGenerator, story_id: str) -> str:
    return gen.story(int(story_id.removeprefix(gen.prefix))).body


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def _longest_shared_run(a: str, b: str) -> int:
    """Longest run of words the two texts have in common."""
    wa, wb = _words(a), _words(b)
    m = difflib.SequenceMatcher(None, wa, wb, autojunk=False)
    return max((blk.size for blk in m.get_matching_blocks()), default=0)


def test_same_seed_same_queries(gen: CorpusGenerator, queries: list[dict[str, Any]]) -> None:
    again = list(CorpusGenerator(seed=3, block_size=200).queries(N_STORIES, 10 * len(KINDS_HARD), kinds=KINDS_HARD))
    assert again == queries
    other = list(CorpusGenerator(seed=4, block_size=200).queries(N_STORIES, 2 * len(KINDS_HARD), kinds=KINDS_HARD))
    assert [q["text"] for q in other] != [q["text"] for q in queries[: len(other)]]


def test_noise_rate_is_a_parameter_of_the_kind() -> None:
    assert noise_rate("noisy") == 0.03
    assert noise_rate("noisy@0.08") == 0.08
    assert noise_rate("brief") is None
    for bad in ("noisy@", "noisy@x", "noisy@0", "noisy@1.5"):
        with pytest.raises(ValueError, match="noisy@"):
            noise_rate(bad)


@pytest.mark.parametrize("rate", [0.02, 0.05, 0.12])
def test_ocr_noise_changes_that_share_of_characters(gen: CorpusGenerator, rate: float) -> None:
    text = "\n\n".join(gen.story(i).body for i in range(3))
    noisy = ocr_noise(np.random.default_rng(1), text, rate)
    ops = difflib.SequenceMatcher(None, text, noisy, autojunk=False).get_opcodes()
    edits = sum(max(i2 - i1, j2 - j1) for tag, i1, i2, j1, j2 in ops if tag != "equal")
    # Each chosen character is changed once (m -> rn counts twice; an alignment may find cheaper edits).
    assert 0.8 * rate <= edits / len(text) <= 1.2 * rate


def test_noisy_queries_grow_noisier_with_the_rate(gen: CorpusGenerator, queries: list[dict[str, Any]]) -> None:
    def kept(kind: str) -> float:
        shares = []
        for q in _of(queries, kind):
            src = set(_words(_body(gen, q["sources"][0]["story_id"])))
            words = _words(q["text"])
            shares.append(sum(w in src for w in words) / len(words))
        return float(np.mean(shares))

    assert kept("noisy@0.02") > kept("noisy@0.05") > kept("noisy@0.08") > kept("noisy@0.12") > 0.4


def test_short_excerpt_is_one_stretch_of_the_story_inside_local_text(
    gen: CorpusGenerator, queries: list[dict[str, Any]]
) -> None:
    for q in _of(queries, "short_excerpt"):
        (src,) = q["sources"]
        body = _body(gen, src["story_id"])
        paras = q["text"].split("\n\n")
        copied = [p for p in paras if p in body]
        assert len(copied) == 1, "exactly one paragraph of the article is the story's"
        excerpt = copied[0]
        assert 30 <= len(excerpt.split()) <= 60
        assert "\n" not in excerpt  # one paragraph of the story
        assert paras.index(excerpt) not in (0, len(paras) - 1), "local text on both sides"
        assert src["fraction"] == round(len(excerpt.split()) / len(q["text"].split()), 3)
        assert q["derived"] is True


def test_brief_rewrites_the_lead_in_20_to_90_words(gen: CorpusGenerator, queries: list[dict[str, Any]]) -> None:
    for q in _of(queries, "brief"):
        (src,) = q["sources"]
        body = _body(gen, src["story_id"])
        assert 20 <= len(q["text"].split()) <= 90
        assert src["fraction"] == 1.0 and q["derived"] is True
        assert q["text"] not in body  # rewritten, not cut out
        lead = _words(body.split("\n\n")[0])[:8]
        assert len(set(lead) & set(_words(q["text"]))) >= 3, "it keeps the lead's words"


def test_sibling_shares_the_subject_and_no_sentence(gen: CorpusGenerator, queries: list[dict[str, Any]]) -> None:
    assert KINDS_HARD_ORIGINAL == ("sibling",)
    for q in _of(queries, "sibling"):
        assert q["derived"] is False and q["sources"] == []
        body = _body(gen, q["same_subject_as"])
        names = set(re.findall(r"\b[A-Z][a-z]+\b", body)) - {"The", "A", "In", "It", "He", "She", "We"}
        assert len(names & set(re.findall(r"\b[A-Z][a-z]+\b", q["text"]))) >= 2, "the same names"
        assert _longest_shared_run(q["text"], body) < 12, "written separately"


def test_queries_from_given_stories_accept_identical_copies(gen: CorpusGenerator) -> None:
    real = [GenStory.from_json(s.as_json() | {"story_id": f"w-{i}"}) for i, s in enumerate(gen.stories(60))]
    real.append(GenStory.from_json({"story_id": "w-copy", "body": real[5].body, "headline": "x"}))
    assert real[5].body == gen.story(5).body  # a wire file's body, unchanged
    qs = list(gen.queries_from(real, 4 * len(KINDS_HARD), KINDS_HARD, key=7))
    assert qs == list(gen.queries_from(real, 4 * len(KINDS_HARD), KINDS_HARD, key=7))
    ids = {s.story_id for s in real}
    for q in qs:
        for src in q["sources"]:
            assert src["story_id"] in ids and src["story_id"] in src["accept"]
            if src["story_id"] in ("w-5", "w-copy"):
                assert sorted(src["accept"]) == ["w-5", "w-copy"]


def test_score_takes_a_query_without_sources_as_a_negative() -> None:
    """A new negative kind (sibling) scores by its missing sources, without a list of kinds."""
    from wiretrace.evaluation import score
    from wiretrace.types import MatchResult, SourceMatch, Verdict

    found = SourceMatch("s1", "", 0.9, 0.9, 0.8, Verdict.DERIVED, ())
    derived = MatchResult(Verdict.DERIVED, (found,), 0.1, 3)
    unrelated = MatchResult(Verdict.UNRELATED, (), 1.0, 3)
    sib: dict[str, Any] = {"kind": "sibling", "derived": False, "sources": []}
    brief: dict[str, Any] = {"kind": "brief", "sources": [{"story_id": "s1", "fraction": 1.0, "accept": ["s1"]}]}
    rep = score([(sib, unrelated), (sib, derived), (brief, derived), (brief, unrelated)])
    assert (rep.kinds["sibling"].n, rep.kinds["sibling"].ok) == (2, 1)
    assert (rep.kinds["brief"].n, rep.kinds["brief"].ok) == (2, 1)
    assert "sibling" in rep.render() and "brief" in rep.render()
