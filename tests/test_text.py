"""The text pipeline: tokens, boilerplate, shingles and signatures."""

from __future__ import annotations

import unicodedata

import numpy as np
from datasketch import MinHash
from hypothesis import given, settings
from hypothesis import strategies as st

from wiretrace.shingling import shingle_hashes, window_bounds
from wiretrace.signatures import MinHasher
from wiretrace.text import content_spans, normalize_token, tokenize


def words(text: str, strip: bool = True) -> list[str]:
    t = tokenize(text, strip_boilerplate=strip)
    return [text[a:b] for a, b in zip(t.starts.tolist(), t.ends.tolist(), strict=True)]


def test_scripts_keep_their_letters_and_marks() -> None:
    # Urdu with zero-width non-joiner and vowel marks, Hindi with matras, Russian, Japanese.
    assert words("پاکستان کرکٹ\u200cٹیم") == ["پاکستان", "کرکٹ\u200cٹیم"]
    assert words("भारत सरकार ने कहा") == ["भारत", "सरकार", "ने", "कहा"]
    assert words("Москва заявила") == ["Москва", "заявила"]
    assert words("東京で会議") == ["東", "京", "で", "会", "議"]


def test_folding_makes_outlet_variants_equal() -> None:
    same = [("Assad’s", "Assad's"), ("ＨＯＭＳ", "homs"), ("Café", "cafe"), ("كتاب", "کتاب")]
    for a, b in same:
        assert tokenize(a).hashes.tolist() == tokenize(b).hashes.tolist(), (a, b)
    assert normalize_token("Straße") == "strasse"


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_every_letter_and_digit_lands_in_a_token(text: str) -> None:
    t = tokenize(text, strip_boilerplate=False)
    inside = np.zeros(len(text) + 1, dtype=bool)
    for a, b in zip(t.starts.tolist(), t.ends.tolist(), strict=True):
        assert 0 <= a < b <= len(text)
        inside[a:b] = True
    for i, ch in enumerate(text):
        if unicodedata.category(ch)[0] in "LN":
            assert inside[i], (text, i, ch)


def test_boilerplate_is_masked_and_story_text_kept() -> None:
    text = (
        "Photo: Fighters advance on the city [Agency]\n"
        "By Maya Gebeily and Parisa Hafezi\n"
        "BEIRUT (Reuters) - Iran will send missiles to Syria, an official said.\n"
        "Rebel fighters hold weapons in Hama. REUTERS/Mahmoud Hassano\n"
        "Reporting by Maya Gebeily; Editing by Ed Osmond\n"
        "Subscribe to get the latest posts sent to your email.\n"
        "The offensive began on Nov. 27."
    )
    kept = " ".join(text[a:b].strip() for a, b in content_spans(text))
    assert kept == "Iran will send missiles to Syria, an official said. The offensive began on Nov. 27."


def test_shingles_are_positional_and_order_sensitive() -> None:
    toks = tokenize("a b c d e f").hashes
    sh = shingle_hashes(toks, 3)
    assert sh.size == 4 and np.unique(sh).size == 4
    assert shingle_hashes(tokenize("c b a").hashes, 3)[0] != sh[0]
    assert shingle_hashes(toks[:2], 3).size == 0


def test_windows_cover_every_shingle() -> None:
    for n in (1, 5, 16, 17, 40, 100):
        s, e = window_bounds(n, 16, 16)
        covered = np.zeros(n, dtype=bool)
        for a, b in zip(s, e, strict=True):
            covered[a:b] = True
            assert b - a == min(16, n)
        assert covered.all()


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=60), st.integers(1, 2**31))
def test_signatures_equal_datasketch(values: list[int], seed: int) -> None:
    hasher = MinHasher(num_perm=16, bands=8, rows=2, seed=seed)
    arr = np.array(values, dtype=np.uint32)
    sig = hasher.signatures(arr, np.array([0]), np.array([arr.size]))[0]
    ref = MinHash(num_perm=16, seed=seed, scheme="affine32", hashfunc=int)
    ref.update_batch(values)
    assert np.array_equal(sig, ref.hashvalues)
    assert hasher.lean_minhash(sig).jaccard(ref) == 1.0


# MurmurHash3's fmix64 constants and the golden-ratio multiplier, written out here rather than
# imported: the reference must not share its numbers with the code it checks.
_REF_POLY, _REF_M1, _REF_M2 = 0x9E3779B97F4A7C15, 0xFF51AFD7ED558CCD, 0xC4CEB9FE1A85EC53


def ref_shingle_hashes(tokens: list[int], k: int) -> list[int]:
    """The definition in Python integers: the polynomial t0*P^(k-1) + ... + t(k-1) mod 2**64, MurmurHash3's
    64-bit finaliser, then the top 32 bits."""
    out = []
    for i in range(len(tokens) - k + 1):
        acc = 0
        for t in tokens[i : i + k]:
            acc = (acc * _REF_POLY + t) % 2**64
        acc ^= acc >> 33
        acc = acc * _REF_M1 % 2**64
        acc ^= acc >> 33
        acc = acc * _REF_M2 % 2**64
        acc ^= acc >> 33
        out.append(acc >> 32)
    return out


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 2**32 - 1), max_size=40), st.integers(1, 8), st.booleans())
def test_shingle_hashes_equal_the_reference(tokens: list[int], k: int, read_only: bool) -> None:
    arr = np.array(tokens, dtype=np.uint32)
    arr.flags.writeable = not read_only  # stored token arrays come back read-only
    got = shingle_hashes(arr, k)
    assert got.dtype == np.uint32
    assert got.tolist() == ref_shingle_hashes(tokens, k)
