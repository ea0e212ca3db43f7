"""The Spark engine: the stages of ``wiretrace.dedup`` at cluster scale.

Every step calls the same functions as the local engine (record parsing,
printing through ``TextPipeline``, ``candidate_pairs``, ``align_pairs_distinct``,
``write_clusters``), so the clusters are the same; only the plumbing differs.
Python-to-JVM traffic is arrays, not rows: a print chunk (up to ``CHUNK``
documents) travels as one record, its *block*, with its keys, ids and token
hashes; band keys as one array per chunk and part of the key space (a
``groupByKey`` on 16 parts, not on millions of keys); candidate pairs as arrays
per block. Verification is two joins. Blocks are first cut down to the
documents that are in candidate pairs (in an archive most are in none) and
partitioned by block key into about ``JOIN_DOCS`` documents per partition.
Pairs meet the partition of their first document, which sends the distinct
documents they need to each partition of second documents once (a story with
many copies is shipped to few places, not to the block of every copy);
there ``align_pairs_distinct`` runs on the batch and returns the edges as
arrays with the pair count. The verified edges come to the driver as arrays
(40 bytes an edge, plus the id and size of each document in one) and are
clustered there by the local engine's own routine (``output.write_clusters``:
``label_components``, the same representative, the same bytes).
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import os
import sys
import time
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from pyspark import RDD, StorageLevel
from pyspark.sql import SparkSession

from wiretrace.config import Settings
from wiretrace.dedup.input import CHUNK, FILE_SHIFT, RECORD_MASK, Skipped, chunked, input_kind
from wiretrace.dedup.output import OutputWriter, write_clusters
from wiretrace.dedup.pairs import candidate_pairs
from wiretrace.dedup.params import DedupParams, scoring_params
from wiretrace.dedup.prints import offsets, print_records
from wiretrace.dedup.verify import Corpus, EdgeArrays, align_pairs_distinct, gather
from wiretrace.scoring import ScoringParams
from wiretrace.shingling import I64, U32, sorted_unique

VERIFY_BATCH = 2000  # pairs per align_pairs call, as in the local engine
JOIN_DOCS = 100_000  # documents (in candidate pairs) per partition of the joins: few places to ship a document
DISK_TOO = StorageLevel.MEMORY_AND_DISK  # what outgrows memory spills rather than being recomputed
LOCAL_DRIVER_MEMORY = "6g"  # JVM heap of a local[N] session (driver and executor in one)


def spark_session(master: str = "local[*]", progress: bool = True) -> SparkSession:
    """A session whose Python workers run this interpreter (and so this wiretrace)."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    builder = SparkSession.builder
    if master.startswith("local"):
        # In local mode the driver's JVM does every task: Spark's 1 GB default ran out of heap
        # in the block joins of a 1M-article archive. SPARK_DRIVER_MEMORY overrides it.
        builder = builder.config("spark.driver.memory", os.environ.get("SPARK_DRIVER_MEMORY", LOCAL_DRIVER_MEMORY))
    return (
        builder.master(master)
        .appName("wiretrace-dedup")
        .config("spark.pyspark.python", sys.executable)
        .config("spark.pyspark.driver.python", sys.executable)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", str(progress).lower())
        .config("spark.sql.shuffle.partitions", "8")
        .getOrCreate()
    )


def _inputs(spark: SparkSession, paths: list[str], params: DedupParams) -> tuple[RDD[Any], list[tuple[int, str]]]:
    """The payloads (a JSON line, or a Parquet row as a mapping) of every file, in file order, and the
    (file number, path) of each partition of that union.

    No pass numbers the records up front (``zipWithIndex`` reads all the text
    once more through Python): a record's key counts lines from the start of
    its partition (`_local_key`) and the driver turns keys into record numbers
    once it knows each partition's line count (`_Numbering`).
    """
    sc = spark.sparkContext
    parts: list[RDD[Any]] = []
    files: list[tuple[int, str]] = []
    for file_no, path in enumerate(paths):
        rdd: RDD[Any]
        if input_kind(path) == "jsonl":
            rdd = sc.textFile(path)
        else:
            df = spark.read.parquet(path)
            cols = [c for c in (params.id_field, params.text_field) if c in df.columns]
            rdd = df.select(*cols).rdd.map(lambda row: row.asDict())
        parts.append(rdd)
        files += [(file_no, path)] * rdd.getNumPartitions()
    return sc.union(parts), files


