"""Reading stories and queries from JSONL / JSONL.gz files.

Field names follow the shared evaluation sets and common news dumps; anything
not recognised goes into the story's metadata as a string.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from wiretrace.types import StoryRecord, datetime_ns

_ID_FIELDS = ("story_id", "id", "doc_id", "newid")
_BODY_FIELDS = ("body", "text")
_HEADLINE_FIELDS = ("headline", "title")
_TIME_FIELDS = ("published_at", "published", "date")
# Reuters-21578's dates, some with trailing codes ("27-MAR-1987 00:02:59.13RM"): the time is the prefix.
_DUMP_TIME = re.compile(r"(\d{1,2}-[A-Za-z]{3}-\d{4} +\d{1,2}:\d{2}:\d{2})(\.\d{1,6})?")


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
    """A publication time in ns since the epoch: ISO 8601 (a time without a zone is UTC),
    Reuters-21578's "26-FEB-1987 15:01:01.79" (trailing codes ignored), or seconds since the
    epoch as a number. Empty means none; anything else is an error, not a silently
    undated story (retention would never delete it, and no window would admit it)."""
    if value in (None, ""):
        return None
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a time")
    if isinstance(value, int | float):
        return int(value * 1_000_000_000)
    text = str(value).strip()
    try:
        return datetime_ns(datetime.fromisoformat(text))
    except ValueError:
        pass
    dump = _DUMP_TIME.match(text)
    if dump:
        with contextlib.suppress(ValueError):
            return datetime_ns(datetime.strptime(dump[1] + (dump[2] or ".0"), "%d-%b-%Y %H:%M:%S.%f"))
    raise ValueError(f"{text!r} is not an ISO 8601 time (e.g. 2026-11-21T10:12:03Z) nor seconds since the epoch")


def story_from_json(obj: dict[str, Any], bad_times: list[str] | None = None) -> StoryRecord:
    """A StoryRecord from a JSON object; missing fields are left empty for validation to judge.

    An unreadable publication time raises ValueError, unless `bad_times` is given: then the
    story is kept undated and the problem appended there (archive dumps hold such dates).
    """
    sid = _first(obj, _ID_FIELDS)
    try:
        published = parse_time_ns(_first(obj, _TIME_FIELDS))
    except ValueError as exc:
        problem = f"story {sid!r}: {'/'.join(_TIME_FIELDS)}: {exc}"
        if bad_times is None:
            raise ValueError(problem) from None
        bad_times.append(problem)
        published = None
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
        published_at_ns=published,
        metadata=metadata,
    )
