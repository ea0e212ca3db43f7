"""The shared backend: every piece of detector state in one Redis database.

Replicas behind a load balancer each open a ``RedisBackend`` on the same
database; a story written through one is matchable through every other as soon
as ``upsert`` returns, and a new replica serves at once (there is nothing to
rebuild: the LSH buckets live in Redis, not in the process).

Layout 2 (all keys are bytes, under a prefix, default ``wt:``)::

    wt:meta           hash   schema_version, layout, index_settings (IndexSettings.fingerprint())
    wt:next           string story-number counter (INCRBY, a batch takes a range)
    wt:entries        string number of (band key, story) entries of published stories
    wt:ids            hash   story_id -> story number (only published stories)
    wt:s:<number>     hash   sid, h, body, src, pub, meta (JSON), tok (<u4 token hashes),
                             bk (<u8 band keys), df (<u4 distinct bigram buckets)
    wt:k:<8 bytes>    string packed <u4 story numbers whose window has this band key (APPEND)
    wt:pending        hash   batch token -> "first last unix_time": numbers being written, not yet published
    wt:dead           set    numbers replaced or deleted whose bucket entries are still being removed
    wt:pub            zset   number -> published_at in seconds, of stories that have one (retention,
                             GetStats' range); meta field pub_index=1 once a store made before it is indexed
    wt:df             string bigram document frequencies: 2**22 i32 counters (BITFIELD),
                             the same hashed table as index.TermFrequencies
    wt:docs           string number of stories counted in wt:df

Layout 1 (one Redis set per band key, ~180 bytes and ~1.6 us of SADD per
entry, SMEMBERS at ~18 us a bucket) is refused at start-up with a clear message.

Why write-then-publish: a batch's records and bucket entries are written first,
in pipelined chunks other clients can interleave with, under numbers that every
reader filters out (they are in ``wt:pending``). One small script then
publishes the batch atomically: id map, document frequencies, counters, and
the removal of the numbers from ``wt:pending``. A replaced or deleted story's
number moves to ``wt:dead`` in that same step (filtered from then on), and its
bucket entries are removed afterwards. Lookups read buckets, pending and dead in
one MULTI/EXEC, so a batch is visible to every replica whole or not at all.
A writer killed before publishing leaves pending numbers that stay invisible;
a replica opening the store later reaps them (after ``reap_after`` seconds).

Nothing is ever pickled; arrays are little-endian bytes.

Durability: Redis acknowledges a write once it is in its append-only file, and
``upsert`` returns only after the publish step is acknowledged (AOF order puts
the batch's data before it). "Never loses an acknowledged story" holds only
with ``appendonly yes`` and ``appendfsync always``. With ``appendfsync
everysec`` (Redis' default when AOF is on) a crash of the *machine* (not just
of redis-server) can lose the last second of acknowledged stories. Without AOF,
a restart loses everything since the last RDB snapshot. The backend logs a
warning when the server is not set up for "always"; see docs/scaleout.md.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from typing import Any, Concatenate, ParamSpec, TypeVar, cast

import numpy as np
import redis

from wiretrace.filters import StoryAttributes
from wiretrace.pipeline import document_terms
from wiretrace.shingling import U32, U64, sorted_unique
from wiretrace.store import SCHEMA_VERSION
from wiretrace.types import (
    BackendStats,
    Candidate,
    SettingsMismatchError,
    StoreFullError,
    StoreUnavailableError,
    StoryFilter,
    StoryPrint,
    StoryRecord,
    StoryText,
)

log = logging.getLogger(__name__)

DEFAULT_PREFIX = b"wt:"
# Bumped whenever the key layout changes; a store written with another layout is refused.
LAYOUT_VERSION = "2"
# Same table size as index.TermFrequencies' default, so weights agree with the
# embedded backend (tests/test_redis_backend.py checks it).
DF_BITS = 22
_DF_MASK = np.uint32((1 << DF_BITS) - 1)
# Bucket entries per append script call: keeps each call to a few ms of Redis'
# single thread, so other clients' commands interleave with a bulk load.
APPEND_CHUNK = 8192
# Retired stories per clean-up script call (each has ~100 band keys).
CLEANUP_CHUNK = 32
# A batch pending for longer than this is taken to be abandoned by a killed writer.
REAP_AFTER_SECONDS = 3600
# Stories examined per retention script call (a few ms of Redis' single thread).
EXPIRE_CHUNK = 256
NS_PER_S = 1_000_000_000

# First start writes every meta field at once; later starts read them for the checks.
_META_LUA = """
local key = ARGV[1]
if redis.call('EXISTS', key) == 0 then redis.call('HSET', key, unpack(ARGV, 2)) end
return redis.call('HMGET', key, 'schema_version', 'layout', 'index_settings')
"""

# ARGV: prefix, count, token. Takes a range of numbers and marks it pending.
_RESERVE_LUA = """
local p = ARGV[1]
local n = tonumber(ARGV[2])
local hi = redis.call('INCRBY', p .. 'next', n)
local t = redis.call('TIME')[1]
redis.call('HSET', p .. 'pending', ARGV[3], (hi - n + 1) .. ' ' .. hi .. ' ' .. t)
return hi
"""

# ARGV: prefix, distinct band keys (<u8), entries per key (<u4), numbers (<u4) in key order.
_APPEND_LUA = """
local p = ARGV[1]
local keys, counts, nums = ARGV[2], ARGV[3], ARGV[4]
local off = 1
for j = 1, #keys / 8 do
  local c = struct.unpack('<I4', counts, 4 * j - 3)
  redis.call('APPEND', p .. 'k:' .. string.sub(keys, 8 * j - 7, 8 * j), string.sub(nums, off, off + 4 * c - 1))
  off = off + 4 * c
