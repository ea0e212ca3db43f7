"""The batched text pipeline equals the straightforward one, token for token and key for key.

The reference here is the definition: ``content_spans`` line by line, the token
regex run over each span, every token normalised and hashed on its own, and a
window's MinHash the plain minimum of its permuted shingles. The batched code
(one numpy pass over a batch, vectorised pre-tests of which lines can be
boilerplate, length-grouped xxh32, blocked MinHash) must give the same
offsets, hashes, shingles and band keys on any input.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
import xxhash
from hypothesis import given, settings
from hypothesis import strategies as st

from wiretrace.config import IndexSettings
from wiretrace.pipeline import TextPipeline
from wiretrace.shingling import fmix64, shingle_hashes, window_bounds
from wiretrace.signatures import MinHasher, fmix32
from wiretrace.text import (
    comparison_hashes,
    content_spans,
    normalize_token,
    token_hashes,
    token_hashes_batch,
    token_spans_many,
    tokenize,
    tokenize_many,
)
from wiretrace.text.batch import (
    ASCII_WORD,
    Joined,
    ascii_word,
    content_ranges,
    credit_docs,
    line_bounds,
    scan,
    signed_lines,
)
from wiretrace.text.boilerplate import SIGNOFF_RE, may_credit
from wiretrace.text.normalize import TOKEN_RE, WIRE_SHORTHAND, lookalike
from wiretrace.text.xxh32 import xxh32_ascii_tokens

# --- the reference -------------------------------------------------------------


def ref_tokens(text: str, strip: bool = True) -> tuple[list[int], list[int], list[int]]:
    spans = content_spans(text) if strip else [(0, len(text))]
    found = [m for s, e in spans for m in TOKEN_RE.finditer(text, s, e)]
    hashes = [xxhash.xxh32_intdigest(normalize_token(m.group()).encode("utf-8", "surrogatepass")) for m in found]
    return hashes, [m.start() for m in found], [m.end() for m in found]


def ref_signature(hasher: MinHasher, values: npt.NDArray[np.uint32]) -> npt.NDArray[np.uint32]:
    a, b = hasher._permutations
    return np.asarray((a[:, None] * fmix32(values)[None, :] + b[:, None]).min(axis=1), dtype=np.uint32)


def ref_story_keys(pipe: TextPipeline, text: str) -> tuple[list[int], list[int]]:
    s = pipe.settings
    tokens = np.array(ref_tokens(text)[0], dtype=np.uint32)
    sh = shingle_hashes(tokens, s.shingle_size)
    starts, ends = window_bounds(sh.size, s.window, s.window)
    sigs = [ref_signature(pipe.windows, sh[a:b]) for a, b in zip(starts.tolist(), ends.tolist(), strict=True)]
    keys = pipe.windows.band_keys(np.array(sigs, dtype=np.uint32).reshape(-1, s.num_perm)).reshape(-1).tolist()
    if tokens.size:
        topic = ref_signature(pipe.topic, np.unique(tokens))[None, :]
        keys += pipe.topic.band_keys(topic).reshape(-1).tolist()
    # Term postings: the distinct word pairs whose hash the sample divides, salted "term".
    posted = sorted({b for b in shingle_hashes(tokens, 2).tolist() if b % s.term_sample == 0})
    keys += fmix64(np.array([(0x7465726D << 32) | b for b in posted], dtype=np.uint64)).tolist()
    return tokens.tolist(), keys


# --- inputs --------------------------------------------------------------------

# Lines that are, or look nearly like, every kind of boilerplate, and lines in many scripts.
_LINES = [
    "BEIRUT (Reuters) - Iran will send missiles to Syria, an official said.",
    "BEIRUT/AMMAN, Dec 6 (Reuters) – The talks ended.",
    "LONDON, March 3 - Shares fell.",
    "LONDON —",
    "A spokesman said: no comment",
    "I - said",
    "U.S. - Trade rose",
    "ÉLYSÉE - Le président a parlé.",
    "Photo: Fighters advance on the city",
    "Photos | The scene",
    "FILE PHOTO: a building",
    "By Maya Gebeily and Parisa Hafezi",
    "By the way, the market rose",
    "by Ann",
    "Reporting by Maya Gebeily; Editing by Ed Osmond",
    "Additional reporting by Tom",
    "Rebel fighters hold weapons in Hama. REUTERS/Mahmoud Hassano",
    "A man walks. AFP / Getty",
    "Flood waters rise. AP/Smith",
    "Crowds at the border. ANADOLU /Ali Veli",
    "Ruins; writing by Sam",
    "O'HARE - Flights resumed.",
    "ST. LOUIS, May 2 - Grain fell.",
    "Prices rose (REUTERS/Kim Lee) today.",
    "cap/Rate went up",
    "dlrs/bbl; editing by none",
    "Subscribe to get the latest posts sent to your email.",
    "Sign up for our newsletter",
    "Share this article",
    "Advertisement",
    "Home",
    "Home prices rose",
    "Summary:",
    "Key points",
    "see also: the rest",
    "See Also here we go",
    "(c) 2024 X",
    "© 2024 Agency",
    "Copyright Reuters",
    "  Reporting by Jane Doe",
    "\u3000Photo: spaced",
    "\xa0By John Smith",
    "The offensive began on Nov. 27.",
    "Prices rose last year. REUTER",
    "Reuters",
    "reuters ...",
    "Markets closed Reuters…",
    "He told Reuters it was fine",
    "Prices REUTEReuter",
    "Markets reuterS  …  ",
    "Closing Reuterſ",
    "Close Reuters .. .",
    "İmage: dotted capital",
    "ſubscribe now",
    "\u212aey points",
    "Naïve café owners in Zürich said prices rose.",
    "پاکستان کرکٹ\u200cٹیم نے میچ جیت لیا",
    "كتاب عربي جديد",
    "भारत सरकार ने कहा",
    "Москва заявила в понедельник",
    "東京で会議が開かれた",
    "ｈｏｍｅ ＦＵＬＬＷＩＤＴＨ",
    "Straße ﬁne x\u0301y",
    "",
    "   ",
    "x" * 40 + " abc " + "Y" * 15 + " " + "z" * 16 + " 0123456789abcdef",
]
_BREAKS = ["\n", "\n", "\n", "\n\n", "\r\n", "\r", "\x0b", "\x0c", "\x1c", "\x1f", "\x85", "\u2028", " \n"]
_ALPHABET = st.sampled_from(list("abAZ09 \n-:;/()©éReutrsPhoy.İſ\u212a\u3000\xa0\t\u0301\u200c東ک\ud800\U0001f600"))


@st.composite
def texts(draw: st.DrawFn) -> str:
    parts = draw(
        st.lists(
            st.one_of(st.sampled_from(_LINES), st.text(alphabet=_ALPHABET, max_size=40), st.text(max_size=20)),
            max_size=8,
        )
    )
    breaks = draw(st.lists(st.sampled_from(_BREAKS), min_size=len(parts), max_size=len(parts)))
    return "".join(p + b for p, b in zip(parts, breaks, strict=True))[: draw(st.integers(0, 2000))]


# --- tests ---------------------------------------------------------------------


def _assert_same_tokens(text: str) -> None:
    for strip in (True, False):
        hashes, starts, ends = ref_tokens(text, strip)
        t = tokenize(text, strip_boilerplate=strip)
        assert t.hashes.tolist() == hashes, (text, strip)
        assert t.starts.tolist() == starts and t.ends.tolist() == ends, (text, strip)
        assert t.hashes.dtype == np.uint32 and t.starts.dtype == np.int64


def test_every_listed_line_alone_and_together() -> None:
    for line in _LINES:
        for text in (line, line + "\n", "Intro line.\n" + line + "\nOutro line."):
            _assert_same_tokens(text)
    _assert_same_tokens("\n".join(_LINES))


@settings(max_examples=400, deadline=None)
@given(texts())
def test_tokenize_equals_reference(text: str) -> None:
    _assert_same_tokens(text)


@settings(max_examples=100, deadline=None)
@given(st.lists(texts(), max_size=6))
def test_tokenize_many_equals_tokenize_of_each(batch: list[str]) -> None:
    """Offsets are each text's own, whatever precedes it in the batch (any script)."""
    many = tokenize_many(batch)
    spans = token_spans_many(batch)
    assert len(many) == len(spans) == len(batch)
    for text, got, (starts, ends) in zip(batch, many, spans, strict=True):
        want = tokenize(text)
        assert got.hashes.tolist() == want.hashes.tolist(), text
        assert got.starts.tolist() == want.starts.tolist() and got.ends.tolist() == want.ends.tolist(), text
        assert starts.tolist() == want.starts.tolist() and ends.tolist() == want.ends.tolist(), text


