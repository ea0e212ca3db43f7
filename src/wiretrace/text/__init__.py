"""Text pipeline, step 1: find the words of an article and where they are.

Everything downstream (shingles, signatures, passages) works on the tokens this
package returns, so it decides what counts as "the same text". By job:

* ``normalize``: the token pattern, folding (case, width, accents, Arabic-script
  letter variants, joiners) and a token's xxh32 hash;
* ``boilerplate``: which lines are not story prose (datelines, bylines,
  captions, credits, chrome), defined line by line (``content_spans``);
* ``batch``: the same tokens and mask for many texts in a few numpy passes,
  what indexing and archive de-duplication run;
* ``xxh32``: the compiled hash kernel of ASCII tokens the batch path uses.

Tokens keep their character offsets in the original text so that matched
passages can be reported in the caller's coordinates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from wiretrace.text.batch import (
    ascii_tokens,
    bounds,
    hash_tokens,
    lookalike_digit_words,
    scan,
    spelling_variants,
    warm_up,
)
from wiretrace.text.boilerplate import content_spans
from wiretrace.text.normalize import fold_shorthand, normalize_token, token_hash
from wiretrace.types import I64, U32

__all__ = [
    "Tokens",
    "comparison_hashes",
    "content_spans",
    "normalize_token",
    "token_hash",
    "token_hashes",
    "token_hashes_batch",
    "token_spans_many",
    "tokenize",
    "tokenize_many",
    "warm_up",
]


@dataclass(frozen=True, slots=True)
class Tokens:
    """The comparable words of a text: 32-bit hashes and character offsets."""

    hashes: npt.NDArray[np.uint32]
    starts: npt.NDArray[np.int64]
    ends: npt.NDArray[np.int64]

    def __len__(self) -> int:
        return int(self.hashes.shape[0])


def tokenize(text: str, *, strip_boilerplate: bool = True) -> Tokens:
    """Tokens of the prose of `text` (boilerplate masked unless told otherwise)."""
    hashes, starts, ends, _ = scan([text], strip_boilerplate)
    return Tokens(hashes=hashes, starts=starts, ends=ends)


def tokenize_many(texts: list[str]) -> list[Tokens]:
    """``tokenize`` of each text, in one batched pass (character offsets are each text's own)."""
    if not texts:
        return []
    hashes, starts, ends, offsets = scan(texts, True)
    return [
        Tokens(hashes=hashes[lo:hi], starts=a, ends=b)
        for (a, b), lo, hi in zip(_split_spans(texts, starts, ends, offsets), offsets[:-1], offsets[1:], strict=True)
    ]


def token_spans_many(texts: list[str]) -> list[tuple[I64, I64]]:
    """The (starts, ends) of ``tokenize_many``'s tokens without their hashes, a third cheaper:
    what turns token positions back into character offsets."""
    if not texts:
        return []
    _, starts, ends, offsets = bounds(texts, True, None)
    return _split_spans(texts, starts, ends, offsets)


def _split_spans(texts: list[str], starts: I64, ends: I64, offsets: I64) -> list[tuple[I64, I64]]:
    """Offsets in the texts joined with "\n" -> each text's own (starts, ends)."""
    bases = np.cumsum([0] + [len(t) + 1 for t in texts[:-1]])
    bounds = offsets.tolist()
    return [
        (starts[lo:hi] - base, ends[lo:hi] - base)
        for lo, hi, base in zip(bounds[:-1], bounds[1:], bases.tolist(), strict=True)
    ]


def token_hashes(text: str) -> U32:
    """Only the hashes of `tokenize(text).hashes`."""
    return scan([text], True)[0]


def token_hashes_batch(texts: list[str], *, lookalikes: bool = False, shorthand: bool = False) -> tuple[U32, I64]:
    """`token_hashes` of many texts at once: (all hashes concatenated, per-text offsets).

    Equal to ``np.concatenate([token_hashes(t) for t in texts])`` with offsets
    ``[0, len_0, len_0 + len_1, ...]``; what indexing and archive de-duplication
    call, as per-text work dominated them. ``lookalikes`` and ``shorthand``: the
    comparison form de-duplication uses (OCR look-alike classes, wire shorthand; see ``scan``).
    """
    hashes, _, _, offsets = scan(texts, True, lookalikes=lookalikes, shorthand=shorthand)
    return hashes, offsets


def comparison_hashes(texts: list[str], *, lookalikes: bool, shorthand: bool) -> tuple[U32, I64, I64]:
    """`token_hashes_batch` in a comparison form, with how altered each text looks in it (0 without folding).

    Texts alike in comparison form may still differ as written. A scanned copy misreads a word in
    some places and not in others ("the", "tbe", "thc") and runs letters into digits ("missi1e",
    "0f"); an edited one spells out the wire's "pct" and "mln". The measure is a text's *spelling
    variants* (how many more distinct words it has as written than in comparison form), plus its
    spelt-out shorthand (with ``shorthand``) and its words mixing letters with 0, 1, 5 or 8 (with
    ``lookalikes``): de-duplication shows the least altered of copies alike in comparison form.
    """
    j, starts, ends, offsets = bounds(texts, True, None)
    n = len(texts)
    if j is None:
        return np.empty(0, np.uint32), offsets, np.zeros(n, dtype=np.int64)
    plain = ascii_tokens(j, starts, ends)  # found once for the up to three passes below
    hashes = hash_tokens(j, starts, ends, lookalikes, False, plain)
    if not (lookalikes or shorthand):
        return hashes, offsets, np.zeros(n, dtype=np.int64)
    written = hash_tokens(j, starts, ends, False, False, plain) if lookalikes else hashes
    text = np.repeat(np.arange(n), np.diff(offsets))
    altered = np.zeros(n, dtype=np.int64)
    if shorthand:  # spelt-out shorthand: an outlet's change to the wire's text
        folded = fold_shorthand(hashes, lookalikes)
        altered += np.bincount(text[folded != hashes], minlength=n)
        hashes = folded
    altered += spelling_variants(hashes, written, offsets)
    if lookalikes:  # ASCII words mixing letters and digits
        altered += np.bincount(text[lookalike_digit_words(j, starts, ends, plain)], minlength=n)
    return hashes, offsets, altered
