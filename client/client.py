"""A small typed client for wiretrace.v1.SyndicationService.

It speaks the engine's types (StoryRecord in, MatchResult out), so code written
against the in-process Detector - the evaluation in particular - runs
unchanged over gRPC. Failures are raised as WiretraceError subclasses.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import grpc
from google.protobuf.message import Message

from wiretrace.client.errors import Unreachable, from_rpc_error, message_too_large
from wiretrace.client.target import parse_target
from wiretrace.corpus import story_from_json
from wiretrace.types import NO_FILTER, BackendStats, MatchResult, StoryFilter, StoryRecord, datetime_ns
from wiretrace.v1 import convert
from wiretrace.v1 import syndication_pb2 as pb

SERVICE = "/wiretrace.v1.SyndicationService/"
DEFAULT_TIMEOUT = 10.0
T = TypeVar("T")
M = TypeVar("M", bound=Message)


@dataclass(frozen=True)
class Rejected:
    """A story that was not indexed, with its 0-based position in the stories given to index_stories."""

    story_id: str
    reason: str
    position: int


@dataclass(frozen=True)
class IndexResult:
    indexed: int
    rejected: list[Rejected] = field(default_factory=list)


Moment = datetime | int  # a datetime (naive ones are UTC), or ns since the epoch


def _ns(moment: Moment | None) -> int | None:
    return moment if moment is None or isinstance(moment, int) else datetime_ns(moment)


def story_filter(
    published_after: Moment | None = None,
    published_before: Moment | None = None,
    sources: Iterable[str] = (),
    exclude_sources: Iterable[str] = (),
) -> StoryFilter:
    """The filter of MatchRequest: only stories published in [after, before] (either may be
    left open), from one of `sources` if any are given, and from none of `exclude_sources`."""
    return StoryFilter(_ns(published_after), _ns(published_before), frozenset(sources), frozenset(exclude_sources))


@dataclass(frozen=True)
class MatchQuery:
    """One article for match_stream (a plain str is also accepted); `filter` as `story_filter()` makes it."""

    text: str
    headline: str = ""
    top_k: int = 0
    request_id: str = ""
    filter: StoryFilter = NO_FILTER


class _Recording(Iterator[T]):
    """Wraps the caller's iterator so an exception inside it (say, a bad input
    line) is re-raised as itself instead of surfacing as a cancelled RPC."""

    def __init__(self, source: Iterable[T]) -> None:
        self._it = iter(source)
        self.error: BaseException | None = None

    def __next__(self) -> T:
        try:
            return next(self._it)
        except StopIteration:
            raise
        except BaseException as exc:
            self.error = exc
            raise


# Stories sent in one IndexStoryBatches message: the server spends ~70 us of CPU reading a
# stream message, ~5 us a story with 64 to a message; a message stays under half the size limit.
STORIES_PER_MESSAGE = 64
_BATCH_FIELD_BYTES = 6  # a story's tag and length inside a StoryBatch, at most


def _story(item: StoryRecord | dict[str, Any]) -> pb.Story:
    record = item if isinstance(item, StoryRecord) else story_from_json(item)
    return convert.story_to_proto(record)


def _query(item: str | MatchQuery, position: int = 0) -> pb.MatchRequest:
    """A plain string gets its position as request_id, so answers can be told apart."""
    q = MatchQuery(item, request_id=str(position)) if isinstance(item, str) else item
    req = pb.MatchRequest(request_id=q.request_id, headline=q.headline, text=q.text, top_k=q.top_k)
    convert.filter_to_proto(q.filter, req)
    return req


class SyndicationStub:
    """The service's methods as typed multi-callables on a channel (raw messages in and out)."""

    def __init__(self, channel: grpc.Channel) -> None:
        self.IndexStories = channel.stream_unary(
            SERVICE + "IndexStories", pb.Story.SerializeToString, pb.IndexStoriesResponse.FromString
        )
        self.IndexStoryBatches = channel.stream_unary(
            SERVICE + "IndexStoryBatches", pb.StoryBatch.SerializeToString, pb.IndexStoriesResponse.FromString
        )
        self.DeleteStories = channel.unary_unary(
            SERVICE + "DeleteStories", pb.DeleteStoriesRequest.SerializeToString, pb.DeleteStoriesResponse.FromString
        )
        self.GetStory = channel.unary_unary(
            SERVICE + "GetStory", pb.GetStoryRequest.SerializeToString, pb.Story.FromString
        )
        self.GetStats = channel.unary_unary(
            SERVICE + "GetStats", pb.GetStatsRequest.SerializeToString, pb.GetStatsResponse.FromString
        )
        self.Match = channel.unary_unary(
            SERVICE + "Match", pb.MatchRequest.SerializeToString, pb.MatchResponse.FromString
        )
        self.MatchStream = channel.stream_stream(
            SERVICE + "MatchStream", pb.MatchRequest.SerializeToString, pb.MatchResponse.FromString
        )


