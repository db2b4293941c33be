"""Schema migrations: the same Alembic scripts on SQLite and PostgreSQL, and a tested upgrade path."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

import artifact_plugins as ap
from artifact_plugins.core.registry import Registry
from artifact_plugins.core.registry.db import (
    HEAD_REVISION,
    create_registry_engine,
    current_revision,
    head_revision,
    upgrade,
)

DIGEST = "blake3:" + "ab" * 32


def test_head_constant_matches_the_migration_scripts() -> None:
    assert head_revision() == HEAD_REVISION


@pytest.fixture(params=["postgresql", "sqlite"])
def old_registry(request: pytest.FixtureRequest, tmp_path: Path, team_env: dict[str, str]) -> str:
    """A registry created at the first revision, holding a version, an alias, a run and an edge."""
    url = request.getfixturevalue("pg_url") if request.param == "postgresql" else f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_registry_engine(url)
    upgrade(engine, "0001")
    assert current_revision(engine) == "0001"
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO projects (id, entity, name, created_at) VALUES (1, 'acme', 'bikes', '2025-05-01')")
        )
        conn.execute(
            text(
                "INSERT INTO collections (id, project_id, name, type, next_index, created_at) "
                "VALUES (1, 1, 'bike-dataset', 'dataset', 1, '2025-05-01')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO runs (id, run_key, orchestrator, job_type, name, project_id, step, status, started_at) "
                "VALUES ('r1', 'script:r1', 'script', 'preprocess', 'old run', 1, '{}', 'finished', '2025-05-01')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO versions (id, collection_id, index, digest, manifest_key, size, file_count, state, "
                "metadata, created_at, created_by) VALUES (1, 1, 0, :d, 'manifests/x', 10, 1, 'committed', "
                "'{\"rows\": 3}', '2025-05-01', 'r1')".replace(" index,", ' "index",')
            ),
            {"d": DIGEST},
        )
        conn.execute(
            text(
                "INSERT INTO aliases (collection_id, alias, version_id, updated_at) "
                "VALUES (1, 'latest', 1, '2025-05-01'), (1, 'production', 1, '2025-05-01')"
            )
        )
        conn.execute(text("INSERT INTO edges (run_id, version_id, kind, at) VALUES ('r1', 1, 'logged', '2025-05-01')"))
    engine.dispose()
    return url


def test_cli_upgrades_an_old_registry_and_keeps_its_data(old_registry: str, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "artifact_plugins.cli", "db", "upgrade", "--registry", old_registry],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert result.returncode == 0, result.stderr
    assert f"0001 -> {HEAD_REVISION}" in result.stdout
    assert "postgres@" not in result.stdout or "***@" in result.stdout
    engine = create_registry_engine(old_registry)
    assert current_revision(engine) == HEAD_REVISION
    engine.dispose()
    api = ap.Api(registry=old_registry, entity="acme", project="bikes")
    v = api.artifact("bike-dataset:production")
    assert (v.version, v.digest, v.metadata, v.aliases) == ("v0", DIGEST, {"rows": 3}, ["latest", "production"])
    producer = v.logged_by()
    assert producer is not None and producer.job_type == "preprocess"
    # the upgraded registry accepts new versions after the old ones
    src = tmp_path / "new.txt"
    src.write_text("new content")
    art = ap.Artifact("bike-dataset", "dataset")
    art.add_file(src)
    with ap.init(job_type="train", registry=old_registry, entity="acme", project="bikes") as run:
        assert run.log_artifact(art).version == "v1"
    # and counts its collections from zero (revision 0005)
    registry = Registry(old_registry)
    assert registry.store_generation(while_idle=True) == 0
    api.gc(dry_run=False)
    assert registry.store_generation() == 1
    registry.engine.dispose()


def test_upgrade_is_idempotent(old_registry: str) -> None:
    engine = create_registry_engine(old_registry)
    upgrade(engine)
    upgrade(engine)
    assert current_revision(engine) == HEAD_REVISION
    engine.dispose()
