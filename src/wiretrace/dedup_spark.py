"""Archive de-duplication on Spark: the method of ``dedup`` at cluster scale.

Every step calls the same functions as the local engine (record parsing,
printing through ``TextPipeline``, ``candidate_pairs``, ``verify_many``,
cluster records), so the clusters are the same; only the plumbing differs:
band keys travel as one array per print chunk and part of the key space (a
``groupByKey`` on 16 parts, not on millions of keys), verification joins each
pair with both documents' token hashes, and connected components are found with the
large-star / small-star iterations of Kiveris et al. (2014), which need
O(log n) rounds of shuffles and no node with all of a component's edges.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from pyspark import RDD
from pyspark.sql import SparkSession

from wiretrace.config import Settings
from wiretrace.dedup import (
    CHUNK,
    FILE_SHIFT,
    RECORD_MASK,
    DedupParams,
    Edge,
    OutputWriter,
    Skipped,
    _chunks,
    _print_chunk,
    candidate_pairs,
    cluster_record,
    input_kind,
    scoring_params,
    verify_many,
)
from wiretrace.scoring import ScoringParams

Pair = tuple[int, int]


def spark_session(master: str = "local[*]", progress: bool = True) -> SparkSession:
    """A session whose Python workers run this interpreter (and so this wiretrace)."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    return (
        SparkSession.builder.master(master)
        .appName("wiretrace-dedup")
        .config("spark.pyspark.python", sys.executable)
        .config("spark.pyspark.driver.python", sys.executable)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", str(progress).lower())
        .config("spark.sql.shuffle.partitions", "8")
        .getOrCreate()
    )


def _records(spark: SparkSession, paths: list[str], params: DedupParams) -> RDD[tuple[int, str, Any]]:
    """(doc key, file, payload) of every record, numbered exactly as dedup.read_records does."""
    sc = spark.sparkContext
    parts: list[RDD[tuple[int, str, Any]]] = []
    for file_no, path in enumerate(paths):
        base = file_no << FILE_SHIFT
        if input_kind(path) == "jsonl":
            lines = sc.textFile(path).zipWithIndex().filter(lambda li: bool(li[0].strip()))
            parts.append(lines.map(lambda li, b=base, p=path: (b | li[1], p, li[0])))  # type: ignore[misc]
        else:
            df = spark.read.parquet(path)
            cols = [c for c in (params.id_field, params.text_field) if c in df.columns]
            rows = df.select(*cols).rdd.zipWithIndex()
            parts.append(rows.map(lambda ri, b=base, p=path: (b | ri[1], p, ri[0].asDict())))  # type: ignore[misc]
    return sc.union(parts)


def _print_partition(settings: Settings, params: DedupParams) -> Any:
    def run(it: Iterable[tuple[int, str, Any]]) -> Iterator[tuple[str, Any]]:
        for chunk in _chunks(it, CHUNK):
            printed, skipped = _print_chunk((settings, params, chunk))
            for s in skipped:
                yield "skip", s
            for i, (key, doc_id) in enumerate(zip(printed.keys.tolist(), printed.ids, strict=True)):
                tokens = printed.tokens[printed.toff[i] : printed.toff[i + 1]]
                yield "doc", (key, doc_id, tokens.astype("<u4").tobytes())
            # Band keys leave as one array per part of the key space, not one record per key.
            owners = printed.keys[printed.owner]
            for part, (lo, hi) in enumerate(itertools.pairwise(printed.poff.tolist())):
                if hi > lo:
                    yield "bands", (part, (printed.bands[lo:hi].tobytes(), owners[lo:hi].tobytes()))

    return run


