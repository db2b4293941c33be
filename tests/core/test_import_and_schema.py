"""``import artifact_plugins`` stays light; the registry schema is Alembic-managed and self-migrating."""

from __future__ import annotations

import json
import sqlite3

import pytest
from core_helpers import run_python

import artifact_plugins as ap
from artifact_plugins.core.registry import Registry, db

HEAVY = {"prefect", "airflow", "boto3", "botocore", "google", "sqlalchemy", "psycopg", "alembic", "pandas"}


def test_import_is_light():
    proc = run_python(
        f"""
        import json, sys, time
        t = time.perf_counter()
        import artifact_plugins
        elapsed = time.perf_counter() - t
        heavy = sorted({{m.split('.')[0] for m in sys.modules}} & set({sorted(HEAVY)!r}))
        assert not heavy, heavy
        assert not any(m.split('.')[0] in {{'prefect','airflow','boto3','google','sqlalchemy','psycopg'}}
                       for m in sys.modules)
        print(json.dumps({{"seconds": elapsed, "heavy": heavy}}))
        """
    )
    result = json.loads(proc.stdout)
    assert result["heavy"] == []
    assert result["seconds"] < 0.5, f"import artifact_plugins took {result['seconds']:.3f}s"


def test_building_a_draft_imports_no_orchestrator_or_cloud_sdk(tmp_path):
    proc = run_python(
        f"""
        import json, sys
        import artifact_plugins as ap
        p = {str(tmp_path / "f.txt")!r}
        open(p, "w").write("x")
        art = ap.Artifact("ds", "dataset")
        art.add_file(p)
        with ap.init() as run:
            run.log_artifact(art)
        print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & {{'prefect','airflow','boto3','google'}})))
        """
    )
    assert json.loads(proc.stdout) == []


def test_log_use_and_download_run_core_statements_only(tmp_path):
    """The registry's hot path never configures the ORM (a per-process cost of every pipeline step)."""
    proc = run_python(
        f"""
        import json
        import artifact_plugins as ap
        from artifact_plugins.core.registry import models
        src = {str(tmp_path / "src")!r}
        import os; os.makedirs(src); open(os.path.join(src, "f.txt"), "w").write("x")
        for _ in range(2):  # a new version, then a re-log of the same content
            art = ap.Artifact("ds", "dataset")
            art.add_dir(src)
            with ap.init(job_type="make") as run:
                run.log_artifact(art, aliases=["best"], tags=["t"])
        with ap.init(job_type="use") as run:
            run.use_artifact("ds:best").download({str(tmp_path / "out")!r})
        print(json.dumps([models.Version.__mapper__.configured, ap.Api().artifact("ds:latest").version]))
        """
    )
    assert json.loads(proc.stdout) == [False, "v0"]


def test_core_table_views_name_every_model_column():
    from artifact_plugins.core.registry import models, tables

    for model in models.Base.__subclasses__():
        view = getattr(tables, model.__name__)
        for attr, prop in model.__mapper__.column_attrs.items():
            assert getattr(view, attr) is prop.columns[0], (model.__name__, attr)
    with pytest.raises(AttributeError, match="no column for 'nope'"):
        _ = tables.Version.nope


def test_public_names_resolve():
    for name in ap.__all__:
        assert getattr(ap, name) is not None
    with pytest.raises(AttributeError, match="nope"):
        _ = ap.nope  # type: ignore[attr-defined]


def test_fresh_registry_is_at_head(registry_db):
    reg = Registry(f"sqlite:///{registry_db}")
    head = db.head_revision()
    assert db.current_revision(reg.engine) == head
    conn = sqlite3.connect(registry_db)
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()
    assert {
        "projects",
        "collections",
        "versions",
        "aliases",
        "alias_events",
        "tags",
        "runs",
        "edges",
        "parts",
    } <= tables


def test_upgrade_is_idempotent_and_keeps_data(tmp_path, registry_db, api):
    src = tmp_path / "a.txt"
    src.write_text("kept")
    with ap.init() as run:
        art = ap.Artifact("ds", "dataset")
        art.add_file(src)
        v = run.log_artifact(art, aliases=["prod"])
    engine = api._client.registry.engine
    head = db.head_revision()
    db.upgrade(engine)
    db.upgrade(engine)
    db.ensure_schema(engine)
    assert db.current_revision(engine) == head
    again = Registry(f"sqlite:///{registry_db}")
    assert db.current_revision(again.engine) == head
    assert ap.Api().artifact("ds:prod") == v


def test_unknown_newer_schema_is_refused(registry_db):
    Registry(f"sqlite:///{registry_db}")
    conn = sqlite3.connect(registry_db)
    with conn:
        conn.execute("UPDATE alembic_version SET version_num = 'ffffffffffff'")
    conn.close()
    from artifact_plugins.core.errors import RegistryError

    with pytest.raises(RegistryError, match="ffffffffffff"):
        Registry(f"sqlite:///{registry_db}")