end
return off
"""

# Shared by publish and delete: document-frequency counts and retiring a number.
_LUA_HELPERS = """
local p = ARGV[1]
local entries = 0
local docs = 0
local retired = {}
local function bitfield(ops, n)
  redis.call('BITFIELD', p .. 'df', unpack(ops, 1, n))
end
-- Decrement the buckets of a retired story (<u4 each).
local function remove_terms(blob)
  local ops, n = {}, 0
  for j = 1, #blob, 4 do
    ops[n + 1], ops[n + 2], ops[n + 3], ops[n + 4] = 'INCRBY', 'i32', '#' .. struct.unpack('<I4', blob, j), -1
    n = n + 4
    if n >= 4000 then bitfield(ops, n); n = 0 end
  end
  if n > 0 then bitfield(ops, n) end
end
-- A batch's counts as text, "#bucket count ...": formatted by the client, so
-- Lua only splits it (a third cheaper than unpacking and formatting here).
local function add_terms(text)
  local ops, n = {}, 0
  for o, c in string.gmatch(text, '(%S+) (%S+)') do
    ops[n + 1], ops[n + 2], ops[n + 3], ops[n + 4] = 'INCRBY', 'i32', o, c
    n = n + 4
    if n >= 4000 then bitfield(ops, n); n = 0 end
  end
  if n > 0 then bitfield(ops, n) end