def _part_pairs(losers: Any, max_bucket: int) -> Any:
    """candidate_pairs() of one part of the key space, from the band arrays of every print chunk."""

    def run(kv: tuple[int, Iterable[tuple[bytes, bytes]]]) -> Iterator[Pair]:
        blobs = [(np.frombuffer(d, "<i8"), np.frombuffer(b, "<u8")) for b, d in kv[1]]
        blobs.sort(key=lambda db: int(db[0][0]))  # chunks cover disjoint runs of documents: now ascending
        docs = np.concatenate([d for d, _ in blobs])
        bands = np.concatenate([b for _, b in blobs])
        if losers.value.size:  # a later duplicate id is no document
            keep = ~np.isin(docs, losers.value)
            docs, bands = docs[keep], bands[keep]
        uniq, dense = np.unique(docs, return_inverse=True)
        left, right = candidate_pairs(dense.reshape(-1), bands, max_bucket)
        return zip(uniq[left].tolist(), uniq[right].tolist(), strict=True)

    return run


def _large_star(edges: RDD[Pair], n: int) -> RDD[Pair]:
    """Each node links its larger neighbours to the smallest node of its neighbourhood."""

    def emit(kv: tuple[int, Iterable[int]]) -> list[Pair]:
        u, vs = kv[0], set(kv[1])
        m = min(min(vs), u)
        return [(v, m) for v in vs if v > u]

    return edges.flatMap(lambda e: [(e[0], e[1]), (e[1], e[0])]).groupByKey(n).flatMap(emit).distinct(n)


def _small_star(edges: RDD[Pair], n: int) -> RDD[Pair]:
    """Each node links itself and its smaller neighbours to the smallest of them."""

    def emit(kv: tuple[int, Iterable[int]]) -> list[Pair]:
        u, vs = kv[0], set(kv[1])
        m = min(min(vs), u)
        return [(v, m) for v in (vs | {u}) if v != m]

    return edges.map(lambda e: (max(e), min(e))).groupByKey(n).flatMap(emit).distinct(n)


def connected_components(edges: RDD[Pair], n: int, max_rounds: int = 100) -> RDD[Pair]:
    """(node, smallest node of its component) for every node with an edge; `n` partitions."""
    current = edges.map(lambda e: (max(e), min(e))).distinct(n).persist()
    for _ in range(max_rounds):
        nxt = _small_star(_large_star(current, n), n).persist()
        if nxt.subtract(current, n).union(current.subtract(nxt, n)).count() == 0:  # one job per round
            current.unpersist()
            return nxt
        current.unpersist()
        current = nxt
    raise RuntimeError(f"connected components did not converge in {max_rounds} rounds")


def _verify_partition(sp: ScoringParams, dp: DedupParams) -> Any:
    """verify_many() over pairs joined with both documents' token bytes: (b, ((a, tokens a), tokens b))."""

    def run(it: Iterable[tuple[int, tuple[tuple[int, bytes], bytes]]]) -> Iterator[Edge]:
        for chunk in _chunks(it, 1000):
            pairs = [(a, np.frombuffer(ta, "<u4"), b, np.frombuffer(tb, "<u4")) for b, ((a, ta), tb) in chunk]
            yield from verify_many(pairs, sp, dp)

    return run


def _record(kv: tuple[int, tuple[Iterable[tuple[int, str, int]], Iterable[Edge] | None]]) -> tuple[int, dict[str, Any]]:
    """cluster_record() of one component: (root, ((key, id, n_tokens) of members, edges))."""
    root, (nodes, cluster_edges) = kv
    rows = list(nodes)
    ids = {k: i for k, i, _ in rows}
    n_tokens = {k: t for k, _, t in rows}
    return root, cluster_record([k for k, _, _ in rows], ids, n_tokens, list(cluster_edges or []))


