"""The embedded store: stories and their token hashes in SQLite (WAL mode).

SQLite is the system of record; the in-memory LSH index is rebuilt from the
band keys kept here. A batch of stories is one transaction committed with
``synchronous=FULL``, so once ``upsert`` returns the stories survive a
``kill -9`` or a power cut. Arrays are stored as raw little-endian bytes
(never pickle).

One connection writes (guarded by a lock); each reading thread gets its own
connection, which WAL lets run alongside the writer.

Every write transaction also appends one row to a change log (which story
numbers it added and removed), so several server processes on one data dir
can keep their in-memory indexes current: each applies the rows after the
last one it has seen. Rows older than ``CHANGE_RETENTION_S`` are pruned; a
process that falls further behind rebuilds its index.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from wiretrace.types import U32, StoreError, StoreFullError, StoreUnavailableError, StoryText

# Re-exported for code written before these moved to wiretrace.types.
from wiretrace.types import Candidate as Candidate
from wiretrace.types import SettingsMismatchError as SettingsMismatchError
from wiretrace.types import StoryPrint as StoryPrint
from wiretrace.types import StoryRecord as StoryRecord

SCHEMA_VERSION = "2"

log = logging.getLogger(__name__)


# Address space a reader may map (not memory it takes): SQLite's own cap applies.
READ_MMAP_BYTES = 1 << 30
# How long change-log rows are kept for other processes, which apply them within seconds (at
# every match, and every few seconds when idle). Short, because a replaced story's row holds
# its tokens: re-sending stories at full speed logs about 10 MB a second.
CHANGE_RETENTION_S = 60.0
_PRUNE_EVERY = 16  # write transactions between prunings of the change log
_MAX_VARIABLES = 900  # numbers bound per IN (...) query (SQLite's old default limit is 999)
# SQLite's primary result codes (sqlite3.Error.sqlite_errorcode & 0xFF).
_SQLITE_IOERR = 10
_SQLITE_FULL = 13
# An I/O error with less free space than this in the data dir's filesystem is a full disk.
_LOW_DISK_BYTES = 1 << 20
# Free pages handed back to the file system per step of `reclaim` (4 KiB each): the write
# lock is let go between steps, so ingest waits a fraction of a second at most.
_RECLAIM_PAGES = 2048


@dataclass(frozen=True, slots=True)
class Change:
    """One write transaction as the change log has it."""

    seq: int
    added: list[int]  # story numbers of the rows it inserted
    removed: list[tuple[int, U32]]  # number and tokens of each row it deleted or replaced


_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
-- What a Match reads of ~24 candidates comes first: SQLite reaches a column by walking the
-- row's overflow pages in order, so tokens placed after the body cost a page or two more per
-- candidate (stores made before this order keep theirs; only reads get slower).
CREATE TABLE IF NOT EXISTS stories (
    number INTEGER PRIMARY KEY AUTOINCREMENT,
    story_id TEXT NOT NULL UNIQUE,
    tokens BLOB NOT NULL,
    band_keys BLOB NOT NULL,
    headline TEXT NOT NULL,
    body TEXT NOT NULL,
    source TEXT NOT NULL,
    published_at_ns INTEGER,
    metadata TEXT NOT NULL
);
-- Retention's "oldest first" and GetStats' range, and (covering: number is the rowid) the
-- per-story attributes that filters mask hits with, read at start-up without touching rows.
CREATE INDEX IF NOT EXISTS stories_published ON stories(published_at_ns, source);
CREATE TABLE IF NOT EXISTS changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    added BLOB NOT NULL,
    removed BLOB NOT NULL,
    removed_sizes BLOB NOT NULL,
    removed_tokens BLOB NOT NULL
);
"""


