"""Whole passages: a reused passage comes back as one, with exact word offsets in both texts;
PAN-style scores of passages; passage truth from the corpus generator."""

from __future__ import annotations

import difflib
import itertools
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.synth import NewsGen
from wiretrace.config import Settings
from wiretrace.corpusgen import KINDS, CorpusGenerator, _curly
from wiretrace.embedded_backend import EmbeddedBackend
from wiretrace.engine import Detector
from wiretrace.evaluation import Annotation, plagdet, score
from wiretrace.scoring import ScoringParams, align_many
from wiretrace.shingling import shingle_hashes
from wiretrace.types import MatchResult, PassageMatch, SourceMatch, StoryRecord, Verdict

# --- a passage with a sentence break, a changed word, masked boilerplate --------------------

N_STORIES = 30


class World:
    """Indexed stories built sentence by sentence, so every sentence's offsets are known."""

    def __init__(self, tmp: Path) -> None:
        self.gen = NewsGen(seed=23)
        self.sentences: list[list[tuple[int, int]]] = []
        self.bodies: list[str] = []
        for _ in range(N_STORIES):
            parts: list[str] = []
            spans: list[tuple[int, int]] = []
            at = 0
            for i in range(14):
                s = self.gen.sentence()
                sep = "" if i == 0 else ("\n\n" if i % 3 == 0 else " ")
                at += len(sep)
                parts.append(sep + s)
                spans.append((at, at + len(s)))
                at += len(s)
            self.bodies.append("".join(parts))
            self.sentences.append(spans)
        cfg = Settings()
        self.detector = Detector(cfg, EmbeddedBackend(tmp, cfg.index.fingerprint()))
        self.detector.upsert(
            [StoryRecord(story_id=f"s{i}", headline=f"story {i}", body=b) for i, b in enumerate(self.bodies)]
        )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    w = World(tmp_path_factory.mktemp("passages"))
    yield w
    w.detector.close()


def _word_spans(text: str) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    i = 0
    for word in text.split(" "):
        spans.append((i, i + len(word)))
        i += len(word) + 1
    return spans


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    story=st.integers(0, N_STORIES - 1),
    first=st.integers(0, 10),
    count=st.integers(3, 4),
    change=st.floats(0.0, 1.0),
    split=st.floats(0.0, 1.0),
    boilerplate=st.booleans(),
    inserted=st.booleans(),
)
def test_a_reused_passage_comes_back_whole_with_exact_offsets(
    world: World, story: int, first: int, count: int, change: float, split: float, boilerplate: bool, inserted: bool
) -> None:
    """Sentences copied from a story into other text, with: a sentence break moved (a comma
    made a full stop, a paragraph break where the story had a space), one word changed, and
    either a masked boilerplate line or an inserted sentence of the outlet's own inside the
    passage. One passage for the story, from its first word to its last, in both texts."""
    body = world.bodies[story]
    sents = world.sentences[story][first : first + count]
    s0, s1 = sents[0][0], sents[-1][1] - 1  # the passage ends at its last word, not at the full stop
    words = body[s0:s1].split()
    second = len(body[sents[0][0] : sents[0][1]].split())  # the second copied sentence's first word
    # a changed word, away from the passage's ends (a passage begins and ends with copied words)
    # and from the insertion
    w = second + 4 + int(change * (len(words) - second - 9))
    words[w] = "Zqxvorbled"
    # a sentence break where the story has none
    cut = 1 + int(split * (len(words) - 4))
    if cut not in (w - 1, w):
        words[cut] = words[cut].rstrip(".") + "."
    pieces: list[str] = []
    for i, word in enumerate(words):
        if i == second:
            if boilerplate:  # a photo credit line, masked as boilerplate
                pieces.append("\n\nPhoto: Jane Doe/Reuters\n\n")
            elif inserted:  # the outlet's own words
                pieces.append(" Qwelkian Vandorix told Harbourpost newsroom staff. ")
            else:  # a paragraph break where the story has a space
                pieces.append("\n\n")
        elif i:
            pieces.append(" ")
        pieces.append(word)
    passage = "".join(pieces)
    lead = "Vorpalix Quendrath announced the local council meeting would start at noon."
    tail = "Mirthwold Gastrapine reported nothing else of note."
    article = f"{lead}\n\n{passage}\n\n{tail}"
    a0 = len(lead) + 2
    a1 = a0 + len(passage)

    res = world.detector.match(article)
    mine = [m for m in res.matches if m.story_id == f"s{story}"]
    assert mine, res
    got = [(p.article_start, p.article_end, p.story_start, p.story_end) for p in mine[0].passages]
    assert got == [(a0, a1, s0, s1)]
    assert article[a0:a1].endswith(words[-1]) and body[s0:s1].endswith(words[-1])


