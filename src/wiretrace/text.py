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

import functools
import unicodedata
from dataclasses import dataclass

import numba
import numpy as np
import numpy.typing as npt
import regex
import xxhash

# A word is a run of letters, marks, digits and (zero-width) joiners, except in
# scripts written without spaces, where each character stands alone.
_NO_SPACE_SCRIPTS = r"\p{Han}\p{Hiragana}\p{Katakana}"
_TOKEN_RE = regex.compile(rf"(?V1)[{_NO_SPACE_SCRIPTS}]|[[\p{{L}}\p{{M}}\p{{N}}\u200c\u200d]--[{_NO_SPACE_SCRIPTS}]]+")

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

    The straightforward definition, line by line; batches of texts take
    ``_content_ranges``, which runs the same ``_line_span`` on the lines that
    could need it, and single articles ``_prose_spans``.
    """
    return _prose_spans(text, pretest=False)


def _prose_spans(text: str, pretest: bool) -> list[tuple[int, int]]:
    """``content_spans``; with `pretest`, the batch path's cheap necessary conditions go first: for
    the credit search over the whole text (~45 µs for an article, in most of them a "/" or ";"),
    ``_may_credit``; for the chrome regex on each line, its first two characters; for the
    sign-off regex on each line, the word itself."""
    spans: list[tuple[int, int]] = []
    credits = (
        ("/" in text or ";" in text)
        and (not pretest or _may_credit(text))
        and _CHROME_ANYWHERE_RE.search(text) is not None
    )
    signoffs = "reuter" in text.lower()
    chrome, signed = True, signoffs
    pos = 0
    for line in text.splitlines(keepends=True):
        if pretest:
            # IGNORECASE pairs an ASCII letter only with its other case or a non-ASCII letter, so a
            # line opening with two ASCII characters, not spaces, that start no opening is not chrome.
            head = line[:2].lower()
            chrome = not head.isascii() or head[:1].isspace() or head in _OPEN_PAIRS or head[:1] in _OPEN_SINGLES
            signed = signoffs and "reuter" in line.lower()
        span = _line_span(text, pos, pos + len(line), credits, signed, chrome)
        pos += len(line)
        if span is not None:
            spans.append(span)
    return spans


def _line_span(
    text: str, start: int, end: int, credits: bool, signoffs: bool, chrome: bool = True
) -> tuple[int, int] | None:
    """The prose of the line ``text[start:end]``, or None if it is blank or chrome.

    Each regex runs only where it could match (a dateline starts with a capital
    and has a dash or colon; ``chrome=False`` says the line cannot open like
    chrome), because this runs on every story indexed.
    """
    line = text[start:end]
    stripped = line.strip()
    if not stripped:
        return None
    if (chrome and _CHROME_START_RE.match(line)) or (credits and _CHROME_ANYWHERE_RE.search(line)):
        return None
    if stripped[0].isupper() and ("-" in line or ":" in line or "–" in line or "—" in line):  # _DATELINE_MARKS
        m = _DATELINE_RE.match(line)
        if m and m.end() < len(line.rstrip()):
            start += m.end()
    if signoffs:
        s = _SIGNOFF_RE.search(text, start, end)
        if s:
            end = s.start()
    return (start, end) if end > start else None


# --- tokens ----------------------------------------------------------------

U32 = npt.NDArray[np.uint32]
I64 = npt.NDArray[np.int64]


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


def tokenize(text: str, *, strip_boilerplate: bool = True) -> Tokens:
    """Tokens of the prose of `text` (boilerplate masked unless told otherwise)."""
    hashes, starts, ends, _ = _scan([text], strip_boilerplate)
    return Tokens(hashes=hashes, starts=starts, ends=ends)


def tokenize_many(texts: list[str]) -> list[Tokens]:
    """``tokenize`` of each text, in one batched pass (character offsets are each text's own)."""
    if not texts:
        return []
    hashes, starts, ends, offsets = _scan(texts, True)
    return [
        Tokens(hashes=hashes[lo:hi], starts=a, ends=b)
        for (a, b), lo, hi in zip(_split_spans(texts, starts, ends, offsets), offsets[:-1], offsets[1:], strict=True)
    ]


def token_spans_many(texts: list[str]) -> list[tuple[I64, I64]]:
    """The (starts, ends) of ``tokenize_many``'s tokens without their hashes, a third cheaper:
    what turns token positions back into character offsets."""
    if not texts:
        return []
    _, starts, ends, offsets = _bounds(texts, True, None)
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
    return _scan([text], True)[0]


def token_hashes_batch(texts: list[str]) -> tuple[U32, I64]:
    """`token_hashes` of many texts at once: (all hashes concatenated, per-text offsets).

    Equal to ``np.concatenate([token_hashes(t) for t in texts])`` with offsets
    ``[0, len_0, len_0 + len_1, ...]``; what indexing and archive de-duplication
    call, as per-text work dominated them.
    """
    hashes, _, _, offsets = _scan(texts, True)
    return hashes, offsets


# --- batch scanning ----------------------------------------------------------
#
# Indexing tokenises every story, so the work is done for a whole batch of
# texts at once with numpy: the texts are joined with "\n" (never part of a
# token or a line), every code point is classified through a lookup table, and
# tokens are the runs the classes delimit. Boilerplate is masked per line; the
# lines that could be boilerplate are picked out with vectorised tests that
# are necessary conditions of the regexes above, and only those lines go
# through ``content_spans``'s own per-line logic. A text with an unusual line
# break (or \x1f, which str.strip and the regexes' \s disagree on) goes through
# ``content_spans`` whole. ``tests/test_text_batch.py`` checks all of this
# against the straightforward definitions.

_WORD = 1  # letter, mark, digit or joiner outside the no-space scripts: runs of these are tokens
_SINGLE = 2  # a Han/Hiragana/Katakana character: a token by itself
_SPACE = 4  # str.isspace
_ODD = 8  # a line break other than "\n", or a space that the regexes' \s does not match
_ANY_SPACE = 16  # a character the regexes' \s matches


def _class_table(limit: int) -> npt.NDArray[np.uint8]:
    """Class bits of code points 0..limit-1, derived from the very regexes and str methods they stand for."""
    chars = np.arange(limit, dtype="<u4").tobytes().decode("utf-32-le", "surrogatepass")
    table = np.zeros(limit, dtype=np.uint8)
    for m in _TOKEN_RE.finditer(chars):
        table[m.start() : m.end()] |= _WORD if m.end() - m.start() > 1 or _WORD_RUN_RE.match(m.group()) else _SINGLE
    table[np.frombuffer(bytes(map(str.isspace, chars)), dtype=np.bool_)] |= _SPACE
    for m in regex.finditer(r"\s+", chars):
        table[m.start() : m.end()] |= _ANY_SPACE
    pos = 0
    for line in chars.splitlines(keepends=True):
        pos += len(line)
        if line[-1] != "\n":
            table[pos - 1] |= _ODD
    disagree = ((table & _SPACE) > 0) != ((table & _ANY_SPACE) > 0)
    table[disagree] |= _ODD
    return table


_WORD_RUN_RE = regex.compile(rf"(?V1)[[\p{{L}}\p{{M}}\p{{N}}\u200c\u200d]--[{_NO_SPACE_SCRIPTS}]]")
_ASCII_CLASSES = _class_table(256)[:128]
_ASCII_WORD = (_ASCII_CLASSES & _WORD) > 0


def _ascii_word(cp: npt.NDArray[np.uint8]) -> npt.NDArray[np.bool_]:
    """``_ASCII_WORD[cp]``, i.e. [0-9A-Za-z], by byte arithmetic: a table lookup converts the
    indices to intp first and costs 8x as much (``tests/test_text_batch.py`` checks they agree)."""
    low = cp | np.uint8(0x20)  # A-Z -> a-z
    low -= np.uint8(ord("a"))
    word: npt.NDArray[np.bool_] = low < np.uint8(26)
    digit = cp - np.uint8(ord("0"))
    word |= digit < np.uint8(10)
    return word


_ASCII_ODD = tuple(chr(c) for c in np.flatnonzero(_ASCII_CLASSES & _ODD).tolist())


def warm_up() -> None:
    """Build what tokenizing otherwise builds on first use (the Unicode class table: ~0.3 s), so that a
    server's first article with a non-ASCII character does not wait for it."""
    _unicode_classes()


@functools.cache
def _unicode_classes() -> npt.NDArray[np.uint8]:
    """All of Unicode; built on first use (about a second), as most batches are ASCII."""
    return _class_table(0x110000)


_IS_AZ = np.zeros(256, dtype=bool)
_IS_AZ[ord("A") : ord("Z") + 1] = True
_UPPER_ASCII = _IS_AZ.copy()
_UPPER_ASCII[128:] = True  # not ASCII: let the exact test decide
_DATELINE_SECOND = _UPPER_ASCII.copy()
for _c in " .'/-":
    _DATELINE_SECOND[ord(_c)] = True


# How every alternative of _CHROME_START_RE begins (its literal text, lower case,
# cut at 8 characters). A line whose first 8 characters after its leading
# spaces are ASCII and begin with none of these cannot match it: IGNORECASE
# only pairs an ASCII letter with its other case or with a non-ASCII letter.
_CHROME_OPENINGS = (
    "photo", "image", "picture", "file pho", "video", "graphic",
    "by",
    "addition", "reportin", "writing", "editing", "compiled", "produced",
    "subscrib", "sign up", "share th", "share on", "follow u", "leave a ", "see also", "discover",
    "click he", "read mor", "related", "advertis", "sponsore", "all righ", "copyrigh", "©", "(c)",
    "your ema", "required", "download", "sign in", "log in", "newslett", "skip to", "jump to",
    "back to ", "watch:", "listen t",
    "summary", "logo", "advertis", "highligh", "key poin", "menu", "home", "share", "tweet", "comment",
)  # fmt: skip


def _opening_codes() -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint64]]:
    """(mask, value) per ASCII opening as little-endian integers (non-ASCII openings are caught anyway)."""
    ascii_openings = sorted({o for o in _CHROME_OPENINGS if o.isascii()})
    masks = [(1 << (8 * len(o))) - 1 for o in ascii_openings]
    values = [int.from_bytes(o.encode("ascii"), "little") for o in ascii_openings]
    return np.array(masks, dtype=np.uint64), np.array(values, dtype=np.uint64)


