"""De-duplication quality: OCR-noisy, edited and cut copies of real stories, and lone stories.

    .venv/bin/python -m benchmarks.bench_dedup_quality [--engines local,spark] [--out FILE]

Two archives, both built from ``../shared/eval/synthetic-dev`` read by path (never copied):

1. **Copies** (issue 14): from the 15,286 Reuters-21578 stories of ``wire.jsonl.gz``,
   stories sharing at least 10% of their word 5-grams with another single story
   are dropped (re-sends, updates, tables of one kind: they are duplicates
   already), then 600 are drawn (seeded) to appear clean and as five copies
   (look-alike OCR noise on 2%, 5% and 8% of the letters, with spaces lost at a
   third of that rate, as in the shared set's noisy kind; an edited copy:
   paragraphs swapped and one dropped, shorthand expanded, synonyms, a sentence
   dropped now and then; the lead paragraphs (then sentences) making up at least 60% of the words),
   and 600 others once each. 4,200 documents, in a seeded random order.
2. **synthetic-dev as an archive**: its 15,286 stories and 1,500 queries together.
   Verbatim, edited and noisy queries should be clustered with their source;
   unrelated and local ones (and siblings) should stay alone. Trimmed queries are
   lead cuts (clustered by the lead rule, ``--lead-coverage``); excerpt, merged
   and brief ones have no goal and are shown for information.

Both engines run at the defaults (``DedupParams()``); their ``clusters.jsonl``
must be byte-identical. Prints a Markdown report (also written to ``--out``).
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import re
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from wiretrace.corpusgen import edited, lookalike_noise
from wiretrace.dedup import DedupParams, run_local
from wiretrace.dedup.evaluation import read_clusters, score_partition
from wiretrace.shingling import shingle_hashes
from wiretrace.text import token_hashes_batch

ROOT = Path(__file__).resolve().parents[1]
DEV = ROOT.parent / "shared" / "eval" / "synthetic-dev"
NOISE = (0.02, 0.05, 0.08)
COPY_KINDS = (*(f"noise {r:.0%}" for r in NOISE), "edited", "lead ≥ 60%")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def _read(path: Path) -> list[dict[str, Any]]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def distinct_stories(bodies: list[str], share: float = 0.10) -> np.ndarray:
    """Indices of the bodies sharing less than `share` of their distinct word 5-grams with every other
    single body (exact pair counts, from one sort of (5-gram, body) entries)."""
    tokens, toff = token_hashes_batch(bodies)
    grams, owners = [], []
    for i in range(len(bodies)):
        g = np.unique(shingle_hashes(tokens[toff[i] : toff[i + 1]], 5))
        grams.append(g)
        owners.append(np.full(g.size, i, dtype=np.int64))
    gram, owner = np.concatenate(grams), np.concatenate(owners)
    n_grams = np.bincount(owner, minlength=len(bodies))
    order = np.lexsort((owner, gram))
    gram, owner = gram[order], owner[order]
    starts = np.flatnonzero(np.concatenate(([True], gram[1:] != gram[:-1])))
    sizes = np.diff(np.append(starts, gram.size))
    worst = np.zeros(len(bodies))
    codes: list[np.ndarray] = []
    for size in np.unique(sizes[sizes >= 2]).tolist():  # every ordered pair of bodies sharing a 5-gram
        first = starts[sizes == size]
        row, col = np.nonzero(~np.eye(size, dtype=bool))
        left = owner[first[:, None] + row[None, :]].ravel()
        right = owner[first[:, None] + col[None, :]].ravel()
        codes.append(left << 32 | right)
    if codes:
        pair, shared = np.unique(np.concatenate(codes), return_counts=True)
        body = pair >> 32
        np.maximum.at(worst, body, shared / np.maximum(1, n_grams[body]))
    return np.flatnonzero((worst < share) & (n_grams > 0))


def lead(paragraphs: list[str], share: float = 0.6) -> str:
    """The lead: whole sentences from the top, paragraphs kept, until at least `share` of the words; when
    that would be the whole story (its last sentence is most of it), its first words up to `share`."""
    need = math.ceil(share * sum(len(p.split()) for p in paragraphs))
    out: list[list[str]] = []
    words = 0
    for p in paragraphs:
        out.append([])
        for sentence in _SENTENCE_END.split(p):
            if words >= need:
                return "\n\n".join(" ".join(x) for x in out if x)
            out[-1].append(sentence)
            words += len(sentence.split())
    cut: list[str] = []
    for p in paragraphs:  # the whole story: cut inside the last sentence instead
        take = p.split()[: need - sum(len(x.split()) for x in cut)]
        if take:
            cut.append(" ".join(take))
    return "\n\n".join(cut)


def copies_archive(wire: Path, n_sources: int, n_lone: int, seed: int) -> tuple[list[dict[str, str]], dict[str, Any]]:
    """The issue's archive: documents ({id, text}) and truth (kind and group of each id)."""
    stories = [s for s in _read(wire) if len(s["body"].split()) >= 20]
    keep = distinct_stories([s["body"] for s in stories])
    rng = np.random.default_rng(seed)
    picked = rng.permutation(keep)[: n_sources + n_lone].tolist()
    docs: list[dict[str, str]] = []
    kind: dict[str, str] = {}
    group: dict[str, str] = {}
    for n, i in enumerate(picked):
        s = stories[i]
        body: str = s["body"]
        if n >= n_sources:
            doc_id = f"lone-{s['story_id']}"
            docs.append({"id": doc_id, "text": body})
            kind[doc_id], group[doc_id] = "lone", doc_id
            continue
        paragraphs = [p for p in body.split("\n\n") if p.strip()]
        variants = {"clean": body}
        for rate, name in zip(NOISE, COPY_KINDS, strict=False):
            variants[name] = lookalike_noise(rng, body, rate)
        variants["edited"] = edited(rng, paragraphs)
        variants["lead ≥ 60%"] = lead(paragraphs)
        for name, text in variants.items():
            doc_id = f"{s['story_id']}/{name}"
            docs.append({"id": doc_id, "text": text})
            kind[doc_id], group[doc_id] = name, s["story_id"]
    order = rng.permutation(len(docs)).tolist()
    return [docs[i] for i in order], {"kind": kind, "group": group}