def test_paragraphs_moved_around_stay_separate_passages(world: World) -> None:
    """The bridge joins passages that follow each other in both texts, not across a paragraph
    brought in from elsewhere in the story: A C B copied from A B C gives three passages."""
    body = world.bodies[0]
    sp = world.sentences[0]
    a, b, c = (body[sp[i][0] : sp[i + 1][1]] for i in (0, 4, 8))  # two sentences each
    article = f"{a}\n\n{c}\n\n{b}"
    res = world.detector.match(article)
    top = next(m for m in res.matches if m.story_id == "s0")
    got = [(p.article_start, p.story_start) for p in top.passages]
    assert got == [(0, sp[0][0]), (len(a) + 2, sp[8][0]), (len(a) + len(c) + 4, sp[4][0])]


def test_bridged_gaps_do_not_count_as_reused_text() -> None:
    """Containment counts the chains' tokens: a 30-word insertion inside a passage is bridged
    for the answer but is not text from the story."""
    rng = np.random.default_rng(5)
    story = rng.integers(0, 2**32, 200, dtype=np.uint32)
    inserted = rng.integers(0, 2**32, 30, dtype=np.uint32)
    article = np.concatenate((story[20:80], inserted, story[80:140]))
    p = ScoringParams(4, 8, 8.0, 12, 0.15, 0.05, 0.5, 0.9)
    bigrams = shingle_hashes(article, 2)
    al = align_many(shingle_hashes(article, 4), bigrams, np.ones(bigrams.size), [shingle_hashes(story, 4)], [200], p)[0]
    assert al is not None
    assert [(x.article_start, x.article_end, x.story_start, x.story_end) for x in al.passages] == [(0, 150, 20, 140)]
    assert al.matched_tokens == 120
    assert al.containment == pytest.approx(120 / 150)
    assert al.coverage == pytest.approx(120 / 200)
    off = align_many(
        shingle_hashes(article, 4),
        bigrams,
        np.ones(bigrams.size),
        [shingle_hashes(story, 4)],
        [200],
        ScoringParams(4, 8, 8.0, 12, 0.15, 0.05, 0.5, 0.9, passage_bridge=0),
    )[0]
    assert off is not None and len(off.passages) == 2 and off.containment == al.containment


# --- plagdet -------------------------------------------------------------------------------


def _ann(start: int, end: int, s_start: int, s_end: int, doc: str = "q", source: str = "s") -> Annotation:
    return Annotation(doc, start, end, source, s_start, s_end)


def test_plagdet_of_an_exact_answer_is_one() -> None:
    cases = [_ann(0, 100, 50, 150), _ann(200, 260, 0, 60, doc="r")]
    r = plagdet(cases, list(cases))
    assert (r.precision, r.recall, r.granularity, r.plagdet) == (1.0, 1.0, 1.0, 1.0)


def test_plagdet_of_a_passage_in_two_halves() -> None:
    """A case of 100 + 100 characters found as two detections covering 40 + 40 and 50 + 50 of
    them: recall 0.9, precision 1, granularity 2, plagdet 2*0.9/1.9 / log2(3)."""
    case = _ann(0, 100, 0, 100)
    dets = [_ann(0, 40, 0, 40), _ann(50, 100, 50, 100)]
    r = plagdet([case], dets)
    assert r.recall == pytest.approx(0.9)
    assert r.precision == pytest.approx(1.0)
    assert r.granularity == 2.0
    assert r.plagdet == pytest.approx((2 * 0.9 / 1.9) / math.log2(3))


def test_plagdet_overrun_and_false_detection() -> None:
    """A detection running 50 characters past a 100 + 100 case on the article side has
    precision 200/250; a detection overlapping no case has precision 0; macro averages."""
    case = _ann(0, 100, 0, 100)
    over = _ann(0, 150, 0, 100)
    stray = _ann(500, 600, 500, 600)
    r = plagdet([case], [over, stray])
    assert r.recall == 1.0
    assert r.precision == pytest.approx((200 / 250 + 0.0) / 2)
    assert r.granularity == 1.0


def test_plagdet_needs_overlap_in_both_texts_and_the_right_source() -> None:
    """A detection overlapping the case in the article only, or naming another story, does not
    detect it: recall 0, granularity 1 (no case detected), plagdet 0."""
    case = _ann(0, 100, 0, 100)
    r = plagdet([case], [_ann(0, 100, 300, 400), _ann(0, 100, 0, 100, source="other")])
    assert (r.recall, r.precision, r.granularity, r.plagdet) == (0.0, 0.0, 1.0, 0.0)


