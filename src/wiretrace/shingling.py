"""Text pipeline, step 2: word k-shingles and the windows they are grouped in.

A shingle is k consecutive tokens; its 32-bit hash is a vectorised polynomial
combination of the tokens' xxh32 hashes, finished with a 64-bit avalanche, so a
whole document is shingled with a handful of numpy operations instead of one
hash call per shingle. Shingle i starts at token i, which keeps positions for
passage alignment.

Syndication is about *local* reuse (an excerpt, a trimmed lead, one block of a
merged story), which whole-document Jaccard cannot see. The index therefore
sketches fixed-size windows of shingles: stories in adjacent windows, queries
in windows that overlap, so any copied run of about one window length lands
almost entirely inside some query window that is aligned with a story window.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numba
import numpy as np

from wiretrace.types import I64 as I64
from wiretrace.types import U32 as U32
from wiretrace.types import U64 as U64

_POLY = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xFF51AFD7ED558CCD)
_M2 = np.uint64(0xC4CEB9FE1A85EC53)
_S33 = np.uint64(33)
_S32 = np.uint64(32)


def sorted_unique(values: np.ndarray) -> np.ndarray:
    """``np.unique`` of an integer array by sorting.

    NumPy >= 2.3 answers a plain ``np.unique`` of integers from a C++ hash set,
    which is tens of times slower than its SIMD sort on large arrays
    (numpy/numpy#31969); the result is the same sorted array.
    """
    out = np.sort(values)
    if out.size < 2:
        return out
    keep = np.empty(out.size, dtype=bool)
    keep[0] = True
    np.not_equal(out[1:], out[:-1], out=keep[1:])
    return out[keep]


def distinct(values: U32) -> tuple[U32, I64, I64]:
    """``np.unique(values, return_index=True, return_inverse=True)`` of 32-bit hashes: verification
    takes it of an article's shingles and bigrams several times a match, where numpy's version
    costs ~10 us in calls around a sort of a few hundred values. Here: one SIMD sort of
    (value, position) pairs, one compiled pass."""
    packed = np.sort(values.astype(np.uint64) << _S32 | np.arange(values.size, dtype=np.uint64))
    return _distinct_sorted(packed)


@numba.njit(cache=True, nogil=True, boundscheck=False)  # compiled once per install; no GIL held
def _distinct_sorted(packed: U64) -> tuple[U32, I64, I64]:
    n = packed.size
    inverse = np.empty(n, dtype=np.int64)
    uniq = np.empty(n, dtype=np.uint32)
    first = np.empty(n, dtype=np.int64)
    m = -1
    for i in range(n):
        value = np.uint32(packed[i] >> np.uint64(32))
        at = np.int64(packed[i] & np.uint64(0xFFFFFFFF))
        if m < 0 or value != uniq[m]:
            m += 1
            uniq[m] = value
            first[m] = at
        inverse[at] = m
    return uniq[: m + 1].copy(), first[: m + 1].copy(), inverse


def fmix64(x: U64) -> U64:
    """MurmurHash3's 64-bit finaliser: a bijection that spreads every input bit."""
    x = x ^ (x >> _S33)
    x = x * _M1
    x = x ^ (x >> _S33)
    x = x * _M2
    return x ^ (x >> _S33)


def shingle_hashes(token_hashes: U32, k: int) -> U32:
    """32-bit hashes of the k-shingles of a token sequence, in token order: the top half of
    ``fmix64`` of the polynomial ``t0*P^(k-1) + ... + t(k-1)`` (mod 2**64)."""
    if token_hashes.shape[0] < k:
        return np.empty(0, dtype=np.uint32)
    return _shingles(np.ascontiguousarray(token_hashes, dtype=np.uint32), k)


_TOKENS = [numba.types.Array(numba.types.uint32, 1, "C", readonly=r) for r in (False, True)]  # stored: read-only


@numba.njit(
    [numba.types.uint32[::1](tokens, numba.types.int64) for tokens in _TOKENS],
    cache=True,  # compiled once per install
    nogil=True,  # other threads run meanwhile
    boundscheck=False,
)
def _shingles(tokens: U32, k: int) -> U32:
    """``shingle_hashes`` in one pass (numpy made 2k + 6 passes over the whole array)."""
    out = np.empty(tokens.size - k + 1, dtype=np.uint32)
    for i in range(out.size):
        acc = np.uint64(tokens[i])
        for j in range(1, k):
            acc = acc * _POLY + np.uint64(tokens[i + j])
        acc ^= acc >> _S33
        acc *= _M1
        acc ^= acc >> _S33
        acc *= _M2
        acc ^= acc >> _S33
        out[i] = np.uint32(acc >> _S32)
    return out


@dataclass(frozen=True, slots=True)
class Ragged:
    """Many sequences in one array: sequence i is ``values[starts[i]:ends[i]]``.

    Verification works on ~80 candidate stories at once; compiled loops take
    the three arrays whole instead of a Python list of small arrays, and
    shingling the concatenation is one pass (a shingle's hash depends only on
    its own k tokens, so each sequence's shingles are a slice of it).
    """

    values: U32
    starts: I64
    ends: I64

    @classmethod
    def of(cls, seqs: Sequence[U32]) -> Ragged:
        sizes = np.fromiter((s.shape[0] for s in seqs), dtype=np.int64, count=len(seqs))
        ends = np.cumsum(sizes)
        values = np.concatenate(seqs).astype(np.uint32, copy=False) if seqs else np.empty(0, np.uint32)
        return cls(values, ends - sizes, ends)

    def __len__(self) -> int:
        return int(self.starts.size)

    def __getitem__(self, i: int) -> U32:
        return self.values[self.starts[i] : self.ends[i]]

    def __iter__(self) -> Iterator[U32]:
        return (self.values[a:b] for a, b in zip(self.starts.tolist(), self.ends.tolist(), strict=True))

    @property
    def sizes(self) -> I64:
        return self.ends - self.starts

    def take(self, picked: np.ndarray) -> Ragged:
        """The sequences at ``picked`` (views of the same values)."""
        return Ragged(self.values, self.starts[picked], self.ends[picked])

    def shingles(self, k: int) -> Ragged:
        """`shingle_hashes` of every sequence (empty where shorter than k)."""
        return Ragged(shingle_hashes(self.values, k), self.starts, np.maximum(self.starts, self.ends - k + 1))


def window_bounds(n_shingles: int, size: int, step: int) -> tuple[I64, I64]:
    """Start/end offsets of windows of `size` shingles every `step`, covering the tail.

    A sequence shorter than one window is a single window; the last window is
    pulled back so it is always full-size rather than a short remnant.
    """
    if n_shingles <= 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    if n_shingles <= size:
        return np.zeros(1, dtype=np.int64), np.full(1, n_shingles, dtype=np.int64)
    starts = np.arange(0, n_shingles - size + 1, step, dtype=np.int64)
    if starts[-1] + size < n_shingles:
        starts = np.append(starts, n_shingles - size)
    return starts, starts + size
