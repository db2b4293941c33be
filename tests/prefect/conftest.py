"""Fixtures for the Prefect adapter: one real Prefect server per session, a fresh store per test.

The server is Prefect's own test harness (a subprocess API server on a temporary SQLite
database). Prefect's home (results, cache keys) lives in a session temp dir so cached task
results never leak in from an earlier session. Every test gets its own artifact store, registry
and download cache through the ``ARTIFACT_PLUGINS_*`` environment variables.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

# Must be set before Prefect reads its settings.
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["PREFECT_HOME"] = tempfile.mkdtemp(prefix="ap-prefect-home-")
os.environ.setdefault("PREFECT_LOGGING_TO_API_ENABLED", "false")

from prefect.testing.utilities import prefect_test_harness

import artifact_plugins as ap


@pytest.fixture(scope="session", autouse=True)
def prefect_server() -> Iterator[None]:
    """One Prefect API server for the whole session."""
    with prefect_test_harness(server_startup_timeout=120):
        yield


def _servers() -> Any:
    """The cloud suite's :mod:`servers` helpers (tests/cloud/servers.py), importable from here."""
    cloud = str(Path(__file__).resolve().parents[1] / "cloud")
    if cloud not in sys.path:
        sys.path.append(cloud)
    import servers

    return servers


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A real SeaweedFS (S3, SigV4 authentication on) with an ``artifacts`` bucket."""
    with _servers().seaweedfs_running(tmp_path_factory.mktemp("seaweedfs"), "artifacts") as server:
        yield server


@pytest.fixture(scope="session")
def fake_gcs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A real fake-gcs-server with an ``artifacts`` bucket."""
    with _servers().fake_gcs_running(tmp_path_factory.mktemp("fake-gcs"), "artifacts") as server:
        yield server


@pytest.fixture(autouse=True)
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ap.Settings:
    """A fresh artifact store + registry + cache for this test, selected by environment."""
    monkeypatch.setenv("ARTIFACT_PLUGINS_STORE", str(tmp_path / "store"))
    monkeypatch.setenv("ARTIFACT_PLUGINS_REGISTRY", f"sqlite:///{tmp_path / 'registry.db'}")
    monkeypatch.setenv("ARTIFACT_PLUGINS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("ARTIFACT_PLUGINS_CONFIG", str(tmp_path / "no-config.toml"))
    for name in ("ENTITY", "PROJECT", "CACHE_MAX_BYTES"):
        monkeypatch.delenv(f"ARTIFACT_PLUGINS_{name}", raising=False)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return ap.Settings.resolve()


@pytest.fixture
def api(store: ap.Settings) -> ap.Api:
    """An :class:`ap.Api` on this test's store."""
    return ap.Api(settings=store)


@pytest.fixture
def make_files(tmp_path: Path) -> Callable[..., Path]:
    """``make_files("dir", {"a.txt": "x"})`` writes files under tmp_path and returns the directory."""

    def make(name: str, files: dict[str, str]) -> Path:
        root = tmp_path / "inputs" / name
        for rel, text in files.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        return root

    return make
