"""Stage 2, prints: every document's token hashes and the LSH band keys of its shingle windows.

The one text core prints the documents: tokens hashed in de-duplication's
comparison form (``text.comparison_hashes``: OCR look-alike classes, wire
shorthand), then the window band keys of ``TextPipeline.window_keys_flat``.
The whole-document "topic" keys are left out: they find rewrites for Match,
but pair up any two articles on one subject, which dedup must not verify.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np

from wiretrace.config import Settings
from wiretrace.dedup.input import FILE_SHIFT, RECORD_MASK, Skipped, Task, numbered_lines, parse_record, raw_id
from wiretrace.dedup.params import DedupParams
from wiretrace.pipeline import TextPipeline
from wiretrace.text import comparison_hashes
from wiretrace.types import I64, U32, U64

PART_BITS = 4  # band keys are paired in 2**PART_BITS parts, in parallel


def _part(bands: U64) -> np.ndarray:
    """Which part of the key space a band key is in (its top PART_BITS bits)."""
    return (bands >> np.uint64(64 - PART_BITS)).astype(np.uint8)


def offsets(sizes: np.ndarray) -> I64:
    return np.concatenate(([0], np.cumsum(sizes, dtype=np.int64)))


@dataclass
class Printed:
    """Prints of many documents in flat arrays: cheap to pickle between processes and to concatenate.

    Document i has token hashes ``tokens[toff[i]:toff[i+1]]``. Its window band
    keys are the ``bands`` entries whose ``owner`` is i; entries are grouped by
    part of the key space (``bands[poff[p]:poff[p+1]]``, owners ascending in
    each), so buckets can be formed part by part in parallel without a global
    sort. A document may list a key twice (repeated text); pairing ignores it.
    """

    keys: I64  # doc keys (file_no << 40 | record_no)
    ids: list[str]
    tokens: U32  # in the comparison form (``text.comparison_hashes``)
    toff: I64
    variants: I64  # spelling variants of each document: how altered it is (``text.comparison_hashes``)
    bands: U64
    owner: I64
    poff: I64

    @staticmethod
    def build(keys: I64, ids: list[str], tokens: U32, toff: I64, variants: I64, bands: U64, owner: I64) -> Printed:
        part = _part(bands)
        order = np.argsort(part, kind="stable")
        poff = offsets(np.bincount(part, minlength=1 << PART_BITS))
        return Printed(keys, ids, tokens, toff, variants, bands[order], owner[order], poff)

    def select(self, mask: np.ndarray) -> Printed:
        """The documents where `mask` is True."""
        nt = np.diff(self.toff)
        keep = mask[self.owner]
        return Printed.build(
            self.keys[mask],
            [d for d, m in zip(self.ids, mask.tolist(), strict=True) if m],
            self.tokens[np.repeat(mask, nt)],
            offsets(nt[mask]),
            self.variants[mask],
            self.bands[keep],
            (np.cumsum(mask) - 1)[self.owner[keep]],
        )


def print_flat(
    pipeline: TextPipeline, keys: list[int], ids: list[str], texts: list[str], params: DedupParams
) -> tuple[Printed, list[int]]:
    """Prints of the texts with at least one shingle window, and the positions of those without."""
    tokens, toff, variants = comparison_hashes(texts, lookalikes=params.lookalikes, shorthand=params.shorthand)
    bands, boff = pipeline.window_keys_flat(tokens, toff)
    nb = np.diff(boff)
    good = nb > 0
    owner = np.repeat(np.arange(len(texts), dtype=np.int64), nb)
    printed = Printed.build(np.asarray(keys, dtype=np.int64), ids, tokens, toff, variants, bands, owner)
    return (printed if good.all() else printed.select(good)), np.flatnonzero(~good).tolist()


_PIPELINE: TextPipeline | None = None


def print_records(args: tuple[Settings, DedupParams, list[tuple[int, str, Any]]]) -> tuple[Printed, list[Skipped]]:
    """Worker: parse and print a chunk of records; returns flat arrays, not one object per document."""
    global _PIPELINE
    settings, params, chunk = args
    if _PIPELINE is None:
        _PIPELINE = TextPipeline(settings.index)
    keys: list[int] = []
    paths: list[str] = []
    ids: list[str] = []
    texts: list[str] = []
    skipped: list[Skipped] = []
    for key, path, payload in chunk:
        parsed = parse_record(payload, params)
        if isinstance(parsed, str):
            skipped.append(Skipped(path, key & RECORD_MASK, raw_id(payload, params), parsed))
        else:
            keys.append(key)
            paths.append(path)
            ids.append(parsed[0])
            texts.append(parsed[1])
    printed, short = print_flat(_PIPELINE, keys, ids, texts, params)
    for i in short:  # fewer words than one shingle: nothing to compare
        skipped.append(Skipped(paths[i], keys[i] & RECORD_MASK, ids[i], "too short"))
    return printed, skipped


def print_task(args: tuple[Settings, DedupParams, Task]) -> tuple[Printed, list[Skipped], int, int]:
    """Worker: `print_records` of one task, and (file number, lines read) when it read a byte range itself.

    Keys and skipped record numbers of a range count lines from its start; the
    parent, which sees the ranges in order, adds the lines of the ones before.
    The bytes are decoded and split into lines as ``_open`` reads the whole file
    (UTF-8 with replacement, universal newlines): a range ends on "\\n", which is
    never inside a UTF-8 sequence or between "\\r" and "\\n".
    """
    settings, params, task = args
    if task[0] == "records":
        return (*print_records((settings, params, task[1])), -1, 0)
    _, file_no, path, lo, hi = task
    with open(path, "rb") as fh:
        fh.seek(lo)
        text = fh.read(hi - lo).decode("utf-8", errors="replace")
    lines = io.StringIO(text, newline=None).readlines()
    printed, skipped = print_records((settings, params, list(numbered_lines(file_no << FILE_SHIFT, path, lines))))
    return printed, skipped, file_no, len(lines)
