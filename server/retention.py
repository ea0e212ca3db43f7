"""Retention: stories older than --retain-days are deleted in the background.

A newsroom runs the service for months against the live wire; without this
the index only grows. A pass runs when the server starts and then every
--retain-check-seconds: it deletes, oldest first and a batch per transaction
(so ingest and matches go on meanwhile), every story whose published_at is
more than the retention period before now, from the store and the index, and
gives the space back. Stories without published_at are kept. A pass that
fails (the store went away) is logged and tried again at the next one.
"""

from __future__ import annotations

import logging
import threading
import time

from wiretrace.engine import Detector
from wiretrace.types import NS_PER_DAY

log = logging.getLogger("wiretrace.retention")


class Retention:
    """The background thread; `stop()` waits for a pass in progress to finish its batch."""

    def __init__(self, detector: Detector, days: int, every_s: float) -> None:
        self.detector = detector
        self.days = days
        self.every_s = every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="wiretrace-retention", daemon=True)

    def start(self) -> Retention:
        self._thread.start()
        return self

    def run_once(self) -> int:
        """One pass now; returns how many stories it deleted."""
        return self.detector.expire(time.time_ns() - self.days * NS_PER_DAY)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception as exc:  # the store is busy or gone: the next pass tries again
                log.warning("retention pass failed (%s: %s); retrying in %.0fs", type(exc).__name__, exc, self.every_s)
            self._stop.wait(self.every_s)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
