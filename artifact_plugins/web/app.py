"""``create_app()``: the read-only lineage viewer (JSON API under ``api/`` and the single-page app)."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response

from .. import __version__
from ..core.config import Settings
from ..core.errors import ArtifactPluginsError, InvalidInputError, NotFoundError, RegistryError, StoreError
from . import schemas
from .pages import asset_version, assets, runs_fallback, shell, version_fallback
from .security import Guard
from .service import Catalog

NO_CACHE = {"cache-control": "no-cache"}
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": schemas.ErrorBody, "description": "Invalid input (the message names the value and rule)"},
    404: {"model": schemas.ErrorBody, "description": "Not found (the message names what is missing)"},
}

Entity = Annotated[str, Path(description="entity, e.g. `default`")]
Project = Annotated[str, Path(description="project")]
Name = Annotated[str, Path(description="collection (artifact) name")]
Version = Annotated[str, Path(description="`v3`, an alias such as `latest`, or `blake3:<hex>`")]
Limit = Annotated[int | None, Query(ge=1, le=1000, description="page size")]
Offset = Annotated[int, Query(ge=0, description="items to skip")]

API_DOC = """Read-only JSON behind the artifacts lineage viewer. Every path is relative to where the app
is mounted (`/` for `artifacts ui`, `/artifacts` inside Airflow). Errors are `{"detail": "..."}` with
400 (invalid input), 401 (token missing), 404 (not found) or 405 (anything but GET/HEAD)."""


def _map_index(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:  # Airflow leaves "{MAP_INDEX}" in tab URLs of unmapped task instances
        return -1


def _group(dag_id: str | None, run_id: str | None, group: str | None) -> str | None:
    if group is None and (dag_id or run_id):
        if not (dag_id and run_id):
            raise InvalidInputError("give both dag_id and run_id (an Airflow DAG run), or group")
        return f"{dag_id}/{run_id}"
    return group


def _runs_route(group: str | None, task_id: str | None, map_index: str | None) -> str:
    params = [(k, v) for k, v in (("group", group), ("task_id", task_id), ("map_index", map_index)) if v]
    return "#/runs" + ("?" + "&".join(f"{k}={quote(v, safe='')}" for k, v in params) if params else "")


def create_app(
    settings: Settings | None = None,
    *,
    token: str | None = None,
    base_path: str = "",
    allowed_hosts: Sequence[str] | None = None,
) -> FastAPI:
    """The read-only artifacts web app.

    ``settings``: the store and registry to show (default: resolved from the environment on the
    first request). ``token``: if given, every request must present it (``Authorization: Bearer``,
    or ``?token=`` once, which sets a cookie). ``base_path``: serve everything under this prefix
    (e.g. ``"/artifacts"``); mounting the app under a prefix works too, as all page URLs are
    relative. ``allowed_hosts``: refuse other ``Host`` headers (``artifacts ui`` passes the loopback
    names). Only GET and HEAD are answered; there is no CORS.
    """
    base_path = "/" + base_path.strip("/") if base_path.strip("/") else ""
    catalog = Catalog(settings)
    app = FastAPI(
        title="Artifacts",
        version=__version__,
        description=API_DOC,
        docs_url=None,
        redoc_url=None,
        openapi_url=f"{base_path}/api/openapi.json",
    )
    app.state.catalog = catalog
    api = APIRouter(prefix=f"{base_path}/api", responses=ERRORS)
    pages = APIRouter(prefix=base_path, include_in_schema=False)

    # -- JSON API --------------------------------------------------------------------------------

    @api.get("/projects", response_model=list[schemas.Project], tags=["browse"])
    def list_projects() -> Any:
        """Every project with its collection and version counts per artifact type."""
        return JSONResponse(catalog.projects(), headers=NO_CACHE)

    @api.get("/projects/{entity}/{project}/collections", response_model=list[schemas.Collection], tags=["browse"])
    def list_collections(
        entity: Entity, project: Project, type: Annotated[str | None, Query(description="artifact type")] = None
    ) -> Any:
        """Collections of a project (optionally of one artifact type), by type then name."""
        return JSONResponse(catalog.collections(entity, project, type), headers=NO_CACHE)

    @api.get("/collections/{entity}/{project}/{name}", response_model=schemas.CollectionDetail, tags=["browse"])
    def get_collection(entity: Entity, project: Project, name: Name, limit: Limit = 100, offset: Offset = 0) -> Any:
        """A collection, its current aliases and a page of its versions, newest first."""
        return JSONResponse(catalog.collection(entity, project, name, limit, offset), headers=NO_CACHE)

    @api.get("/versions/{entity}/{project}/{name}/{version}", response_model=schemas.VersionDetail, tags=["versions"])
    def get_version(entity: Entity, project: Project, name: Name, version: Version) -> Any:
        """One version: digest, size, aliases and their history, metadata, description, producing and
        consuming runs (with deep links into the Prefect or Airflow UI)."""
        return JSONResponse(catalog.version(entity, project, name, version), headers=NO_CACHE)

    @api.get(
        "/versions/{entity}/{project}/{name}/{version}/files", response_model=schemas.FileListing, tags=["versions"]
    )
    def list_files(
        entity: Entity,
        project: Project,
        name: Name,
        version: Version,
        path: Annotated[str, Query(description="directory inside the version ('' = root)")] = "",
        limit: Limit = 500,
        offset: Offset = 0,
    ) -> Any:
        """One directory of the version's manifest: sub-directories with file counts and sizes, and files."""
        return JSONResponse(catalog.files(entity, project, name, version, path, limit, offset), headers=NO_CACHE)

    @api.get(
        "/versions/{entity}/{project}/{name}/{version}/download/{path:path}",
        tags=["versions"],
        response_class=FileResponse,
        responses={200: {"content": {"application/octet-stream": {}}}},
    )
    def download(entity: Entity, project: Project, name: Name, version: Version, path: str) -> Any:
        """The bytes of one file, streamed from the store (always as an attachment)."""
        local, entry = catalog.blob_path(entity, project, name, version, path)
        return FileResponse(
            local,
            media_type="application/octet-stream",
            filename=entry.path.rpartition("/")[2],
            content_disposition_type="attachment",
            headers={"etag": f'"{entry.digest}"', "cache-control": "private, max-age=86400"},
        )

    @api.get("/runs", response_model=list[schemas.RunWithArtifacts], tags=["runs"])
    def list_runs(
        entity: str | None = None,
        project: str | None = None,
        group: Annotated[str | None, Query(description="Prefect flow run id or Airflow `dag_id/run_id`")] = None,
        orchestrator: Annotated[str | None, Query(description="`prefect`, `airflow` or `script`")] = None,
        job_type: str | None = None,
        dag_id: Annotated[str | None, Query(description="with run_id: the runs of one Airflow DAG run")] = None,
        run_id: Annotated[str | None, Query(description="Airflow DAG run id (with dag_id)")] = None,
        task_id: Annotated[str | None, Query(description="only runs of this Airflow task")] = None,
        map_index: Annotated[str | None, Query(description="only this mapped index of task_id")] = None,
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> Any:
        """Runs, newest first, each with the versions it logged and used."""
        runs = catalog.runs(
            entity=entity,
            project=project,
            group=_group(dag_id, run_id, group),
            orchestrator=orchestrator,
            job_type=job_type,
            task_id=task_id,
            map_index=_map_index(map_index),
            limit=limit,
            offset=offset,
        )
        return JSONResponse(runs, headers=NO_CACHE)

    @api.get("/runs/{run_id}", response_model=schemas.RunDetail, tags=["runs"])
    def get_run(run_id: str) -> Any:
        """One run: what it logged and used, and the other runs of its flow run / DAG run."""
        return JSONResponse(catalog.run(run_id), headers=NO_CACHE)

    @api.get("/lineage", response_model=schemas.LineageGraph, tags=["lineage"])
    def lineage(
        ref: Annotated[str | None, Query(description="a version: `entity/project/name:v3`")] = None,
        run: Annotated[str | None, Query(description="a run id (instead of ref)")] = None,
        direction: Annotated[str, Query(description="`upstream`, `downstream` or `both`")] = "both",
        depth: Annotated[int | None, Query(ge=0, description="hops (run + version) to follow; none = all")] = None,
        collapse: Annotated[
            str, Query(description="`type` (per artifact type / job type), `group` (per flow/DAG run), `explode`")
        ] = "type",
    ) -> Any:
        """The lineage graph around a version or a run: artifacts and runs as nodes, ``used`` and
        ``logged`` edges."""
        graph = catalog.lineage(ref=ref, run_id=run, direction=direction, depth=depth, collapse=collapse)
        return JSONResponse(graph, headers=NO_CACHE)

    @api.get("/diff/{entity}/{project}/{name}", response_model=schemas.Diff, tags=["versions"])
    def diff(
        entity: Entity,
        project: Project,
        name: Name,
        old: Annotated[str, Query(alias="from", description="the older version, e.g. `v1`")],
        new: Annotated[str, Query(alias="to", description="the newer version, e.g. `v2` or `latest`")],
        limit: Annotated[int | None, Query(ge=1, le=1000, description="items per list")] = 1000,
    ) -> Any:
        """Files added, removed, modified and renamed (and reference entries changed) between two versions
        of a collection, and metadata changes."""
        return JSONResponse(catalog.diff(entity, project, name, old, new, limit), headers=NO_CACHE)

    @api.get("/{rest:path}", include_in_schema=False)
    def unknown(rest: str) -> Any:
        raise NotFoundError(f"no API endpoint 'api/{rest}'; the endpoints are listed at api/openapi.json")

    # -- the page ---------------------------------------------------------------------------------

    def html(body: str, status: int = 200) -> HTMLResponse:
        return HTMLResponse(body, status_code=status, headers={"cache-control": "no-cache"})

    if base_path:

        @app.get(base_path, include_in_schema=False)
        def to_root() -> Response:
            return RedirectResponse("./" + base_path.rsplit("/", 1)[1] + "/", status_code=307)

    @pages.get("/")
    def index() -> HTMLResponse:
        return html(shell())

    @pages.get("/versions/{entity}/{project}/{name}/{version}")
    def version_page(entity: str, project: str, name: str, version: str) -> HTMLResponse:
        route = "#/" + "/".join(["versions", *(quote(p, safe="") for p in (entity, project, name, version))])
        try:
            data = catalog.version(entity, project, name, version)
        except (NotFoundError, InvalidInputError) as exc:
            fallback, status, title = f"<p>{escape(str(exc))}</p>", 404, "Not found"
        else:
            fallback, status, title = version_fallback(data), 200, data["qualified_name"]
        return html(shell(base="../../../../", route=route, title=title, fallback=fallback), status)

    @pages.get("/runs")
    def runs_page(
        dag_id: str | None = None,
        run_id: str | None = None,
        group: str | None = None,
        task_id: str | None = None,
        map_index: str | None = None,
    ) -> HTMLResponse:
        grp = _group(dag_id, run_id, group)
        runs = catalog.runs(group=grp, task_id=task_id, map_index=_map_index(map_index), limit=200)
        route = _runs_route(grp, task_id, map_index if _map_index(map_index) not in (None, -1) else None)
        return html(shell(route=route, title="Runs", fallback=runs_fallback(runs)))

    @pages.get("/static/{name}")
    def static(name: str, request: Request) -> Response:
        asset = assets().get(name)
        if asset is None or name == "index.html":
            return Response("not found\n", status_code=404, media_type="text/plain")
        fresh = request.query_params.get("v") == asset_version()
        headers = {
            "etag": asset.etag,
            "cache-control": "public, max-age=31536000, immutable" if fresh else "no-cache",
        }
        if request.headers.get("if-none-match") == asset.etag:
            return Response(status_code=304, headers=headers)
        return Response(asset.body, media_type=asset.media_type, headers=headers)

    app.include_router(api)
    app.include_router(pages)

    # -- errors -----------------------------------------------------------------------------------

    def status_of(exc: Exception) -> int:
        if isinstance(exc, NotFoundError):
            return 404
        if isinstance(exc, InvalidInputError):
            return 400
        if isinstance(exc, RegistryError | StoreError):
            return 503
        return 500

    @app.exception_handler(ArtifactPluginsError)
    async def on_error(request: Request, exc: ArtifactPluginsError) -> Response:
        status = status_of(exc)
        if request.url.path.startswith(request.scope.get("root_path", "") + base_path + "/api/"):
            return JSONResponse({"detail": str(exc)}, status_code=status)
        return html(shell(title="Error", fallback=f"<p>{escape(str(exc))}</p>"), status)

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, exc: RequestValidationError) -> Response:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ())[1:]) or 'request'}: {e.get('msg', 'invalid')}"
            for e in exc.errors()
        )
        return JSONResponse({"detail": f"invalid request: {problems}"}, status_code=400)

    app.add_middleware(Guard, token=token, allowed_hosts=allowed_hosts, base_path=base_path)
    return app
