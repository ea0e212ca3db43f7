"""Scale-out figures: Redis backend vs embedded, dedup local vs Spark.

    .venv/bin/python -m benchmarks.bench_scaleout [--stories 6000] [--dedup-docs 20000] [--skip-spark]
        [--only-redis] [--baseline GIT_REV] [--only-dedup] [--dedup-baseline GIT_REV]

``--baseline REV`` also runs the Redis backend as it was at REV (its
redis_backend.py read with ``git show``, loaded as a separate module) on the
same texts in the same run, for before/after figures; ``--only-redis`` skips
the de-duplication part and writes the Redis table alone. ``--dedup-baseline
REV`` and ``--only-dedup`` do the same for the local de-duplication engine.

Texts come from Reuters-21578 (read by path from ../shared when present, never
copied) or, without it, from the seeded generator of the tests. Writes
benchmarks/results/scaleout.md. Deterministic for a given seed; timings are
wall-clock on whatever the machine is also doing (the report records the load).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import importlib.util
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.redis_server import RedisServer
from tests.synth import NewsGen
from wiretrace.config import Settings
from wiretrace.dedup import DedupParams, run_local
from wiretrace.embedded_backend import EmbeddedBackend
from wiretrace.engine import Detector
from wiretrace.redis_backend import open_redis_backend
from wiretrace.types import StoryRecord

ROOT = Path(__file__).resolve().parents[1]

REUTERS = ROOT.parent / "shared" / "data" / "reuters21578.jsonl.gz"


def load_texts(limit: int, seed: int) -> tuple[list[str], str]:
    if REUTERS.exists():
        with gzip.open(REUTERS, "rt", encoding="utf-8") as fh:
            bodies = [b for b in (json.loads(line).get("body") for line in fh) if b and len(b.split()) >= 20]
        return bodies[:limit], f"Reuters-21578 bodies ({REUTERS})"
    gen = NewsGen(seed)
    return [gen.article() for _ in range(limit)], "synthetic (tests/synth.py NewsGen)"


def baseline_opener(rev: str, tmp: Path) -> Callable[..., Any]:
    """open_redis_backend of redis_backend.py as it was at a git revision."""
    src = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{rev}:src/wiretrace/redis_backend.py"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    path = tmp / f"redis_backend_{rev.replace('/', '_')}.py"
    path.write_text(src, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(f"redis_backend_{abs(hash(rev))}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.open_redis_backend  # type: ignore[no-any-return]


def bench_redis(texts: list[str], batch: int, queries: int, seed: int, baseline: str | None = None) -> list[str]:
    settings = Settings()
    fp = settings.index.fingerprint()
    records = [StoryRecord(f"s{i}", t) for i, t in enumerate(texts)]
    det = Detector(settings, EmbeddedBackend(Path(tempfile.mkdtemp()) / "p", fp))
    started = time.perf_counter()
    prints = det.prepare(texts)
    print_rate = len(texts) / (time.perf_counter() - started)
    det.close()
    rng = random.Random(seed)
    gen = NewsGen(seed)
    sample = [gen.edited(texts[rng.randrange(len(texts))]) for _ in range(queries)]
    rows = [
        f"Stories: {len(texts)}, batches of {batch}; printing (tokenise+MinHash, 1 core): {print_rate:,.0f} stories/s.",
        "",
        "| store | insert stories/s (prints ready) | Match p50 ms | Match p95 ms | store bytes |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        opener: Callable[..., Any] = open_redis_backend
        setups: list[tuple[str, str | None, Callable[..., Any]]] = [("embedded (SQLite + in-memory LSH)", None, opener)]
        if baseline is not None:
            old = baseline_opener(baseline, Path(tmp))
            setups += [(f"redis @ {baseline} (before), appendfsync always", "always", old)]
            setups += [(f"redis @ {baseline} (before), appendfsync everysec", "everysec", old)]
        setups += [("redis, appendfsync always", "always", opener), ("redis, appendfsync everysec", "everysec", opener)]
        for k, (name, fsync, open_backend) in enumerate(setups):
            server = None
            if fsync is None:
                backend = EmbeddedBackend(Path(tmp) / "emb", fp)
            else:
                server = RedisServer(Path(tmp) / f"redis-{k}-{fsync}", fsync=fsync).start()
                backend = open_backend(server.url, fp)
            d = Detector(settings, backend)
            started = time.perf_counter()
            for i in range(0, len(records), batch):
                d.upsert(records[i : i + batch], prints[i : i + batch])
            rate = len(records) / (time.perf_counter() - started)
            lat = []
            for q in sample:
                t0 = time.perf_counter()
                d.match(q)
                lat.append((time.perf_counter() - t0) * 1000)
            lat.sort()
            st = d.stats()
            rows.append(
                f"| {name} | {rate:,.0f} | {statistics.median(lat):.1f} | {lat[int(0.95 * (len(lat) - 1))]:.1f} "
                f"| {st.disk_bytes:,} |"
            )
            d.close()
            if server is not None:
                server.stop()
    return rows


def dedup_corpus(texts: list[str], n: int, path: Path, seed: int) -> int:
    """n articles: sources plus verbatim / edited / OCR-noisy copies (about a quarter are copies)."""
    gen = NewsGen(seed)
    rng = random.Random(seed)
    copies = 0
    with path.open("w", encoding="utf-8") as fh:
        for i in range(n):
            if i > 10 and rng.random() < 0.25:
                src = texts[rng.randrange(min(i, len(texts)))]
                text = rng.choice([gen.verbatim, gen.edited, gen.ocr])(src)
                copies += 1
            else:
                text = texts[i % len(texts)] if i < len(texts) else gen.article()
            fh.write(json.dumps({"id": f"a{i}", "text": text}) + "\n")
    return copies


def _dedup_row(name: str, s: dict[str, Any]) -> str:
    """One engine's line of the dedup table (both engines report the same fields)."""
    phases = s.get("phase_ends")
    steps = " / ".join(f"{v:.1f}" for v in phases.values()) if phases else "n/a"
    return (
        f"| {name} | {s['documents_per_second']:,.0f} | {s['seconds']} | {steps} | {s['clusters']} "
        f"| {s['candidate_pairs']} | {s['verified_pairs']} |"
    )


