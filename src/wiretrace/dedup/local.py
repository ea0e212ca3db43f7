"""The local engine: every stage on this machine, one forked process per core."""

from __future__ import annotations

import dataclasses
import logging
import mmap
import multiprocessing
import multiprocessing.pool
import os
import signal
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from wiretrace.config import Settings
from wiretrace.dedup.input import FILE_SHIFT, RANGE_BYTES, RECORD_MASK, Skipped, print_tasks
from wiretrace.dedup.output import OutputWriter, write_clusters
from wiretrace.dedup.pairs import candidate_pairs
from wiretrace.dedup.params import DedupParams, scoring_params
from wiretrace.dedup.prints import PART_BITS, Printed, offsets, print_task
from wiretrace.dedup.verify import (
    Corpus,
    Scores,
    align_oriented,
    blocked_shingle_hashes,
    concat_scores,
    content_classes,
    distinct_pairs,
    distinct_shingles,
    expand_scores,
    gather,
    orient,
)
from wiretrace.scoring import ScoringParams
from wiretrace.shingling import sorted_unique
from wiretrace.types import I64, U64

log = logging.getLogger(__name__)


_CORPUS: Corpus | None = None


_CHUNKS: list[Printed] = []  # the print chunks, inherited by the forked pair workers


def _verify_chunk(args: tuple[ScoringParams, DedupParams, I64, I64]) -> Scores:
    """Worker: align oriented pairs (dense indices into the inherited _CORPUS); scores as arrays."""
    sp, dp, short, long_ = args
    assert _CORPUS is not None
    return align_oriented(_CORPUS, short, long_, sp, dp)


def _hash_docs(args: tuple[I64, int]) -> None:
    """Worker: shingle and bigram hashes of documents `docs` (dense indices), and their distinct shingle
    counts, written into the shared _CORPUS arrays at their own positions; only documents with candidate
    pairs are ever read.

    The documents' tokens are gathered end to end and hashed in one go: a hash
    that runs into the next gathered document lands on a position past the
    document's last shingle (or bigram), which nothing reads.
    """
    docs, k = args
    assert _CORPUS is not None
    toff = _CORPUS.toff
    idx, _ = gather(toff[docs], toff[docs + 1] - toff[docs])
    tokens = _CORPUS.tokens[idx]
    for out, width in ((_CORPUS.shingles, k), (_CORPUS.bigrams, 2)):
        hashed = blocked_shingle_hashes(tokens, width)
        at = idx[: hashed.size]
        inside = at < out.size
        out[at[inside]] = hashed[inside]
    _CORPUS.distinct[docs] = distinct_shingles(_CORPUS.shingles, toff, docs, k)[docs]


def _shared_array(size: int, dtype: type[np.generic]) -> np.ndarray:
    """A zeroed array in anonymous shared memory: what forked workers write, the parent sees."""
    nbytes = max(1, size * np.dtype(dtype).itemsize)
    return np.frombuffer(mmap.mmap(-1, nbytes), dtype=dtype, count=size)


def _pairs_part(args: tuple[int, int]) -> I64:
    """Worker: candidate pairs (i << 32 | j) of the buckets of one part of the key space, gathered from the
    inherited print chunks here rather than concatenated in the parent (which would do it alone)."""
    part, max_bucket = args
    bands: list[U64] = [np.empty(0, np.uint64)]
    docs: list[I64] = [np.empty(0, np.int64)]
    base = 0
    for p in _CHUNKS:
        lo, hi = int(p.poff[part]), int(p.poff[part + 1])
        bands.append(p.bands[lo:hi])
        docs.append(p.owner[lo:hi] + base)
        base += len(p.ids)
    left, right = candidate_pairs(np.concatenate(docs), np.concatenate(bands), max_bucket)
    return np.asarray(left << 32 | right, dtype=np.int64)


_POOL_GRACE_S = 30.0  # for workers to stop after their last task


