"""The Redis backend against a real redis-server (AOF on, fsync always)."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import numpy as np
import pytest
import redis

from tests.redis_server import REDIS_SERVER, SKIP_REASON, RedisServer
from tests.synth import NewsGen
from wiretrace import redis_backend
from wiretrace.config import IndexSettings, Settings
from wiretrace.embedded_backend import EmbeddedBackend
from wiretrace.engine import Detector
from wiretrace.redis_backend import RedisBackend, open_redis_backend
from wiretrace.shingling import shingle_hashes
from wiretrace.store import SCHEMA_VERSION
from wiretrace.types import SettingsMismatchError, StoryRecord, StoryText, Verdict

pytestmark = pytest.mark.skipif(REDIS_SERVER is None, reason=SKIP_REASON)

SETTINGS = Settings()
FP = SETTINGS.index.fingerprint()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    srv = RedisServer(tmp_path / "redis").start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def stories() -> list[StoryRecord]:
    gen = NewsGen(seed=11)
    return [StoryRecord(f"wire-{i}", gen.article(), headline=f"Headline {i}", source="RTRS") for i in range(40)]


def _detector(url: str) -> Detector:
    return Detector(SETTINGS, open_redis_backend(url, FP))


def test_replica_sees_writes_at_once(server: RedisServer, stories: list[StoryRecord]) -> None:
    a, b = _detector(server.url), _detector(server.url)
    try:
        assert b.match(stories[3].body).verdict == Verdict.UNRELATED
        a.upsert(stories)
        got = b.match("Breaking: " + stories[3].body)
        assert got.matches[0].story_id == "wire-3"
        assert got.verdict == Verdict.VERBATIM
        assert b.get("wire-3") == stories[3]
        assert b.stats().stories == len(stories)
    finally:
        a.close()
        b.close()


def test_resend_replaces_and_delete_removes(server: RedisServer, stories: list[StoryRecord]) -> None:
    det = _detector(server.url)
    try:
        det.upsert(stories[:5])
        old = det.pipeline.story(stories[0].body)
        old_number = int(det.backend.client.hget(b"wt:ids", b"wire-0"))  # type: ignore[attr-defined]
        assert old_number in det.backend.lookup(old.band_keys)
        entries_before = det.stats().index_entries
        det.upsert([StoryRecord("wire-0", stories[5].body, headline="replaced")])
        # The old number is gone from every bucket; the new text finds wire-0 under its new number.
        assert old_number not in det.backend.lookup(old.band_keys)
        assert det.match(stories[5].body).matches[0].story_id == "wire-0"
        assert det.get("wire-0") is not None and det.get("wire-0").headline == "replaced"  # type: ignore[union-attr]
        assert det.stats().stories == 5
        assert det.stats().index_entries != entries_before
        # The old number's entries and record were cleaned up after publishing.
        client = det.backend.client  # type: ignore[attr-defined]
        member = np.uint32(old_number).astype("<u4").tobytes()
        for key in np.unique(old.band_keys).astype("<u8").tobytes().hex(" ", 8).split():
            value = client.get(b"wt:k:" + bytes.fromhex(key)) or b""
            assert member not in [value[i : i + 4] for i in range(0, len(value), 4)]
        assert not client.exists(b"wt:s:%d" % old_number) and not client.scard(b"wt:dead")
        assert det.delete(["wire-0", "missing"]) == 1
        assert det.get("wire-0") is None
        assert det.match(stories[5].body).verdict == Verdict.UNRELATED
        assert not client.scard(b"wt:dead") and not client.hlen(b"wt:pending")
    finally:
        det.close()


def test_same_answers_as_embedded(server: RedisServer, stories: list[StoryRecord], tmp_path: Path) -> None:
    gen = NewsGen(seed=12)
    red = _detector(server.url)
    emb = Detector(SETTINGS, EmbeddedBackend(tmp_path / "emb", FP))
    try:
        for det in (red, emb):
            det.upsert(stories)
        queries = [gen.edited(stories[7].body), gen.ocr(stories[9].body), stories[1].body[:600], gen.article()]
        for q in queries:
            r, e = red.match(q), emb.match(q)
            assert r.verdict == e.verdict
            assert r.matches == e.matches  # whole matches: ids, headlines, scores, passages
        # Term weights come from the shared document frequencies, and agree with the embedded table.
        bigrams = shingle_hashes(red.pipeline.story(queries[0]).tokens, 2)
        np.testing.assert_allclose(red.backend.term_weights(bigrams), emb.backend.term_weights(bigrams))
        red.delete(["wire-7"])
        emb.delete(["wire-7"])
        np.testing.assert_allclose(red.backend.term_weights(bigrams), emb.backend.term_weights(bigrams))
    finally:
        red.close()
        emb.close()


def test_candidates_carry_tokens_and_texts_come_apart(
    server: RedisServer, stories: list[StoryRecord], tmp_path: Path
) -> None:
    """Verification reads only tokens; the shown stories' headline and body come from `texts`,
    which leaves out a story deleted since (its number is never reused)."""
    red = _detector(server.url)
    emb = Detector(SETTINGS, EmbeddedBackend(tmp_path / "emb", FP))
    try:
        for det in (red, emb):
            det.upsert(stories)
            numbers = list(range(1, len(stories) + 6))  # numbers start at 1; the last five do not exist
            cands = det.backend.candidates(numbers)
            by_id = {r.story_id: r for r in stories}
            assert sorted(c.story_id for c in cands) == sorted(by_id)
            for c in cands:
                assert c.tokens.tolist() == det.pipeline.story(by_id[c.story_id].body).tokens.tolist()
            texts = det.backend.texts(numbers)
            assert {c.story_id: texts[c.number] for c in cands} == {
                sid: StoryText(r.headline, r.body, r.source, r.published_at_ns) for sid, r in by_id.items()
            }
            det.delete(["wire-3"])
            gone = next(c.number for c in cands if c.story_id == "wire-3")
            assert gone not in det.backend.texts(numbers)
            assert gone not in [c.number for c in det.backend.candidates(numbers)]
    finally:
        red.close()
        emb.close()


def test_settings_mismatch_refused(server: RedisServer) -> None:
    open_redis_backend(server.url, FP).close()
    other = IndexSettings(shingle_size=5).fingerprint()
    with pytest.raises(SettingsMismatchError, match=r"index_settings=.*shingle_size\": 4.*shingle_size\": 5"):
        open_redis_backend(server.url, other)
    # Another prefix is another index: allowed.
    open_redis_backend(server.url, other, prefix=b"other:").close()


def test_kill_9_loses_nothing_acknowledged(server: RedisServer, stories: list[StoryRecord]) -> None:
    det = _detector(server.url)
    det.upsert(stories[:20])
    det.upsert(stories[20:])
    assert det.backend.durable  # type: ignore[attr-defined]
    det.close()
    server.kill()
    server.start()
    fresh = _detector(server.url)  # a new replica: serves at once, nothing to rebuild
    try:
        assert fresh.stats().stories == len(stories)
        for i in (0, 19, 39):
            assert fresh.match(stories[i].body).matches[0].story_id == f"wire-{i}"
    finally:
        fresh.close()


def test_nothing_pickled(server: RedisServer, stories: list[StoryRecord]) -> None:
    """Arrays are stored as raw little-endian bytes, and nothing in the module can unpickle."""
    source = inspect.getsource(redis_backend)
    assert not any(s in source for s in ("import pickle", "pickle.", "prepickle=True", "marshal"))
    det = _detector(server.url)
    try:
        det.upsert(stories[:3])
        pr = det.pipeline.story(stories[2].body)
        client = det.backend.client  # type: ignore[attr-defined]
        number = client.hget(b"wt:ids", b"wire-2")
        raw = client.hgetall(b"wt:s:" + number)
        assert raw[b"tok"] == pr.tokens.astype("<u4").tobytes()
        assert raw[b"bk"] == pr.band_keys.astype("<u8").tobytes()
        bucket = b"wt:k:" + pr.band_keys[:1].astype("<u8").tobytes()
        assert client.get(bucket) == np.uint32(int(number)).astype("<u4").tobytes()
    finally:
        det.close()


def test_lookup_counts_a_repeated_key_once_like_the_embedded_index(
    server: RedisServer, stories: list[StoryRecord], tmp_path: Path
) -> None:
    backend = open_redis_backend(server.url, FP)
    embedded = EmbeddedBackend(tmp_path / "embedded", FP)
    try:
        for b in (backend, embedded):
            Detector(SETTINGS, b).upsert(stories[:2])
        keys = Detector(SETTINGS, backend).pipeline.story(stories[0].body).band_keys[:3]
        once = backend.lookup(keys)
        twice = backend.lookup(np.concatenate([keys, keys]))
        assert once.size == 3
        assert (
            sorted(twice.tolist())
            == sorted(once.tolist())
            == sorted(embedded.lookup(np.concatenate([keys, keys])).tolist())
        )
        assert backend.lookup(np.empty(0, np.uint64)).size == 0
    finally:
        backend.close()
        embedded.close()


def test_old_layout_refused(server: RedisServer) -> None:
    """A store written by layout 1 (one set per bucket, no layout field) is refused, not misread."""
    client = redis.Redis.from_url(server.url)
    client.hset(b"wt:meta", mapping={"schema_version": SCHEMA_VERSION, "index_settings": FP})
    client.close()
    with pytest.raises(SettingsMismatchError, match=r"layout=1, but this process uses layout=2.*load the stories"):
        open_redis_backend(server.url, FP)


def test_unpublished_batch_is_invisible_then_reaped(server: RedisServer, stories: list[StoryRecord]) -> None:
    """A writer killed between writing a batch and publishing it: nobody sees any of it, and it is reclaimed."""
    writer, reader = _detector(server.url), _detector(server.url)
    try:
        writer.upsert(stories[:1])
        items = list(zip(stories[1:6], writer.prepare([s.body for s in stories[1:6]]), strict=True))
        backend = cast(RedisBackend, writer.backend)
        backend._stage(items)  # written, never published
        client = backend.client
        assert client.hlen(b"wt:pending") == 1 and client.exists(b"wt:s:3")
        for rec, pr in items:
            assert reader.get(rec.story_id) is None
            assert set(reader.backend.lookup(pr.band_keys).tolist()) <= {1}
            assert reader.match(rec.body).verdict == Verdict.UNRELATED
        assert reader.stats().stories == 1
        # A young pending batch may be a live writer: a new replica leaves it alone.
        open_redis_backend(server.url, FP).close()
        assert client.hlen(b"wt:pending") == 1
        # An old one is reaped: records and bucket entries go, the published story stays.
        open_redis_backend(server.url, FP, reap_after=-1).close()
        assert not client.hlen(b"wt:pending") and not client.scard(b"wt:dead")
        assert client.keys(b"wt:s:*") == [b"wt:s:1"]
        entries = b"".join(cast(bytes, client.get(k)) for k in client.keys(b"wt:k:*"))
        assert set(np.frombuffer(entries, "<u4").tolist()) == {1}
        # The stories can simply be sent again.
        writer.upsert(stories[1:6])
        assert reader.match(stories[3].body).matches[0].story_id == "wire-3"
    finally:
        writer.close()
        reader.close()


def test_large_batch_in_several_chunks(server: RedisServer, stories: list[StoryRecord]) -> None:
    """Bucket writes split into several append calls give the same index as one."""
    det = _detector(server.url)
    old = redis_backend.APPEND_CHUNK
    redis_backend.APPEND_CHUNK = 50
    try:
        det.upsert(stories)
        for i in (0, 17, 39):
            assert det.match(stories[i].body).matches[0].story_id == f"wire-{i}"
        prints = det.prepare([s.body for s in stories])
        assert det.stats().index_entries == sum(p.band_keys.size for p in prints)
    finally:
        redis_backend.APPEND_CHUNK = old
        det.close()
