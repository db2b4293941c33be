"""Team-mode fixtures: a real PostgreSQL server and a fresh database per test.

Uses the server on 127.0.0.1:5432 when one answers (these machines run one, trust auth);
otherwise starts a throwaway cluster from the system's PostgreSQL binaries.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

WORKER = Path(__file__).with_name("_worker.py")


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


class Workers:
    """Real worker processes racing on one action; ``start()`` releases them all at once."""

    def __init__(self, env: dict[str, str], registry: str) -> None:
        self.work = Path(env["TEAM_WORK"])
        self.work.mkdir(parents=True, exist_ok=True)
        self.signal = self.work / f"start-{uuid.uuid4().hex}"
        self.env = {**os.environ, **env, "ARTIFACT_PLUGINS_REGISTRY": registry}
        self.procs: list[subprocess.Popen[str]] = []

    def spawn(self, action: str, indices: range | list[int], **extra_env: str) -> list[subprocess.Popen[str]]:
        """Start one worker per index (they wait for the start signal)."""
        new = [
            subprocess.Popen(
                [sys.executable, str(WORKER), action, str(i), str(self.signal)],
                env={**self.env, **extra_env},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for i in indices
        ]
        self.procs += new
        return new

    def start(self) -> None:
        """Wait until every worker is ready (imported, set up), then release them together."""
        deadline = time.monotonic() + 120
        while len(list(self.work.glob(f"{self.signal.name}.ready.*"))) < len(self.procs):
            for p in self.procs:
                if p.poll() not in (None, 0):
                    raise AssertionError(f"worker failed before start: {p.stderr.read() if p.stderr else ''}")
            assert time.monotonic() < deadline, "workers never became ready"
            time.sleep(0.02)
        self.signal.touch()

    @staticmethod
    def results(procs: list[subprocess.Popen[str]], timeout: float = 240) -> list[dict[str, object]]:
        """Wait for ``procs`` and parse their JSON result lines."""
        out = []
        for p in procs:
            stdout, stderr = p.communicate(timeout=timeout)
            assert p.returncode == 0, f"worker failed: {stderr[-3000:]}"
            out.append(json.loads(stdout.strip().splitlines()[-1]))
        return out


def race(action: str, n: int, env: dict[str, str], registry: str, **extra_env: str) -> list[dict[str, object]]:
    """Run ``n`` workers of ``action`` against ``registry`` all at once; return their results."""
    workers = Workers(env, registry)
    procs = workers.spawn(action, range(n), **extra_env)
    workers.start()
    return workers.results(procs)
