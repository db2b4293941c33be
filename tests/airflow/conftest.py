"""Fixtures for the Airflow adapter tests.

Airflow reads its configuration when first imported, so this module points AIRFLOW_HOME (and the
metadata DB, auth manager, base URL) at a fresh temporary folder *before* anything imports
Airflow. Integration tests run real DAG runs with ``dag.test()`` against that SQLite metadata DB
(migrated once per session with ``airflow db migrate``); every test gets its own artifact store
and registry through ``ARTIFACT_PLUGINS_STORE`` / ``ARTIFACT_PLUGINS_REGISTRY``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="ap-airflow-home-"))
(AIRFLOW_HOME / "dags").mkdir()
(AIRFLOW_HOME / "plugins").mkdir()
ADMIN_USER, ADMIN_PASSWORD = "admin", "admin-pw-for-tests"
(AIRFLOW_HOME / "passwords.json").write_text(json.dumps({ADMIN_USER: ADMIN_PASSWORD}))
BASE_URL = "http://airflow.test:8080"

_AIRFLOW_ENV = {
    "AIRFLOW_HOME": str(AIRFLOW_HOME),
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{AIRFLOW_HOME / 'airflow.db'}",
    "AIRFLOW__CORE__DAGS_FOLDER": str(AIRFLOW_HOME / "dags"),
    "AIRFLOW__CORE__PLUGINS_FOLDER": str(AIRFLOW_HOME / "plugins"),
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
    "AIRFLOW__CORE__AUTH_MANAGER": "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(AIRFLOW_HOME / "passwords.json"),
    "AIRFLOW__API__BASE_URL": BASE_URL,
    "AIRFLOW__API_AUTH__JWT_SECRET": "jwt-signing-key-for-the-airflow-adapter-tests-only-0123456789abcdef",
    "AIRFLOW__OPENLINEAGE__DISABLED": "True",
}
os.environ.update(_AIRFLOW_ENV)
# Nothing from a developer's shell may leak into the artifact settings of a test.
for _key in [k for k in os.environ if k.startswith("ARTIFACT_PLUGINS_")]:
    del os.environ[_key]
_DEFAULT_ARTIFACTS = Path(tempfile.mkdtemp(prefix="ap-airflow-artifacts-"))
os.environ["ARTIFACT_PLUGINS_STORE"] = str(_DEFAULT_ARTIFACTS / "store")
os.environ["ARTIFACT_PLUGINS_REGISTRY"] = f"sqlite:///{_DEFAULT_ARTIFACTS / 'registry.db'}"
os.environ["ARTIFACT_PLUGINS_CACHE_DIR"] = str(_DEFAULT_ARTIFACTS / "cache")
os.environ["ARTIFACT_PLUGINS_CONFIG"] = str(_DEFAULT_ARTIFACTS / "no-config.toml")

EXAMPLES = Path(__file__).resolve().parents[2] / "dags_examples"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Remove the temporary Airflow home and default artifact folders."""
    shutil.rmtree(AIRFLOW_HOME, ignore_errors=True)
    shutil.rmtree(_DEFAULT_ARTIFACTS, ignore_errors=True)


@pytest.fixture
def artifact_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A private artifact store, registry and cache for one test."""
    env = {
        "ARTIFACT_PLUGINS_STORE": str(tmp_path / "store"),
        "ARTIFACT_PLUGINS_REGISTRY": f"sqlite:///{tmp_path / 'registry.db'}",
        "ARTIFACT_PLUGINS_CACHE_DIR": str(tmp_path / "cache"),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)  # default download roots are relative to the working directory
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the example DAGs write their data to mkdtemp()
    return env


@pytest.fixture
def api(artifact_env: dict[str, str]) -> Any:
    """The core API on the test's private registry."""
    import artifact_plugins as ap

    return ap.Api()


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """The migrated Airflow metadata DB (``airflow db migrate``, once per session)."""
    result = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        env={**os.environ, **_AIRFLOW_ENV},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return AIRFLOW_HOME / "airflow.db"


@pytest.fixture
def run_dag(airflow_db: Path) -> Iterator[Any]:
    """Register a DAG in the metadata DB and run it with ``dag.test()``; returns the DagRun."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db

    DagBundlesManager().sync_bundles_to_db()

    def _run(dag: Any, **kwargs: Any) -> Any:
        bag = DagBag(dag_folder=os.devnull)
        bag.bag_dag(dag)
        sync_bag_to_db(bag, bundle_name="dags-folder", bundle_version=None)
        return dag.test(**kwargs)

    yield _run


def load_example(filename: str, dag_id: str) -> Any:
    """Parse one DAG file of ``dags_examples/`` the way the DAG processor does."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(EXAMPLES / filename))
    assert not bag.import_errors, bag.import_errors
    return bag.dags[dag_id]


