"""The LSH index: band keys -> story numbers, held in sorted numpy runs.

datasketch's ``MinHashLSH`` keeps a Python dict of sets per band, which costs
kilobytes per story. Here every (band key, story) pair is 8 bytes in sorted
arrays, organised like a small log-structured merge tree: each insert batch
becomes a sorted run, and runs of similar size are merged, so there are only
O(log n) runs to binary-search and inserts stay amortised O(log n).

Keys are compared on their top 48 bits. Each run is cut into 2**bits slots by
the top bits of the key (bits >= 16), and an entry stores only the low 32 bits
of its 48-bit key: the slot it sits in holds the rest. At a billion entries a
probe meets a foreign 48-bit key about once in 300,000 lookups, which adds one
vote to one candidate that verification then rejects.

Deletion marks a story dead; dead entries are filtered at query time and
dropped at the next merge. Readers never take the lock: they read an immutable
tuple of runs that writers replace atomically.
"""

from __future__ import annotations

import ctypes
import functools
import sys
import threading
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np

from wiretrace.shingling import U32, U64, sorted_unique

KEY_BITS = 48  # bits of a band key the index tells apart
_STORED_BITS = 32  # of which an entry stores the low ones; its slot gives the rest
_MIN_SLOT_BITS = KEY_BITS - _STORED_BITS
# Entries per slot of a large run's directory: few enough that a key is found
# in a few vectorised steps, and the directory adds at most 4 bytes per 16
# entries (an entry itself is 8 bytes).
_SLOT_ENTRIES = 16
# A key held more often than this in a run (a common whole-document bucket) is
# kept aside with its story list: a slot holding it would take many vectorised
# search steps, and its entries need no key at all (4 bytes each).
_HEAVY = 4 * _SLOT_ENTRIES


@dataclass(frozen=True, slots=True)
class _Run:
    # Ordinary entries, sorted by 48-bit key: the key of entry i is (t << 32 | low[i])
    # with t the top 16 bits of its slot number; slot s holds low[slots[s] : slots[s + 1]].
    low: U32
    stories: U32
    slots: np.ndarray
    bits: int
    # Heavy keys, sorted: key h holds heavy_stories[heavy_starts[h] : heavy_starts[h + 1]].
    heavy: U64
    heavy_starts: np.ndarray
    heavy_stories: U32

    @property
    def size(self) -> int:
        return int(self.low.shape[0] + self.heavy_stories.shape[0])

    @property
    def nbytes(self) -> int:
        parts = (self.low, self.stories, self.slots, self.heavy, self.heavy_starts, self.heavy_stories)
        return sum(int(a.nbytes) for a in parts)

    def bounds(self, needles: U64) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """[lo, hi) of each distinct 48-bit needle among the ordinary entries, then
        among the heavy stories (a needle is found in one of the two at most)."""
        return _bounds(
            self.low, self.slots, KEY_BITS - self.bits, self.heavy, self.heavy_starts, np.ascontiguousarray(needles)
        )


_BOUNDS = "Tuple((int64[::1], int64[::1], int64[::1], int64[::1]))({}[::1], {}[::1], int64, uint64[::1], int64[::1], uint64[::1])"  # noqa: E501


