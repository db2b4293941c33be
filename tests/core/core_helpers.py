"""Helpers shared by the core tests (files, snapshots, subprocesses).

``start_python`` comes from the suites' shared :mod:`processes`.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

from processes import start_python as start_python  # re-exported for the core tests

import artifact_plugins as ap


def age_files(root: Path, seconds: float = 120.0) -> None:
    """Set mtimes of every file under ``root`` (or of ``root`` itself) into the past (checksum-cache eligible)."""
    t = time.time() - seconds
    paths = [root] if root.is_file() else [p for p in root.rglob("*") if p.is_file()]
    for p in paths:
        os.utime(p, (t, t))


def age_store(store: Path, seconds: float = 7200) -> None:
    """Set the mtime of every object of a local store into the past (older than gc's grace)."""
    t = time.time() - seconds
    for p in store.rglob("*"):
        if p.is_file():
            os.utime(p, (t, t))


def tree_bytes(root: Path) -> dict[str, bytes]:
    """Relative path -> bytes of every file under ``root``."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def store_files(store: Path) -> set[str]:
    """Relative paths of every file in the blob store."""
    if not store.exists():
        return set()
    return {p.relative_to(store).as_posix() for p in store.rglob("*") if p.is_file()}


def registry_dump(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every registry table, sorted (a byte-for-byte view of the metadata)."""
    if not db.exists():
        return {}
    conn = sqlite3.connect(db)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]
        return {t: sorted(conn.execute(f'SELECT * FROM "{t}"').fetchall(), key=repr) for t in tables}
    finally:
        conn.close()


def api_versions(api: ap.Api) -> list[tuple[Any, ...]]:
    """Every committed version of every collection, as the public Api reports them."""
    out: list[tuple[Any, ...]] = []
    for c in api.artifact_collections("*"):
        for v in api.artifact_versions(None, f"{c.project}/{c.name}"):
            out.append((v.qualified_name, v.digest, tuple(v.aliases), tuple(v.tags), v.description, v.metadata))
    return out


def run_python(code: str, *, timeout: float = 120, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter with this test's environment; fail loudly on error."""
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=os.environ.copy(),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, f"subprocess failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return proc


def wait_all(procs: list[subprocess.Popen[str]], timeout: float = 120) -> list[str]:
    """Wait for every process; assert they all succeeded; return their stdouts."""
    outs = []
    deadline = time.monotonic() + timeout
    for p in procs:
        try:
            out, err = p.communicate(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            raise
        assert p.returncode == 0, f"worker failed ({p.returncode}):\n{out}\n{err}"
        outs.append(out)
    return outs


BARRIER = """
def _barrier(name):
    import time
    from pathlib import Path
    Path(f"ready-{name}").touch()
    deadline = time.time() + 90
    while not Path("go").exists() and time.time() < deadline:
        time.sleep(0.002)
"""


def release_when_ready(cwd: Path, n: int, procs: list[subprocess.Popen[str]], timeout: float = 120) -> None:
    """Wait until ``n`` workers called ``_barrier`` (see :data:`BARRIER`) in ``cwd``, then let them all go at once."""
    deadline = time.monotonic() + timeout
    while len(list(cwd.glob("ready-*"))) < n:
        dead = [p for p in procs if p.poll() not in (None, 0)]
        if dead:
            out, err = dead[0].communicate()
            raise AssertionError(f"worker died before the barrier:\n{out}\n{err}")
        assert time.monotonic() < deadline, "workers never reached the barrier"
        time.sleep(0.01)
    (cwd / "go").touch()


FORK_LAUNCHER = """
import os, sys, traceback
# Preload what a worker needs, once; each forked worker is then a separate process that opens
# its own registry, store and caches (nothing is opened before the fork).
import artifact_plugins.core.api, artifact_plugins.core.run
import alembic.command, alembic.script, alembic.runtime.migration
n, body = int(sys.argv[1]), sys.argv[2]
pids = []
for i in range(n):
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.environ["AP_WORKER"] = str(i)
            exec(compile(body, f"<worker {i}>", "exec"), {"__name__": "__worker__"})
            code = 0
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    pids.append(pid)
failed = [i for i, pid in enumerate(pids) if os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) != 0]
sys.exit(f"workers {failed} failed" if failed else 0)
"""


def start_workers(body: str, n: int, *, cwd: Path) -> subprocess.Popen[str]:
    """Start ``n`` worker processes running ``body`` (``AP_WORKER`` = 0..n-1) from one fresh interpreter."""
    return subprocess.Popen(
        [sys.executable, "-c", FORK_LAUNCHER, str(n), textwrap.dedent(body)],
        env=os.environ.copy(),
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
