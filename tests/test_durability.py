"""`wiretrace serve` as a real process: kill -9 right after IndexStories returns
loses nothing, and SIGTERM shuts down cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from conftest import stories
from synth import NewsGen

from wiretrace.client import WiretraceClient
from wiretrace.scoring import Verdict


@contextmanager
def serve_process(data_dir: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """Start `wiretrace serve --port 0` and read the address it prints."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "wiretrace.cli", "--log-level", "WARNING", "serve", "--data-dir", str(data_dir),
         "--port", "0", "--grace-seconds", "2"],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("wiretrace listening on "), line
        yield proc, line.split()[-1]
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


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
            result = client.match(rec.body, top_k=1)
            assert result.verdict == Verdict.VERBATIM
            assert result.matches[0].story_id == rec.story_id


def test_sigterm_shuts_down_gracefully(tmp_path: Path) -> None:
    with serve_process(tmp_path / "data") as (proc, address):
        with WiretraceClient(address) as client:
            client.wait_ready()
            client.index_stories([{"story_id": "a", "body": "one two three four five six seven"}])
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
