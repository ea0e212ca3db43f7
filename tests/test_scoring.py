"""Verification and verdicts on the in-process detector (no network needed here)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.synth import NewsGen
from wiretrace.config import Settings
from wiretrace.engine import Detector
from wiretrace.index import LSHIndex
from wiretrace.types import StoryRecord, Verdict


@pytest.fixture(scope="module")
def gen() -> NewsGen:
    return NewsGen(seed=11)


@pytest.fixture
def detector(tmp_path: Path, gen: NewsGen) -> Iterator[Detector]:
    det = Detector.open(Settings.load({"data_dir": tmp_path}, environ={}))
    det.upsert([StoryRecord(story_id=f"s{i}", body=gen.article()) for i in range(60)])
    yield det
    det.close()


def body(det: Detector, sid: str) -> str:
    rec = det.get(sid)
    assert rec is not None
    return rec.body


def test_story_matches_itself_verbatim(detector: Detector) -> None:
    text = body(detector, "s3")
    res = detector.match(text)
    top = res.matches[0]
    assert res.verdict is Verdict.VERBATIM
    assert top.story_id == "s3" and top.containment == 1.0 and top.coverage == 1.0
    assert res.original_fraction < 0.01
    (p,) = top.passages
    assert text[p.article_start : p.article_end] == text[p.story_start : p.story_end]


def test_excerpt_inside_local_text_is_partial_with_exact_passage(detector: Detector, gen: NewsGen) -> None:
    story = body(detector, "s5")
    paras = story.split("\n\n")
    excerpt = paras[len(paras) // 2]
    local = gen.article(200, 250).replace("a", "ä")  # local prose sharing no words with the index
    article = local + "\n\n" + excerpt + "\n\n" + local[::-1]
    res = detector.match(article)
    assert res.verdict is Verdict.PARTIAL
    top = res.matches[0]
    assert top.story_id == "s5"
    quoted = [(article[p.article_start : p.article_end], story[p.story_start : p.story_end]) for p in top.passages]
    assert any(a == s and a in excerpt and len(a) > 0.9 * len(excerpt.rstrip(".")) for a, s in quoted)
    assert abs(top.containment - (1 - res.original_fraction)) < 1e-3


def test_merged_article_returns_every_source(detector: Detector) -> None:
    parts = [body(detector, sid).split("\n\n") for sid in ("s1", "s2", "s4")]
    article = "\n\n".join(p[0] + "\n\n" + p[1] for p in parts)
    res = detector.match(article, top_k=5)
    assert res.verdict is Verdict.DERIVED
    assert {m.story_id for m in res.matches[:3]} == {"s1", "s2", "s4"}


def test_noisy_and_edited_copies_are_attributed(detector: Detector, gen: NewsGen) -> None:
    for sid in ("s7", "s8", "s9"):
        text = body(detector, sid)
        for copy in (gen.ocr(text), gen.edited(text)):
            res = detector.match(copy)
            assert res.matches and res.matches[0].story_id == sid
            assert res.verdict in (Verdict.DERIVED, Verdict.VERBATIM)


def _reworded(paragraph: str) -> str:
    """Each sentence's word pairs kept but put in reverse order: a rewrite's
    vocabulary with no four-word run left to align."""
    out = []
    for sentence in paragraph.split(". "):
        words = sentence.split()
        pairs = [" ".join(words[i : i + 2]) for i in range(0, len(words), 2)]
        out.append(" ".join(reversed(pairs)))
    return ". ".join(out)


def test_rewrite_with_a_copied_passage_is_derived_even_beside_an_update(detector: Detector, gen: NewsGen) -> None:
    story = gen.article(450, 500)
    paras = story.split("\n\n")
    # A later update re-uses the story's first half: the same story family, not a rival source.
    update = "\n\n".join(paras[: len(paras) // 2]) + "\n\n" + gen.article(200, 250)
    detector.upsert([StoryRecord(story_id="w", body=story), StoryRecord(story_id="w-update", body=update)])
    article = "\n\n".join([paras[-1], *(_reworded(p) for p in paras[:-1])])
    res = detector.match(article)
    assert res.verdict is Verdict.DERIVED
    assert res.matches[0].story_id == "w"
    assert any(article[p.article_start : p.article_end] in paras[-1] for p in res.matches[0].passages)


def test_unrelated_text_is_unrelated(detector: Detector) -> None:
    other = NewsGen(seed=999).article()
    res = detector.match(other)
    assert res.verdict is Verdict.UNRELATED and res.matches == ()


def test_degenerate_text_does_not_match_degenerate_text(tmp_path: Path) -> None:
    det = Detector.open(Settings.load({"data_dir": tmp_path}, environ={}))
    det.upsert([StoryRecord(story_id="spam", body="buy " * 5000), StoryRecord(story_id="x", body="la " * 300)])
    assert det.match("buy " * 20000).verdict is Verdict.UNRELATED
    assert det.match("la la la " * 100).verdict is Verdict.UNRELATED
    det.close()


def test_replaced_and_deleted_stories_stop_matching(detector: Detector, gen: NewsGen) -> None:
    old = body(detector, "s10")
    new = gen.article()
    detector.upsert([StoryRecord(story_id="s10", body=new)])
    assert detector.match(old).verdict is Verdict.UNRELATED
    assert detector.match(new).matches[0].story_id == "s10"
    assert detector.delete(["s10", "missing"]) == 1
    assert detector.match(new).verdict is Verdict.UNRELATED


def test_index_survives_reopen(tmp_path: Path, gen: NewsGen) -> None:
    settings = Settings.load({"data_dir": tmp_path}, environ={})
    det = Detector.open(settings)
    texts = {f"r{i}": gen.article() for i in range(20)}
    det.upsert([StoryRecord(story_id=k, body=v) for k, v in texts.items()])
    det.close()
    det = Detector.open(settings)
    assert det.stats().stories == 20
    for k, v in texts.items():
        assert det.match(v).matches[0].story_id == k
    det.close()


def test_lsh_index_runs_merge_and_forget() -> None:
    idx = LSHIndex()
    rng = np.random.default_rng(0)
    keys = {n: rng.integers(0, 2**63, 10, dtype=np.uint64) for n in range(1, 300)}
    for n, k in keys.items():
        idx.insert(k, np.full(k.size, n, dtype=np.uint32))
    assert idx.entries == 2990
    for n in (1, 150, 299):
        assert set(idx.query(keys[n]).tolist()) == {n}
    idx.remove(np.array([150], dtype=np.uint32))
    assert idx.query(keys[150]).size == 0
    idx.insert(keys[1][:1], np.array([5], dtype=np.uint32))
    assert sorted(idx.query(keys[1][:1]).tolist()) == [1, 5]
