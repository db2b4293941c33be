"""Team-mode fixtures: a real PostgreSQL server and a fresh database per test.

Uses the server on 127.0.0.1:5432 when one answers (these machines run one, trust auth);
otherwise starts a throwaway cluster from the system's PostgreSQL binaries.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _answers(dsn: str) -> bool:
    try:
        with psycopg.connect(dsn, connect_timeout=3):
            return True
    except psycopg.Error:
        return False


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
    """A libpq base URL (without database) of a running PostgreSQL server."""
    system = "postgresql://postgres@127.0.0.1:5432"
    if _answers(system + "/postgres"):
        yield system
        return
    data = Path(tempfile.mkdtemp(prefix="ap-pg-"))
    port = _free_port()
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_user:
        shutil.chown(data, "postgres")
    subprocess.run(
        [*as_user, _pg_bin("initdb"), "-D", str(data / "db"), "-A", "trust", "-U", "postgres"],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            *as_user,
            _pg_bin("pg_ctl"),
            "-D",
            str(data / "db"),
            "-o",
            f"-p {port} -k {data} -h 127.0.0.1",
            "-l",
            str(data / "log"),
            "-w",
            "start",
        ],
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}"
    finally:
        subprocess.run(
            [*as_user, _pg_bin("pg_ctl"), "-D", str(data / "db"), "-m", "immediate", "stop"], capture_output=True
        )
        shutil.rmtree(data, ignore_errors=True)


@pytest.fixture
def pg_url(pg_server: str) -> Iterator[str]:
    """An SQLAlchemy URL of a fresh, empty database, dropped afterwards."""
    name = f"ap_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server + "/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield pg_server.replace("postgresql://", "postgresql+psycopg://") + "/" + name
    from artifact_plugins.core import client

    for c in list(client._clients.values()):
        if name in c.settings.registry and "registry" in c.__dict__:
            c.registry.engine.dispose()
    client._clients.clear()
    with psycopg.connect(pg_server + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def team_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Environment shared by the test process and its workers (store and work dirs in tmp_path)."""
    env = {
        "ARTIFACT_PLUGINS_STORE": str(tmp_path / "store"),
        "ARTIFACT_PLUGINS_CACHE_DIR": str(tmp_path / "cache"),
        "ARTIFACT_PLUGINS_CONFIG": str(tmp_path / "no-config.toml"),
        "TEAM_WORK": str(tmp_path / "work"),
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    from artifact_plugins.core import client, run

    client._clients.clear()
    run._current.set(None)
    return env