def dev_archive(dev: Path) -> tuple[list[dict[str, str]], dict[str, Any]]:
    """synthetic-dev's stories and queries as one archive, and each query's kind and source ids."""
    docs = [{"id": s["story_id"], "text": s["body"]} for s in _read(dev / "wire.jsonl.gz")]
    kind: dict[str, str] = {}
    sources: dict[str, list[str]] = {}
    for q in _read(dev / "queries.jsonl.gz"):
        docs.append({"id": q["query_id"], "text": q["text"]})
        kind[q["query_id"]] = q["kind"]
        sources[q["query_id"]] = list(q["sources"][0]["accept"]) if q["sources"] else []
    return docs, {"kind": kind, "sources": sources}


def _write(docs: list[dict[str, str]], path: Path) -> None:
    with path.open("w", encoding="utf-8") as fh:
        for d in docs:
            fh.write(json.dumps(d, ensure_ascii=False) + "\n")


def run_engines(path: Path, out: Path, engines: list[str]) -> dict[str, dict[str, Any]]:
    """Summaries of each engine's run (outputs in out/ENGINE)."""
    summaries: dict[str, dict[str, Any]] = {}
    for engine in engines:
        started = time.perf_counter()
        if engine == "local":
            summaries[engine] = run_local([str(path)], out / engine, DedupParams(), workers=2, progress=False)
        else:
            from wiretrace.dedup.spark import run_spark, spark_session

            spark = spark_session("local[2]", progress=False)
            summaries[engine] = run_spark([str(path)], out / engine, DedupParams(), spark=spark, progress=False)
        summaries[engine]["wall"] = time.perf_counter() - started
    return summaries


def score_copies(clusters: dict[str, int], truth: dict[str, Any], out_dir: Path) -> list[str]:
    kind, group = truth["kind"], truth["group"]
    together: Counter[str] = Counter()
    count: Counter[str] = Counter()
    for doc, k in kind.items():
        count[k] += 1
        if k == "lone":
            together[k] += doc in clusters
        elif k != "clean":
            clean = f"{group[doc]}/clean"
            together[k] += doc in clusters and clusters.get(clean) == clusters[doc]
    score = score_partition(clusters, group)
    reps = _representatives(out_dir, kind)
    rows = ["| copy of a story | clustered with the clean story |", "|---|---:|"]
    rows += [f"| {k} | {together[k] / count[k]:.3f} ({together[k]}/{count[k]}) |" for k in COPY_KINDS]
    rows.append(f"| lone stories put in any cluster (false merges) | {together['lone'] / count['lone']:.3f} |")
    rows += [
        "",
        f"Adjusted Rand index over all {score.documents:,} documents: **{score.adjusted_rand_index:.4f}**; "
        f"pair precision {score.precision:.4f}, pair recall {score.recall:.4f}, F1 {score.f1:.4f}.",
        f"Representatives: {reps['clean']} of {sum(reps.values())} clusters have the clean story "
        f"({', '.join(f'{k}: {v}' for k, v in reps.most_common() if k != 'clean') or 'no other'}).",
    ]
    return rows