_OPENING_MASKS, _OPENING_VALUES = _opening_codes()


def _opening_pairs() -> npt.NDArray[np.bool_]:
    """Indexed by a line's first two (lower-cased) bytes as a little-endian 16-bit number: True
    if some ASCII opening starts with them (any second byte for a one-character opening)."""
    table = np.zeros(1 << 16, dtype=bool)
    for o in _CHROME_OPENINGS:
        if not o.isascii():
            continue
        if len(o) == 1:
            table[ord(o) :: 256] = True
        else:
            table[ord(o[0]) | ord(o[1]) << 8] = True
    return table


_OPEN2 = _opening_pairs()
_OPEN_PAIRS = frozenset(o[:2] for o in _CHROME_OPENINGS if o.isascii() and len(o) > 1)  # the same, as strings
_OPEN_SINGLES = frozenset(o for o in _CHROME_OPENINGS if o.isascii() and len(o) == 1)


@dataclass(frozen=True, slots=True)
class _Joined:
    """A batch of texts joined with "\n", as code points and the classes tokenising needs."""

    texts: list[str]
    joined: str  # the texts joined with "\n", then padding
    cp: npt.NDArray[np.uint8] | npt.NDArray[np.uint32]  # code points, then _PAD zeros
    word: npt.NDArray[np.bool_]  # _WORD, same length (padding: False)
    single: npt.NDArray[np.bool_] | None  # _SINGLE (None: no such character)
    odd: npt.NDArray[np.int64]  # positions of _ODD characters
    starts: npt.NDArray[np.int64]  # where each text begins
    ends: npt.NDArray[np.int64]
    size: int  # code points without the padding

    @staticmethod
    def of(texts: list[str]) -> _Joined:
        n = len(texts)
        lengths = np.fromiter(map(len, texts), dtype=np.int64, count=n)
        starts = np.zeros(n, dtype=np.int64)
        np.cumsum(lengths[:-1] + 1, out=starts[1:])
        joined = "\n".join([*texts, _PADDING])
        size = len(joined) - len(_PADDING) - 1
        cp: npt.NDArray[np.uint8] | npt.NDArray[np.uint32]
        if joined.isascii():
            cp = np.frombuffer(joined.encode("ascii"), dtype=np.uint8)
            word = _ascii_word(cp)
            single = None
            has_odd = any(c in joined for c in _ASCII_ODD)  # a few memchr passes, faster than one regex
            odd = np.flatnonzero(_ASCII_CLASSES[cp] & _ODD) if has_odd else np.empty(0, dtype=np.int64)
        else:
            # surrogatepass keeps every code unit, paired or lone, as one code point: offsets stay str offsets.
            cp = np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), dtype="<u4")
            cls = _unicode_classes()[cp]
            word = (cls & _WORD) > 0
            single = (cls & _SINGLE) > 0
            odd = np.flatnonzero(cls & _ODD)
        return _Joined(texts, joined, cp, word, single, odd, starts, starts + lengths, size)

    def classes(self, at: npt.NDArray[np.int64]) -> npt.NDArray[np.uint8]:
        """Class bits of the characters at `at`."""
        table = _ASCII_CLASSES if self.cp.dtype == np.uint8 else _unicode_classes()
        return table[self.cp[at]]