@settings(max_examples=150, deadline=None)
@given(st.lists(texts(), max_size=6))
def test_batch_equals_reference(batch: list[str]) -> None:
    flat, offsets = token_hashes_batch(batch)
    assert offsets.tolist()[0] == 0 and offsets.size == len(batch) + 1
    for i, text in enumerate(batch):
        assert flat[offsets[i] : offsets[i + 1]].tolist() == ref_tokens(text)[0], text
        assert token_hashes(text).tolist() == ref_tokens(text)[0]
    for small in (True, False):  # per-line content_spans, or the vectorised line tests
        hashes, _, _, off = scan(batch, True, small=small)
        assert hashes.tolist() == flat.tolist() and off.tolist() == offsets.tolist()
    if batch:
        j = Joined.of(batch)
        kstart, kend = content_ranges(j)
        want = [(a + int(j.starts[i]), b + int(j.starts[i])) for i, t in enumerate(batch) for a, b in content_spans(t)]
        assert list(zip(kstart.tolist(), kend.tolist(), strict=True)) == want


@settings(max_examples=60, deadline=None)
@given(
    st.lists(texts(), min_size=1, max_size=5), st.sampled_from([(4, 16, 16, 8, 2), (2, 3, 8, 4, 2), (1, 70, 8, 8, 1)])
)
def test_story_prints_equal_reference(batch: list[str], shape: tuple[int, int, int, int, int]) -> None:
    k, window, perm, bands, rows = shape
    pipe = TextPipeline(IndexSettings(shingle_size=k, window=window, num_perm=perm, bands=bands, rows=rows))
    for text, story in zip(batch, pipe.stories(batch), strict=True):
        tokens, keys = ref_story_keys(pipe, text)
        for print_ in (story, pipe.story(text)):  # in a batch, and alone (a path of its own)
            assert print_.tokens.tolist() == tokens
            assert print_.band_keys.tolist() == keys
            assert print_.band_keys.dtype == np.uint64 and print_.tokens.dtype == np.uint32


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=300),
    st.lists(st.tuples(st.integers(0, 299), st.integers(1, 120)), min_size=1, max_size=30),
    st.sampled_from([8, 16, 33]),
)
def test_signatures_of_any_windows_equal_reference(
    values: list[int], windows: list[tuple[int, int]], perm: int
) -> None:
    arr = np.array(values, dtype=np.uint32)
    spans = [(min(s, arr.size - 1), min(s, arr.size - 1) + n) for s, n in windows]
    spans = [(s, min(e, arr.size)) for s, e in spans]
    hasher = MinHasher(perm, 1, 1, seed=7)
    starts = np.array([s for s, _ in spans], dtype=np.int64)
    ends = np.array([e for _, e in spans], dtype=np.int64)
    got = hasher.signatures(arr, starts, ends)
    for row, (s, e) in zip(got, spans, strict=True):
        assert row.tolist() == ref_signature(hasher, arr[s:e]).tolist()


