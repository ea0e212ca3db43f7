"""What the tests (and the benchmarks) share: free ports, a server in a subprocess, settings and text.

Kept apart from ``conftest.py`` so that ``benchmarks/`` can import it too
(``from tests.helpers import serve_process``); nothing here needs pytest.
"""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.synth import NewsGen
from wiretrace.config import Settings
from wiretrace.types import StoryRecord


def free_port() -> int:
    """A loopback port nothing listens on now (for servers that need a fixed one)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve_process(
    data_dir: Path, *args: str, log_level: str = "WARNING", stderr: bool = False
) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """Start `wiretrace serve --port 0 ARGS` in a child interpreter and read the address it prints (stderr piped if
    asked). Later ARGS override the defaults (`--port`, `--grace-seconds`); killed if still running at the end."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "wiretrace.cli", "--log-level", log_level, "serve", "--data-dir", str(data_dir),
         "--port", "0", "--grace-seconds", "2", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE if stderr else None,
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


def wait_for(condition: Callable[[], bool], timeout: float = 15.0) -> float:
    """Seconds until `condition` held (polled every 50 ms); fails after `timeout`."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, "timed out"
        time.sleep(0.05)
    return time.monotonic() - started


def make_settings(data_dir: Path, **server: Any) -> Settings:
    """Test settings: loopback, free port, small limits so the limit paths are cheap to hit."""
    overrides: dict[str, Any] = {
        "data_dir": data_dir,
        "host": "127.0.0.1",
        "port": 0,
        "workers": 4,
        "max_text_bytes": 64 * 1024,
        "max_message_bytes": 1024 * 1024,
        "index_batch_size": 7,
        "grace_seconds": 1.0,
    }
    overrides.update(server)
    return Settings.load(overrides, environ={})


def stories(gen: NewsGen, n: int, prefix: str = "s") -> list[StoryRecord]:
    return [
        StoryRecord(story_id=f"{prefix}{i}", body=gen.article(), headline=f"Headline {prefix}{i}", source="TEST")
        for i in range(n)
    ]


# Words of several scripts, for Unicode round trips (letters only: what matters
# is that every script tokenises and that offsets survive the wire).
_SCRIPTS = {
    "urdu": [
        "حکومت",
        "وزیر",
        "اعظم",
        "اسلام",
        "آباد",
        "پاکستان",
        "عدالت",
        "فیصلہ",
        "انتخابات",
        "معیشت",
        "بجٹ",
        "قیمت",
        "اضافہ",
        "عوام",
        "پارلیمان",
    ],
    "arabic": [
        "الحكومة",
        "الوزير",
        "دمشق",
        "حلب",
        "المدينة",
        "الجيش",
        "قوات",
        "المعارضة",
        "السلطات",
        "الاقتصاد",
        "النفط",
        "الأسعار",
        "الشعب",
    ],
    "cyrillic": [
        "правительство",
        "министр",
        "москва",
        "суд",
        "решение",
        "выборы",
        "экономика",
        "бюджет",
        "цены",
        "рост",
        "народ",
        "парламент",
    ],
    "cjk": list("政府部长北京法院决定选举经济预算价格增长人民议会東京新聞報道"),
    "emoji": ["🚀", "🌍", "📈", "🗳️", "👩‍👩‍👧", "🇵🇰"],
}


def multilingual(seed: int, words: int = 160) -> str:
    """A seeded text mixing scripts, with RTL/LTR marks and emoji between words."""
    rng = random.Random(seed)
    pool = [w for ws in _SCRIPTS.values() for w in ws]
    out: list[str] = []
    for i in range(words):
        w = rng.choice(pool)
        if i % 11 == 0:
            w = "\u200f" + w  # RIGHT-TO-LEFT MARK
        if i % 13 == 0:
            w = w + "\u200e"  # LEFT-TO-RIGHT MARK
        out.append(w)
        if i % 17 == 16:
            out.append("۔\n\n")
    return " ".join(out)