def store_error(err: sqlite3.Error, path: Path) -> StoreError:
    """What a failed SQLite call means for the caller: a full disk (nothing of the write was kept;
    free space and send it again), or a store that cannot be used now (retry)."""
    code = (getattr(err, "sqlite_errorcode", None) or 0) & 0xFF
    try:
        low = shutil.disk_usage(path.parent).free < _LOW_DISK_BYTES
    except OSError:
        low = False
    if code == _SQLITE_FULL or (code == _SQLITE_IOERR and low):
        return StoreFullError(
            f"the disk holding the data dir {path.parent} is full ({err}): nothing of this write was stored; "
            "free space there and send it again (stories already acknowledged are intact and still match)"
        )
    return StoreUnavailableError(f"the store {path} failed ({err}); retry")


_STORY_COLUMNS = "story_id, headline, body, source, published_at_ns, metadata, tokens, band_keys"
_STORY_ROW = "(" + ",".join("?" * len(_STORY_COLUMNS.split(","))) + ")"
_MAX_ROWS_PER_INSERT = 1024


def _distinct_runs(
    stories: Sequence[tuple[StoryRecord, StoryPrint]], size: int
) -> Iterator[Sequence[tuple[StoryRecord, StoryPrint]]]:
    """Consecutive parts of at most `size` stories, each id once in a part (a re-sent id starts a
    new part, so it replaces the earlier one as if sent later)."""
    start, ids = 0, set[str]()
    for i, (rec, _) in enumerate(stories):
        if i - start >= size or rec.story_id in ids:
            yield stories[start:i]
            start, ids = i, set[str]()
        ids.add(rec.story_id)
    if start < len(stories):
        yield stories[start:]


def _u32(blob: bytes) -> U32:
    return np.frombuffer(blob, dtype="<u4").astype(np.uint32, copy=False)


