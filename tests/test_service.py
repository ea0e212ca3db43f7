"""SyndicationService end to end: a real server on loopback, whole messages asserted."""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from tests.helpers import make_settings, multilingual, stories
from tests.synth import NewsGen
from wiretrace.client import MatchQuery, NotFound, WiretraceClient
from wiretrace.client.client import SyndicationStub
from wiretrace.server import SERVICE_NAME, WiretraceServer
from wiretrace.text import batch
from wiretrace.types import StoryRecord, Verdict
from wiretrace.v1 import syndication_pb2 as pb
from wiretrace.v1 import syndication_pb2_grpc


def _story_msg(i: int, body: str) -> pb.Story:
    return pb.Story(
        story_id=f"wire-{i}",
        headline=f"Headline {i}",
        body=body,
        source="AGENCY",
        published_at=Timestamp(seconds=1_700_000_000 + i, nanos=5000),
        metadata={"desk": "world", "n": str(i)},
    )


def test_index_get_and_self_match_roundtrip(raw: SyndicationStub, news: NewsGen) -> None:
    msgs = [_story_msg(i, news.article()) for i in range(12)]
    assert raw.IndexStories(iter(msgs)) == pb.IndexStoriesResponse(indexed=12)
    # Every field survives the store, timestamp and metadata included.
    for m in msgs:
        assert raw.GetStory(pb.GetStoryRequest(story_id=m.story_id)) == m

    body = msgs[3].body
    resp = raw.Match(pb.MatchRequest(request_id="q-1", text=body, top_k=1))
    assert resp.request_id == "q-1"
    assert resp.verdict == pb.VERBATIM
    assert resp.original_fraction == pytest.approx(0.0, abs=0.02)
    [top] = resp.matches
    assert (top.story_id, top.headline, top.verdict) == ("wire-3", "Headline 3", pb.VERBATIM)
    assert top.containment == pytest.approx(1.0, abs=0.02)
    assert top.coverage == pytest.approx(1.0, abs=0.02)
    [passage] = top.passages
    # One passage spanning the whole story, at the same offsets in both texts.
    assert passage.article_start == passage.story_start < 20
    assert passage.article_end == passage.story_end > len(body.rstrip()) - 20
    assert passage.similarity == pytest.approx(1.0)


def test_unrelated_text_has_no_matches(raw: SyndicationStub, news: NewsGen) -> None:
    raw.IndexStories(iter([_story_msg(i, news.article()) for i in range(10)]))
    resp = raw.Match(pb.MatchRequest(request_id="u", text=news.article()))
    n = resp.candidates_checked
    reason = f"no indexed story shares enough of its text ({n} candidate stories checked, none with a qualifying"
    assert resp == pb.MatchResponse(
        request_id="u",
        verdict=pb.UNRELATED,
        original_fraction=1.0,
        candidates_checked=n,
        reason=reason + " passage or rewrite evidence)",
    )


def test_excerpt_inside_local_text(client: WiretraceClient, news: NewsGen) -> None:
    wire = stories(news, 8)
    assert client.index_stories(wire).indexed == 8
    source = wire[5].body
    paragraphs = source.split("\n\n")
    excerpt = "\n\n".join(paragraphs[1:4])
    local_before = news.article(200, 220)
    local_after = news.article(200, 220)
    article = f"{local_before}\n\n{excerpt}\n\n{local_after}"

    result = client.match(article, top_k=3)
    assert result.verdict in (Verdict.PARTIAL, Verdict.DERIVED)
    top = result.matches[0]
    assert top.story_id == "s5"
    assert top.verdict in (Verdict.PARTIAL, Verdict.DERIVED)
    assert 0.1 < top.containment < 0.8
    assert result.original_fraction == pytest.approx(1 - top.containment, abs=0.05)
    for p in top.passages:
        # Offsets are code points into the request text and the stored body:
        # the quoted passages are the same words.
        quoted_article = article[p.article_start : p.article_end].split()
        quoted_story = source[p.story_start : p.story_end].split()
        assert quoted_article == quoted_story
        # Inside the excerpt, except where the local text's edge words happen to
        # be the words around the excerpt in the story (the same diagonal).
        lo, s_lo = article.index(excerpt), source.index(excerpt)
        hi, s_hi = lo + len(excerpt), s_lo + len(excerpt)
        assert p.article_start < hi and p.article_end > lo
        assert article[p.article_start : max(p.article_start, lo)].split() == source[p.story_start : s_lo].split()
        assert article[min(p.article_end, hi) : p.article_end].split() == source[s_hi : p.story_end].split()