end
local function retire(num)
  local old = redis.call('HMGET', p .. 's:' .. num, 'bk', 'df')
  if old[1] then
    entries = entries - #old[1] / 8
    remove_terms(old[2])
    docs = docs - 1
  end
  redis.call('SADD', p .. 'dead', num)
  redis.call('ZREM', p .. 'pub', num)
  retired[#retired + 1] = num
end
local function finish()
  redis.call('INCRBY', p .. 'entries', entries)
  redis.call('INCRBY', p .. 'docs', docs)
end
"""

# ARGV: prefix, token, new entries, df counts ("#bucket count ..."), then sid, number pairs.
# The atomic step of an upsert. Returns the numbers retired (replaced stories).
_PUBLISH_LUA = (
    _LUA_HELPERS
    + """
if redis.call('HDEL', p .. 'pending', ARGV[2]) == 0 then
  return redis.error_reply('WTREAPED batch ' .. ARGV[2] .. ' is no longer pending (reaped as abandoned)')
end
add_terms(ARGV[4])
entries = entries + tonumber(ARGV[3])
for i = 5, #ARGV, 2 do
  local old = redis.call('HGET', p .. 'ids', ARGV[i])
  redis.call('HSET', p .. 'ids', ARGV[i], ARGV[i + 1])
  docs = docs + 1
  if old then retire(old) end
end
finish()
return retired
"""
)

# ARGV: prefix, story ids. Returns {how many existed, retired numbers}.
_DELETE_LUA = (
    _LUA_HELPERS
    + """
local removed = 0
for i = 2, #ARGV do
  local num = redis.call('HGET', p .. 'ids', ARGV[i])
  if num then
    redis.call('HDEL', p .. 'ids', ARGV[i])
    retire(num)
    removed = removed + 1
  end
end
finish()
return {removed, retired}
"""
)

# ARGV: prefix, cutoff (seconds), offset, limit. Deletes the published stories of the
# `limit` oldest numbers before the cutoff (from `offset` on); numbers still pending are
# skipped. Returns {deleted, numbers examined, retired numbers}.
_EXPIRE_LUA = (
    _LUA_HELPERS
    + """
local nums = redis.call('ZRANGEBYSCORE', p .. 'pub', '-inf', '(' .. ARGV[2], 'LIMIT', ARGV[3], ARGV[4])
local removed = 0
for i = 1, #nums do
  local num = nums[i]
  local sid = redis.call('HGET', p .. 's:' .. num, 'sid')
  if sid and redis.call('HGET', p .. 'ids', sid) == num then
    redis.call('HDEL', p .. 'ids', sid)
    retire(num)
    removed = removed + 1
  end
end
finish()
return {removed, #nums, retired}
"""
)

# ARGV: prefix, retired numbers. Removes each number from its buckets, then its
# record, then its dead mark. Idempotent, so any replica may (re)run it.
_CLEANUP_LUA = """
local p = ARGV[1]
for i = 2, #ARGV do
  local num = ARGV[i]
  local skey = p .. 's:' .. num
  local bk = redis.call('HGET', skey, 'bk')
  if bk then
    local member = struct.pack('<I4', tonumber(num))
    local seen = {}
    for j = 1, #bk, 8 do
      local k = string.sub(bk, j, j + 7)
      if not seen[k] then
        seen[k] = true
        local key = p .. 'k:' .. k
        local v = redis.call('GET', key)
        if v then
          local parts, start, pos = {}, 1, 1
          while true do
            local f = string.find(v, member, pos, true)
            if not f then break end
            if (f - 1) % 4 == 0 then
              parts[#parts + 1] = string.sub(v, start, f - 1)
              start = f + 4
              pos = f + 4
            else
              pos = f + 1
            end
          end
          if start > 1 then
            parts[#parts + 1] = string.sub(v, start)
            local nv = table.concat(parts)
            if #nv == 0 then redis.call('DEL', key) else redis.call('SET', key, nv) end
          end
        end
      end
    end
  end
  redis.call('DEL', skey)
  redis.call('SREM', p .. 'dead', num)
  redis.call('ZREM', p .. 'pub', num)
end
return #ARGV - 1
"""

# ARGV: prefix, max age in seconds. Moves abandoned pending batches to dead;
# returns every dead number (to clean up).
_REAP_LUA = """
local p = ARGV[1]
local now = tonumber(redis.call('TIME')[1])
local pend = redis.call('HGETALL', p .. 'pending')
for i = 1, #pend, 2 do
  local lo, hi, t = string.match(pend[i + 1], '(%d+) (%d+) (%d+)')
  if now - tonumber(t) > tonumber(ARGV[2]) then
    redis.call('HDEL', p .. 'pending', pend[i])
    for n = tonumber(lo), tonumber(hi) do redis.call('SADD', p .. 'dead', n) end
  end
end
return redis.call('SMEMBERS', p .. 'dead')
"""

# ARGV: prefix, df buckets as text "#b #b ...". Returns {docs, counts (<i4)}: one
# reply of two values instead of one integer per bucket to parse in Python.
_WEIGHTS_LUA = """
local p = ARGV[1]
local ops, n = {}, 0
for o in string.gmatch(ARGV[2], '%S+') do
  ops[n + 1], ops[n + 2], ops[n + 3] = 'GET', 'i32', o
  n = n + 3
end
local parts = {}
for j = 1, n, 3000 do
  local got = redis.call('BITFIELD_RO', p .. 'df', unpack(ops, j, math.min(j + 2999, n)))
  for i = 1, #got do parts[#parts + 1] = struct.pack('<i4', got[i]) end
end
return {redis.call('GET', p .. 'docs') or '0', table.concat(parts)}
"""

# ARGV: prefix, story id. The record in one atomic read (a concurrent replace
# cannot slip between resolving the id and reading the record).
_GET_LUA = """
local p = ARGV[1]
local num = redis.call('HGET', p .. 'ids', ARGV[2])
if not num then return false end
return redis.call('HMGET', p .. 's:' .. num, 'sid', 'body', 'h', 'src', 'pub', 'meta')
"""


def _s(value: bytes) -> str:
    return value.decode("utf-8", "surrogatepass")


def _b(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


def _df_buckets(tokens: U32) -> U32:
    """The distinct term-frequency buckets of a story's word pairs and words."""
    return sorted_unique(document_terms(tokens) & _DF_MASK)


P = ParamSpec("P")
R = TypeVar("R")
# Redis is not there now: down, restarting, or loading its data after a restart.
_UNREACHABLE = (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError)


def _answered(method: Callable[Concatenate[RedisBackend, P], R]) -> Callable[Concatenate[RedisBackend, P], R]:
    """Redis' failures as the store errors the service answers with: UNAVAILABLE while Redis cannot be
    reached (the client reconnects by itself once it is back), RESOURCE_EXHAUSTED when it refuses writes
    for want of memory or disk."""

    @functools.wraps(method)
    def call(self: RedisBackend, /, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(self, *args, **kwargs)
        except _UNREACHABLE as err:
            raise StoreUnavailableError(
                f"the shared store ({self.location}) is unreachable ({err}); retry once it is back "
                "(acknowledged stories are safe)"
            ) from err
        except redis.ResponseError as err:
            if str(err).startswith(("MISCONF", "OOM")):
                raise StoreFullError(
                    f"the shared store ({self.location}) refuses writes ({err}): give Redis memory or disk, "
                    "then send the stories again (stories already acknowledged are intact)"
                ) from err
            raise

    return call


class RedisBackend:
    """The Backend protocol on one Redis database shared by any number of replicas."""

    def __init__(
        self,
        client: redis.Redis,
        index_fingerprint: str,
        *,
        prefix: bytes = DEFAULT_PREFIX,
        location: str = "redis",
        reap_after: float = REAP_AFTER_SECONDS,
    ) -> None:
        started = time.perf_counter()
        self.client = client
        self.prefix = prefix
        self.location = location
        self._meta = client.register_script(_META_LUA)
        self._reserve = client.register_script(_RESERVE_LUA)
        self._append = client.register_script(_APPEND_LUA)
        self._publish = client.register_script(_PUBLISH_LUA)
        self._delete = client.register_script(_DELETE_LUA)
        self._cleanup = client.register_script(_CLEANUP_LUA)
        self._reap = client.register_script(_REAP_LUA)
        self._get = client.register_script(_GET_LUA)
        self._weights = client.register_script(_WEIGHTS_LUA)
        self._expire = client.register_script(_EXPIRE_LUA)
        # Source and publication time of the numbers filters have met: a number's never change.
        self.attributes = StoryAttributes()
        self._check_meta(index_fingerprint)
        self.durable = self._check_durability()
        self.reap(reap_after)
        self._index_publication_times()
        self.rebuild_seconds = time.perf_counter() - started

    # -- start-up checks ---------------------------------------------------

    def _check_meta(self, index_fingerprint: str) -> None:
        """Refuse a store written with another schema, key layout or index settings."""
        ours = {"schema_version": SCHEMA_VERSION, "layout": LAYOUT_VERSION, "index_settings": index_fingerprint}
        args: list[bytes | str] = [self.prefix + b"meta"]
        for k, v in ours.items():
            args += [k, v]
        stored = cast(list[bytes | None], self._meta(args=args))
        for (field, value), got in zip(ours.items(), stored, strict=True):
            # Layout 1 stores predate the layout field.
            have = "1" if got is None and field == "layout" else _s(got or b"")
            if have == value:
                continue
            hint = "start with the store's settings or point --store at another database or prefix"
            if field == "layout":
                hint = (
                    "its keys are in an older layout this version cannot read; load the stories again into an "
                    "empty database or another prefix (or serve it with the version that wrote it)"
                )
            raise SettingsMismatchError(
                f"{self.location} (key prefix {self.prefix.decode(errors='replace')!r}) was built with "
                f"{field}={have}, but this process uses {field}={value}; {hint}"
            )

    def _check_durability(self) -> bool:
        """Warn when acknowledged writes could be lost by a crash of the Redis host."""
        try:
            cfg = {
                str(k, "ascii") if isinstance(k, bytes) else str(k): v
                for k, v in self.client.config_get("append*").items()
            }
        except redis.ResponseError:  # CONFIG disabled (managed Redis): cannot tell
            log.warning("%s: cannot read the AOF settings (CONFIG is disabled); durability unknown", self.location)
            return False
        appendonly = _b(cfg.get("appendonly", b"no"))
        fsync = _b(cfg.get("appendfsync", b""))
        if appendonly != b"yes" or fsync != b"always":
            log.warning(
                "%s runs with appendonly=%s appendfsync=%s: acknowledged stories can be lost in a crash; "
                "run redis-server with --appendonly yes --appendfsync always",
                self.location,
                _s(appendonly),
                _s(fsync),
            )
            return False
        return True

    def _index_publication_times(self) -> None:
        """Fill wt:pub for a store written before it existed (once; later writes keep it)."""
        meta = self.prefix + b"meta"
        if self.client.hget(meta, "pub_index") is not None:
            return
        started = time.perf_counter()
        added = 0
        cursor = 0
        while True:
            reply = self.client.hscan(self.prefix + b"ids", cursor, count=1000)
            cursor, ids = cast(tuple[int, dict[bytes, bytes]], reply)
            numbers = list(ids.values())
            pipe = self.client.pipeline(transaction=False)
            for n in numbers:
                pipe.hget(self.prefix + b"s:" + n, "pub")
            scores = {n: int(pub) / NS_PER_S for n, pub in zip(numbers, pipe.execute(), strict=True) if pub}
            if scores:
                added += int(cast(int, self.client.zadd(self.prefix + b"pub", scores)))
            if cursor == 0:
                break
        self.client.hset(meta, "pub_index", "1")
        log.info("%s: indexed the publication times of %d stories in %.1fs", self.location, added,
                 time.perf_counter() - started)  # fmt: skip

    def reap(self, after: float = REAP_AFTER_SECONDS) -> int:
        """Drop batches abandoned before publishing (writer killed) and finish interrupted clean-ups.

        Runs at start-up; safe alongside live writers as long as no batch takes
        longer than ``after`` seconds between reserving and publishing.
        """
        dead = cast(list[bytes], self._reap(args=[self.prefix, int(after)]))
        self._remove_entries([int(n) for n in dead])
        return len(dead)

    # -- writes ------------------------------------------------------------

    @_answered
    def upsert(self, items: Sequence[tuple[StoryRecord, StoryPrint]]) -> None:
        """Write the batch unseen, then publish it in one atomic step; returns once that is acknowledged.

        With AOF ``always`` the acknowledgement means fsynced, and the batch's
        data precede the publish step in the AOF.
        """
        if not items:
            return
        token, numbers, df_text, entries = self._stage(items)
        args: list[bytes | str | int] = [self.prefix, token, entries, df_text]
        for (rec, _), num in zip(items, numbers, strict=True):
            args += [rec.story_id, num]
        retired = cast(list[bytes], self._publish(args=args))
        self._remove_entries([int(n) for n in retired])

    def _stage(self, items: Sequence[tuple[StoryRecord, StoryPrint]]) -> tuple[str, list[int], str, int]:
        """Records and bucket entries under pending numbers; returns what publishing needs."""
        token = os.urandom(8).hex()
        hi = int(cast(int, self._reserve(args=[self.prefix, len(items), token])))
        if hi >= 1 << 32:
            raise OverflowError(f"{self.location}: story numbers exceed 32 bits")
        numbers = list(range(hi - len(items) + 1, hi + 1))
        pipe = self.client.pipeline(transaction=False)
        dfs: list[U32] = []
        for (rec, pr), num in zip(items, numbers, strict=True):
            df = _df_buckets(pr.tokens)
            dfs.append(df)
            record: dict[str, bytes | str] = {
                "sid": rec.story_id,
                "h": rec.headline,
                "body": rec.body,
                "src": rec.source,
                "pub": "" if rec.published_at_ns is None else str(rec.published_at_ns),
                "meta": json.dumps(rec.metadata, ensure_ascii=False, sort_keys=True),
                "tok": pr.tokens.astype("<u4").tobytes(),
                "df": df.astype("<u4").tobytes(),
                "bk": pr.band_keys.astype("<u8").tobytes(),
            }
            pipe.hset(self.prefix + b"s:" + str(num).encode(), mapping=record)  # type: ignore[arg-type]
            if rec.published_at_ns is not None:
                pipe.zadd(self.prefix + b"pub", {str(num): rec.published_at_ns / NS_PER_S})
        # Bucket entries grouped by band key: one APPEND per distinct key of the batch.
        sizes = [pr.band_keys.size for _, pr in items]
        keys = np.concatenate([pr.band_keys for _, pr in items]).astype(np.uint64, copy=False)
        nums = np.repeat(np.array(numbers, dtype=np.uint32), sizes)
        order = np.argsort(keys, kind="stable")
        keys, nums = keys[order], nums[order]
        distinct, first, counts = np.unique(keys, return_index=True, return_counts=True)
        bounds = np.append(first, keys.size)
        lo = 0
        while lo < distinct.size:
            hi_k = max(int(np.searchsorted(bounds, bounds[lo] + APPEND_CHUNK, side="right")) - 1, lo + 1)
            hi_k = min(hi_k, distinct.size)
            self._append(
                args=[
                    self.prefix,
                    distinct[lo:hi_k].astype("<u8").tobytes(),
                    counts[lo:hi_k].astype("<u4").tobytes(),
                    nums[bounds[lo] : bounds[hi_k]].astype("<u4").tobytes(),
                ],
                client=pipe,
            )
            lo = hi_k
        pipe.execute()
        buckets, per_bucket = np.unique(np.concatenate(dfs), return_counts=True)
        df_text = " ".join(f"#{b} {c}" for b, c in zip(buckets.tolist(), per_bucket.tolist(), strict=True))
        return token, numbers, df_text, int(keys.size)

    def _remove_entries(self, numbers: list[int]) -> None:
        """Take retired numbers out of their buckets (they are already filtered by every lookup)."""
        for i in range(0, len(numbers), CLEANUP_CHUNK):
            try:
                self._cleanup(args=[self.prefix, *numbers[i : i + CLEANUP_CHUNK]])
            except redis.RedisError as exc:  # harmless: still filtered as dead; the next reap finishes it
                log.warning("%s: clean-up of %d retired stories deferred: %s", self.location, len(numbers), exc)
                return

    @_answered
    def delete(self, story_ids: Sequence[str]) -> int:
        if not story_ids:
            return 0
        removed, retired = cast(tuple[int, list[bytes]], self._delete(args=[self.prefix, *story_ids]))
        self._remove_entries([int(n) for n in retired])
        return int(removed)

    @_answered
    def expire(self, cutoff_ns: int) -> int:
        """Delete the stories published before the cutoff, a chunk per script call.

        Memory is given back as keys go (bucket entries by the clean-up, as for any deletion).
        """
        deleted = offset = 0
        while True:
            removed, examined, retired = cast(
                tuple[int, int, list[bytes]],
                self._expire(args=[self.prefix, repr(cutoff_ns / NS_PER_S), offset, EXPIRE_CHUNK]),
            )
            self._remove_entries([int(n) for n in retired])
            deleted += int(removed)
            offset += int(examined) - int(removed)  # pending numbers stay in wt:pub: step over them
            if int(examined) < EXPIRE_CHUNK:
                break
        if deleted:
            log.info("retention: deleted %d stories published before the cutoff from %s", deleted, self.location)
        return deleted

    # -- reads -------------------------------------------------------------

    @_answered
    def get(self, story_id: str) -> StoryRecord | None:
        row = cast(list[bytes | None] | None, self._get(args=[self.prefix, story_id]))
        if not row or row[0] is None:
            return None
        sid, body, headline, source, pub, meta = (b"" if v is None else v for v in row)
        return StoryRecord(
            _s(sid), _s(body), _s(headline), _s(source), int(pub) if pub else None, json.loads(meta or b"{}")
        )

    @_answered
    def lookup(self, band_keys: U64, max_bucket: int = 0) -> U32:
        """Story numbers sharing any of the band keys, with repeats, in one round trip.

        Buckets, pending batches and retired numbers are read in one MULTI/EXEC,
        so a number is returned only if its batch was published and it is live.
        With `max_bucket`, buckets of more entries than that are left out, as
        the embedded index does.
        """
        if band_keys.size == 0:
            return np.empty(0, dtype=np.uint32)
        keys = sorted_unique(band_keys.astype(np.uint64, copy=False))
        raw = keys.astype("<u8").tobytes()
        names = [self.prefix + b"k:" + raw[i : i + 8] for i in range(0, len(raw), 8)]
        pipe = self.client.pipeline(transaction=True)
        pipe.mget(names)
        pipe.hvals(self.prefix + b"pending")
        pipe.smembers(self.prefix + b"dead")
        values, pending, dead = cast(tuple[list[bytes | None], list[bytes], set[bytes]], tuple(pipe.execute()))
        blobs = [v or b"" for v in values]
        members = np.frombuffer(b"".join(blobs), dtype="<u4").astype(np.uint32)
        per_key = np.fromiter((len(b) // 4 for b in blobs), np.int64, len(blobs))
        if max_bucket > 0 and int(per_key.max()) > max_bucket:
            blobs = [b if n <= max_bucket else b"" for b, n in zip(blobs, per_key.tolist(), strict=True)]
            members = np.frombuffer(b"".join(blobs), dtype="<u4").astype(np.uint32)
            per_key = np.where(per_key > max_bucket, 0, per_key)
        # A key asked for twice counts once, as in the embedded index: repeats add nothing.
        hits = members
        if hits.size and (pending or dead):
            keep = np.ones(hits.size, dtype=bool)
            for span in pending:
                first, last, _ = span.split()
                keep &= (hits < int(first)) | (hits > int(last))
            if dead:
                keep &= ~np.isin(hits, np.fromiter((int(d) for d in dead), np.uint32, len(dead)))
            hits = hits[keep]
        return hits

    @_answered
    def term_weights(self, bigrams: U32) -> np.ndarray:
        """Informativeness of each bigram, from the shared document frequencies (one round trip)."""
        if bigrams.size == 0:
            return np.empty(0, dtype=np.float64)
        buckets, inverse = np.unique(bigrams & _DF_MASK, return_inverse=True)
        text = " ".join(f"#{b}" for b in buckets.tolist())
        docs, blob = cast(list[bytes], self._weights(args=[self.prefix, text]))
        df = np.maximum(np.frombuffer(blob, "<i4").astype(np.float64), 0.0)[inverse]
        n = max(int(docs or 0), 1)
        weights: np.ndarray = np.log1p(n / (df + 1.0)) / np.log1p(n)
        return weights

    @_answered
    def admit(self, numbers: U32, flt: StoryFilter) -> U32:
        """Numbers whose stories pass the filter; attributes not yet seen here are read in one round trip."""
        if not flt.active or numbers.size == 0:
            return numbers
        missing = self.attributes.unknown(numbers).tolist()
        if missing:
            pipe = self.client.pipeline(transaction=False)
            for n in missing:
                pipe.hmget(self.prefix + b"s:" + str(n).encode(), ["src", "pub"])
            found = [(n, row) for n, row in zip(missing, pipe.execute(), strict=True) if row[0] is not None]
            self.attributes.set(
                [n for n, _ in found],
                [_s(src) for _, (src, _) in found],
                [int(pub) if pub else None for _, (_, pub) in found],
            )
        return self.attributes.admit(numbers, flt)

    @_answered
    def candidates(self, numbers: Sequence[int]) -> list[Candidate]:
        if not len(numbers):
            return []
        pipe = self.client.pipeline(transaction=False)
        for n in numbers:
            pipe.hmget(self.prefix + b"s:" + str(int(n)).encode(), ["sid", "tok"])
        out: list[Candidate] = []
        for n, row in zip(numbers, cast(list[list[bytes | None]], pipe.execute()), strict=True):
            sid, tok = row
            if sid is None or tok is None:  # replaced or deleted since the lookup
                continue
            out.append(Candidate(int(n), _s(sid), np.frombuffer(tok, "<u4").astype(np.uint32, copy=False)))
        return out

    @_answered
    def texts(self, numbers: Sequence[int]) -> dict[int, StoryText]:
        if not len(numbers):
            return {}
        pipe = self.client.pipeline(transaction=False)
        for n in numbers:
            pipe.hmget(self.prefix + b"s:" + str(int(n)).encode(), ["sid", "h", "body", "src", "pub"])
        out: dict[int, StoryText] = {}
        rows = cast(list[list[bytes | None]], pipe.execute())
        for n, (sid, headline, body, src, pub) in zip(numbers, rows, strict=True):
            if sid is not None:  # else deleted since
                out[int(n)] = StoryText(_s(headline or b""), _s(body or b""), _s(src or b""), int(pub) if pub else None)
        return out

    def refresh(self) -> None:
        """Nothing to catch up with: every replica reads the one shared state."""

    @_answered
    def stats(self) -> BackendStats:
        pipe = self.client.pipeline(transaction=False)
        pipe.hlen(self.prefix + b"ids")
        pipe.get(self.prefix + b"entries")
        pipe.info("memory")
        pipe.zrange(self.prefix + b"pub", 0, 0)
        pipe.zrange(self.prefix + b"pub", -1, -1)
        stories, entries, memory, first, last = cast(
            tuple[int, bytes | None, dict[str, Any], list[bytes], list[bytes]], tuple(pipe.execute())
        )
        oldest, newest = (self._published_ns(ends[0]) if ends else None for ends in (first, last))
        return BackendStats(
            stories=int(stories),
            index_entries=int(entries or 0),
            index_bytes=self.attributes.nbytes,  # only the filters' cache is resident in this process
            disk_bytes=int(memory.get("used_memory", 0)),
            rebuild_seconds=self.rebuild_seconds,
            oldest_published_ns=oldest,
            newest_published_ns=newest,
        )

    def _published_ns(self, number: bytes) -> int | None:
        """The exact publication time of a number in wt:pub (its score is rounded to the microsecond)."""
        pub = cast(bytes | None, self.client.hget(self.prefix + b"s:" + number, "pub"))
        return int(pub) if pub else None

    @_answered
    def check(self) -> None:
        """Raises StoreUnavailableError unless Redis answers a PING now."""
        self.client.ping()

    def close(self) -> None:
        self.client.close()


def open_redis_backend(
    url: str, index_fingerprint: str, *, prefix: bytes = DEFAULT_PREFIX, reap_after: float = REAP_AFTER_SECONDS
) -> RedisBackend:
    """A RedisBackend for ``redis://[:password@]HOST:PORT/DB`` (also ``rediss://``, ``unix://``).

    Raises SettingsMismatchError when the database holds an index built with
    other settings, and redis.ConnectionError when the server is unreachable.
    """
    # A connection attempt to a host that is down gives up after a few seconds, so calls answer
    # UNAVAILABLE instead of hanging until their deadline.
    client = redis.Redis.from_url(url, decode_responses=False, health_check_interval=30, socket_connect_timeout=5)
    client.ping()
    kw = client.connection_pool.connection_kwargs  # names the server in messages, without the password
    where = kw.get("path") or f"{kw.get('host', 'localhost')}:{kw.get('port', 6379)}"
    location = f"redis {where} db {kw.get('db', 0)}"
    try:
        return RedisBackend(client, index_fingerprint, prefix=prefix, location=location, reap_after=reap_after)
    except BaseException:
        client.close()
        raise
