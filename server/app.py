"""Running the service: gRPC server, health, reflection, graceful shutdown.

``WiretraceServer`` is used three ways: by ``wiretrace serve`` (blocking,
stopped by SIGTERM/SIGINT), by ``wiretrace eval`` (in-process, on a free
loopback port) and by the tests.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from types import FrameType

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from wiretrace.config import Settings
from wiretrace.engine import Detector
from wiretrace.server.servicer import SERVICE_NAME, SyndicationServicer, generic_handler

log = logging.getLogger("wiretrace.server")


def format_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"


class WiretraceServer:
    """The detector behind a started gRPC server; `stop()` shuts both down in order."""

    def __init__(self, settings: Settings, detector: Detector | None = None) -> None:
        self.settings = settings
        srv = settings.server
        self.detector = detector if detector is not None else Detector.open(settings)
        self.health = health.HealthServicer(experimental_non_blocking=True)
        max_rpcs = srv.max_concurrent_rpcs or None
        self.grpc_server = grpc.server(
            ThreadPoolExecutor(max_workers=srv.workers, thread_name_prefix="wiretrace-rpc"),
            handlers=[generic_handler(SyndicationServicer(self.detector, settings))],
            maximum_concurrent_rpcs=max_rpcs,
            options=[
                ("grpc.max_send_message_length", srv.max_message_bytes),
                ("grpc.max_receive_message_length", srv.max_message_bytes),
                ("grpc.so_reuseport", 0),
            ],
        )
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.grpc_server)
        reflection.enable_server_reflection(
            (SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME),
            self.grpc_server,
        )
        requested = format_address(srv.host, srv.port)
        try:
            self.port = self.grpc_server.add_insecure_port(requested)
        except RuntimeError as exc:
            self.detector.close()
            raise OSError(f"cannot listen on {requested}: {exc}") from exc
        if self.port == 0:
            self.detector.close()
            raise OSError(f"cannot listen on {requested} (address in use or not available)")
        self.address = format_address(srv.host, self.port)
        self._stopped = threading.Event()

    def start(self) -> WiretraceServer:
        self.grpc_server.start()
        for name in ("", SERVICE_NAME):
            self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        log.info("wiretrace listening on %s", self.address)
        return self

    def stop(self, grace: float | None = None) -> None:
        """Report NOT_SERVING, let in-flight RPCs finish (up to `grace` s), close the store."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        self.health.enter_graceful_shutdown()
        grace = self.settings.server.grace_seconds if grace is None else grace
        self.grpc_server.stop(grace).wait()
        self.detector.close()
        log.info("wiretrace stopped")

    def __enter__(self) -> WiretraceServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop(grace=0)


def serve(settings: Settings, on_ready: Callable[[WiretraceServer], None] | None = None) -> None:
    """Run until SIGTERM or SIGINT, then shut down gracefully (main thread only)."""
    stop = threading.Event()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s, shutting down", signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    server = WiretraceServer(settings).start()
    try:
        if on_ready is not None:
            on_ready(server)
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
