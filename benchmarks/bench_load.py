"""Load test: concurrent clients mixing Match and IndexStories against a real server process.

    .venv/bin/python -m benchmarks.bench_load                  # 16 clients, 60 s, then the overload phases
    .venv/bin/python -m benchmarks.bench_load --duration 20    # shorter

Everything runs on 127.0.0.1 with bounded counts and times; results go to
benchmarks/results/load.md (and stdout).

1. **Mixed load**: ``--clients`` threads, each with its own channel, for ``--duration`` s:
   80% Match (a stored story, an excerpt of one inside local prose, or unrelated prose),
   20% IndexStories streams of 5-20 stories whose ids come from a fixed pool, so the index
   stays the same size (upserts replace) and memory has a reason to level off. Every error is
   counted; none is expected. Server RSS is sampled every second; it must plateau.
2. **Held slots**: a server with ``--max-concurrent-rpcs 4``; four IndexStories streams are held
   open (they use no CPU), then Match calls arrive: each must be refused with
   RESOURCE_EXHAUSTED at once; the latency of those answers is the point.
3. **Overload under work**: the same server, ``--clients`` threads calling Match flat out:
   some are served, the rest refused fast; nothing stalls or fails otherwise.
"""

from __future__ import annotations

import argparse
import functools
import os
import random
import subprocess
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.common import REPO, log, percentiles
from tests.helpers import free_port, serve_process
from wiretrace.client import WiretraceClient, WiretraceError
from wiretrace.corpusgen import CorpusGenerator

RESULTS = REPO / "benchmarks" / "results" / "load.md"
HOLD_SLOTS = 4


@dataclass
class Tally:
    """Per-operation latencies and status counts, shared by the worker threads."""

    latencies: dict[str, list[float]] = field(default_factory=dict)
    codes: Counter[tuple[str, str]] = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, op: str, code: str, seconds: float, message: str = "") -> None:
        with self.lock:
            self.latencies.setdefault(f"{op} {code}", []).append(seconds)
            self.codes[op, code] += 1
            if code != "OK":
                self.examples.setdefault(f"{op} {code}", message[:200])

    def timed(self, op: str, call: Callable[[], object]) -> None:
        started = time.perf_counter()
        try:
            call()
        except WiretraceError as err:
            self.add(op, err.code.name, time.perf_counter() - started, err.message)
        else:
            self.add(op, "OK", time.perf_counter() - started)


def rss_of(pid: int) -> int:
    """Resident set size from /proc (Linux), in bytes."""
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


