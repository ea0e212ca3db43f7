"""Match latency with the newsroom filters (issue 17): a one-week window, and a window plus a source.

A generated wire of N stories published in order over `--days` days (four agencies in turn) is
indexed into ``wiretrace serve`` in its own process. Each query (derived articles and negatives
from ``wiretrace.corpusgen``) gets a publication time just after its source story's, and is sent
three ways, interleaved so that machine noise falls on all alike: no filter, the week before the
article (``published_after`` = article - 7 days, ``published_before`` = article), and that week
from the source's agency only. One client, so the latency is one request's.

    .venv/bin/python -m benchmarks.bench_filters --stories 100000 --out benchmarks/results/filters-100k

Writes ``report.md`` and ``results.json`` to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.bench_service import CHUNK, grpc_target
from benchmarks.common import default_source, log, percentiles, wait_idle
from wiretrace.client import WiretraceClient
from wiretrace.corpusgen import CorpusGenerator

AGENCIES = ("AP", "AFP", "Reuters", "APP")
T0_S = 1_750_000_000  # the wire starts here (2025-06-15)
DAY_S = 86_400
MODES = ("none", "week", "week+source")


def published_s(i: int, n: int, days: float) -> float:
    """Story i of n, published in order over `days` days."""
    return T0_S + i * days * DAY_S / n


def filters(mode: str, article_s: float, agency: str) -> dict[str, Any]:
    if mode == "none":
        return {}
    week = {"published_after": int((article_s - 7 * DAY_S) * 1e9), "published_before": int(article_s * 1e9)}
    return week if mode == "week" else {**week, "sources": [agency]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stories", type=int, default=100_000)
    ap.add_argument("--days", type=float, default=365.0, help="Days the wire's publication times span.")
    ap.add_argument("--queries", type=int, default=400)
    ap.add_argument("--rounds", type=int, default=3, help="Times each query is sent in each mode.")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/filters"))
    args = ap.parse_args()
    n = args.stories
    gen = CorpusGenerator(seed=args.seed, source=default_source())
    prefix_len = len(gen.story_id(0)) - 8

    def index_of(story_id: str) -> int:
        return int(story_id[prefix_len:])

    data_dir = Path(tempfile.mkdtemp(prefix="wiretrace-bench-filters-"))
    rng = random.Random(args.seed)
    try:
        with grpc_target(data_dir) as target:
            started = time.perf_counter()
            for first in range(0, n, CHUNK):
                batch = []
                for i, s in enumerate(gen.stories(min(n, first + CHUNK), start=first), first):
                    row = s.as_json()
                    row["published_at"] = published_s(i, n, args.days)
                    row["source"] = AGENCIES[i % len(AGENCIES)]
                    batch.append(row)
                target.index(batch)
            ingest_s = time.perf_counter() - started
            log(f"indexed {n} stories in {ingest_s:.0f}s; waiting for the server to settle")
            # At 1M stories folding the index's runs takes minutes, with pauses between merges.
            log(f"the server was idle after {wait_idle(target.pid, quiet_s=15, timeout_s=1200):.0f}s")
            queries = list(gen.queries(n, args.queries))
            plan = []  # (text, article time, agency of its source, accepted ids)
            for q in queries:
                sources = q.get("sources") or []
                if sources:
                    i = index_of(sources[0]["story_id"])
                    article_s = published_s(i, n, args.days) + rng.uniform(0, DAY_S)
                    agency = AGENCIES[i % len(AGENCIES)]
                    accept = set(sources[0]["accept"])
                    if q["kind"] == "merged":
                        accept = {a for s in sources for a in s["accept"]}
                else:
                    article_s = published_s(rng.randrange(n), n, args.days)
                    agency, accept = rng.choice(AGENCIES), set()
                plan.append((q["text"], article_s, agency, accept))
            in_week = n * 7 / args.days
            log(f"{len(plan)} queries, {args.rounds} rounds, modes {MODES}; a week holds ~{in_week:.0f} stories")
            lat: dict[str, list[float]] = {m: [] for m in MODES}
            found: dict[str, int] = dict.fromkeys(MODES, 0)
            checked: dict[str, int] = dict.fromkeys(MODES, 0)
            derived = sum(1 for _, _, _, accept in plan if accept)
            with WiretraceClient(target.address, timeout=30) as client:
                for text, _, _, _ in plan[:50]:  # warm the channel and the server's caches
                    client.match(text, top_k=5)
                for r in range(args.rounds):
                    for text, article_s, agency, accept in plan:
                        modes = list(MODES)
                        rng.shuffle(modes)
                        for mode in modes:
                            t0 = time.perf_counter()
                            res = client.match(text, top_k=5, **filters(mode, article_s, agency))
                            lat[mode].append(time.perf_counter() - t0)
                            if r == 0:
                                checked[mode] += res.candidates_checked
                                if accept and res.matches and res.matches[0].story_id in accept:
                                    found[mode] += 1
            stats = target.stats()
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    rows = {
        m: {
            **percentiles(lat[m]),
            "samples": len(lat[m]),
            "top_is_source": found[m] / max(derived, 1),
            "candidates_checked_mean": checked[m] / len(plan),
        }
        for m in MODES
    }
    result = {
        "stories": n,
        "days": args.days,
        "stories_per_week": in_week,
        "queries": len(plan),
        "derived_queries": derived,
        "rounds": args.rounds,
        "ingest_stories_s": n / ingest_s,
        "server": stats,
        "modes": rows,
        "load_average_at_end": list(os.getloadavg()),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(result, indent=2) + "\n")
    base = rows["none"]
    lines = [
        f"# Match with filters at {n:,} stories",
        "",
        f"{n:,} generated stories published in order over {args.days:g} days (~{in_week:,.0f} a week), four "
        f"agencies in turn; {len(plan)} queries ({derived} derived from an indexed story), each sent "
        f"{args.rounds} times per mode, modes interleaved; one client over gRPC to `wiretrace serve`. "
        f"Load average at the end: {', '.join(f'{x:.1f}' for x in result['load_average_at_end'])}.",
        "",
        "| filter | p50 ms | p90 ms | p99 ms | p50 / p99 vs none | top match is the source | candidates checked |",
        "|---|---|---|---|---|---|---|",
    ]
    for m in MODES:
        row = rows[m]
        lines.append(
            f"| {m} | {row['p50_ms']:.2f} | {row['p90_ms']:.2f} | {row['p99_ms']:.2f} | "
            f"{row['p50_ms'] / base['p50_ms']:.2f} / {row['p99_ms'] / base['p99_ms']:.2f} | "
            f"{row['top_is_source']:.3f} | {row['candidates_checked_mean']:.1f} |"
        )
    lines += [
        "",
        f"Reproduce: `.venv/bin/python -m benchmarks.bench_filters --stories {n} --days {args.days:g} "
        f"--queries {args.queries} --rounds {args.rounds} --out {args.out}`",
    ]
    (args.out / "report.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