def test_long_and_non_ascii_batches_share_the_hash_cache() -> None:
    # Long ASCII tokens (16+ bytes) and ASCII tokens inside non-ASCII texts take other code paths.
    batch = ["A" * 16 + " " + "b" * 31 + " café " + "Q1" * 9, "plain ascii words only", "東京 Tokyo"]
    flat, offsets = token_hashes_batch(batch)
    for i, text in enumerate(batch):
        assert flat[offsets[i] : offsets[i + 1]].tolist() == ref_tokens(text)[0]


@pytest.mark.parametrize("count", [1, 7, 4095, 12_000])
def test_ascii_token_hashes_equal_xxhash(count: int) -> None:
    # Lengths 1-40: tokens under 16 bytes, and longer ones through xxh32's 4-lane stripes.
    rng = np.random.default_rng(count)
    letters = np.array(list("abcxyzABCXYZ0189"))
    words = ["".join(rng.choice(letters, size=int(n))) for n in rng.integers(1, 41, size=count)]
    data = np.frombuffer((" ".join(words) + "\0" * 9).encode("ascii"), dtype=np.uint8)
    starts = np.cumsum([0] + [len(w) + 1 for w in words[:-1]]).astype(np.int64)
    lengths = np.array([len(w) for w in words], dtype=np.int64)
    want = [xxhash.xxh32_intdigest(w.lower().encode("ascii")) for w in words]
    assert xxh32_ascii_tokens(data, starts, lengths).tolist() == want