@contextmanager
def server_process(data_dir: Path, *args: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """`wiretrace serve` on a free loopback port; stopped with SIGTERM (its exit code is checked)."""
    with serve_process(data_dir, "--host", "127.0.0.1", "--drain-seconds", "0", *args) as (proc, address):
        yield proc, address
        proc.terminate()
        if proc.wait(timeout=30) != 0:
            raise RuntimeError(f"server exited with {proc.returncode} on SIGTERM")


class Corpus:
    """Generated stories (fixed id pool) and queries built from them."""

    def __init__(self, pool: int, seed: int) -> None:
        self.gen = CorpusGenerator(seed=seed, mean_words=250, source=None)
        self.pool = pool
        self.stories = [self.gen.story(i) for i in range(pool)]
        self.prose = [self.gen.story(pool + i).body for i in range(200)]  # never indexed

    def record(self, i: int) -> dict[str, Any]:
        s = self.stories[i]
        return {"story_id": s.story_id, "headline": s.headline, "body": s.body}

    def query(self, rng: random.Random) -> str:
        kind = rng.random()
        if kind < 0.5:
            return self.stories[rng.randrange(self.pool)].body
        if kind < 0.8:
            paras = self.stories[rng.randrange(self.pool)].body.split("\n\n")
            k = rng.randrange(len(paras))
            return rng.choice(self.prose) + "\n\n" + "\n\n".join(paras[k : k + 2])
        return rng.choice(self.prose)


def mixed_load(address: str, corpus: Corpus, clients: int, duration: float, seed: int) -> Tally:
    tally = Tally()
    deadline = time.monotonic() + duration

    def worker(n: int) -> None:
        rng = random.Random(seed * 1000 + n)
        with WiretraceClient(address, timeout=60) as client:
            while time.monotonic() < deadline:
                if rng.random() < 0.8:
                    text = corpus.query(rng)
                    tally.timed("Match", functools.partial(client.match, text, top_k=3))
                else:
                    ids = rng.sample(range(corpus.pool), rng.randint(5, 20))
                    batch = [corpus.record(i) for i in ids]
                    tally.timed("IndexStories", functools.partial(client.index_stories, batch, timeout=60))

    threads = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(duration + 120)
    return tally


def sample_rss(pid: int, stop: threading.Event, every: float = 1.0) -> list[tuple[float, int]]:
    samples: list[tuple[float, int]] = []
    started = time.monotonic()

    def run() -> None:
        while not stop.is_set():
            try:
                samples.append((time.monotonic() - started, rss_of(pid)))
            except (OSError, RuntimeError):
                return
            stop.wait(every)

    threading.Thread(target=run, daemon=True).start()
    return samples


def held_slots(address: str, corpus: Corpus, calls: int) -> tuple[Tally, Tally]:
    """Hold every RPC slot with idle streams; Match calls must be refused at once."""
    release = threading.Event()
    held = Tally()

    def stream() -> Iterator[dict[str, Any]]:
        yield corpus.record(0)
        release.wait(60)

    holders = []
    for _ in range(HOLD_SLOTS):
        c = WiretraceClient(address)
        t = threading.Thread(target=lambda c=c: held.timed("IndexStories(held)", lambda: c.index_stories(stream())))
        t.start()
        holders.append((c, t))
    time.sleep(1.0)  # let the streams arrive and take their slots
    refused = Tally()
    text = corpus.stories[1].body
    with WiretraceClient(address, timeout=10) as client:
        for _ in range(calls):
            refused.timed("Match", lambda: client.match(text))
    release.set()
    for c, t in holders:
        t.join(30)
        c.close()
    with WiretraceClient(address, timeout=30) as client:  # and the server is fine afterwards
        refused.timed("Match(after release)", lambda: client.match(text))
    return refused, held


def scrape_requests(port: int) -> dict[str, float]:
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
        text = reply.read().decode()
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "wiretrace_requests_total" and not s.labels["method"].startswith("grpc."):
                out[f"{s.labels['method']} {s.labels['code']}"] = s.value
            elif s.name in ("wiretrace_index_stories", "wiretrace_stories_indexed_total"):
                out[s.name] = s.value
    return out


def _latency_rows(tally: Tally) -> list[str]:
    rows = []
    for key in sorted(tally.latencies):
        p = percentiles(tally.latencies[key])
        n = len(tally.latencies[key])
        rows.append(
            f"| {key} | {n} | {p['p50_ms']:.1f} | {p['p90_ms']:.1f} | {p['p99_ms']:.1f} | "
            f"{max(tally.latencies[key]) * 1000:.1f} |"
        )
    header = [
        "| call and status | count | p50 ms | p90 ms | p99 ms | max ms |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    return [*header, *rows]


def _shedding_summary(refused: Tally, overload: Tally) -> str:
    """The finding of phases 2-3, in the measured numbers."""
    idle = percentiles(refused.latencies.get("Match RESOURCE_EXHAUSTED", []))
    busy = percentiles(overload.latencies.get("Match RESOURCE_EXHAUSTED", []))
    served = percentiles(overload.latencies.get("Match OK", []))
    return (
        f"Refusals come back in {idle['p50_ms']:.1f} ms (p99 {idle['p99_ms']:.1f} ms) when the slots are held by "
        f"idle streams, and in {busy['p50_ms']:.1f} ms (p99 {busy['p99_ms']:.1f} ms) while the CPUs are saturated "
        f"by served calls (p50 {served['p50_ms']:.0f} ms): past the limit the server sheds load at once instead of "
        "queueing it."
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=60.0, help="seconds of mixed load (default 60)")
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--pool", type=int, default=2000, help="story ids the writers upsert over")
    ap.add_argument("--overload-seconds", type=float, default=10.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)

    log(f"generating {args.pool} stories")
    corpus = Corpus(args.pool, args.seed)
    lines = [
        "# Load test",
        "",
        f"`python -m benchmarks.bench_load --duration {args.duration:g} --clients {args.clients}` on "
        f"{os.cpu_count()} CPUs (load average before: {os.getloadavg()[0]:.2f}), {time.strftime('%Y-%m-%d %H:%M')}; "
        "server and clients on 127.0.0.1, server in its own process with default settings.",
        "",
    ]
    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="wiretrace-load-") as tmp:
        data = Path(tmp) / "data"
        metrics_port = free_port()
        with server_process(data, "--metrics-port", str(metrics_port)) as (proc, address):
            with WiretraceClient(address, timeout=300) as admin:
                admin.wait_ready(30)
                started = time.perf_counter()
                admin.index_stories(corpus.record(i) for i in range(args.pool))
                log(f"indexed {args.pool} stories in {time.perf_counter() - started:.1f}s")
            stop = threading.Event()
            rss = sample_rss(proc.pid, stop)
            log(f"phase 1: {args.clients} clients, {args.duration:g}s of Match/IndexStories")
            tally = mixed_load(address, corpus, args.clients, args.duration, args.seed)
            stop.set()
            served = scrape_requests(metrics_port)

        ok = sum(v for (_, code), v in tally.codes.items() if code == "OK")
        errors = {f"{op} {code}": v for (op, code), v in tally.codes.items() if code != "OK"}
        if errors:
            failures.append(f"phase 1 errors: {errors}")
        values = [r for _, r in rss]
        third = max(1, len(values) // 3)
        middle = sorted(values[third : 2 * third])[len(values[third : 2 * third]) // 2] if len(values) >= 3 else 0
        last = sorted(values[-third:])[len(values[-third:]) // 2] if values else 0
        growth = (last - middle) / middle if middle else float("nan")
        plateau = growth < 0.05
        if not plateau:
            failures.append(f"RSS grew {growth:.1%} from the middle to the last third")
        lines += [
            f"## 1. Mixed load: {args.clients} clients, {args.duration:g} s",
            "",
            f"{args.pool} stories indexed first; 80% Match, 20% IndexStories (5-20 stories per stream, ids "
            f"upserted over the same {args.pool}).",
            "",
            f"**{ok} calls OK, {sum(errors.values())} errors** "
            f"({ok / args.duration:.0f} calls/s; errors by status: {errors or 'none'}).",
            "",
            *_latency_rows(tally),
            "",
            "Server-side counts from `/metrics` (`wiretrace_requests_total` etc.) at the end of the phase: "
            + ", ".join(f"{k} = {v:g}" for k, v in sorted(served.items())),
            "",
            f"Server RSS (sampled every second, {len(values)} samples): start {values[0] / 2**20:.0f} MiB, "
            f"max {max(values) / 2**20:.0f} MiB, median of the middle third {middle / 2**20:.0f} MiB, "
            f"of the last third {last / 2**20:.0f} MiB: growth {growth:+.1%} -> "
            f"**{'plateau' if plateau else 'still growing'}**.",
            "",
            "| t (s) | RSS (MiB) |",
            "| --- | --- |",
            *[f"| {t:.0f} | {r / 2**20:.1f} |" for t, r in rss[:: max(1, len(rss) // 12)]],
            "",
        ]

        log("phase 2: max_concurrent_rpcs=4, slots held by idle streams")
        limited = ("--max-concurrent-rpcs", str(HOLD_SLOTS), "--workers", str(HOLD_SLOTS))
        with server_process(data, *limited) as (_, address):
            WiretraceClient(address).wait_ready(30)
            refused, held = held_slots(address, corpus, calls=200)
            log(f"phase 3: {args.clients} clients calling Match flat out for {args.overload_seconds:g}s")
            overload = Tally()
            deadline = time.monotonic() + args.overload_seconds

            def hammer(n: int) -> None:
                rng = random.Random(n)
                with WiretraceClient(address, timeout=60) as client:
                    while time.monotonic() < deadline:
                        text = corpus.query(rng)
                        overload.timed("Match", functools.partial(client.match, text, top_k=3))

            threads = [threading.Thread(target=hammer, args=(n,)) for n in range(args.clients)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(args.overload_seconds + 120)

    refusals = refused.latencies.get("Match RESOURCE_EXHAUSTED", [])
    if len(refusals) != 200:
        failures.append(f"phase 2: {len(refusals)} of 200 calls refused with RESOURCE_EXHAUSTED")
    if refused.codes["Match(after release)", "OK"] != 1 or held.codes["IndexStories(held)", "OK"] != HOLD_SLOTS:
        failures.append(f"phase 2: held streams or the call after release failed: {held.codes} {refused.codes}")
    unexpected = {k: v for k, v in overload.codes.items() if k[1] not in ("OK", "RESOURCE_EXHAUSTED")}
    if unexpected:
        failures.append(f"phase 3: unexpected statuses {unexpected}")
    example = refused.examples.get("Match RESOURCE_EXHAUSTED", "")
    lines += [
        "## 2. Past `max_concurrent_rpcs`: held slots",
        "",
        f"Server with `--max-concurrent-rpcs {HOLD_SLOTS} --workers {HOLD_SLOTS}`; {HOLD_SLOTS} IndexStories "
        "streams held open (idle), then 200 Match calls one after another. Message: "
        f"`{example}`.",
        "",
        *_latency_rows(refused),
        *_latency_rows(held)[2:],
        "",
        f"## 3. Past `max_concurrent_rpcs`: {args.clients} clients calling Match for {args.overload_seconds:g} s",
        "",
        *_latency_rows(overload),
        "",
        _shedding_summary(refused, overload),
        "",
        "Calls refused by the limit are answered by gRPC before any handler runs, so they are seen by "
        "clients only, not in `wiretrace_requests_total`.",
        "",
        "**Result: " + ("all checks passed**" if not failures else "FAILED**: " + "; ".join(failures)),
        "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))
    log(f"wrote {args.out}")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