def run_spark(
    paths: list[str],
    out_dir: Path,
    params: DedupParams,
    settings: Settings | None = None,
    *,
    spark: SparkSession | None = None,
    master: str = "local[*]",
    include_singletons: bool = False,
    progress: bool = True,
    partitions: int | None = None,
) -> dict[str, Any]:
    """Cluster the records of `paths` with Spark; writes the same files as dedup.run_local."""
    settings = settings or Settings.load()
    spark = spark or spark_session(master, progress)
    sc = spark.sparkContext
    sp = scoring_params(settings)
    started = time.perf_counter()
    writer = OutputWriter(out_dir)
    n = partitions or sc.defaultParallelism  # every shuffle gets n partitions (joins would add them up)

    printed = _records(spark, paths, params).mapPartitions(_print_partition(settings, params)).persist()
    valid = printed.filter(lambda r: r[0] == "doc").map(lambda r: r[1])
    # First occurrence of an id wins, as in the local engine.
    id_key = valid.map(lambda d: (d[1], d[0]))
    losers = id_key.subtract(id_key.reduceByKey(min, n), n)
    docs = valid.map(lambda d: (d[0], d)).subtractByKey(losers.map(lambda ik: (ik[1], None)), n).persist()
    file_no = {p: i for i, p in enumerate(paths)}
    skips = printed.filter(lambda r: r[0] == "skip").map(
        lambda r: (file_no[r[1].file] << FILE_SHIFT | r[1].record, r[1])
    )
    dup_skips = losers.map(
        lambda ik: (ik[1], Skipped(paths[ik[1] >> FILE_SHIFT], ik[1] & RECORD_MASK, ik[0], "duplicate id"))
    )
    for _, s in sorted(skips.union(dup_skips).collect(), key=lambda ks: ks[0]):  # junk is rare: collect
        writer.skip(s)

    loser_keys = sc.broadcast(np.array(sorted(losers.map(lambda ik: ik[1]).collect()), dtype=np.int64))
    bands = printed.filter(lambda r: r[0] == "bands").map(lambda r: r[1])
    pairs = bands.groupByKey(n).flatMap(_part_pairs(loser_keys, params.max_bucket)).distinct(n).persist()
    tokens = docs.mapValues(lambda d: d[2])
    edges = (
        pairs.join(tokens, n)
        .map(lambda x: (x[1][0], (x[0], x[1][1])))
        .join(tokens, n)
        .mapPartitions(_verify_partition(sp, params))
        .persist()
    )
    roots = connected_components(edges.map(lambda e: (e.a, e.b)), n).persist()  # (node, root), root excluded
    members = roots.union(roots.map(lambda nr: (nr[1], nr[1])).distinct(n))  # (node, root), root included
    info = docs.mapValues(lambda d: (d[1], len(d[2]) // 4))  # (key, (id, n_tokens))
    by_root = members.join(info, n).map(lambda x: (x[1][0], (x[0], x[1][1][0], x[1][1][1]))).groupByKey(n)
    edges_by_root = edges.map(lambda e: (e.a, e)).join(members, n).map(lambda x: (x[1][1], x[1][0])).groupByKey(n)

    clusters = by_root.leftOuterJoin(edges_by_root, n).map(_record)
    if include_singletons:
        lone = info.subtractByKey(members, n).map(
            lambda x: (x[0], cluster_record([x[0]], {x[0]: x[1][0]}, {x[0]: x[1][1]}, []))
        )
        clusters = clusters.union(lone)
    for _, rec in clusters.sortByKey(numPartitions=n).toLocalIterator():
        writer.cluster(rec)
    n_docs = docs.count()
    n_pairs = pairs.count()
    n_edges = edges.count()
    seconds = time.perf_counter() - started
    for rdd in (printed, docs, pairs, edges, roots):
        rdd.unpersist()
    return writer.finish(
        n_docs,
        {
            "engine": "spark",
            "master": sc.master,
            "candidate_pairs": n_pairs,
            "verified_pairs": n_edges,
            "params": dataclasses.asdict(params),
            "seconds": round(seconds, 3),
            "documents_per_second": round((n_docs + sum(writer.skips.values())) / seconds, 1) if seconds else None,
        },
    )
