"""The one text-and-signature core shared by the server and the batch engines.

text -> tokens -> shingles -> windows -> MinHash signatures -> LSH band keys.

Two sketches go into the index:

* window sketches find copied text: stories are cut into adjacent windows of
  shingles (cheap to store), articles into overlapping ones (one every
  ``query_step`` shingles), so a copied run always has a query window lined up
  with a story window, however small the excerpt is relative to either text;
* one whole-document sketch over the set of words finds rewrites, which keep
  the vocabulary of their source but few of its word sequences.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wiretrace.config import IndexSettings
from wiretrace.shingling import I64, U32, U64, shingle_hashes, window_bounds
from wiretrace.signatures import MinHasher
from wiretrace.store import StoryPrint
from wiretrace.text import Tokens, token_hashes_batch, tokenize

_ONE = np.zeros(1, dtype=np.int64)


@dataclass(frozen=True, slots=True)
class ArticlePrint:
    """An article ready to match."""

    tokens: Tokens
    shingles: U32
    window_keys: U64  # (windows, bands)
    topic_keys: U64  # (topic bands,)


class TextPipeline:
    def __init__(self, settings: IndexSettings) -> None:
        self.settings = settings
        self.windows = MinHasher(settings.num_perm, settings.bands, settings.rows, settings.seed)
        self.topic = MinHasher(settings.topic_perm, settings.topic_perm, 1, settings.seed + 1, salt=1)

    def shingles(self, tokens: U32) -> U32:
        return shingle_hashes(tokens, self.settings.shingle_size)

    def _window_keys(self, shingles: U32, step: int) -> U64:
        starts, ends = window_bounds(shingles.size, self.settings.window, step)
        return self.windows.band_keys(self.windows.signatures(shingles, starts, ends))

    def _topic_keys(self, tokens: U32) -> U64:
        if tokens.size == 0:
            return np.empty(0, dtype=np.uint64)
        words = np.unique(tokens)
        return self.topic.band_keys(self.topic.signatures(words, _ONE, np.array([words.size]))).reshape(-1)

    def story(self, body: str) -> StoryPrint:
        return self.stories([body])[0]

    def stories(self, bodies: list[str]) -> list[StoryPrint]:
        """Many stories at once: the window signatures of all of them in one pass."""
        flat_tokens, toff = token_hashes_batch(bodies)
        tokens = [flat_tokens[toff[i] : toff[i + 1]] for i in range(len(bodies))]
        shingled = [self.shingles(t) for t in tokens]
        size = self.settings.window
        bounds = [window_bounds(sh.size, size, size) for sh in shingled]
        offsets = np.cumsum([0] + [sh.size for sh in shingled])
        flat = np.concatenate(shingled) if shingled else np.empty(0, np.uint32)
        starts = np.concatenate([s + o for (s, _), o in zip(bounds, offsets, strict=False)] or [np.empty(0, np.int64)])
        ends = np.concatenate([e + o for (_, e), o in zip(bounds, offsets, strict=False)] or [np.empty(0, np.int64)])
        keys = self.windows.band_keys(self.windows.signatures(flat, starts, ends))
        out: list[StoryPrint] = []
        row = 0
        for t, (s, _) in zip(tokens, bounds, strict=True):
            window_keys = keys[row : row + s.size].reshape(-1)
            row += s.size
            out.append(StoryPrint(tokens=t, band_keys=np.concatenate((window_keys, self._topic_keys(t)))))
        return out

    def window_keys_of(self, story: StoryPrint) -> U64:
        """A story print's window band keys without its whole-document ones (stored last)."""
        topic = self.settings.topic_perm if story.tokens.size else 0
        return story.band_keys[: story.band_keys.size - topic]

    def article(self, text: str, query_step: int) -> ArticlePrint:
        tokens = tokenize(text)
        sh = self.shingles(tokens.hashes)
        return ArticlePrint(
            tokens=tokens,
            shingles=sh,
            window_keys=self._window_keys(sh, query_step),
            topic_keys=self._topic_keys(tokens.hashes),
        )

    def window_prints(self, bodies: list[str]) -> tuple[U32, I64, U64, I64]:
        """Token hashes and story window band keys of many texts, flat: (tokens, token offsets, keys, key offsets).

        Text i has ``tokens[toff[i]:toff[i+1]]`` (= ``story(body).tokens``) and
        ``keys[koff[i]:koff[i+1]]`` (= ``window_keys_of(story(body))``). No
        whole-document keys and no per-text arrays: archive de-duplication needs
        neither, and printing millions of texts is its main cost.
        """
        tokens, toff = token_hashes_batch(bodies)
        k, size = self.settings.shingle_size, self.settings.window
        n_tok = np.diff(toff)
        n_sh = np.maximum(n_tok - k + 1, 0)
        # Shingle j of text i starts at token toff[i] + j: hash every position, keep those inside a text.
        flat = shingle_hashes(tokens, k) if tokens.size >= k else np.empty(0, np.uint32)
        valid = np.repeat(toff[:-1], n_sh) + (
            np.arange(int(n_sh.sum()), dtype=np.int64) - np.repeat(np.cumsum(n_sh) - n_sh, n_sh)
        )
        shingles = flat[valid]
        sh_off = np.concatenate(([0], np.cumsum(n_sh)))
        # window_bounds(m, size, size) for every text at once.
        full = np.where(n_sh > size, (n_sh - size) // size + 1, (n_sh > 0).astype(np.int64))
        tail = (n_sh > size) & ((full - 1) * size + size < n_sh)
        n_win = full + tail
        owner = np.repeat(np.arange(n_tok.size), n_win)
        rank = np.arange(int(n_win.sum()), dtype=np.int64) - np.repeat(np.cumsum(n_win) - n_win, n_win)
        starts = np.where(rank < full[owner], rank * size, n_sh[owner] - size)
        ends = starts + np.minimum(n_sh[owner], size)
        keys = self.windows.band_keys(self.windows.signatures(shingles, starts + sh_off[owner], ends + sh_off[owner]))
        koff = np.concatenate(([0], np.cumsum(n_win * self.settings.bands)))
        return tokens, toff, keys.reshape(-1), koff