def ref_comparison_hashes(text: str, shorthand: bool) -> list[int]:
    """De-duplication's comparison form, word by word: folded, look-alike class, long shorthand made short."""
    words = [
        lookalike(normalize_token(m.group())) for s, e in content_spans(text) for m in TOKEN_RE.finditer(text, s, e)
    ]
    short = {lookalike(a): lookalike(b) for a, b in WIRE_SHORTHAND.items()} if shorthand else {}
    return [xxhash.xxh32_intdigest(short.get(w, w).encode("utf-8", "surrogatepass")) for w in words]


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        texts() | st.text(st.sampled_from(list("rnmceil10aoh8b5sRNMCEIL ")), max_size=60),
        max_size=6,
    ),
    st.booleans(),
)
def test_comparison_form_equals_reference(batch: list[str], shorthand: bool) -> None:
    """The compiled look-alike fold (ASCII) and the Python one (other tokens) hash each word's class."""
    flat, offsets = token_hashes_batch(batch, lookalikes=True, shorthand=shorthand)
    for i, text in enumerate(batch):
        assert flat[offsets[i] : offsets[i + 1]].tolist() == ref_comparison_hashes(text, shorthand), text


def test_look_alike_misreadings_and_spelt_out_shorthand_hash_alike() -> None:
    clean = "The government said profit rose 15.0 mln dlrs, or 10 pct, vs a year ago."
    scanned = "Tbc governrnent soid pr0fit r0se l5.O million dollars, or l0 percent, versus o ycar ag0."
    a, _ = token_hashes_batch([clean], lookalikes=True, shorthand=True)
    b, _ = token_hashes_batch([scanned], lookalikes=True, shorthand=True)
    assert a.tolist() == b.tolist()
    assert token_hashes_batch([clean])[0].tolist() != token_hashes_batch([scanned])[0].tolist()
    # Different words stay different.
    x, _ = token_hashes_batch(["market rally lifts shares"], lookalikes=True, shorthand=True)
    y, _ = token_hashes_batch(["mayor rules out taxes"], lookalikes=True, shorthand=True)
    assert not set(x.tolist()) & set(y.tolist())


def test_how_altered_a_text_looks_in_comparison_form() -> None:
    texts = ["the cat saw the cat", "tbe cat saw thc cat", "up 5 pct, or 5 percent", "a missi1e 0f it", "", "B737"]
    hashes, offsets, altered = comparison_hashes(texts, lookalikes=True, shorthand=True)
    # two misreadings of "the" (one more spelling than words); "percent" spelt out, and so a second
    # spelling of "pct"; two words with a digit for a letter; nothing; a type number (no 0, 1, 5, 8).
    assert altered.tolist() == [0, 1, 2, 2, 0, 0]
    assert hashes[offsets[0] : offsets[1]].tolist() == hashes[offsets[1] : offsets[2]].tolist()
    plain, plain_offsets, none = comparison_hashes(texts, lookalikes=False, shorthand=False)
    assert none.tolist() == [0] * len(texts) and plain_offsets.tolist() == offsets.tolist()
    assert plain.tolist() == token_hashes_batch(texts)[0].tolist()


@settings(max_examples=100, deadline=None)
@given(st.lists(texts() | st.text(st.sampled_from(list("rnmceil10aoh8b5sé ")), max_size=40), max_size=5))
def test_how_altered_a_text_looks_does_not_depend_on_its_batch(batch: list[str]) -> None:
    """Dedup batches texts differently per engine (local chunks, Spark partitions): one non-ASCII text
    in a batch must not change what another text counts, or the engines pick different representatives."""
    _, _, together = comparison_hashes(batch, lookalikes=True, shorthand=True)
    alone = [int(comparison_hashes([t], lookalikes=True, shorthand=True)[2][0]) for t in batch]
    assert together.tolist() == alone
    _, _, beside = comparison_hashes([*batch, "Zürich"], lookalikes=True, shorthand=True)
    assert beside.tolist()[: len(batch)] == alone


