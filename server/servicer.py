"""SyndicationService: maps wiretrace.v1 messages onto the engine's Detector.

Handlers run in the gRPC thread pool and call the (blocking, thread-safe)
Detector directly. Every bad input becomes a RequestError, answered with
INVALID_ARGUMENT / RESOURCE_EXHAUSTED / NOT_FOUND and a BadRequest detail.
The per-request log line and metrics come from the interceptor in
wiretrace.server.observability, which sees every call.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
from google.protobuf.message import DecodeError, Message

from wiretrace.config import Settings
from wiretrace.engine import Detector
from wiretrace.server.errors import RequestError, invalid, too_large
from wiretrace.server.observability import Metrics
from wiretrace.server.validation import id_problem, text_problem, timestamp_problem, wire_type_problem
from wiretrace.types import StoreError, StoreFullError, StoryFilter, StoryPrint, StoryRecord
from wiretrace.v1 import convert
from wiretrace.v1 import syndication_pb2 as pb

log = logging.getLogger("wiretrace.server")

SERVICE_NAME = "wiretrace.v1.SyndicationService"
M = TypeVar("M", bound=Message)


# Longer than any deadline a caller means; threading cannot wait for grpc's 'no deadline' value.
MAX_WAIT_S = 86_400.0


@dataclass(frozen=True)
class Undecodable:
    """Stands in for a request the protobuf runtime could not parse (e.g. invalid UTF-8).

    gRPC would answer a failing deserializer with INTERNAL; passing this marker
    to the handler lets it answer INVALID_ARGUMENT instead.
    """

    message_type: str
    error: str


def tolerant_deserializer(cls: type[M]) -> Callable[[bytes], M | Undecodable]:
    def deserialize(data: bytes) -> M | Undecodable:
        try:
            return cls.FromString(data)
        except (DecodeError, UnicodeDecodeError, ValueError) as exc:
            return Undecodable(cls.DESCRIPTOR.full_name, str(exc) or type(exc).__name__)

    return deserialize


def _decoded(request: M | Undecodable, prefix: str = "") -> M:
    if isinstance(request, Undecodable):
        raise RequestError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"{prefix}request is not a valid {request.message_type} ({request.error}); "
            "string fields must be valid UTF-8",
        )
    problem = wire_type_problem(request)
    if problem:
        raise invalid(*problem, prefix=prefix)
    return request


class _BatchWriter:
    """Writes one stream's batches in order, one at a time, on a thread of its own.

    While batch k is being made durable (SQLite commit, index insert) the
    handler reads the stream on and computes the prints of batch k+1, so text
    processing, fsync and index merging overlap instead of taking turns.
    ``drain`` returns once everything submitted is durable, and raises the
    first write error; leaving the ``with`` block drains too.
    """

    def __init__(self, detector: Detector, metrics: Metrics | None) -> None:
        self._detector = detector
        self._metrics = metrics
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="index-writer")
        self._pending: Future[None] | None = None

    def _write(self, records: list[StoryRecord], prints: list[StoryPrint]) -> None:
        self._detector.upsert(records, prints)
        if self._metrics is not None:
            self._metrics.stories_indexed.inc(len(records))

    def submit(self, records: list[StoryRecord]) -> None:
        prints = self._detector.prepare([r.body for r in records])
        self.drain()  # keeps batches in order, and at most one waiting in memory
        self._pending = self._pool.submit(self._write, records, prints)

    def drain(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def __enter__(self) -> _BatchWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.drain()
        finally:
            self._pool.shutdown(wait=True)


class SyndicationServicer:
    """The service implementation; one instance serves all threads."""

    def __init__(
        self,
        detector: Detector,
        settings: Settings,
        metrics: Metrics | None = None,
        on_store_error: Callable[[], None] | None = None,
    ) -> None:
        self.detector = detector
        self.on_store_error = on_store_error  # e.g. the server checks the store's health at once
        self.settings = settings
        self.limits = settings.server
        self.metrics = metrics
        # Match is CPU-bound Python: past one thread per core, threads only take
        # the GIL from each other (measured: 8 clients got half the throughput
        # of one). Matches run on these threads, not on the RPC's: always the
        # same thread(s), whose caches stay warm (p50 at 100k stories 1.42-1.51
        # vs 1.68-1.75 ms on whichever RPC thread). Calls past them queue here,
        # within their deadline.
        self._matchers = ThreadPoolExecutor(
            max_workers=settings.server.match_threads or os.cpu_count() or 1, thread_name_prefix="wiretrace-match"
        )

    # -- plumbing ----------------------------------------------------------

    @contextmanager
    def _rpc(self, method: str, context: grpc.ServicerContext) -> Iterator[None]:
        """Turn RequestError into its status, and the store's failures into RESOURCE_EXHAUSTED (full) or
        UNAVAILABLE (anything else: retry later); log anything else with its traceback (it is a bug)."""
        try:
            yield
        except RequestError as err:
            context.abort_with_status(err.to_status())
        except StoreError as err:
            log.warning("%s failed: %s", method, err)
            if self.on_store_error is not None and not isinstance(err, StoreFullError):
                self.on_store_error()
            code = (
                grpc.StatusCode.RESOURCE_EXHAUSTED if isinstance(err, StoreFullError) else grpc.StatusCode.UNAVAILABLE
            )
            context.abort_with_status(RequestError(code, str(err)).to_status())
        except grpc.RpcError:
            # Reading the request stream failed: gRPC ended the call itself (a message over
            # max_message_bytes, a cancelled or vanished client) and has sent its status. Not a bug.
            log.info("%s: the call ended while its requests were read (by gRPC: cancelled, or too large)", method)
            raise
        except Exception:
            log.exception("%s failed", method)
            raise

    def _check_story_id(self, story_id: str, field_name: str = "story_id") -> None:
        problem = id_problem(story_id, self.limits.max_id_length)
        if problem:
            raise invalid(field_name, problem)

    def _story_problem(self, story: pb.Story) -> str | None:
        problem = id_problem(story.story_id, self.limits.max_id_length)
        if problem:
            return f"story_id {problem}"
        wire = wire_type_problem(story)  # e.g. published_at sent as a number: it would be lost
        if wire:
            return f"{wire[0]}: {wire[1]}"
        if story.HasField("published_at"):
            when = timestamp_problem(story.published_at)
            if when:
                return f"published_at: {when}"
        for what, value in (("body", story.body), ("headline", story.headline)):
            if what == "headline" and not value:
                continue
            text = text_problem(value, self.limits, what)
            if text:
                return text[1]
        return None

    def _check_match(self, req: pb.MatchRequest, prefix: str = "") -> StoryFilter:
        """Checks a request; returns its filter."""
        problem = id_problem(req.request_id, self.limits.max_id_length, required=False)
        if problem:
            raise invalid("request_id", problem, prefix=prefix)
        text = text_problem(req.text, self.limits, "text")
        if text:
            too_big, reason = text
            raise (too_large if too_big else invalid)("text", reason, prefix=prefix)
        if not 0 <= req.top_k <= self.limits.max_top_k:
            raise invalid(
                "top_k",
                f"is {req.top_k}; it must be between 0 (server default) and {self.limits.max_top_k} "
                "(server setting max_top_k)",
                prefix=prefix,
            )
        return self._check_filter(req, prefix)

    def _check_filter(self, req: pb.MatchRequest, prefix: str) -> StoryFilter:
        for name in ("published_after", "published_before"):
            if req.HasField(name):
                problem = timestamp_problem(getattr(req, name))
                if problem:
                    raise invalid(name, problem, prefix=prefix)
        for name in ("sources", "exclude_sources"):
            for i, source in enumerate(getattr(req, name)):
                if not source or len(source) > self.limits.max_id_length:
                    raise invalid(
                        f"{name}[{i}]",
                        f"is {len(source)} characters long; a source name has 1 to {self.limits.max_id_length} "
                        "(server setting max_id_length)",
                        prefix=prefix,
                    )
        flt = convert.filter_from_proto(req)
        window = flt.problem()
        if window:
            raise invalid(*window, prefix=prefix)
        return flt

    def _match(self, req: pb.MatchRequest, flt: StoryFilter, context: grpc.ServicerContext) -> pb.MatchResponse:
        remaining = context.time_remaining()  # huge, not None, when the call has no deadline
        job = self._matchers.submit(self.detector.match, req.text, req.top_k, flt)
        # Give up a little before the deadline, so the caller reads why rather than a bare DEADLINE_EXCEEDED.
        wait_s = None if remaining is None or remaining > MAX_WAIT_S else max(0.0, remaining - min(0.1, remaining / 4))
        done, _ = wait([job], timeout=wait_s)
        if not done and job.cancel():  # still queued; once started, a match runs to its end
            raise RequestError(
                grpc.StatusCode.DEADLINE_EXCEEDED,
                "the deadline passed while the request waited for a free matcher; retry with a longer deadline "
                "or fewer concurrent requests",
            )
        return convert.match_to_proto(job.result(), req.request_id)

    def close(self) -> None:
        """Let queued matches finish and stop the matcher threads (after the server has stopped)."""
        self._matchers.shutdown(wait=True)

    # -- RPCs ----------------------------------------------------------------

    def IndexStories(
        self, request_iterator: Iterator[pb.Story | Undecodable], context: grpc.ServicerContext
    ) -> pb.IndexStoriesResponse:
        return self._index("IndexStories", request_iterator, context)

    def IndexStoryBatches(
        self, request_iterator: Iterator[pb.StoryBatch | Undecodable], context: grpc.ServicerContext
    ) -> pb.IndexStoriesResponse:
        def stories() -> Iterator[pb.Story | Undecodable]:
            for batch in request_iterator:
                if isinstance(batch, Undecodable):
                    yield batch  # one rejection: how many stories it held is unknown
                else:
                    yield from batch.stories

        return self._index("IndexStoryBatches", stories(), context)

    def _index(
        self, method: str, request_iterator: Iterator[pb.Story | Undecodable], context: grpc.ServicerContext
    ) -> pb.IndexStoriesResponse:
        """One IndexStories stream, its stories read one by one whichever way they were sent."""
        response = pb.IndexStoriesResponse()
        with self._rpc(method, context), _BatchWriter(self.detector, self.metrics) as writer:
            batch: dict[str, StoryRecord] = {}
            position = -1

            def flush() -> None:
                if batch:
                    writer.submit(list(batch.values()))
                    batch.clear()

            for position, item in enumerate(request_iterator):
                if position >= self.limits.max_stories_per_stream:
                    flush()
                    writer.drain()
                    raise RequestError(
                        grpc.StatusCode.RESOURCE_EXHAUSTED,
                        f"stream carries more than {self.limits.max_stories_per_stream} stories "
                        f"(server setting max_stories_per_stream); the first ones were processed "
                        f"({response.indexed} indexed, {len(response.rejected)} rejected): "
                        "send the rest in another stream",
                    )
                if isinstance(item, Undecodable):
                    reason = f"not a valid {item.message_type.rsplit('.', 1)[-1]}: {item.error}"
                    response.rejected.add(story_id="", reason=reason, position=position)
                    continue
                problem = self._story_problem(item)
                if problem:
                    response.rejected.add(story_id=item.story_id, reason=problem, position=position)
                    continue
                if item.story_id in batch:  # a re-send inside one batch: commit the earlier one first
                    flush()
                batch[item.story_id] = convert.story_from_proto(item)
                response.indexed += 1
                if len(batch) >= self.limits.index_batch_size:
                    flush()
            flush()
            writer.drain()  # every story is durable before the response goes out
        if self.metrics is not None and response.rejected:
            self.metrics.stories_rejected.inc(len(response.rejected))
        return response

    def DeleteStories(
        self, request: pb.DeleteStoriesRequest | Undecodable, context: grpc.ServicerContext
    ) -> pb.DeleteStoriesResponse:
        with self._rpc("DeleteStories", context):
            req = _decoded(request)
            for i, story_id in enumerate(req.story_ids):
                self._check_story_id(story_id, f"story_ids[{i}]")
            return pb.DeleteStoriesResponse(deleted=self.detector.delete(list(req.story_ids)))
        raise AssertionError("unreachable")  # abort_with_status raised

    def GetStory(self, request: pb.GetStoryRequest | Undecodable, context: grpc.ServicerContext) -> pb.Story:
        with self._rpc("GetStory", context):
            req = _decoded(request)
            self._check_story_id(req.story_id)
            record = self.detector.get(req.story_id)
            if record is None:
                raise RequestError(grpc.StatusCode.NOT_FOUND, f"no story with story_id {req.story_id!r}")
            return convert.story_to_proto(record)
        raise AssertionError("unreachable")

    def GetStats(self, request: pb.GetStatsRequest | Undecodable, context: grpc.ServicerContext) -> pb.GetStatsResponse:
        with self._rpc("GetStats", context):
            _decoded(request)
            return convert.stats_to_proto(self.detector.stats(), self.settings.index)
        raise AssertionError("unreachable")

    def Match(self, request: pb.MatchRequest | Undecodable, context: grpc.ServicerContext) -> pb.MatchResponse:
        with self._rpc("Match", context):
            req = _decoded(request)
            return self._match(req, self._check_match(req), context)
        raise AssertionError("unreachable")

    def MatchStream(
        self, request_iterator: Iterator[pb.MatchRequest | Undecodable], context: grpc.ServicerContext
    ) -> Iterator[pb.MatchResponse]:
        with self._rpc("MatchStream", context):
            for position, request in enumerate(request_iterator):
                started = time.perf_counter()
                rid = "" if isinstance(request, Undecodable) else request.request_id[: self.limits.max_id_length]
                prefix = f"request {position} (request_id {rid!r}): "
                try:
                    req = _decoded(request, prefix)
                    response = self._match(req, self._check_match(req, prefix), context)
                except RequestError as err:
                    log.info("MatchStream[%d] request_id=%r code=%s", position, rid, err.code.name)
                    raise
                log.debug(
                    "MatchStream[%d] request_id=%r code=OK %.1fms",
                    position,
                    rid,
                    (time.perf_counter() - started) * 1000,
                )
                yield response


_FACTORIES = {
    (False, False): grpc.unary_unary_rpc_method_handler,
    (True, False): grpc.stream_unary_rpc_method_handler,
    (True, True): grpc.stream_stream_rpc_method_handler,
}


def generic_handler(servicer: SyndicationServicer) -> grpc.GenericRpcHandler[Any, Any]:
    """Handlers for every RPC in the proto's descriptor, with tolerant deserializers (see Undecodable)."""
    handlers = {}
    for method in pb.DESCRIPTOR.services_by_name["SyndicationService"].methods:
        request: type[Message] = getattr(pb, method.input_type.name)
        response: type[Message] = getattr(pb, method.output_type.name)
        handlers[method.name] = _FACTORIES[method.client_streaming, method.server_streaming](
            getattr(servicer, method.name),
            request_deserializer=tolerant_deserializer(request),
            response_serializer=response.SerializeToString,
        )
    return grpc.method_handlers_generic_handler(SERVICE_NAME, handlers)
