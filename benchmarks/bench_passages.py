"""Whole passages: PAN-style plagdet and granularity of the passages Match returns, with and without
the passage bridge, on generated sets with passage truth; and what the bridge costs per Match.

    python -m benchmarks.bench_passages                  # ~3 min on 2 cores
    python -m benchmarks.bench_passages --stories 5000 --queries 800 --out results.json

Two sets, each indexed in its own in-process ``Detector``:

* news: ``--stories`` stories and ``--queries`` queries of every kind (``wiretrace.corpusgen``,
  trained on ``../shared`` Reuters text when present, else the built-in generator), each with
  ``passages`` (character offsets of every reused passage in the query and its story);
* long: ``--pan-documents`` long documents (six stories' prose each) and ``--pan-queries`` long
  queries with one to three passages of one document inside, half verbatim, half with random
  word-level obfuscation: the shape of the public text-alignment corpora (``pan_like``).

Every query is matched with the settings' ``passage_bridge`` and with it at 0 (passages as the
diagonal chaining leaves them), interleaved, so both see the same machine load. Scores with
``wiretrace.evaluation.plagdet`` (Potthast et al. 2010: character precision and recall over both
texts, granularity, plagdet), per kind and overall. Match p50 is the median over queries of each
query's fastest of ``--repeat`` runs; the alignment step's cost (chaining, and bridging when on)
is replayed on the inputs the queries gave it, since a few microseconds drown in a whole Match's
noise on a shared machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import default_source
from wiretrace import engine
from wiretrace.config import Settings
from wiretrace.corpusgen import KINDS, CorpusGenerator
from wiretrace.embedded_backend import EmbeddedBackend
from wiretrace.engine import Detector
from wiretrace.evaluation import Annotation, Plagdet, passage_annotations, plagdet
from wiretrace.scoring import align_many
from wiretrace.types import MatchResult, StoryRecord


def _score(queries: list[dict[str, Any]], results: list[MatchResult]) -> dict[str, Plagdet]:
    by_kind: dict[str, tuple[list[Annotation], list[Annotation]]] = {}
    for q, r in zip(queries, results, strict=True):
        cases, found = passage_annotations(q, r, q["query_id"])
        for key in (q["kind"], "all"):
            c, f = by_kind.setdefault(key, ([], []))
            c.extend(cases)
            f.extend(found)
    return {k: plagdet(c, f) for k, (c, f) in by_kind.items()}


def pan_like(
    gen: CorpusGenerator, n_docs: int, n_queries: int, seed: int
) -> tuple[list[StoryRecord], list[dict[str, Any]]]:
    """Long documents with passages of other long documents inside them, as text-alignment
    corpora are made: source documents of six generated stories' prose (~3,600 words), and
    queries of four other stories' prose with one to three passages (sentences, 30-400 words)
    of one source document inserted at sentence boundaries, half of them verbatim and half
    with random obfuscation (words replaced, dropped, inserted or swapped with a neighbour,
    at 5-20%), truth in the generator's format."""
    rng = np.random.default_rng([seed, 13])
    docs: list[StoryRecord] = []
    sentences: list[list[str]] = []
    it = gen.stories(6 * n_docs)
    for d in range(n_docs):
        sents = [x for _ in range(6) for p in next(it).paragraphs for x in _split_sentences(p)]
        sentences.append(sents)
        docs.append(StoryRecord(story_id=f"doc{d:05d}", headline=f"document {d}", body=" ".join(sents)))
    vocab = [w for s in sentences[0][:400] for w in s.split()]
    queries: list[dict[str, Any]] = []
    for qi in range(n_queries):
        base = [
            x
            for st in gen._shadow(7_000_000 + qi, 4, datelines=False)
            for p in st.paragraphs
            for x in _split_sentences(p)
        ]
        d = int(rng.integers(n_docs))
        src = sentences[d]
        n_pass = int(rng.integers(1, 4))
        obfuscate = qi % 2 == 1
        picks: list[tuple[int, int]] = []
        for _ in range(n_pass):
            a = int(rng.integers(0, len(src) - 20))
            n = 0
            b = a
            target = int(rng.integers(30, 400))
            while b < len(src) and n < target:
                n += len(src[b].split())
                b += 1
            if all(b <= x or a >= y for x, y in picks):
                picks.append((a, b))
        at = sorted(rng.choice(len(base) + 1, size=len(picks), replace=False).tolist())
        text_parts: list[str] = []
        passages: list[dict[str, Any]] = []
        pos = 0
        offsets = np.cumsum([0] + [len(x) + 1 for x in src])
        cursor = 0
        for (a, b), where in zip(picks, at, strict=True):
            for x in base[cursor:where]:
                text_parts.append(x)
                pos += len(x) + 1
            cursor = where
            words = " ".join(src[a:b]).split()
            if obfuscate:
                words = _obfuscate(rng, words, vocab, float(rng.uniform(0.05, 0.2)))
            chunk = " ".join(words)
            text_parts.append(chunk)
            s0, s1 = int(offsets[a]), int(offsets[b]) - 1
            passages.append(
                {
                    "story_id": docs[d].story_id,
                    "article_start": pos + _lead(chunk),
                    "article_end": pos + _trail(chunk),
                    "story_start": s0 + _lead(docs[d].body[s0:s1]),
                    "story_end": s0 + _trail(docs[d].body[s0:s1]),
                }
            )
            pos += len(chunk) + 1
        text_parts.extend(base[cursor:])
        queries.append(
            {
                "query_id": f"pan-{qi}",
                "kind": "pan-random" if obfuscate else "pan-none",
                "text": " ".join(text_parts),
                "sources": [{"story_id": docs[d].story_id, "accept": [docs[d].story_id]}],
                "passages": passages,
            }
        )
    return docs, queries


