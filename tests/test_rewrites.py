"""Rewrites and reports of the same event, through the gRPC API (issue: real-world reuse).

A brief rewritten from a story is attributed to it; another reporter's story of the same
event, with the same people, figures and quote, is not; a quote alone makes no source.
Generated fixtures only (tests/synth.py's Event), judged by the shipped rewrite model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.helpers import make_settings
from tests.synth import Event, NewsGen
from wiretrace.client import WiretraceClient
from wiretrace.evidence import FEATURES, RewriteModel, builtin_model, numeric_tokens, quoted_tokens
from wiretrace.server import WiretraceServer
from wiretrace.text import tokenize
from wiretrace.types import StoryRecord, Verdict

EVENTS = 6


@pytest.fixture
def indexed(client: WiretraceClient) -> tuple[WiretraceClient, list[tuple[str, Event, str]]]:
    """A wire of 300 stories, among them one story for each of a few events."""
    gen = NewsGen(seed=23)
    stories = [{"story_id": f"bg-{i}", "body": gen.article()} for i in range(300)]
    events = []
    for i in range(EVENTS):
        event = Event(gen)
        body = event.wire_story()
        events.append((f"event-{i}", event, body))
        stories.append({"story_id": f"event-{i}", "body": body})
    assert client.index_stories(stories).indexed == len(stories)
    return client, events


def test_a_brief_is_attributed_to_its_story(indexed: tuple[WiretraceClient, list[tuple[str, Event, str]]]) -> None:
    client, events = indexed
    for story_id, event, body in events:
        brief = event.brief(body)
        assert 15 <= len(brief.split()) <= 60
        result = client.match(brief)
        assert result.verdict != Verdict.UNRELATED, brief
        assert result.matches[0].story_id == story_id


def test_a_copy_its_windows_found_is_verified_without_the_rewrite_candidates(tmp_path: Path) -> None:
    """Whole-document and term candidates look for what the windows miss (a brief, a paraphrase);
    beside a copy the windows found they would only be verified for nothing."""
    gen = NewsGen(seed=5)
    settings = make_settings(tmp_path / "data", max_candidates=1, topic_candidates=8, term_candidates=8)
    stories = [StoryRecord(f"s-{i}", gen.article(300, 400)) for i in range(12)]
    with WiretraceServer(settings) as srv, WiretraceClient(srv.address, timeout=30) as c:
        assert c.index_stories(stories).indexed == len(stories)
        copy = c.match(stories[3].body)
        assert (copy.candidates_checked, copy.verdict, copy.matches[0].story_id) == (1, Verdict.VERBATIM, "s-3")
        new = c.match(gen.article(300, 400))  # nothing copied: the rewrite candidates are looked up
        assert new.candidates_checked > 1


def test_an_independent_report_of_the_same_event_is_not(
    indexed: tuple[WiretraceClient, list[tuple[str, Event, str]]],
) -> None:
    client, events = indexed
    for _, event, _ in events:
        report = event.independent_report()
        assert event.quote in report and event.figure in report
        result = client.match(report)
        assert result.verdict == Verdict.UNRELATED, [(m.story_id, m.containment) for m in result.matches]
        assert result.original_fraction == 1.0


def test_quoted_speech_alone_makes_no_source(indexed: tuple[WiretraceClient, list[tuple[str, Event, str]]]) -> None:
    client, events = indexed
    gen = NewsGen(seed=99)
    for _, event, _ in events:
        article = f'{gen.article(120, 200)}\n\n"{event.quote}," {event.people[0]} said.\n\n{gen.article(60, 100)}'
        result = client.match(article)
        assert result.verdict == Verdict.UNRELATED, [(m.story_id, m.containment) for m in result.matches]


@pytest.mark.parametrize(
    ("text", "quoted"),
    [
        ('He said "the talks ended" and left.', ["the", "talks", "ended"]),
        ("He said “the talks ended” and left.", ["the", "talks", "ended"]),
        ("She called it «a fair deal» today.", ["a", "fair", "deal"]),
        ("The jury's verdict: 'we find him guilty', said the foreman.", ["we", "find", "him", "guilty"]),
        ("Don't say it's over; the firm's chief won't resign.", []),
        ('An open "quote runs on\n\nbut stops at the paragraph', []),
    ],
)
def test_quoted_tokens(text: str, quoted: list[str]) -> None:
    tokens = tokenize(text, strip_boilerplate=False)
    inside = quoted_tokens(text, tokens.starts)
    assert [text[a:b].lower() for a, b, q in zip(tokens.starts, tokens.ends, inside, strict=True) if q] == quoted


def test_numeric_tokens_in_any_script() -> None:
    text = "Sold 1,200 bags for £12,300 on day ۱۲ and 3rd place, no figures here."
    tokens = tokenize(text, strip_boilerplate=False)
    marked = numeric_tokens(text, tokens.starts, tokens.ends)
    spans = list(zip(tokens.starts.tolist(), tokens.ends.tolist(), marked.tolist(), strict=True))
    words = [text[a:b] for a, b, m in spans if m]
    assert words and all(any(c.isdigit() for c in w) for w in words)
    assert not any(any(c.isdigit() for c in text[a:b]) for a, b, m in spans if not m)


def test_rewrite_model_round_trip_and_version_check() -> None:
    model = builtin_model()
    assert RewriteModel.from_json(model.as_json()) == model
    rows = np.zeros((3, len(FEATURES)))
    rows[1, FEATURES.index("share")] = 0.9
    p = model.probability(rows)
    assert p.shape == (3,) and np.all((p >= 0) & (p <= 1)) and p[1] > p[0]
    stale = model.as_json() | {"features": list(FEATURES[:-1])}
    with pytest.raises(ValueError, match="features"):
        RewriteModel.from_json(stale)
