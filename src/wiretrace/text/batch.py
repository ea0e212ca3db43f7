"""The batch path: the boilerplate mask and the tokens of many texts in a few numpy passes.

Indexing tokenises every story, so the work is done for a whole batch of
texts at once: the texts are joined with "\\n" (never part of a token or a
line), every code point is classified through a lookup table, and tokens are
the runs the classes delimit. Boilerplate is masked per line; the lines that
could be boilerplate are picked out with vectorised tests that are necessary
conditions of the regexes of ``text.boilerplate``, and only those lines go
through its own per-line logic (``line_span``). A text with an unusual line
break (or \\x1f, which str.strip and the regexes' \\s disagree on) goes through
``content_spans`` whole. ``tests/test_text_batch.py`` checks all of this
against the straightforward definitions.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numba
import numpy as np
import numpy.typing as npt
import regex

from wiretrace.text.boilerplate import (
    CHROME_ANYWHERE_RE,
    CHROME_OPENINGS,
    CREDIT_AGENCIES,
    CREDIT_VERBS,
    content_spans,
    line_span,
    may_credit,
    prose_spans,
)
from wiretrace.text.normalize import LOOKALIKE_CLASSES, TOKEN_RE, WORD_RUN_RE, cached_hashes, fold_shorthand
from wiretrace.text.xxh32 import letters_with_lookalike_digits, xxh32_ascii_lookalike, xxh32_ascii_tokens
from wiretrace.types import I64, U32

_WORD = 1  # letter, mark, digit or joiner outside the no-space scripts: runs of these are tokens
_SINGLE = 2  # a Han/Hiragana/Katakana character: a token by itself
_SPACE = 4  # str.isspace
_ODD = 8  # a line break other than "\n", or a space that the regexes' \s does not match
_ANY_SPACE = 16  # a character the regexes' \s matches


def _class_table(limit: int) -> npt.NDArray[np.uint8]:
    """Class bits of code points 0..limit-1, derived from the very regexes and str methods they stand for."""
    chars = np.arange(limit, dtype="<u4").tobytes().decode("utf-32-le", "surrogatepass")
    table = np.zeros(limit, dtype=np.uint8)
    for m in TOKEN_RE.finditer(chars):
        table[m.start() : m.end()] |= _WORD if m.end() - m.start() > 1 or WORD_RUN_RE.match(m.group()) else _SINGLE
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


_ASCII_CLASSES = _class_table(256)[:128]
ASCII_WORD = (_ASCII_CLASSES & _WORD) > 0


def ascii_word(cp: npt.NDArray[np.uint8]) -> npt.NDArray[np.bool_]:
    """``ASCII_WORD[cp]``, i.e. [0-9A-Za-z], by byte arithmetic: a table lookup converts the
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
    unicode_classes()


@functools.cache
def unicode_classes() -> npt.NDArray[np.uint8]:
    """All of Unicode; built on first use (about a second), as most batches are ASCII."""
    return _class_table(0x110000)


_IS_AZ = np.zeros(256, dtype=bool)
_IS_AZ[ord("A") : ord("Z") + 1] = True
_UPPER_ASCII = _IS_AZ.copy()
_UPPER_ASCII[128:] = True  # not ASCII: let the exact test decide
_DATELINE_SECOND = _UPPER_ASCII.copy()
for _c in " .'/-":
    _DATELINE_SECOND[ord(_c)] = True


def _opening_codes() -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint64]]:
    """(mask, value) per ASCII opening as little-endian integers (non-ASCII openings are caught anyway)."""
    ascii_openings = sorted({o for o in CHROME_OPENINGS if o.isascii()})
    masks = [(1 << (8 * len(o))) - 1 for o in ascii_openings]
    values = [int.from_bytes(o.encode("ascii"), "little") for o in ascii_openings]
    return np.array(masks, dtype=np.uint64), np.array(values, dtype=np.uint64)


_OPENING_MASKS, _OPENING_VALUES = _opening_codes()