def _local_key(partition: int, line: int) -> int:
    """Key of a record while the engine runs: its partition in the high bits, its line in the partition
    in the low ones. Partitions follow the files in order, so these keys sort as the record keys do."""
    return partition << FILE_SHIFT | line


@dataclasses.dataclass
class _Numbering:
    """Record numbers from local keys: lines of the earlier partitions of the same file, per partition."""

    files: list[tuple[int, str]]
    first_line: list[int]

    @staticmethod
    def of(files: list[tuple[int, str]], lines: dict[int, int]) -> _Numbering:
        first: list[int] = []
        seen: dict[int, int] = {}  # lines so far, per file
        for part, (file_no, _) in enumerate(files):
            first.append(seen.get(file_no, 0))
            seen[file_no] = first[-1] + lines.get(part, 0)
        return _Numbering(files, first)

    def skipped(self, key: int, doc_id: str | None, reason: str) -> Skipped:
        part = key >> FILE_SHIFT
        return Skipped(self.files[part][1], self.first_line[part] + (key & RECORD_MASK), doc_id, reason)


# One print chunk: keys <i8, ids, token offsets <i8, tokens <u4, spelling variants <i8.
Block = tuple[bytes, list[str], bytes, bytes, bytes]


def _print_partition(settings: Settings, params: DedupParams, files: list[tuple[int, str]]) -> Any:
    """Print each chunk of a partition's records: its skips, its block of documents, its band keys per key-space
    part; and the partition's line count."""

    def run(part: int, it: Iterable[Any]) -> Iterator[tuple[str, Any]]:
        path = files[part][1]
        lines = 0

        def records() -> Iterator[tuple[int, str, Any]]:
            nonlocal lines
            for line, payload in enumerate(it):
                lines = line + 1
                if not isinstance(payload, str) or payload.strip():
                    yield _local_key(part, line), path, payload

        for chunk in chunked(records(), CHUNK):
            printed, skipped = print_records((settings, params, chunk))
            if skipped:  # numbered in the partition: the driver numbers them in the file
                yield "skip", [(_local_key(part, s.record), s.id, s.reason) for s in skipped]
            if not printed.ids:
                continue
            # A chunk is a run of consecutive records of one partition: its first key names the block.
            block: Block = (
                printed.keys.tobytes(),
                printed.ids,
                printed.toff.tobytes(),
                printed.tokens.tobytes(),
                printed.variants.tobytes(),
            )
            yield "block", (int(printed.keys[0]), block)
            owners = printed.keys[printed.owner]
            for q, (lo, hi) in enumerate(itertools.pairwise(printed.poff.tolist())):
                if hi > lo:
                    yield "bands", (q, (printed.bands[lo:hi].tobytes(), owners[lo:hi].tobytes()))
        yield "lines", (part, lines)

    return run


def _block_of(firsts: I64, keys: I64) -> I64:
    """The block (first key of its print chunk) of each document key; `firsts` sorted."""
    return firsts[np.searchsorted(firsts, keys, side="right") - 1]


def _unpack(block: Block) -> tuple[I64, I64, U32]:
    keys, _, toff, tokens, _ = block
    return np.frombuffer(keys, np.int64), np.frombuffer(toff, np.int64), np.frombuffer(tokens, np.uint32)


def _variants(block: Block) -> I64:
    return np.frombuffer(block[4], np.int64)


FIBONACCI = 0x9E3779B97F4A7C15


def route(parts: int, key: int) -> int:
    """Partition of a block key, by a Fibonacci hash over `parts` partitions (keys are multiples of the
    chunk size within a partition's range: a plain modulo would crowd them)."""
    return (((key * FIBONACCI) & 0xFFFFFFFFFFFFFFFF) >> 32) % parts


def routes(parts: int, keys: I64) -> I64:
    """`route` of many keys (uint64 products wrap as the masked ones do)."""
    return ((keys.astype(np.uint64) * np.uint64(FIBONACCI)) >> np.uint64(32)).astype(np.int64) % parts


