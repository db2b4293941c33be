"""The JSON API of the viewer, in process: shapes (checked against the documented schemas), errors, and
every read-only, escaping and token rule."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
from pydantic import BaseModel, TypeAdapter
from web_helpers import XSS, XSS_SCRIPT, Seeded

from artifact_plugins.web import create_app, schemas

Q = "default/bikes"


def ok(client: Any, path: str, model: Any) -> Any:
    """GET ``path``, expect 200 JSON, validate it against ``model`` and return it."""
    response = client.get(path)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    TypeAdapter(model).validate_python(body)
    return body


def error(client: Any, path: str, status: int) -> str:
    response = client.get(path)
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str) and detail
    return detail


# -- browse --------------------------------------------------------------------------------------


def test_projects_count_collections_and_versions_per_type(client: Any) -> None:
    projects = {p["project"]: p for p in ok(client, "/api/projects", list[schemas.Project])}
    assert set(projects) == {"bikes", "other"}
    bikes = projects["bikes"]
    assert bikes["collection_count"] == 3 and bikes["version_count"] == 4
    assert {t["type"]: (t["collection_count"], t["version_count"]) for t in bikes["types"]} == {
        "dataset": (1, 2),
        "model": (1, 1),
        "report": (1, 1),
    }


def test_collections_of_a_project_by_type(client: Any) -> None:
    cols = ok(client, f"/api/projects/{Q}/collections", list[schemas.Collection])
    assert [(c["type"], c["name"], c["version_count"], c["latest_version"]) for c in cols] == [
        ("dataset", "bike-dataset", 2, "v1"),
        ("model", "bike-model", 1, "v0"),
        ("report", "eval-report", 1, "v0"),
    ]
    only = ok(client, f"/api/projects/{Q}/collections?type=model", list[schemas.Collection])
    assert [c["name"] for c in only] == ["bike-model"]
    assert error(client, "/api/projects/default/nope/collections", 404).startswith("project default/nope not found")


def test_collection_lists_versions_newest_first_with_paging(client: Any) -> None:
    col = ok(client, f"/api/collections/{Q}/bike-dataset", schemas.CollectionDetail)
    assert [v["version"] for v in col["versions"]] == ["v1", "v0"]
    assert col["aliases"] == {"latest": "v1", "production": "v0", "staging": "v1"}
    assert col["versions"][1]["page"] == "versions/default/bikes/bike-dataset/v0"
    assert col["runs"][col["versions"][0]["created_by"]]["name"] == "ingest-2"
    page = ok(client, f"/api/collections/{Q}/bike-dataset?limit=1&offset=1", schemas.CollectionDetail)
    assert [v["version"] for v in page["versions"]] == ["v0"] and page["version_count"] == 2
    detail = error(client, f"/api/collections/{Q}/bike-datasett", 404)
    assert "bike-datasett" in detail and "bike-dataset" in detail
    assert "limit" in error(client, f"/api/collections/{Q}/bike-dataset?limit=0", 400)


# -- versions ------------------------------------------------------------------------------------


def test_version_detail_has_aliases_history_metadata_and_runs(client: Any, seeded: Seeded) -> None:
    v = ok(client, f"/api/versions/{Q}/bike-dataset/v1", schemas.VersionDetail)
    assert v["qualified_name"] == "default/bikes/bike-dataset:v1" and v["digest"] == seeded.dataset_v1.digest
    assert v["aliases"] == ["latest", "staging"] and v["metadata"]["rows"] == 4
    assert v["logged_by"]["name"] == "ingest-2" and v["logged_by"]["group"] == "etl-2"
    assert {r["name"] for r in v["used_by"]} == {"train-1", "use[2]"}
    moves = {(e["alias"], e["previous"], e["version"]) for e in v["alias_history"]}
    assert moves == {("latest", "v0", "v1"), ("staging", None, "v1")}
    assert v["collection"]["version_count"] == 2
    by_alias = ok(client, f"/api/versions/{Q}/bike-dataset/production", schemas.VersionDetail)
    assert by_alias["version"] == "v0"
    by_digest = ok(client, f"/api/versions/{Q}/bike-dataset/{seeded.dataset_v0.digest}", schemas.VersionDetail)
    assert by_digest["version"] == "v0"


def test_version_errors_name_what_is_missing(client: Any) -> None:
    detail = error(client, f"/api/versions/{Q}/bike-dataset/v9", 404)
    assert "bike-dataset:v9" in detail and "v1" in detail
    assert "no-such" in error(client, f"/api/versions/{Q}/no-such/v0", 404)
    assert "not-a-ref!" in error(client, f"/api/versions/{Q}/not-a-ref!/v0", 400)


def test_runs_have_only_http_deep_links(client: Any, seeded: Seeded) -> None:
    v = client.get(f"/api/versions/{Q}/bike-dataset/v1").json()
    evil = next(r for r in v["used_by"] if r["name"] == "use[2]")
    assert evil["url"] is None and evil["group_url"] == "https://airflow.example/dags/mydag"
    run = ok(client, f"/api/runs/{seeded.evil_run}", schemas.RunDetail)
    assert run["url"] is None


def test_file_listing_is_a_tree(client: Any, seeded: Seeded) -> None:
    root = ok(client, f"/api/versions/{Q}/bike-dataset/v0/files", schemas.FileListing)
    assert [d["name"] for d in root["dirs"]] == ["docs", "images", "refs"]
    assert {f["name"] for f in root["files"]} == {"train.csv", "test.csv", XSS}
    assert root["total_files"] == 7 and root["parent"] is None
    images = ok(client, f"/api/versions/{Q}/bike-dataset/v0/files?path=images", schemas.FileListing)
    assert [f["path"] for f in images["files"]] == ["images/a.png", "images/b.png"] and images["parent"] == ""
    deep = client.get(f"/api/versions/{Q}/bike-dataset/v0/files?path=docs").json()
    assert deep["dirs"] == [{"name": "deep", "path": "docs/deep", "file_count": 1, "size": 9}] and deep["files"] == []
    refs = client.get(f"/api/versions/{Q}/bike-dataset/v0/files?path=refs").json()
    (ref,) = refs["files"]
    assert ref["ref"].startswith("file://") and ref["download"] is None
    assert "no directory 'nope'" in error(client, f"/api/versions/{Q}/bike-dataset/v0/files?path=nope", 404)
    paged = client.get(f"/api/versions/{Q}/bike-dataset/v0/files?limit=1&offset=1").json()
    assert len(paged["files"]) == 1 and paged["file_total"] == 3


def test_download_streams_bytes_as_an_attachment(client: Any) -> None:
    listing = client.get(f"/api/versions/{Q}/bike-dataset/v1/files").json()
    train = next(f for f in listing["files"] if f["name"] == "train.csv")
    response = client.get("/" + train["download"])
    assert response.status_code == 200 and response.content == b"a,b\n1,2\n5,6\n"
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["content-disposition"].startswith("attachment")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in response.headers["content-security-policy"]
    payload = client.get(f"/api/versions/{Q}/bike-dataset/v0/download/{quote(XSS)}")
    assert payload.status_code == 200 and payload.content == b"payload file\n"
    assert payload.headers["content-type"] == "application/octet-stream"
    missing = error(client, f"/api/versions/{Q}/bike-dataset/v0/download/nope.txt", 404)
    assert "nope.txt" in missing
    assert "reference" in error(client, f"/api/versions/{Q}/bike-dataset/v0/download/refs/remote.bin", 400)


def test_diff_reports_added_removed_modified_renamed_and_metadata(client: Any) -> None:
    d = ok(client, f"/api/diff/{Q}/bike-dataset?from=v0&to=v1", schemas.Diff)
    assert [f["path"] for f in d["added"]] == ["new.txt"]
    assert [f["path"] for f in d["removed"]] == ["refs/remote.bin", "test.csv"]
    assert [f["path"] for f in d["modified"]] == ["train.csv"]
    assert [(r["old_path"], r["new_path"]) for r in d["renamed"]] == [("images/a.png", "images/a-renamed.png")]
    assert d["summary"]["unchanged"] == 3 and d["summary"]["renamed"] == 1
    assert d["metadata"]["added"] == {"added": True} and d["metadata"]["changed"]["rows"] == {"old": 3, "new": 4}
    assert XSS in d["metadata"]["removed"] and d["description_changed"] and not d["same_content"]
    same = client.get(f"/api/diff/{Q}/bike-dataset?from=v1&to=latest").json()
    assert same["same_content"] and same["summary"]["unchanged"] == same["new"]["file_count"]
    assert "v7" in error(client, f"/api/diff/{Q}/bike-dataset?from=v0&to=v7", 404)
    assert "from" in error(client, f"/api/diff/{Q}/bike-dataset?to=v1", 400)


# -- runs ------------------------------------------------------------------------------------------


def test_runs_filter_by_group_job_type_and_airflow_task(client: Any, seeded: Seeded) -> None:
    runs = ok(client, "/api/runs?group=train-group", list[schemas.RunWithArtifacts])
    assert {r["name"] for r in runs} == {"train-1", "evaluate-1"}
    train = next(r for r in runs if r["name"] == "train-1")
    assert [v["qualified_name"] for v in train["used"]] == ["default/bikes/bike-dataset:v1"]
    assert [v["qualified_name"] for v in train["logged"]] == ["default/bikes/bike-model:v0"]
    assert {r["name"] for r in ok(client, "/api/runs?job_type=ingest", list[schemas.RunWithArtifacts])} == {
        XSS,
        "ingest-2",
    }
    dag_run = client.get("/api/runs", params={"dag_id": "mydag", "run_id": "run-1"}).json()
    assert {r["step"]["task_id"] for r in dag_run} == {"use", "log"}
    task = client.get(
        "/api/runs", params={"dag_id": "mydag", "run_id": "run-1", "task_id": "use", "map_index": "2"}
    ).json()
    assert [r["id"] for r in task] == [seeded.evil_run]
    unmapped = client.get(
        "/api/runs", params={"dag_id": "mydag", "run_id": "run-1", "task_id": "log", "map_index": "{MAP_INDEX}"}
    ).json()
    assert [r["name"] for r in unmapped] == ["log"]
    assert "run_id" in error(client, "/api/runs?dag_id=mydag", 400)
    assert len(client.get("/api/runs?limit=2").json()) == 2


def test_run_detail_lists_its_group(client: Any, seeded: Seeded) -> None:
    run = ok(client, f"/api/runs/{seeded.train_run}", schemas.RunDetail)
    assert run["job_type"] == "train" and [r["name"] for r in run["group_runs"]] == ["evaluate-1"]
    assert "does-not-exist" in error(client, "/api/runs/does-not-exist", 404)


# -- lineage ---------------------------------------------------------------------------------------


def node_labels(graph: dict[str, Any]) -> set[str]:
    return {n["label"] for n in graph["nodes"]}


def test_lineage_collapses_by_type_by_default(client: Any) -> None:
    g = ok(client, f"/api/lineage?ref={Q}/bike-dataset:v1", schemas.LineageGraph)
    assert g["collapse"] == "type" and g["root"] == ["t:dataset"]
    assert {n["id"] for n in g["nodes"]} == {
        "t:dataset",
        "t:model",
        "t:report",
        "j:ingest",
        "j:train",
        "j:evaluate",
        "j:mydag",
    }
    assert {(e["source"], e["target"], e["kind"]) for e in g["edges"]} >= {
        ("j:ingest", "t:dataset", "logged"),
        ("t:dataset", "j:train", "used"),
        ("j:train", "t:model", "logged"),
    }


def test_lineage_explode_group_direction_and_depth(client: Any, seeded: Seeded) -> None:
    base = f"/api/lineage?ref={Q}/bike-dataset:v1"
    exploded = ok(client, base + "&collapse=explode", schemas.LineageGraph)
    assert {"bike-dataset:v1", "bike-model:v0", "eval-report:v0", "train: train-1", "mydag: use[2]"} <= node_labels(
        exploded
    )
    run_nodes = [n for n in exploded["nodes"] if n["kind"] == "run"]
    assert all(n["data"]["url"] is None or n["data"]["url"].startswith("http") for n in run_nodes)
    grouped = ok(client, base + "&collapse=group", schemas.LineageGraph)
    group = next(n for n in grouped["nodes"] if n["id"] == "g:train-group")
    assert group["data"]["runs"] == 2 and group["data"]["job_types"] == ["evaluate", "train"]
    down = client.get(base + "&collapse=explode&direction=downstream").json()
    assert "ingest: ingest-2" not in node_labels(down) and "eval-report:v0" in node_labels(down)
    up = client.get(base + "&collapse=explode&direction=upstream").json()
    assert "ingest: ingest-2" in node_labels(up) and "bike-model:v0" not in node_labels(up)
    assert node_labels(client.get(base + "&collapse=explode&depth=0").json()) == {"bike-dataset:v1"}
    one = node_labels(client.get(base + "&collapse=explode&depth=1&direction=downstream").json())
    assert "bike-model:v0" in one and "ingest: ingest-2" not in one
    around_run = ok(client, f"/api/lineage?run={seeded.train_run}&collapse=explode", schemas.LineageGraph)
    assert around_run["root"] == [f"r:{seeded.train_run}"]


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("collapse=sideways", "collapse"),
        ("direction=left", "direction"),
        ("depth=-1", "depth"),
        ("depth=abc", "depth"),
    ],
)
def test_lineage_refuses_bad_parameters(client: Any, query: str, words: str) -> None:
    assert words in error(client, f"/api/lineage?ref={Q}/bike-dataset:v1&{query}", 400)


def test_lineage_needs_one_start(client: Any) -> None:
    assert "exactly one" in error(client, "/api/lineage", 400)
    assert "bike-dataset:v9" in error(client, f"/api/lineage?ref={Q}/bike-dataset:v9", 404)


# -- read-only, errors, documentation -----------------------------------------------------------------


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
@pytest.mark.parametrize("path", ["/api/projects", f"/api/versions/{Q}/bike-dataset/v1", "/", "/api/nothing"])
def test_everything_but_get_is_refused(client: Any, method: str, path: str) -> None:
    response = client.request(method, path, headers={"Origin": "https://evil.example"}, json={"description": "changed"})
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD"
    assert "access-control-allow-origin" not in response.headers
    assert "read-only" in response.text


def test_head_is_answered_like_get_without_a_body(client: Any) -> None:
    get = client.get("/api/projects")
    head = client.head("/api/projects")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-type"] == get.headers["content-type"]


def test_no_cors_on_reads(client: Any) -> None:
    response = client.get("/api/projects", headers={"Origin": "https://evil.example"})
    assert response.status_code == 200 and "access-control-allow-origin" not in response.headers


def test_data_is_unchanged_after_refused_writes(client: Any) -> None:
    before = client.get(f"/api/versions/{Q}/bike-dataset/v1").json()
    client.post(f"/api/versions/{Q}/bike-dataset/v1", json={"aliases": ["hacked"]})
    client.delete(f"/api/versions/{Q}/bike-dataset/v1")
    assert client.get(f"/api/versions/{Q}/bike-dataset/v1").json() == before


def test_unknown_api_paths_point_to_the_docs(client: Any) -> None:
    assert "openapi.json" in error(client, "/api/nope", 404)


def test_openapi_documents_every_endpoint(client: Any) -> None:
    doc = client.get("/api/openapi.json").json()
    paths = set(doc["paths"])
    version = "/api/versions/{entity}/{project}/{name}/{version}"
    assert {
        "/api/projects",
        "/api/projects/{entity}/{project}/collections",
        "/api/collections/{entity}/{project}/{name}",
        version,
        version + "/files",
        version + "/download/{path}",
        "/api/runs",
        "/api/runs/{run_id}",
        "/api/lineage",
        "/api/diff/{entity}/{project}/{name}",
    } == paths
    assert all(set(ops) == {"get"} for ops in doc["paths"].values())
    assert all(op["get"].get("description") or op["get"].get("summary") for op in doc["paths"].values())


# -- the page -------------------------------------------------------------------------------------


def test_page_is_served_with_relative_urls_and_a_strict_policy(client: Any) -> None:
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert page.headers["x-frame-options"] == "SAMEORIGIN"
    assert 'src="/' not in page.text and 'href="/' not in page.text
    for asset in ("static/app.js", "static/app.css", "static/dagre.min.js", "static/favicon.svg"):
        assert asset in page.text
        response = client.get("/" + asset)
        assert response.status_code == 200 and response.content
    js = client.get("/static/app.js").text
    assert "innerHTML" not in js and "insertAdjacentHTML" not in js and "eval(" not in js


def test_static_assets_are_cache_busted(client: Any) -> None:
    page = client.get("/").text
    version = page.split("static/app.js?v=", 1)[1].split('"', 1)[0]
    fresh = client.get(f"/static/app.js?v={version}")
    assert "immutable" in fresh.headers["cache-control"]
    assert client.get("/static/app.js").headers["cache-control"] == "no-cache"
    assert client.get("/static/app.js", headers={"If-None-Match": fresh.headers["etag"]}).status_code == 304
    assert client.get("/static/nope.js").status_code == 404
    assert client.get("/static/..%2Fapp.py").status_code == 404


def test_deep_link_pages_escape_everything(client: Any, seeded: Seeded) -> None:
    page = client.get("/versions/default/bikes/bike-dataset/v0")
    assert page.status_code == 200
    assert seeded.dataset_v0.digest in page.text
    assert XSS not in page.text and XSS_SCRIPT not in page.text
    assert "&lt;img src=x onerror=window.__xss=1&gt;" in page.text
    assert 'content="#/versions/default/bikes/bike-dataset/v0"' in page.text and 'href="../../../../"' in page.text
    missing = client.get("/versions/default/bikes/bike-dataset/v9")
    assert missing.status_code == 404 and "bike-dataset:v9" in missing.text
    tab = client.get("/runs", params={"dag_id": "mydag", "run_id": "run-1", "task_id": "use", "map_index": "2"})
    assert tab.status_code == 200 and "./versions/default/bikes/bike-dataset/v1" in tab.text
    assert "javascript:" not in tab.text and 'content="#/runs?group=mydag%2Frun-1&amp;task_id=use&amp;map_index=2"' in (
        tab.text
    )


def test_json_keeps_payloads_verbatim(client: Any) -> None:
    v = client.get(f"/api/versions/{Q}/bike-dataset/v0").json()
    assert v["metadata"]["note"] == XSS and XSS in v["metadata"] and XSS_SCRIPT in v["description"]
    assert v["logged_by"]["name"] == XSS


# -- token, hosts, prefixes --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def locked(seeded: Seeded) -> Any:
    from fastapi.testclient import TestClient

    with TestClient(create_app(seeded.settings, token="s3cret-token"), follow_redirects=False) as c:
        yield c


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/api/projects",
        f"/api/versions/{Q}/bike-dataset/v0",
        "/versions/default/bikes/bike-dataset/v0",
        "/api/openapi.json",
    ],
)
def test_token_is_required(locked: Any, path: str) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Cookie": "artifacts_token=forged"}):
        response = locked.get(path, headers=headers)
        assert response.status_code == 401
        assert "bike-dataset" not in response.text and "artifacts ui" in response.text
    assert locked.get(path + ("&" if "?" in path else "?") + "token=wrong").status_code == 401
    assert locked.get(path, headers={"Authorization": "Bearer s3cret-token"}).status_code == 200


def test_token_in_the_url_becomes_a_cookie(locked: Any) -> None:
    response = locked.get("/versions/default/bikes/bike-dataset/v0?token=s3cret-token&x=1")
    assert response.status_code == 303 and response.headers["location"] == "./v0?x=1"
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "s3cret-token" not in cookie
    value = cookie.split(";", 1)[0].split("=", 1)[1]
    assert locked.get("/api/projects", headers={"Cookie": f"artifacts_token={value}"}).status_code == 200
    home = locked.get("/?token=s3cret-token")
    assert home.status_code == 303 and home.headers["location"] == "./"
    assert locked.get("/api/projects?token=s3cret-token").status_code == 200  # scripts: no redirect
    assert locked.get("/static/app.js").status_code == 200  # no data in the assets


def test_allowed_hosts_refuse_rebinding(seeded: Seeded) -> None:
    from fastapi.testclient import TestClient

    app = create_app(seeded.settings, allowed_hosts=["127.0.0.1", "localhost"])
    with TestClient(app, base_url="http://localhost:8765") as c:
        assert c.get("/api/projects").status_code == 200
    with TestClient(app, base_url="http://attacker.example") as c:
        assert c.get("/api/projects").status_code == 400


def test_base_path_serves_everything_under_a_prefix(seeded: Seeded) -> None:
    from fastapi.testclient import TestClient

    with TestClient(create_app(seeded.settings, base_path="/artifacts/"), follow_redirects=False) as c:
        assert c.get("/artifacts").headers["location"] == "./artifacts/"
        assert c.get("/artifacts/").status_code == 200
        assert c.get("/artifacts/api/projects").status_code == 200
        assert c.get("/artifacts/static/app.js").status_code == 200
        assert c.get("/artifacts/versions/default/bikes/bike-dataset/v0").status_code == 200
        assert c.get("/api/projects").status_code == 404
        assert c.get("/artifacts/api/openapi.json").status_code == 200
        assert c.post("/artifacts/api/projects").status_code == 405


def test_mounted_under_a_prefix_like_the_airflow_plugin(seeded: Seeded) -> None:
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    host = FastAPI()
    host.mount("/artifacts", create_app(seeded.settings, token="tok"))
    with TestClient(host, follow_redirects=False) as c:
        login = c.get("/artifacts/versions/default/bikes/bike-dataset/v1?token=tok")
        assert login.status_code == 303 and "Path=/artifacts/" in login.headers["set-cookie"]
        auth = {"Authorization": "Bearer tok"}
        assert c.get("/artifacts/api/projects", headers=auth).status_code == 200
        assert c.get("/artifacts/", headers=auth).status_code == 200
        assert "no API endpoint" in c.get("/artifacts/api/x", headers=auth).json()["detail"]


def test_schemas_document_every_field(client: Any) -> None:
    """The documented models list exactly the fields the endpoints return (no undocumented extras)."""

    def fields(model: type[BaseModel]) -> set[str]:
        return set(model.model_fields)

    v = client.get(f"/api/versions/{Q}/bike-dataset/v1").json()
    assert set(v) == fields(schemas.VersionDetail)
    assert set(v["used_by"][0]) == fields(schemas.RunSummary)
    run = client.get("/api/runs?limit=1").json()[0]
    assert set(run) == fields(schemas.RunWithArtifacts)
    assert set(client.get(f"/api/diff/{Q}/bike-dataset?from=v0&to=v1").json()) == fields(schemas.Diff)
    assert set(client.get(f"/api/collections/{Q}/bike-dataset").json()) == fields(schemas.CollectionDetail)
