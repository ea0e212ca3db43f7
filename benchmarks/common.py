"""Shared helpers for the benchmarks: profiles, corpus source, timing.

The benchmarks import the installed ``wiretrace`` (``make install``) and run from the repository
root as modules (``python -m benchmarks.run``), so ``tests.helpers`` is importable too.
"""

from __future__ import annotations

import gc
import os
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
SHARED_SOURCES = (
    REPO.parent / "shared" / "data" / "reuters21578.jsonl.gz",
    REPO.parent / "shared" / "data" / "reuters_c50.jsonl.gz",
)


def default_source(no_shared: bool = False) -> str | None:
    """Real text to train the corpus generator on, when ../shared is there."""
    if no_shared or os.environ.get("WIRETRACE_BENCH_NO_SHARED"):
        return None
    for p in SHARED_SOURCES:
        if p.exists():
            return str(p)
    return None


@dataclass(frozen=True)
class Profile:
    """How much of everything a run does; `quick` must fit 3 minutes, `full` 15, on 2 cores."""

    name: str
    sig_docs: int  # documents for our pipeline
    ds_loop_docs: int  # documents for datasketch's per-shingle loop (slow)
    ds_batch_docs: int
    sig_num_perms: tuple[int, ...]
    service_sizes: tuple[int, ...]  # indexed stories at which Match is measured
    concurrency: tuple[int, ...]
    match_seconds: float  # per concurrency level
    n_queries: int
    memory_ds_stories: int  # stories datasketch MinHashLSH holds (it is large and slow)
    sweep_stories: int  # generated stories indexed when ../shared/eval/synthetic-dev is absent
    sweep_per_kind: int  # queries of each kind
    sweep_rounds: int  # turns the settings take at matching (see bench_sweep.measure)
    sweep_scale_stories: int  # generated archive the picks are checked on against the defaults (0: none)
    sweep_scale_per_kind: int
    sweep_grid: tuple[tuple[int, int, int, int, int, int, int], ...]  # see _FULL_GRID
    scurve_trials: int
    # Server process counts Match is measured with again at the largest size, each on a
    # restarted ``serve --processes N`` (1 included, as the baseline measured alike).
    service_processes: tuple[int, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)


# (num_perm, bands, rows, shingle size, window, whole-document permutations, term sample); the
# defaults are 32, 8x4, 4, 16, 32, 4 and are always measured. Term sample 0 posts no word pairs:
# the index without the term path that finds briefs, smaller by ~260 B/story.
_QUICK_GRID = (
    (32, 8, 4, 4, 16, 32, 4),
    (32, 16, 2, 4, 16, 32, 4),
    (32, 8, 4, 3, 16, 32, 4),
    (32, 8, 4, 4, 16, 32, 0),
    (32, 8, 4, 4, 48, 32, 0),
)
_BANDINGS = (
    (16, 8, 2),
    (16, 2, 8),
    (32, 16, 2),
    (32, 8, 4),
    (32, 10, 3),
    (32, 4, 8),
    (64, 16, 4),
    (128, 32, 4),
)
_FULL_GRID = (
    tuple((p, b, r, 4, 16, 32, 4) for p, b, r in _BANDINGS)
    + tuple((32, 8, 4, k, 16, 32, 4) for k in (3, 5, 6))
    + tuple((32, 8, 4, 4, w, 32, 4) for w in (8, 12, 24, 32, 48))
    + tuple((32, 8, 4, 4, 16, t, 4) for t in (16, 64))
    + tuple((32, 8, 4, 4, 16, 32, n) for n in (0, 2, 8))
    + ((32, 16, 2, 4, 16, 32, 0), (16, 2, 8, 4, 16, 32, 0), (32, 8, 4, 4, 32, 32, 0))
)

PROFILES = {
    "quick": Profile(
        name="quick",
        sig_docs=300,
        ds_loop_docs=30,
        ds_batch_docs=60,
        sig_num_perms=(32, 128),
        service_sizes=(10_000,),
        concurrency=(1, 8, 32),
        match_seconds=1.5,
        n_queries=160,
        memory_ds_stories=400,
        sweep_stories=3000,
        sweep_per_kind=40,
        sweep_rounds=24,
        sweep_scale_stories=0,
        sweep_scale_per_kind=0,
        sweep_grid=_QUICK_GRID,
        scurve_trials=150,
    ),
    "full": Profile(
        name="full",
        sig_docs=3000,
        ds_loop_docs=200,
        ds_batch_docs=400,
        sig_num_perms=(32, 64, 128),
        service_sizes=(10_000, 100_000),
        concurrency=(1, 8, 32),
        match_seconds=8.0,
        n_queries=800,
        memory_ds_stories=3000,
        sweep_stories=15000,
        sweep_per_kind=150,
        sweep_rounds=45,
        sweep_scale_stories=50_000,
        sweep_scale_per_kind=60,
        sweep_grid=_FULL_GRID,
        scurve_trials=600,
        service_processes=(1, 2),
    ),
}


def timed(fn: Callable[[], Any], repeat: int = 1) -> float:
    """Best wall time of `repeat` calls (GC off while timing, as timeit does)."""
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        gc.disable()
        try:
            t0 = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - t0)
        finally:
            gc.enable()
    return best


def percentiles(samples_s: Iterable[float]) -> dict[str, float]:
    """p50/p90/p99/mean in milliseconds."""
    a = np.asarray(list(samples_s), dtype=np.float64) * 1000.0
    if a.size == 0:
        return {"p50_ms": float("nan"), "p90_ms": float("nan"), "p99_ms": float("nan"), "mean_ms": float("nan")}
    return {
        "p50_ms": float(np.percentile(a, 50)),
        "p90_ms": float(np.percentile(a, 90)),
        "p99_ms": float(np.percentile(a, 99)),
        "mean_ms": float(a.mean()),
    }


def rss_bytes(pid: int | None = None) -> int:
    import psutil

    return int(psutil.Process(pid or os.getpid()).memory_info().rss)


def resident(pid: int) -> tuple[int, int]:
    """(anonymous, file-backed) resident bytes of a process.

    A server's RSS also counts the SQLite pages it has read through mmap:
    clean page cache the kernel drops under pressure and shares with every
    reader of the file. Reported apart, they no longer pass for the memory
    the index itself holds.
    """
    import psutil

    info = psutil.Process(pid).memory_info()
    shared = int(getattr(info, "shared", 0))  # Linux: RssFile + RssShmem
    return int(info.rss) - shared, shared


def wait_idle(pid: int, quiet_s: int = 5, timeout_s: float = 300.0, busy_percent: float = 5.0) -> float:
    """Wait until a process has used no CPU for `quiet_s` seconds in a row; returns seconds waited.

    The server folds its small index runs after 2 s without inserts and trims
    its heap 2 s after that, idle in between: five quiet seconds mean both are done.
    """
    import psutil

    proc = psutil.Process(pid)
    t0 = time.perf_counter()
    proc.cpu_percent(None)
    quiet = 0
    while quiet < quiet_s and time.perf_counter() - t0 < timeout_s:
        quiet = quiet + 1 if proc.cpu_percent(interval=1.0) < busy_percent else 0
    return time.perf_counter() - t0


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)