def _meta_and_ids(groups: int) -> Any:
    """What the driver needs of a print record (block sizes, skips, line counts) for the partition `groups`,
    and a block's (id, key) pairs in `groups` groups by a stable hash of the id (not Python's salted hash)."""

    def run(record: tuple[str, Any]) -> list[tuple[int, tuple[str, Any]]]:
        kind, value = record
        if kind != "block":
            return [(groups, record)]
        key, block = value
        by_group: dict[int, list[tuple[str, int]]] = {}
        for doc_id, doc in zip(block[1], np.frombuffer(block[0], np.int64).tolist(), strict=True):
            by_group.setdefault(zlib.crc32(doc_id.encode("utf-8", "surrogatepass")) % groups, []).append((doc_id, doc))
        return [(groups, ("size", (key, len(block[1])))), *((g, ("ids", ids)) for g, ids in by_group.items())]

    return run


def _later_ids(it: Iterable[tuple[int, tuple[str, Any]]]) -> Iterator[tuple[str, Any]]:
    """("later", (id, key)) of every document whose id an earlier document (smaller key) already has, in a
    partition of id groups; other records pass."""
    first: dict[str, int] = {}
    for _, (kind, value) in it:
        if kind != "ids":
            yield kind, value
            continue
        for doc_id, key in value:
            seen = first.setdefault(doc_id, key)
            if seen != key:
                yield "later", (doc_id, max(seen, key))
                first[doc_id] = min(seen, key)


def _pair_docs(it: Iterable[tuple[int, tuple[bytes, bytes]]]) -> Iterator[bytes]:
    """The keys (ascending, each once) of the documents in a partition's candidate pairs."""
    keys = [np.frombuffer(x, np.int64) for ab in it for x in ab[1]]
    yield sorted_unique(np.concatenate([np.empty(0, np.int64), *keys])).tobytes()


def _trim(block: Block, keep: I64) -> Block | None:
    """The block with only its documents whose keys are in `keep` (ascending), or None without any: only
    documents in candidate pairs travel to the joins."""
    keys, toff, tokens = _unpack(block)
    if not keep.size:
        return None
    mask = keep[np.minimum(np.searchsorted(keep, keys), keep.size - 1)] == keys
    if mask.all():
        return block
    here = np.flatnonzero(mask)
    if not here.size:
        return None
    sizes = np.diff(toff)[here]
    idx, _ = gather(toff[here], sizes)
    return (
        keys[here].tobytes(),
        [block[1][i] for i in here.tolist()],
        offsets(sizes).tobytes(),
        tokens[idx].tobytes(),
        _variants(block)[here].tobytes(),
    )


def _pairs_partition(losers: Any, firsts: Any, max_bucket: int) -> Any:
    """candidate_pairs() of the key-space parts of one partition, each part on its own, as
    (block of a, (keys a, keys b)) arrays."""

    def run(it: Iterable[tuple[int, tuple[bytes, bytes]]]) -> Iterator[tuple[int, tuple[bytes, bytes]]]:
        parts: dict[int, list[tuple[bytes, bytes]]] = {}
        for q, blob in it:
            parts.setdefault(q, []).append(blob)
        for q in sorted(parts):
            yield from _part_pairs(parts.pop(q), losers.value, firsts.value, max_bucket)

    return run


def _part_pairs(
    blobs_in: list[tuple[bytes, bytes]], lost: I64, firsts: I64, max_bucket: int
) -> Iterator[tuple[int, tuple[bytes, bytes]]]:
    """candidate_pairs() of one part of the key space, as (block of a, (keys a, keys b)) arrays."""
    blobs = [(np.frombuffer(d, np.int64), np.frombuffer(b, np.uint64)) for b, d in blobs_in]
    blobs.sort(key=lambda db: int(db[0][0]))  # chunks cover disjoint runs of documents: now ascending
    docs = np.concatenate([d for d, _ in blobs])
    bands = np.concatenate([b for _, b in blobs])
    if lost.size:  # a later duplicate id is no document
        at = np.minimum(np.searchsorted(lost, docs), lost.size - 1)
        keep = lost[at] != docs
        docs, bands = docs[keep], bands[keep]
    uniq = sorted_unique(docs)
    left, right = candidate_pairs(np.searchsorted(uniq, docs), bands, max_bucket)
    a, b = uniq[left], uniq[right]
    blocks = _block_of(firsts, a)
    order = np.argsort(blocks, kind="stable")
    a, b, blocks = a[order], b[order], blocks[order]
    cuts = np.flatnonzero(np.diff(blocks)) + 1
    for lo, hi in itertools.pairwise([0, *cuts.tolist(), int(a.size)]):
        if hi > lo:
            yield int(blocks[lo]), (a[lo:hi].tobytes(), b[lo:hi].tobytes())


