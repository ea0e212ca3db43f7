"""Running the service: gRPC server, health, reflection, access control, metrics, graceful drain.

``WiretraceServer`` is used three ways: by ``wiretrace serve`` (blocking,
stopped by SIGTERM/SIGINT), by ``wiretrace eval`` (in-process, on a free
loopback port) and by the tests.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import signal
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from types import FrameType

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from wiretrace import text
from wiretrace.config import Settings
from wiretrace.engine import Detector
from wiretrace.server.observability import Metrics, ObservingInterceptor, configure_logging
from wiretrace.server.retention import Retention
from wiretrace.server.security import BearerTokenInterceptor, Interceptor, load_tokens, server_credentials
from wiretrace.server.servicer import SERVICE_NAME, SyndicationServicer, generic_handler
from wiretrace.types import StoreError

log = logging.getLogger("wiretrace.server")

# How often health asks the store whether it can be reached (and at once after a call found it could not).
STORE_PROBE_S = 1.0


def format_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"


def port_taken(host: str, port: int) -> bool:
    """Is something already listening on host:port? Checked before gRPC binds, whose own
    failure prints a C-core log line nobody can act on."""
    try:
        infos = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError:
        return False  # let gRPC report an unusable host
    for family, kind, proto, _, address in infos:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gRPC binds
            try:
                probe.bind(address)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    return True
    return False


def port_in_use(host: str, port: int) -> OSError:
    return OSError(
        f"cannot listen on {format_address(host, port)}: the port is in use; another wiretrace server may be "
        "running there: stop it, or pick another port with --port"
    )


def plural_stories(n: int) -> str:
    return f"{n:,} stor{'y' if n == 1 else 'ies'}"


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host == "localhost"


class WiretraceServer:
    """The detector behind a started gRPC server; `stop()` shuts both down in order."""

    def __init__(self, settings: Settings, detector: Detector | None = None, reuse_port: bool = False) -> None:
        self.settings = settings
        srv = settings.server
        if srv.retain_days < 0 or srv.retain_check_seconds <= 0:
            raise ValueError(
                f"--retain-days {srv.retain_days} / --retain-check-seconds {srv.retain_check_seconds}: "
                "days must be 0 (keep all) or more, and the interval more than 0"
            )
        # Read credentials and take the port before opening the store: a bad path or a busy port
        # fails at once and touches nothing, instead of after the whole index is rebuilt.
        credentials = server_credentials(srv)
        tokens = load_tokens(srv.auth_token_file) if srv.auth_token_file else []
        self.tls = credentials is not None
        self.auth = bool(tokens)
        self.metrics = Metrics(lambda: self.detector.stats()) if srv.metrics_port >= 0 else None
        self.metrics_port: int | None = None
        self.health = health.HealthServicer(experimental_non_blocking=True)
        # The observer goes first (outermost), so it also counts and logs the calls auth refuses.
        interceptors: list[Interceptor] = [ObservingInterceptor(self.metrics)]
        if tokens:
            interceptors.append(BearerTokenInterceptor(tokens))
        max_rpcs = srv.max_concurrent_rpcs or None
        self.reuse_port = reuse_port
        self.grpc_server = grpc.server(
            ThreadPoolExecutor(max_workers=srv.workers, thread_name_prefix="wiretrace-rpc"),
            interceptors=interceptors,
            maximum_concurrent_rpcs=max_rpcs,
            options=[
                ("grpc.max_send_message_length", srv.max_message_bytes),
                ("grpc.max_receive_message_length", srv.max_message_bytes),
                # Off unless asked: a second server on a taken port must fail, not share it.
                ("grpc.so_reuseport", int(reuse_port)),
            ],
        )
        self.port = self._bind(credentials)
        self.address = format_address(srv.host, self.port)
        try:
            self.detector = detector if detector is not None else Detector.open(settings)
        except BaseException:
            self.grpc_server.stop(None)  # frees the port
            raise
        text.warm_up()  # before serving: the first request would otherwise pay ~0.3 s for it
        self._probe_now = threading.Event()
        self.servicer = SyndicationServicer(self.detector, settings, self.metrics, on_store_error=self._probe_now.set)
        self.grpc_server.add_generic_rpc_handlers((generic_handler(self.servicer),))
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.grpc_server)
        reflection.enable_server_reflection(
            (SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME),
            self.grpc_server,
        )
        self.retention: Retention | None = None
        if srv.retain_days:
            self.retention = Retention(self.detector, srv.retain_days, srv.retain_check_seconds)
        self._stopped = threading.Event()
        self._prober = threading.Thread(target=self._follow_store, name="store-health", daemon=True)

    def _bind(self, credentials: grpc.ServerCredentials | None) -> int:
        srv = self.settings.server
        requested = format_address(srv.host, srv.port)
        if srv.port and not self.reuse_port and port_taken(srv.host, srv.port):
            self.grpc_server.stop(None)
            raise port_in_use(srv.host, srv.port)
        try:
            if credentials is None:
                port = self.grpc_server.add_insecure_port(requested)
            else:
                port = self.grpc_server.add_secure_port(requested, credentials)
        except RuntimeError:
            port = 0
        if port == 0:
            self.grpc_server.stop(None)
            raise OSError(f"cannot listen on {requested}: the address is in use or unavailable (check --host, --port)")
        return port

    def start(self) -> WiretraceServer:
        srv = self.settings.server
        if self.metrics is not None:
            try:
                self.metrics_port = self.metrics.serve(srv.host, srv.metrics_port)
            except OSError:
                self.grpc_server.stop(None)
                self.detector.close()
                raise
        self.grpc_server.start()
        if self.retention is not None:
            self.retention.start()  # its first pass runs now, while calls are already served
        self._set_health(health_pb2.HealthCheckResponse.SERVING)
        self._prober.start()
        features = [
            "TLS" if self.tls else "plaintext",
            "bearer tokens" if self.auth else "no authentication",
        ]
        if self.retention is not None:
            features.append(f"stories kept {srv.retain_days} days")
        if self.metrics_port is not None:
            features.append(f"metrics on http://{format_address(srv.host, self.metrics_port)}/metrics")
        # Not "listening on ...": `wiretrace serve` prints that line itself, once, on stdout.
        try:
            held = plural_stories(self.detector.stats().stories)
        except StoreError:
            held = "a store that does not answer yet"
        log.info("serving %s (%s)", held, ", ".join(features))
        if self.auth and not self.tls and not is_loopback(srv.host):
            log.warning(
                "bearer tokens over plaintext on %s: anyone on the path can read them; use --tls-cert", srv.host
            )
        return self

    def _set_health(self, status: health_pb2.HealthCheckResponse.ServingStatus.ValueType) -> None:
        for name in ("", SERVICE_NAME):
            self.health.set(name, status)  # ignored once shutting down: health stays NOT_SERVING

    def _follow_store(self) -> None:
        """Health is NOT_SERVING while the store cannot be reached, so balancers move traffic to replicas
        whose store can; SERVING again once it answers (the backends reconnect by themselves)."""
        reachable = True
        while not self._stopped.is_set():
            self._probe_now.wait(STORE_PROBE_S)
            self._probe_now.clear()
            if self._stopped.is_set():
                return
            try:
                self.detector.check()
                problem = None
            except StoreError as err:
                problem = str(err)
            except Exception as err:  # a store closing under us at shutdown, say: not a reason to stop probing
                problem = f"{type(err).__name__}: {err}"
            if (problem is None) != reachable:
                reachable = problem is None
                if reachable:
                    log.warning("the store answers again: health is SERVING")
                    self._set_health(health_pb2.HealthCheckResponse.SERVING)
                else:
                    log.warning("the store cannot be reached, health is NOT_SERVING: %s", problem)
                    self._set_health(health_pb2.HealthCheckResponse.NOT_SERVING)

    def stop(self, grace: float | None = None, drain: float = 0.0) -> None:
        """Report NOT_SERVING; keep taking calls for `drain` s so balancers notice; then let
        in-flight RPCs finish (up to `grace` s, new calls are refused) and close the store."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        self._probe_now.set()
        if self._prober.is_alive():
            self._prober.join()
        self.health.enter_graceful_shutdown()
        if drain > 0:
            log.info("health is NOT_SERVING; still taking calls for %.1fs", drain)
            time.sleep(drain)
        grace = self.settings.server.grace_seconds if grace is None else grace
        self.grpc_server.stop(grace).wait()
        if self.retention is not None:
            self.retention.stop()
        self.servicer.close()
        if self.metrics is not None:
            self.metrics.close()
        self.detector.close()
        log.info("wiretrace stopped")

    def __enter__(self) -> WiretraceServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop(grace=0)


def serve(
    settings: Settings, on_ready: Callable[[WiretraceServer], None] | None = None, reuse_port: bool = False
) -> None:
    """Run until SIGTERM or SIGINT, then shut down gracefully (main thread only)."""
    stop = threading.Event()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s, shutting down", signal.Signals(signum).name)
        stop.set()

    configure_logging(settings.server.log_format)
    # Handlers only once the index is built: a signal during a long rebuild ends the process
    # at once (nothing is acknowledged yet, and the store is crash-safe) instead of after it.
    server = WiretraceServer(settings, reuse_port=reuse_port)
    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    server.start()
    try:
        if on_ready is not None:
            on_ready(server)
        while not stop.wait(0.5):
            pass
    finally:
        server.stop(drain=settings.server.drain_seconds)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
