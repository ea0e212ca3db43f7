"""Store faults seen from outside, through the gRPC API: the store going away and the disk filling up.

Real parts only: a redis-server process killed with SIGKILL and started again on
its files, and the embedded store on a real 4 MB tmpfs filled to the last byte.
The answers must be statuses with a message (UNAVAILABLE, RESOURCE_EXHAUSTED),
never UNKNOWN or INTERNAL; health must say NOT_SERVING while the store is
unreachable; and the same server must recover by itself, losing nothing it
acknowledged.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.helpers import make_settings, stories
from tests.redis_server import REDIS_SERVER, SKIP_REASON, RedisServer
from tests.synth import NewsGen
from wiretrace.client import ResourceExhausted, Unavailable, WiretraceClient
from wiretrace.server import SERVICE_NAME, WiretraceServer
from wiretrace.types import StoryRecord, Verdict

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def _eventually(what: Callable[[], bool], timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if what():
            return True
        time.sleep(0.1)
    return what()


def _health(address: str) -> int:
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        return int(stub.Check(health_pb2.HealthCheckRequest(service=SERVICE_NAME), timeout=5).status)


def _all_match(client: WiretraceClient, records: list[StoryRecord]) -> None:
    for rec in records:
        result = client.match(rec.body, top_k=1)
        assert result.verdict == Verdict.VERBATIM, rec.story_id
        assert result.matches[0].story_id == rec.story_id


@pytest.mark.slow
@pytest.mark.skipif(REDIS_SERVER is None, reason=SKIP_REASON)
@pytest.mark.timeout(120)
def test_redis_killed_under_a_replica_answers_unavailable_and_recovers(tmp_path: Path, news: NewsGen) -> None:
    redis = RedisServer(tmp_path / "redis").start()
    srv = WiretraceServer(make_settings(tmp_path / "data", store=redis.url)).start()
    try:
        acknowledged = stories(news, 12, "r")
        with WiretraceClient(srv.address, timeout=10) as client:
            assert client.index_stories(acknowledged).indexed == 12
            assert _health(srv.address) == SERVING

            redis.kill()
            with pytest.raises(Unavailable) as match_err:
                client.match(acknowledged[0].body)
            assert "unreachable" in match_err.value.message and "redis 127.0.0.1" in match_err.value.message
            with pytest.raises(Unavailable) as index_err:
                client.index_stories(stories(news, 3, "lost"))
            assert "unreachable" in index_err.value.message
            for call in (client.stats, lambda: client.get_story("r0"), lambda: client.delete(["r0"])):
                with pytest.raises(Unavailable):
                    call()
            assert _eventually(lambda: _health(srv.address) == NOT_SERVING)

            redis.start()  # the same files: the append-only log holds every acknowledged story
            assert _eventually(lambda: _health(srv.address) == SERVING)
            _all_match(client, acknowledged)
            again = stories(news, 3, "after")
            assert client.index_stories(again).indexed == 3
            _all_match(client, again)
    finally:
        srv.stop(grace=0)
        redis.stop()


@contextlib.contextmanager
def _small_filesystem(path: Path, size: str = "4m") -> Iterator[Path]:
    """A real tmpfs of `size` mounted at `path` (needs root, as CI and the dev machines have)."""
    path.mkdir(parents=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode(errors='replace').strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def _fill(directory: Path) -> Path:
    """Write a file until the filesystem has no byte left; returns it (delete it to free the space)."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        size = 1 << 16
        while size:
            try:
                os.write(fd, b"\0" * size)
            except OSError as err:
                assert err.errno == errno.ENOSPC
                size //= 2
    finally:
        os.close(fd)
    return filler


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_full_disk_answers_resource_exhausted_and_recovers(tmp_path: Path, news: NewsGen) -> None:
    with _small_filesystem(tmp_path / "small") as small:
        srv = WiretraceServer(make_settings(small / "data", index_batch_size=4)).start()
        try:
            with WiretraceClient(srv.address, timeout=30) as client:
                acknowledged = stories(news, 10, "d")
                assert client.index_stories(acknowledged).indexed == 10
                filler = _fill(small)

                # Streams of fresh stories until one fails: the disk is full now, so one must.
                with pytest.raises(ResourceExhausted) as err:
                    for n in range(20):
                        batch = stories(news, 8, f"full{n}-")
                        client.index_stories(batch)
                        acknowledged += batch
                assert "disk" in err.value.message and "full" in err.value.message
                assert _health(srv.address) == SERVING  # reads work: balancers keep sending matches
                _all_match(client, acknowledged)
                assert client.stats()[0].stories >= len(acknowledged)

                filler.unlink()
                more = stories(news, 5, "freed")
                assert client.index_stories(more).indexed == 5
                _all_match(client, more)
        finally:
            srv.stop(grace=0)