def test_upsert_replaces(client: WiretraceClient, news: NewsGen) -> None:
    first, second = news.article(), news.article()
    client.index_stories([StoryRecord("x", first, headline="old")])
    assert client.index_stories([{"story_id": "x", "body": second, "headline": "new"}]).indexed == 1
    assert client.get_story("x").headline == "new"
    assert client.stats()[0].stories == 1
    assert client.match(first).verdict == Verdict.UNRELATED
    assert client.match(second, top_k=1).matches[0].story_id == "x"


def test_client_batches_stories_and_maps_rejections_to_its_input(server: WiretraceServer) -> None:
    """150 stories over IndexStoryBatches (64 to a message, none over half the message limit):
    the server's rejections and the client's own (too large to send) come back at the caller's
    positions, whichever message carried them."""
    items = [StoryRecord(f"b{i}", f"story {i} about the harbour strike and its talks") for i in range(150)]
    for i in (0, 64, 65, 149):
        items[i] = StoryRecord(f"b{i}", " ")  # refused by the server
    items[70] = StoryRecord("big", "word " * 30_000)  # 150 KB: over this client's limit, never sent
    items[100] = StoryRecord("half", "word " * 12_000)  # 60 KB: over half the limit, a message of its own
    with WiretraceClient(server.address, max_message_bytes=100_000) as client:
        result = client.index_stories(items)
        assert [(r.story_id, r.position) for r in result.rejected] == [
            ("b0", 0),
            ("b64", 64),
            ("b65", 65),
            ("big", 70),
            ("b149", 149),
        ]
        assert result.indexed == 145
        assert client.stats()[0].stories == 145
        assert client.get_story("half").body == items[100].body
        assert client.get_story("b148").body == items[148].body


def test_resend_within_one_stream_keeps_last(raw: SyndicationStub, news: NewsGen) -> None:
    a, b = news.article(), news.article()
    msgs = [pb.Story(story_id="dup", body=a), pb.Story(story_id="other", body=news.article())]
    msgs.append(pb.Story(story_id="dup", body=b))
    assert raw.IndexStories(iter(msgs)) == pb.IndexStoriesResponse(indexed=3)
    assert raw.GetStory(pb.GetStoryRequest(story_id="dup")).body == b
    assert raw.GetStats(pb.GetStatsRequest()).story_count == 2
    assert raw.Match(pb.MatchRequest(text=a)).verdict == pb.UNRELATED


def test_delete(raw: SyndicationStub, client: WiretraceClient, news: NewsGen) -> None:
    wire = stories(news, 5)
    client.index_stories(wire)
    req = pb.DeleteStoriesRequest(story_ids=["s1", "s3", "never-indexed"])
    assert raw.DeleteStories(req) == pb.DeleteStoriesResponse(deleted=2)
    assert raw.DeleteStories(req) == pb.DeleteStoriesResponse(deleted=0)
    with pytest.raises(NotFound):
        client.get_story("s1")
    assert client.match(wire[1].body).verdict == Verdict.UNRELATED
    assert client.match(wire[2].body, top_k=1).matches[0].story_id == "s2"
    assert client.stats()[0].stories == 3


def test_get_story_not_found(client: WiretraceClient) -> None:
    with pytest.raises(NotFound) as err:
        client.get_story("missing-id")
    assert err.value.message == "no story with story_id 'missing-id'"


