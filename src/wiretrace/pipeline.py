"""The one text-and-signature core shared by the server and the batch engines.

text -> tokens -> shingles -> windows -> MinHash signatures -> LSH band keys.

Two sketches go into the index:

* window sketches find copied text: stories are cut into adjacent windows of
  shingles (cheap to store), articles into overlapping ones (one every
  ``query_step`` shingles), so a copied run always has a query window lined up
  with a story window, however small the excerpt is relative to either text;
* one whole-document sketch over the set of words finds rewrites, which keep
  the vocabulary of their source but few of its word sequences;
* term postings find short rewrites (a news brief: the lead's names, figures
  and short phrases in 40 words), whose word set is too small a part of a
  600-word story for the whole-document sketch: one in ``term_sample`` of a
  story's distinct word pairs (chosen by hash, so an article knows which of its
  own to look up) is posted under its own key, and an article asks for its
  rarest sampled pairs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from wiretrace.config import IndexSettings
from wiretrace.shingling import I64, U32, U64, fmix64, shingle_hashes, sorted_unique, window_bounds
from wiretrace.signatures import MinHasher
from wiretrace.text import Tokens, token_hashes_batch, tokenize
from wiretrace.types import StoryPrint

_ONE = np.zeros(1, dtype=np.int64)
_TERM_SALT = np.uint64(0x7465726D) << np.uint64(32)  # "term": term keys never equal a band key by design


_WORD_SALT = np.uint32(0x776F7264)  # "word": a word's term differs from any pair's by design


def word_terms(tokens: U32) -> U32:
    """Words as terms of the document-frequency table (beside word pairs)."""
    return tokens ^ _WORD_SALT


def document_terms(tokens: U32) -> U32:
    """What the document-frequency table counts of a story: its word pairs and its words."""
    return np.concatenate((shingle_hashes(tokens, 2), word_terms(tokens)))


def sampled(bigrams: U32, sample: int) -> np.ndarray:
    """Which word pairs are posted (by hash: the same pairs in every text)."""
    if sample <= 0:
        return np.zeros(bigrams.size, dtype=bool)
    mask: np.ndarray = bigrams % np.uint32(sample) == 0
    return mask


def term_keys(bigrams: U32) -> U64:
    """Index keys of word pairs (distinct, sorted by pair hash)."""
    return fmix64(sorted_unique(bigrams).astype(np.uint64) | _TERM_SALT)


@dataclass(frozen=True, slots=True)
class ArticlePrint:
    """An article ready to match."""

    tokens: Tokens
    shingles: U32
    window_keys: U64  # (windows, bands)
    topic_keys: U64  # (topic bands,)
    bigrams: U32  # the word pairs, one per token but the last


class TextPipeline:
    """Prints of stories (to index) and of articles (to match) under one set of index settings.

    The server and both de-duplication engines print through this one class,
    so a story indexed by any of them has the same keys.
    """

    def __init__(self, settings: IndexSettings) -> None:
        self.settings = settings
        self.windows = MinHasher(settings.num_perm, settings.bands, settings.rows, settings.seed)
        self.topic = MinHasher(settings.topic_perm, settings.topic_perm, 1, settings.seed + 1, salt=1)

    def shingles(self, tokens: U32) -> U32:
        return shingle_hashes(tokens, self.settings.shingle_size)

    def _window_keys(self, shingles: U32, step: int) -> U64:
        starts, ends = window_bounds(shingles.size, self.settings.window, step)
        return self.windows.keys(shingles, starts, ends)

    def _topic_keys(self, tokens: U32) -> U64:
        if tokens.size == 0:
            return np.empty(0, dtype=np.uint64)
        # The whole-document sketch is of the set of words; a minimum ignores repeats.
        return self.topic.keys(tokens, _ONE, np.array([tokens.size])).reshape(-1)

    def story(self, body: str) -> StoryPrint:
        return self.stories([body])[0]

    def stories(self, bodies: list[str]) -> list[StoryPrint]:
        """Many stories at once: every stage runs once over the whole batch.

        Each print equals ``story(body)`` taken alone; the prints are views into
        two arrays of the batch.
        """
        n = len(bodies)
        if n == 1:  # one story: the same steps without the batch bookkeeping (fewer numpy calls)
            tokens = token_hashes_batch(bodies)[0]
            keys = self._window_keys(self.shingles(tokens), self.settings.window).reshape(-1)
            bigrams = shingle_hashes(tokens, 2)
            terms = term_keys(bigrams[sampled(bigrams, self.settings.term_sample)])
            return [StoryPrint(tokens=tokens, band_keys=np.concatenate((keys, self._topic_keys(tokens), terms)))]
        tokens, toff, window_keys, koff = self.window_prints(bodies)
        topic, has_topic = self._topic_keys_batch(tokens, toff)
        # Each story's keys: its window keys, then its whole-document keys (if it has words).
        n_topic = has_topic.astype(np.int64) * self.settings.topic_perm
        n_win = np.diff(koff)
        out_off = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(n_win + n_topic, out=out_off[1:])
        keys = np.empty(int(out_off[-1]), dtype=np.uint64)
        win_pos = np.repeat(out_off[:-1] - koff[:-1], n_win) + np.arange(int(koff[-1]), dtype=np.int64)
        keys[win_pos] = window_keys
        topic_start = out_off[:-1] + n_win
        topic_pos = np.repeat(topic_start[has_topic], self.settings.topic_perm) + np.tile(
            np.arange(self.settings.topic_perm, dtype=np.int64), int(has_topic.sum())
        )
        keys[topic_pos] = topic
        terms, term_off = self._term_keys_batch(tokens, toff)
        t, k, e = toff.tolist(), out_off.tolist(), term_off.tolist()
        return [
            StoryPrint(
                tokens=tokens[t[i] : t[i + 1]],
                band_keys=np.concatenate((keys[k[i] : k[i + 1]], terms[e[i] : e[i + 1]])),
            )
            for i in range(n)
        ]

    def _term_keys_batch(self, tokens: U32, toff: I64) -> tuple[U64, I64]:
        """``term_keys`` of each text's sampled word pairs, flat, with offsets."""
        n = toff.size - 1
        if self.settings.term_sample <= 0 or tokens.size < 2:
            return np.empty(0, dtype=np.uint64), np.zeros(n + 1, dtype=np.int64)
        bigrams = shingle_hashes(tokens, 2)  # pair p starts at token p; those across two texts are dropped
        owner = np.repeat(np.arange(n, dtype=np.int64), np.diff(toff))[:-1]
        keep = sampled(bigrams, self.settings.term_sample) & (np.arange(bigrams.size) + 1 < toff[1:][owner])
        codes = sorted_unique(owner[keep].astype(np.uint64) << np.uint64(32) | bigrams[keep].astype(np.uint64))
        off = np.searchsorted(codes >> np.uint64(32), np.arange(n + 1, dtype=np.uint64))
        return fmix64((codes & np.uint64(0xFFFFFFFF)) | _TERM_SALT), off.astype(np.int64)

    def _topic_keys_batch(self, tokens: U32, toff: I64) -> tuple[U64, npt.NDArray[np.bool_]]:
        """``_topic_keys`` of every text with words, flat, and which texts have words.

        A minimum over a text's tokens is the minimum over its set of words, so the tokens go
        in as they are: no per-text ``np.unique`` and no sort of the whole batch.
        """
        n_tok = np.diff(toff)
        has = n_tok > 0
        if not bool(has.any()):
            return np.empty(0, dtype=np.uint64), has
        return self.topic.keys(tokens, toff[:-1][has], toff[1:][has]).reshape(-1), has

    def window_keys_of(self, story: StoryPrint) -> U64:
        """A story print's window band keys (stored first; its whole-document and term keys follow)."""
        n_shingles = max(0, story.tokens.size - self.settings.shingle_size + 1)
        n_windows = window_bounds(n_shingles, self.settings.window, self.settings.window)[0].size
        return story.band_keys[: n_windows * self.settings.bands]

    def article(self, text: str, query_step: int) -> ArticlePrint:
        tokens = tokenize(text)
        sh = self.shingles(tokens.hashes)
        return ArticlePrint(
            tokens=tokens,
            shingles=sh,
            window_keys=self._window_keys(sh, query_step),
            topic_keys=self._topic_keys(tokens.hashes),
            bigrams=shingle_hashes(tokens.hashes, 2),
        )

    def window_prints(self, bodies: list[str]) -> tuple[U32, I64, U64, I64]:
        """Token hashes and story window band keys of many texts, flat: (tokens, token offsets, keys, key offsets).

        Text i has ``tokens[toff[i]:toff[i+1]]`` (= ``story(body).tokens``) and
        ``keys[koff[i]:koff[i+1]]`` (= ``window_keys_of(story(body))``). No
        whole-document keys and no per-text arrays: archive de-duplication needs
        neither, and printing millions of texts is its main cost.
        """
        tokens, toff = token_hashes_batch(bodies)
        return (tokens, toff, *self.window_keys_flat(tokens, toff))

    def window_keys_flat(self, tokens: U32, toff: I64) -> tuple[U64, I64]:
        """The story window band keys of the texts whose token hashes are ``tokens[toff[i]:toff[i+1]]``, flat:
        (keys, key offsets). De-duplication hashes its tokens in its own comparison form first."""
        k, size = self.settings.shingle_size, self.settings.window
        n_tok = np.diff(toff)
        n_sh = np.maximum(n_tok - k + 1, 0)
        # Hash a shingle at every token position: text i's shingles are flat[toff[i] : toff[i] + n_sh[i]]
        # (the positions whose shingle would run into the next text are never read).
        flat = shingle_hashes(tokens, k) if tokens.size >= k else np.empty(0, np.uint32)
        # window_bounds(m, size, size) for every text at once.
        full = np.where(n_sh > size, (n_sh - size) // size + 1, (n_sh > 0).astype(np.int64))
        tail = (n_sh > size) & ((full - 1) * size + size < n_sh)
        n_win = full + tail
        owner = np.repeat(np.arange(n_tok.size), n_win)
        rank = np.arange(int(n_win.sum()), dtype=np.int64) - np.repeat(np.cumsum(n_win) - n_win, n_win)
        starts = np.where(rank < full[owner], rank * size, n_sh[owner] - size)
        ends = starts + np.minimum(n_sh[owner], size)
        base = toff[:-1][owner]
        keys = self.windows.keys(flat, starts + base, ends + base)
        koff = np.concatenate(([0], np.cumsum(n_win * self.settings.bands)))
        return keys.reshape(-1), koff
