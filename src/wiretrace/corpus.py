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
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
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
# Dates with dots are written day first wherever they are used (Europe, South Asia: COUNTER's
# "01.12.14" is 1 December 2014); slashes are not read, as their order differs by country.
_DOTTED_DATE = re.compile(r"(\d{1,2})\.(\d{1,2})\.(\d{4}|\d{2})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?")


def open_text(path: str | Path) -> IO[str]:
    """Open .jsonl or .jsonl.gz (or '-' for stdin) as text."""
    if str(path) == "-":
        import sys

        return io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8")
    p = Path(path)
    if p.suffix == ".gz":
        return gzip.open(p, "rt", encoding="utf-8")
    return p.open("r", encoding="utf-8")


def open_binary(path: str | Path) -> IO[bytes]:
    """Open .jsonl or .jsonl.gz (or '-' for stdin) as bytes, so each line is decoded on its own."""
    if str(path) == "-":
        import sys

        return sys.stdin.buffer
    p = Path(path)
    if p.suffix == ".gz":
        return gzip.open(p, "rb")  # type: ignore[return-value]  # a GzipFile is a binary IO
    return p.open("rb")


class ReadError(ValueError):
    """The file cannot be read on from some line (a truncated or corrupt .gz, an I/O error)."""


@dataclass(frozen=True, slots=True)
class JsonLine:
    """One non-blank line of a JSONL file: its object, or the reason it has none.

    `number` counts every line from 1, blank ones included, as editors do: the
    one numbering the CLI reports positions in.
    """

    number: int
    obj: dict[str, Any] | None
    problem: str = ""


def _json_problem(exc: json.JSONDecodeError) -> str:
    what = exc.msg.removesuffix(" at").removesuffix(":")
    hint = " (is the line cut short?)" if what.startswith("Unterminated") or what.startswith("Expecting") else ""
    return f"not valid JSON at column {exc.colno}: {what}{hint}"


def read_jsonl_lines(path: str | Path) -> Iterator[JsonLine]:
    """Every non-blank line of a JSONL file, a bad one (not UTF-8, not JSON, not an
    object) with its problem instead of stopping the read. ReadError when the
    file itself cannot be read on."""
    number = 0
    try:
        with open_binary(path) as fh:
            for number, raw in enumerate(fh, 1):
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    problem = f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})"
                    yield JsonLine(number, None, problem)
                    continue
                line = line.strip().lstrip("\ufeff")
                if not line:
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    yield JsonLine(number, None, _json_problem(exc))
                    continue
                if not isinstance(obj, dict):
                    yield JsonLine(number, None, f"expected a JSON object {{...}}, not a {type(obj).__name__}")
                    continue
                yield JsonLine(number, obj)
    except (OSError, EOFError, zlib.error) as exc:
        where = f"after line {number}" if number else "at all"
        raise ReadError(f"{path}: cannot be read {where}: {exc}") from exc


def read_jsonl(path: str | Path) -> Iterator[dict[str, Any]]:
    """The objects of a JSONL file; ValueError (naming FILE:LINE) at the first bad line."""
    for line in read_jsonl_lines(path):
        if line.obj is None:
            raise ValueError(f"{path}:{line.number}: {line.problem}")
        yield line.obj


def _first(obj: dict[str, Any], names: tuple[str, ...]) -> Any:
    for n in names:
        if obj.get(n) not in (None, ""):
            return obj[n]
    return None


def parse_time_ns(value: Any) -> int | None:
    """A publication time in ns since the epoch: ISO 8601 (a time without a zone is UTC),
    Reuters-21578's "26-FEB-1987 15:01:01.79" (trailing codes ignored), a day-first date with
    dots ("21.11.2026", "21.11.26 10:12"), or seconds since the epoch as a number. Empty means
    none; anything else is an error, not a silently undated story (retention would never delete
    it, and no window would admit it)."""
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
    dotted = _DOTTED_DATE.fullmatch(text)
    if dotted:
        day, month, year, hour, minute, second = (int(g or 0) for g in dotted.groups())
        if len(dotted[3]) == 2:
            year += 1900 if year >= 69 else 2000  # as strptime's %y (POSIX)
        with contextlib.suppress(ValueError):
            return datetime_ns(datetime(year, month, day, hour, minute, second))
    raise ValueError(
        f"{text!r} is not an ISO 8601 time (e.g. 2026-11-21T10:12:03Z), a day-first date with dots "
        "(21.11.2026), nor seconds since the epoch"
    )


def missing_story_fields(obj: dict[str, Any]) -> str | None:
    """Why an object cannot be a story because a field is absent (not merely empty), naming the accepted names."""
    for what, names in (("story id", _ID_FIELDS), ("text", _BODY_FIELDS)):
        if not any(n in obj for n in names):
            has = ", ".join(list(obj)[:8]) + (", ..." if len(obj) > 8 else "")
            return f"no {what}: expected a field named {' or '.join(names)}; this line has {has or 'no fields'}"
    return None


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
