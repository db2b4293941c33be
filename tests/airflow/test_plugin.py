"""The Airflow plugin over HTTP: Airflow's own API server app, in process, with the simple auth manager."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

DAG_ID, RUN_ID = "plugin_dag", "manual__2026-02-02T00:00:00+00:00"
XSS = "<script>alert('x')</script>"


def _execute(op: Any, map_index: int = -1) -> dict[str, Any]:
    from airflow.sdk.execution_time.context import OutletEventAccessors

    ti = SimpleNamespace(dag_id=DAG_ID, run_id=RUN_ID, task_id=op.task_id, map_index=map_index, try_number=1)
    result: dict[str, Any] = op.execute({"ti": ti, "task": op, "outlet_events": OutletEventAccessors()})
    return result


@pytest.fixture(scope="module")
def server(
    airflow_db: Path, tmp_path_factory: pytest.TempPathFactory, admin_credentials: tuple[str, str]
) -> Iterator[SimpleNamespace]:
    """The API server app (with our plugin mounted) over a registry holding one logged+used version."""
    from fastapi.testclient import TestClient

    from artifact_plugins.airflow import LogArtifactOperator, UseArtifactOperator

    root = tmp_path_factory.mktemp("plugin")
    data = root / "data.csv"
    data.write_text("a,b\n1,2\n")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ARTIFACT_PLUGINS_STORE", str(root / "store"))
        mp.setenv("ARTIFACT_PLUGINS_REGISTRY", f"sqlite:///{root / 'registry.db'}")
        mp.chdir(root)
        logged = _execute(
            LogArtifactOperator(
                task_id="log",
                name="bike-dataset",
                type="dataset",
                paths=[str(data)],
                description=XSS,
                metadata={"note": XSS},
            )
        )
        _execute(UseArtifactOperator(task_id="use", artifact="bike-dataset:latest", download=False), map_index=2)

        from airflow.api_fastapi.app import create_app

        with TestClient(create_app()) as client:
            username, password = admin_credentials
            response = client.post("/auth/token", json={"username": username, "password": password})
            assert response.status_code == 201, response.text
            yield SimpleNamespace(client=client, token=response.json()["access_token"], logged=logged)


PROTECTED = [
    "/artifacts/",
    "/artifacts/api/runs?dag_id=plugin_dag&run_id=x",
    "/artifacts/runs?dag_id=plugin_dag&run_id=x",
    "/artifacts/versions/default/default/bike-dataset/v0",
    "/artifacts/api/versions/default/default/bike-dataset/v0",
]


@pytest.mark.parametrize("path", PROTECTED)
def test_refuses_requests_without_credentials(server: Any, path: str) -> None:
    response = server.client.get(path)
    assert response.status_code == 401, response.text
    assert "bike-dataset" not in response.text
    forged = server.client.get(path, headers={"Authorization": "Bearer not-a-jwt"})
    assert forged.status_code in (401, 403)


def test_answers_with_a_bearer_token(server: Any) -> None:
    auth = {"Authorization": f"Bearer {server.token}"}
    response = server.client.get("/artifacts/api/runs", params={"dag_id": DAG_ID, "run_id": RUN_ID}, headers=auth)
    assert response.status_code == 200
    runs = {r["step"]["task_id"]: r for r in response.json()}
    assert set(runs) == {"log", "use"}
    assert [v["qualified_name"] for v in runs["log"]["logged"]] == [server.logged["qualified_name"]]
    assert [v["qualified_name"] for v in runs["use"]["used"]] == [server.logged["qualified_name"]]
    assert runs["use"]["url"].endswith("/tasks/use/mapped/2")

    version = server.client.get("/artifacts/api/versions/default/default/bike-dataset/v0", headers=auth).json()
    assert version["digest"] == server.logged["digest"] and version["logged_by"]["name"] == "log"
    assert [r["name"] for r in version["used_by"]] == ["use[2]"]
    missing = server.client.get("/artifacts/api/versions/default/default/bike-dataset/v9", headers=auth)
    assert missing.status_code == 404 and "bike-dataset" in missing.json()["detail"]


def test_answers_with_the_ui_session_cookie_and_escapes_user_text(server: Any) -> None:
    client = server.client
    client.cookies.set("_token", server.token)
    try:
        page = client.get("/artifacts/versions/default/default/bike-dataset/v0")
        tab = client.get(
            "/artifacts/runs", params={"dag_id": DAG_ID, "run_id": RUN_ID, "task_id": "log", "map_index": "{MAP_INDEX}"}
        )
    finally:
        client.cookies.clear()
    assert page.status_code == 200 and server.logged["digest"] in page.text
    assert XSS not in page.text and "&lt;script&gt;" in page.text
    assert tab.status_code == 200 and "./versions/default/default/bike-dataset/v0" in tab.text
    assert ">use" not in tab.text  # only the task instance's own run


def test_read_only(server: Any) -> None:
    auth = {"Authorization": f"Bearer {server.token}"}
    for method in ("post", "put", "delete"):
        response = server.client.request(method.upper(), "/artifacts/api/runs", headers=auth)
        assert response.status_code == 405


def test_plugin_registers_views_and_listener(server: Any) -> None:
    response = server.client.get("/api/v2/plugins", headers={"Authorization": f"Bearer {server.token}"})
    assert response.status_code == 200
    (plugin,) = [p for p in response.json()["plugins"] if p["name"] == "artifact_plugins"]
    views = {v["destination"]: v for v in plugin["external_views"]}
    assert set(views) == {"nav", "dag_run", "task_instance"}
    assert all(v["name"] == "Artifacts" and not v["href"].startswith("/") for v in views.values())
    assert "{RUN_ID}" in views["dag_run"]["href"] and "{MAP_INDEX}" in views["task_instance"]["href"]
    assert [a["url_prefix"] for a in plugin["fastapi_apps"]] == ["/artifacts"]
    assert any("ArtifactRunListener" in listener for listener in plugin["listeners"])
