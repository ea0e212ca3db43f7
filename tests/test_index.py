"""LSHIndex lookups through the slot directory give what a plain scan of every entry gives."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import numpy as np
import pytest

from tests.redis_server import REDIS_SERVER, SKIP_REASON, RedisServer
from tests.synth import NewsGen
from wiretrace.config import Settings
from wiretrace.embedded_backend import EmbeddedBackend
from wiretrace.engine import Detector
from wiretrace.index import (
    LSHIndex,
    TermFrequencies,
    _merge_runs,
    _Run,
    _slot_bits,
    _sorted_run,
    _split_heavy,
    _stable_order,
)
from wiretrace.redis_backend import open_redis_backend
from wiretrace.types import StoryRecord

TOP = np.uint64(2**64 - 1)


def _build(seed: int) -> tuple[LSHIndex, np.ndarray, np.ndarray]:
    """An index of many batches (so several runs, some merged), with shared and extreme keys."""
    rng = np.random.default_rng(seed)
    idx = LSHIndex()
    all_keys: list[np.ndarray] = []
    all_stories: list[np.ndarray] = []
    for _ in range(25):
        n = int(rng.integers(1, 3000))
        keys = rng.integers(0, 2**64, n, dtype=np.uint64)
        # A third of the entries share 40 keys spread over the key space (full buckets).
        keys[: n // 3] = rng.integers(0, 40, n // 3).astype(np.uint64) * np.uint64(2**58)
        keys[:3] = TOP
        keys[3:5] = 0
        stories = rng.integers(1, 5000, n).astype(np.uint32)
        idx.insert(keys, stories)
        all_keys.append(keys)
        all_stories.append(stories)
    return idx, np.concatenate(all_keys), np.concatenate(all_stories)


def test_query_equals_a_scan_of_every_entry() -> None:
    idx, keys, stories = _build(1)
    assert len({r.size for r in idx._runs}) > 1  # several runs are searched
    rng = np.random.default_rng(2)
    for _ in range(40):
        needles = np.concatenate(
            [rng.choice(keys, 100), rng.integers(0, 2**64, 100, dtype=np.uint64), np.array([TOP, 0], np.uint64)]
        )
        expected = np.sort(stories[np.isin(keys, needles)])
        assert np.array_equal(np.sort(idx.query(needles)), expected)


def test_max_bucket_leaves_out_only_fuller_buckets() -> None:
    idx, keys, stories = _build(3)
    rng = np.random.default_rng(4)
    for cap in (1, 5, 50, 400):
        needles = rng.choice(keys, 60 if cap < 50 else 200)  # few needles are searched whole, more by slot
        present, sizes = np.unique(keys[np.isin(keys, needles)], return_counts=True)
        kept = present[sizes <= cap]
        expected = np.sort(stories[np.isin(keys, kept)])
        assert np.array_equal(np.sort(idx.query(needles, max_bucket=cap)), expected)
    assert np.array_equal(np.sort(idx.query(needles, max_bucket=0)), np.sort(stories[np.isin(keys, needles)]))


def test_removed_stories_vanish_and_empty_index_answers_nothing() -> None:
    idx, keys, stories = _build(5)
    gone = np.unique(stories)[::3]
    idx.remove(gone)
    needles = np.unique(keys)[::7]
    expected = stories[np.isin(keys, needles)]
    assert np.array_equal(np.sort(idx.query(needles)), np.sort(expected[~np.isin(expected, gone)]))
    assert LSHIndex().query(needles).size == 0
    assert idx.query(np.empty(0, np.uint64)).size == 0


def test_a_large_run_with_a_finer_slot_directory_answers_like_a_scan() -> None:
    """Past a million entries a run's slots take more than 16 key bits; merging keeps every key."""
    rng = np.random.default_rng(6)
    keys = rng.integers(0, 2**64, 2**21, dtype=np.uint64)
    keys[:5000] = rng.choice(keys[5000:], 5000)  # keys held more than once, in many slots
    stories = rng.integers(0, 2**20, keys.size).astype(np.uint32)
    idx = LSHIndex()
    half = keys.size // 2
    idx.insert(keys[:half], stories[:half])
    idx.insert(keys[half:], stories[half:])  # merged with the first run
    assert len(idx._runs) == 1 and idx._runs[0].bits > 16
    assert idx.nbytes - idx._alive.nbytes < 8.5 * keys.size  # 8 bytes an entry, plus the directory
    needles = np.concatenate([rng.choice(keys, 3000), rng.integers(0, 2**64, 1000, dtype=np.uint64), keys[:3]])
    expected = np.sort(stories[np.isin(keys, needles)])
    assert np.array_equal(np.sort(idx.query(needles)), expected)