def _split_sentences(paragraph: str) -> list[str]:
    return [x for x in paragraph.replace(". ", ".\x00").split("\x00") if x]


def _lead(t: str) -> int:
    return next((i for i, c in enumerate(t) if c.isalnum()), len(t))


def _trail(t: str) -> int:
    return next((i + 1 for i in range(len(t) - 1, -1, -1) if t[i].isalnum()), 0)


def _obfuscate(rng: np.random.Generator, words: list[str], vocab: list[str], rate: float) -> list[str]:
    out: list[str] = []
    ops = rng.random(len(words))
    kinds = rng.integers(0, 4, len(words))
    for i, w in enumerate(words):
        if ops[i] >= rate or i == 0 or i == len(words) - 1:  # the ends stay, so the truth is the span
            out.append(w)
        elif kinds[i] == 0:
            out.append(vocab[int(rng.integers(len(vocab)))])
        elif kinds[i] == 1:
            continue
        elif kinds[i] == 2:
            out.extend((w, vocab[int(rng.integers(len(vocab)))]))
        elif out:
            out.insert(len(out) - 1, w)
        else:
            out.append(w)
    return out


def _match_all(
    det: Detector, queries: list[dict[str, Any]], configs: dict[str, Any], repeat: int
) -> tuple[dict[str, list[MatchResult]], dict[str, list[float]]]:
    """Every query under each configuration, interleaved; each query's fastest of `repeat` runs."""
    for q in queries[:20]:  # warm up: compiled loops, caches
        det.match(q["text"])
    results: dict[str, list[MatchResult]] = {name: [] for name in configs}
    times: dict[str, list[float]] = {name: [] for name in configs}
    for q in queries:
        best = dict.fromkeys(configs, float("inf"))
        last: dict[str, MatchResult] = {}
        for _ in range(repeat):
            for name, params in configs.items():
                det.params = params
                t0 = time.perf_counter()
                last[name] = det.match(q["text"])
                best[name] = min(best[name], time.perf_counter() - t0)
        for name in configs:
            results[name].append(last[name])
            times[name].append(best[name])
    return results, times


def _verification_cost(det: Detector, queries: list[dict[str, Any]], configs: dict[str, Any]) -> dict[str, float]:
    """Mean time of the alignment step (``align_many``: chaining, and the bridge when on) per
    Match, replayed on the inputs the queries gave it: a Match's total is too noisy on a shared
    machine to show a few microseconds."""
    calls: list[tuple[Any, Any]] = []

    def record(*args: Any, **kwargs: Any) -> Any:
        calls.append((args, kwargs))
        return align_many(*args, **kwargs)

    vars(engine)["align_many"] = record
    try:
        for q in queries:
            det.match(q["text"])
    finally:
        vars(engine)["align_many"] = align_many
    out: dict[str, float] = {}
    for _ in range(2):  # the first round warms up
        for name, params in configs.items():
            total = 0.0
            for args, kwargs in calls:
                a = list(args)
                a[5] = params
                best = float("inf")
                for _ in range(5):
                    t0 = time.perf_counter()
                    align_many(*a, **kwargs)
                    best = min(best, time.perf_counter() - t0)
                total += best
            out[name] = 1000 * total / max(1, len(calls))
    return out


