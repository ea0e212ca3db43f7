"""Several processes on one data dir: each keeps its own index current from
the store's change log, so what one acknowledged every other one matches.

First two detectors in this process (two stores, two indexes: exactly what two
server processes hold), compared with a detector opened afterwards from the
store alone; then `wiretrace serve --processes 2` as real processes.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import psutil
import pytest

from tests.helpers import free_port, make_settings, serve_process, stories
from tests.synth import NewsGen
from wiretrace.client import WiretraceClient
from wiretrace.engine import Detector
from wiretrace.store import SQLiteStore
from wiretrace.types import StoryRecord, Verdict

pytestmark = pytest.mark.slow  # real server processes, started and killed


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[Detector, Detector]]:
    """Two detectors on one data dir: what two server processes hold."""
    settings = make_settings(tmp_path / "data")
    one, two = Detector.open(settings), Detector.open(settings)
    yield one, two
    one.close()
    two.close()


def _top(detector: Detector, text: str) -> str | None:
    result = detector.match(text, top_k=1)
    return result.matches[0].story_id if result.matches else None


def _assert_same_state(a: Detector, b: Detector, probes: list[StoryRecord]) -> None:
    """Same term statistics, and the same stories behind every probe's band keys."""
    ta, tb = a.backend.terms, b.backend.terms  # type: ignore[attr-defined]
    assert ta.documents == tb.documents
    assert np.array_equal(ta._counts, tb._counts)
    for rec in probes:
        keys = a.pipeline.article(rec.body, a.settings.match.query_step).window_keys.reshape(-1)
        # Story numbers are the store's, so both processes name stories alike.
        assert sorted(set(a.backend.lookup(keys).tolist())) == sorted(set(b.backend.lookup(keys).tolist()))


def test_writes_through_one_detector_are_matched_by_another(
    tmp_path: Path, news: NewsGen, pair: tuple[Detector, Detector]
) -> None:
    one, two = pair
    wire = stories(news, 12, prefix="p")
    one.upsert(wire[:8])
    assert [_top(two, r.body) for r in wire[:8]] == [r.story_id for r in wire[:8]]

    two.upsert(wire[8:])  # and the other way round
    assert [_top(one, r.body) for r in wire[8:]] == [r.story_id for r in wire[8:]]

    assert two.delete([wire[0].story_id]) == 1
    assert _top(one, wire[0].body) is None

    replacement = StoryRecord(wire[1].story_id, news.article(), headline="rewritten")
    one.upsert([replacement])
    assert _top(two, replacement.body) == wire[1].story_id
    assert _top(two, wire[1].body) is None

    # Added and removed again before the other looks: never counted there.
    passing = stories(news, 3, prefix="gone")
    one.upsert(passing)
    one.delete([r.story_id for r in passing])
    assert _top(two, passing[0].body) is None

    fresh = Detector.open(make_settings(tmp_path / "data"))
    try:
        probes = [replacement, *wire[2:], *passing]
        for d in (one, two):
            d.backend.refresh()
            _assert_same_state(d, fresh, probes)
    finally:
        fresh.close()


def test_a_detector_behind_the_pruned_log_rebuilds(
    tmp_path: Path, news: NewsGen, pair: tuple[Detector, Detector]
) -> None:
    one, two = pair
    wire = stories(news, 6, prefix="r")
    one.upsert(wire[:3])
    one.upsert(wire[3:])
    with sqlite3.connect(tmp_path / "data" / SQLiteStore.FILENAME) as db:  # as retention would
        db.execute("DELETE FROM changes")
    assert [_top(two, r.body) for r in wire] == [r.story_id for r in wire]
    _assert_same_state(one, two, wire)


def _children(pid: int) -> list[psutil.Process]:
    """The server processes (spawn also starts a resource tracker, which serves nothing)."""
    return [c for c in psutil.Process(pid).children() if "spawn_main" in " ".join(c.cmdline())]


def _listening(pid: int, port: int) -> set[int]:
    """Children with a socket listening on `port`."""
    out = set()
    for child in _children(pid):
        with contextlib.suppress(psutil.Error):
            if any(c.status == psutil.CONN_LISTEN and c.laddr.port == port for c in child.net_connections("tcp")):
                out.add(child.pid)
    return out


def _match_on_fresh_connections(address: str, wire: list[StoryRecord], n: int = 16) -> list[str | None]:
    """Each match on a new connection: the kernel spreads connections over the processes."""
    found = []
    for i in range(n):
        rec = wire[i % len(wire)]
        with WiretraceClient(address, timeout=30) as client:
            result = client.match(rec.body, top_k=1)
            ok = result.verdict == Verdict.VERBATIM and result.matches[0].story_id == rec.story_id
            found.append(rec.story_id if ok else None)
    return found


@pytest.mark.timeout(180)
def test_serve_processes_share_one_data_dir(tmp_path: Path, news: NewsGen) -> None:
    port = free_port()
    with serve_process(tmp_path / "data", "--processes", "2", "--port", str(port)) as (proc, address):
        assert address.endswith(f":{port}")
        assert len(_listening(proc.pid, port)) == 2
        wire = stories(news, 10, prefix="mp")
        with WiretraceClient(address, timeout=30) as client:
            assert client.index_stories(wire[:6]).indexed == 6
        # 16 connections all on one of two processes: odds 1 in 30,000.
        assert _match_on_fresh_connections(address, wire[:6]) == [wire[i % 6].story_id for i in range(16)]

        victim = _children(proc.pid)[0]
        os.kill(victim.pid, signal.SIGKILL)
        with contextlib.suppress(psutil.NoSuchProcess):
            victim.wait(timeout=10)  # gone, its socket with it: new connections reach the other one
        with WiretraceClient(address, timeout=30) as client:  # the other one still serves, and takes writes
            assert client.index_stories(wire[6:]).indexed == 4
        deadline = time.monotonic() + 60
        while len(_listening(proc.pid, port) - {victim.pid}) < 2:  # restarted, index rebuilt, bound
            assert time.monotonic() < deadline, "the killed process was not restarted"
            time.sleep(0.2)
        assert _match_on_fresh_connections(address, wire) == [wire[i % 10].story_id for i in range(16)]

        kids = _children(proc.pid)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        assert not any(k.is_running() and k.status() != psutil.STATUS_ZOMBIE for k in kids)


def test_children_stop_when_the_supervisor_is_killed(tmp_path: Path) -> None:
    port = free_port()
    with serve_process(tmp_path / "data", "--processes", "2", "--port", str(port)) as (proc, _):
        kids = _children(proc.pid)
        assert len(kids) == 2
        os.kill(proc.pid, signal.SIGKILL)
        _, alive = psutil.wait_procs(kids, timeout=30)
        assert alive == []  # nothing left holding the port


def test_processes_need_a_fixed_port(tmp_path: Path) -> None:
    from wiretrace.server.supervisor import Supervisor

    with pytest.raises(ValueError, match="fixed --port"):
        Supervisor(make_settings(tmp_path / "data", processes=2, port=0))


def test_an_idle_detector_keeps_up(news: NewsGen, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr("wiretrace.embedded_backend.REFRESH_S", 0.05)  # before the detectors start their refreshers
    settings = make_settings(tmp_path / "data")
    one, two = Detector.open(settings), Detector.open(settings)
    try:
        one.upsert(stories(news, 4, prefix="idle"))
        deadline = time.monotonic() + 10
        while two.backend.index.entries < one.backend.index.entries:  # type: ignore[attr-defined]
            assert time.monotonic() < deadline, "no match was asked for, and nothing caught up"
            time.sleep(0.05)
    finally:
        one.close()
        two.close()