class AirflowRecords:
    """Reads what a DAG run left in the Airflow metadata DB."""

    def asset_events(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """Asset events emitted by the run, oldest first, with their asset's URI, name and group."""
        from airflow.models.asset import AssetEvent, AssetModel
        from airflow.utils.session import create_session
        from sqlalchemy import select

        with create_session() as session:
            rows = session.execute(
                select(AssetEvent, AssetModel)
                .join(AssetModel, AssetModel.id == AssetEvent.asset_id)
                .where(AssetEvent.source_dag_id == dag_id, AssetEvent.source_run_id == run_id)
                .order_by(AssetEvent.id)
            ).all()
            return [
                {
                    "uri": a.uri,
                    "name": a.name,
                    "group": a.group,
                    "extra": dict(e.extra or {}),
                    "task_id": e.source_task_id,
                    "map_index": e.source_map_index,
                }
                for e, a in rows
            ]

    def xcoms(self, dag_id: str, run_id: str, key: str = "return_value") -> dict[tuple[str, int], Any]:
        """XCom values of ``key`` by (task_id, map_index)."""
        from airflow.models.xcom import XComModel
        from airflow.utils.session import create_session
        from sqlalchemy import select

        with create_session() as session:
            rows = session.scalars(
                select(XComModel).where(XComModel.dag_id == dag_id, XComModel.run_id == run_id, XComModel.key == key)
            ).all()
            return {(r.task_id, r.map_index): XComModel.deserialize_value(r) for r in rows}

    def task_states(self, dag_id: str, run_id: str) -> dict[tuple[str, int], tuple[str | None, int]]:
        """Final (state, try_number) of every task instance of the run."""
        from airflow.models.taskinstance import TaskInstance
        from airflow.utils.session import create_session
        from sqlalchemy import select

        with create_session() as session:
            rows = session.scalars(
                select(TaskInstance).where(TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id)
            ).all()
            return {(t.task_id, t.map_index): (t.state, t.try_number) for t in rows}


@pytest.fixture
def records(airflow_db: Path) -> AirflowRecords:
    """Queries over the Airflow metadata DB."""
    return AirflowRecords()


@pytest.fixture
def example_dag() -> Any:
    """Load a DAG from ``dags_examples/`` by file name and dag_id."""
    return load_example


def _servers() -> Any:
    """The cloud suite's :mod:`servers` helpers (tests/cloud/servers.py), importable from here."""
    cloud = str(Path(__file__).resolve().parents[1] / "cloud")
    if cloud not in sys.path:
        sys.path.append(cloud)
    import servers

    return servers


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A real SeaweedFS (S3 with SigV4 authentication on) with an ``artifacts`` bucket, started
    through the cloud suite's :mod:`servers` helpers."""
    with _servers().seaweedfs_running(tmp_path_factory.mktemp("seaweedfs"), LAKE_BUCKET) as server:
        yield server


LAKE_BUCKET = "artifacts"


@pytest.fixture(scope="session")
def fake_gcs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A real fake-gcs-server with an ``artifacts`` bucket."""
    with _servers().fake_gcs_running(tmp_path_factory.mktemp("fake-gcs"), LAKE_BUCKET) as server:
        yield server


class Lake:
    """An ``s3://`` store on SeaweedFS reached through Airflow connections (see :func:`lake`)."""

    def __init__(self, server: Any, prefix: str, secret: str, registry: Path) -> None:
        self.server, self.prefix, self.secret, self.registry = server, prefix, secret, registry

    def objects(self) -> list[str]:
        """The key of every object under the store's prefix, straight from the server."""
        listing = self.server.client().list_objects_v2(Bucket=LAKE_BUCKET, Prefix=self.prefix + "/")
        return [o["Key"] for o in listing.get("Contents", [])]


@pytest.fixture
def lake(seaweed: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Lake:
    """An ``s3://`` store on SeaweedFS whose keys are only in the Airflow AWS connection ``lake_aws``
    (the standard chain holds keys the server refuses); the connection ``lake_store`` points the
    artifact settings at the bucket, with its own registry and the project ``lake``."""
    from servers import ACCESS_KEY, SECRET_KEY, refuse_chain_credentials

    prefix = f"lake-{uuid.uuid4().hex[:10]}"
    refuse_chain_credentials(monkeypatch, tmp_path)
    aws = {"region_name": "us-east-1", "endpoint_url": seaweed.endpoint}
    monkeypatch.setenv(
        "AIRFLOW_CONN_LAKE_AWS",
        json.dumps({"conn_type": "aws", "login": ACCESS_KEY, "password": SECRET_KEY, "extra": aws}),
    )
    registry = tmp_path / "lake.db"
    store = {"store": f"s3://{LAKE_BUCKET}/{prefix}", "registry": f"sqlite:///{registry}", "project": "lake"}
    monkeypatch.setenv("AIRFLOW_CONN_LAKE_STORE", json.dumps({"conn_type": "generic", "extra": store}))
    return Lake(seaweed, prefix, SECRET_KEY, registry)


@pytest.fixture(scope="session")
def admin_credentials() -> tuple[str, str]:
    """Username and password of the simple auth manager's admin user."""
    return ADMIN_USER, ADMIN_PASSWORD