@numba.njit(
    [_BOUNDS.format("uint32", slots) for slots in ("int32", "int64")],
    cache=True,  # compiled once per install
    nogil=True,  # other threads run meanwhile
    boundscheck=False,
)
def _bounds(
    low: U32, slots: np.ndarray, shift: int, heavy: U64, heavy_starts: np.ndarray, needles: U64
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``_Run.bounds``: per needle, a binary search in its slot, then a step past each
    repeat (at most ``_HEAVY``: more go to the heavy list), and a binary search of the heavy keys.

    Compiled loops, not numpy calls per search step: a query's few hundred needles paid for
    about a hundred numpy calls, twice the work itself."""
    n = needles.size
    lo = np.empty(n, np.int64)
    hi = np.empty(n, np.int64)
    heavy_lo = np.zeros(n, np.int64)
    heavy_hi = np.zeros(n, np.int64)
    want = np.empty(n, np.uint32)
    end = np.empty(n, np.int64)
    for i in range(n):
        slot = np.int64(needles[i] >> np.uint64(shift))
        want[i] = np.uint32(needles[i] & np.uint64(0xFFFFFFFF))
        lo[i] = slots[slot]
        end[i] = slots[slot + 1]
    hi[:] = end
    # Cache misses, not comparisons, are the cost: searching step by step across all needles
    # issues their loads independently of each other, so the CPU overlaps them.
    searching = True
    while searching:
        searching = False
        for i in range(n):
            if lo[i] < hi[i]:
                mid = (lo[i] + hi[i]) >> 1
                if low[mid] < want[i]:
                    lo[i] = mid + 1
                else:
                    hi[i] = mid
                searching = True
    for i in range(n):
        key = needles[i]
        a = lo[i]
        while a < end[i] and low[a] == want[i]:
            a += 1
        hi[i] = a
        a, b = 0, heavy.size
        while a < b:
            mid = (a + b) >> 1
            if heavy[mid] < key:
                a = mid + 1
            else:
                b = mid
        if a < heavy.size and heavy[a] == key:
            heavy_lo[i] = heavy_starts[a]
            heavy_hi[i] = heavy_starts[a + 1]
    return lo, hi, heavy_lo, heavy_hi


@numba.njit(cache=True, nogil=True, boundscheck=False)  # compiled once per install; no GIL held
def _gather(stories: U32, lo: np.ndarray, hi: np.ndarray, alive: np.ndarray) -> U32:
    """The live stories of ``stories[lo[i]:hi[i]]`` for every i, concatenated (in one pass, where
    numpy took ten calls per list)."""
    total = 0
    for i in range(lo.size):
        total += hi[i] - lo[i]
    out = np.empty(total, dtype=np.uint32)
    m = 0
    for i in range(lo.size):
        for p in range(lo[i], hi[i]):
            story = stories[p]
            if story < alive.size and alive[story]:
                out[m] = story
                m += 1
    return out[:m]


def _stable_order(keys: U64) -> np.ndarray:
    """``np.argsort(keys, kind="stable")`` of 48-bit keys, ten times faster.

    NumPy's SIMD sort of plain integers is far quicker than any argsort, so
    each key's top bits and its position are packed into one integer and
    sorted: positions fill the low bits, the key as many of the top bits as
    are left. Keys that agree on those bits but not on the rest come out of
    order; at insert-batch sizes that is rare, and a stable argsort of the
    nearly sorted result (timsort: linear) puts them right.
    """
    n = keys.size
    pos_bits = max(1, (n - 1).bit_length())
    if pos_bits > 32:
        return np.argsort(keys, kind="stable")
    drop = np.uint64(max(0, pos_bits - (64 - KEY_BITS)))
    packed = (keys >> drop) << np.uint64(pos_bits) | np.arange(n, dtype=np.uint64)
    packed.sort()
    order = (packed & np.uint64((1 << pos_bits) - 1)).astype(np.intp)
    if drop:
        ranked = keys[order]
        if (ranked[1:] < ranked[:-1]).any():
            order = order[np.argsort(ranked, kind="stable")]
    return order


def _low_words(keys: U64) -> U32:
    """The low 32 bits of each key: a strided view, not a masked copy and a cast."""
    words = np.ascontiguousarray(keys).view(np.uint32).reshape(-1, 2)
    return np.ascontiguousarray(words[:, 0 if sys.byteorder == "little" else 1])


def _split_heavy(keys: U64, stories: U32) -> tuple[U64, U32, U64, np.ndarray, U32]:
    """Sorted entries -> (ordinary keys, their stories, heavy keys, how many
    entries each holds, their stories)."""
    heavy = np.empty(0, np.uint64)
    if keys.size > _HEAVY:
        # A key held more than _HEAVY times equals the key _HEAVY places on.
        heavy = keys[:-_HEAVY][keys[_HEAVY:] == keys[:-_HEAVY]]
    if not heavy.size:
        return keys, stories, heavy, np.zeros(0, np.int64), np.empty(0, np.uint32)
    heavy = heavy[np.append(True, heavy[1:] != heavy[:-1])]
    lo, hi = np.searchsorted(keys, heavy), np.searchsorted(keys, heavy, side="right")
    edge = np.zeros(keys.size + 1, dtype=np.int8)
    edge[lo] += 1
    edge[hi] -= 1  # where one heavy key ends another may start
    aside = np.cumsum(edge[:-1], dtype=np.int8).view(bool)
    ordinary = ~aside
    return keys[ordinary], stories[ordinary], heavy, hi - lo, stories[aside]


@functools.cache
def _libc_malloc_trim() -> Any:
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc: its allocator may return memory by itself
        return None


def release_free_heap() -> None:
    """Give the memory merges freed back to the OS.

    Once glibc has freed a few large blocks it raises the size it serves with
    mappings of their own, so a merge's key-range temporaries (tens of
    megabytes) come from its heap, and it keeps their pages after they are
    freed: a quiet server then held hundreds of megabytes it no longer used.
    Trimming waits until inserts pause, so busy ingest does not fault the same
    pages in again and again.
    """
    trim = _libc_malloc_trim()
    if trim is not None:
        trim(0)


def _slot_bits(entries: int) -> int:
    return max(_MIN_SLOT_BITS, min(32, int(entries // _SLOT_ENTRIES).bit_length() - 1))


def _sorted_run(keys: U64, stories: U32) -> _Run:
    """A run of an insert batch's 48-bit `keys`."""
    order = _stable_order(keys)
    keys, stories, heavy, counts, heavy_stories = _split_heavy(keys[order], stories[order])
    bits = _slot_bits(keys.size)
    # Where each slot starts (sorted needles: one pass, no temporaries the size of the run).
    firsts = np.arange(1 << bits, dtype=np.uint64) << np.uint64(KEY_BITS - bits)
    slots = np.append(np.searchsorted(keys, firsts), keys.size)
    dtype = np.int32 if keys.size < 2**31 else np.int64
    heavy_starts = np.append(0, np.cumsum(counts))
    return _Run(_low_words(keys), stories, slots.astype(dtype), bits, heavy, heavy_starts, heavy_stories)


