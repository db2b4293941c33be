"""Fixtures for the orchestrator-free core: every test gets its own store, registry and caches.

The environment variables point the embedded default at ``tmp_path``; the process-level client
cache and the current run are cleared so no state leaks between tests.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from core_helpers import api_versions, registry_dump, store_files

import artifact_plugins as ap
from artifact_plugins.core import artifact as artifact_mod
from artifact_plugins.core import hashing
from artifact_plugins.core import run as run_mod
from artifact_plugins.core.client import close_clients
from artifact_plugins.core.storage.local import LocalStore

ENV_VARS = ("STORE", "REGISTRY", "CACHE_DIR", "CONFIG", "ENTITY", "PROJECT", "CACHE_MAX_BYTES")


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh store, registry, cache dir and working directory under ``tmp_path``."""
    for name in ENV_VARS:
        monkeypatch.delenv(f"ARTIFACT_PLUGINS_{name}", raising=False)
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


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    """The blob store root of this test."""
    return tmp_path / "store"


@pytest.fixture
def registry_db(tmp_path: Path) -> Path:
    """The SQLite registry file of this test."""
    return tmp_path / "registry.db"


@pytest.fixture
def small_trees(monkeypatch: pytest.MonkeyPatch) -> None:
    """Directories remembered whole from 5 files up (the real floor is 1,000), so a small tree uses
    it, 3 files to a row (the real number is 4,096), so a tree spans rows."""
    monkeypatch.setattr(artifact_mod, "TREE_MIN_FILES", 5)
    monkeypatch.setattr(hashing, "_CHUNK_FILES", 3)


@pytest.fixture
def asked(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every blob key the local store is asked about (``LocalStore.missing``), in order."""
    keys: list[str] = []
    real = LocalStore.missing

    def counting(self: LocalStore, wanted: Iterable[str]) -> set[str]:
        wanted = list(wanted)
        keys.extend(wanted)
        return real(self, wanted)

    monkeypatch.setattr(LocalStore, "missing", counting)
    return keys


@pytest.fixture
def api() -> ap.Api:
    """An Api on this test's configuration."""
    return ap.Api()


@pytest.fixture
def snapshot(store_dir: Path, registry_db: Path) -> Callable[[], tuple[Any, ...]]:
    """A comparable snapshot of the registry (Api view + raw rows) and the store's files."""

    def take() -> tuple[Any, ...]:
        return api_versions(ap.Api()), registry_dump(registry_db), store_files(store_dir)

    return take