def _opening_pairs() -> npt.NDArray[np.bool_]:
    """Indexed by a line's first two (lower-cased) bytes as a little-endian 16-bit number: True
    if some ASCII opening starts with them (any second byte for a one-character opening)."""
    table = np.zeros(1 << 16, dtype=bool)
    for o in CHROME_OPENINGS:
        if not o.isascii():
            continue
        if len(o) == 1:
            table[ord(o) :: 256] = True
        else:
            table[ord(o[0]) | ord(o[1]) << 8] = True
    return table


_OPEN2 = _opening_pairs()


@dataclass(frozen=True, slots=True)
class Joined:
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
    def of(texts: list[str]) -> Joined:
        n = len(texts)
        lengths = np.fromiter(map(len, texts), dtype=np.int64, count=n)
        starts = np.zeros(n, dtype=np.int64)
        np.cumsum(lengths[:-1] + 1, out=starts[1:])
        joined = "\n".join([*texts, _PADDING])
        size = len(joined) - len(_PADDING) - 1
        cp: npt.NDArray[np.uint8] | npt.NDArray[np.uint32]
        if joined.isascii():
            cp = np.frombuffer(joined.encode("ascii"), dtype=np.uint8)
            word = ascii_word(cp)
            single = None
            has_odd = any(c in joined for c in _ASCII_ODD)  # a few memchr passes, faster than one regex
            odd = np.flatnonzero(_ASCII_CLASSES[cp] & _ODD) if has_odd else np.empty(0, dtype=np.int64)
        else:
            # surrogatepass keeps every code unit, paired or lone, as one code point: offsets stay str offsets.
            cp = np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), dtype="<u4")
            cls = unicode_classes()[cp]
            word = (cls & _WORD) > 0
            single = (cls & _SINGLE) > 0
            odd = np.flatnonzero(cls & _ODD)
        return Joined(texts, joined, cp, word, single, odd, starts, starts + lengths, size)

    def classes(self, at: npt.NDArray[np.int64]) -> npt.NDArray[np.uint8]:
        """Class bits of the characters at `at`."""
        table = _ASCII_CLASSES if self.cp.dtype == np.uint8 else unicode_classes()
        return table[self.cp[at]]


_PADDING = "\0" * 16  # after the last text (behind a "\n"): lets fixed-width reads run past the end


def _marks(j: Joined) -> tuple[I64, I64, I64]:
    """Positions of every "\\n", "/" and ";" of the batch, from one pass over it."""
    body = j.cp[: j.size]
    found = body == 10
    found |= body == ord("/")
    found |= body == ord(";")
    at = np.flatnonzero(found)
    c = body[at]
    return at[c == 10], at[c == ord("/")], at[c == ord(";")]


def line_bounds(
    j: Joined, nl: I64 | None = None
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


def _line_heads(j: Joined, start: I64) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint8]]:
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
    """False only for lines ``DATELINE_RE`` cannot match, from their first 8 characters (`head`,
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


def content_ranges(j: Joined) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """``content_spans`` of every text of the batch, in joined coordinates, in order."""
    texts, cp = j.texts, j.cp
    odd_docs = np.zeros(len(texts), dtype=bool)
    if j.odd.size:
        odd_docs[np.searchsorted(j.starts, j.odd, side="right") - 1] = True
    nl, slash, semi = _marks(j)
    start, end, doc = line_bounds(j, nl)
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
    signed = signed_lines(j, start, end)
    check |= signed
    # Photo credits need a "/" or ";" with the right neighbours; a text with one is checked line by line.
    doc_check = credit_docs(j, odd_docs, slash, semi)
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
            # credit_docs said no: the exact search cannot match either.
            credits[d] = bool(doc_check[d]) and CHROME_ANYWHERE_RE.search(text) is not None
        if sign:
            if d not in signoffs:
                signoffs[d] = "reuter" in text.lower()
            sign = signoffs[d]
        span = line_span(text, s - base, e - base, credits[d], sign, chr_)
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


def signed_lines(j: Joined, start: I64, end: I64) -> npt.NDArray[np.bool_]:
    """Lines that may end in an agency sign-off (a superset of those ``SIGNOFF_RE`` matches in).

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