def _index(det: Detector, records: Any) -> None:
    batch: list[StoryRecord] = []
    for r in records:
        batch.append(r)
        if len(batch) == 2000:
            det.upsert(batch)
            batch = []
    det.upsert(batch)
    det.backend.refresh()


def run(
    stories: int, n_queries: int, pan_docs: int, pan_queries: int, seed: int, source: str | None, repeat: int
) -> dict[str, Any]:
    gen = CorpusGenerator(seed=seed, source=source)
    queries = list(gen.queries(stories, n_queries, KINDS))
    settings = Settings()
    out: dict[str, Any] = {
        "stories": stories,
        "queries": len(queries),
        "pan_documents": pan_docs,
        "pan_queries": pan_queries,
        "seed": seed,
        "source": source or "built-in",
        "passage_bridge": settings.match.passage_bridge,
        "passage_bridge_share": settings.match.passage_bridge_share,
    }
    sets: list[tuple[str, Any, list[dict[str, Any]]]] = [
        (
            "news",
            (StoryRecord(story_id=s.story_id, headline=s.headline, body=s.body) for s in gen.stories(stories)),
            queries,
        )
    ]
    if pan_queries:
        docs, pq = pan_like(CorpusGenerator(seed=seed + 1, source=source), pan_docs, pan_queries, seed)
        sets.append(("long", docs, pq))
    for set_name, records, qs in sets:
        with tempfile.TemporaryDirectory(prefix="wiretrace-passages-") as tmp:
            det = Detector(settings, EmbeddedBackend(Path(tmp), settings.index.fingerprint()))
            try:
                _index(det, records)
                configs = {"bridged": det.params, "chained": dataclasses.replace(det.params, passage_bridge=0)}
                results, times = _match_all(det, qs, configs, repeat)
                cost = _verification_cost(det, qs, configs)
            finally:
                det.close()
        out[set_name] = {
            name: {
                "match_ms_p50": 1000 * float(np.median(times[name])),
                "align_ms_mean": cost[name],
                "scores": {k: dataclasses.asdict(v) for k, v in _score(qs, results[name]).items()},
            }
            for name in configs
        }
    return out


def render(r: dict[str, Any]) -> str:
    lines = [
        f"{r['queries']} news queries over {r['stories']} stories, {r['pan_queries']} long-document queries over "
        f"{r['pan_documents']} documents (seed {r['seed']}, text: {r['source']}); "
        f"passage_bridge {r['passage_bridge']}, passage_bridge_share {r['passage_bridge_share']}",
        f"{'set':<5} {'kind':<10} {'config':<8} {'cases':>6} {'found':>6} "
        f"{'prec':>6} {'rec':>6} {'gran':>6} {'plagdet':>8}",
    ]
    for set_name in ("news", "long"):
        if set_name not in r:
            continue
        res = r[set_name]
        kinds = [k for k in res["bridged"]["scores"] if k != "all"] + ["all"]
        for k in kinds:
            for name in ("chained", "bridged"):
                s = res[name]["scores"][k]
                lines.append(
                    f"{set_name:<5} {k:<10} {name:<8} {s['cases']:>6} {s['detections']:>6} {s['precision']:>6.3f} "
                    f"{s['recall']:>6.3f} {s['granularity']:>6.3f} {s['plagdet']:>8.3f}"
                )
        lines.append(
            f"{set_name}: Match p50 chained {res['chained']['match_ms_p50']:.3f} ms, bridged "
            f"{res['bridged']['match_ms_p50']:.3f} ms; alignment step per Match chained "
            f"{res['chained']['align_ms_mean'] * 1000:.1f} µs, bridged {res['bridged']['align_ms_mean'] * 1000:.1f} µs"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--stories", type=int, default=3000)
    ap.add_argument("--queries", type=int, default=480)
    ap.add_argument("--pan-documents", type=int, default=300, help="long source documents (0 queries: skip the set)")
    ap.add_argument("--pan-queries", type=int, default=120)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=3, help="timed runs per query and configuration")
    ap.add_argument("--source", default=None, help="real text to train the generator (default: ../shared)")
    ap.add_argument("--no-shared", action="store_true", help="use the built-in generator, not ../shared")
    ap.add_argument("--out", type=Path, default=None, help="also write the figures as JSON here")
    args = ap.parse_args(argv)
    source = args.source or default_source(args.no_shared)
    r = run(args.stories, args.queries, args.pan_documents, args.pan_queries, args.seed, source, max(1, args.repeat))
    print(render(r))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(r, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
