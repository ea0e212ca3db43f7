"""Archive de-duplication on Spark: the method of ``dedup`` at cluster scale.

Every step calls the same functions as the local engine (record parsing,
printing through ``TextPipeline``, ``candidate_pairs``, ``align_pairs_distinct``,
``write_clusters``), so the clusters are the same; only the plumbing differs.
Python-to-JVM traffic is arrays, not rows: a print chunk (up to ``CHUNK``
documents) travels as one record, its *block*, with its keys, ids and token
hashes; band keys as one array per chunk and part of the key space (a
``groupByKey`` on 16 parts, not on millions of keys); candidate pairs as arrays
per block. Verification is two block joins: pairs meet the block of their
first document, which sends the distinct documents they need to the block of
the second, where ``align_pairs_distinct`` runs on the batch (hashing only the
block's documents with pairs) and returns the block's edges as arrays with its
pair count. Connected components of the verified edges are found on the
driver when there are at most ``driver_edges`` of them (as locally),
otherwise with the
large-star / small-star iterations of Kiveris et al. (2014), which need
O(log n) rounds of shuffles and no node with all of a component's edges.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import sys
import time
import zlib
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
    Corpus,
    DedupParams,
    Edge,
    EdgeArrays,
    OutputWriter,
    Skipped,
    _chunks,
    _gather,
    _offsets,
    _print_chunk,
    align_pairs_distinct,
    candidate_pairs,
    cluster_record,
    components,
    input_kind,
    scoring_params,
    write_clusters,
)
from wiretrace.scoring import ScoringParams
from wiretrace.shingling import I64, U32, sorted_unique

Pair = tuple[int, int]
VERIFY_BATCH = 2000  # pairs per align_pairs call, as in the local engine
BLOCKS_PER_PARTITION = 8  # print chunks (of CHUNK documents) per partition of the kept blocks
DRIVER_EDGES = 5_000_000  # verified edges clustered on the driver (~100 bytes each there); more: distributed


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


Block = tuple[bytes, list[str], bytes, bytes]  # one print chunk: keys <i8, ids, token offsets <i8, tokens <u4


def _print_partition(settings: Settings, params: DedupParams) -> Any:
    """Print each chunk of records: its skips, its block of documents, its band keys per key-space part."""

    def run(it: Iterable[tuple[int, str, Any]]) -> Iterator[tuple[str, Any]]:
        for chunk in _chunks(it, CHUNK):
            printed, skipped = _print_chunk((settings, params, chunk))
            if skipped:
                yield "skip", skipped
            if not printed.ids:
                continue
            # A chunk is a run of consecutive records of one file: its first key names the block.
            block: Block = (printed.keys.tobytes(), printed.ids, printed.toff.tobytes(), printed.tokens.tobytes())
            yield "block", (int(printed.keys[0]), block)
            owners = printed.keys[printed.owner]
            for part, (lo, hi) in enumerate(itertools.pairwise(printed.poff.tolist())):
                if hi > lo:
                    yield "bands", (part, (printed.bands[lo:hi].tobytes(), owners[lo:hi].tobytes()))

    return run


def _block_of(firsts: I64, keys: I64) -> I64:
    """The block (first key of its print chunk) of each document key; `firsts` sorted."""
    return firsts[np.searchsorted(firsts, keys, side="right") - 1]


def _unpack(block: Block) -> tuple[I64, I64, U32]:
    keys, _, toff, tokens = block
    return np.frombuffer(keys, np.int64), np.frombuffer(toff, np.int64), np.frombuffer(tokens, np.uint32)


def _id_groups(n: int) -> Any:
    """(id part, [(id, key)]) of one block, parts by a stable hash of the id (not Python's salted hash)."""

    def run(kv: tuple[int, Block]) -> list[tuple[int, list[tuple[str, int]]]]:
        block = kv[1]
        groups: dict[int, list[tuple[str, int]]] = {}
        for doc_id, key in zip(block[1], np.frombuffer(block[0], np.int64).tolist(), strict=True):
            groups.setdefault(zlib.crc32(doc_id.encode("utf-8", "surrogatepass")) % n, []).append((doc_id, key))
        return list(groups.items())

    return run


def _later_ids(kv: tuple[int, Iterable[list[tuple[str, int]]]]) -> list[tuple[str, int]]:
    """(id, key) of every document whose id an earlier document (smaller key) already has."""
    first: dict[str, int] = {}
    later: list[tuple[str, int]] = []
    for group in kv[1]:
        for doc_id, key in group:
            seen = first.setdefault(doc_id, key)
            if seen != key:
                later.append((doc_id, max(seen, key)))
                first[doc_id] = min(seen, key)
    return later


def _part_pairs(losers: Any, firsts: Any, max_bucket: int) -> Any:
    """candidate_pairs() of one part of the key space, as (block of a, (keys a, keys b)) arrays."""

    def run(kv: tuple[int, Iterable[tuple[bytes, bytes]]]) -> Iterator[tuple[int, tuple[bytes, bytes]]]:
        blobs = [(np.frombuffer(d, np.int64), np.frombuffer(b, np.uint64)) for b, d in kv[1]]
        blobs.sort(key=lambda db: int(db[0][0]))  # chunks cover disjoint runs of documents: now ascending
        docs = np.concatenate([d for d, _ in blobs])
        bands = np.concatenate([b for _, b in blobs])
        lost: I64 = losers.value
        if lost.size:  # a later duplicate id is no document
            at = np.minimum(np.searchsorted(lost, docs), lost.size - 1)
            keep = lost[at] != docs
            docs, bands = docs[keep], bands[keep]
        uniq = sorted_unique(docs)
        left, right = candidate_pairs(np.searchsorted(uniq, docs), bands, max_bucket)
        a, b = uniq[left], uniq[right]
        blocks = _block_of(firsts.value, a)
        order = np.argsort(blocks, kind="stable")
        a, b, blocks = a[order], b[order], blocks[order]
        cuts = np.flatnonzero(np.diff(blocks)) + 1
        for lo, hi in itertools.pairwise([0, *cuts.tolist(), int(a.size)]):
            if hi > lo:
                yield int(blocks[lo]), (a[lo:hi].tobytes(), b[lo:hi].tobytes())

    return run


Shipment = tuple[
    bytes, bytes, bytes, bytes, bytes
]  # keys, token offsets, tokens of docs a; their index per pair; keys b


def _send_left(pair_blobs: list[tuple[bytes, bytes]], block: Block, firsts: I64) -> Iterator[tuple[int, Shipment]]:
    """Join 1, at the block of the pairs' first documents: distinct pairs, and for each block of second
    documents one shipment with the first documents its pairs need (each document once)."""
    keys, toff, tokens = _unpack(block)
    a = np.concatenate([np.frombuffer(x, np.int64) for x, _ in pair_blobs])
    b = np.concatenate([np.frombuffer(y, np.int64) for _, y in pair_blobs])
    order = np.lexsort((b, a))
    a, b = a[order], b[order]
    fresh = np.ones(a.size, dtype=bool)
    fresh[1:] = (a[1:] != a[:-1]) | (b[1:] != b[:-1])  # a pair found in several parts counts once
    a, b = a[fresh], b[fresh]
    doc = np.searchsorted(keys, a)
    dest = _block_of(firsts, b)
    order = np.argsort(dest, kind="stable")
    doc, b, dest = doc[order], b[order], dest[order]
    sizes = np.diff(toff)
    cuts = np.flatnonzero(np.diff(dest)) + 1
    for lo, hi in itertools.pairwise([0, *cuts.tolist(), int(b.size)]):
        need = sorted_unique(doc[lo:hi])
        idx, _ = _gather(toff[need], sizes[need])
        ship: Shipment = (
            keys[need].tobytes(),
            _offsets(sizes[need]).tobytes(),
            tokens[idx].tobytes(),
            np.searchsorted(need, doc[lo:hi]).tobytes(),
            b[lo:hi].tobytes(),
        )
        yield int(dest[lo]), ship


def _verify_block(
    ships: list[Shipment], block: Block, sp: ScoringParams, dp: DedupParams
) -> list[tuple[int, EdgeArrays]]:
    """Join 2, at the block of the pairs' second documents: `align_pairs_distinct` over the documents of the
    block that have pairs and the shipped ones (only those are hashed). One item: (pairs, edges). Every
    distinct pair is in exactly one shipment, so the pairs add up to the candidate pairs."""
    keys, toff, tokens = _unpack(block)
    right = np.concatenate([np.searchsorted(keys, np.frombuffer(bb, np.int64)) for *_, bb in ships])
    here = sorted_unique(right)  # the block's documents with pairs
    sizes = np.diff(toff)[here]
    idx, _ = _gather(toff[here], sizes)
    all_keys, all_tokens, all_sizes = [keys[here]], [tokens[idx]], [sizes]
    left: list[I64] = []
    base = here.size
    for kb, ob, tb, local, _ in ships:
        shipped = np.frombuffer(kb, np.int64)
        all_keys.append(shipped)
        all_tokens.append(np.frombuffer(tb, np.uint32))
        all_sizes.append(np.diff(np.frombuffer(ob, np.int64)))
        left.append(base + np.frombuffer(local, np.int64))
        base += shipped.size
    corpus = Corpus.of(
        np.concatenate(all_keys), np.concatenate(all_tokens), _offsets(np.concatenate(all_sizes)), sp.shingle_size
    )
    edges = align_pairs_distinct(corpus, np.concatenate(left), np.searchsorted(here, right), sp, dp, VERIFY_BATCH)
    return [(int(right.size), edges)]


Tagged = tuple[int, tuple[str, Any]]  # (block, ("block", Block) or ("item", something sent to that block))


def _meet(it: Iterable[Tagged]) -> Iterator[tuple[Block, list[Any]]]:
    """Each block of a partition with the items sent to it (blocks without items are left out)."""
    blocks: dict[int, Block] = {}
    items: dict[int, list[Any]] = {}
    for key, (tag, value) in it:
        if tag == "block":
            blocks[key] = value
        else:
            items.setdefault(key, []).append(value)
    for key, values in items.items():
        if key in blocks:
            yield blocks[key], values


def _join_blocks(blocks: RDD[Tagged], items: RDD[tuple[int, Any]], fn: Any) -> RDD[Any]:
    """fn(items, block) for every block that items were sent to, without shuffling the blocks again.

    `blocks` is hash-partitioned by block key (and persisted); the items get
    the same partitioner, so their union is partitioner-aware (partition i of
    the union is partition i of both) and each block meets its items in one
    task. Should Spark not keep the partitioner, the union is shuffled.
    """
    n = blocks.getNumPartitions()
    both = blocks.union(items.mapValues(lambda v: ("item", v)).partitionBy(n))
    if both.getNumPartitions() != n:  # a plain union: partition i holds one side only
        both = both.partitionBy(n)
    return both.mapPartitions(lambda it: (r for block, values in _meet(it) for r in fn(values, block)))


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


def _record(kv: tuple[int, tuple[Iterable[tuple[int, str, int]], Iterable[Edge] | None]]) -> tuple[int, dict[str, Any]]:
    """cluster_record() of one component: (root, ((key, id, n_tokens) of members, edges))."""
    root, (nodes, cluster_edges) = kv
    rows = list(nodes)
    ids = {k: i for k, i, _ in rows}
    n_tokens = {k: t for k, _, t in rows}
    return root, cluster_record([k for k, _, _ in rows], ids, n_tokens, list(cluster_edges or []))


def _doc_info(losers: Any, wanted: Any = None) -> Any:
    """(key, id, n_tokens) of the documents of a block, without later duplicate ids (and only `wanted` keys)."""

    def run(kv: tuple[int, Block]) -> Iterator[tuple[int, str, int]]:
        keys, toff, _ = _unpack(kv[1])
        keep = ~np.isin(keys, losers.value)
        if wanted is not None:
            keep &= np.isin(keys, wanted.value)
        sizes = np.diff(toff)
        for i in np.flatnonzero(keep).tolist():
            yield int(keys[i]), kv[1][1][i], int(sizes[i])

    return run


def _clusters_on_driver(
    spark: SparkSession,
    blocks: RDD[tuple[int, Block]],
    found: EdgeArrays,
    losers: Any,
    include_singletons: bool,
    writer: OutputWriter,
) -> None:
    """Write the clusters of collected edges in root order: without singletons exactly as the local engine
    does (`write_clusters`), else union-find and a pass over every block in key order."""
    sc = spark.sparkContext
    nodes = sorted_unique(np.concatenate((found.a, found.b)))
    wanted = sc.broadcast(nodes)
    info = {k: (i, t) for k, i, t in blocks.flatMap(_doc_info(losers, wanted)).collect()}
    wanted.unpersist()
    if not include_singletons:
        order = nodes.tolist()
        n_tokens_of = np.array([info[k][1] for k in order], dtype=np.int64)
        write_clusters(writer, nodes, [info[k][0] for k in order], n_tokens_of, found, False)
        return
    edges = found.edges()
    position = {k: i for i, k in enumerate(nodes.tolist())}
    root = components(nodes.size, ((position[e.a], position[e.b]) for e in edges))
    members: dict[int, list[int]] = {}
    for i, r in enumerate(root.tolist()):
        members.setdefault(int(nodes[r]), []).append(int(nodes[i]))
    by_root: dict[int, list[Edge]] = {}
    for e in edges:
        by_root.setdefault(int(nodes[root[position[e.a]]]), []).append(e)
    ids = {k: v[0] for k, v in info.items()}
    n_tokens = {k: v[1] for k, v in info.items()}

    def cluster(r: int) -> dict[str, Any]:
        return cluster_record(members[r], ids, n_tokens, by_root.get(r, []))

    roots = sorted(members)
    pending = iter(roots)
    next_root = next(pending, None)
    for _, block in blocks.sortByKey().toLocalIterator():  # every document, in key order
        for key, doc_id, size in _doc_info(losers)((0, block)):
            while next_root is not None and next_root <= key:
                writer.cluster(cluster(next_root))
                next_root = next(pending, None)
            if key not in position:
                writer.cluster(cluster_record([key], {key: doc_id}, {key: size}, []))
    while next_root is not None:
        writer.cluster(cluster(next_root))
        next_root = next(pending, None)


def _clusters_distributed(
    blocks: RDD[tuple[int, Block]], edges: RDD[Edge], losers: Any, n: int, include_singletons: bool
) -> Iterator[dict[str, Any]]:
    """Cluster records in root order with large-star / small-star and joins: for more edges than a driver holds."""
    roots = connected_components(edges.map(lambda e: (e.a, e.b)), n).persist()  # (node, root), root excluded
    members = roots.union(roots.map(lambda nr: (nr[1], nr[1])).distinct(n))  # (node, root), root included
    info = blocks.flatMap(_doc_info(losers)).map(lambda x: (x[0], (x[1], x[2])))  # (key, (id, n_tokens))
    by_root = members.join(info, n).map(lambda x: (x[1][0], (x[0], x[1][1][0], x[1][1][1]))).groupByKey(n)
    edges_by_root = edges.map(lambda e: (e.a, e)).join(members, n).map(lambda x: (x[1][1], x[1][0])).groupByKey(n)
    clusters = by_root.leftOuterJoin(edges_by_root, n).map(_record)
    if include_singletons:
        lone = info.subtractByKey(members, n).map(
            lambda x: (x[0], cluster_record([x[0]], {x[0]: x[1][0]}, {x[0]: x[1][1]}, []))
        )
        clusters = clusters.union(lone)
    for _, rec in clusters.sortByKey(numPartitions=n).toLocalIterator():
        yield rec
    roots.unpersist()


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
    driver_edges: int = DRIVER_EDGES,
) -> dict[str, Any]:
    """Cluster the records of `paths` with Spark; writes the same files as dedup.run_local.

    Up to `driver_edges` verified edges are clustered on the driver; more go
    through the distributed connected components.
    """
    settings = settings or Settings.load()
    spark = spark or spark_session(master, progress)
    sc = spark.sparkContext
    sp = scoring_params(settings)
    started = time.perf_counter()
    writer = OutputWriter(out_dir)
    n = partitions or sc.defaultParallelism  # every shuffle gets n partitions (joins would add them up)

    printed = _records(spark, paths, params).mapPartitions(_print_partition(settings, params)).persist()
    # One pass for what the driver needs (block sizes, skips); bands are read once, for the pairs.
    meta: RDD[tuple[str, Any]] = printed.filter(lambda r: r[0] != "bands").map(
        lambda r: r if r[0] == "skip" else ("size", (r[1][0], len(r[1][1][1])))
    )
    sizes: list[tuple[int, int]] = []
    skipped: list[Skipped] = []
    for kind, value in meta.collect():  # prints everything, once (persisted)
        if kind == "size":
            sizes.append(value)
        else:
            skipped += value
    phases = {"print": time.perf_counter() - started}
    firsts = sc.broadcast(np.array(sorted(f for f, _ in sizes), dtype=np.int64))
    # Blocks are partitioned by key once and kept; both joins send their items to them.
    n_block_parts = max(n, (len(sizes) + BLOCKS_PER_PARTITION - 1) // BLOCKS_PER_PARTITION)
    tagged: RDD[Tagged] = printed.filter(lambda r: r[0] == "block").map(lambda r: (r[1][0], ("block", r[1][1])))
    block_parts = tagged.partitionBy(n_block_parts).persist()
    blocks: RDD[tuple[int, Block]] = block_parts.mapValues(lambda v: v[1])
    # First occurrence of an id wins, as in the local engine.
    later = blocks.flatMap(_id_groups(n)).groupByKey(n).flatMap(_later_ids).collect()
    losers = sc.broadcast(np.array(sorted(k for _, k in later), dtype=np.int64))
    file_no = {p: i for i, p in enumerate(paths)}
    skipped += [Skipped(paths[k >> FILE_SHIFT], k & RECORD_MASK, i, "duplicate id") for i, k in later]
    for s in sorted(skipped, key=lambda s: file_no[s.file] << FILE_SHIFT | s.record):  # junk is rare: collected
        writer.skip(s)

    bands = printed.filter(lambda r: r[0] == "bands").map(lambda r: r[1])
    pairs = bands.groupByKey(n).flatMap(_part_pairs(losers, firsts, params.max_bucket))
    shipments: RDD[tuple[int, Shipment]] = _join_blocks(block_parts, pairs, lambda v, b: _send_left(v, b, firsts.value))
    edges = _join_blocks(block_parts, shipments, lambda v, b: _verify_block(v, b, sp, params)).persist()
    n_pairs, n_edges = edges.map(lambda pe: (pe[0], len(pe[1]))).fold((0, 0), lambda x, y: (x[0] + y[0], x[1] + y[1]))
    phases["verify"] = time.perf_counter() - started
    printed.unpersist()
    if n_edges <= driver_edges:
        found = EdgeArrays.concat(edges.filter(lambda pe: len(pe[1]) > 0).values().collect())
        _clusters_on_driver(spark, blocks, found, losers, include_singletons, writer)
    else:
        one_by_one: RDD[Edge] = edges.flatMap(lambda pe: pe[1].edges())
        for rec in _clusters_distributed(blocks, one_by_one, losers, n, include_singletons):
            writer.cluster(rec)
    n_docs = sum(size for _, size in sizes) - int(losers.value.size)
    seconds = time.perf_counter() - started
    for rdd in (block_parts, edges):
        rdd.unpersist()
    phases["write"] = time.perf_counter() - started
    for b in (firsts, losers):
        b.unpersist()
    return writer.finish(
        n_docs,
        {
            "engine": "spark",
            "master": sc.master,
            "candidate_pairs": n_pairs,
            "verified_pairs": n_edges,
            "params": dataclasses.asdict(params),
            "seconds": round(seconds, 3),
            # Seconds since the start at the end of each step (why a run is slow).
            "phase_ends": {name: round(t, 3) for name, t in phases.items()},
            "documents_per_second": round((n_docs + sum(writer.skips.values())) / seconds, 1) if seconds else None,
        },
    )