_AGENCY_SUFFIXES = tuple(np.frombuffer(a.encode("ascii"), dtype=np.uint8) for a in CREDIT_AGENCIES)
_VERB_CODES = tuple(int.from_bytes(v.encode("ascii"), "little") for v in CREDIT_VERBS)
_LOW56 = np.uint64((1 << 56) - 1)


def credit_docs(
    j: Joined, odd_docs: npt.NDArray[np.bool_], slash: I64 | None = None, semi: I64 | None = None
) -> npt.NDArray[np.bool_]:
    """Per text: ``not odd and ("/" in text or ";" in text) and may_credit(text)``.

    In an ASCII batch each "/" and ";" is judged where it is, vectorised, in the usual case
    (a word right before the "/"; a word right after the ";" or after one space): only texts
    with a mark in an unusual place take ``may_credit`` itself.
    """
    texts = j.texts
    out = np.zeros(len(texts), dtype=bool)
    if j.cp.dtype != np.uint8:
        for i, text in enumerate(texts):
            if not odd_docs[i] and ("/" in text or ";" in text) and may_credit(text):
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
        out[i] = may_credit(texts[i])
    out &= ~odd_docs
    return out


def token_bounds(
    j: Joined, prose: npt.NDArray[np.bool_] | None = None
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


# Below this many characters a batch (one article, or the few stories a match shows) finds its
# prose faster line by line: the vectorised line tests cost ~100 us of numpy calls whatever the
# size. Timed on generated news text (scratch A/B, batches of k articles): 62 vs 129 us at 2,500
# characters, 162 vs 181 at 10,600, 242 vs 217 at 16,100.
_SMALL_BATCH_CHARS = 12_000


def _lookalike_table() -> npt.NDArray[np.uint8]:
    """Byte -> its look-alike class byte (``normalize.LOOKALIKE_CLASSES``; other bytes unchanged)."""
    table = np.arange(256, dtype=np.uint8)
    for a, b in LOOKALIKE_CLASSES.items():
        table[ord(a)] = ord(b)
    return table


_LOOKALIKE_TABLE = _lookalike_table()


def _ascii_hashes(cp: npt.NDArray[np.uint8], starts: I64, lengths: I64, lookalikes: bool) -> U32:
    if lookalikes:
        return xxh32_ascii_lookalike(cp, starts, lengths, _LOOKALIKE_TABLE)
    return xxh32_ascii_tokens(cp, starts, lengths)


def scan(
    texts: list[str],
    strip_boilerplate: bool,
    *,
    small: bool | None = None,
    lookalikes: bool = False,
    shorthand: bool = False,
) -> tuple[U32, I64, I64, I64]:
    """Token hashes, starts and ends (offsets in the texts joined with "\n"), and per-text offsets into them.

    ``small`` picks the per-line ``content_spans`` over the vectorised line pre-tests
    (default: by size; both give the same result). For comparing copies: with ``lookalikes`` a
    token's hash is that of its OCR look-alike class (``normalize.lookalike_hash``), and with
    ``shorthand`` spelt-out wire shorthand hashes as the short form (``normalize.fold_shorthand``).
    """
    j, starts, ends, offsets = bounds(texts, strip_boilerplate, small)
    if j is None:
        return np.empty(0, np.uint32), starts, ends, offsets
    return hash_tokens(j, starts, ends, lookalikes, shorthand), starts, ends, offsets


def hash_tokens(
    j: Joined, starts: I64, ends: I64, lookalikes: bool, shorthand: bool, plain: npt.NDArray[np.bool_] | None = None
) -> U32:
    """The hashes of the tokens [starts, ends) of the joined texts (see `scan`); ``plain``:
    their ``ascii_tokens``, when the caller has it already."""
    if j.cp.dtype == np.uint8:
        hashes = _ascii_hashes(j.cp, starts, ends - starts, lookalikes)  # type: ignore[arg-type]
    else:
        plain = ascii_tokens(j, starts, ends) if plain is None else plain
        unicode_tok = ~plain
        hashes = np.empty(starts.size, dtype=np.uint32)
        hashes[plain] = _ascii_hashes(j.cp.astype(np.uint8), starts[plain], (ends - starts)[plain], lookalikes)
        hashes[unicode_tok] = cached_hashes(j.joined, starts[unicode_tok], ends[unicode_tok], lookalikes)
    if shorthand:
        hashes = fold_shorthand(hashes, lookalikes)
    return hashes


def ascii_tokens(j: Joined, starts: I64, ends: I64) -> npt.NDArray[np.bool_]:
    """Which tokens [starts, ends) of the joined texts are all ASCII."""
    if j.cp.dtype == np.uint8:
        return np.ones(starts.size, dtype=np.bool_)
    wide = np.flatnonzero(j.cp[: j.size] >= 128)
    return np.asarray(np.searchsorted(wide, ends) == np.searchsorted(wide, starts))


def lookalike_digit_words(
    j: Joined, starts: I64, ends: I64, plain: npt.NDArray[np.bool_] | None = None
) -> npt.NDArray[np.bool_]:
    """Which tokens are ASCII words mixing letters with 0, 1, 5 or 8 (``letters_with_lookalike_digits``),
    whatever else the batch holds: one text's answer must not depend on the texts batched with it (a
    single non-ASCII character elsewhere in a batch widens its code points). ``plain`` as in `hash_tokens`."""
    if j.cp.dtype == np.uint8:
        return letters_with_lookalike_digits(j.cp, starts, ends - starts)  # type: ignore[arg-type]
    plain = ascii_tokens(j, starts, ends) if plain is None else plain
    out = np.zeros(starts.size, dtype=np.bool_)
    narrow = (j.cp[: j.size] & 0xFF).astype(np.uint8)  # only the all-ASCII tokens' bytes are read
    out[plain] = letters_with_lookalike_digits(narrow, starts[plain], (ends - starts)[plain])
    return out


def bounds(texts: list[str], strip_boilerplate: bool, small: bool | None) -> tuple[Joined | None, I64, I64, I64]:
    """`scan` without the hashing: the joined texts (None when there are none), token starts, ends and offsets."""
    n = len(texts)
    offsets = np.zeros(n + 1, dtype=np.int64)
    if n == 0:
        return None, np.empty(0, np.int64), np.empty(0, np.int64), offsets
    j = Joined.of(texts)
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
                for a, b in prose_spans(t, pretest=True)
            ]
            kstart = np.array([a for a, _ in spans], dtype=np.int64)
            kend = np.array([b for _, b in spans], dtype=np.int64)
        else:
            kstart, kend = content_ranges(j)
        starts, ends = token_bounds(j, _prose_mask(j.word.size, kstart, kend))
    else:
        starts, ends = token_bounds(j)
    offsets[:-1] = np.searchsorted(starts, j.starts)
    offsets[-1] = starts.size
    return j, starts, ends, offsets


@numba.njit(cache=True, nogil=True, boundscheck=False)  # compiled once per install; no GIL held
def spelling_variants(folded: U32, exact: U32, offsets: I64) -> I64:
    """Per text ``[offsets[i], offsets[i+1])``: how many more distinct words it has as written (`exact`)
    than in a comparison form (`folded`): one sort of its (folded, exact) pairs, then a pass."""
    n = offsets.size - 1
    out = np.zeros(n, dtype=np.int64)
    for i in range(n):
        lo, hi = offsets[i], offsets[i + 1]
        if hi - lo < 2:
            continue
        pairs = np.sort((folded[lo:hi].astype(np.uint64) << np.uint64(32)) | exact[lo:hi].astype(np.uint64))
        extra = 0
        for x in range(1, pairs.size):
            if pairs[x] != pairs[x - 1] and (pairs[x] >> np.uint64(32)) == (pairs[x - 1] >> np.uint64(32)):
                extra += 1  # another spelling of the same word
        out[i] = extra
    return out