def dedup_baseline(rev: str, path: Path, out: Path, workers: int, warm: Path | None = None) -> dict[str, Any]:
    """The engine as of git revision `rev` (its src/ exported to a temp dir) on the same input, in a subprocess.

    Local with `workers` processes; with `warm` (a small archive for JVM warm-up), Spark local[2] instead.
    """
    src = out.parent / f"src-{rev}"
    if not src.exists():
        src.mkdir(parents=True)
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", rev, "src"], check=True, capture_output=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(src)], input=archive, check=True)
    if warm is None:
        code = (
            "import json; from pathlib import Path; from wiretrace.dedup import DedupParams, run_local; "
            f"print(json.dumps(run_local([{str(path)!r}], Path({str(out)!r}), DedupParams(), workers={workers}, "
            "progress=False)))"
        )
    else:
        code = (
            "import json; from pathlib import Path; from wiretrace.dedup import DedupParams; "
            "import importlib.util; "  # the Spark engine moved from dedup_spark to dedup.spark
            "old = importlib.util.find_spec('wiretrace.dedup_spark'); "
            "name = 'wiretrace.dedup_spark' if old else 'wiretrace.dedup.spark'; "
            "m = importlib.import_module(name); run_spark, spark_session = m.run_spark, m.spark_session; "
            "spark = spark_session('local[2]', progress=False); "
            f"run_spark([{str(warm)!r}], Path({str(out)!r} + '-warm'), DedupParams(), spark=spark, progress=False); "
            f"s = run_spark([{str(path)!r}], Path({str(out)!r}), DedupParams(), spark=spark, progress=False); "
            "spark.stop(); print(json.dumps(s))"
        )
    env = {**os.environ, "PYTHONPATH": str(src / "src")}
    res = subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True)
    return dict(json.loads(res.stdout.strip().splitlines()[-1]))


