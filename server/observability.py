"""What the service is doing: Prometheus metrics and one log line per request.

Both come from one server interceptor, so every call that reaches a handler is
counted and logged the same way - including those the servicer never sees
(refused tokens, health checks, unparsable methods). Calls refused by
``max_concurrent_rpcs`` are the exception: gRPC answers them before any
handler runs, so only the client sees those RESOURCE_EXHAUSTED answers.
"""

from __future__ import annotations

import datetime
import json
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, cast
from wsgiref.simple_server import WSGIServer

import grpc
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from wiretrace.server.security import Interceptor, handler_behavior, handler_factory
from wiretrace.types import BackendStats

request_log = logging.getLogger("wiretrace.requests")

OWN_SERVICE = "/wiretrace.v1.SyndicationService/"
# Long IndexStories streams need the upper buckets; Match lives in the lower ones.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
MAX_LOGGED_ID = 128


def method_label(full_method: str) -> str:
    """'Match' for our own RPCs, 'grpc.health.v1.Health/Check' for the others."""
    if full_method.startswith(OWN_SERVICE):
        return full_method[len(OWN_SERVICE) :]
    return full_method.lstrip("/")


class _IndexCollector(Collector):
    """Index size, read from the detector when scraped (not on every write)."""

    def __init__(self, stats: Callable[[], BackendStats]) -> None:
        self._stats = stats

    def collect(self) -> Iterable[GaugeMetricFamily]:
        try:
            s = self._stats()
        except Exception:  # store closed during shutdown: report nothing rather than fail the scrape
            return
        yield GaugeMetricFamily("wiretrace_index_stories", "Stories in the index.", value=s.stories)
        yield GaugeMetricFamily("wiretrace_index_entries", "LSH band entries in the index.", value=s.index_entries)
        yield GaugeMetricFamily("wiretrace_index_bytes", "Resident bytes of the in-memory index.", value=s.index_bytes)
        yield GaugeMetricFamily("wiretrace_disk_bytes", "Bytes of the store on disk.", value=s.disk_bytes)


class Metrics:
    """The service's series, in a registry of its own (several servers may share a process)."""

    def __init__(self, stats: Callable[[], BackendStats]) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "wiretrace_requests", "RPCs answered, by method and status code.", ["method", "code"], registry=r
        )
        self.errors = Counter(
            "wiretrace_errors", "RPCs answered with a status other than OK.", ["method", "code"], registry=r
        )
        self.latency = Histogram(
            "wiretrace_request_duration_seconds",
            "Time from handler start to status, by method.",
            ["method"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.in_flight = Gauge("wiretrace_requests_in_flight", "RPCs being handled now.", registry=r)
        self.stories_indexed = Counter(
            "wiretrace_stories_indexed", "Stories committed by IndexStories since start.", registry=r
        )
        self.stories_rejected = Counter(
            "wiretrace_stories_rejected", "Stories IndexStories answered in `rejected`.", registry=r
        )
        r.register(_IndexCollector(stats))
        self._http: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    def observe(self, method: str, code: str, seconds: float) -> None:
        self.requests.labels(method, code).inc()
        if code != "OK":
            self.errors.labels(method, code).inc()
        self.latency.labels(method).observe(seconds)

    def serve(self, host: str, port: int) -> int:
        """Serve /metrics over HTTP in a daemon thread; returns the port (for port 0)."""
        try:
            self._http, self._thread = start_http_server(port, addr=host.strip("[]"), registry=self.registry)
        except OSError as exc:
            raise OSError(f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}") from exc
        return int(self._http.server_port)

    def close(self) -> None:
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None


# -- logs ------------------------------------------------------------------------


class JsonFormatter(logging.Formatter):
    """One JSON object per line; request lines carry their fields at top level."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        out.update(getattr(record, "rpc", None) or {})
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def setup_text_logging(level: int) -> None:
    """The command line's logging: plain lines on stderr (``configure_logging`` may switch them to JSON)."""
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)


def configure_logging(log_format: str) -> None:
    """Switch the root handlers to JSON lines (``--log-format json``); text is logging's default setup."""
    if log_format == "json":
        root = logging.getLogger()
        if not root.handlers:
            logging.basicConfig()
        for handler in root.handlers:
            handler.setFormatter(JsonFormatter())


# -- the interceptor ------------------------------------------------------------------


class _Call:
    """One RPC being observed; `finish` records it exactly once."""

    __slots__ = ("context", "done", "method", "metrics", "request_id", "started")

    def __init__(self, method: str, context: grpc.ServicerContext, metrics: Metrics | None, request_id: str) -> None:
        self.method = method
        self.context = context
        self.metrics = metrics
        self.request_id = request_id
        self.started = time.perf_counter()
        self.done = False
        if metrics is not None:
            metrics.in_flight.inc()

    def finish(self, error: BaseException | None) -> None:
        if self.done:
            return
        self.done = True
        seconds = time.perf_counter() - self.started
        # ServicerContext.code() exists at run time (grpcio >= 1.38) but not in grpc-stubs.
        status: grpc.StatusCode | None = cast(Any, self.context).code()
        if status is not None:
            code = status.name
        elif isinstance(error, GeneratorExit) or (error is not None and not self.context.is_active()):
            code = "CANCELLED"
        else:
            code = "OK" if error is None else "UNKNOWN"
        if self.metrics is not None:
            self.metrics.in_flight.dec()
            self.metrics.observe(self.method, code, seconds)
        fields: dict[str, Any] = {"method": self.method, "code": code, "duration_ms": round(seconds * 1000, 2)}
        if self.request_id:
            fields["request_id"] = self.request_id
        fields["peer"] = self.context.peer()
        # Probes arrive every few seconds: keep them out of the INFO log (they are still counted).
        level = logging.INFO if not self.method.startswith("grpc.") else logging.DEBUG
        if request_log.isEnabledFor(level):
            text = " ".join(f"{k}={v!r}" if k == "request_id" else f"{k}={v}" for k, v in fields.items())
            request_log.log(level, "rpc %s", text, extra={"rpc": fields})


def _request_id(request: object, context: grpc.ServicerContext) -> str:
    """The message's request_id, else an x-request-id header (for streams), shortened for the log."""
    rid = getattr(request, "request_id", "")
    if not isinstance(rid, str) or not rid:
        rid = ""
        for key, value in context.invocation_metadata() or ():
            if key == "x-request-id":
                rid = value if isinstance(value, str) else value.decode("utf-8", "replace")
                break
    return rid[:MAX_LOGGED_ID]


class ObservingInterceptor(Interceptor):
    """Times, counts and logs every call; outermost, so it also sees refusals by later interceptors."""

    def __init__(self, metrics: Metrics | None) -> None:
        self.metrics = metrics

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        method = method_label(handler_call_details.method)
        behavior = handler_behavior(handler)
        metrics = self.metrics

        if handler.response_streaming:

            def streaming(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
                call = _Call(method, context, metrics, _request_id(request, context))
                error: BaseException | None = None
                try:
                    yield from behavior(request, context)
                except BaseException as exc:
                    error = exc
                    raise
                finally:
                    call.finish(error)

            wrapped: Callable[..., Any] = streaming
        else:

            def unary(request: Any, context: grpc.ServicerContext) -> Any:
                call = _Call(method, context, metrics, _request_id(request, context))
                error: BaseException | None = None
                try:
                    return behavior(request, context)
                except BaseException as exc:
                    error = exc
                    raise
                finally:
                    call.finish(error)

            wrapped = unary
        return handler_factory(handler)(
            wrapped,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