def test_keys_held_many_times_side_by_side_answer_like_a_scan() -> None:
    """Common buckets (many stories under one key) next to each other and to rare keys."""
    rng = np.random.default_rng(7)
    common = np.sort(rng.integers(0, 2**64, 30, dtype=np.uint64))
    keys = np.concatenate([np.repeat(common, rng.integers(1, 300, common.size)), common[:5] + np.uint64(2**20)])
    stories = rng.integers(0, 10_000, keys.size).astype(np.uint32)
    idx = LSHIndex()
    for part in np.array_split(np.arange(keys.size), 4):
        idx.insert(keys[part], stories[part])
    for needles in (common, common[::3], keys[-5:], np.concatenate([common[:2], keys[-2:]])):
        expected = np.sort(stories[np.isin(keys, needles)])
        assert np.array_equal(np.sort(idx.query(needles)), expected)


@pytest.mark.parametrize("n", [1, 2, 1000, 70_000, 300_000])
def test_stable_order_is_a_stable_argsort(n: int) -> None:
    """Including keys that agree on every bit the packed sort keeps and differ below."""
    rng = np.random.default_rng(n)
    keys = rng.integers(0, 2**48, n, dtype=np.uint64)
    keys[: n // 3] = rng.integers(0, 7, n // 3).astype(np.uint64) << np.uint64(40)  # repeated keys
    keys[n // 3 : n // 2] = rng.integers(0, 64, n // 2 - n // 3).astype(np.uint64)  # low bits only
    assert np.array_equal(_stable_order(keys), np.argsort(keys, kind="stable"))


def test_background_merging_answers_like_a_scan_throughout() -> None:
    """Queries between inserts see every entry while runs are merged on the index's thread."""
    rng = np.random.default_rng(8)
    idx = LSHIndex(background_merge=True)
    seen_keys: list[np.ndarray] = []
    seen_stories: list[np.ndarray] = []
    try:
        for i in range(40):
            keys = rng.integers(0, 2**64, 20_000, dtype=np.uint64)
            keys[:50] = np.uint64(12345) << np.uint64(40)  # one key in every batch: heavy once merged
            stories = np.arange(i * 20_000, (i + 1) * 20_000, dtype=np.uint32)
            idx.insert(keys, stories)
            seen_keys.append(keys)
            seen_stories.append(stories)
            all_keys, all_stories = np.concatenate(seen_keys), np.concatenate(seen_stories)
            needles = np.concatenate([rng.choice(all_keys, 200), keys[:1]])
            assert np.array_equal(np.sort(idx.query(needles)), np.sort(all_stories[np.isin(all_keys, needles)]))
        idx.settle()
        sizes = [r.size for r in idx._runs]
        assert sum(sizes) == 40 * 20_000 and all(b * 4 < a for a, b in itertools.pairwise(sizes))
    finally:
        idx.close()
    assert idx._merger is not None and not idx._merger.is_alive()


def test_an_idle_index_folds_its_small_runs_into_one() -> None:
    rng = np.random.default_rng(10)
    idx = LSHIndex(background_merge=True)
    idx._IDLE_S = 0.05
    try:
        for size in (400_000, 60_000, 12_000, 2_000):  # each too small to merge by size
            idx.insert(rng.integers(0, 2**64, size, dtype=np.uint64), rng.integers(0, 9, size).astype(np.uint32))
        keys = rng.integers(0, 2**64, 100, dtype=np.uint64)
        idx.insert(keys, np.full(100, 7, np.uint32))
        deadline = time.monotonic() + 30
        while len(idx._runs) > 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert [r.size for r in idx._runs] == [400_000, 74_100]
        assert np.array_equal(idx.query(keys), np.full(100, 7, np.uint32))
    finally:
        idx.close()


def _entries(run: _Run) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A run's contents spelled out: ordinary 48-bit keys and stories, heavy keys, counts, stories."""
    top = np.arange(run.slots.size - 1, dtype=np.uint64) >> np.uint64(run.bits - 16)
    sizes: np.ndarray = np.diff(run.slots.astype(np.int64))
    keys = np.repeat(top, sizes) << np.uint64(32) | run.low
    return keys, run.stories, run.heavy, np.diff(run.heavy_starts), run.heavy_stories


@pytest.mark.parametrize("seed", range(6))
def test_a_merge_keeps_every_live_entry_older_first(seed: int) -> None:
    """The compiled merge gives what sorting both runs' live entries end to end gives, heavy keys
    (including ones that become heavy only together, or stop being heavy after deletions) set apart."""
    rng = np.random.default_rng(seed)
    # 40 entries in each run (heavy only together) and 70 in one (fewer than 65 once some are deleted).
    together = rng.integers(0, 2**48, 5, dtype=np.uint64)
    alone = rng.integers(0, 2**48, 5, dtype=np.uint64)

    def run(n: int, fixed: np.ndarray) -> _Run:
        keys = rng.integers(0, 2**48, n, dtype=np.uint64)
        keys[: n // 3] = rng.integers(0, 40, n // 3).astype(np.uint64) << np.uint64(42)  # shared, some heavy
        keys[n // 3 : n // 2] = rng.choice(keys[n // 2 :], n // 2 - n // 3)  # repeats in many slots
        keys = np.concatenate([keys, fixed])
        return _sorted_run(keys, rng.integers(0, 5000, keys.size).astype(np.uint32))

    a = run(int(rng.integers(1, 300_000)), np.concatenate([np.repeat(together, 40), np.repeat(alone, 70)]))
    b = run(int(rng.integers(1, 60_000)), np.repeat(together, 40))
    alive = rng.random(5000) > 0.2
    keys = np.concatenate([np.concatenate([k, np.repeat(h, c)]) for k, _, h, c, _ in map(_entries, (a, b))])
    stories = np.concatenate([np.concatenate([s, hs]) for _, s, _, _, hs in map(_entries, (a, b))])
    older = np.repeat([0, 1], [a.size, b.size])
    live = alive[stories]
    order = np.lexsort((older[live], keys[live]))  # by key, then a's before b's
    expected = _split_heavy(keys[live][order], stories[live][order])
    merged = _merge_runs(a, b, alive)
    assert merged.bits == _slot_bits(a.size + b.size)
    got = _entries(merged)
    for i in range(5):
        assert np.array_equal(expected[i], got[i])


def test_keys_are_told_apart_by_their_top_48_bits() -> None:
    idx = LSHIndex()
    idx.insert(np.array([0xABCDEF0123450000, 0xABCDEF0123460000], np.uint64), np.array([1, 2], np.uint32))
    assert idx.query(np.array([0xABCDEF012345FFFF], np.uint64)).tolist() == [1]
    assert idx.query(np.array([0xABCDEF0123470000], np.uint64)).size == 0


def test_max_bucket_is_the_same_in_both_backends(tmp_path: Path) -> None:
    """The embedded index and the Redis layout leave out the same over-full buckets."""
    if REDIS_SERVER is None:
        pytest.skip(SKIP_REASON)
    gen = NewsGen(seed=21)
    records = [StoryRecord(f"s{i}", gen.article()) for i in range(60)]
    settings = Settings()
    fingerprint = settings.index.fingerprint()
    srv = RedisServer(tmp_path / "redis").start()
    red = Detector(settings, open_redis_backend(srv.url, fingerprint))
    emb = Detector(settings, EmbeddedBackend(tmp_path / "emb", fingerprint))
    try:
        for det in (red, emb):
            det.upsert(records)
        keys = emb.pipeline.article(gen.article(), settings.match.query_step).topic_keys
        sizes = {np.sort(emb.backend.lookup(keys[i : i + 1])).size for i in range(keys.size)}
        assert len(sizes) > 2  # buckets of several sizes, so the caps below leave out different ones
        full = emb.backend.lookup(keys)
        for cap in (0, 1, 3, 10, 1000):
            e = np.sort(emb.backend.lookup(keys, cap))
            assert np.array_equal(np.sort(red.backend.lookup(keys, cap)), e)
            assert e.size == full.size if cap in (0, 1000) else e.size < full.size
    finally:
        red.close()
        emb.close()
        srv.stop()


def test_term_frequencies_count_each_document_once_and_forget_removed_ones() -> None:
    rng = np.random.default_rng(9)
    docs = [rng.integers(0, 50, int(rng.integers(1, 40))).astype(np.uint32) for _ in range(30)]
    tf = TermFrequencies(bits=6)
    tf.add(docs)
    tf.remove(docs[:10])
    terms = np.arange(64, dtype=np.uint32)
    df = np.array([sum(int(t) in set(d.tolist()) for d in docs[10:]) for t in terms])
    n = 20
    assert tf.documents == n
    np.testing.assert_allclose(tf.weights(terms), np.log1p(n / (df + 1.0)) / np.log1p(n))
