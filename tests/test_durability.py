"""`wiretrace serve` as a real process: kill -9 right after IndexStories returns
loses nothing, kill -9 in the middle of a stream keeps whole committed batches
(and a re-send completes it), and SIGTERM drains: health NOT_SERVING first,
calls still taken for --drain-seconds, then in-flight calls finish."""

from __future__ import annotations

import json
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.helpers import serve_process, stories, wait_for
from tests.synth import NewsGen
from wiretrace.client import Cancelled, IndexResult, Unavailable, WiretraceClient, WiretraceError
from wiretrace.server import SERVICE_NAME
from wiretrace.types import StoryRecord, Verdict

pytestmark = pytest.mark.slow  # real server processes, started and killed


def test_kill_9_after_index_loses_nothing(tmp_path: Path, news: NewsGen) -> None:
    wire = stories(news, 40, prefix="durable-")
    data = tmp_path / "data"
    with serve_process(data) as (proc, address):
        with WiretraceClient(address) as client:
            client.wait_ready()
            result = client.index_stories(wire)
            os.kill(proc.pid, signal.SIGKILL)  # no chance to flush or close anything
        assert result.indexed == 40
        assert proc.wait(timeout=10) == -signal.SIGKILL

    with serve_process(data) as (_, address), WiretraceClient(address) as client:
        client.wait_ready()
        assert client.stats()[0].stories == 40
        for rec in wire:
            assert client.get_story(rec.story_id) == rec
        for rec in wire[::5]:
            found = client.match(rec.body, top_k=1)
            assert found.verdict == Verdict.VERBATIM
            assert found.matches[0].story_id == rec.story_id


def test_sigterm_shuts_down_gracefully(tmp_path: Path) -> None:
    with serve_process(tmp_path / "data") as (proc, address):
        with WiretraceClient(address) as client:
            client.wait_ready()
            client.index_stories([{"story_id": "a", "body": "one two three four five six seven"}])
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0


def held_stream(records: list[StoryRecord], hold_after: int, release: threading.Event) -> Iterator[StoryRecord]:
    """Yields `hold_after` stories, waits for `release`, then the rest: a stream kept in flight."""
    yield from records[:hold_after]
    release.wait(30)
    yield from records[hold_after:]


def test_kill_9_during_a_stream(tmp_path: Path, news: NewsGen) -> None:
    """Acknowledged streams survive whole; of the interrupted one, only whole batches
    committed before the kill are there, and re-sending it completes it (ids upsert)."""
    acked = [stories(news, 15, prefix="a1-"), stories(news, 15, prefix="a2-")]
    pending = stories(news, 40, prefix="b-")
    data = tmp_path / "data"
    release = threading.Event()
    failure: list[BaseException] = []
    with serve_process(data, "--index-batch-size", "5") as (proc, address):
        with WiretraceClient(address) as client:
            client.wait_ready()
            for wire in acked:
                assert client.index_stories(wire).indexed == 15

            def send() -> None:
                try:
                    client.index_stories(held_stream(pending, 23, release))
                except BaseException as exc:
                    failure.append(exc)

            sender = threading.Thread(target=send)
            sender.start()
            # 23 stories read: four batches of 5 committed, 3 waiting in the fifth.
            wait_for(lambda: client.stats()[0].stories == 30 + 20)
            os.kill(proc.pid, signal.SIGKILL)
            assert proc.wait(timeout=10) == -signal.SIGKILL
            release.set()
            sender.join(timeout=15)
        [error] = failure  # the stream was never acknowledged: the client knows to re-send it
        assert isinstance(error, WiretraceError) and error.code == grpc.StatusCode.UNAVAILABLE

    with serve_process(data) as (_, address), WiretraceClient(address) as client:
        client.wait_ready()
        for wire in acked:
            for rec in wire:
                assert client.get_story(rec.story_id) == rec
            for rec in wire[::4]:
                assert client.match(rec.body, top_k=1).matches[0].story_id == rec.story_id
        present = {rec.story_id for rec in pending if _exists(client, rec.story_id)}
        assert present == {rec.story_id for rec in pending[:20]}
        assert client.stats()[0].stories == 50

        assert client.index_stories(pending).indexed == 40  # the re-send
        assert client.stats()[0].stories == 70  # replaced, not duplicated
        for rec in pending:
            assert client.get_story(rec.story_id) == rec
        for rec in pending[::7]:
            result = client.match(rec.body, top_k=2)
            assert [m.story_id for m in result.matches] == [rec.story_id]


def _exists(client: WiretraceClient, story_id: str) -> bool:
    try:
        client.get_story(story_id)
    except WiretraceError as err:
        assert err.code == grpc.StatusCode.NOT_FOUND
        return False
    return True


def test_sigterm_drains_then_finishes_in_flight_calls(tmp_path: Path, news: NewsGen) -> None:
    wire = stories(news, 12, prefix="drain-")
    data = tmp_path / "data"
    release = threading.Event()
    outcome: list[object] = []
    args = ("--index-batch-size", "3", "--drain-seconds", "3", "--grace-seconds", "20", "--log-format", "json")
    with serve_process(data, *args, log_level="INFO", stderr=True) as (proc, address):
        with WiretraceClient(address) as client, grpc.insecure_channel(address) as channel:
            client.wait_ready()
            health = health_pb2_grpc.HealthStub(channel)

            def status() -> int:
                return int(health.Check(health_pb2.HealthCheckRequest(service=SERVICE_NAME), timeout=5).status)

            sender = threading.Thread(
                target=lambda: outcome.append(client.index_stories(held_stream(wire, 6, release), timeout=60))
            )
            sender.start()
            wait_for(lambda: client.stats()[0].stories == 6)
            assert status() == health_pb2.HealthCheckResponse.SERVING

            proc.send_signal(signal.SIGTERM)
            wait_for(lambda: status() == health_pb2.HealthCheckResponse.NOT_SERVING)
            # Draining: health says go away, yet calls are still answered.
            assert client.stats(timeout=5)[0].stories == 6

            def refused() -> bool:
                try:
                    client.stats(timeout=2)
                except (Unavailable, Cancelled):  # gRPC answers either while it shuts down
                    return True
                return False

            wait_for(refused)  # after --drain-seconds the server stops taking new calls...
            assert proc.poll() is None and sender.is_alive()
            release.set()  # ...but the stream in flight finishes and is acknowledged
            sender.join(timeout=20)
        [result] = outcome
        assert result == IndexResult(indexed=12)
        assert proc.wait(timeout=20) == 0
        assert proc.stderr is not None
        lines = [json.loads(line) for line in proc.stderr.read().splitlines()]
    messages = [line["message"] for line in lines]
    assert "received SIGTERM, shutting down" in messages
    assert "health is NOT_SERVING; still taking calls for 3.0s" in messages
    assert messages[-1] == "wiretrace stopped"
    requests = [(line["method"], line["code"]) for line in lines if line["logger"] == "wiretrace.requests"]
    assert ("IndexStories", "OK") in requests

    with serve_process(data) as (_, address), WiretraceClient(address) as client:
        client.wait_ready()
        assert client.stats()[0].stories == 12
