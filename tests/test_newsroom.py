"""Newsroom operations through the gRPC API: time window and source filters, editions,
retention (--retain-days) and GetStats' publication range, on the embedded store and Redis."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import grpc
import numpy as np
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from tests.helpers import make_settings, serve_process, wait_for
from tests.redis_server import REDIS_SERVER, SKIP_REASON, RedisServer
from tests.synth import NewsGen
from wiretrace.client import InvalidArgument, MatchQuery, NotFound, WiretraceClient, story_filter
from wiretrace.client.client import SyndicationStub
from wiretrace.config import Settings
from wiretrace.engine import Detector
from wiretrace.filters import StoryAttributes
from wiretrace.redis_backend import open_redis_backend
from wiretrace.server import WiretraceServer
from wiretrace.types import NS_PER_DAY, MatchResult, StoryFilter, StoryRecord, Verdict
from wiretrace.v1 import syndication_pb2 as pb

NOW = time.time_ns()
DAY = NS_PER_DAY


def ts(ns: int) -> Timestamp:
    seconds, nanos = divmod(ns, 1_000_000_000)
    return Timestamp(seconds=seconds, nanos=nanos)


@pytest.fixture(scope="module")
def family() -> dict[str, StoryRecord]:
    """One story as two agencies carried it on two dates, an undated re-send, and others."""
    gen = NewsGen(seed=23)
    body = gen.article(300, 400)
    update = body + "\n\n" + gen.sentence() + " " + gen.sentence()  # a later edition adds a paragraph
    others = [
        StoryRecord(f"other-{i}", gen.article(), source="AP", published_at_ns=NOW - (i + 1) * DAY) for i in range(6)
    ]
    return {
        r.story_id: r
        for r in [
            StoryRecord("ap-1", body, "Quake hits the coast", "AP", NOW - 10 * DAY),
            StoryRecord("afp-1", update, "Quake hits coast, toll rises", "AFP", NOW - 2 * DAY),
            StoryRecord("resend-1", body, "Quake hits the coast (re-send)", "AP"),
            *others,
        ]
    }


@pytest.fixture
def newsroom(client: WiretraceClient, family: dict[str, StoryRecord]) -> WiretraceClient:
    assert client.index_stories(family.values()).indexed == len(family)
    return client


def article_of(family: dict[str, StoryRecord]) -> str:
    """A website's copy of the story: its first paragraphs."""
    return "Our correspondent reports.\n\n" + "\n\n".join(family["ap-1"].body.split("\n\n")[:3])


def test_editions_are_named_once_with_their_source_and_date(
    raw: SyndicationStub, newsroom: WiretraceClient, family: dict[str, StoryRecord]
) -> None:
    resp = raw.Match(pb.MatchRequest(text=article_of(family)), timeout=30)
    [top] = resp.matches  # the three copies are one story with two editions, not three sources
    assert (top.story_id, top.source, top.published_at, top.headline) == (
        "ap-1",
        "AP",
        ts(NOW - 10 * DAY),
        "Quake hits the coast",
    )
    assert sorted(top.editions) == ["afp-1", "resend-1"]
    assert resp.verdict == pb.PARTIAL or resp.verdict == pb.DERIVED
    assert top.passages and resp.candidates_checked >= 3


Expected = tuple[str, str, int, list[str]]  # story_id, source, published_at_ns, editions


def match_filtered(client: WiretraceClient, text: str, flt: StoryFilter) -> MatchResult:
    """Client.match with the filter's fields as its keyword arguments (as a caller passes them)."""
    return client.match(
        text,
        published_after=flt.published_after_ns,
        published_before=flt.published_before_ns,
        sources=flt.sources,
        exclude_sources=flt.exclude_sources,
    )


