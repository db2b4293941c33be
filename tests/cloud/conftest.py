"""Fixtures for the cloud-storage tests: real SeaweedFS (S3) and fake-gcs-server on loopback.

The servers start once per session. Each test gets its own store prefix, registry, cache and
working directory; the process-level client and reference-handler caches are cleared so the
environment of one test (an endpoint, a proxy) never leaks into the next.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cloud_helpers import REFS_BUCKET, STORE_BUCKET, VERSIONED_BUCKET, Backend
from servers import ACCESS_KEY, SECRET_KEY, FakeGCS, FaultProxy, SeaweedFS

from artifact_plugins.core import run as run_mod
from artifact_plugins.core.client import close_clients

ENV_VARS = ("STORE", "REGISTRY", "CACHE_DIR", "CONFIG", "ENTITY", "PROJECT", "CACHE_MAX_BYTES")


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFS]:
    """One SeaweedFS for the session (SigV4 authentication on), with a store bucket and an unversioned
    and a versioned refs bucket."""
    server = SeaweedFS(tmp_path_factory.mktemp("seaweedfs")).start()
    try:
        server.make_bucket(STORE_BUCKET)
        server.make_bucket(REFS_BUCKET, public_read=True)  # also served as plain http(s) in the HTTP tests
        server.make_bucket(VERSIONED_BUCKET, versioned=True)
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def fake_gcs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeGCS]:
    """One fake-gcs-server for the session, with the same three buckets."""
    server = FakeGCS(tmp_path_factory.mktemp("fake-gcs")).start()
    try:
        server.make_bucket(STORE_BUCKET)
        server.make_bucket(REFS_BUCKET)
        server.make_bucket(VERSIONED_BUCKET, versioned=True)
        yield server
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Registry, cache and working directory under ``tmp_path``; dummy AWS credentials; no state carried over."""
    for name in ENV_VARS:
        monkeypatch.delenv(f"ARTIFACT_PLUGINS_{name}", raising=False)
    for name in list(os.environ):
        if (
            name.startswith(("ARTIFACT_PLUGINS_S3_", "ARTIFACT_PLUGINS_GCS_", "AWS_"))
            or name == "STORAGE_EMULATOR_HOST"
        ):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ARTIFACT_PLUGINS_REGISTRY", f"sqlite:///{tmp_path / 'registry.db'}")
    monkeypatch.setenv("ARTIFACT_PLUGINS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("ARTIFACT_PLUGINS_CONFIG", str(tmp_path / "no-such-config.toml"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    # Small multipart/resumable thresholds so modest test files exercise the large-file paths.
    monkeypatch.setenv("ARTIFACT_PLUGINS_S3_MULTIPART_THRESHOLD", "5MiB")
    monkeypatch.setenv("ARTIFACT_PLUGINS_S3_MULTIPART_CHUNKSIZE", "5MiB")
    monkeypatch.setenv("ARTIFACT_PLUGINS_GCS_RESUMABLE_THRESHOLD", "1MiB")
    monkeypatch.setenv("ARTIFACT_PLUGINS_GCS_CHUNK_SIZE", "1MiB")
    monkeypatch.chdir(tmp_path)
    close_clients()
    run_mod._current.set(None)
    yield tmp_path
    run_mod._current.set(None)
    close_clients()


@pytest.fixture(params=["s3", "gs"])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Backend:
    """Each test using it runs against SeaweedFS (S3) and fake-gcs-server (GCS)."""
    server = request.getfixturevalue("seaweed" if request.param == "s3" else "fake_gcs")
    return Backend(request.param, server, monkeypatch)


@pytest.fixture
def s3(seaweed: SeaweedFS, monkeypatch: pytest.MonkeyPatch) -> Backend:
    """The S3 backend alone."""
    return Backend("s3", seaweed, monkeypatch)


@pytest.fixture
def proxy_for() -> Iterator[Callable[[int], FaultProxy]]:
    """``proxy_for(port)`` starts a fault-injecting proxy in front of a server; closed after the test."""
    proxies: list[FaultProxy] = []

    def make(port: int) -> FaultProxy:
        p = FaultProxy(port)
        proxies.append(p)
        return p

    yield make
    for p in proxies:
        p.close()
