"""MinHash signatures of shingle windows, vectorised and datasketch-compatible.

The permutations are exactly datasketch's ``affine32`` scheme (seeded
``RandomState``, MurmurHash3 ``fmix32`` pre-mix, ``a*h + b mod 2**32``), so a
signature row equals ``datasketch.MinHash(num_perm, seed, scheme="affine32",
hashfunc=int)`` updated with the same shingle hashes, and can be handed to
``LeanMinHash`` or ``MinHashLSH``. What differs is speed: the windows of a whole
batch of documents go through one compiled loop (numba) that keeps each
window's running minima in registers, instead of one Python call per shingle.
That loop was 1.25x the throughput of the whole ingest path compared with the
numpy gather / permute / reduce it replaced (benchmarks/bench_signatures.py).
"""

from __future__ import annotations

from functools import cached_property

import numba
import numpy as np
from datasketch import LeanMinHash

from wiretrace.shingling import I64, U32, U64, fmix64

_F1 = np.uint32(0x85EBCA6B)
_F2 = np.uint32(0xC2B2AE35)
_S16 = np.uint32(16)
_S13 = np.uint32(13)
SCHEME = "affine32"
_FNV = np.uint64(0x100000001B3)


def fmix32(h: U32) -> U32:
    """MurmurHash3's 32-bit finaliser, as datasketch applies before permuting."""
    h = h ^ (h >> _S16)
    h = h * _F1
    h = h ^ (h >> _S13)
    h = h * _F2
    return h ^ (h >> _S16)


@numba.njit(
    "uint32[:, ::1](uint32[::1], int64[::1], int64[::1], uint32[::1], uint32[::1])",
    cache=True,  # compiled once per install, not at every start
    nogil=True,  # other threads run meanwhile
    boundscheck=False,
)
def _window_mins(mixed: U32, starts: I64, ends: I64, a: U32, b: U32) -> U32:
    """(num_perm, windows): the minimum of ``a*x + b mod 2**32`` over each window's mixed shingles.

    The permutations are the inner loop: one vector of minima per window, which the compiler keeps
    in SIMD registers. Overlapping windows are simply scanned again (queries step by a few shingles).
    """
    perms = a.size
    out = np.empty((perms, starts.size), dtype=np.uint32)
    low = np.empty(perms, dtype=np.uint32)
    for w in range(starts.size):
        low[:] = 0xFFFFFFFF
        for i in range(starts[w], ends[w]):
            x = mixed[i]
            for p in range(perms):
                low[p] = min(low[p], np.uint32(a[p] * x + b[p]))
        out[:, w] = low
    return out


class MinHasher:
    """Computes window signatures and their LSH band keys."""

    def __init__(self, num_perm: int, bands: int, rows: int, seed: int = 1, salt: int = 0) -> None:
        if bands * rows > num_perm:
            raise ValueError(f"bands*rows ({bands}*{rows}) exceeds num_perm ({num_perm})")
        self.num_perm = num_perm
        self.bands = bands
        self.rows = rows
        self.seed = seed
        # Keeps the band keys of different sketches (windows, whole documents)
        # apart when they share one index.
        self.salt = np.uint64(salt)

    @cached_property
    def _permutations(self) -> tuple[U32, U32]:
        # Same draws, in the same order, as datasketch.MinHash._init_permutations.
        gen = np.random.RandomState(self.seed)
        a = gen.randint(0, 1 << 31, self.num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
        b = gen.randint(0, 1 << 32, self.num_perm, dtype=np.uint64).astype(np.uint32)
        return a, b

    def signatures(self, shingles: U32, starts: I64, ends: I64) -> U32:
        """Signature (num_perm values) of each window ``shingles[start:end]``.

        Windows may overlap and must be non-empty. Returns (windows, num_perm).
        """
        return np.ascontiguousarray(self._signatures_t(shingles, starts, ends).T)

    def keys(self, shingles: U32, starts: I64, ends: I64) -> U64:
        """``band_keys(signatures(shingles, starts, ends))``, without transposing the signatures twice."""
        return self._band_keys_t(self._signatures_t(shingles, starts, ends))

    def _signatures_t(self, shingles: U32, starts: I64, ends: I64) -> U32:
        """The signatures as (num_perm, windows), the layout band keys are read in."""
        a, b = self._permutations
        return _window_mins(
            fmix32(np.ascontiguousarray(shingles, dtype=np.uint32)),
            np.ascontiguousarray(starts, dtype=np.int64),
            np.ascontiguousarray(ends, dtype=np.int64),
            a,
            b,
        )

    def band_keys(self, signatures: U32) -> U64:
        """One 64-bit key per (window, band); the band number is mixed in.

        Returns shape (windows, bands).
        """
        return self._band_keys_t(signatures.T)

    def _band_keys_t(self, sig_t: U32) -> U64:
        """``band_keys`` of signatures laid out (num_perm, windows); returns (windows, bands)."""
        n = sig_t.shape[1]
        rows = sig_t[: self.bands * self.rows].reshape(self.bands, self.rows, n)
        acc = np.zeros((self.bands, n), dtype=np.uint64)
        for r in range(self.rows):
            acc ^= rows[:, r, :]
            acc *= _FNV
        acc ^= self._band_salt
        return np.ascontiguousarray(fmix64(acc).T)

    @cached_property
    def _band_salt(self) -> U64:
        bands = np.arange(self.bands, dtype=np.uint64)[:, None]
        return (bands + (self.salt << np.uint64(32))) * np.uint64(0x9E3779B97F4A7C15)

    def lean_minhash(self, signature: U32) -> LeanMinHash:
        """A datasketch LeanMinHash carrying one window's signature."""
        return LeanMinHash(seed=self.seed, hashvalues=signature, scheme=SCHEME)