AP: Expected = ("ap-1", "AP", NOW - 10 * DAY, [])
AFP: Expected = ("afp-1", "AFP", NOW - 2 * DAY, [])
AP_AND_RESEND: Expected = ("ap-1", "AP", NOW - 10 * DAY, ["resend-1"])


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        # The window picks the dated copy inside it; the undated re-send counts only without one.
        (story_filter(published_before=NOW - 5 * DAY), AP),
        (story_filter(published_after=NOW - 5 * DAY), AFP),
        (story_filter(NOW - 3 * DAY, NOW - 1 * DAY), AFP),
        (story_filter(published_after=NOW - 2 * DAY, published_before=NOW - 2 * DAY), AFP),  # bounds are inclusive
        (story_filter(sources=["AFP"]), AFP),
        (story_filter(exclude_sources=["AP"]), AFP),
        (story_filter(sources=["AP"]), AP_AND_RESEND),
        (story_filter(sources=["AP", "AFP"], exclude_sources=["AFP"]), AP_AND_RESEND),
        (story_filter(datetime.fromtimestamp((NOW - 11 * DAY) / 1e9, UTC), sources=["AP"]), AP),
    ],
)
def test_each_filter_picks_the_right_copy(
    newsroom: WiretraceClient,
    family: dict[str, StoryRecord],
    flt: StoryFilter,
    expected: Expected,
) -> None:
    res = match_filtered(newsroom, article_of(family), flt)
    [top] = res.matches
    assert (top.story_id, top.source, top.published_at_ns, sorted(top.editions)) == expected
    # MatchStream carries the same filters.
    [(_, streamed)] = list(newsroom.match_stream([MatchQuery(article_of(family), filter=flt)]))
    assert streamed == res


@pytest.mark.parametrize(
    "flt",
    [
        story_filter(sources=["UPI"]),  # no story from that source
        story_filter(exclude_sources=["AP", "AFP"]),
        story_filter(published_after=NOW - 1 * DAY),  # every copy is older
        story_filter(published_before=NOW - 20 * DAY),
    ],
)
def test_a_filter_that_admits_no_copy_finds_nothing(
    newsroom: WiretraceClient, family: dict[str, StoryRecord], flt: StoryFilter
) -> None:
    res = match_filtered(newsroom, article_of(family), flt)
    assert res.verdict == Verdict.UNRELATED and res.matches == ()


def test_filtered_stories_take_no_candidate_slot(tmp_path: Path, news: NewsGen) -> None:
    """With one candidate slot, ten earlier copies from another outlet would take it; filtered
    out before ranking, they leave it to the wire story."""
    settings = make_settings(tmp_path / "data", max_candidates=1, topic_candidates=0, term_candidates=0)
    body = news.article(300, 400)
    copies = [StoryRecord(f"outlet-{i}", body, source="OUTLET", published_at_ns=NOW - DAY) for i in range(10)]
    wire = StoryRecord("wire-1", body, source="WIRE", published_at_ns=NOW - 2 * DAY)
    with WiretraceServer(settings) as srv, WiretraceClient(srv.address, timeout=30) as c:
        assert c.index_stories([*copies, wire]).indexed == 11  # the copies get the lower numbers
        res = c.match(body)
        assert res.candidates_checked == 1 and res.matches[0].story_id.startswith("outlet-")
        for kw in (
            {"exclude_sources": ["OUTLET"]},
            {"sources": ["WIRE"]},
            {"published_before": NOW - 36 * 3600 * 10**9},
        ):
            res = c.match(body, **kw)
            assert res.candidates_checked == 1
            assert [m.story_id for m in res.matches] == ["wire-1"]
            assert res.verdict == Verdict.VERBATIM


def test_fewer_sources_shown_are_the_first_of_more_with_the_same_editions(tmp_path: Path, news: NewsGen) -> None:
    """Editions are looked for only under the sources shown; those shown keep all of theirs."""
    bodies = [news.article(200, 260) for _ in range(3)]
    stories = [StoryRecord(f"wire-{i}", b) for i, b in enumerate(bodies)]
    stories += [StoryRecord(f"resend-{i}", b) for i, b in enumerate(bodies)]
    stories += [StoryRecord(f"other-{i}", news.article()) for i in range(4)]
    article = "\n\n".join(b.split("\n\n")[0] + "\n\n" + b.split("\n\n")[1] for b in bodies)
    with WiretraceServer(make_settings(tmp_path / "data")) as srv, WiretraceClient(srv.address, timeout=30) as c:
        assert c.index_stories(stories).indexed == len(stories)
        shown = [(m.story_id, sorted(m.editions)) for m in c.match(article, top_k=3).matches]
        assert len(shown) == 3 and all(len(eds) == 1 for _, eds in shown)  # each source with its re-send
        for k in (1, 2):
            assert [(m.story_id, sorted(m.editions)) for m in c.match(article, top_k=k).matches] == shown[:k]


