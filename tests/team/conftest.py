"""Team-mode fixtures: a real PostgreSQL server and a fresh database per test.

Uses the server on 127.0.0.1:5432 when one answers (these machines run one, trust auth);
otherwise starts a throwaway cluster from the system's PostgreSQL binaries.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from artifact_plugins.core.client import close_clients


@pytest.fixture
def pg_url(pg_server: str) -> Iterator[str]:
    """An SQLAlchemy URL of a fresh, empty database, dropped afterwards."""
    name = f"ap_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server + "/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield pg_server.replace("postgresql://", "postgresql+psycopg://") + "/" + name
    close_clients()  # release connections so the database can be dropped
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
    from artifact_plugins.core import run

    close_clients()
    run._current.set(None)
    return env
