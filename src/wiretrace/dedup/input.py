"""Stage 1, input: the records of JSONL, JSONL.gz and Parquet files, and why a record is skipped.

Documents are numbered by position: ``file_no << FILE_SHIFT | record_no``, so
the output order and duplicate-id resolution (first occurrence wins) are the
same in every engine. Plain JSONL is cut into byte ranges that workers read
themselves (``print_tasks``); other inputs are read here and sent in chunks.
"""

from __future__ import annotations

import gzip
import json
import mmap
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Any

from wiretrace.dedup.params import DedupParams
from wiretrace.types import MissingDependencyError

FILE_SHIFT = 40


RECORD_MASK = (1 << FILE_SHIFT) - 1


CHUNK = 2000  # documents per worker task: numpy batches, few pickles


@dataclass(frozen=True, slots=True)
class Skipped:
    file: str
    record: int
    id: str | None
    reason: str


def parse_record(payload: Any, params: DedupParams) -> tuple[str, str] | str:
    """(id, text) of one record (a JSON line or a mapping), or why it is skipped."""
    if isinstance(payload, str):
        try:
            payload = json.loads(payload)
        except json.JSONDecodeError:
            return "not JSON"
    if not isinstance(payload, dict):
        return "not a JSON object"
    doc_id, text = payload.get(params.id_field), payload.get(params.text_field)
    if doc_id is None or doc_id == "" or isinstance(doc_id, dict | list):
        return "no id"
    if text is None:
        return "no text"
    if not isinstance(text, str):
        return "text is not a string"
    if not text.strip():
        return "empty text"
    return str(doc_id), text


def raw_id(payload: Any, params: DedupParams) -> str | None:
    if isinstance(payload, str):
        try:
            payload = json.loads(payload)
        except json.JSONDecodeError:
            return None
    value = payload.get(params.id_field) if isinstance(payload, dict) else None
    return None if value is None else str(value)


# The names `wiretrace index` reads, so the file it takes is deduplicated as it is.
ID_FIELDS = ("id", "story_id", "doc_id", "newid")
TEXT_FIELDS = ("text", "body")


def parquet_file(path: str) -> Any:
    """A pyarrow ParquetFile; MissingDependencyError (with the install command) without pyarrow."""
    try:
        import pyarrow.parquet as pq  # type: ignore[import-untyped]
    except ModuleNotFoundError as err:
        if err.name is None or not err.name.startswith("pyarrow"):
            raise
        raise MissingDependencyError("Parquet input", "pyarrow", "spark") from None
    return pq.ParquetFile(path)


def first_record_fields(path: str, probe_lines: int = 100) -> list[str]:
    """The field names of the first JSON object among a JSONL file's first lines, or of a Parquet schema."""
    if input_kind(path) == "parquet":
        return list(parquet_file(path).schema_arrow.names)
    with _open(path) as fh:
        for _, line in zip(range(probe_lines), fh, strict=False):
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(obj, dict):
                return list(obj)
    return []


def choose_fields(path: str, id_field: str | None, text_field: str | None) -> tuple[str, str]:
    """The id and text fields to read: those given, else the first of ID_FIELDS / TEXT_FIELDS the
    file's first record has. ValueError, naming the fields it does have, when one cannot be found."""
    has = first_record_fields(path)
    chosen = []
    for given, names, flag in ((id_field, ID_FIELDS, "--id-field"), (text_field, TEXT_FIELDS, "--text-field")):
        if given is not None:
            if has and given not in has:
                raise ValueError(f"{path}: its first record has no field {given!r} ({flag}); it has {', '.join(has)}")
            chosen.append(given)
            continue
        found = next((n for n in names if n in has), None)
        if found is None:
            listed = ", ".join(has) if has else "none (no JSON object in its first lines)"
            raise ValueError(
                f"{path}: no field named {' or '.join(names)} in its first record (its fields: {listed}); "
                f"name the one to use with {flag}"
            )
        chosen.append(found)
    return chosen[0], chosen[1]


def input_kind(path: str) -> str:
    name = path.lower()
    if name.endswith(".parquet") or name.endswith(".pq"):
        return "parquet"
    if name.endswith(".jsonl") or name.endswith(".jsonl.gz") or name.endswith(".json") or name.endswith(".json.gz"):
        return "jsonl"
    raise ValueError(f"{path}: expected .jsonl, .jsonl.gz or .parquet")


def _open(path: str) -> IO[str]:
    if path.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8", errors="replace")
    return open(path, encoding="utf-8", errors="replace")


def read_records(paths: Sequence[str], params: DedupParams) -> Iterator[tuple[int, str, Any]]:
    """(doc key, file, payload) of every record: a JSON line, or a {id, text} mapping from Parquet."""
    for file_no, path in enumerate(paths):
        yield from file_records(file_no, path, params)


def file_records(file_no: int, path: str, params: DedupParams) -> Iterator[tuple[int, str, Any]]:
    base = file_no << FILE_SHIFT
    if input_kind(path) == "jsonl":
        with _open(path) as fh:
            yield from numbered_lines(base, path, fh)
    else:
        pf = parquet_file(path)
        names = set(pf.schema_arrow.names)
        cols = [c for c in (params.id_field, params.text_field) if c in names]
        row = 0
        for batch in pf.iter_batches(columns=cols, batch_size=4096):
            for rec in batch.to_pylist():
                yield base | row, path, rec
                row += 1


def numbered_lines(base: int, path: str, lines: Iterable[str]) -> Iterator[tuple[int, str, Any]]:
    for line_no, line in enumerate(lines):
        if line.strip():
            yield base | line_no, path, line


RANGE_BYTES = 4 << 20  # bytes of plain JSONL per print task (~1,600 news articles)


# A print task: ("records", records) read by the parent (gzip, Parquet), or ("range", file_no, path, lo, hi),
# bytes of a plain JSONL file that the worker reads itself, so the parent never handles the text.
Task = tuple[Any, ...]


def print_tasks(paths: Sequence[str], params: DedupParams, range_bytes: int = RANGE_BYTES) -> Iterator[Task]:
    """Print tasks in input order; plain JSONL is cut into byte ranges that end on a line break."""
    for file_no, path in enumerate(paths):
        if input_kind(path) == "jsonl" and not path.lower().endswith(".gz"):
            size = os.path.getsize(path)
            if size == 0:
                continue
            with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
                lo = 0
                while lo < size:
                    cut = data.find(b"\n", lo + range_bytes) if lo + range_bytes < size else -1
                    hi = size if cut < 0 else cut + 1
                    yield ("range", file_no, path, lo, hi)
                    lo = hi
        else:
            for chunk in chunked(file_records(file_no, path, params), CHUNK):
                yield ("records", chunk)


def chunked(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