# keys, token offsets, tokens, ids, spelling variants of docs a; their index per pair; keys b
Shipment = tuple[bytes, bytes, bytes, list[str], bytes, bytes, bytes]


def _send_left(
    pair_blobs: list[tuple[bytes, bytes]], block: Block, firsts: I64, parts: int
) -> Iterator[tuple[int, Shipment]]:
    """Join 1, at the partition of the pairs' first documents: distinct pairs, and for each partition of
    second documents one shipment with the first documents its pairs need (each document once per
    partition, not per block: a document with many copies is shipped to few places)."""
    keys, toff, tokens = _unpack(block)
    ids, variants = block[1], _variants(block)
    a = np.concatenate([np.frombuffer(x, np.int64) for x, _ in pair_blobs])
    b = np.concatenate([np.frombuffer(y, np.int64) for _, y in pair_blobs])
    order = np.lexsort((b, a))
    a, b = a[order], b[order]
    fresh = np.ones(a.size, dtype=bool)
    fresh[1:] = (a[1:] != a[:-1]) | (b[1:] != b[:-1])  # a pair found in several parts counts once
    a, b = a[fresh], b[fresh]
    doc = np.searchsorted(keys, a)
    dest_block = _block_of(firsts, b)
    dest = routes(parts, dest_block)
    order = np.argsort(dest, kind="stable")
    doc, b, dest, dest_block = doc[order], b[order], dest[order], dest_block[order]
    sizes = np.diff(toff)
    cuts = np.flatnonzero(np.diff(dest)) + 1
    for lo, hi in itertools.pairwise([0, *cuts.tolist(), int(b.size)]):
        need = sorted_unique(doc[lo:hi])
        idx, _ = gather(toff[need], sizes[need])
        ship: Shipment = (
            keys[need].tobytes(),
            offsets(sizes[need]).tobytes(),
            tokens[idx].tobytes(),
            [ids[i] for i in need.tolist()],
            variants[need].tobytes(),
            np.searchsorted(need, doc[lo:hi]).tobytes(),
            b[lo:hi].tobytes(),
        )
        yield int(dest_block[lo]), ship  # a block of that partition: routed there


Info = tuple[bytes, list[str], bytes, bytes]  # keys <i8, ids, token counts <i8, variants <i8 of some documents


def _verify_block(
    ships: list[Shipment], block: Block, sp: ScoringParams, dp: DedupParams
) -> list[tuple[int, EdgeArrays, Info]]:
    """Join 2, at the block of the pairs' second documents: `align_pairs_distinct` over the documents of the
    block that have pairs and the shipped ones (only those are hashed). One item: (pairs, edges, key, id,
    token count and spelling variants of the documents with an edge, which the driver needs to write
    clusters). Every distinct
    pair is in exactly one shipment, so the pairs add up to the candidate pairs."""
    keys, toff, tokens = _unpack(block)
    right = np.concatenate([np.searchsorted(keys, np.frombuffer(bb, np.int64)) for *_, bb in ships])
    here = sorted_unique(right)  # the block's documents with pairs
    sizes = np.diff(toff)[here]
    idx, _ = gather(toff[here], sizes)
    all_keys, all_tokens, all_sizes = [keys[here]], [tokens[idx]], [sizes]
    all_variants = [_variants(block)[here]]
    all_ids = [block[1][i] for i in here.tolist()]
    left: list[I64] = []
    base = here.size
    for kb, ob, tb, shipped_ids, vb, local, _ in ships:
        shipped = np.frombuffer(kb, np.int64)
        all_keys.append(shipped)
        all_tokens.append(np.frombuffer(tb, np.uint32))
        all_sizes.append(np.diff(np.frombuffer(ob, np.int64)))
        all_variants.append(np.frombuffer(vb, np.int64))
        all_ids += shipped_ids
        left.append(base + np.frombuffer(local, np.int64))
        base += shipped.size
    doc_keys, doc_sizes = np.concatenate(all_keys), np.concatenate(all_sizes)
    corpus = Corpus.of(doc_keys, np.concatenate(all_tokens), offsets(doc_sizes), sp.shingle_size)
    edges = align_pairs_distinct(corpus, np.concatenate(left), np.searchsorted(here, right), sp, dp, VERIFY_BATCH)
    ends = sorted_unique(np.concatenate((edges.a, edges.b)))
    at = np.minimum(np.searchsorted(ends, doc_keys), max(ends.size - 1, 0))
    with_edge = np.flatnonzero(ends[at] == doc_keys) if ends.size else at[:0]
    info: Info = (
        doc_keys[with_edge].tobytes(),
        [all_ids[i] for i in with_edge.tolist()],
        doc_sizes[with_edge].tobytes(),
        np.concatenate(all_variants)[with_edge].tobytes(),
    )
    return [(int(right.size), edges, info)]


