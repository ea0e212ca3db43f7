"""Several server processes on one port: ``wiretrace serve --processes N``.

One Python process computes one match at a time (the GIL), so a server uses
one core however many threads it has. With N processes a machine serves about
N times as many matches. Each child is a whole server: it opens the store,
builds its index and binds the port with SO_REUSEPORT, so the kernel spreads
incoming connections across the children. With the embedded store they stay
consistent through the store's change log (``wiretrace.backend``); with
``--store redis://`` they share one state like any replicas.

The parent only supervises: it reports ready once every child is, restarts a
child that dies (which then rebuilds its index from the durable store), and on
SIGTERM or SIGINT passes the signal on and waits for the children's graceful
shutdown.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any

from wiretrace.config import Settings
from wiretrace.server.app import format_address, port_in_use, port_taken
from wiretrace.server.observability import configure_logging, setup_text_logging

log = logging.getLogger("wiretrace.server")

RESTART_DELAY_S = 1.0  # before a child that died is started again
ORPHAN_CHECK_S = 1.0  # how often a child checks that its supervisor is alive
_POLL_S = 0.2


def _child(settings: Settings, ready: Any, log_level: int) -> None:
    from wiretrace.server.app import serve

    setup_text_logging(log_level)  # a spawned process starts with logging unset
    threading.Thread(target=_stop_when_orphaned, args=(os.getppid(),), name="orphan-watch", daemon=True).start()
    serve(settings, on_ready=lambda _server: ready.set(), reuse_port=True)


def _stop_when_orphaned(parent: int) -> None:
    """SIGTERM this process (a graceful stop) once the supervisor is gone, say killed with -9:
    no server should hold the port with nobody to restart or stop it."""
    while os.getppid() == parent:
        time.sleep(ORPHAN_CHECK_S)
    log.warning("the supervising process %d is gone; stopping", parent)
    os.kill(os.getpid(), signal.SIGTERM)


def _child_settings(settings: Settings, i: int) -> Settings:
    """The settings of child `i`: one process each, and its own metrics port when one is fixed."""
    srv = settings.server
    metrics_port = srv.metrics_port + i if srv.metrics_port > 0 else srv.metrics_port
    return dataclasses.replace(settings, server=dataclasses.replace(srv, processes=1, metrics_port=metrics_port))


class Supervisor:
    """Starts, watches and stops the child servers."""

    def __init__(self, settings: Settings) -> None:
        srv = settings.server
        if srv.processes < 2:
            raise ValueError("a supervisor is for --processes 2 or more")
        if srv.port == 0:
            raise ValueError("--processes needs a fixed --port: with --port 0 every process would pick its own")
        if port_taken(srv.host, srv.port):  # the children share the port with each other, never with another server
            raise port_in_use(srv.host, srv.port)
        self.settings = settings
        self._ctx = multiprocessing.get_context("spawn")  # no gRPC or SQLite state crosses a fork
        self.children: list[tuple[BaseProcess, Any]] = []

    def _start(self, i: int) -> tuple[BaseProcess, Any]:
        ready = self._ctx.Event()
        proc = self._ctx.Process(
            target=_child,
            args=(_child_settings(self.settings, i), ready, logging.getLogger().getEffectiveLevel()),
            name=f"wiretrace-{i}",
            daemon=False,
        )
        proc.start()
        return proc, ready

    def start(self, stop: threading.Event) -> bool:
        """Start every child and wait until all serve; False if `stop` came first."""
        self.children = [self._start(i) for i in range(self.settings.server.processes)]
        while not all(ready.is_set() for _, ready in self.children):
            for i, (proc, ready) in enumerate(self.children):
                if not proc.is_alive() and not ready.is_set():
                    self.stop()
                    raise RuntimeError(
                        f"server process {i} exited with code {proc.exitcode} before serving (its error is above)"
                    )
            if stop.wait(_POLL_S):
                return False
        return True

    def watch(self, stop: threading.Event) -> None:
        """Restart children that die, until `stop` is set."""
        while not stop.wait(_POLL_S):
            for i, (proc, _) in enumerate(self.children):
                if not proc.is_alive():
                    log.warning(
                        "server process %d (pid %s) exited with code %s; restarting it", i, proc.pid, proc.exitcode
                    )
                    if stop.wait(RESTART_DELAY_S):
                        return
                    self.children[i] = self._start(i)

    def stop(self) -> None:
        """SIGTERM to every child, then wait for their graceful shutdown (kill past it)."""
        srv = self.settings.server
        for proc, _ in self.children:
            if proc.is_alive() and proc.pid is not None:
                os.kill(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + srv.drain_seconds + srv.grace_seconds + 30.0
        for proc, _ in self.children:
            proc.join(max(0.0, deadline - time.monotonic()))
            if proc.is_alive():
                log.error("server process %s did not stop in time; killing it", proc.pid)
                proc.kill()
                proc.join()


def serve_processes(settings: Settings, on_ready: Callable[[str], None] | None = None) -> None:
    """Run ``--processes`` servers on one port until SIGTERM or SIGINT (main thread only)."""
    stop = threading.Event()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s, stopping the server processes", signal.Signals(signum).name)
        stop.set()

    configure_logging(settings.server.log_format)
    supervisor = Supervisor(settings)
    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        if supervisor.start(stop):
            srv = settings.server
            log.info("%d server processes listening on %s", srv.processes, format_address(srv.host, srv.port))
            if on_ready is not None:
                on_ready(format_address(srv.host, srv.port))
            supervisor.watch(stop)
    finally:
        supervisor.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
