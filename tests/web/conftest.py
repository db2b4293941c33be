"""Fixtures for the web viewer: one seeded registry per module, and an in-process client on it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from web_helpers import Seeded, core_at, seed


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    """A registry with datasets, models, runs and injection payloads (see :func:`web_helpers.seed`)."""
    root = tmp_path_factory.mktemp("web-registry")
    with core_at(root) as settings:
        yield seed(root, settings)


@pytest.fixture(scope="module")
def client(seeded: Seeded) -> Iterator[object]:
    """A TestClient of ``create_app`` on the seeded registry (no token)."""
    from fastapi.testclient import TestClient

    from artifact_plugins.web import create_app

    with TestClient(create_app(seeded.settings)) as c:
        yield c
