"""Progress reporting for transfers: rich bars in a terminal, periodic lines in orchestrator logs."""

from __future__ import annotations

import logging
import threading
import time
from contextlib import AbstractContextManager
from typing import Any, Protocol

logger = logging.getLogger("artifact_plugins.transfer")

LOG_INTERVAL_S = 5.0


class Progress(AbstractContextManager["Progress"], Protocol):
    """Receives the progress of one transfer."""

    def advance(self, nbytes: int, files: int = 1) -> None:
        """Record that ``files`` files totalling ``nbytes`` bytes are done."""


class LogProgress:
    """Logs ``label: 40% (1.2 GB of 3.0 GB, 410/1000 files)`` at most every few seconds.

    Orchestrators capture the ``artifact_plugins`` logger, so long transfers show up in task logs.
    Transfers that finish within the first interval log nothing.
    """

    def __init__(self, label: str, total_bytes: int, total_files: int, interval: float = LOG_INTERVAL_S) -> None:
        self.label, self.total_bytes, self.total_files, self.interval = label, total_bytes, total_files, interval
        self.done_bytes = self.done_files = 0
        self._start = self._last = time.monotonic()
        self._lock = threading.Lock()
        self._logged = False

    def __enter__(self) -> LogProgress:
        return self

    def advance(self, nbytes: int, files: int = 1) -> None:
        with self._lock:
            self.done_bytes += nbytes
            self.done_files += files
            now = time.monotonic()
            if now - self._last >= self.interval:
                self._last = now
                self._logged = True
                logger.info("%s", self.line())

    def line(self) -> str:
        """The current progress as one human-readable line."""
        pct = 100.0 * self.done_bytes / self.total_bytes if self.total_bytes else 100.0
        rate = self.done_bytes / max(time.monotonic() - self._start, 1e-9)
        return (
            f"{self.label}: {pct:.0f}% ({human_bytes(self.done_bytes)} of {human_bytes(self.total_bytes)}, "
            f"{self.done_files}/{self.total_files} files, {human_bytes(int(rate))}/s)"
        )

    def __exit__(self, *exc: Any) -> None:
        if self._logged and exc[0] is None:
            logger.info("%s done in %.1fs", self.label, time.monotonic() - self._start)


def human_bytes(n: int) -> str:
    """``1536`` -> ``1.5 KiB``."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def progress_for(label: str, total_bytes: int, total_files: int) -> Progress:
    """A progress sink from the installed factory (the CLI installs rich bars) or a logging one."""
    if _global_factory is not None:
        result: Progress = _global_factory(label, total_bytes, total_files)
        return result
    return LogProgress(label, total_bytes, total_files)


_global_factory: Any = None


def set_progress_factory(factory: Any) -> None:
    """Install a callable ``(label, total_bytes, total_files) -> Progress`` for this process."""
    global _global_factory
    _global_factory = factory
