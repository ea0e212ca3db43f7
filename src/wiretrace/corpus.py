"""Reading stories and queries from JSONL / JSONL.gz files.

Field names follow the shared evaluation sets and common news dumps; anything
not recognised goes into the story's metadata as a string.
"""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from wiretrace.types import StoryRecord

_ID_FIELDS = ("story_id", "id", "doc_id", "newid")
_BODY_FIELDS = ("body", "text")
_HEADLINE_FIELDS = ("headline", "title")
_TIME_FIELDS = ("published_at", "published", "date")
_TIME_FORMATS = ("%d-%b-%Y %H:%M:%S.%f", "%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d")


def open_text(path: str | Path) -> IO[str]:
    """Open .jsonl or .jsonl.gz (or '-' for stdin) as text."""
    if str(path) == "-":
        import sys

        return io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8")
    p = Path(path)
    if p.suffix == ".gz":
        return gzip.open(p, "rt", encoding="utf-8")
    return p.open("r", encoding="utf-8")


def read_jsonl(path: str | Path) -> Iterator[dict[str, Any]]:
    with open_text(path) as fh:
        for line_no, line in enumerate(fh, 1):
            line = line.strip()
            if not line:
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{line_no}: not JSON: {exc.msg}") from exc
            if not isinstance(obj, dict):
                raise ValueError(f"{path}:{line_no}: expected a JSON object")
            yield obj


def _first(obj: dict[str, Any], names: tuple[str, ...]) -> Any:
    for n in names:
        if obj.get(n) not in (None, ""):
            return obj[n]
    return None


def parse_time_ns(value: Any) -> int | None:
    if value in (None, ""):
        return None
    if isinstance(value, int | float):
        return int(value * 1_000_000_000)
    for fmt in _TIME_FORMATS:
        try:
            dt = datetime.strptime(str(value), fmt)
        except ValueError:
            continue
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        return int(dt.timestamp()) * 1_000_000_000 + dt.microsecond * 1000
    return None


def story_from_json(obj: dict[str, Any]) -> StoryRecord:
    """A StoryRecord from a JSON object; missing fields are left empty for validation to judge."""
    sid = _first(obj, _ID_FIELDS)
    used = {*_ID_FIELDS, *_BODY_FIELDS, *_HEADLINE_FIELDS, *_TIME_FIELDS, "source", "metadata"}
    metadata = {
        k: v if isinstance(v, str) else json.dumps(v, ensure_ascii=False) for k, v in obj.items() if k not in used
    }
    if isinstance(obj.get("metadata"), dict):
        metadata.update({str(k): str(v) for k, v in obj["metadata"].items()})
    return StoryRecord(
        story_id="" if sid is None else str(sid),
        body=str(_first(obj, _BODY_FIELDS) or ""),
        headline=str(_first(obj, _HEADLINE_FIELDS) or ""),
        source=str(obj.get("source") or ""),
        published_at_ns=parse_time_ns(_first(obj, _TIME_FIELDS)),
        metadata=metadata,
    )