def test_plagdet_union_of_overlapping_detections_counts_once() -> None:
    """Two detections overlapping each other inside a case: characters count once for recall;
    granularity 2 for the case; each detection's precision is 1."""
    case = _ann(0, 100, 0, 100)
    r = plagdet([case], [_ann(0, 60, 0, 60), _ann(40, 100, 40, 100)])
    assert r.recall == 1.0 and r.precision == 1.0 and r.granularity == 2.0
    assert r.plagdet == pytest.approx(1 / math.log2(3))


def test_plagdet_of_nothing() -> None:
    assert plagdet([], []).plagdet == 1.0
    assert plagdet([_ann(0, 10, 0, 10)], []).plagdet == 0.0
    assert plagdet([], [_ann(0, 10, 0, 10)]).precision == 0.0


# --- passage truth from the corpus generator ----------------------------------------------


def test_generated_passages_point_at_the_reused_text() -> None:
    """Every kind's passages: copies are character-for-character the story's text (curly quotes
    aside), edited and noisy ones start and end on words; negatives have none."""
    gen = CorpusGenerator(seed=4)
    seen: set[str] = set()
    for q in gen.queries(1200, 96, KINDS):
        kind = q["kind"]
        text = q["text"]
        assert "passages" in q
        if not q["derived"]:
            assert q["passages"] == []
            continue
        assert q["passages"], kind
        sources = {s["story_id"] for s in q["sources"]}
        for p in q["passages"]:
            assert p["story_id"] in sources
            body = gen.story(int(p["story_id"][1:])).body
            a = text[p["article_start"] : p["article_end"]]
            s = body[p["story_start"] : p["story_end"]]
            assert a and s
            assert a[0].isalnum() and a[-1].isalnum() and s[0].isalnum() and s[-1].isalnum()
            if kind in ("verbatim", "trimmed", "excerpt", "merged"):
                assert a in (s, _curly(body)[p["story_start"] : p["story_end"]])
            elif kind == "edited":
                assert s.split()[-1].rstrip(".,;:") and len(a) > 0
            seen.add(kind)
        spans = sorted((p["article_start"], p["article_end"]) for p in q["passages"])
        assert all(x[1] <= y[0] for x, y in itertools.pairwise(spans))  # disjoint in the query
    assert seen == {"verbatim", "trimmed", "excerpt", "merged", "edited", "noisy"}


def test_noisy_passage_offsets_follow_the_noise() -> None:
    """OCR noise moves characters: the passage still runs from the story's first prose word
    (after the dateline) to its last, and the query's side is that text as the noise left it."""
    gen = CorpusGenerator(seed=9)
    for q in gen.queries(1000, 16, ("noisy",)):
        (p,) = q["passages"]
        story = gen.story(int(p["story_id"][1:]))
        body = story.body
        assert p["story_start"] == min(i for i, c in enumerate(body) if c.isalnum() and i >= len(story.dateline))
        assert p["story_end"] == max(i for i, c in enumerate(body) if c.isalnum()) + 1
        a = q["text"][p["article_start"] : p["article_end"]]
        s = body[p["story_start"] : p["story_end"]]
        assert difflib.SequenceMatcher(None, a.split(), s.split()).ratio() > 0.7  # ~15% of words hit


def test_eval_report_prints_passage_scores_when_queries_carry_passages() -> None:
    """`wiretrace eval`'s report: plagdet and granularity appear for queries with passage truth,
    a re-send of the true source stands for it, and its second copy counts for nothing."""
    query = {
        "query_id": "q1",
        "kind": "excerpt",
        "text": "x" * 300,
        "sources": [{"story_id": "a", "fraction": 0.5, "accept": ["a", "a-resend"]}],
        "passages": [{"story_id": "a", "article_start": 0, "article_end": 100, "story_start": 10, "story_end": 110}],
    }
    halves = (PassageMatch(0, 50, 10, 60, 1.0), PassageMatch(50, 100, 60, 110, 1.0))
    result = MatchResult(
        Verdict.PARTIAL,
        (
            SourceMatch("a-resend", "", 0.3, 0.2, 0.1, Verdict.PARTIAL, halves),
            SourceMatch("a", "", 0.3, 0.2, 0.1, Verdict.PARTIAL, halves),
        ),
        0.7,
        2,
    )
    rep = score([(query, result)])
    scores = rep.passages()
    assert scores is not None
    assert (scores.cases, scores.detections, scores.granularity, scores.recall) == (1, 2, 2.0, 1.0)
    assert "passages: plagdet 0.631  granularity 2.000" in rep.render()
    assert score([({k: v for k, v in query.items() if k != "passages"}, result)]).passages() is None