Tagged = tuple[int, tuple[str, Any]]  # (block, ("block", Block) or ("item", something sent to that block))


def _meet(it: Iterable[Tagged]) -> Iterator[tuple[Block, list[Any]]]:
    """The blocks of a partition as one block, with the items sent to them (nothing without items)."""
    blocks: dict[int, Block] = {}
    items: list[Any] = []
    for key, (tag, value) in it:
        if tag == "block":
            blocks[key] = value
        else:
            items.append(value)
    if items and blocks:
        yield _merge([blocks[k] for k in sorted(blocks)]), items


def _merge(blocks: list[Block]) -> Block:
    """Blocks (in key order: they cover disjoint runs of keys) as one."""
    if len(blocks) == 1:
        return blocks[0]
    sizes = np.concatenate([np.diff(np.frombuffer(b[2], np.int64)) for b in blocks])
    return (
        b"".join(b[0] for b in blocks),
        [doc_id for b in blocks for doc_id in b[1]],
        offsets(sizes).tobytes(),
        b"".join(b[3] for b in blocks),
        b"".join(b[4] for b in blocks),
    )


def _join_blocks(blocks: RDD[Tagged], items: RDD[tuple[int, Any]], fn: Any, route: Any) -> RDD[Any]:
    """fn(items, block) for every partition of blocks that items were sent to (its blocks merged into one),
    without shuffling the blocks again.

    `blocks` is partitioned by `route` (and persisted); the items get the same
    partitioner (the same function object), so their union is
    partitioner-aware (partition i of the union is partition i of both) and
    each block meets its items in one task. Should Spark not keep the
    partitioner, the union is shuffled.
    """
    n = blocks.getNumPartitions()
    both = blocks.union(items.mapValues(lambda v: ("item", v)).partitionBy(n, route))
    if both.getNumPartitions() != n:  # a plain union: partition i holds one side only
        both = both.partitionBy(n, route)
    return both.mapPartitions(lambda it: (r for block, values in _meet(it) for r in fn(values, block)))


def _doc_ids(losers: Any) -> Any:
    """(key, id) of the documents of a block, without later duplicate ids."""

    def run(block: Block) -> Iterator[tuple[int, str]]:
        keys = np.frombuffer(block[0], np.int64)
        for i in np.flatnonzero(~np.isin(keys, losers.value)).tolist():
            yield int(keys[i]), block[1][i]

    return run


def _node_info(parts: Iterable[Info]) -> tuple[I64, list[str], I64, I64]:
    """Keys (ascending, each once), ids, token counts and spelling variants of the documents `_verify_block`
    reported."""
    parts = list(parts)
    empty = np.empty(0, np.int64)
    keys = np.concatenate([empty, *(np.frombuffer(k, np.int64) for k, _, _, _ in parts)])
    sizes = np.concatenate([empty, *(np.frombuffer(t, np.int64) for _, _, t, _ in parts)])
    variants = np.concatenate([empty, *(np.frombuffer(v, np.int64) for _, _, _, v in parts)])
    ids = [i for _, part_ids, _, _ in parts for i in part_ids]
    nodes, first = np.unique(keys, return_index=True)  # return_index sorts (no hash set)
    return nodes, [ids[i] for i in first.tolist()], sizes[first], variants[first]