def read_token_file(path: str | Path) -> str:
    """The first non-blank, non-comment line of a token file (the server's format, one token per line)."""
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            return line.strip()
    raise ValueError(f"token file {path} holds no token")


class WiretraceClient:
    """Client for one server; use as a context manager or call close().

    `timeout` is the default deadline (seconds) of unary calls; streaming calls
    have none unless one is passed, as their length depends on the input.
    `token` is sent as ``authorization: Bearer TOKEN`` on every call. `tls_ca`
    (a PEM file of the CA, or the server's self-signed certificate) switches to
    TLS; `tls=True` (or an ``https://`` target) does so with the system's root
    certificates. `target` is HOST[:PORT] (port 50051 when left out), also as
    an http(s):// URL; ValueError says what is wrong with one that is not.
    Failures to connect raise Unreachable, naming the address and the reason.
    """

    def __init__(
        self,
        target: str,
        timeout: float | None = DEFAULT_TIMEOUT,
        max_message_bytes: int = 8 * 1024 * 1024,
        *,
        token: str | None = None,
        tls_ca: str | Path | None = None,
        tls: bool = False,
    ) -> None:
        parsed = parse_target(target)
        self.target = parsed.address
        self.timeout = timeout
        self.max_message_bytes = max_message_bytes
        # Plain metadata rather than call credentials: gRPC only sends those over TLS,
        # and a loopback or proxied plaintext server may still require a token.
        self.metadata: tuple[tuple[str, str], ...] = (("authorization", f"Bearer {token}"),) if token else ()
        options = [
            ("grpc.max_send_message_length", max_message_bytes),
            ("grpc.max_receive_message_length", max_message_bytes),
            # A connection of its own: gRPC otherwise shares one among all channels to a
            # target, and every client would then reach the same of several server processes.
            ("grpc.use_local_subchannel_pool", 1),
        ]
        if tls_ca is not None or tls or parsed.tls:
            root = Path(tls_ca).read_bytes() if tls_ca is not None else None
            credentials = grpc.ssl_channel_credentials(root_certificates=root)
            self.channel = grpc.secure_channel(self.target, credentials, options=options)
        else:
            self.channel = grpc.insecure_channel(self.target, options=options)
        self.stub = SyndicationStub(self.channel)

    # -- lifecycle -----------------------------------------------------------

    def wait_ready(self, timeout: float = 10.0) -> None:
        """Block until the channel connects; Unreachable if it does not in time."""
        try:
            grpc.channel_ready_future(self.channel).result(timeout=timeout)
        except grpc.FutureTimeoutError as exc:
            reason = f"no connection within {timeout:g}s"
            raise Unreachable(
                grpc.StatusCode.UNAVAILABLE, f"cannot reach a wiretrace server at {self.target} ({reason})", reason
            ) from exc

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> WiretraceClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, fn: Callable[..., T], request: Any, timeout: float | None) -> T:
        try:
            return fn(request, timeout=timeout, metadata=self.metadata)
        except grpc.RpcError as err:
            raise from_rpc_error(err, self.target) from None

    def _deadline(self, timeout: float | None) -> float | None:
        return self.timeout if timeout is None else timeout

    # -- RPCs ------------------------------------------------------------------

    def index_stories(
        self, stories: Iterable[StoryRecord | dict[str, Any]], timeout: float | None = None
    ) -> IndexResult:
        """Upsert stories over one stream; returns once all are durable.

        A list (any sequence) goes over IndexStoryBatches, ``STORIES_PER_MESSAGE`` to a message:
        a bulk load costs the server less. An iterator's stories go over IndexStories, each as
        soon as it is yielded, so a live feed is never held back to fill a batch. (A server
        older than IndexStoryBatches answers a list with UNIMPLEMENTED: pass ``iter(stories)``.)

        A story too large for one gRPC message (over max_message_bytes) is not
        sent: it comes back in `rejected` like those the server refuses, and the
        others are indexed. Positions count the stories given, from 0.
        """
        source = _Recording(stories)
        sent = array("q")  # position in `stories` of each story in the stream
        too_large: list[Rejected] = []

        def sendable(framing: int) -> Iterator[tuple[pb.Story, int]]:
            """Stories that fit a message with `framing` bytes around them; the others are rejected here."""
            for position, item in enumerate(source):
                msg = _story(item)
                size = msg.ByteSize()
                if size > self.max_message_bytes - framing:
                    reason = message_too_large(size, self.max_message_bytes, "story").message
                    too_large.append(Rejected(msg.story_id, reason, position))
                    continue
                sent.append(position)
                yield msg, size

        def batches() -> Iterator[pb.StoryBatch]:
            batch, batch_bytes = pb.StoryBatch(), 0
            for msg, size in sendable(_BATCH_FIELD_BYTES):
                if len(batch.stories) >= STORIES_PER_MESSAGE or batch_bytes + size > self.max_message_bytes // 2:
                    if batch.stories:
                        yield batch
                    batch, batch_bytes = pb.StoryBatch(), 0
                batch.stories.append(msg)
                batch_bytes += size + _BATCH_FIELD_BYTES
            if batch.stories:
                yield batch

        try:
            resp: pb.IndexStoriesResponse
            if isinstance(stories, Sequence):
                resp = self.stub.IndexStoryBatches(batches(), timeout=timeout, metadata=self.metadata)
            else:
                singles = (msg for msg, _ in sendable(0))
                resp = self.stub.IndexStories(singles, timeout=timeout, metadata=self.metadata)
        except grpc.RpcError as err:
            if source.error is not None:
                raise source.error from None
            raise from_rpc_error(err, self.target) from None
        refused = [
            Rejected(r.story_id, r.reason, sent[r.position] if 0 <= r.position < len(sent) else r.position)
            for r in resp.rejected
        ]
        return IndexResult(indexed=resp.indexed, rejected=sorted(too_large + refused, key=lambda r: r.position))

    def delete(self, story_ids: Iterable[str], timeout: float | None = None) -> int:
        """Delete stories by id; returns how many existed."""
        req = pb.DeleteStoriesRequest(story_ids=list(story_ids))
        resp: pb.DeleteStoriesResponse = self._call(self.stub.DeleteStories, req, self._deadline(timeout))
        return resp.deleted

    def get_story(self, story_id: str, timeout: float | None = None) -> StoryRecord:
        """The stored story; NotFound if there is none."""
        resp: pb.Story = self._call(self.stub.GetStory, pb.GetStoryRequest(story_id=story_id), self._deadline(timeout))
        return convert.story_from_proto(resp)

    def stats(self, timeout: float | None = None) -> tuple[BackendStats, dict[str, str]]:
        """Index size, and the index settings in force (name -> value as text)."""
        resp: pb.GetStatsResponse = self._call(self.stub.GetStats, pb.GetStatsRequest(), self._deadline(timeout))
        return convert.stats_from_proto(resp)

    def match(
        self,
        text: str,
        headline: str = "",
        top_k: int = 0,
        request_id: str = "",
        timeout: float | None = None,
        *,
        published_after: Moment | None = None,
        published_before: Moment | None = None,
        sources: Iterable[str] = (),
        exclude_sources: Iterable[str] = (),
    ) -> MatchResult:
        """Attribute one article to the stories the filters admit (see `story_filter`)."""
        flt = story_filter(published_after, published_before, sources, exclude_sources)
        req = _query(MatchQuery(text, headline, top_k, request_id, flt))
        size = req.ByteSize()
        if size > self.max_message_bytes:
            raise message_too_large(size, self.max_message_bytes, "the article")
        resp: pb.MatchResponse = self._call(self.stub.Match, req, self._deadline(timeout))
        return convert.match_from_proto(resp)

    def match_stream(
        self, queries: Iterable[str | MatchQuery], timeout: float | None = None
    ) -> Iterator[tuple[str, MatchResult]]:
        """Attribute many articles over one stream: (request_id, result) in input order.

        Requests are sent as the caller's iterable yields them while results
        come back; an invalid request ends the stream with InvalidArgument.
        A plain string's request_id is its position ("0", "1", ...).
        """
        source = _Recording(queries)
        responses: Iterable[pb.MatchResponse] = self.stub.MatchStream(
            (_query(q, i) for i, q in enumerate(source)), timeout=timeout, metadata=self.metadata
        )
        try:
            for resp in responses:
                yield resp.request_id, convert.match_from_proto(resp)
        except grpc.RpcError as err:
            if source.error is not None:
                raise source.error from None
            raise from_rpc_error(err, self.target) from None
