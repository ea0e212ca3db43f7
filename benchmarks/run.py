"""Run the benchmark suite: ``python -m benchmarks.run --profile quick|full --out benchmarks/results/<profile>/``.

Writes ``results.json`` (every number), ``report.md`` (tables, findings) and PNG plots. Each
section is independent (``--only signatures,service,memory,sweep``) and every ratio is taken
between figures measured in the same run, because the machine is shared.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import PROFILES, REPO, default_source, log

SECTIONS = ("signatures", "service", "memory", "sweep")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--profile", choices=sorted(PROFILES), default="quick")
    ap.add_argument("--out", type=Path, default=None, help="default: benchmarks/results/<profile>/")
    ap.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--source", default=None, help="real text to train the corpus generator (default: ../shared)")
    ap.add_argument("--no-shared", action="store_true", help="use the built-in corpus fallback, not ../shared")
    ap.add_argument("--in-process", action="store_true", help="measure the Detector even if gRPC is available")
    ap.add_argument("--sizes", default=None, help="override the service sizes, e.g. 10000,100000,1000000")
    ap.add_argument(
        "--processes", default=None, help="server process counts measured again at the largest size, e.g. 1,2 ('' none)"
    )
    args = ap.parse_args(argv)

    from benchmarks import bench_memory, bench_service, bench_signatures, bench_sweep, report
    from wiretrace.config import IndexSettings
    from wiretrace.corpusgen import CorpusGenerator

    profile = PROFILES[args.profile]
    if args.sizes:
        from dataclasses import replace

        profile = replace(profile, service_sizes=tuple(int(x) for x in args.sizes.split(",")))
    if args.processes is not None:
        from dataclasses import replace

        profile = replace(profile, service_processes=tuple(int(x) for x in args.processes.split(",") if x))
    out = args.out or REPO / "benchmarks" / "results" / profile.name
    out.mkdir(parents=True, exist_ok=True)
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    source = args.source or default_source(args.no_shared)
    started = time.time()
    gen = CorpusGenerator(seed=args.seed, source=source)
    t0 = time.perf_counter()
    _ = gen.model
    log(f"corpus model from {gen.model.source} ({gen.model.v} words) in {time.perf_counter() - t0:.1f}s")
    res: dict[str, Any] = {
        "meta": {
            "profile": profile.name,
            "seed": args.seed,
            "corpus_source": gen.model.source,
            "started": time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(started)),
            "machine": f"{platform.machine()} {platform.processor() or ''} {_cpu_name()}".strip(),
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "index_settings": json.loads(IndexSettings().fingerprint()),
            "command": f"python -m benchmarks.run --profile {profile.name}"
            + (" --no-shared" if args.no_shared else ""),
            "load_average_at_start": list(os.getloadavg()),
            "commit": _commit(),
        }
    }
    work = Path(tempfile.mkdtemp(prefix="wiretrace-bench-"))
    try:
        if "signatures" in only:
            docs = [s.body for s in gen.stories(profile.sig_docs)]
            res["signatures"] = bench_signatures.run(profile, docs, out)
            res["signatures"]["findings"] = findings(res["signatures"])
        if "service" in only:
            res["service"] = bench_service.run(profile, gen, work, force_inprocess=args.in_process)
        if "memory" in only:
            bodies = [s.body for s in gen.stories(profile.memory_ds_stories)]
            res["memory"] = bench_memory.run(bodies, work)
        if "sweep" in only:
            shared_eval = None if args.no_shared else REPO.parent / "shared" / "eval" / "synthetic-dev"
            res["sweep"] = bench_sweep.run(profile, gen, work, shared_eval, args.seed)
    finally:
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    res["meta"]["elapsed_s"] = time.time() - started
    res["meta"]["load_average_at_end"] = list(os.getloadavg())
    (out / "results.json").write_text(json.dumps(res, indent=1, default=float))
    report.render(res, out)
    log(f"done in {res['meta']['elapsed_s']:.0f}s: {out / 'report.md'}")
    return 0


def findings(sig: dict[str, Any]) -> str:
    """Where our signature time goes, in words, from the stage breakdown."""
    b = sig["breakdown_s_per_doc"]
    stories = b.get("TextPipeline.stories (batches of 256)")
    text = b.get("token_hashes_batch (stories path, batches of 256)")
    tok = b["tokenize (total, warm hash cache)"]
    spans = b["content_spans (boilerplate regexes)"]
    single = (
        f"A single text (Match's article, a one-story call) takes the per-text tokenizer instead: "
        f"{tok * 1e6:.0f} µs, of which boilerplate line regexes {spans * 1e6:.0f} µs."
    )
    if stories is None or text is None:
        return single
    return (
        f"Indexing takes the batched path: `TextPipeline.stories` costs {stories * 1e6:.0f} µs per story "
        f"({1 / stories:,.0f} docs/s on one core), of which the batched text stage (boilerplate, tokens and "
        f"their hashes over a whole batch's code points) is {text * 1e6:.0f} µs ({text / stories:.0%}) and "
        f"shingles, windows, MinHash and band keys the other {(stories - text) * 1e6:.0f} µs. " + single
    )


def _commit() -> str:
    """The checkout's commit (with '+' when it has uncommitted changes), so a report names its code."""
    import subprocess

    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO, capture_output=True)
    except OSError:
        return ""
    return head.stdout.strip() + ("+" if dirty.stdout.strip() else "")


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


if __name__ == "__main__":
    raise SystemExit(main())
