"""Text pipeline, step 1: find the words of an article and where they are.

Everything downstream (shingles, signatures, passages) works on the tokens this
module returns, so it decides what counts as "the same text":

* Unicode-aware: letters, combining marks and digits of every script are kept
  (Urdu and Hindi words keep their vowel signs, Han/Kana characters are one
  token each because those scripts do not separate words with spaces).
* Case, width, curly-vs-straight quotes, Latin accents, Arabic diacritics,
  tatweel and joiners are folded away: outlets change them freely.
* Wire and web boilerplate (datelines, bylines, photo captions and credits,
  "Reporting by ..." lines, share/subscribe chrome) is masked before
  tokenising, so it can neither create a match nor hide one.

Tokens keep their character offsets in the original text so that matched
passages can be reported in the caller's coordinates.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import regex
import xxhash

# A word is a run of letters, marks, digits and (zero-width) joiners, except in
# scripts written without spaces, where each character stands alone.
_NO_SPACE_SCRIPTS = r"\p{Han}\p{Hiragana}\p{Katakana}"
_TOKEN_RE = regex.compile(rf"(?V1)[{_NO_SPACE_SCRIPTS}]|[[\p{{L}}\p{{M}}\p{{N}}\u200c\u200d]--[{_NO_SPACE_SCRIPTS}]]+")

_ASCII_TOKEN_RE = re.compile(r"[A-Za-z0-9]+")

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


# --- boilerplate -----------------------------------------------------------

_AGENCIES = r"(?:reuters?|ap|afp|pa|ani|pti|upi|dpa|xinhua|app|apa|efe|ansa|bloomberg)"

# Whole lines that are chrome or credits, never story text. Each must be
# specific enough that it cannot swallow a sentence of news copy.
_CHROME_LINE_START = [
    # photo captions
    r"(?:photo|image|picture|file photo|video|graphic)s?\s*[:|]",
    # bylines and credits
    r"by\s+(?-i:\p{Lu})[\p{L}.'-]+(?:\s+(?-i:\p{Lu})[\p{L}.'-]+){0,3}"
    r"(?:\s*(?:,|and|&)\s*(?-i:\p{Lu})[\p{L}.'-]+(?:\s+(?-i:\p{Lu})[\p{L}.'-]+){0,3})*\s*$",
    r"(?:additional\s+)?(?:reporting|writing|editing|compiled|produced)\s+by\b",
    # share / subscribe / comment chrome
    r"(?:subscribe|sign up|share (?:this|on)|follow us|leave a (?:reply|comment)|see also\b"
    r"|discover more|click here|read more|related\s*:|advertisement|sponsored|all rights reserved"
    r"|copyright|©|\(c\)\s*\d{4}|your email address|required fields are marked|download (?:our|the) app"
    r"|sign in|log in|newsletter|skip to|jump to|back to top|watch:|listen to this)",
    # lines that are only a label ("Summary", "Advertisement", "logo")
    r"(?:summary|logo|advertisement|highlights|key points|menu|home|share|tweet|comments?)\s*[:.]?\s*$",
]
_CHROME_LINE_ANYWHERE = [
    r"\b(?:REUTERS|AFP|AP|Getty Images|Anadolu)\s*/\s*\p{Lu}\p{L}+",  # photo credit
    r";\s*(?:editing|writing)\s+by\s",  # "...; Editing by"
]
# A line is chrome if it starts like chrome, or carries a credit anywhere: two
# passes per line (one anchored) instead of one search per pattern.
_CHROME_START_RE = regex.compile(r"\s*(?:" + "|".join(_CHROME_LINE_START) + ")", regex.IGNORECASE)
_CHROME_ANYWHERE_RE = regex.compile("|".join(_CHROME_LINE_ANYWHERE), regex.IGNORECASE)

# A dateline opening a paragraph: "BEIRUT (Reuters) -", "BEIRUT/AMMAN, Dec 6 (Reuters) –",
# "LONDON, March 3 -", "BEIRUT –". It is removed, the sentence after it kept.
_DATELINE_RE = regex.compile(
    r"^\s*(?:\p{Lu}[\p{Lu}\p{M} .'/-]{1,40}?)(?:\s*,\s*[\p{L}.]+\s+\d{1,2})?"
    rf"\s*(?:\((?i:{_AGENCIES})\)\s*)?(?:[-–—:]|\((?i:{_AGENCIES})\)\s*:)\s+"
)
_DATELINE_MARKS = "-–—:"
# A trailing agency sign-off: "... last year. REUTER", "Reuters".
_SIGNOFF_RE = regex.compile(r"(?i)(?:^|\s)reuters?\s*(?:\.{3}|…)?\s*$")


def content_spans(text: str) -> list[tuple[int, int]]:
    """Character ranges of `text` that are story prose, in order.

    Each regex runs only on lines where it could match (a dateline starts with a
    capital and has a dash or colon; a sign-off and a credit need their words),
    because this runs on every story indexed.
    """
    spans: list[tuple[int, int]] = []
    credits = ("/" in text or ";" in text) and _CHROME_ANYWHERE_RE.search(text) is not None
    signoffs = "reuter" in text.lower()
    pos = 0
    for line in text.splitlines(keepends=True):
        start, end = pos, pos + len(line)
        pos = end
        stripped = line.strip()
        if not stripped:
            continue
        if _CHROME_START_RE.match(line) or (credits and _CHROME_ANYWHERE_RE.search(line)):
            continue
        if stripped[0].isupper() and any(c in line for c in _DATELINE_MARKS):
            m = _DATELINE_RE.match(line)
            if m and m.end() < len(line.rstrip()):
                start += m.end()
        if signoffs:
            s = _SIGNOFF_RE.search(text, start, end)
            if s:
                end = s.start()
        if end > start:
            spans.append((start, end))
    return spans


# --- tokens ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Tokens:
    """The comparable words of a text: 32-bit hashes and character offsets."""

    hashes: npt.NDArray[np.uint32]
    starts: npt.NDArray[np.int64]
    ends: npt.NDArray[np.int64]

    def __len__(self) -> int:
        return int(self.hashes.shape[0])


_HASH_CACHE: dict[str, int] = {}
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


def _hash_all(raws: list[str]) -> npt.NDArray[np.uint32]:
    get = _HASH_CACHE.get
    return np.fromiter(
        (h if (h := get(r)) is not None else token_hash(r) for r in raws), dtype=np.uint32, count=len(raws)
    )


def _pattern(text: str) -> re.Pattern[str] | regex.Pattern[str]:
    # On ASCII text the Unicode token class is exactly [A-Za-z0-9]+, and the
    # standard library's engine runs it several times faster.
    return _ASCII_TOKEN_RE if text.isascii() else _TOKEN_RE


def tokenize(text: str, *, strip_boilerplate: bool = True) -> Tokens:
    """Tokens of the prose of `text` (boilerplate masked unless told otherwise)."""
    spans = content_spans(text) if strip_boilerplate else [(0, len(text))]
    pattern = _pattern(text)
    matches = [m for s, e in spans for m in pattern.finditer(text, s, e)]
    n = len(matches)
    return Tokens(
        hashes=_hash_all([m.group() for m in matches]),
        starts=np.fromiter((m.start() for m in matches), dtype=np.int64, count=n),
        ends=np.fromiter((m.end() for m in matches), dtype=np.int64, count=n),
    )


def token_hashes(text: str) -> npt.NDArray[np.uint32]:
    """Only the hashes of `tokenize(text).hashes`, faster (what indexing needs)."""
    pattern = _pattern(text)
    return _hash_all([t for s, e in content_spans(text) for t in pattern.findall(text, s, e)])


# --- batch hashing (archive de-duplication) --------------------------------

_P1, _P2, _P3, _P4, _P5 = (np.uint32(p) for p in (0x9E3779B1, 0x85EBCA77, 0xC2B2AE3D, 0x27D4EB2F, 0x165667B1))
_WORD_BYTE = np.zeros(256, dtype=bool)
for _c in b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789":
    _WORD_BYTE[_c] = True
_LOWER_BYTE = np.arange(256, dtype=np.uint8)
_LOWER_BYTE[ord("A") : ord("Z") + 1] += 32
_SHORT = 16  # xxh32 of inputs shorter than this skips the 4-lane stripe loop


def _rotl(h: npt.NDArray[np.uint32], r: int) -> npt.NDArray[np.uint32]:
    return (h << np.uint32(r)) | (h >> np.uint32(32 - r))


def _xxh32_short(
    data: npt.NDArray[np.uint8], starts: npt.NDArray[np.int64], lengths: npt.NDArray[np.int64]
) -> npt.NDArray[np.uint32]:
    """xxh32 (seed 0) of the byte strings data[start:start+length], all shorter than 16 bytes, vectorised."""
    n = int(starts.size)
    cols = np.arange(_SHORT, dtype=np.int64)
    padded = np.concatenate((data, np.zeros(_SHORT, dtype=np.uint8)))
    grid = padded[starts[:, None] + cols[None, :]]
    grid[cols[None, :] >= lengths[:, None]] = 0
    words: npt.NDArray[np.uint32] = np.ascontiguousarray(grid).view("<u4")  # (n, 4) little-endian lanes
    h: npt.NDArray[np.uint32] = _P5 + lengths.astype(np.uint32)
    for c in range(3):
        step = _rotl(h + words[:, c] * _P3, 17) * _P4
        h = np.where(lengths >= 4 * (c + 1), step, h)
    tail = (lengths // 4) * 4
    rows = np.arange(n)
    for r in range(3):
        byte = grid[rows, np.minimum(tail + r, _SHORT - 1)].astype(np.uint32)
        step = _rotl(h + byte * _P5, 11) * _P1
        h = np.where(r < lengths - tail, step, h)
    h ^= h >> np.uint32(15)
    h *= _P2
    h ^= h >> np.uint32(13)
    h *= _P3
    h ^= h >> np.uint32(16)
    return h


def token_hashes_batch(texts: list[str]) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.int64]]:
    """`token_hashes` of many texts at once: (all hashes concatenated, per-text offsets).

    Equal to ``np.concatenate([token_hashes(t) for t in texts])`` with offsets
    ``[0, len_0, len_0 + len_1, ...]``; exists because archive de-duplication
    prints millions of texts and per-token Python work dominated. ASCII texts
    (boilerplate still masked by ``content_spans``) are tokenised and xxh32-hashed
    with numpy in one pass per batch; other texts take ``token_hashes``.
    """
    n = len(texts)
    ascii_parts: list[str] = []
    ascii_docs: list[int] = []
    other: dict[int, npt.NDArray[np.uint32]] = {}
    for i, text in enumerate(texts):
        if text.isascii():
            # "\n" is no word character: tokens cannot run across spans or texts.
            ascii_parts.append("\n".join([text[s:e] for s, e in content_spans(text)]))
            ascii_docs.append(i)
        else:
            other[i] = token_hashes(text)
    counts = np.zeros(n, dtype=np.int64)
    ascii_hashes = np.empty(0, dtype=np.uint32)
    if ascii_parts:
        joined = np.frombuffer("\n".join(ascii_parts).encode("ascii"), dtype=np.uint8)
        is_word = _WORD_BYTE[joined]
        edges = np.flatnonzero(np.diff(np.concatenate(([False], is_word, [False])).view(np.int8)))
        t_starts, t_ends = edges[0::2].astype(np.int64), edges[1::2].astype(np.int64)
        lengths = t_ends - t_starts
        lowered = _LOWER_BYTE[joined]
        ascii_hashes = np.empty(t_starts.size, dtype=np.uint32)
        short = lengths < _SHORT
        ascii_hashes[short] = _xxh32_short(lowered, t_starts[short], lengths[short])
        for j in np.flatnonzero(~short).tolist():
            ascii_hashes[j] = xxhash.xxh32_intdigest(lowered[t_starts[j] : t_ends[j]].tobytes())
        part_starts = np.zeros(len(ascii_parts), dtype=np.int64)
        np.cumsum([len(p) + 1 for p in ascii_parts[:-1]], out=part_starts[1:])
        owner = np.searchsorted(part_starts, t_starts, side="right") - 1
        counts[ascii_docs] = np.bincount(owner, minlength=len(ascii_parts))
    for i, h in other.items():
        counts[i] = h.size
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    if not other:
        return ascii_hashes, offsets
    out = np.empty(int(offsets[-1]), dtype=np.uint32)
    is_ascii = np.zeros(n, dtype=bool)
    is_ascii[ascii_docs] = True
    ascii_rows = np.repeat(is_ascii, counts)
    out[ascii_rows] = ascii_hashes
    for i, h in other.items():
        out[offsets[i] : offsets[i + 1]] = h
    return out, offsets