CACHE = ROOT / "benchmarks" / ".cache"  # gitignored: generated archives, reused across runs


def cached_corpus(texts: list[str], source: str, n: int, seed: int) -> tuple[Path, int]:
    """`dedup_corpus` written once under benchmarks/.cache and reused (generating 1M takes minutes).

    The name carries n, the seed and a digest of what decides the content (the
    text source, the generator's code), so a stale file is never reused.
    """
    digest = hashlib.sha256(
        "\n".join([source, str(len(texts)), (ROOT / "tests" / "synth.py").read_text(encoding="utf-8")]).encode()
    ).hexdigest()[:12]
    path = CACHE / f"archive-{n}-{seed}-{digest}.jsonl"
    meta = path.with_suffix(".copies")
    if not (path.exists() and meta.exists()):
        CACHE.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        copies = dedup_corpus(texts, n, partial, seed)
        partial.rename(path)
        meta.write_text(str(copies), encoding="utf-8")
    return path, int(meta.read_text(encoding="utf-8"))


def bench_dedup(
    texts: list[str],
    source: str,
    n: int,
    skip_spark: bool,
    seed: int,
    tmp: Path,
    baseline: str | None = None,
    workers: tuple[int, ...] = (1, 2),
) -> list[str]:
    """Local engine with each number of `workers` and Spark local[2], plus both as of `baseline`, on one archive."""
    path, copies = cached_corpus(texts, source, n, seed)
    warm = tmp / "warm.jsonl"  # JVM and Python-worker warm-up for Spark: the first 2,000 articles
    with path.open(encoding="utf-8") as src, warm.open("w", encoding="utf-8") as dst:
        dst.writelines(line for _, line in zip(range(2000), src, strict=False))
    rows = [
        f"Archive: {n} articles ({copies} generated copies), JSONL (`{path.relative_to(ROOT)}`).",
        "",
        "| engine | articles/s | seconds | steps done at s (local: print / pairs / verify; spark: print / verify / "
        "write) | clusters | candidate pairs | verified |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    outputs: dict[str, Path] = {}
    seconds: dict[str, float] = {}
    if baseline:
        s = dedup_baseline(baseline, path, tmp / "baseline", 2)
        seconds["old local 2"] = s["seconds"]
        rows.append(_dedup_row(f"local, 2 processes, as of `{baseline}`", s))
        outputs[f"local as of `{baseline}`"] = tmp / "baseline"
    for w in workers:
        s = run_local([str(path)], tmp / f"local{w}", DedupParams(), workers=w, progress=False)
        seconds[f"local {w}"] = s["seconds"]
        rows.append(_dedup_row(f"local, {w} process(es)", s))
        outputs[f"local, {w} process(es)"] = tmp / f"local{w}"
    if not skip_spark:
        from wiretrace.dedup.spark import run_spark, spark_session

        if baseline:
            s = dedup_baseline(baseline, path, tmp / "baseline-spark", 2, warm)
            seconds["old spark"] = s["seconds"]
            rows.append(_dedup_row(f"spark local[2] (warm session), as of `{baseline}`", s))
            outputs[f"spark as of `{baseline}`"] = tmp / "baseline-spark"
        spark = spark_session("local[2]", progress=False)
        run_spark([str(warm)], tmp / "warm", DedupParams(), spark=spark, progress=False)
        s = run_spark([str(path)], tmp / "spark", DedupParams(), spark=spark, progress=False)
        spark.stop()
        seconds["spark"] = s["seconds"]
        rows.append(_dedup_row("spark local[2] (warm session)", s))
        outputs["spark"] = tmp / "spark"
    names = list(outputs)
    reference = (outputs[names[-1]] / "clusters.jsonl").read_bytes()
    same = all((outputs[k] / "clusters.jsonl").read_bytes() == reference for k in names)
    ratios = []  # same-run ratios: what the shared machine's load cannot skew much
    if "old local 2" in seconds and "local 2" in seconds:
        ratios.append(
            f"local 2 processes {seconds['old local 2'] / seconds['local 2']:.2f}x faster than as of `{baseline}`"
        )
    if "old spark" in seconds and "spark" in seconds:
        ratios.append(f"Spark {seconds['old spark'] / seconds['spark']:.2f}x faster than as of `{baseline}`")
    if "spark" in seconds and "local 2" in seconds:
        ratios.append(
            f"Spark local[2] takes {seconds['spark'] / seconds['local 2']:.2f}x the time of local, 2 processes"
        )
    load = os.getloadavg()[0]
    return [
        *rows,
        "",
        f"clusters.jsonl byte-identical across {', '.join(names)}: {same}.",
        "",
        f"Same-run ratios: {'; '.join(ratios) or 'n/a'}. Load average at the end: {load:.1f}.",
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--stories", type=int, default=6000)
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--dedup-docs", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=17)
    ap.add_argument("--skip-spark", action="store_true")
    ap.add_argument("--only-redis", action="store_true", help="Skip de-duplication.")
    ap.add_argument("--baseline", metavar="GIT_REV", help="Also run the Redis backend as of this revision.")
    ap.add_argument("--only-dedup", action="store_true", help="Skip Redis; replace only the dedup section.")
    ap.add_argument("--dedup-baseline", metavar="GIT_REV", help="Also run both dedup engines as of this revision.")
    ap.add_argument(
        "--dedup-workers", default="1,2", help="Process counts for the local dedup engine (comma-separated)."
    )
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "scaleout.md")
    args = ap.parse_args()
    workers = tuple(int(w) for w in args.dedup_workers.split(","))
    texts, source = load_texts(args.stories if args.only_redis else max(args.stories, args.dedup_docs), args.seed)
    load = os.getloadavg()
    command = " ".join(["python -m benchmarks.bench_scaleout", *sys.argv[1:]])
    where = f"on {os.cpu_count()} cores (load average at start {load[0]:.1f}: the machine is shared). Texts: {source}."
    if args.only_dedup:
        # Replace just the de-duplication section of an existing report; the Redis figures stay as they were.
        with tempfile.TemporaryDirectory() as tmp:
            rows = bench_dedup(
                texts, source, args.dedup_docs, args.skip_spark, args.seed, Path(tmp), args.dedup_baseline, workers
            )
        old = args.out.read_text(encoding="utf-8") if args.out.exists() else "# Scale-out benchmarks\n\n"
        head = old.partition("## Archive de-duplication")[0]
        text = head + "\n".join(["## Archive de-duplication", "", f"`{command}` {where}", "", *rows]) + "\n"
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text, encoding="utf-8")
        print(text)
        return
    redis_rows = bench_redis(texts[: args.stories], args.batch, args.queries, args.seed, args.baseline)
    if args.only_redis:
        # Replace just the Redis section of an existing report; the de-duplication figures stay as they were.
        section = ["## Redis backend vs embedded", "", f"`{command}` {where}", "", *redis_rows, ""]
        old = args.out.read_text(encoding="utf-8") if args.out.exists() else "# Scale-out benchmarks\n\n"
        head, _, rest = old.partition("## Redis backend vs embedded")
        tail = rest[rest.find("## Archive de-duplication") :] if "## Archive de-duplication" in rest else ""
        text = head + "\n".join(section) + ("\n" + tail if tail else "")
    else:
        lines = ["# Scale-out benchmarks", "", f"`{command}` {where}", "", "## Redis backend vs embedded", ""]
        lines += [*redis_rows, "", "## Archive de-duplication", ""]
        with tempfile.TemporaryDirectory() as tmp:
            lines += bench_dedup(
                texts, source, args.dedup_docs, args.skip_spark, args.seed, Path(tmp), args.dedup_baseline, workers
            )
        text = "\n".join(lines) + "\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