def _representatives(out_dir: Path, kind: dict[str, str]) -> Counter[str]:
    reps: Counter[str] = Counter()
    with (out_dir / "clusters.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            rec = json.loads(line)
            reps[kind.get(rec["representative"], "?")] += 1
    return reps


DEV_TARGETS = {"verbatim": "with ≥ 0.97", "edited": "with ≥ 0.97", "noisy": "with ≥ 0.97", "unrelated": "alone ≥ 0.98",
               "local": "alone ≥ 0.98", "sibling": "alone"}  # fmt: skip


def score_dev(clusters: dict[str, int], truth: dict[str, Any]) -> list[str]:
    """Per query kind: the share clustered with its source, and the share left alone."""
    kind, sources = truth["kind"], truth["sources"]
    with_source: Counter[str] = Counter()
    alone: Counter[str] = Counter()
    count: Counter[str] = Counter()
    for q, k in kind.items():
        count[k] += 1
        alone[k] += q not in clusters
        with_source[k] += q in clusters and any(clusters.get(s) == clusters[q] for s in sources[q])
    rows = ["| kind | n | clustered with its source | left alone | goal |", "|---|---:|---:|---:|---|"]
    for k in sorted(count, key=lambda k: (k not in DEV_TARGETS, list(DEV_TARGETS).index(k) if k in DEV_TARGETS else k)):
        rows.append(
            f"| {k} | {count[k]} | {with_source[k] / count[k]:.3f} | {alone[k] / count[k]:.3f} | "
            f"{DEV_TARGETS.get(k, '(not set)')} |"
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--dev", type=Path, default=DEV, help="the synthetic-dev directory (read by path)")
    ap.add_argument("--engines", default="local", help="local, spark, or local,spark")
    ap.add_argument("--sources", type=int, default=600)
    ap.add_argument("--lone", type=int, default=600)
    ap.add_argument("--seed", type=int, default=14)
    ap.add_argument("--skip-dev", action="store_true", help="only the copies archive")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "dedup-quality.md")
    args = ap.parse_args()
    engines = args.engines.split(",")
    lines = [
        "# De-duplication quality",
        "",
        f"`.venv/bin/python -m benchmarks.bench_dedup_quality --engines {args.engines}` "
        f"(seed {args.seed}; load average {os.getloadavg()[0]:.1f} at the start)",
        "",
    ]
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        archives = [("copies", *copies_archive(args.dev / "wire.jsonl.gz", args.sources, args.lone, args.seed))]
        if not args.skip_dev:
            archives.append(("synthetic-dev", *dev_archive(args.dev)))
        for name, docs, truth in archives:
            path = tmp / f"{name}.jsonl"
            _write(docs, path)
            summaries = run_engines(path, tmp / name, engines)
            outputs = {e: (tmp / name / e / "clusters.jsonl").read_bytes() for e in engines}
            same = len(set(outputs.values())) == 1
            first = engines[0]
            clusters = read_clusters(tmp / name / first / "clusters.jsonl")
            title = "Copies archive" if name == "copies" else "synthetic-dev as an archive"
            lines += [f"## {title} ({len(docs):,} documents)", ""]
            rows = score_copies(clusters, truth, tmp / name / first) if name == "copies" else score_dev(clusters, truth)
            lines += rows
            timing = ", ".join(
                f"{e} {s['wall']:.1f} s ({s['clusters']} clusters, {s['verified_pairs']} verified of "
                f"{s['candidate_pairs']} candidate pairs)"
                for e, s in summaries.items()
            )
            identical = "identical" if same else "**DIFFERENT**"
            lines += ["", f"Engines: {timing}; clusters.jsonl {identical} across {', '.join(engines)}.", ""]
            print("\n".join(lines[-len(rows) - 4 :]), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
