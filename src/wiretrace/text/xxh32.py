"""xxh32 of ASCII tokens, lower-cased on the fly: a compiled kernel (numba) for the batch path.

Equal to ``xxhash.xxh32_intdigest(token.lower().encode())`` for tokens of
[A-Za-z0-9] (``tests/test_text_batch.py`` checks it against the library).
"""

from __future__ import annotations

import numba
import numpy as np
import numpy.typing as npt

_M32 = np.uint64(0xFFFFFFFF)
_P1, _P2, _P3, _P4, _P5 = (np.uint64(p) for p in (0x9E3779B1, 0x85EBCA77, 0xC2B2AE3D, 0x27D4EB2F, 0x165667B1))
_LANE1 = np.uint64((0x9E3779B1 + 0x85EBCA77) & 0xFFFFFFFF)  # xxh32's first lane with seed 0
_LANE4 = np.uint64(-0x9E3779B1 & 0xFFFFFFFF)  # and its fourth
_LOWER = np.uint64(0x20)  # ASCII letters and digits: setting bit 5 lower-cases them


# Kernels are compiled once per install (cache) and let other threads run (nogil).
@numba.njit(inline="always", cache=True, nogil=True)
def _rotl(h: np.uint64, r: int) -> np.uint64:
    return ((h << np.uint64(r)) | (h >> np.uint64(32 - r))) & _M32


@numba.njit(inline="always", cache=True, nogil=True, boundscheck=False)
def _lower32(data: npt.NDArray[np.uint8], i: int) -> np.uint64:
    """The little-endian word of data[i:i+4], lower-cased."""
    return (
        (np.uint64(data[i]) | _LOWER)
        | ((np.uint64(data[i + 1]) | _LOWER) << np.uint64(8))
        | ((np.uint64(data[i + 2]) | _LOWER) << np.uint64(16))
        | ((np.uint64(data[i + 3]) | _LOWER) << np.uint64(24))
    )


def xxh32_ascii_tokens(
    data: npt.NDArray[np.uint8], starts: npt.NDArray[np.int64], lengths: npt.NDArray[np.int64]
) -> npt.NDArray[np.uint32]:
    """xxh32 (seed 0) of the lower case of ASCII tokens ``data[start:start+length]``.

    Bytes are [A-Za-z0-9], which ``| 0x20`` lower-cases. A compiled loop: for a
    single article the numpy version (tokens grouped by length, a dozen calls
    per group) cost 25x as much, and in bulk it was no faster.
    """
    as_array = np.ascontiguousarray
    return _xxh32_lower(as_array(data, np.uint8), as_array(starts, np.int64), as_array(lengths, np.int64))


_OFFSETS = numba.types.int64[::1]


@numba.njit(
    [  # texts' bytes may be a read-only buffer
        numba.types.uint32[::1](numba.types.Array(numba.types.uint8, 1, "C", readonly=readonly), _OFFSETS, _OFFSETS)
        for readonly in (False, True)
    ],
    cache=True,
    nogil=True,
    boundscheck=False,
)
def _xxh32_lower(
    data: npt.NDArray[np.uint8], starts: npt.NDArray[np.int64], lengths: npt.NDArray[np.int64]
) -> npt.NDArray[np.uint32]:
    """``xxh32_ascii_tokens``. 32-bit words live in 64-bit integers, masked: numba widens unsigned arithmetic."""
    out = np.empty(starts.size, dtype=np.uint32)
    for k in range(starts.size):
        i = starts[k]
        end = i + lengths[k]
        if lengths[k] >= 16:
            v1, v2, v3, v4 = _LANE1, _P2, np.uint64(0), _LANE4
            while i + 16 <= end:
                v1 = (_rotl((v1 + _lower32(data, i) * _P2) & _M32, 13) * _P1) & _M32
                v2 = (_rotl((v2 + _lower32(data, i + 4) * _P2) & _M32, 13) * _P1) & _M32
                v3 = (_rotl((v3 + _lower32(data, i + 8) * _P2) & _M32, 13) * _P1) & _M32
                v4 = (_rotl((v4 + _lower32(data, i + 12) * _P2) & _M32, 13) * _P1) & _M32
                i += 16
            h = (_rotl(v1, 1) + _rotl(v2, 7) + _rotl(v3, 12) + _rotl(v4, 18)) & _M32
        else:
            h = _P5
        h = (h + np.uint64(lengths[k])) & _M32
        while i + 4 <= end:
            h = (_rotl((h + _lower32(data, i) * _P3) & _M32, 17) * _P4) & _M32
            i += 4
        while i < end:
            h = (_rotl((h + (np.uint64(data[i]) | _LOWER) * _P5) & _M32, 11) * _P1) & _M32
            i += 1
        h ^= h >> np.uint64(15)
        h = (h * _P2) & _M32
        h ^= h >> np.uint64(13)
        h = (h * _P3) & _M32
        h ^= h >> np.uint64(16)
        out[k] = h
    return out


