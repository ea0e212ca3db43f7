"""Bad input gets an exact status and an actionable message, never INTERNAL/UNKNOWN,
and leaves the server answering with everything stored still there."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from tests.helpers import make_settings, stories
from tests.synth import NewsGen
from wiretrace.client import InvalidArgument, ResourceExhausted, WiretraceClient, WiretraceError
from wiretrace.client.client import SERVICE, MatchQuery, SyndicationStub
from wiretrace.server import WiretraceServer
from wiretrace.types import StoryRecord, Verdict
from wiretrace.v1 import syndication_pb2 as pb

INVALID = grpc.StatusCode.INVALID_ARGUMENT
EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED
MAX_TEXT = 64 * 1024  # conftest.make_settings


@pytest.fixture
def stored(client: WiretraceClient, news: NewsGen) -> list[StoryRecord]:
    wire = stories(news, 4)
    assert client.index_stories(wire).indexed == 4
    return wire


def assert_intact(client: WiretraceClient, wire: list[StoryRecord]) -> None:
    """The server still answers and nothing stored was lost."""
    assert client.stats()[0].stories == len(wire)
    for rec in wire:
        assert client.get_story(rec.story_id) == rec
        assert client.match(rec.body, top_k=1).matches[0].story_id == rec.story_id


@pytest.mark.parametrize(
    ("request_", "code", "message", "field"),
    [
        (pb.MatchRequest(text=""), INVALID, "text: text is empty or only whitespace; send the text to match or index", "text"),
        (pb.MatchRequest(text=" \n\t\u3000 "), INVALID, "text: text is empty or only whitespace; send the text to match or index", "text"),
        (pb.MatchRequest(text="x" * (MAX_TEXT + 1)), EXHAUSTED, f"text: text is {MAX_TEXT + 1} bytes of UTF-8; the limit is {MAX_TEXT} (server setting max_text_bytes): split it or raise the limit", "text"),
        # 16,385 code points but 65,540 bytes: the limit is in UTF-8 bytes.
        (pb.MatchRequest(text="🚀" * (MAX_TEXT // 4 + 1)), EXHAUSTED, f"text: text is {MAX_TEXT + 4} bytes of UTF-8; the limit is {MAX_TEXT} (server setting max_text_bytes): split it or raise the limit", "text"),
        (pb.MatchRequest(text="abc\x00\x01\x02def"), INVALID, "text: text contains a NUL character (U+0000) at offset 3: binary data is not text", "text"),
        (pb.MatchRequest(text="words", top_k=-1), INVALID, "top_k: is -1; it must be between 0 (server default) and 100 (server setting max_top_k)", "top_k"),
        (pb.MatchRequest(text="words", top_k=101), INVALID, "top_k: is 101; it must be between 0 (server default) and 100 (server setting max_top_k)", "top_k"),
        (pb.MatchRequest(text="words", request_id="r" * 257), INVALID, "request_id: is 257 characters long; the limit is 256 (server setting max_id_length)", "request_id"),
        (pb.MatchRequest(text="words", request_id="a\nb"), INVALID, "request_id: contains non-printable character U+000A (control character) at position 1; ids must be printable", "request_id"),
    ],
)  # fmt: skip
def test_bad_match_requests(
    raw: SyndicationStub, client: WiretraceClient, stored: list[StoryRecord], request_: pb.MatchRequest, code: grpc.StatusCode,
    message: str, field: str,
) -> None:  # fmt: skip
    with pytest.raises(grpc.RpcError) as err:
        raw.Match(request_, timeout=10)
    assert err.value.code() == code
    assert err.value.details() == message
    # The same through the typed client, with the BadRequest detail decoded.
    with pytest.raises(WiretraceError) as typed:
        client.match(request_.text, top_k=request_.top_k, request_id=request_.request_id)
    assert type(typed.value) is (InvalidArgument if code == INVALID else ResourceExhausted)
    assert typed.value.code == code and typed.value.message == message
    [(violation_field, description)] = typed.value.details
    assert violation_field == field and message.endswith(description)
    assert_intact(client, stored)


def test_control_characters_in_text_are_matched_not_refused(client: WiretraceClient, stored: list[StoryRecord]) -> None:
    """Stray control characters happen in real copy (Reuters bodies end in \\x03): accepted."""
    noisy = "\x01\x02\x1b[0m\x7f\x03 " + stored[2].body + "\x03"
    assert client.match(noisy, top_k=1).matches[0].story_id == "s2"
    junk = bytes(range(1, 32)).decode("ascii") * 10
    assert client.match(junk).verdict == Verdict.UNRELATED
    assert_intact(client, stored)


def test_undecodable_requests(server: WiretraceServer, client: WiretraceClient, stored: list[StoryRecord]) -> None:
    """Bytes that are not a MatchRequest at all, or a string field that is not UTF-8."""
    with grpc.insecure_channel(server.address) as channel:
        send = channel.unary_unary(SERVICE + "Match", None, None)
        bad_utf8 = b"\x1a\x04\xff\xfe\x80a"  # field 3 (text), 4 bytes of invalid UTF-8
        for payload in (bad_utf8, b"\xff\xff\xff\xff\xff\xff\xff", b"\x0a\x10short"):
            with pytest.raises(grpc.RpcError) as err:
                send(payload, timeout=10)
            assert err.value.code() == INVALID, payload
            assert "request is not a valid wiretrace.v1.MatchRequest" in (err.value.details() or "")
        # A story stream where one message does not parse: that one is rejected, the rest indexed.
        index = channel.stream_unary(SERVICE + "IndexStories", None, pb.IndexStoriesResponse.FromString)
        good = pb.Story(story_id="ok", body=stored[0].body + " more").SerializeToString()
        reply = index(iter([good, b"\x0a\x02\xc3\x28\x1a\x01x"]), timeout=10)
        assert reply.indexed == 1
        [rejected] = reply.rejected
        assert (rejected.story_id, rejected.position) == ("", 1)
        assert rejected.reason.startswith("not a valid Story")
        # The same in batches: a batch that does not parse is one rejection, the stream goes on.
        batches = channel.stream_unary(SERVICE + "IndexStoryBatches", None, pb.IndexStoriesResponse.FromString)
        two = pb.StoryBatch(stories=[pb.Story(story_id="ok", body=stored[0].body + " more")] * 2)
        reply = batches(iter([two.SerializeToString(), b"\x0a\x02\xc3\x28", two.SerializeToString()]), timeout=10)
        assert reply.indexed == 4
        [rejected] = reply.rejected
        assert (rejected.story_id, rejected.position) == ("", 2)
        assert rejected.reason.startswith("not a valid StoryBatch")
    client.delete(["ok"])
    assert_intact(client, stored)


def test_message_over_grpc_limit(raw: SyndicationStub, client: WiretraceClient, stored: list[StoryRecord]) -> None:
    with pytest.raises(grpc.RpcError) as err:
        raw.Match(pb.MatchRequest(text="y " * (1024 * 1024)), timeout=10)
    assert err.value.code() == EXHAUSTED
    assert_intact(client, stored)


@pytest.mark.parametrize(
    ("story_id", "message"),
    [
        ("", "story_id: must not be empty"),
        ("   ", "story_id: must not be only whitespace"),
        ("x" * 257, "story_id: is 257 characters long; the limit is 256 (server setting max_id_length)"),
        ("tab\there", "story_id: contains non-printable character U+0009 (control character) at position 3; ids must be printable"),
        ("rtl\u200fmark", "story_id: contains non-printable character U+200F (RIGHT-TO-LEFT MARK) at position 3; ids must be printable"),
    ],
)  # fmt: skip
def test_bad_ids_for_get_and_delete(
    raw: SyndicationStub, client: WiretraceClient, stored: list[StoryRecord], story_id: str, message: str
) -> None:
    with pytest.raises(grpc.RpcError) as err:
        raw.GetStory(pb.GetStoryRequest(story_id=story_id), timeout=10)
    assert (err.value.code(), err.value.details()) == (INVALID, message)
    with pytest.raises(grpc.RpcError) as err:
        raw.DeleteStories(pb.DeleteStoriesRequest(story_ids=["s0", story_id]), timeout=10)
    assert (err.value.code(), err.value.details()) == (INVALID, message.replace("story_id:", "story_ids[1]:"))
    assert_intact(client, stored)  # s0 was not deleted: the request failed as a whole


def test_index_stream_rejects_bad_stories_and_keeps_the_rest(
    raw: SyndicationStub, client: WiretraceClient, stored: list[StoryRecord], news: NewsGen
) -> None:
    good = [news.article() for _ in range(3)]
    stream = [
        pb.Story(story_id="g0", body=good[0]),
        pb.Story(story_id="", body="text"),
        pb.Story(story_id="ctl\x07", body="text"),
        pb.Story(story_id="g1", body=good[1]),
        pb.Story(story_id="blank", body=" \n "),
        pb.Story(story_id="huge", body="z" * (MAX_TEXT + 1)),
        pb.Story(story_id="nul", body="a\x00b"),
        pb.Story(story_id="id" * 200, body="text"),
        pb.Story(story_id="g2", body=good[2]),
    ]
    reply = raw.IndexStories(iter(stream), timeout=30)
    # The same stories in batches of 2, 4 and 3: the same answer, positions counting stories.
    batches = [pb.StoryBatch(stories=stream[a:b]) for a, b in ((0, 2), (2, 6), (6, 9))]
    assert raw.IndexStoryBatches(iter(batches), timeout=30) == reply
    assert reply == pb.IndexStoriesResponse(
        indexed=3,
        rejected=[
            pb.RejectedStory(story_id="", reason="story_id must not be empty", position=1),
            pb.RejectedStory(
                story_id="ctl\x07",
                reason="story_id contains non-printable character U+0007 (control character) at position 3; "
                "ids must be printable",
                position=2,
            ),
            pb.RejectedStory(
                story_id="blank",
                reason="body is empty or only whitespace; send the text to match or index",
                position=4,
            ),
            pb.RejectedStory(
                story_id="huge",
                reason=f"body is {MAX_TEXT + 1} bytes of UTF-8; the limit is {MAX_TEXT} "
                "(server setting max_text_bytes): split it or raise the limit",
                position=5,
            ),
            pb.RejectedStory(
                story_id="nul",
                reason="body contains a NUL character (U+0000) at offset 1: binary data is not text",
                position=6,
            ),
            pb.RejectedStory(
                story_id="id" * 200,
                reason="story_id is 400 characters long; the limit is 256 (server setting max_id_length)",
                position=7,
            ),
        ],
    )
    for i, body in enumerate(good):
        assert client.match(body, top_k=1).matches[0].story_id == f"g{i}"
    client.delete(["g0", "g1", "g2"])
    assert_intact(client, stored)


def test_index_stream_over_limit(tmp_path: Path, news: NewsGen) -> None:
    settings = make_settings(tmp_path / "d", max_stories_per_stream=5, index_batch_size=2)
    with WiretraceServer(settings) as srv, WiretraceClient(srv.address) as client:
        wire = stories(news, 8)
        with pytest.raises(ResourceExhausted) as err:
            client.index_stories(wire)
        assert err.value.message == (
            "stream carries more than 5 stories (server setting max_stories_per_stream); the first ones were "
            "processed (5 indexed, 0 rejected): send the rest in another stream"
        )
        # What came before the limit is durable and matchable; the server goes on.
        assert client.stats()[0].stories == 5
        assert client.match(wire[4].body, top_k=1).matches[0].story_id == "s4"
        assert client.index_stories(wire[5:]).indexed == 3


def test_match_stream_stops_at_bad_request(client: WiretraceClient, stored: list[StoryRecord]) -> None:
    queries = [MatchQuery(stored[0].body, request_id="a"), MatchQuery(stored[1].body, request_id="b")]
    queries += [MatchQuery("   ", request_id="bad-one"), MatchQuery(stored[2].body, request_id="c")]
    got: list[str] = []
    with pytest.raises(InvalidArgument) as err:
        for rid, _ in client.match_stream(queries):
            got.append(rid)
    assert got == ["a", "b"]
    assert err.value.message == (
        "request 2 (request_id 'bad-one'): text: text is empty or only whitespace; send the text to match or index"
    )
    assert err.value.details == [("text", "text is empty or only whitespace; send the text to match or index")]
    assert_intact(client, stored)


def test_client_input_errors_surface_as_themselves(client: WiretraceClient, stored: list[StoryRecord]) -> None:
    """An exception raised by the caller's own iterator is not disguised as an RPC error."""

    def broken() -> Iterator[StoryRecord]:
        yield StoryRecord("fine", "some words here")
        raise ValueError("line 2: not JSON")

    with pytest.raises(ValueError, match="line 2: not JSON"):
        client.index_stories(broken())
    client.delete(["fine"])  # committed or not, depending on when the stream was cancelled
    assert_intact(client, stored)