_PADDING = "\0" * 16  # after the last text (behind a "\n"): lets fixed-width reads run past the end


def _marks(j: _Joined) -> tuple[I64, I64, I64]:
    """Positions of every "\\n", "/" and ";" of the batch, from one pass over it."""
    body = j.cp[: j.size]
    found = body == 10
    found |= body == ord("/")
    found |= body == ord(";")
    at = np.flatnonzero(found)
    c = body[at]
    return at[c == 10], at[c == ord("/")], at[c == ord(";")]


def _line_bounds(
    j: _Joined, nl: I64 | None = None
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Start, end (after its "\\n") and text of every line, as ``str.splitlines(keepends=True)`` cuts them
    in texts whose only line break is "\\n" (``nl``: where the "\\n" are, if known)."""
    if nl is None:
        nl = np.flatnonzero(j.cp[: j.size] == 10)
    start = np.concatenate((np.zeros(1, dtype=np.int64), nl + 1))
    end = np.concatenate((nl + 1, np.array([j.size], dtype=np.int64)))
    doc = np.searchsorted(j.starts, start, side="right") - 1
    doc_end = j.ends[doc]
    keep = start < doc_end  # drops the separators' own "lines"
    return start[keep], np.minimum(end, doc_end)[keep], doc[keep]


def _line_heads(j: _Joined, start: I64) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint8]]:
    """Per line: its first 8 characters as a little-endian integer of bytes with ASCII letters
    lower-cased (``| 0x20``), non-ASCII ones as ``min(code point, 255)`` (such lines are checked
    anyway), and the same 8 characters as they are, one byte each, (lines, 8)."""
    if j.cp.dtype == np.uint8:
        # One 8-byte read per line; no byte is >= 128, so the upper-case test is bytewise
        # arithmetic without carries: b + 0x3F sets bit 7 from "A" up, b + 0x25 from "[".
        raw = _eight_bytes_at(j.cp, start)
        upper = (raw + _SWAR_A) & ~(raw + _SWAR_Z1) & _SWAR_HIGH
        return raw | (upper >> np.uint64(2)), raw.view(np.uint8).reshape(-1, 8)
    head = np.stack([j.cp[start + k] for k in range(8)], axis=1).astype(np.uint32)
    ascii_head = np.minimum(head, 255).astype(np.uint8)
    letters = _IS_AZ[ascii_head].astype(np.uint8) * np.uint8(0x20)
    code = np.ascontiguousarray(ascii_head | letters).view("<u8").reshape(-1)
    return code, ascii_head


def _may_open_dateline(head: npt.NDArray[np.uint8]) -> npt.NDArray[np.bool_]:
    """False only for lines ``_DATELINE_RE`` cannot match, from their first 8 characters (`head`,
    non-ASCII as 128 and up, which always passes).

    After its capital the regex needs a run of [capitals, marks, space . ' / -], then a ",", "(",
    dash, colon or space (before any "-" of the run, it is all in that run). So a line whose first
    character outside the run is none of those, with no "-" before it, cannot open a dateline:
    "A spokesman", "U.S. officials", "CSR was".
    """
    rest = head[:, 1:]
    outside = ~_DATELINE_RUN[rest]
    first_out = np.argmax(outside, axis=1)
    after = _DATELINE_AFTER[rest[np.arange(rest.shape[0]), first_out]]
    dash = ((rest == ord("-")) & (np.arange(7)[None, :] < first_out[:, None])).any(axis=1)
    maybe: npt.NDArray[np.bool_] = ~outside.any(axis=1) | after | dash
    return maybe


def _dateline_tables() -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    run = np.ones(256, dtype=bool)  # non-ASCII: maybe
    run[:128] = False
    run[ord("A") : ord("Z") + 1] = True
    for c in " .'/-":
        run[ord(c)] = True
    after = np.ones(256, dtype=bool)
    after[:128] = (_ASCII_CLASSES & _ANY_SPACE) > 0  # the regex's \s
    for c in ",(:":
        after[ord(c)] = True
    return run, after


_DATELINE_RUN, _DATELINE_AFTER = _dateline_tables()


def _eight_bytes_at(cp: npt.NDArray[np.uint8] | npt.NDArray[np.uint32], at: I64) -> npt.NDArray[np.uint64]:
    """The 8 bytes ``cp[i:i+8]`` of each ``i`` in `at`, as little-endian integers, for the bytes of an
    ASCII batch (gathered byte by byte: numpy gathers from an unaligned 8-byte view element by
    element, several times slower)."""
    assert cp.dtype == np.uint8
    return np.ascontiguousarray(cp[at[:, None] + _EIGHT[None, :]]).view("<u8").reshape(-1)


_EIGHT = np.arange(8, dtype=np.int64)
_SWAR_A = np.uint64(0x3F3F3F3F3F3F3F3F)
_SWAR_Z1 = np.uint64(0x2525252525252525)
_SWAR_HIGH = np.uint64(0x8080808080808080)
_LOW16 = np.uint64(0xFFFF)


def _content_ranges(j: _Joined) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """``content_spans`` of every text of the batch, in joined coordinates, in order."""
    texts, cp = j.texts, j.cp
    odd_docs = np.zeros(len(texts), dtype=bool)
    if j.odd.size:
        odd_docs[np.searchsorted(j.starts, j.odd, side="right") - 1] = True
    nl, slash, semi = _marks(j)
    start, end, doc = _line_bounds(j, nl)
    regular = ~odd_docs[doc]
    start, end, doc = start[regular], end[regular], doc[regular]
    first = cp[start]
    blank = first == 10  # a line that is just "\n"
    # Leading spaces: the exact code finds the first character (and may find chrome after them).
    chrome = ((j.classes(start) & _SPACE) > 0) & ~blank
    # The first 8 characters, lower case if ASCII letters; a line can open like chrome only if its
    # first two are those of an opening (a table lookup), and only those lines are compared in full.
    code, head = _line_heads(j, start)
    chrome |= (code & _SWAR_HIGH) != 0  # not ASCII
    maybe = np.flatnonzero(_OPEN2[(code & _LOW16).astype(np.intp)])
    if maybe.size:
        c = code[maybe, None]
        chrome[maybe] |= ((c & _OPENING_MASKS[None, :]) == _OPENING_VALUES[None, :]).any(axis=1)
    # A dateline starts with a capital and one more capital or one of " .'/-" (non-ASCII: maybe).
    check = _UPPER_ASCII[head[:, 0]] & _DATELINE_SECOND[head[:, 1]]
    if check.any():
        at = np.flatnonzero(check)
        check[at] = _may_open_dateline(head[at])
    check |= chrome
    signed = _signed_lines(j, start, end)
    check |= signed
    # Photo credits need a "/" or ";" with the right neighbours; a text with one is checked line by line.
    doc_check = _credit_docs(j, odd_docs, slash, semi)
    check |= doc_check[doc]

    kstart, kend = start.copy(), end.copy()
    drop = blank.copy()
    signoffs: dict[int, bool] = {}
    credits: dict[int, bool] = {}
    checked = np.flatnonzero(check)
    text_starts = j.starts.tolist()
    spans: list[tuple[int, int] | None] = []
    for d, s, e, chr_, sign in zip(
        doc[checked].tolist(),
        start[checked].tolist(),
        end[checked].tolist(),
        chrome[checked].tolist(),
        signed[checked].tolist(),
        strict=True,
    ):
        text, base = texts[d], text_starts[d]
        if d not in credits:
            # _credit_docs said no: the exact search cannot match either.
            credits[d] = bool(doc_check[d]) and _CHROME_ANYWHERE_RE.search(text) is not None
        if sign:
            if d not in signoffs:
                signoffs[d] = "reuter" in text.lower()
            sign = signoffs[d]
        span = _line_span(text, s - base, e - base, credits[d], sign, chr_)
        spans.append(None if span is None else (span[0] + base, span[1] + base))
    if spans:
        kept = np.array([x is not None for x in spans], dtype=bool)
        drop[checked[~kept]] = True
        at = checked[kept]
        kstart[at] = [x[0] for x in spans if x is not None]
        kend[at] = [x[1] for x in spans if x is not None]
    keep = ~drop
    kstart, kend = kstart[keep], kend[keep]
    if odd_docs.any():
        extra = [
            (a + int(j.starts[i]), b + int(j.starts[i]))
            for i in np.flatnonzero(odd_docs).tolist()
            for a, b in content_spans(texts[i])
        ]
        kstart = np.concatenate((kstart, np.array([a for a, _ in extra], dtype=np.int64)))
        kend = np.concatenate((kend, np.array([b for _, b in extra], dtype=np.int64)))
        order = np.argsort(kstart, kind="stable")
        kstart, kend = kstart[order], kend[order]
    return kstart, kend


def _signed_lines(j: _Joined, start: I64, end: I64) -> npt.NDArray[np.bool_]:
    """Lines that may end in an agency sign-off (a superset of those ``_SIGNOFF_RE`` matches in).

    The regex needs "reuter" (in any case: no other letter folds to r, e, u or t), an optional
    "s", spaces, an optional ellipsis and spaces, then the end of the line. So a line whose last
    character (before its "\n") is not a space, "..." or "\u2026" must end in "reuter" or
    "reuters"; lines ending in a space or an ellipsis are passed on unexamined.
    """
    cp = j.cp
    if not start.size:
        return np.zeros(0, dtype=bool)
    stop = end - (cp[end - 1] == 10)  # the line without its "\n"
    last_at = np.maximum(stop - 1, start)
    last = cp[last_at].astype(np.int64)
    ellipsis = (last == ord(".")) & (stop - 3 >= start) & (cp[last_at - 1] == ord(".")) & (cp[last_at - 2] == ord("."))
    signed: npt.NDArray[np.bool_] = ((j.classes(last_at) & _SPACE) > 0) | ellipsis | (last == 0x2026)
    plural = (last == ord("s")) | (last == ord("S")) | (last == 0x17F)
    word_end = stop - plural
    word = word_end - 6
    fits = (plural | (last == ord("r")) | (last == ord("R"))) & (word >= start)
    at = np.flatnonzero(fits)
    if at.size:
        letters = np.stack([cp[word[at] + k] for k in range(6)], axis=1).astype(np.int64)
        lowered = letters | ((letters >= ord("A")) & (letters <= ord("Z"))) * 0x20
        signed[at[(lowered == _REUTER[None, :]).all(axis=1)]] = True
    signed &= stop > start
    return signed


_REUTER = np.frombuffer(b"reuter", dtype=np.uint8).astype(np.int64)


_AGENCY_SUFFIXES = tuple(
    np.frombuffer(a.encode("ascii"), dtype=np.uint8) for a in ("reuters", "afp", "ap", "getty images", "anadolu")
)
_VERB_CODES = tuple(int.from_bytes(v.encode("ascii"), "little") for v in ("editing", "writing"))
_LOW56 = np.uint64((1 << 56) - 1)


def _credit_docs(
    j: _Joined, odd_docs: npt.NDArray[np.bool_], slash: I64 | None = None, semi: I64 | None = None
) -> npt.NDArray[np.bool_]:
    """Per text: ``not odd and ("/" in text or ";" in text) and _may_credit(text)``.

    In an ASCII batch each "/" and ";" is judged where it is, vectorised, in the usual case
    (a word right before the "/"; a word right after the ";" or after one space): only texts
    with a mark in an unusual place take ``_may_credit`` itself.
    """
    texts = j.texts
    out = np.zeros(len(texts), dtype=bool)
    if j.cp.dtype != np.uint8:
        for i, text in enumerate(texts):
            if not odd_docs[i] and ("/" in text or ";" in text) and _may_credit(text):
                out[i] = True
        return out
    cp = j.cp
    if slash is None or semi is None:
        _, slash, semi = _marks(j)
    if slash.size + semi.size == 0:
        return out
    space = _ASCII_CLASSES & _SPACE
    unsure = np.zeros(len(texts), dtype=bool)
    if slash.size:
        d = np.searchsorted(j.starts, slash, side="right") - 1
        rel = slash - j.starts[d]
        # Sure when a non-space precedes the "/": then the tail is the (up to) 12 characters before it.
        sure = (rel > 0) & (space[cp[slash - 1]] == 0)
        unsure[d[~sure]] = True
        tail = cp[np.maximum(slash[:, None] - 12 + np.arange(12), 0)]
        tail = tail | (_IS_AZ[tail].astype(np.uint8) << np.uint8(5))  # str.lower of ASCII
        hit = np.zeros(slash.size, dtype=bool)
        for agency in _AGENCY_SUFFIXES:
            n = agency.size
            hit |= (rel >= n) & (tail[:, 12 - n :] == agency).all(axis=1)
        out[d[sure & hit]] = True
    if semi.size:
        d = np.searchsorted(j.starts, semi, side="right") - 1
        # Sure when the text after the ";" starts at most one space later (and within the text:
        # the "\n" after a text is a space).
        first_space = space[cp[semi + 1]] > 0
        head = semi + 1 + first_space
        sure = space[cp[head]] == 0
        unsure[d[~sure]] = True
        code = _eight_bytes_at(cp, head)
        upper = (code + _SWAR_A) & ~(code + _SWAR_Z1) & _SWAR_HIGH
        code = (code | (upper >> np.uint64(2))) & _LOW56
        hit = np.zeros(semi.size, dtype=bool)
        for verb in _VERB_CODES:
            hit |= code == np.uint64(verb)
        out[d[sure & hit]] = True
    for i in np.flatnonzero(unsure & ~out).tolist():
        out[i] = _may_credit(texts[i])
    out &= ~odd_docs
    return out


def _may_sign_off(rest: str) -> bool:
    """False only if ``_SIGNOFF_RE`` cannot match with its "reuter" just before `rest` (the rest of the line)."""
    if rest[:1] in ("s", "S", "\u017f"):  # IGNORECASE pairs "s" with the long s too
        rest = rest[1:]
    rest = rest.lstrip()
    if rest.startswith("..."):
        rest = rest[3:]
    elif rest.startswith("\u2026"):
        rest = rest[1:]
    return not rest.strip()


_CREDIT_AGENCIES = ("reuters", "afp", "ap", "getty images", "anadolu")
_CREDIT_VERBS = ("editing", "writing")
_REACH = 80


def _may_credit(text: str) -> bool:
    """False only if ``_CHROME_ANYWHERE_RE`` cannot match: it needs an agency name, spaces, "/"
    or a ";", spaces, "editing"/"writing". Non-ASCII or long space runs near a mark count as maybe."""
    i = text.find("/")
    while i >= 0:
        window = text[max(0, i - _REACH) : i]
        before = window.rstrip()
        tail = before[-12:]
        if (not before and i > _REACH) or not tail.isascii() or tail.lower().endswith(_CREDIT_AGENCIES):
            return True
        i = text.find("/", i + 1)
    i = text.find(";")
    while i >= 0:
        after = text[i + 1 : i + 1 + _REACH].lstrip()
        head = after[:7]
        if (not after and len(text) > i + 1 + _REACH) or not head.isascii() or head.lower() in _CREDIT_VERBS:
            return True
        i = text.find(";", i + 1)
    return False


def _token_bounds(
    j: _Joined, prose: npt.NDArray[np.bool_] | None = None
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Start and end of every token of the joined texts: maximal word runs and single no-space
    characters (only those inside `prose`, a mask of the characters, if given)."""
    word = j.word if prose is None else j.word & prose  # ends in padding, which is no word
    if j.single is None:
        edges = np.flatnonzero(word[1:] != word[:-1]) + 1
        if word[0]:
            edges = np.concatenate((np.zeros(1, dtype=np.int64), edges))
        bounds = edges.reshape(-1, 2).T  # (2, tokens): starts, ends
        return bounds[0].copy(), bounds[1].copy()  # contiguous: gathers by them are faster
    single = j.single if prose is None else j.single & prose
    opens = np.empty(word.size, dtype=bool)
    opens[0] = word[0]
    np.greater(word[1:], word[:-1], out=opens[1:])
    closes = np.empty(word.size, dtype=bool)
    closes[-1] = word[-1]
    np.greater(word[:-1], word[1:], out=closes[:-1])
    return np.flatnonzero(opens | single), np.flatnonzero(closes | single) + 1


def _prose_mask(size: int, kstart: I64, kend: I64) -> npt.NDArray[np.bool_]:
    """True on the characters inside the sorted, disjoint ranges ``[kstart, kend)``, of `size` in all."""
    cuts = np.empty(2 * kstart.size + 2, dtype=np.int64)
    cuts[0], cuts[-1] = 0, size
    cuts[1:-1:2], cuts[2:-1:2] = kstart, kend
    inside = np.zeros(cuts.size - 1, dtype=bool)
    inside[1::2] = True
    return np.repeat(inside, np.diff(cuts))


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


def _xxh32_ascii_tokens(
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
    """``_xxh32_ascii_tokens``. 32-bit words live in 64-bit integers, masked: numba widens unsigned arithmetic."""
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


# Below this many characters a batch (one article, or the few stories a match shows) finds its
# prose faster line by line: the vectorised line tests cost ~100 us of numpy calls whatever the
# size. Timed on generated news text (scratch A/B, batches of k articles): 62 vs 129 us at 2,500
# characters, 162 vs 181 at 10,600, 242 vs 217 at 16,100.
_SMALL_BATCH_CHARS = 12_000


def _cached_hashes(joined: str, starts: I64, ends: I64) -> U32:
    """``token_hash`` of each ``joined[start:end]``, with the loops in C while every token is cached."""
    raws = list(map(joined.__getitem__, map(slice, starts.tolist(), ends.tolist())))
    try:
        return np.array(list(map(_HASH_CACHE.__getitem__, raws)), dtype=np.uint32)
    except KeyError:
        return np.fromiter(map(token_hash, raws), dtype=np.uint32, count=len(raws))


def _scan(texts: list[str], strip_boilerplate: bool, *, small: bool | None = None) -> tuple[U32, I64, I64, I64]:
    """Token hashes, starts and ends (offsets in the texts joined with "\n"), and per-text offsets into them.

    ``small`` picks the per-line ``content_spans`` over the vectorised line pre-tests
    (default: by size; both give the same result).
    """
    j, starts, ends, offsets = _bounds(texts, strip_boilerplate, small)
    if j is None:
        return np.empty(0, np.uint32), starts, ends, offsets
    if j.cp.dtype == np.uint8:
        hashes = _xxh32_ascii_tokens(j.cp, starts, ends - starts)  # type: ignore[arg-type]
    else:
        wide = np.flatnonzero(j.cp[: j.size] >= 128)
        unicode_tok = np.searchsorted(wide, ends) > np.searchsorted(wide, starts)
        plain = ~unicode_tok
        hashes = np.empty(starts.size, dtype=np.uint32)
        hashes[plain] = _xxh32_ascii_tokens(j.cp.astype(np.uint8), starts[plain], (ends - starts)[plain])
        hashes[unicode_tok] = _cached_hashes(j.joined, starts[unicode_tok], ends[unicode_tok])
    return hashes, starts, ends, offsets


def _bounds(texts: list[str], strip_boilerplate: bool, small: bool | None) -> tuple[_Joined | None, I64, I64, I64]:
    """`_scan` without the hashing: the joined texts (None when there are none), token starts, ends and offsets."""
    n = len(texts)
    offsets = np.zeros(n + 1, dtype=np.int64)
    if n == 0:
        return None, np.empty(0, np.int64), np.empty(0, np.int64), offsets
    j = _Joined.of(texts)
    if small is None:
        small = j.size < _SMALL_BATCH_CHARS
    if strip_boilerplate:
        # Tokens of the prose ranges only (no token crosses a range's edge: ranges start after a
        # line break or a space and end at one), so masking the characters outside them first
        # gives the same tokens as keeping the tokens that start inside them.
        if small:
            spans = [
                (a + base, b + base)
                for t, base in zip(texts, j.starts.tolist(), strict=True)
                for a, b in _prose_spans(t, pretest=True)
            ]
            kstart = np.array([a for a, _ in spans], dtype=np.int64)
            kend = np.array([b for _, b in spans], dtype=np.int64)
        else:
            kstart, kend = _content_ranges(j)
        starts, ends = _token_bounds(j, _prose_mask(j.word.size, kstart, kend))
    else:
        starts, ends = _token_bounds(j)
    offsets[:-1] = np.searchsorted(starts, j.starts)
    offsets[-1] = starts.size
    return j, starts, ends, offsets