def xxh32_ascii_lookalike(
    data: npt.NDArray[np.uint8],
    starts: npt.NDArray[np.int64],
    lengths: npt.NDArray[np.int64],
    classes: npt.NDArray[np.uint8],
) -> npt.NDArray[np.uint32]:
    """``xxh32_ascii_tokens`` of the tokens' look-alike classes: lower-cased, "rn" read as "m", then each
    byte through the table `classes` (``text.normalize.lookalike`` of ASCII tokens)."""
    as_array = np.ascontiguousarray
    folded, fstarts, flengths = _fold_lookalike(
        as_array(data, np.uint8), as_array(starts, np.int64), as_array(lengths, np.int64), classes
    )
    return _xxh32_lower(folded, fstarts, flengths)


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _fold_lookalike(
    data: npt.NDArray[np.uint8],
    starts: npt.NDArray[np.int64],
    lengths: npt.NDArray[np.int64],
    classes: npt.NDArray[np.uint8],
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """The tokens' look-alike bytes end to end (never longer than the tokens), and their new starts and lengths."""
    out = np.empty(max(1, int(lengths.sum())), dtype=np.uint8)
    new_starts = np.empty(starts.size, dtype=np.int64)
    new_lengths = np.empty(starts.size, dtype=np.int64)
    o = 0
    for k in range(starts.size):
        i = starts[k]
        end = i + lengths[k]
        new_starts[k] = o
        while i < end:
            b = data[i] | np.uint8(0x20)
            if b == np.uint8(114) and i + 1 < end and (data[i + 1] | np.uint8(0x20)) == np.uint8(110):  # "rn"
                out[o] = np.uint8(109)  # "m"
                i += 2
            else:
                out[o] = classes[b]
                i += 1
            o += 1
        new_lengths[k] = o - new_starts[k]
    return out, new_starts, new_lengths


@numba.njit(cache=True, nogil=True, boundscheck=False)
def letters_with_lookalike_digits(
    data: npt.NDArray[np.uint8], starts: npt.NDArray[np.int64], lengths: npt.NDArray[np.int64]
) -> npt.NDArray[np.bool_]:
    """Which ASCII tokens mix letters with 0, 1, 5 or 8: how a scan misreads o, l, s and b ("missi1e",
    "0f"), and rare in print otherwise."""
    out = np.zeros(starts.size, dtype=np.bool_)
    for k in range(starts.size):
        letter = False
        digit = False
        for i in range(starts[k], starts[k] + lengths[k]):
            c = data[i] | np.uint8(0x20)
            if np.uint8(97) <= c <= np.uint8(122):
                letter = True
            elif c == np.uint8(48) or c == np.uint8(49) or c == np.uint8(53) or c == np.uint8(56):
                digit = True
        out[k] = letter and digit
    return out
