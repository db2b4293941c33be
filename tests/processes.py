"""Child interpreters for tests that need real processes (importable from every suite)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def start_python(code: str, *, cwd: Path | None = None) -> subprocess.Popen[str]:
    """Start ``code`` in a fresh interpreter with this test's environment."""
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=os.environ.copy(),
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_file(path: Path, proc: subprocess.Popen[str], timeout: float = 60) -> None:
    """Wait until ``proc`` creates ``path``; fail with its output if it ends first."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"the process ended ({proc.returncode}) before {path.name}:\n{out}\n{err}")
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.01)


def finish(proc: subprocess.Popen[str], timeout: float = 120) -> tuple[str, str]:
    """Wait for ``proc``; assert it succeeded; return its stdout and stderr."""
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, f"process failed ({proc.returncode}):\n{out}\n{err}"
    return out, err


def hold_up_a_commit(code: str, marker: Path, while_held: Callable[[], None], lease_seconds: float = 1.0) -> str:
    """Run ``code`` (a log) in a child that stops itself (``SIGSTOP``: every thread, so its lease
    renewals too) once its first commit has asked the store which blobs it has and sent the
    others; call ``while_held()`` once its store turn's lease (``lease_seconds``) has run out,
    then continue it. Returns the child's stderr; it must succeed."""
    stop = f"""
import os, signal
from pathlib import Path
from artifact_plugins.core import run as _run
_upload, _stopped = _run.upload_blobs, []
def _stop_once(*args, **kwargs):
    sent = _upload(*args, **kwargs)
    if not _stopped:
        _stopped.append(True)
        Path({str(marker)!r}).touch()
        os.kill(os.getpid(), signal.SIGSTOP)
    return sent
_run.upload_blobs = _stop_once
"""
    proc = start_python(stop + textwrap.dedent(code))
    try:
        wait_for_file(marker, proc)
        deadline = time.monotonic() + 30
        while Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "T":
            assert proc.poll() is None and time.monotonic() < deadline, "the child never stopped"
            time.sleep(0.01)
        time.sleep(lease_seconds + 0.5)
        while_held()
    finally:
        proc.send_signal(signal.SIGCONT)
    return finish(proc)[1]


def count_forks(monkeypatch: Any) -> list[int]:
    """The pids of the children ``artifact_plugins.core.forked`` forks from here on; batches of a
    few hundred items are forked, by a test process of any size (a whole suite's is large)."""
    from artifact_plugins.core import forked

    monkeypatch.setattr(forked, "FORK_MIN_ITEMS", 100)
    monkeypatch.setattr(forked, "STAT_FORK_MIN_ITEMS", 100)
    monkeypatch.setattr(forked, "RESIDENT_BYTES_PER_ITEM", 2**40)
    pids: list[int] = []
    real_fork = forked._fork

    def counted() -> int:
        pid = real_fork()
        if pid:
            pids.append(pid)
        return pid

    monkeypatch.setattr(forked, "_fork", counted)
    return pids