class SQLiteStore:
    """Durable story store in ``DATA_DIR/wiretrace.db``."""

    FILENAME = "wiretrace.db"

    def __init__(self, data_dir: Path, index_fingerprint: str) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.path = data_dir / self.FILENAME
        self._local = threading.local()
        self._write_lock = threading.Lock()
        self._commits = 0
        self._writer = self._connect(creating=True)
        # Stories per INSERT: a server's whole batch, if this SQLite binds that many variables
        # (32,766 since 3.32, 999 before); more would only make longer statements to parse.
        variables = self._writer.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
        self._rows_per_insert = max(1, min(_MAX_ROWS_PER_INSERT, variables // _STORY_ROW.count("?")))
        with self._write_lock, self._writer:
            if not self._writer.execute("SELECT 1 FROM sqlite_master WHERE name='stories_published'").fetchone():
                log.info("%s: indexing stories by publication time (once; reads every story)", self.path)
            self._writer.executescript(_SCHEMA)
            self._check_meta("schema_version", SCHEMA_VERSION)
            self._check_meta("index_settings", index_fingerprint)

    def _connect(self, creating: bool = False) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        if creating:
            # Deleted stories' pages go back to the file system (`reclaim`). Only a new file
            # takes it (and only before WAL mode is set); older stores keep their free pages
            # for new stories to reuse.
            conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA busy_timeout=10000")
        return conn

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            conn.execute("PRAGMA query_only=ON")
            # Candidate rows read through a memory map instead of read() calls:
            # about half the fetch time of a Match (measured at 100k stories).
            conn.execute(f"PRAGMA mmap_size={READ_MMAP_BYTES}")
            self._local.conn = conn
        return conn

    def _check_meta(self, key: str, value: str) -> None:
        # Several processes may create a new data dir at once (serve --processes N): the first
        # insert wins, and every process then compares with what is stored.
        self._writer.execute("INSERT OR IGNORE INTO meta(key, value) VALUES (?, ?)", (key, value))
        row = self._writer.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        if row[0] != value:
            raise SettingsMismatchError(
                f"{self.path} was built with {key}={row[0]}, but this process uses {value}; "
                "start with the store's settings or point --data-dir at a new directory"
            )

    # -- writes ----------------------------------------------------------

    def upsert(self, stories: Sequence[tuple[StoryRecord, StoryPrint]]) -> Change:
        """Insert or replace stories in one durable transaction: the rows it
        added, and the number and tokens of each row they replaced.

        A statement for many rows: Python's sqlite3 lets go of the GIL at every
        step of a statement, and in a busy server another thread then keeps it
        for up to a switch interval (5 ms). With a statement per story, a
        512-story batch took 1.6x its time alone inside a server, and 4-5x
        beside a pure-Python thread.
        """
        new: list[int] = []
        replaced: list[tuple[int, U32]] = []
        with self._write_lock, self._transaction() as cur:
            for part in _distinct_runs(stories, self._rows_per_insert):
                ids = [rec.story_id for rec, _ in part]
                rows = cur.execute(
                    f"DELETE FROM stories WHERE story_id IN ({','.join('?' * len(ids))}) RETURNING number, tokens", ids
                ).fetchall()
                replaced += [(int(number), _u32(tokens)) for number, tokens in rows]
                cur.execute(
                    f"INSERT INTO stories({_STORY_COLUMNS}) VALUES {','.join([_STORY_ROW] * len(part))}",
                    [
                        value
                        for rec, pr in part
                        for value in (
                            rec.story_id,
                            rec.headline,
                            rec.body,
                            rec.source,
                            rec.published_at_ns,
                            json.dumps(rec.metadata, ensure_ascii=False, sort_keys=True),
                            pr.tokens.astype("<u4").tobytes(),
                            pr.band_keys.astype("<u8").tobytes(),
                        )
                    ],
                )
                # AUTOINCREMENT numbers the rows of one statement one after the other.
                last = int(cur.lastrowid or 0)
                new.extend(range(last - len(part) + 1, last + 1))
            seq = self._log(cur, new, replaced)
        return Change(seq, new, replaced)

    def delete(self, story_ids: Sequence[str]) -> Change:
        """Delete stories durably: the number and tokens of each row removed."""
        removed: list[tuple[int, U32]] = []
        with self._write_lock, self._transaction() as cur:
            for sid in story_ids:
                row = cur.execute("DELETE FROM stories WHERE story_id=? RETURNING number, tokens", (sid,)).fetchone()
                if row is not None:
                    removed.append((int(row[0]), _u32(row[1])))
            seq = self._log(cur, [], removed) if removed else 0  # 0: nothing logged
        return Change(seq, [], removed)

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Cursor]:
        """One write transaction (the caller holds the write lock): committed if the block ends
        normally, else rolled back, and SQLite's errors raised as ``StoreError``.

        On a full disk or an I/O error SQLite may already have rolled the transaction back
        itself; a ROLLBACK then would fail with "no transaction is active" and hide the cause.
        """
        cur = self._writer.cursor()
        try:
            cur.execute("BEGIN IMMEDIATE")
            yield cur
            cur.execute("COMMIT")
        except BaseException as exc:
            if self._writer.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    self._writer.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise store_error(exc, self.path) from exc
            raise

    def _log(self, cur: sqlite3.Cursor, added: list[int], removed: list[tuple[int, U32]]) -> int:
        """Append a write to the change log (in its transaction); returns its seq."""
        now = time.time()
        cur.execute(
            "INSERT INTO changes(at, added, removed, removed_sizes, removed_tokens) VALUES (?,?,?,?,?)",
            (
                now,
                np.array(added, dtype="<u4").tobytes(),
                np.array([n for n, _ in removed], dtype="<u4").tobytes(),
                np.array([t.size for _, t in removed], dtype="<u4").tobytes(),
                b"".join(t.astype("<u4").tobytes() for _, t in removed),
            ),
        )
        self._commits += 1
        if self._commits % _PRUNE_EVERY == 0:
            cur.execute("DELETE FROM changes WHERE at < ?", (now - CHANGE_RETENTION_S,))
        return int(cur.lastrowid or 0)

    @staticmethod
    def _last_seq(conn: sqlite3.Connection) -> int:
        # AUTOINCREMENT's counter: it still counts changes whose rows were pruned.
        row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name='changes'").fetchone()
        return int(row[0]) if row else 0

    # -- reads -----------------------------------------------------------

    def get(self, story_id: str) -> StoryRecord | None:
        row = (
            self._reader()
            .execute(
                "SELECT story_id, body, headline, source, published_at_ns, metadata FROM stories WHERE story_id=?",
                (story_id,),
            )
            .fetchone()
        )
        if row is None:
            return None
        return StoryRecord(row[0], row[1], row[2], row[3], row[4], json.loads(row[5]))

    def candidates(self, numbers: Sequence[int]) -> list[Candidate]:
        """Stories by number, for verification (missing ones are skipped)."""
        return [Candidate(r[0], r[1], _u32(r[2])) for r in self._rows("number, story_id, tokens", numbers)]

    def texts(self, numbers: Sequence[int]) -> dict[int, StoryText]:
        """What a match shows of each story still stored, by number (a number is never reused)."""
        rows = self._rows("number, headline, body, source, published_at_ns", numbers)
        return {int(r[0]): StoryText(r[1], r[2], r[3], r[4]) for r in rows}

    def iter_attributes(self, batch: int = 100_000) -> Iterator[tuple[list[int], list[str], list[int | None]]]:
        """(numbers, sources, publication times) of every story, from the covering index alone."""
        cur = self._reader().execute("SELECT number, source, published_at_ns FROM stories INDEXED BY stories_published")
        while rows := cur.fetchmany(batch):
            yield [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]

    def attributes_of(self, numbers: Sequence[int]) -> dict[int, tuple[str, int | None]]:
        """(source, publication time) of the stories with these numbers still stored."""
        out: dict[int, tuple[str, int | None]] = {}
        for i in range(0, len(numbers), _MAX_VARIABLES):
            chunk = numbers[i : i + _MAX_VARIABLES]
            for number, source, published in self._rows("number, source, published_at_ns", chunk):
                out[int(number)] = (source, published)
        return out

    def published_before(self, cutoff_ns: int, limit: int) -> list[str]:
        """Ids of up to `limit` stories published before `cutoff_ns`, oldest first."""
        rows = self._reader().execute(
            "SELECT story_id FROM stories WHERE published_at_ns < ? ORDER BY published_at_ns LIMIT ?",
            (cutoff_ns, limit),
        )
        return [r[0] for r in rows]

    def published_range(self) -> tuple[int | None, int | None]:
        """Earliest and latest publication time held (None when no story has one)."""
        conn = self._reader()
        # Two queries: SQLite reads one end of the index only for a lone min() or max().
        oldest = conn.execute("SELECT min(published_at_ns) FROM stories").fetchone()[0]
        newest = conn.execute("SELECT max(published_at_ns) FROM stories").fetchone()[0]
        return oldest, newest

    def reclaim(self) -> int:
        """Give the pages of deleted stories back to the file system; returns the bytes freed.

        A step at a time, so writers interleave; then the write-ahead log,
        which the moved pages went through, is truncated (when no reader
        holds it). A store made before incremental auto-vacuum keeps its
        free pages, which new stories reuse.
        """
        before = self.disk_bytes()
        if int(self._writer.execute("PRAGMA auto_vacuum").fetchone()[0]) != 2:
            return 0
        while True:
            with self._write_lock:
                if int(self._writer.execute("PRAGMA freelist_count").fetchone()[0]) == 0:
                    break
                # One transaction per step: outside one, every page freed was a commit and an
                # fsync. A script, because each step of the statement frees one page and
                # executescript steps it to the end (execute() stops after the first).
                try:
                    self._writer.executescript(f"BEGIN IMMEDIATE; PRAGMA incremental_vacuum({_RECLAIM_PAGES}); COMMIT;")
                except BaseException:
                    if self._writer.in_transaction:
                        self._writer.execute("ROLLBACK")
                    raise
        with self._write_lock:
            self._writer.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        return max(0, before - self.disk_bytes())

    def _rows(self, columns: str, numbers: Sequence[int]) -> list[Any]:
        if not numbers:
            return []
        marks = ",".join("?" * len(numbers))
        sql = f"SELECT {columns} FROM stories WHERE number IN ({marks})"
        return self._reader().execute(sql, [int(n) for n in numbers]).fetchall()

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[int]:
        """One read transaction on this thread: what is read inside is the store
        as of the change whose seq it yields."""
        conn = self._reader()
        conn.execute("BEGIN")
        try:
            yield self._last_seq(conn)
        finally:
            conn.execute("COMMIT")

    def changed(self) -> bool:
        """Whether any connection has committed since this thread last asked (cheap: no table is read)."""
        conn = self._reader()
        version = int(conn.execute("PRAGMA data_version").fetchone()[0])
        seen = getattr(self._local, "data_version", None)
        self._local.data_version = version
        return version != seen

    def changes_since(self, seq: int) -> list[Change]:
        """The logged writes after `seq`, oldest first. The first has seq + 1
        unless rows the caller had not seen were pruned."""
        rows = (
            self._reader()
            .execute(
                "SELECT seq, added, removed, removed_sizes, removed_tokens FROM changes WHERE seq > ? ORDER BY seq",
                (seq,),
            )
            .fetchall()
        )
        out = []
        for seq_, added, removed, sizes, tokens in rows:
            numbers = _u32(removed).tolist()
            pieces = np.split(_u32(tokens), np.cumsum(_u32(sizes))[:-1]) if numbers else []
            out.append(Change(int(seq_), _u32(added).tolist(), list(zip(numbers, pieces, strict=True))))
        return out

    def prints_of(self, numbers: Sequence[int]) -> dict[int, StoryPrint]:
        """Prints of the stories with these numbers (missing ones are left out)."""
        conn = self._reader()
        out: dict[int, StoryPrint] = {}
        for i in range(0, len(numbers), _MAX_VARIABLES):
            chunk = [int(n) for n in numbers[i : i + _MAX_VARIABLES]]
            marks = ",".join("?" * len(chunk))
            for number, tokens, keys in conn.execute(
                f"SELECT number, tokens, band_keys FROM stories WHERE number IN ({marks})", chunk
            ):
                out[int(number)] = StoryPrint(_u32(tokens), np.frombuffer(keys, dtype="<u8"))
        return out

    def iter_prints(self, batch: int = 10_000) -> Iterator[tuple[list[int], list[StoryPrint]]]:
        """(story numbers, prints) of every stored story, for rebuilding the index."""
        conn = self._reader()
        last = -1
        while True:
            rows = conn.execute(
                "SELECT number, tokens, band_keys FROM stories WHERE number > ? ORDER BY number LIMIT ?", (last, batch)
            ).fetchall()
            if not rows:
                return
            last = rows[-1][0]
            yield [r[0] for r in rows], [StoryPrint(_u32(r[1]), np.frombuffer(r[2], dtype="<u8")) for r in rows]

    def check(self) -> None:
        """Raise StoreUnavailableError unless the store can be read now (cheap: one row of meta)."""
        try:
            self._reader().execute("SELECT 1 FROM meta LIMIT 1").fetchone()
        except sqlite3.Error as err:
            raise store_error(err, self.path) from err

    def count(self) -> int:
        return int(self._reader().execute("SELECT count(*) FROM stories").fetchone()[0])

    def disk_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.path.parent.glob(self.FILENAME + "*") if p.exists())

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
        with self._write_lock:
            self._writer.close()