def test_attribute_arrays_apply_the_filter_rule_of_one_story() -> None:
    """The vectorised mask (hits with repeats, numbers never set) agrees with StoryFilter.admits."""
    rng = random.Random(5)
    attrs = StoryAttributes()
    names = ["AP", "AFP", "", "Reuters", "APP"]
    stories = {
        n: (rng.choice(names), None if rng.random() < 0.2 else NOW - rng.randrange(30) * DAY)
        for n in rng.sample(range(1, 5000), 800)
    }
    numbers = sorted(stories)
    attrs.set(numbers, [stories[n][0] for n in numbers], [stories[n][1] for n in numbers])
    hits = np.array([rng.randrange(1, 6000) for _ in range(3000)], dtype=np.uint32)  # some never set
    for _ in range(40):
        flt = story_filter(
            NOW - rng.randrange(40) * DAY if rng.random() < 0.5 else None,
            NOW - rng.randrange(20) * DAY if rng.random() < 0.5 else None,
            rng.sample([*names, "UPI"], rng.randrange(3)),
            rng.sample(names, rng.randrange(2)),
        )
        want = [h for h in hits.tolist() if h in stories and flt.admits(*stories[h])] if flt.active else hits.tolist()
        assert attrs.admit(hits, flt).tolist() == want


def _violation(err: grpc.RpcError) -> tuple[str, str]:
    status = rpc_status.from_call(err)  # type: ignore[arg-type]
    assert status is not None
    detail = error_details_pb2.BadRequest()
    [packed] = status.details
    assert packed.Unpack(detail)
    [v] = detail.field_violations
    return v.field, v.description


