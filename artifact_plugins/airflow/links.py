"""The "Artifact" extra link shown on the artifact operators' task instances.

Airflow 3 computes extra links on the worker when the task finishes and stores them as XComs, so
the link needs no plugin registration: the operator remembers the URL of the version page it
produced or consumed and the link returns it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from airflow.sdk import BaseOperatorLink

from .context import api_base_url

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator
    from airflow.sdk.types import TaskInstanceKey

WEB_PREFIX = "/artifacts"
LINK_ATTRIBUTE = "_artifact_page_url"


def version_page_path(entity: str, project: str, name: str, version: str) -> str:
    """Path of a version's page inside the artifacts web app (relative to its mount point)."""
    return "/versions/" + "/".join(quote(part, safe="") for part in (entity, project, name, version))


def version_page_url(version: Any, base_url: str | None = None) -> str:
    """Absolute URL of ``version``'s page in the web app mounted by the Airflow plugin."""
    base = api_base_url() if base_url is None else base_url.rstrip("/")
    path = version_page_path(version.entity, version.project, version.name, version.version)
    return f"{base}{WEB_PREFIX}{path}"


class ArtifactLink(BaseOperatorLink):
    """Links a task instance to the page of the artifact version it logged or used."""

    name = "Artifact"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        """The version page remembered by the operator during ``execute`` (empty when none)."""
        url = getattr(operator, LINK_ATTRIBUTE, None)
        return url if isinstance(url, str) else ""
