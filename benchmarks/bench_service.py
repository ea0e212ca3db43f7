"""Figures 2-4: ingest, Match under concurrency, and memory, at growing index sizes.

Preferred mode is the real service: ``wiretrace serve --data-dir D --port 0`` in its own
process, driven through ``wiretrace.client.WiretraceClient`` (IndexStories streams, Match from
1/8/32 client threads, each with its own channel). When the server or client is not available
the same measurements run against an in-process ``Detector`` and are labelled ``in-process``
(no serialisation, no network, and client threads share the GIL with the detector).

The index grows in steps (10k, then 100k, ...) on one data dir, so every size is measured in
the same run and cost-vs-size is a curve, not a set of separate runs.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.common import Profile, log, percentiles, resident, wait_idle
from tests.helpers import free_port
from wiretrace.corpusgen import CorpusGenerator

CHUNK = 5_000  # stories generated, then sent in one IndexStories stream
STREAM_BATCH = 32  # articles per MatchStream call in the stream-vs-unary comparison


def grpc_available() -> bool:
    return all(
        importlib.util.find_spec(m) is not None for m in ("wiretrace.server", "wiretrace.client", "wiretrace.cli")
    )


@dataclass
class Target:
    """What the load is sent to: a gRPC server process or an in-process detector."""

    mode: str
    index: Callable[[list[dict[str, Any]]], None]
    make_matcher: Callable[[], tuple[Callable[[str], Any], Callable[[], None]]]  # (match, close)
    stats: Callable[[], dict[str, int]]
    pid: int
    # (match a batch over one MatchStream, close); gRPC only.
    make_streamer: Callable[[], tuple[Callable[[list[str]], Any], Callable[[], None]]] | None = None
    address: str = ""  # HOST:PORT of the server; gRPC only


@contextlib.contextmanager
def grpc_target(data_dir: Path, processes: int = 1) -> Iterator[Target]:
    """Start ``wiretrace serve`` in a subprocess and talk to it with the client."""
    from wiretrace.client import MatchQuery, WiretraceClient

    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    port = free_port() if processes > 1 else 0  # several processes need a fixed port to share
    args = ["serve", "--data-dir", str(data_dir), "--port", str(port), "--processes", str(processes)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "wiretrace.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        address = None
        assert proc.stdout is not None
        deadline = time.time() + 600  # every process rebuilds its index first
        while time.time() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            if "listening on" in line:
                address = line.strip().rsplit(" ", 1)[-1]
                break
        if address is None:
            raise RuntimeError("wiretrace serve did not report its address")
        threading.Thread(target=lambda: [None for _ in proc.stdout or []], daemon=True).start()
        admin = WiretraceClient(address, timeout=600)
        admin.wait_ready(30)

        def index(stories: list[dict[str, Any]]) -> None:
            res = admin.index_stories(stories)
            if res.rejected:
                raise RuntimeError(f"{len(res.rejected)} stories rejected, e.g. {res.rejected[0]}")

        def make_matcher() -> tuple[Callable[[str], Any], Callable[[], None]]:
            c = WiretraceClient(address, timeout=30)
            return (lambda text: c.match(text, top_k=5)), c.close

        def make_streamer() -> tuple[Callable[[list[str]], Any], Callable[[], None]]:
            c = WiretraceClient(address, timeout=120)
            return (lambda texts: list(c.match_stream(MatchQuery(t, top_k=5) for t in texts))), c.close

        def stats() -> dict[str, int]:
            st = admin.stats()[0]
            return {
                "stories": st.stories,
                "index_bytes": st.index_bytes,
                "disk_bytes": st.disk_bytes,
                "index_entries": st.index_entries,
            }

        yield Target("grpc", index, make_matcher, stats, proc.pid, make_streamer, address)
        admin.close()
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()


@contextlib.contextmanager
def inprocess_target(data_dir: Path) -> Iterator[Target]:
    from wiretrace.config import Settings
    from wiretrace.engine import Detector
    from wiretrace.types import StoryRecord

    det = Detector.open(Settings.load({"data_dir": data_dir}))

    def index(stories: list[dict[str, Any]]) -> None:
        for i in range(0, len(stories), 512):  # the server's default index_batch_size
            det.upsert([StoryRecord(s["story_id"], s["body"], s["headline"]) for s in stories[i : i + 512]])

    def make_matcher() -> tuple[Callable[[str], Any], Callable[[], None]]:
        return (lambda text: det.match(text, 5)), (lambda: None)

    def stats() -> dict[str, int]:
        st = det.stats()
        return {
            "stories": st.stories,
            "index_bytes": st.index_bytes,
            "disk_bytes": st.disk_bytes,
            "index_entries": st.index_entries,
        }

    try:
        yield Target("in-process", index, make_matcher, stats, os.getpid())
    finally:
        det.close()


def _unary_call(match: Callable[[str], Any], texts: list[str], j: int) -> int:
    match(texts[j % len(texts)])
    return 1


def _stream_call(stream: Callable[[list[str]], Any], texts: list[str], batch: int, j: int) -> int:
    return len(stream([texts[(j + x) % len(texts)] for x in range(batch)]))


def load(target: Target, texts: list[str], clients: int, seconds: float, batch: int = 0) -> dict[str, Any]:
    """`clients` threads each send Match back to back for `seconds`; requests/s and latency.

    With ``batch``, each call is one ``MatchStream`` of that many articles (as a pipeline feeds a
    day's copy through), and requests/s counts articles; latency is then that of a whole batch.
    """
    lat: list[list[float]] = [[] for _ in range(clients)]
    done = [0] * clients
    errors = [0] * clients
    calls: list[Callable[[int], int]] = []  # (index of the first text) -> articles answered
    closers: list[Callable[[], None]] = []
    for _ in range(clients):
        if batch:
            assert target.make_streamer is not None
            stream, close = target.make_streamer()
            calls.append(functools.partial(_stream_call, stream, texts, batch))
        else:
            match, close = target.make_matcher()
            calls.append(functools.partial(_unary_call, match, texts))
        closers.append(close)
    for call in calls:  # connect and warm every channel first
        call(0)
    start = threading.Barrier(clients + 1)
    stop_at = [0.0]

    def worker(i: int) -> None:
        call = calls[i]
        j = i * 7919
        start.wait()
        while time.perf_counter() < stop_at[0]:
            t0 = time.perf_counter()
            try:
                done[i] += call(j)
            except Exception:
                errors[i] += 1
            lat[i].append(time.perf_counter() - t0)
            j += max(1, batch)

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    stop_at[0] = time.perf_counter() + seconds
    t0 = time.perf_counter()
    start.wait()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    for close in closers:
        close()
    all_lat = [x for row in lat for x in row]
    return {
        "clients": clients,
        "batch": batch,
        "calls": len(all_lat),
        "requests": sum(done),
        "errors": sum(errors),
        "rps": sum(done) / wall,
        **percentiles(all_lat),
    }


def run(profile: Profile, gen: CorpusGenerator, work_dir: Path, force_inprocess: bool = False) -> dict[str, Any]:
    mode = "grpc" if grpc_available() and not force_inprocess else "in-process"
    data_dir = Path(tempfile.mkdtemp(prefix="wiretrace-bench-", dir=work_dir))
    log(f"service benchmark via {mode}, data in {data_dir}")
    res: dict[str, Any] = {"mode": mode, "sizes": []}
    ctx = grpc_target(data_dir) if mode == "grpc" else inprocess_target(data_dir)
    try:
        with ctx as target:
            anon0, file0 = resident(target.pid)
            indexed = 0
            ingest_s = 0.0
            gen_s = 0.0
            for size in profile.service_sizes:
                while indexed < size:
                    n = min(CHUNK, size - indexed)
                    t0 = time.perf_counter()
                    batch = [s.as_json() for s in gen.stories(indexed + n, start=indexed)]
                    gen_s += time.perf_counter() - t0
                    t0 = time.perf_counter()
                    target.index(batch)
                    ingest_s += time.perf_counter() - t0
                    indexed += n
                # Measured once background merging is done, as a server is between bursts.
                settle_s = wait_idle(target.pid)
                st = target.stats()
                anon, file_backed = resident(target.pid)
                queries = [q["text"] for q in gen.queries(size, profile.n_queries)]
                row: dict[str, Any] = {
                    "stories": size,
                    "ingest_stories_s": indexed / ingest_s,
                    "generate_stories_s": indexed / gen_s,
                    "index_bytes": st["index_bytes"],
                    "disk_bytes": st["disk_bytes"],
                    "index_entries": st["index_entries"],
                    "settle_s": settle_s,
                    "anon_delta_bytes": anon - anon0,
                    "file_delta_bytes": file_backed - file0,
                    "index_bytes_per_story": st["index_bytes"] / size,
                    "disk_bytes_per_story": st["disk_bytes"] / size,
                    "rss_bytes_per_story": (anon - anon0) / size,
                    "file_bytes_per_story": (file_backed - file0) / size,
                    "match": [],
                }
                log(
                    f"{size} stories: ingest {row['ingest_stories_s']:.0f}/s, index {row['index_bytes_per_story']:.0f}"
                    f" B/story, disk {row['disk_bytes_per_story']:.0f} B/story"
                )
                for c in profile.concurrency:
                    m = load(target, queries, c, profile.match_seconds)
                    row["match"].append(m)
                    log(f"  match x{c}: {m['rps']:.0f} req/s p50 {m['p50_ms']:.1f} ms p99 {m['p99_ms']:.1f} ms")
                res["sizes"].append(row)
            if target.make_streamer is not None:
                # The same articles as users batch them: one MatchStream of STREAM_BATCH per call, beside
                # unary Match measured again now, alternately, so the two compare under the same load.
                res["stream"] = {"stories": indexed, "batch": STREAM_BATCH, "unary": [], "stream": []}
                for c in profile.concurrency:
                    for kind, b in (("unary", 0), ("stream", STREAM_BATCH)):
                        m = load(target, queries, c, profile.match_seconds, batch=b)
                        res["stream"][kind].append(m)
                        log(f"  {kind} x{c}: {m['rps']:.0f} articles/s, call p50 {m['p50_ms']:.1f} ms")
        if mode == "grpc" and res["sizes"]:
            # Each count on a server restarted alike, back to back, so they compare.
            res["processes"] = [_with_processes(data_dir, n, profile, queries) for n in profile.service_processes]
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    return res


def _server_pids(pid: int) -> list[int]:
    """The processes serving: a supervisor's children (not its resource tracker), or `pid` itself."""
    import psutil

    kids = [c.pid for c in psutil.Process(pid).children() if "spawn_main" in " ".join(c.cmdline())]
    return kids or [pid]


def _with_processes(data_dir: Path, processes: int, profile: Profile, queries: list[str]) -> dict[str, Any]:
    """Match against ``serve --processes N`` on the same data dir (each client its own connection)."""
    log(f"restarting the server with --processes {processes}")
    row: dict[str, Any] = {"processes": processes, "match": []}
    with grpc_target(data_dir, processes) as target:
        # A rebuilt index keeps merging its runs for a while after the server listens.
        waited = sum(wait_idle(pid) for pid in _server_pids(target.pid))
        log(f"  servers idle after {waited:.0f}s")
        for c in profile.concurrency:
            m = load(target, queries, c, profile.match_seconds)
            row["match"].append(m)
            log(f"  {processes} processes, match x{c}: {m['rps']:.0f} req/s p50 {m['p50_ms']:.1f} ms")
    return row
