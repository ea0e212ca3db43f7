"""The shared backend: every piece of detector state in one Redis database.

Replicas behind a load balancer each open a ``RedisBackend`` on the same
database; a story written through one is matchable through every other as soon
as ``upsert`` returns, and a new replica serves at once (there is nothing to
rebuild: the LSH buckets live in Redis, not in the process).

Layout (all keys are bytes, under a prefix, default ``wt:``)::

    wt:meta           hash   schema_version, index_settings (IndexSettings.fingerprint())
    wt:next           string story-number counter (INCR)
    wt:entries        string number of (band key, story) entries in the buckets
    wt:ids            hash   story_id -> story number
    wt:s:<number>     hash   sid, h, body, src, pub, meta (JSON), tok (<u4 token hashes),
                             bk (<u8 band keys), df (<u4 distinct bigram buckets)
    wt:b:<8 bytes>    set    story numbers (<u4 bytes) whose window has this band key
    wt:df             string bigram document frequencies: 2**22 i32 counters (BITFIELD),
                             the same hashed table as index.TermFrequencies
    wt:docs           string number of stories counted in wt:df

Writes are Lua scripts, so a whole upsert batch (including removing a re-sent
story's old number from its buckets) is applied atomically: other replicas see
all of it or none of it. Reads of all band keys of an article are one script
call: one round trip, one reply holding the members and per-key counts as raw
bytes. Nothing is ever pickled; arrays are little-endian bytes.

Durability: Redis acknowledges a write once it is in its append-only file.
"Never loses an acknowledged story" holds only with ``appendonly yes`` and
``appendfsync always``. With ``appendfsync everysec`` (Redis' default when AOF
is on) a crash of the *machine* (not just of redis-server) can lose the last
second of acknowledged stories. Without AOF, a restart loses everything since
the last RDB snapshot. The backend logs a warning when the server is not set up
for "always"; see docs/scaleout.md.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from typing import Any, cast

import numpy as np
import redis

from wiretrace.backend import BackendStats
from wiretrace.shingling import U32, U64, shingle_hashes
from wiretrace.store import SCHEMA_VERSION, Candidate, SettingsMismatchError, StoryPrint, StoryRecord

log = logging.getLogger(__name__)

DEFAULT_PREFIX = b"wt:"
# Same table size as index.TermFrequencies' default, so weights agree with the
# embedded backend (tests/test_redis_backend.py checks it).
DF_BITS = 22
_DF_MASK = np.uint32((1 << DF_BITS) - 1)

# Shared by the write scripts: bucket and term-frequency bookkeeping.
_LUA_HELPERS = """
local p = ARGV[1]
local entries = 0
local docs = 0
local function count_terms(df, sign)
  local ops = {}
  for j = 1, #df, 4 do
    ops[#ops + 1] = 'INCRBY'
    ops[#ops + 1] = 'i32'
    ops[#ops + 1] = '#' .. struct.unpack('<I4', df, j)
    ops[#ops + 1] = sign
    if #ops >= 4000 then
      redis.call('BITFIELD', p .. 'df', unpack(ops))
      ops = {}
    end
  end
  if #ops > 0 then redis.call('BITFIELD', p .. 'df', unpack(ops)) end
  docs = docs + sign
end
local function drop(num)
  local skey = p .. 's:' .. num
  local old = redis.call('HMGET', skey, 'bk', 'df')
  if old[1] then
    local member = struct.pack('<I4', tonumber(num))
    for j = 1, #old[1], 8 do
      entries = entries - redis.call('SREM', p .. 'b:' .. string.sub(old[1], j, j + 7), member)
    end
    count_terms(old[2], -1)
  end
  redis.call('DEL', skey)
end
local function finish()
  redis.call('INCRBY', p .. 'entries', entries)
  redis.call('INCRBY', p .. 'docs', docs)
end
"""

# ARGV: prefix, then 9 values per story. Allocates numbers with INCR, drops a
# re-sent story's old record and bucket entries, writes the new ones.
_UPSERT_LUA = (
    _LUA_HELPERS
    + """
local out = {}
for b = 2, #ARGV, 9 do
  local sid = ARGV[b]
  local old = redis.call('HGET', p .. 'ids', sid)
  if old then drop(old) end
  local num = redis.call('INCR', p .. 'next')
  redis.call('HSET', p .. 's:' .. num, 'sid', sid, 'h', ARGV[b + 1], 'body', ARGV[b + 2], 'src', ARGV[b + 3],
             'pub', ARGV[b + 4], 'meta', ARGV[b + 5], 'tok', ARGV[b + 6], 'df', ARGV[b + 7], 'bk', ARGV[b + 8])
  redis.call('HSET', p .. 'ids', sid, num)
  local member = struct.pack('<I4', num)
  local bk = ARGV[b + 8]
  for j = 1, #bk, 8 do
    entries = entries + redis.call('SADD', p .. 'b:' .. string.sub(bk, j, j + 7), member)
  end
  count_terms(ARGV[b + 7], 1)
  out[#out + 1] = num
end
finish()
return out
"""
)

# ARGV: prefix, story ids. Returns how many existed.
_DELETE_LUA = (
    _LUA_HELPERS
    + """
local removed = 0
for i = 2, #ARGV do
  local num = redis.call('HGET', p .. 'ids', ARGV[i])
  if num then
    drop(num)
    redis.call('HDEL', p .. 'ids', ARGV[i])
    removed = removed + 1
  end
end
finish()
return removed
"""
)

# ARGV: prefix, distinct band keys (8 bytes each) concatenated. Returns
# {members of every bucket concatenated (<u4), member count per key (<u4)}.
_LOOKUP_LUA = """
local p = ARGV[1]
local keys = ARGV[2]
local members = {}
local counts = {}
for j = 1, #keys, 8 do
  local m = redis.call('SMEMBERS', p .. 'b:' .. string.sub(keys, j, j + 7))
  members[#members + 1] = table.concat(m)
  counts[#counts + 1] = struct.pack('<I4', #m)
end
return {table.concat(members), table.concat(counts)}
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
    """The distinct term-frequency buckets of a story's bigrams."""
    return np.unique(shingle_hashes(tokens, 2) & _DF_MASK)


class RedisBackend:
    """The Backend protocol on one Redis database shared by any number of replicas."""

    def __init__(
        self,
        client: redis.Redis,
        index_fingerprint: str,
        *,
        prefix: bytes = DEFAULT_PREFIX,
        location: str = "redis",
    ) -> None:
        started = time.perf_counter()
        self.client = client
        self.prefix = prefix
        self.location = location
        self._upsert = client.register_script(_UPSERT_LUA)
        self._delete = client.register_script(_DELETE_LUA)
        self._lookup = client.register_script(_LOOKUP_LUA)
        self._get = client.register_script(_GET_LUA)
        self._check_meta(b"schema_version", SCHEMA_VERSION)
        self._check_meta(b"index_settings", index_fingerprint)
        self.durable = self._check_durability()
        self.rebuild_seconds = time.perf_counter() - started

    # -- start-up checks ---------------------------------------------------

    def _check_meta(self, field: bytes, value: str) -> None:
        key = self.prefix + b"meta"
        self.client.hsetnx(key, field, value.encode())
        stored = cast(bytes | None, self.client.hget(key, field))
        if stored is not None and _s(stored) != value:
            raise SettingsMismatchError(
                f"{self.location} (key prefix {self.prefix.decode(errors='replace')!r}) was built with "
                f"{field.decode()}={_s(stored)}, but this process uses {value}; start with the store's settings "
                "or point --store at another database or prefix"
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

    # -- writes ------------------------------------------------------------

    def upsert(self, items: Sequence[tuple[StoryRecord, StoryPrint]]) -> None:
        """One atomic script per batch; returns once Redis has acknowledged (fsynced with AOF always)."""
        if not items:
            return
        args: list[bytes | str | int] = [self.prefix]
        for rec, pr in items:
            args += [
                rec.story_id,
                rec.headline,
                rec.body,
                rec.source,
                "" if rec.published_at_ns is None else str(rec.published_at_ns),
                json.dumps(rec.metadata, ensure_ascii=False, sort_keys=True),
                pr.tokens.astype("<u4").tobytes(),
                _df_buckets(pr.tokens).astype("<u4").tobytes(),
                pr.band_keys.astype("<u8").tobytes(),
            ]
        numbers = cast(list[int], self._upsert(args=args))
        if numbers and max(numbers) >= 1 << 32:
            raise OverflowError(f"{self.location}: story numbers exceed 32 bits")

    def delete(self, story_ids: Sequence[str]) -> int:
        if not story_ids:
            return 0
        return int(cast(int, self._delete(args=[self.prefix, *story_ids])))

    # -- reads -------------------------------------------------------------

    def get(self, story_id: str) -> StoryRecord | None:
        row = cast(list[bytes | None] | None, self._get(args=[self.prefix, story_id]))
        if not row or row[0] is None:
            return None
        sid, body, headline, source, pub, meta = (b"" if v is None else v for v in row)
        return StoryRecord(
            _s(sid), _s(body), _s(headline), _s(source), int(pub) if pub else None, json.loads(meta or b"{}")
        )

    def lookup(self, band_keys: U64) -> U32:
        """Story numbers sharing any of the band keys, with repeats, in one round trip."""
        if band_keys.size == 0:
            return np.empty(0, dtype=np.uint32)
        keys, multiplicity = np.unique(band_keys.astype(np.uint64, copy=False), return_counts=True)
        blob, counts_blob = cast(list[bytes], self._lookup(args=[self.prefix, keys.astype("<u8").tobytes()]))
        members = np.frombuffer(blob, dtype="<u4").astype(np.uint32)
        per_key = np.frombuffer(counts_blob, dtype="<u4").astype(np.int64)
        # A key asked for twice contributes its stories twice, as the embedded index does.
        return np.repeat(members, np.repeat(multiplicity, per_key))

    def term_weights(self, bigrams: U32) -> np.ndarray:
        """Informativeness of each bigram, from the shared document frequencies (one round trip)."""
        if bigrams.size == 0:
            return np.empty(0, dtype=np.float64)
        buckets, inverse = np.unique(bigrams & _DF_MASK, return_inverse=True)
        pipe = self.client.pipeline(transaction=False)
        pipe.get(self.prefix + b"docs")
        for chunk in range(0, buckets.size, 1000):
            offsets = [f"#{b}" for b in buckets[chunk : chunk + 1000].tolist()]
            pipe.bitfield_ro(self.prefix + b"df", "i32", offsets[0], [("i32", o) for o in offsets[1:]])
        docs, *parts = pipe.execute()
        df = np.maximum(np.fromiter((v for part in parts for v in part), np.float64, buckets.size), 0.0)[inverse]
        n = max(int(docs or 0), 1)
        weights: np.ndarray = np.log1p(n / (df + 1.0)) / np.log1p(n)
        return weights

    def candidates(self, numbers: Sequence[int]) -> list[Candidate]:
        if not len(numbers):
            return []
        pipe = self.client.pipeline(transaction=False)
        for n in numbers:
            pipe.hmget(self.prefix + b"s:" + str(int(n)).encode(), ["sid", "h", "body", "tok"])
        out: list[Candidate] = []
        for n, row in zip(numbers, cast(list[list[bytes | None]], pipe.execute()), strict=True):
            sid, headline, body, tok = row
            if sid is None or tok is None:  # replaced or deleted since the lookup
                continue
            tokens = np.frombuffer(tok, "<u4").astype(np.uint32, copy=False)
            out.append(Candidate(int(n), _s(sid), _s(headline or b""), _s(body or b""), tokens))
        return out

    def stats(self) -> BackendStats:
        pipe = self.client.pipeline(transaction=False)
        pipe.hlen(self.prefix + b"ids")
        pipe.get(self.prefix + b"entries")
        pipe.info("memory")
        stories, entries, memory = cast(tuple[int, bytes | None, dict[str, Any]], tuple(pipe.execute()))
        return BackendStats(
            stories=int(stories),
            index_entries=int(entries or 0),
            index_bytes=0,  # nothing resident in this process
            disk_bytes=int(memory.get("used_memory", 0)),
            rebuild_seconds=self.rebuild_seconds,
        )

    def close(self) -> None:
        self.client.close()


def open_redis_backend(url: str, index_fingerprint: str, *, prefix: bytes = DEFAULT_PREFIX) -> RedisBackend:
    """A RedisBackend for ``redis://[:password@]HOST:PORT/DB`` (also ``rediss://``, ``unix://``).

    Raises SettingsMismatchError when the database holds an index built with
    other settings, and redis.ConnectionError when the server is unreachable.
    """
    client = redis.Redis.from_url(url, decode_responses=False, health_check_interval=30)
    client.ping()
    kw = client.connection_pool.connection_kwargs  # names the server in messages, without the password
    where = kw.get("path") or f"{kw.get('host', 'localhost')}:{kw.get('port', 6379)}"
    location = f"redis {where} db {kw.get('db', 0)}"
    try:
        return RedisBackend(client, index_fingerprint, prefix=prefix, location=location)
    except BaseException:
        client.close()
        raise
