"""The Airflow plugin: the artifacts web app under ``/artifacts``, a nav entry and run/TI tabs.

Airflow mounts plugin FastAPI apps without authentication, so the artifacts app is served behind
a small gate app whose only route requires Airflow's asset read permission (the same token or
session cookie as the Airflow UI) before handing the request to the artifacts app. The gate only
forwards GET and HEAD: the web app is read-only.

The plugin is loaded by API servers and by workers; the gate (which needs the API server's
security module) is built on first access to :attr:`ArtifactPlugin.fastapi_apps`, which only the
API server reads.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

from airflow.sdk.plugins_manager import AirflowPlugin

from .links import WEB_PREFIX
from .listener import ArtifactRunListener

ASGIApp = Callable[..., Any]

NAV_HREF = "artifacts/"
DAG_RUN_HREF = "artifacts/runs?dag_id={DAG_ID}&run_id={RUN_ID}"
TASK_INSTANCE_HREF = "artifacts/runs?dag_id={DAG_ID}&run_id={RUN_ID}&task_id={TASK_ID}&map_index={MAP_INDEX}"


def load_web_app() -> ASGIApp:
    """The artifacts web app (``artifact_plugins.web``), showing the registry configured on the API server."""
    from artifact_plugins.web import create_app

    return create_app()


class _Inner:
    """The wrapped app, created once (at API-server start-up or on the first request)."""

    def __init__(self, factory: Callable[[], ASGIApp]) -> None:
        self._factory = factory
        self._app: ASGIApp | None = None
        self._lock = threading.Lock()

    def get(self) -> ASGIApp:
        if self._app is None:
            with self._lock:
                if self._app is None:
                    self._app = self._factory()
        return self._app


def protected_app(factory: Callable[[], ASGIApp] = load_web_app) -> Any:
    """A FastAPI app that authorises every request with Airflow's auth manager, then serves ``factory()``."""
    from airflow.api_fastapi.core_api.security import requires_access_asset
    from fastapi import Depends, FastAPI
    from fastapi.responses import Response
    from starlette.types import Receive, Scope, Send

    inner = _Inner(factory)

    class _Forward(Response):
        """Hands the (already authorised) request over to the wrapped app unchanged."""

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            await inner.get()(scope, receive, send)

    @contextlib.asynccontextmanager
    async def lifespan(_: Any) -> AsyncIterator[None]:
        app = inner.get()
        router = getattr(app, "router", None)
        context = getattr(router, "lifespan_context", None)
        if context is None:
            yield
        else:
            async with context(app):
                yield

    gate = FastAPI(
        title="Artifacts (Airflow plugin)",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        lifespan=lifespan,
        dependencies=[Depends(requires_access_asset(method="GET"))],
    )

    @gate.api_route("/{path:path}", methods=["GET", "HEAD"], include_in_schema=False)
    async def forward(path: str) -> Response:
        return _Forward()

    return gate


_gate_lock = threading.Lock()
_gate: Any | None = None


def _shared_gate() -> Any:
    global _gate
    with _gate_lock:
        if _gate is None:
            _gate = protected_app()
        return _gate


class ArtifactPlugin(AirflowPlugin):
    """Shows artifacts in the Airflow UI (nav entry, DAG-run and task-instance tabs) and closes runs of ended tries."""

    name = "artifact_plugins"
    listeners = [ArtifactRunListener()]
    external_views = [
        {"name": "Artifacts", "href": NAV_HREF, "destination": "nav", "url_route": "artifacts"},
        {
            "name": "Artifacts",
            "href": DAG_RUN_HREF,
            "destination": "dag_run",
            "url_route": "artifacts-dag-run",
        },
        {
            "name": "Artifacts",
            "href": TASK_INSTANCE_HREF,
            "destination": "task_instance",
            "url_route": "artifacts-task-instance",
        },
    ]

    @property
    def fastapi_apps(self) -> list[dict[str, Any]]:  # type: ignore[override]
        """The gated artifacts app mounted at ``/artifacts`` (built on first access)."""
        return [{"app": _shared_gate(), "url_prefix": WEB_PREFIX, "name": "artifacts"}]