def test_a_large_batch_equals_reference() -> None:
    # Enough text for the bulk paths everywhere (thousands of tokens, every kind of line).
    batch = ["\n".join(_LINES[i:] + _LINES[:i]) for i in range(0, len(_LINES), 3)] * 6
    flat, offsets = token_hashes_batch(batch)
    assert flat.size > 8192
    for i, text in enumerate(batch):
        assert flat[offsets[i] : offsets[i + 1]].tolist() == ref_tokens(text)[0]


# --- ASCII batches: the paths that read bytes in place --------------------------------------

_ASCII_LINES = [line for line in _LINES if line.isascii()]
_ASCII_ALPHABET = st.sampled_from(list("abAZ09 \n\t-:;/().,ReutrsPhoyingdw"))
_ASCII_PIECES = [
    "REUTERS/Kim Lee",
    "AFP / Getty",
    "cap/Rate",
    "; editing by ",
    ";Writing by",
    "; \tediting",
    ";  writing",
    "dlrs/bbl",
    "  /x",
    "Reuters ...",
    "REUTERS  ",
    "said Reuters",
    "Reuter.",
    "...",
    "AB - the",
    "A-B said",
    "NEW YORK, May 2 - x",
    "AB:C d",
    "A spokesman - said",
    "ABCDEFGH - late dash",
    "AB\t- tab",
    "U.S. (AP) - x",
    "X.Y'Z/W-V: q",
]


@st.composite
def ascii_texts(draw: st.DrawFn) -> str:
    parts = draw(
        st.lists(
            st.one_of(
                st.sampled_from(_ASCII_LINES),
                st.sampled_from(_ASCII_PIECES),
                st.text(alphabet=_ASCII_ALPHABET, max_size=40),
            ),
            max_size=10,
        )
    )
    seps = draw(
        st.lists(st.sampled_from(["\n", "\n\n", " ", "", "  \n", " ... "]), min_size=len(parts), max_size=len(parts))
    )
    return "".join(p + s for p, s in zip(parts, seps, strict=True))[: draw(st.integers(0, 600))]


def test_ascii_word_arithmetic_equals_the_class_table() -> None:
    every = np.arange(128, dtype=np.uint8)
    assert ascii_word(every).tolist() == ASCII_WORD.tolist()


@settings(max_examples=300, deadline=None)
@given(st.lists(ascii_texts(), min_size=1, max_size=6))
def test_ascii_batches_equal_reference(batch: list[str]) -> None:
    j = Joined.of(batch)
    assert j.cp.dtype == np.uint8
    kstart, kend = content_ranges(j)
    want = [(a + int(j.starts[i]), b + int(j.starts[i])) for i, t in enumerate(batch) for a, b in content_spans(t)]
    assert list(zip(kstart.tolist(), kend.tolist(), strict=True)) == want
    flat, offsets = token_hashes_batch(batch)
    for i, text in enumerate(batch):
        assert flat[offsets[i] : offsets[i + 1]].tolist() == ref_tokens(text)[0], text


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(ascii_texts(), texts()), min_size=1, max_size=6))
def test_line_pretests_are_necessary_conditions(batch: list[str]) -> None:
    # Which texts need the credit search, exactly; and every line the sign-off regex matches in is flagged.
    j = Joined.of(batch)
    odd = np.zeros(len(batch), dtype=bool)
    if j.odd.size:
        odd[np.searchsorted(j.starts, j.odd, side="right") - 1] = True
    want = [not odd[i] and ("/" in t or ";" in t) and may_credit(t) for i, t in enumerate(batch)]
    assert credit_docs(j, odd).tolist() == want
    start, end, doc = line_bounds(j)
    signed = signed_lines(j, start, end)
    for li, (s, e, d) in enumerate(zip(start.tolist(), end.tolist(), doc.tolist(), strict=True)):
        base = int(j.starts[d])
        if not odd[d] and SIGNOFF_RE.search(batch[d], s - base, e - base):
            assert signed[li], (batch[d], j.joined[s:e])
