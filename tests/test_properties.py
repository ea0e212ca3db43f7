"""Property tests over the API: whatever text, ids and top_k a caller sends, the answer is
OK with a well-formed response or a clean INVALID_ARGUMENT/RESOURCE_EXHAUSTED with a
BadRequest detail - never INTERNAL or UNKNOWN. One server per module (hypothesis runs
many examples); the examples are bounded so the module stays a few seconds long."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import make_settings
from tests.synth import NewsGen
from wiretrace.client import WiretraceClient
from wiretrace.client.client import SERVICE, SyndicationStub
from wiretrace.server import WiretraceServer
from wiretrace.types import Verdict
from wiretrace.v1 import syndication_pb2 as pb

CLEAN = {grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.RESOURCE_EXHAUSTED}
MAX_TEXT = 64 * 1024  # conftest.make_settings
DEFAULT_TOP_K = 5
EXAMPLES = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Pieces real copy and hostile callers produce: marks, joiners, controls, emoji, other scripts.
ODD = [
    "\u200f", "\u200e", "\u202e", "\u200d", "\u0640", "\u0301", "\ufeff", "\x03", "\x1b[0m", "\x7f", "\r\n",
    "\u2028", "🚀", "👩‍👩‍👧", "🇵🇰", "۔", "政府", "Юникод", "پاکستان", "\U0010ffff", "\ufffd", "(Reuters) -",
]  # fmt: skip
odd_text = st.lists(st.one_of(st.sampled_from(ODD), st.text(max_size=12)), max_size=40).map(" ".join)
any_text = st.one_of(st.text(max_size=300), odd_text)
top_ks = st.one_of(st.integers(-5, 120), st.integers(-(2**31), 2**31 - 1))
ids = st.one_of(st.text(max_size=20), st.text(max_size=300), st.sampled_from(ODD), st.just(""))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[WiretraceServer, dict[str, str]]]:
    """A server holding a few stories, shared by the examples of this module."""
    srv = WiretraceServer(make_settings(tmp_path_factory.mktemp("props") / "data")).start()
    gen = NewsGen(seed=5)
    bodies = {f"p{i}": gen.article(60, 160) for i in range(6)}
    with WiretraceClient(srv.address) as client:
        client.index_stories([{"story_id": k, "body": v} for k, v in bodies.items()])
    yield srv, bodies
    srv.stop(grace=0)


@pytest.fixture(scope="module")
def stub(world: tuple[WiretraceServer, dict[str, str]]) -> Iterator[SyndicationStub]:
    with grpc.insecure_channel(world[0].address) as channel:
        yield SyndicationStub(channel)


def assert_clean_error(err: grpc.RpcError) -> None:
    """A rejection a caller can act on: an expected code, a message, a BadRequest naming a field."""
    assert err.code() in CLEAN - {grpc.StatusCode.OK}, (err.code(), err.details())
    assert err.details()
    status = rpc_status.from_call(err)  # type: ignore[arg-type]
    if status is not None and status.details:
        bad = error_details_pb2.BadRequest()
        assert status.details[0].Unpack(bad)
        assert bad.field_violations and all(v.field and v.description for v in bad.field_violations)


def assert_well_formed(req: pb.MatchRequest, resp: pb.MatchResponse, bodies: dict[str, str]) -> None:
    assert resp.request_id == req.request_id
    assert resp.verdict in {v.value for v in Verdict}
    assert 0.0 <= resp.original_fraction <= 1.0
    assert len(resp.matches) <= (req.top_k or DEFAULT_TOP_K)
    assert (resp.verdict == pb.UNRELATED) == (not resp.matches)
    for m in resp.matches:
        body = bodies[m.story_id]
        assert m.verdict in {v.value for v in Verdict} - {pb.UNRELATED}
        for score in (m.containment, m.coverage, m.jaccard):
            assert 0.0 <= score <= 1.0 + 1e-9
        for p in m.passages:
            assert 0 <= p.article_start < p.article_end <= len(req.text)
            assert 0 <= p.story_start < p.story_end <= len(body)
            assert 0.0 < p.similarity <= 1.0 + 1e-9


def _splice(body: str, junk: str, at: float) -> str:
    i = int(len(body) * at)
    return body[:i] + junk + body[i:]


@EXAMPLES
@given(
    text=st.one_of(any_text, st.tuples(st.integers(0, 5), any_text, st.floats(0, 1)).map(lambda t: t)),
    top_k=top_ks,
    request_id=ids,
)
def test_match_never_fails_uncleanly(
    stub: SyndicationStub,
    world: tuple[WiretraceServer, dict[str, str]],
    text: str | tuple[int, str, float],
    top_k: int,
    request_id: str,
) -> None:
    bodies = world[1]
    if isinstance(text, tuple):  # a stored story with junk spliced in: exercises passages and offsets
        n, junk, at = text
        text = _splice(bodies[f"p{n}"], junk, at)
    req = pb.MatchRequest(text=text, top_k=top_k, request_id=request_id)
    try:
        resp = stub.Match(req, timeout=30)
    except grpc.RpcError as err:
        assert_clean_error(err)
        return
    assert_well_formed(req, resp, bodies)


@EXAMPLES
@given(text=st.text(alphabet=st.one_of(st.characters(), st.integers(0xD800, 0xDFFF).map(chr)), max_size=80))
def test_text_bytes_with_lone_surrogates(
    world: tuple[WiretraceServer, dict[str, str]], stub: SyndicationStub, text: str
) -> None:
    """protobuf will not encode a lone surrogate, but a hand-made message can carry its bytes."""
    raw = text.encode("utf-8", "surrogatepass")
    payload = b"\x1a" + _varint(len(raw)) + raw  # field 3 (text), length-delimited
    with grpc.insecure_channel(world[0].address) as channel:
        send = channel.unary_unary(SERVICE + "Match", None, pb.MatchResponse.FromString)
        try:
            resp = send(payload, timeout=30)
        except grpc.RpcError as err:
            assert_clean_error(err)
            if any(0xD800 <= ord(c) <= 0xDFFF for c in text):
                assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
                assert "request is not a valid wiretrace.v1.MatchRequest" in (err.details() or "")
            return
    assert not any(0xD800 <= ord(c) <= 0xDFFF for c in text)
    assert_well_formed(pb.MatchRequest(text=text), resp, world[1])


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


@EXAMPLES
@given(batch=st.lists(st.tuples(ids, any_text), min_size=1, max_size=6))
def test_index_stream_answers_every_story(
    world: tuple[WiretraceServer, dict[str, str]], stub: SyndicationStub, batch: list[tuple[str, str]]
) -> None:
    """Every story sent is either indexed (and then readable as sent) or in `rejected` with its position."""
    msgs = [pb.Story(story_id="fz-" + sid if sid else "", body=body) for sid, body in batch]
    try:
        resp = stub.IndexStories(iter(msgs), timeout=30)
    except grpc.RpcError as err:
        assert_clean_error(err)
        return
    rejected = {r.position: r for r in resp.rejected}
    assert resp.indexed + len(rejected) == len(msgs)
    assert all(r.reason and r.story_id == msgs[r.position].story_id for r in resp.rejected)
    last = {m.story_id: m for i, m in enumerate(msgs) if i not in rejected}  # a re-sent id keeps the last
    for sid, m in last.items():
        assert stub.GetStory(pb.GetStoryRequest(story_id=sid), timeout=30).body == m.body
    if last:
        assert stub.DeleteStories(pb.DeleteStoriesRequest(story_ids=list(last)), timeout=30).deleted == len(last)


@EXAMPLES
@given(story_id=ids)
def test_get_story_with_odd_ids(stub: SyndicationStub, story_id: str) -> None:
    try:
        stub.GetStory(pb.GetStoryRequest(story_id=story_id), timeout=30)
    except grpc.RpcError as err:
        if err.code() != grpc.StatusCode.NOT_FOUND:
            assert_clean_error(err)


# -- degenerate text --------------------------------------------------------------


def test_degenerate_text_does_not_match_degenerate_text(tmp_path: Path) -> None:
    """One token repeated as often as the text limit allows matches neither itself under
    another story nor other degenerate text; a million repeats is refused as too large, fast."""
    with WiretraceServer(make_settings(tmp_path / "data")) as srv, WiretraceClient(srv.address) as client:
        gen = NewsGen(seed=3)
        wire = [
            {"story_id": "spam", "body": "buy " * (MAX_TEXT // 4 - 1)},
            {"story_id": "la", "body": "la " * 300},
            {"story_id": "pair", "body": "win big " * 2000},
            {"story_id": "real", "body": gen.article()},
        ]
        assert client.index_stories(wire).indexed == 4
        for text in ("buy " * (MAX_TEXT // 4 - 1), "buy " * 500, "la la la " * 100, "win big " * 3000, "bu " * 9000):
            result = client.match(text)
            assert (result.verdict, result.matches) == (Verdict.UNRELATED, ()), text[:20]
        # Degenerate filler around real copy does not hide it.
        padded = "buy " * 2000 + "\n\n" + wire[3]["body"] + "\n\n" + "la " * 2000
        assert [m.story_id for m in client.match(padded).matches] == ["real"]

    million = "buy " * 1_000_000
    settings = make_settings(tmp_path / "big", max_message_bytes=8 * 1024 * 1024, max_text_bytes=1024 * 1024)
    with WiretraceServer(settings) as srv, grpc.insecure_channel(srv.address) as channel:
        started = time.perf_counter()
        with pytest.raises(grpc.RpcError) as err:
            SyndicationStub(channel).Match(pb.MatchRequest(text=million), timeout=30)
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert err.value.details() == (
            "text: text is 4000000 bytes of UTF-8; the limit is 1048576 (server setting max_text_bytes): "
            "split it or raise the limit"
        )
        assert time.perf_counter() - started < 5