def test_stats(raw: SyndicationStub, server: WiretraceServer, news: NewsGen) -> None:
    empty = raw.GetStats(pb.GetStatsRequest())
    index = server.settings.index
    expected_settings = {f.name: str(getattr(index, f.name)) for f in dataclasses.fields(index)}
    assert empty == pb.GetStatsResponse(
        story_count=0,
        index_settings=expected_settings,
        index_entries=0,
        index_bytes=empty.index_bytes,
        disk_bytes=empty.disk_bytes,
        rebuild_seconds=empty.rebuild_seconds,
    )
    raw.IndexStories(iter([_story_msg(i, news.article()) for i in range(9)]))
    full = raw.GetStats(pb.GetStatsRequest())
    assert full.story_count == 9
    assert full.index_entries > 0 and full.index_bytes > 0
    assert full.disk_bytes >= empty.disk_bytes > 0
    assert full.index_settings["shingle_size"] == str(index.shingle_size)


def test_match_stream_answers_in_order(client: WiretraceClient, news: NewsGen) -> None:
    wire = stories(news, 6)
    client.index_stories(wire)
    order = [4, 0, 5, 2, 2, 1, 3]
    queries = [MatchQuery(wire[i].body, request_id=f"r{n}", top_k=1) for n, i in enumerate(order)]
    queries.insert(3, MatchQuery(news.article(), request_id="unrelated"))
    got = list(client.match_stream(queries))
    assert [rid for rid, _ in got] == [q.request_id for q in queries]
    tops = [r.matches[0].story_id if r.matches else None for _, r in got]
    assert tops == ["s4", "s0", "s5", None, "s2", "s2", "s1", "s3"]


def test_unicode_roundtrip_and_self_match(raw: SyndicationStub) -> None:
    bodies = [multilingual(seed) for seed in range(6)]
    msgs = [
        pb.Story(story_id=f"یونیکوڈ-{i}-Юникод-统一码-🚀", headline=f"\u200fسرخی {i}", body=b, metadata={"لغت": "قدر"})
        for i, b in enumerate(bodies)
    ]
    assert raw.IndexStories(iter(msgs)) == pb.IndexStoriesResponse(indexed=6)
    for m in msgs:
        assert raw.GetStory(pb.GetStoryRequest(story_id=m.story_id)) == m
    for i, body in enumerate(bodies):
        resp = raw.Match(pb.MatchRequest(text=body, top_k=1))
        assert resp.verdict == pb.VERBATIM, i
        [top] = resp.matches
        assert top.story_id == msgs[i].story_id
        for p in top.passages:
            # Code point offsets: the same slice of both strings.
            assert body[p.article_start : p.article_end] == body[p.story_start : p.story_end]
            assert p.article_end <= len(body)


def test_emoji_offsets_are_code_points(client: WiretraceClient, news: NewsGen) -> None:
    """Astral characters before the copied text shift offsets by one each, not by 2 or 4."""
    story = news.article()
    client.index_stories([StoryRecord("e", story)])
    prefix = "🚀🌍📈 " * 30 + "\n\n"
    result = client.match(prefix + story, top_k=1)
    [p, *_] = result.matches[0].passages
    assert (prefix + story)[p.article_start : p.article_end] == story[p.story_start : p.story_end]
    assert p.article_start - p.story_start == len(prefix)


def test_health_and_reflection(server: WiretraceServer) -> None:
    with grpc.insecure_channel(server.address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for name in ("", SERVICE_NAME):
            reply = health.Check(health_pb2.HealthCheckRequest(service=name), timeout=5)
            assert reply == health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)

        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        [reply] = list(stub.ServerReflectionInfo(iter([request]), timeout=5))
        names = {s.name for s in reply.list_services_response.service}
        assert {SERVICE_NAME, "grpc.health.v1.Health"} <= names
        request = reflection_pb2.ServerReflectionRequest(file_containing_symbol=SERVICE_NAME)
        [reply] = list(stub.ServerReflectionInfo(iter([request]), timeout=5))
        assert reply.file_descriptor_response.file_descriptor_proto

    server.stop(grace=0)
    assert server.health.Check(health_pb2.HealthCheckRequest(service=SERVICE_NAME), None) == (  # type: ignore[arg-type]
        health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.NOT_SERVING)
    )


