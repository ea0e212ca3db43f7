"""Reading stories from JSONL: the publication times news dumps write."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from wiretrace.corpus import parse_time_ns, story_from_json
from wiretrace.types import datetime_ns


def _ns(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, us: int = 0) -> int:
    return datetime_ns(datetime(year, month, day, hour, minute, second, us, tzinfo=UTC))


@pytest.mark.parametrize(
    ("written", "moment"),
    [
        ("2026-11-21T10:12:03Z", _ns(2026, 11, 21, 10, 12, 3)),
        ("2026-11-21", _ns(2026, 11, 21)),
        ("26-FEB-1987 15:01:01.79", _ns(1987, 2, 26, 15, 1, 1, 790_000)),
        ("01.12.14", _ns(2014, 12, 1)),  # day first: 1 December
        ("1.12.2014 10:30", _ns(2014, 12, 1, 10, 30)),
        ("21.11.26 10:12:03", _ns(2026, 11, 21, 10, 12, 3)),
        ("31.12.87", _ns(1987, 12, 31)),
        (1_700_000_000, 1_700_000_000 * 10**9),
    ],
)
def test_times_as_news_dumps_write_them(written: str | int, moment: int) -> None:
    assert parse_time_ns(written) == moment


@pytest.mark.parametrize("written", ["12/01/14", "31.02.14", "13.13.2014", "01.12", "yesterday", "2014-13-01"])
def test_ambiguous_or_impossible_times_are_errors_that_say_what_is_read(written: str) -> None:
    with pytest.raises(ValueError, match=r"is not an ISO 8601 time .* a day-first date with dots"):
        parse_time_ns(written)


def test_a_story_with_an_unreadable_time_is_kept_undated_only_when_asked() -> None:
    row = {"story_id": "s1", "body": "text", "date": "12/01/14"}
    problems: list[str] = []
    assert story_from_json(row, problems).published_at_ns is None
    assert problems and problems[0].startswith("story 's1': published_at/published/date: '12/01/14' is not")
    with pytest.raises(ValueError):
        story_from_json(row)
