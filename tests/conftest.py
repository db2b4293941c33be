"""Fixtures shared by every suite: file trees and a real PostgreSQL server.

Kept import-light (no orchestrator, no database driver at import time): the Airflow suite, which
sets Airflow's environment in its own conftest before importing it, loads this file too.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest


@pytest.fixture
def make_tree(tmp_path: Path) -> Callable[[str, dict[str, str | bytes]], Path]:
    """``make_tree("src", {"a.txt": "x", "d/b.bin": b"..."})`` writes files and returns the directory."""

    def make(name: str, files: dict[str, str | bytes]) -> Path:
        root = tmp_path / name
        root.mkdir(parents=True, exist_ok=True)
        for rel, content in files.items():
            p = root / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                p.write_bytes(content)
            else:
                p.write_text(content, encoding="utf-8")
        return root

    return make


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pg_bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    for root in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (root / name).exists():
            return str(root / name)
    raise RuntimeError(f"PostgreSQL binary {name} not found; install postgresql")


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """A libpq base URL (no database) of a running PostgreSQL server.

    The one on 127.0.0.1:5432 when it answers (these machines run one, trust auth); otherwise a
    throwaway cluster started from the system's PostgreSQL binaries for this session.
    """
    import psycopg

    system = "postgresql://postgres@127.0.0.1:5432"
    try:
        with psycopg.connect(system + "/postgres", connect_timeout=3):
            pass
        yield system
        return
    except psycopg.Error:
        pass
    data = Path(tempfile.mkdtemp(prefix="ap-pg-"))
    port = _free_port()
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []  # initdb refuses root
    if as_user:
        shutil.chown(data, "postgres")
    subprocess.run(
        [*as_user, _pg_bin("initdb"), "-D", str(data / "db"), "-A", "trust", "-U", "postgres"],
        check=True,
        capture_output=True,
    )
    ctl = [*as_user, _pg_bin("pg_ctl"), "-D", str(data / "db")]
    subprocess.run(
        [*ctl, "-o", f"-p {port} -k {data} -h 127.0.0.1", "-l", str(data / "log"), "-w", "start"],
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}"
    finally:
        subprocess.run([*ctl, "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(data, ignore_errors=True)
