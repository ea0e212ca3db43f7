"""What counts as the same word: the token pattern, folding, and a token's 32-bit hash.

Unicode-aware: letters, combining marks and digits of every script are kept
(Urdu and Hindi words keep their vowel signs, Han/Kana characters are one
token each because those scripts do not separate words with spaces). Case,
width, curly-vs-straight quotes, Latin accents, Arabic diacritics, tatweel and
joiners are folded away: outlets change them freely.
"""

from __future__ import annotations

import functools
import unicodedata

import numpy as np
import regex
import xxhash

from wiretrace.types import I64, U32

# A word is a run of letters, marks, digits and (zero-width) joiners, except in
# scripts written without spaces, where each character stands alone.
# A word is a run of letters, marks, digits and (zero-width) joiners, except in
# scripts written without spaces, where each character stands alone.
NO_SPACE_SCRIPTS = r"\p{Han}\p{Hiragana}\p{Katakana}"
TOKEN_RE = regex.compile(rf"(?V1)[{NO_SPACE_SCRIPTS}]|[[\p{{L}}\p{{M}}\p{{N}}\u200c\u200d]--[{NO_SPACE_SCRIPTS}]]+")
# One character of a word run (outside the no-space scripts).
WORD_RUN_RE = regex.compile(rf"(?V1)[[\p{{L}}\p{{M}}\p{{N}}\u200c\u200d]--[{NO_SPACE_SCRIPTS}]]")

# Folding applied after NFKC + casefold. Arabic-script letter variants are
# unified because Urdu, Persian and Arabic keyboards produce different code
# points for the same letter.
_FOLD = str.maketrans(
    {
        "\u200c": None,  # zero-width non-joiner
        "\u200d": None,  # zero-width joiner
        "\u0640": None,  # tatweel (kashida)
        "\u064a": "\u06cc",  # Arabic yeh -> Farsi yeh
        "\u0649": "\u06cc",  # alef maksura -> Farsi yeh
        "\u0643": "\u06a9",  # Arabic kaf -> keheh
    }
)


def _is_foldable_mark(ch: str) -> bool:
    """Latin/Greek/Cyrillic accents and Arabic harakat are optional in practice."""
    cp = ord(ch)
    return 0x0300 <= cp <= 0x036F or 0x064B <= cp <= 0x065F or cp == 0x0670


def normalize_token(token: str) -> str:
    """Fold one raw token to its comparison form."""
    if token.isascii():
        return token.lower()
    folded = unicodedata.normalize("NFKC", token).casefold().translate(_FOLD)
    decomposed = unicodedata.normalize("NFD", folded)
    if any(_is_foldable_mark(c) for c in decomposed):
        decomposed = "".join(c for c in decomposed if not _is_foldable_mark(c))
        return unicodedata.normalize("NFC", decomposed) or folded
    return folded


_HASH_CACHE: dict[str, int] = {}
_LOOKALIKE_CACHE: dict[str, int] = {}
_HASH_CACHE_LIMIT = 2_000_000


def token_hash(raw: str) -> int:
    """xxh32 of the normalised token; cached because news vocabulary repeats."""
    h = _HASH_CACHE.get(raw)
    if h is None:
        if len(_HASH_CACHE) >= _HASH_CACHE_LIMIT:
            _HASH_CACHE.clear()
        h = xxhash.xxh32_intdigest(normalize_token(raw).encode("utf-8", "surrogatepass"))
        _HASH_CACHE[raw] = h
    return h


# OCR look-alikes (``lookalike``): letters a scan misreads for each other collapse into one class, so a
# misread word keeps its hash. c/e, i/l/1, a/o/0, h/b/8 and s/5 are single characters; "rn" reads as
# "m". Only ASCII letters and digits are mapped (the ASCII kernel, ``xxh32.xxh32_ascii_lookalike``,
# applies the same table).
LOOKALIKE_CLASSES = {"c": "e", "i": "l", "1": "l", "a": "o", "0": "o", "h": "b", "8": "b", "5": "s"}
_LOOKALIKE = str.maketrans(LOOKALIKE_CLASSES)


def lookalike(folded: str) -> str:
    """A folded token's look-alike class: "rn" -> "m", then each look-alike letter to its class."""
    return folded.replace("rn", "m").translate(_LOOKALIKE)


def cached_hashes(joined: str, starts: I64, ends: I64, lookalikes: bool = False) -> U32:
    """``token_hash`` (or ``lookalike_hash``) of each ``joined[start:end]``, with the loops in C while every
    token is cached."""
    raws = list(map(joined.__getitem__, map(slice, starts.tolist(), ends.tolist())))
    if lookalikes:
        return np.fromiter(map(lookalike_hash, raws), dtype=np.uint32, count=len(raws))
    try:
        return np.array(list(map(_HASH_CACHE.__getitem__, raws)), dtype=np.uint32)
    except KeyError:
        return np.fromiter(map(token_hash, raws), dtype=np.uint32, count=len(raws))


def lookalike_hash(raw: str) -> int:
    """xxh32 of the look-alike class of the normalised token (``lookalike``); cached like ``token_hash``."""
    h = _LOOKALIKE_CACHE.get(raw)
    if h is None:
        if len(_LOOKALIKE_CACHE) >= _HASH_CACHE_LIMIT:
            _LOOKALIKE_CACHE.clear()
        h = xxhash.xxh32_intdigest(lookalike(normalize_token(raw)).encode("utf-8", "surrogatepass"))
        _LOOKALIKE_CACHE[raw] = h
    return h


# Wire shorthand that outlets spell out ("15 mln dlrs" -> "15 million dollars"): the long form folds to the
# short one when comparing copies, so a table whose every line had "mln" and "vs" expanded still matches.
WIRE_SHORTHAND = {
    "percent": "pct",
    "million": "mln",
    "billion": "bln",
    "versus": "vs",
    "dollars": "dlrs",
    "cents": "cts",
}


@functools.cache
def _shorthand_table(lookalikes: bool) -> tuple[tuple[int, int], ...]:
    """(hash of the long form, hash of the short form) of each ``WIRE_SHORTHAND`` entry."""
    hash_of = lookalike_hash if lookalikes else token_hash
    return tuple((hash_of(long), hash_of(short)) for long, short in WIRE_SHORTHAND.items())


def fold_shorthand(hashes: U32, lookalikes: bool) -> U32:
    """`hashes` with every long form of ``WIRE_SHORTHAND`` replaced by its short form's hash (a few
    equality passes: cheaper than a binary search per token)."""
    out = hashes
    for long, short in _shorthand_table(lookalikes):
        hit = hashes == np.uint32(long)
        if hit.any():
            if out is hashes:
                out = hashes.copy()
            out[hit] = short
    return out
