"""A minimal read-only artifacts app, mounted by the plugin until ``artifact_plugins.web`` exists.

It answers the routes the plugin links to (version pages, the runs of a DAG run or task
instance) with small HTML pages, and the JSON endpoints behind them, all built on the core
:class:`~artifact_plugins.Api`. Every user-controlled string is HTML-escaped.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from typing import Any

from fastapi import FastAPI, HTTPException, Query
from fastapi.responses import HTMLResponse

from .links import version_page_path


def _api(settings: Any | None) -> Any:
    import artifact_plugins as ap

    return ap.Api(settings=settings)


def _iso(value: Any) -> str | None:
    return value.isoformat() if hasattr(value, "isoformat") else (None if value is None else str(value))


def _version_refs(versions: Iterable[Any]) -> list[dict[str, Any]]:
    return [
        {
            "qualified_name": v.qualified_name,
            "digest": v.digest,
            "page": version_page_path(v.entity, v.project, v.name, v.version),
        }
        for v in versions
    ]


def run_json(api: Any, run: Any) -> dict[str, Any]:
    """A registry run with what it logged and used, as JSON."""
    return {
        "id": str(run.id),
        "name": run.name,
        "job_type": run.job_type,
        "orchestrator": run.orchestrator,
        "group": run.group,
        "url": run.url,
        "status": run.status,
        "step": dict(getattr(run, "step", None) or {}),
        "started_at": _iso(getattr(run, "started_at", None)),
        "logged": _version_refs(api.run_logged_artifacts(run.id)),
        "used": _version_refs(api.run_used_artifacts(run.id)),
    }


def version_json(version: Any) -> dict[str, Any]:
    """A version with its producing and consuming runs, as JSON."""
    producer = version.logged_by()
    return {
        "name": version.name,
        "type": version.type,
        "version": version.version,
        "qualified_name": version.qualified_name,
        "digest": version.digest,
        "size": version.size,
        "file_count": version.file_count,
        "aliases": list(version.aliases),
        "metadata": dict(version.metadata or {}),
        "description": version.description,
        "created_at": _iso(version.created_at),
        "logged_by": None if producer is None else _run_summary(producer),
        "used_by": [_run_summary(r) for r in version.used_by()],
    }


def _run_summary(run: Any) -> dict[str, Any]:
    return {"id": str(run.id), "name": run.name, "job_type": run.job_type, "group": run.group, "url": run.url,
            "orchestrator": run.orchestrator, "status": run.status}


def _parse_map_index(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:  # the UI leaves "{MAP_INDEX}" in place for unmapped task instances
        return -1


def select_runs(api: Any, dag_id: str | None, run_id: str | None, group: str | None,
                task_id: str | None, map_index: str | None) -> list[Any]:
    """The registry runs of a DAG run (``dag_id`` + ``run_id`` or ``group``), optionally of one task."""
    if group is None:
        if not dag_id or not run_id:
            raise HTTPException(status_code=400, detail="give group, or dag_id and run_id")
        group = f"{dag_id}/{run_id}"
    runs = list(api.runs(group=group, limit=None))
    index = _parse_map_index(map_index)
    if task_id is not None:
        runs = [r for r in runs if (getattr(r, "step", None) or {}).get("task_id") == task_id]
        if index is not None and index >= 0:
            runs = [r for r in runs if (r.step or {}).get("map_index") == index]
    return runs


def _page(title: str, body: str) -> HTMLResponse:
    doc = (
        "<!doctype html><html><head><meta charset='utf-8'><title>"
        + html.escape(title)
        + "</title><style>body{font-family:sans-serif;margin:1rem}td,th{padding:.2rem .6rem;text-align:left}"
        "</style></head><body><h1>" + html.escape(title) + "</h1>" + body + "</body></html>"
    )
    return HTMLResponse(doc)


def _links(items: list[dict[str, Any]], root: str) -> str:
    return ", ".join(
        f"<a href='{html.escape(root + i['page'])}'>{html.escape(i['qualified_name'])}</a>" for i in items
    ) or "-"


def create_app(settings: Any | None = None) -> FastAPI:
    """The read-only artifacts app (JSON under ``/api``, HTML pages elsewhere)."""
    app = FastAPI(title="Artifacts", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/api/runs")
    def api_runs(dag_id: str | None = None, run_id: str | None = None, group: str | None = None,
                 task_id: str | None = None, map_index: str | None = None) -> list[dict[str, Any]]:
        api = _api(settings)
        return [run_json(api, r) for r in select_runs(api, dag_id, run_id, group, task_id, map_index)]

    @app.get("/api/versions/{entity}/{project}/{name}/{version}")
    def api_version(entity: str, project: str, name: str, version: str) -> dict[str, Any]:
        return version_json(_lookup(entity, project, name, version))

    def _lookup(entity: str, project: str, name: str, version: str) -> Any:
        from artifact_plugins.core.errors import ArtifactNotFoundError, InvalidInputError

        try:
            return _api(settings).artifact(f"{entity}/{project}/{name}:{version}")
        except (ArtifactNotFoundError, InvalidInputError) as exc:
            raise HTTPException(status_code=404, detail=str(exc)) from None

    @app.get("/runs", response_class=HTMLResponse)
    def runs_page(dag_id: str | None = None, run_id: str | None = None, group: str | None = Query(None),
                  task_id: str | None = None, map_index: str | None = None) -> HTMLResponse:
        api = _api(settings)
        runs = [run_json(api, r) for r in select_runs(api, dag_id, run_id, group, task_id, map_index)]
        rows = "".join(
            "<tr><td>" + html.escape(r["name"] or "") + "</td><td>" + html.escape(str(r["status"]))
            + "</td><td>" + _links(r["used"], ".") + "</td><td>" + _links(r["logged"], ".") + "</td></tr>"
            for r in runs
        )
        body = ("<table><tr><th>Run</th><th>Status</th><th>Used</th><th>Logged</th></tr>" + rows + "</table>"
                if runs else "<p>No artifacts were used or logged here.</p>")
        return _page("Artifacts", body)

    @app.get("/versions/{entity}/{project}/{name}/{version}", response_class=HTMLResponse)
    def version_page(entity: str, project: str, name: str, version: str) -> HTMLResponse:
        data = version_json(_lookup(entity, project, name, version))
        producer = data["logged_by"]
        fields = [("Digest", data["digest"]), ("Type", data["type"]), ("Size", str(data["size"])),
                  ("Files", str(data["file_count"])), ("Aliases", ", ".join(data["aliases"])),
                  ("Description", data["description"] or ""),
                  ("Logged by", producer["name"] if producer else "-"),
                  ("Used by", ", ".join(r["name"] or "" for r in data["used_by"]) or "-")]
        body = "<table>" + "".join(
            f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in fields
        ) + "</table>"
        return _page(data["qualified_name"], body)

    @app.get("/", response_class=HTMLResponse)
    def home() -> HTMLResponse:
        collections = list(_api(settings).artifact_collections())
        items = "".join(f"<li>{html.escape(str(getattr(c, 'name', c)))}</li>" for c in collections)
        return _page("Artifacts", f"<ul>{items}</ul>" if items else "<p>No artifacts yet.</p>")

    return app