def _clusters_on_driver(
    blocks: RDD[tuple[int, Block]],
    found: EdgeArrays,
    info: tuple[I64, list[str], I64, I64],
    losers: Any,
    include_singletons: bool,
    writer: OutputWriter,
) -> None:
    """Write the clusters of the collected edges exactly as the local engine does (`write_clusters`); with
    singletons, every document streams from the blocks in key order. `info`: key, id, token count and
    spelling variants of every document with an edge (`_node_info`)."""
    nodes, node_ids, node_sizes, node_variants = info
    singletons: Iterable[tuple[int, str]] = ()
    if include_singletons:
        ids_of = _doc_ids(losers)
        # Every document, in key order.
        singletons = (doc for _, block in blocks.sortByKey().toLocalIterator() for doc in ids_of(block))
    write_clusters(writer, nodes, node_ids, node_sizes, node_variants, found, singletons)


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

    inputs, files = _inputs(spark, paths, params)
    printed = inputs.mapPartitionsWithIndex(_print_partition(settings, params, files)).persist(DISK_TOO)
    # One pass for what the driver needs (block sizes, skips, lines per partition) and the duplicate ids
    # ((id, key) pairs meet by id; the first occurrence wins, as in the local engine).
    meta = (
        printed.filter(lambda r: r[0] != "bands")
        .flatMap(_meta_and_ids(n))
        .partitionBy(n + 1, lambda g: g)
        .mapPartitions(_later_ids)
    )
    sizes: list[tuple[int, int]] = []
    local_skips: list[tuple[int, str | None, str]] = []
    lines: dict[int, int] = {}
    later: list[tuple[str, int]] = []
    for kind, value in meta.collect():  # prints everything, once (persisted)
        if kind == "size":
            sizes.append(value)
        elif kind == "lines":
            lines[value[0]] = value[1]
        elif kind == "later":
            later.append(value)
        else:
            local_skips += value
    numbering = _Numbering.of(files, lines)
    phases = {"print": time.perf_counter() - started}
    firsts = sc.broadcast(np.array(sorted(f for f, _ in sizes), dtype=np.int64))
    losers = sc.broadcast(np.array(sorted(k for _, k in later), dtype=np.int64))
    skipped = [numbering.skipped(k, i, reason) for k, i, reason in local_skips]
    skipped += [numbering.skipped(k, i, "duplicate id") for i, k in later]
    file_no = {p: i for i, p in enumerate(paths)}
    for s in sorted(skipped, key=lambda s: file_no[s.file] << FILE_SHIFT | s.record):  # junk is rare: collected
        writer.skip(s)

    bands = printed.filter(lambda r: r[0] == "bands").map(lambda r: r[1])
    pairs = bands.partitionBy(n).mapPartitions(_pairs_partition(losers, firsts, params.max_bucket)).persist(DISK_TOO)
    in_pairs = sorted_unique(
        np.concatenate(
            [np.empty(0, np.int64), *(np.frombuffer(k, np.int64) for k in pairs.mapPartitions(_pair_docs).collect())]
        )
    )
    needed = sc.broadcast(in_pairs)
    all_blocks: RDD[tuple[int, Block]] = printed.filter(lambda r: r[0] == "block").map(lambda r: r[1])
    # Only the documents in pairs go to the joins (in an archive most have none), in blocks partitioned by
    # key once and kept; both joins send their items to them.
    join_parts = n * max(1, -(-int(in_pairs.size) // (JOIN_DOCS * n)))  # a multiple of n: no straggler
    partition = functools.partial(route, join_parts)  # one object: the joins' partitioner must equal this one
    block_parts: RDD[Tagged] = (
        all_blocks.map(lambda kv: (kv[0], _trim(kv[1], needed.value)))
        .filter(lambda kv: kv[1] is not None)
        .mapValues(lambda b: ("block", b))
        .partitionBy(join_parts, partition)
        .persist(DISK_TOO)
    )
    shipments: RDD[tuple[int, Shipment]] = _join_blocks(
        block_parts, pairs, lambda v, b: _send_left(v, b, firsts.value, join_parts), partition
    )
    edges = _join_blocks(block_parts, shipments, lambda v, b: _verify_block(v, b, sp, params), partition)
    edges = edges.persist(DISK_TOO)
    n_pairs, n_edges = edges.map(lambda pe: (pe[0], len(pe[1]))).fold((0, 0), lambda x, y: (x[0] + y[0], x[1] + y[1]))
    phases["verify"] = time.perf_counter() - started
    for rdd in (pairs, block_parts):
        rdd.unpersist()
    found = edges.filter(lambda pe: len(pe[1]) > 0).map(lambda pe: pe[1:]).collect()
    info = _node_info(i for _, i in found)
    _clusters_on_driver(all_blocks, EdgeArrays.concat([e for e, _ in found]), info, losers, include_singletons, writer)
    n_docs = sum(size for _, size in sizes) - int(losers.value.size)
    seconds = time.perf_counter() - started
    for rdd in (printed, edges):
        rdd.unpersist()
    phases["write"] = time.perf_counter() - started
    for b in (firsts, losers, needed):
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