@pytest.mark.parametrize(
    ("request_", "field", "message"),
    [
        (pb.MatchRequest(text="words", published_after=ts(NOW), published_before=ts(NOW - DAY)), "published_after",
         "published_after: is later than published_before; the window would hold no story"),
        (pb.MatchRequest(text="words", published_before=Timestamp(seconds=253_402_300_799)), "published_before",
         "published_before: seconds=253402300799 nanos=0 is out of range: times must lie between "
         "1677-09-21T00:12:44Z and 2262-04-11T23:47:15Z (nanos 0..999999999)"),
        (pb.MatchRequest(text="words", published_after=Timestamp(seconds=1, nanos=-1)), "published_after",
         "published_after: seconds=1 nanos=-1 is out of range: times must lie between "
         "1677-09-21T00:12:44Z and 2262-04-11T23:47:15Z (nanos 0..999999999)"),
        (pb.MatchRequest(text="words", sources=["AP", ""]), "sources[1]",
         "sources[1]: is 0 characters long; a source name has 1 to 256 (server setting max_id_length)"),
        (pb.MatchRequest(text="words", exclude_sources=["x" * 257]), "exclude_sources[0]",
         "exclude_sources[0]: is 257 characters long; a source name has 1 to 256 (server setting max_id_length)"),
    ],
)  # fmt: skip
def test_bad_filters_are_invalid_argument(
    raw: SyndicationStub, newsroom: WiretraceClient, request_: pb.MatchRequest, field: str, message: str
) -> None:
    with pytest.raises(grpc.RpcError) as err:
        raw.Match(request_, timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.details() == message
    assert _violation(err.value) == (field, message.split(": ", 1)[1])
    # A stream stops at the bad request, naming it.
    with pytest.raises(grpc.RpcError) as streamed:
        list(raw.MatchStream(iter([pb.MatchRequest(text="words", request_id="ok"), request_]), timeout=10))
    assert streamed.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert streamed.value.details() == "request 1 (request_id ''): " + message


def test_a_filter_field_sent_with_the_wrong_wire_type_is_invalid(server: WiretraceServer) -> None:
    """Sent as a number, published_after would be an unknown field and the window silently ignored."""
    body = pb.MatchRequest(text="words").SerializeToString() + bytes([5 << 3 | 0, 7])
    with grpc.insecure_channel(server.address) as channel:
        call = channel.unary_unary(
            "/wiretrace.v1.SyndicationService/Match", request_serializer=bytes, response_deserializer=bytes
        )
        with pytest.raises(grpc.RpcError) as err:
            call(body, timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _violation(err.value) == (
        "published_after",
        "field 5 was sent as a varint value, but it is a google.protobuf.Timestamp: "
        "regenerate the client from the current wiretrace.v1 proto",
    )


def test_stories_with_unusable_times_are_rejected_not_stored_undated(raw: SyndicationStub) -> None:
    body = "A story with a date that cannot be kept, in a few words of text."
    far = pb.Story(story_id="far", body=body, published_at=Timestamp(seconds=253_402_300_799))
    as_number = pb.Story(story_id="number", body=body).SerializeToString() + bytes([5 << 3 | 0, 7])
    stream = [far, pb.Story.FromString(as_number), pb.Story(story_id="ok", body=body, published_at=ts(NOW))]
    resp = raw.IndexStories(iter(stream), timeout=30)
    assert resp == pb.IndexStoriesResponse(
        indexed=1,
        rejected=[
            pb.RejectedStory(
                story_id="far",
                reason="published_at: seconds=253402300799 nanos=0 is out of range: times must lie between "
                "1677-09-21T00:12:44Z and 2262-04-11T23:47:15Z (nanos 0..999999999)",
                position=0,
            ),
            pb.RejectedStory(
                story_id="number",
                reason="published_at: field 5 was sent as a varint value, but it is a google.protobuf.Timestamp: "
                "regenerate the client from the current wiretrace.v1 proto",
                position=1,
            ),
        ],
    )


def test_the_python_client_reports_a_bad_window(newsroom: WiretraceClient) -> None:
    with pytest.raises(InvalidArgument) as err:
        newsroom.match("words", published_after=NOW, published_before=NOW - 1)
    assert err.value.details == [("published_after", "is later than published_before; the window would hold no story")]


def test_stats_report_the_publication_range(raw: SyndicationStub, newsroom: WiretraceClient) -> None:
    stats = raw.GetStats(pb.GetStatsRequest())
    assert (stats.oldest_published_at, stats.newest_published_at) == (ts(NOW - 10 * DAY), ts(NOW - 1 * DAY))
    typed, _ = newsroom.stats()
    assert (typed.oldest_published_ns, typed.newest_published_ns) == (NOW - 10 * DAY, NOW - DAY)


def test_stats_without_dates_leave_the_range_unset(raw: SyndicationStub, client: WiretraceClient) -> None:
    client.index_stories([StoryRecord("undated", "Some text of a story without a date at all here.")])
    stats = raw.GetStats(pb.GetStatsRequest())
    assert not stats.HasField("oldest_published_at") and not stats.HasField("newest_published_at")


# -- retention -------------------------------------------------------------------


def _gone(client: WiretraceClient, story_id: str) -> bool:
    try:
        client.get_story(story_id)
    except NotFound:
        return True
    return False


def test_retain_days_deletes_old_stories_in_the_background_and_reclaims_space(tmp_path: Path, news: NewsGen) -> None:
    data = tmp_path / "data"
    old = [StoryRecord(f"old-{i}", news.article(), source="AP", published_at_ns=NOW - 100 * DAY) for i in range(300)]
    keep = [
        StoryRecord("recent", news.article(), source="AP", published_at_ns=NOW - 10 * DAY),
        StoryRecord("undated", news.article(), source="AP"),
    ]
    with serve_process(data) as (_, address), WiretraceClient(address, timeout=30) as c:
        c.wait_ready()
        c.index_stories([*old, *keep])
        full, _ = c.stats()
        assert full.stories == 302 and full.oldest_published_ns == NOW - 100 * DAY
    # Restarted with a retention period: the first pass runs at start.
    args = ("--retain-days", "30", "--retain-check-seconds", "1")
    with serve_process(data, *args) as (_, address), WiretraceClient(address, timeout=30) as c:
        c.wait_ready()
        wait_for(lambda: c.stats()[0].stories == 2, timeout=60)
        assert all(_gone(c, r.story_id) for r in old)
        assert c.match(old[7].body).verdict == Verdict.UNRELATED  # gone from the index too
        assert c.match(keep[0].body).matches[0].story_id == "recent"
        assert c.get_story("undated") == keep[1]
        trimmed, _ = c.stats()
        assert (trimmed.oldest_published_ns, trimmed.newest_published_ns) == (NOW - 10 * DAY, NOW - 10 * DAY)
        assert trimmed.disk_bytes < full.disk_bytes / 4, (trimmed.disk_bytes, full.disk_bytes)
        # A story already 100 days old when it arrives goes at a later pass.
        late = StoryRecord("late", news.article(), source="AP", published_at_ns=NOW - 100 * DAY)
        assert c.index_stories([late]).indexed == 1
        took = wait_for(lambda: _gone(c, "late"), timeout=60)
        assert took < 60
        assert c.match(late.body).verdict == Verdict.UNRELATED


def test_retain_days_must_not_be_negative(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="--retain-days -1"):
        WiretraceServer(make_settings(tmp_path / "data", retain_days=-1))


# -- Redis ---------------------------------------------------------------------------


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    if REDIS_SERVER is None:
        pytest.skip(SKIP_REASON)
    srv = RedisServer(tmp_path / "redis").start()
    yield srv
    srv.stop()


def test_filters_and_retention_on_redis(redis_server: RedisServer, family: dict[str, StoryRecord]) -> None:
    settings = Settings.load({"store": redis_server.url}, environ={})
    det = Detector.open(settings)
    other = Detector.open(settings)  # a replica: learns the stories' attributes from Redis
    try:
        det.upsert(list(family.values()))
        article = article_of(family)
        for d in (det, other):
            [top] = d.match(article).matches
            assert (top.story_id, sorted(top.editions)) == ("ap-1", ["afp-1", "resend-1"])
            [top] = d.match(article, story_filter=StoryFilter(published_after_ns=NOW - 5 * DAY)).matches
            assert (top.story_id, top.source, top.published_at_ns, top.editions) == ("afp-1", "AFP", NOW - 2 * DAY, ())
            [top] = d.match(article, story_filter=StoryFilter(exclude_sources=frozenset({"AFP"}))).matches
            assert (top.story_id, top.editions) == ("ap-1", ("resend-1",))
        stats = other.stats()
        assert (stats.oldest_published_ns, stats.newest_published_ns) == (NOW - 10 * DAY, NOW - DAY)
        keys_before = det.backend.client.dbsize()  # type: ignore[attr-defined]
        assert det.expire(NOW - 5 * DAY) == 2  # ap-1 (10 days old) and other-5 (6 days); other-4 is 5 days old
        assert det.get("ap-1") is None and det.get("afp-1") is not None and det.get("resend-1") is not None
        [top] = other.match(article).matches
        assert (top.story_id, top.editions) == ("resend-1", ("afp-1",))  # the undated re-send is kept
        stats = other.stats()
        assert (stats.stories, stats.oldest_published_ns) == (len(family) - 2, NOW - 5 * DAY)
        # Their records and bucket entries are gone, not only hidden.
        assert det.backend.client.dbsize() < keys_before  # type: ignore[attr-defined]
        assert det.expire(NOW - 5 * DAY) == 0
    finally:
        det.close()
        other.close()


def test_redis_store_written_before_the_publication_index_gets_one(
    redis_server: RedisServer, family: dict[str, StoryRecord]
) -> None:
    url = redis_server.url
    fp = Settings().index.fingerprint()
    backend = open_redis_backend(url, fp)
    det = Detector(Settings(), backend)
    det.upsert(list(family.values()))
    backend.client.delete(b"wt:pub")  # as a store written by the previous version
    backend.client.hdel(b"wt:meta", "pub_index")
    det.close()
    reopened = Detector(Settings(), open_redis_backend(url, fp))
    try:
        assert reopened.stats().oldest_published_ns == NOW - 10 * DAY
        assert reopened.expire(NOW - 5 * DAY) == 2
    finally:
        reopened.close()
