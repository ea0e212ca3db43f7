"""The embedded store's writes: what one upsert reports matches what it stored, and what servers count."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from wiretrace.embedded_backend import EmbeddedBackend
from wiretrace.store import SQLiteStore
from wiretrace.types import StoryPrint, StoryRecord


def _item(story_id: str, body: str, n: int) -> tuple[StoryRecord, StoryPrint]:
    tokens = np.arange(n, dtype=np.uint32)
    return StoryRecord(story_id, body, source="wire"), StoryPrint(tokens, tokens.astype(np.uint64) * 7)


def test_one_upsert_of_many_statements_reports_every_row_it_added_and_replaced(tmp_path: Path) -> None:
    """Past one statement's rows, with an id sent twice in the batch and one stored before: the
    numbers reported are the rows stored, in order, and each replaced row comes back with its tokens."""
    store = SQLiteStore(tmp_path, "settings")
    store._rows_per_insert = 64  # several statements for one batch (SQLite binds thousands of values)
    try:
        first = store.upsert([_item("kept", "old text", 3), _item("other", "other text", 4)])
        batch = [_item(f"s{i}", f"body {i}", 5) for i in range(300)]
        batch[150] = _item("kept", "new text", 6)  # replaces the stored story
        batch[250] = _item("s10", "second s10", 2)  # and the same id earlier in this batch
        change = store.upsert(batch)

        assert len(change.added) == 300 and change.added == sorted(change.added)
        assert change.added[0] > max(first.added)
        stored = store.candidates(change.added)
        ids = [c.story_id for c in stored]
        # The first s10 was replaced within the batch, so its number no longer has a row.
        assert ids == [rec.story_id for i, (rec, _) in enumerate(batch) if i != 10]
        assert {n: t.size for n, t in change.removed} == {first.added[0]: 3, change.added[10]: 5}
        assert store.get("kept") == StoryRecord("kept", "new text", source="wire")
        assert store.get("s10") == StoryRecord("s10", "second s10", source="wire")
        assert store.count() == 299 + 1  # 299 distinct ids in the batch, and "other"
    finally:
        store.close()


def test_every_process_counts_the_stories_the_store_holds(tmp_path: Path) -> None:
    """GetStats' count is kept by each process from the change log (counting rows took ~10 ms at 1M):
    writes from either of two processes, replacements within a batch and across them, and deletions."""
    a, b = EmbeddedBackend(tmp_path, "settings"), EmbeddedBackend(tmp_path, "settings")
    try:
        a.upsert([_item(f"s{i}", f"body {i}", 5) for i in range(10)])
        b.upsert([_item(f"s{i}", f"again {i}", 6) for i in range(5, 13)] + [_item("s12", "twice", 4)])
        assert a.delete(["s0", "s12", "never stored"]) == 2
        assert a.store.count() == 11
        assert [a.stats().stories, b.stats().stories] == [11, 11]
        assert [a.terms.documents, b.terms.documents] == [11, 11]  # the first "s12" was never indexed
        assert EmbeddedBackend(tmp_path, "settings").stats().stories == 11  # and a process that starts now
    finally:
        a.close()
        b.close()