def test_generated_stub_works(server: WiretraceServer) -> None:
    """The committed *_pb2_grpc module is usable as-is by other clients."""
    with grpc.insecure_channel(server.address) as channel:
        stub = syndication_pb2_grpc.SyndicationServiceStub(channel)
        assert stub.GetStats(pb.GetStatsRequest(), timeout=5).story_count == 0


@contextlib.contextmanager
def busy_matchers(server: WiretraceServer) -> Iterator[None]:
    """Every matcher thread busy until the block ends."""
    release = threading.Event()
    matchers = server.servicer._matchers
    started = [threading.Event() for _ in range(matchers._max_workers)]
    for ev in started:
        matchers.submit(lambda ev=ev: (ev.set(), release.wait()))  # type: ignore[misc]
    for ev in started:
        assert ev.wait(10)
    try:
        yield
    finally:
        release.set()


NOTHING_SHARED = "no indexed story shares any passage of its text"


def test_match_waits_for_a_free_matcher_within_its_deadline(server: WiretraceServer, raw: SyndicationStub) -> None:
    """Matches past match_threads wait; one that cannot start before its deadline says so."""
    with busy_matchers(server), pytest.raises(grpc.RpcError) as err:
        raw.Match(pb.MatchRequest(request_id="late", text="some words to match " * 5), timeout=1.0)
    assert err.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    assert "waited for a free matcher" in (err.value.details() or "")
    reply = raw.Match(pb.MatchRequest(request_id="on-time", text="some words to match " * 5), timeout=10)
    assert reply == pb.MatchResponse(
        request_id="on-time", verdict=pb.UNRELATED, original_fraction=1.0, reason=NOTHING_SHARED
    )


def test_match_without_a_deadline_waits_for_a_free_matcher(server: WiretraceServer, raw: SyndicationStub) -> None:
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        with busy_matchers(server):
            reply = pool.submit(raw.Match, pb.MatchRequest(request_id="patient", text="words to match " * 5))
            time.sleep(0.3)
            assert not reply.done()  # waiting for a matcher, not failed
        assert reply.result(timeout=10) == pb.MatchResponse(
            request_id="patient", verdict=pb.UNRELATED, original_fraction=1.0, reason=NOTHING_SHARED
        )


def test_matches_run_on_the_matcher_threads(server: WiretraceServer, raw: SyndicationStub) -> None:
    """Whatever RPC thread takes the call, the match itself runs on the matcher thread (warm caches)."""
    seen: list[str] = []
    original = server.detector.match

    def recording(*args: Any, **kwargs: Any) -> Any:
        seen.append(threading.current_thread().name)
        return original(*args, **kwargs)

    server.detector.match = recording  # type: ignore[method-assign]
    try:
        for i in range(6):
            raw.Match(pb.MatchRequest(request_id=f"r{i}", text="words to match " * 5), timeout=10)
    finally:
        server.detector.match = original  # type: ignore[method-assign]
    assert len(seen) == 6
    assert all(name.startswith("wiretrace-match") for name in seen)


def test_server_builds_the_tokenizer_tables_before_serving(tmp_path: Path) -> None:
    """The Unicode class table costs ~0.3 s to build; a server builds it before it answers anything."""

    batch.unicode_classes.cache_clear()
    srv = WiretraceServer(make_settings(tmp_path / "data"))
    try:
        assert batch.unicode_classes.cache_info().currsize == 1
    finally:
        srv.stop(grace=0)
