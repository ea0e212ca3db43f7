"""Fuzz target for the text pipeline (hypothesis, bounded examples so it runs in the suite).

Whatever the string - any code point including lone surrogates, marks, joiners,
controls, boilerplate-looking lines - tokenising and sketching must not raise,
and token offsets must be valid, ordered code point ranges of that string.
"""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wiretrace.config import IndexSettings
from wiretrace.pipeline import TextPipeline
from wiretrace.text import tokenize

PIECES = [
    "\u200f", "\u200e", "\u202e", "\u200d", "\u200c", "\u0640", "\u0301", "\u0308", "\ufeff", "\x00", "\x03",
    "\x1b", "\r\n", "\n\n", "\u2028", "\u3000", "🚀", "👩‍👩‍👧", "🇵🇰", "۔", "政府部长", "カタカナ", "Юникод",
    "پاکستان", "ﻻ", "ﷺ", "\U0010ffff", "\ufffd", "\ud800", "\udfff", "BEIRUT (Reuters) -", "Reporting by X;",
    "Photo: AP", "1,000.5", "U.S.", "e-mail", "don't", "ǅ", "ß", "İ", "ﬁ", "Ⅻ", "①",
]  # fmt: skip
any_char = st.one_of(st.characters(), st.integers(0xD800, 0xDFFF).map(chr))
texts = st.one_of(
    st.text(alphabet=any_char, max_size=400),
    st.lists(st.one_of(st.sampled_from(PIECES), st.text(alphabet=any_char, max_size=8)), max_size=60).map(
        lambda parts: "".join(p + (" " if i % 3 else "") for i, p in enumerate(parts))
    ),
)
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PIPELINE = TextPipeline(IndexSettings())


def assert_valid_tokens(text: str, strip_boilerplate: bool) -> None:
    tokens = tokenize(text, strip_boilerplate=strip_boilerplate)
    n = len(tokens)
    assert tokens.hashes.dtype == np.uint32 and tokens.hashes.shape == (n,)
    assert tokens.starts.shape == tokens.ends.shape == (n,)
    starts, ends = tokens.starts.tolist(), tokens.ends.tolist()
    for s, e in zip(starts, ends, strict=True):
        assert 0 <= s < e <= len(text)
        assert not text[s:e].isspace()
    assert all(e <= s for e, s in zip(ends, starts[1:], strict=False)), "tokens overlap or go backwards"


@FUZZ
@given(text=texts)
def test_tokenize_offsets_are_valid(text: str) -> None:
    assert_valid_tokens(text, strip_boilerplate=True)
    assert_valid_tokens(text, strip_boilerplate=False)
    again = tokenize(text)
    assert np.array_equal(again.hashes, tokenize(text).hashes)  # deterministic


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=texts, other=texts, step=st.integers(1, 20))
def test_pipeline_sketches_anything(text: str, other: str, step: int) -> None:
    s = PIPELINE.settings
    art = PIPELINE.article(text, step)
    n = len(art.tokens)
    assert art.shingles.dtype == np.uint32 and art.shingles.size == max(0, n - s.shingle_size + 1)
    assert art.window_keys.dtype == np.uint64 and art.window_keys.ndim == 2
    assert art.window_keys.shape[1] == s.bands and (art.window_keys.shape[0] > 0) == (art.shingles.size > 0)
    assert art.topic_keys.size == (s.topic_perm if n else 0)
    prints = PIPELINE.stories([text, other])
    assert len(prints) == 2
    assert np.array_equal(prints[0].tokens, art.tokens.hashes)
    assert prints[0].band_keys.dtype == np.uint64
    assert np.array_equal(prints[0].band_keys, PIPELINE.story(text).band_keys)  # batching changes nothing