def _merge_runs(a: _Run, b: _Run, alive: np.ndarray) -> _Run:
    """One run of a's and b's live entries, b's after a's equal keys.

    One compiled pass writes straight into the new run's arrays, so a merge
    needs little more than the new run's own memory, and holds no GIL. It was
    a key range at a time of numpy calls (rebuild keys, concatenate, stable
    argsort, split off heavy keys): 3.5x slower alone, and in a busy server
    ~15 million entries a second, a third of its ingest CPU, most of it
    holding the GIL that ingest's other threads wanted.
    """
    total = a.size + b.size
    bits = _slot_bits(total)
    low = np.empty(total, np.uint32)
    stories = np.empty(total, np.uint32)
    slots = np.empty((1 << bits) + 1, np.int64)
    heavy = np.empty(total // (_HEAVY + 1) + 1, np.uint64)
    counts = np.empty(heavy.size, np.int64)
    used, n_heavy = _merge_into(
        (a.low, a.stories, a.slots.astype(np.int64, copy=False), a.bits, a.heavy, a.heavy_starts, a.heavy_stories),
        (b.low, b.stories, b.slots.astype(np.int64, copy=False), b.bits, b.heavy, b.heavy_starts, b.heavy_stories),
        alive,
        bits,
        low,
        stories,
        slots,
        heavy,
        counts,
    )
    counts = counts[:n_heavy].copy()
    heavy_stories = _heavy_in_order(stories, counts)
    # Heavy and dead entries left the end unused: give it back without a copy.
    low.resize(used, refcheck=False)
    stories.resize(used, refcheck=False)
    dtype = np.int32 if used < 2**31 else np.int64
    return _Run(
        low, stories, slots.astype(dtype), bits, heavy[:n_heavy].copy(), np.append(0, np.cumsum(counts)), heavy_stories
    )


_NO_KEY = np.uint64(2**64 - 1)  # above every 48-bit key: a stream that has ended


@numba.njit(cache=True, nogil=True, boundscheck=False)  # compiled once per install; no GIL held
def _ordinary_key(low: U32, slots: np.ndarray, shift: int, p: int, s: int) -> tuple[np.uint64, int]:
    """The 48-bit key of ordinary entry p and its slot (searched from slot s on); _NO_KEY past the end."""
    if p >= low.size:
        return _NO_KEY, s
    while slots[s + 1] <= p:
        s += 1
    return (np.uint64(s >> shift) << np.uint64(_STORED_BITS)) | np.uint64(low[p]), s


@numba.njit(cache=True, nogil=True, boundscheck=False)  # compiled once per install; no GIL held
def _group_end(low: U32, slots: np.ndarray, s: int, p: int) -> int:
    """Past the last ordinary entry with entry p's key (same slot, same low word)."""
    e = p + 1
    stop = min(low.size, slots[s + 1])
    while e < stop and low[e] == low[p]:
        e += 1
    return e


@numba.njit(cache=True, nogil=True, boundscheck=False)  # compiled once per install; no GIL held
def _merge_into(
    a: tuple[U32, U32, np.ndarray, int, U64, np.ndarray, U32],
    b: tuple[U32, U32, np.ndarray, int, U64, np.ndarray, U32],
    alive: np.ndarray,
    bits: int,
    low: U32,
    stories: U32,
    slots: np.ndarray,
    heavy: U64,
    counts: np.ndarray,
) -> tuple[int, int]:
    """``_merge_runs``' pass over four sorted streams (each run's ordinary entries and heavy
    keys). Live stories go to the ordinary entries (from the front) or, for a key with more
    than ``_HEAVY`` of them, to the heavy list (from the back of ``stories``). Returns how
    many ordinary entries and heavy keys were written."""
    a_low, a_st, a_slots, a_bits, a_heavy, a_hstarts, a_hst = a
    b_low, b_st, b_slots, b_bits, b_heavy, b_hstarts, b_hst = b
    a_shift, b_shift = a_bits - _MIN_SLOT_BITS, b_bits - _MIN_SLOT_BITS
    out_shift = np.uint64(KEY_BITS - bits)
    pa = pb = ha = hb = 0
    used = n_heavy = 0
    tail = stories.size  # heavy stories fill stories[tail:] backwards
    next_slot = 0
    ka, sa = _ordinary_key(a_low, a_slots, a_shift, 0, 0)
    kb, sb = _ordinary_key(b_low, b_slots, b_shift, 0, 0)
    kha = a_heavy[0] if a_heavy.size else _NO_KEY
    khb = b_heavy[0] if b_heavy.size else _NO_KEY
    while True:
        # The common case, a plain merge step: the smallest key is in one run's ordinary
        # entries only, so it has at most _HEAVY entries (or that run would hold it as heavy).
        below = min(kha, khb)
        while ka != kb:
            if ka < kb:
                if ka >= below:
                    break
                key, story = ka, a_st[pa]
                pa += 1
                ka, sa = _ordinary_key(a_low, a_slots, a_shift, pa, sa)
            else:
                if kb >= below:
                    break
                key, story = kb, b_st[pb]
                pb += 1
                kb, sb = _ordinary_key(b_low, b_slots, b_shift, pb, sb)
            if story < alive.size and alive[story]:
                slot = int(key >> out_shift)
                while next_slot <= slot:
                    slots[next_slot] = used
                    next_slot += 1
                low[used] = np.uint32(key & np.uint64(0xFFFFFFFF))
                stories[used] = story
                used += 1
        key = min(min(ka, kha), min(kb, khb))
        if key == _NO_KEY:
            break
        # A key in both runs, or heavy in one: its entries in order, a's (ordinary or heavy,
        # never both) then b's, counted first to tell where they go.
        ea = _group_end(a_low, a_slots, sa, pa) if ka == key else pa
        eb = _group_end(b_low, b_slots, sb, pb) if kb == key else pb
        ia0, ia1 = (a_hstarts[ha], a_hstarts[ha + 1]) if kha == key else (0, 0)
        ib0, ib1 = (b_hstarts[hb], b_hstarts[hb + 1]) if khb == key else (0, 0)
        groups = ((a_st, pa, ea), (a_hst, ia0, ia1), (b_st, pb, eb), (b_hst, ib0, ib1))
        live = 0
        for src, lo, hi in groups:
            for i in range(lo, hi):
                story = src[i]
                if story < alive.size and alive[story]:
                    live += 1
        if live > _HEAVY:
            heavy[n_heavy] = key
            counts[n_heavy] = live
            n_heavy += 1
            tail -= live
            at = tail
        else:
            slot = int(key >> out_shift)
            while next_slot <= slot:
                slots[next_slot] = used
                next_slot += 1
            at = used
            used += live
            low[at:used] = np.uint32(key & np.uint64(0xFFFFFFFF))
        for src, lo, hi in groups:
            for i in range(lo, hi):
                story = src[i]
                if story < alive.size and alive[story]:
                    stories[at] = story
                    at += 1
        if ka == key:
            pa = ea
            ka, sa = _ordinary_key(a_low, a_slots, a_shift, pa, sa)
        if kb == key:
            pb = eb
            kb, sb = _ordinary_key(b_low, b_slots, b_shift, pb, sb)
        if kha == key:
            ha += 1
            kha = a_heavy[ha] if ha < a_heavy.size else _NO_KEY
        if khb == key:
            hb += 1
            khb = b_heavy[hb] if hb < b_heavy.size else _NO_KEY
    while next_slot < slots.size:
        slots[next_slot] = used
        next_slot += 1
    return used, n_heavy


@numba.njit(cache=True, nogil=True, boundscheck=False)  # compiled once per install; no GIL held
def _heavy_in_order(stories: U32, counts: np.ndarray) -> U32:
    """The heavy keys' stories, which ``_merge_into`` wrote from the end of ``stories``
    backwards a key at a time, in key order."""
    out = np.empty(counts.sum(), np.uint32)
    end = stories.size
    at = 0
    for c in counts:
        out[at : at + c] = stories[end - c : end]
        at += c
        end -= c
    return out


class LSHIndex:
    """Maps band keys to the stories that have them.

    With `background_merge`, runs are merged on a thread of the index's own,
    so an insert returns once its batch is searchable and the merging (a
    fifth to a third of a server's ingest CPU) overlaps the next batch's commit on
    another core. Inserts wait only if merging falls `_MAX_RUNS` runs behind.
    When inserts pause, the thread also folds the small runs into one, so a
    quiet index answers from two runs at most.
    """

    _MAX_RUNS = 16
    _IDLE_S = 2.0  # seconds without inserts after which all runs but the largest are merged

    def __init__(self, background_merge: bool = False) -> None:
        self._runs: tuple[_Run, ...] = ()
        self._alive = np.zeros(1024, dtype=bool)
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._background = background_merge
        self._merger: threading.Thread | None = None
        self._merging = False
        self._closed = False

    # -- writes ----------------------------------------------------------

    def insert(self, keys: U64, stories: U32) -> None:
        """Add (key, story) pairs; `keys` and `stories` are parallel 1-d arrays."""
        if keys.size == 0:
            return
        run = _sorted_run(
            keys.astype(np.uint64, copy=False) >> np.uint64(64 - KEY_BITS), stories.astype(np.uint32, copy=False)
        )
        with self._lock:
            top = int(stories.max())
            if top >= self._alive.size:
                grown = np.zeros(max(top + 1, 2 * self._alive.size), dtype=bool)
                grown[: self._alive.size] = self._alive
                self._alive = grown
            self._alive[stories] = True
            self._runs = (*self._runs, run)
            if self._background and not self._closed:
                if self._merger is None:
                    self._merger = threading.Thread(target=self._merge_forever, name="lsh-merge", daemon=True)
                    self._merger.start()
                self._changed.notify_all()
                while len(self._runs) > self._MAX_RUNS and not self._closed:
                    self._changed.wait()
                return
        while (pair := self._pair_to_merge()) is not None:
            self._merge_pair(*pair)

    def _pair_to_merge(self) -> tuple[_Run, _Run] | None:
        """Size-tiered merging: each run is kept at least 4x its successor."""
        runs = self._runs
        for i in range(len(runs) - 1, 0, -1):
            if runs[i].size * 4 >= runs[i - 1].size:
                return runs[i - 1], runs[i]
        return None

    def _merge_pair(self, a: _Run, b: _Run) -> None:
        merged = _merge_runs(a, b, self._alive)
        with self._lock:
            # Only appends happen meanwhile, so a and b are still side by side.
            runs = list(self._runs)
            at = next(i for i in range(len(runs) - 1) if runs[i] is a and runs[i + 1] is b)
            runs[at : at + 2] = [merged]
            self._runs = tuple(runs)

    def _merge_forever(self) -> None:
        untrimmed = False  # merged since the heap was last handed back
        while True:
            trim = False
            with self._lock:
                pair = self._pair_to_merge()
                while pair is None and not self._closed:
                    self._merging = False
                    self._changed.notify_all()
                    before = self._runs
                    idle_work = len(before) > 2 or untrimmed
                    woken = self._changed.wait(timeout=self._IDLE_S if idle_work else None)
                    pair = self._pair_to_merge()
                    if pair is None and not woken and self._runs is before:
                        if len(before) > 2:
                            # Idle: fold the newest runs together. Each run costs a query
                            # ~0.15 ms whatever its size; the largest is left alone, so
                            # this rewrites at most the third of the index the tail holds.
                            pair = before[-2], before[-1]
                        else:
                            trim = True
                            break
                if self._closed:
                    return
                self._merging = pair is not None
            if trim:
                release_free_heap()
                untrimmed = False
                continue
            assert pair is not None
            self._merge_pair(*pair)
            untrimmed = True
            with self._lock:
                self._changed.notify_all()

    def settle(self) -> None:
        """Wait until background merging has nothing left to do."""
        with self._lock:
            while self._merger is not None and not self._closed and (self._merging or self._pair_to_merge()):
                self._changed.wait()

    def close(self) -> None:
        """Stop the merging thread (the index stays readable)."""
        with self._lock:
            self._closed = True
            self._changed.notify_all()
            merger = self._merger
        if merger is not None:
            merger.join()

    def remove(self, stories: U32) -> None:
        """Forget stories; their entries vanish from results at once."""
        with self._lock:
            stories = stories[stories < self._alive.size]
            self._alive[stories] = False

    # -- reads -----------------------------------------------------------

    def query(self, keys: U64, max_bucket: int = 0) -> U32:
        """Story numbers of every entry whose key is in `keys` (with repeats).

        With `max_bucket`, keys holding more entries than that (counting
        deleted stories until their run is merged) are left out: a bucket
        shared by a large part of the index says nothing about any one story,
        and reading it would make the cost of a query grow with the index.
        """
        # Sorted needles search faster, and repeats add nothing.
        keys = sorted_unique(keys.astype(np.uint64, copy=False) >> np.uint64(64 - KEY_BITS))
        runs = self._runs
        alive = self._alive  # read after runs: it always covers their stories
        # Each run answers from two lists: its ordinary entries and its heavy keys' stories.
        spans: list[tuple[U32, np.ndarray, np.ndarray]] = []
        for run in runs:
            lo, hi, heavy_lo, heavy_hi = run.bounds(keys)
            spans += [(run.stories, lo, hi), (run.heavy_stories, heavy_lo, heavy_hi)]
        if max_bucket > 0 and spans:
            keep = np.sum([hi - lo for _, lo, hi in spans], axis=0) <= max_bucket
            spans = [(stories, lo[keep], hi[keep]) for stories, lo, hi in spans]
        found = [_gather(stories, lo, hi, alive) for stories, lo, hi in spans]
        return np.concatenate(found) if found else np.empty(0, dtype=np.uint32)

    @property
    def entries(self) -> int:
        return sum(r.size for r in self._runs)

    @property
    def nbytes(self) -> int:
        return sum(r.nbytes for r in self._runs) + self._alive.nbytes


@numba.njit(cache=True, nogil=True, boundscheck=False)  # compiled once per install; no GIL held
def _count_distinct(values: U32, offsets: np.ndarray, mask: np.uint32, counts: np.ndarray, sign: int) -> None:
    """Add ``sign`` to the count of each distinct bucket of each document.

    A document's buckets go through a small open-addressing set of its own (twice its
    size, so it stays in cache): one pass, where sorting (document, bucket) pairs of a
    whole batch cost most of the time of indexing a story's terms.
    """
    seen = np.full(64, -1, dtype=np.int64)
    for d in range(offsets.size - 1):
        lo, hi = offsets[d], offsets[d + 1]
        size = 64
        while size < 2 * (hi - lo):
            size <<= 1
        if size > seen.size:
            seen = np.full(size, -1, dtype=np.int64)
        else:
            seen[:size] = -1
        slot_mask = size - 1
        for i in range(lo, hi):
            b = np.int64(values[i] & mask)
            h = b & slot_mask
            while seen[h] != -1 and seen[h] != b:
                h = (h + 1) & slot_mask
            if seen[h] == -1:
                seen[h] = b
                counts[b] += sign


class TermFrequencies:
    """How many stories contain each word pair (and each word, under a salt), in a fixed hashed table.

    Stock phrases ("in the same period last year", "told a news conference")
    recur across thousands of unrelated stories; weighting matched text by
    inverse document frequency keeps them from making a match, in any language
    and without a stop-word list. Buckets are shared by colliding bigrams,
    which only ever raises a count: rare text may look a little common, never
    the reverse, and the table's size stays fixed (4 bytes a bucket).
    """

    def __init__(self, bits: int = 22) -> None:
        self._mask = np.uint32((1 << bits) - 1)
        self._counts = np.zeros(1 << bits, dtype=np.int32)
        self.documents = 0
        self._lock = threading.Lock()

    def add(self, per_doc: list[U32], sign: int = 1) -> None:
        if not per_doc:
            return
        values = np.concatenate(per_doc).astype(np.uint32, copy=False)
        offsets = np.zeros(len(per_doc) + 1, dtype=np.int64)
        np.cumsum([t.size for t in per_doc], out=offsets[1:])
        with self._lock:
            _count_distinct(values, offsets, self._mask, self._counts, sign)
            self.documents += sign * len(per_doc)

    def remove(self, per_doc: list[U32]) -> None:
        self.add(per_doc, sign=-1)

    def weights(self, terms: U32) -> np.ndarray:
        """Informativeness in [0, 1]: 1 for a bigram no story has, near 0 for one all have."""
        n = max(self.documents, 1)
        df = np.maximum(self._counts[terms & self._mask], 0).astype(np.float64)
        weights: np.ndarray = np.log1p(n / (df + 1.0)) / np.log1p(n)
        return weights

    @property
    def nbytes(self) -> int:
        return int(self._counts.nbytes)