def _worker_start() -> None:
    """A forked worker must die on the SIGTERM with which ``Pool`` ends it, even
    when the parent installed a handler (a server's graceful drain, a test
    runner's): an inherited handler would keep it alive and the pool's join
    would wait forever."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


@contextmanager
def fork_pool(workers: int) -> Iterator[multiprocessing.pool.Pool]:
    """A pool of forked workers that cannot hang the caller when it ends.

    ``Pool.__exit__`` terminates with SIGTERM and joins. A worker forked while
    another thread of the parent held a lock (Spark's py4j threads, a test
    runner's) can be stuck before it resets SIGTERM, and the join then waits
    forever (seen under load in the test suite). So a finished pool is closed
    the graceful way (each worker reads its stop signal), and a worker still
    alive after a grace period, which never got to read it, is killed.
    """
    pool = multiprocessing.get_context("fork").Pool(workers, _worker_start)
    try:
        yield pool
    except BaseException:
        pool.terminate()
        raise
    pool.close()
    deadline = time.monotonic() + _POOL_GRACE_S
    for proc in list(getattr(pool, "_pool", [])):
        proc.join(max(0.0, deadline - time.monotonic()))
        if proc.is_alive():
            log.warning("dedup worker %s did not stop; killing it", proc.pid)
            proc.kill()
    pool.join()


def run_local(
    paths: Sequence[str],
    out_dir: Path,
    params: DedupParams,
    settings: Settings | None = None,
    *,
    workers: int | None = None,
    include_singletons: bool = False,
    progress: bool = True,
    range_bytes: int = RANGE_BYTES,
) -> dict[str, Any]:
    """Cluster the records of `paths` on this machine, one process per core (plain JSONL is read by the
    workers, `range_bytes` at a time)."""
    global _CORPUS, _CHUNKS
    settings = settings or Settings.load()
    sp = scoring_params(settings)
    workers = workers or os.cpu_count() or 1
    started = time.perf_counter()
    writer = OutputWriter(out_dir)
    chunks: list[Printed] = []
    seen: set[str] = set()
    tasks = ((settings, params, t) for t in print_tasks(paths, params, range_bytes))
    lines_before = [0] * len(paths)  # lines of the byte ranges already printed, per file
    with fork_pool(workers) as pool, tqdm(desc="print", unit="doc", disable=not progress) as bar:
        for printed, skipped, file_no, n_lines in pool.imap(print_task, tasks):
            if file_no >= 0:  # a byte range: its keys count lines from its start
                shift = lines_before[file_no]
                printed.keys += shift
                skipped = [dataclasses.replace(s, record=s.record + shift) for s in skipped]
                lines_before[file_no] += n_lines
            n_skipped = len(skipped)
            fresh = np.ones(len(printed.ids), dtype=bool)
            for i, doc_id in enumerate(printed.ids):
                if doc_id in seen:
                    key = int(printed.keys[i])
                    skipped.append(Skipped(paths[key >> FILE_SHIFT], key & RECORD_MASK, doc_id, "duplicate id"))
                    fresh[i] = False
                else:
                    seen.add(doc_id)
            # In record order (as the Spark engine writes them), whatever the task boundaries.
            for s in sorted(skipped, key=lambda s: s.record):
                writer.skip(s)
            chunks.append(printed if fresh.all() else printed.select(fresh))
            bar.update(len(printed.ids) + n_skipped)
    phases = {"print": time.perf_counter() - started}
    keys_arr = np.concatenate([p.keys for p in chunks] or [np.empty(0, np.int64)])
    ids = [i for p in chunks for i in p.ids]
    toff = offsets(np.concatenate([np.diff(p.toff) for p in chunks] or [np.empty(0, np.int64)]))
    tokens = np.concatenate([p.tokens for p in chunks] or [np.empty(0, np.uint32)])
    variants = np.concatenate([p.variants for p in chunks] or [np.empty(0, np.int64)])
    n = len(ids)
    # Buckets are formed part by part of the key space, in parallel by the forked workers, from the
    # chunks they inherit; then they hash the shingles and bigrams of the documents with pairs (a
    # third of them at 1M) into shared memory, once for all pairs.
    _CHUNKS = chunks
    k = sp.shingle_size
    n_tok = int(tokens.size)
    _CORPUS = Corpus(
        keys_arr,
        tokens,
        toff,
        _shared_array(max(n_tok - k + 1, 0), np.uint32),
        _shared_array(max(n_tok - 1, 0), np.uint32),
        _shared_array(n, np.int64),
    )
    found: list[Scores] = []
    step = 2000
    with fork_pool(workers) as pool:
        parts = pool.map(_pairs_part, [(q, params.max_bucket) for q in range(1 << PART_BITS)])
        _CHUNKS = []
        del chunks
        code = sorted_unique(np.concatenate([np.empty(0, np.int64), *parts]))
        del parts
        left, right = code >> 32, code & 0xFFFFFFFF
        paired = sorted_unique(np.concatenate((left, right)))
        pool.map(_hash_docs, [(docs, k) for docs in np.array_split(paired, 4 * workers)])
        phases["pairs"] = time.perf_counter() - started
        # Verbatim reprints are common: each distinct (short, long) pair of contents is aligned once.
        short, long_ = orient(_CORPUS, left, right)
        cls = content_classes(_CORPUS, paired)
        ds, dl, inverse = distinct_pairs(cls, short, long_)
        del cls
        jobs = ((sp, params, ds[i : i + step], dl[i : i + step]) for i in range(0, ds.size, step))
        with tqdm(total=int(ds.size), desc="verify", unit="pair", disable=not progress) as bar:
            for scores, lo in zip(pool.imap(_verify_chunk, jobs), range(0, ds.size, step), strict=True):
                found.append((scores[0] + lo, *scores[1:]))
                bar.update(min(step, int(ds.size) - lo))
    edges = expand_scores(_CORPUS, short, long_, inverse, int(ds.size), concat_scores(found))
    del found
    _CORPUS = None
    phases["verify"] = time.perf_counter() - started
    singletons = zip(keys_arr.tolist(), ids, strict=True) if include_singletons else ()
    write_clusters(writer, keys_arr, ids, np.diff(toff), variants, edges, singletons)
    seconds = time.perf_counter() - started
    return writer.finish(
        n,
        {
            "engine": "local",
            "workers": workers,
            "candidate_pairs": int(left.size),
            "verified_pairs": len(edges),
            "aligned_pairs": int(ds.size),  # distinct pairs of contents among the candidates
            "params": dataclasses.asdict(params),
            "seconds": round(seconds, 3),
            # Seconds since the start at the end of each step (why a run is slow).
            "phase_ends": {name: round(t, 3) for name, t in phases.items()},
            "documents_per_second": round((n + sum(writer.skips.values())) / seconds, 1) if seconds else None,
        },
    )
