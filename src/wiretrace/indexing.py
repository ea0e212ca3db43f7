"""Sending a JSONL file of stories to a server, as `wiretrace index` and `wiretrace eval` do.

What a person needs from it: every line that was not indexed, named as
FILE:LINE with the reason (a bad line never stops the rest); and, if the run
is cut short, how much of the file is safely stored. So the file goes in
several IndexStories streams of at most ``stream_size`` stories, each
acknowledged (durable) on its own, and the report says up to which line the
acknowledged ones reach.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from wiretrace.client import WiretraceClient
from wiretrace.client.errors import MessageTooLarge
from wiretrace.corpus import JsonLine, ReadError, missing_story_fields, read_jsonl_lines, story_from_json
from wiretrace.types import StoryRecord

STREAM_SIZE = 5000
# A stream's stories are kept until it is acknowledged (to re-send them if the server's message limit
# turns out smaller than ours): this bounds that memory when stories are large.
STREAM_CHARS = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class LineRejected:
    """A line not indexed: its number (from 1), the story id if it had one, and why."""

    line: int
    story_id: str
    reason: str


@dataclass
class IndexReport:
    path: str
    indexed: int = 0
    rejected: list[LineRejected] = field(default_factory=list)
    undated: list[LineRejected] = field(default_factory=list)  # indexed, but their time could not be read
    acknowledged_line: int = 0  # every line up to this one is indexed or rejected, for good
    in_flight: tuple[int, int] | None = None  # first and last line of the stream not yet acknowledged
    read_error: str = ""

    def where(self, line: int) -> str:
        return f"{self.path}:{line}"


class Interrupted(Exception):
    """Ctrl-C while indexing; carries the report of what was acknowledged."""

    def __init__(self, report: IndexReport) -> None:
        super().__init__("interrupted")
        self.report = report


def index_file(
    client: WiretraceClient,
    path: str | Path,
    *,
    from_line: int = 1,
    stream_size: int = STREAM_SIZE,
    timeout: float | None = None,
    progress: bool = True,
) -> IndexReport:
    """Index the stories of `path`; Interrupted (with the report so far) on Ctrl-C."""
    report = IndexReport(str(path))
    lines = (line for line in read_jsonl_lines(path) if line.number >= from_line)
    done = False
    bar = tqdm(unit=" stories", desc="indexing", file=sys.stderr, disable=None if progress else True)
    chunk: list[tuple[int, StoryRecord]] = []
    read = [0, 0]  # first and last line read for the current stream

    def stream() -> Iterator[StoryRecord]:
        """The next stream's stories, noting each one's line in `chunk` and rejecting bad lines on the way."""
        nonlocal done
        chars = 0
        while len(chunk) < stream_size and chars < STREAM_CHARS:
            try:
                line: JsonLine | None = next(lines, None)
            except ReadError as exc:
                report.read_error = str(exc)
                line = None
            if line is None:
                done = True
                return
            read[0] = read[0] or line.number
            read[1] = line.number
            problem = line.problem if line.obj is None else missing_story_fields(line.obj)
            if problem or line.obj is None:
                report.rejected.append(LineRejected(line.number, "", problem or "not a story"))
                continue
            bad_time: list[str] = []
            record = story_from_json(line.obj, bad_time)
            if bad_time:
                report.undated.extend(LineRejected(line.number, record.story_id, p) for p in bad_time)
            chunk.append((line.number, record))
            chars += len(record.body)
            bar.update()
            yield record

    # A file's stories are read a stream at a time and sent many to a message (a list): a bulk
    # load costs the server less. Stdin's go one by one as they arrive (an iterator), so a live
    # feed is never held back.
    live = str(path) == "-"

    def stories(first: list[StoryRecord]) -> Iterable[StoryRecord]:
        rest = itertools.chain(first, stream())
        return rest if live else list(rest)

    try:
        with bar:
            while not done:
                chunk.clear()
                read[0] = 0
                try:
                    result = client.index_stories(stories([]), timeout=timeout)
                except MessageTooLarge as exc:
                    if not exc.by_server or exc.limit >= client.max_message_bytes:
                        raise
                    # The server's limit is below ours: hold stories to it (they are rejected, by line) and
                    # send this stream again. Stories it had committed are replaced by themselves.
                    client.max_message_bytes = exc.limit
                    result = client.index_stories(stories([r for _, r in chunk]), timeout=timeout)
                report.indexed += result.indexed
                report.rejected.extend(
                    LineRejected(chunk[r.position][0], r.story_id, r.reason) for r in result.rejected
                )
                report.acknowledged_line = read[1]
    except KeyboardInterrupt:
        if read[0]:
            report.in_flight = (read[0], read[1])
        raise Interrupted(report) from None
    report.rejected.sort(key=lambda r: r.line)
    return report
