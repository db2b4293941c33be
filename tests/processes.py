"""Child interpreters for tests that need real processes (importable from every suite)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path


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
