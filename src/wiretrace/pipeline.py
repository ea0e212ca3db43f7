"""The one text-and-signature core shared by the server and the batch engines.

text -> tokens -> shingles -> windows -> MinHash signatures -> LSH band keys.
Stories are cut into adjacent windows (cheap to store); articles into
overlapping ones (one every ``query_step`` shingles), so a copied run of text
always has a query window lined up with a story window.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wiretrace.config import IndexSettings
from wiretrace.shingling import U32, U64, shingle_hashes, window_bounds
from wiretrace.signatures import MinHasher
from wiretrace.store import StoryPrint
from wiretrace.text import Tokens, tokenize


@dataclass(frozen=True, slots=True)
class ArticlePrint:
    """An article ready to match: tokens (for offsets), shingles and band keys."""

    tokens: Tokens
    shingles: U32
    band_keys: U64  # (windows, bands)


class TextPipeline:
    def __init__(self, settings: IndexSettings) -> None:
        self.settings = settings
        self.hasher = MinHasher(settings.num_perm, settings.bands, settings.rows, settings.seed)

    def shingles(self, text: str) -> tuple[Tokens, U32]:
        tokens = tokenize(text)
        return tokens, shingle_hashes(tokens.hashes, self.settings.shingle_size)

    def _band_keys(self, shingles: U32, step: int) -> U64:
        starts, ends = window_bounds(shingles.size, self.settings.window, step)
        return self.hasher.band_keys(self.hasher.signatures(shingles, starts, ends))

    def story(self, body: str) -> StoryPrint:
        tokens, sh = self.shingles(body)
        keys = self._band_keys(sh, self.settings.window)
        return StoryPrint(n_tokens=len(tokens), shingles=sh, band_keys=keys.reshape(-1))

    def stories(self, bodies: list[str]) -> list[StoryPrint]:
        """Many stories at once: signatures of all their windows in one pass."""
        shingled = [self.shingles(b) for b in bodies]
        size = self.settings.window
        all_starts: list[np.ndarray] = []
        all_ends: list[np.ndarray] = []
        offset = 0
        for _, sh in shingled:
            s, e = window_bounds(sh.size, size, size)
            all_starts.append(s + offset)
            all_ends.append(e + offset)
            offset += sh.size
        flat = np.concatenate([sh for _, sh in shingled]) if shingled else np.empty(0, np.uint32)
        counts = [s.size for s in all_starts]
        keys = self.hasher.band_keys(
            self.hasher.signatures(flat, np.concatenate(all_starts or [np.empty(0, np.int64)]), np.concatenate(all_ends or [np.empty(0, np.int64)]))
        )
        out: list[StoryPrint] = []
        row = 0
        for (tokens, sh), c in zip(shingled, counts, strict=True):
            out.append(StoryPrint(n_tokens=len(tokens), shingles=sh, band_keys=keys[row : row + c].reshape(-1)))
            row += c
        return out

    def article(self, text: str, query_step: int) -> ArticlePrint:
        tokens, sh = self.shingles(text)
        return ArticlePrint(tokens=tokens, shingles=sh, band_keys=self._band_keys(sh, query_step))
