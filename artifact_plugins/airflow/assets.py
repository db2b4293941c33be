"""Artifact collections as Airflow Assets.

``artifact_asset("bike-dataset")`` is the Asset to declare in ``outlets`` of the task that logs the
artifact (in ``partial()`` for mapped tasks: outlets set at run time are dropped by Airflow) and in
``inlets`` of the tasks that use it. Its URI names the collection, never a version: the version
travels in each asset event's ``extra``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from artifact_plugins.core.naming import validate_name

if TYPE_CHECKING:
    from airflow.sdk import Asset

SCHEME = "artifact"
ASSET_GROUP = "artifact"


def _defaults(project: str | None, entity: str | None) -> tuple[str, str]:
    if project is not None and entity is not None:
        return entity, project
    from artifact_plugins.core.config import Settings

    settings = Settings.resolve()
    return (entity or settings.entity), (project or settings.project)


def asset_uri(name: str, project: str | None = None, entity: str | None = None) -> str:
    """``artifact://<entity>/<project>/<name>``; entity and project default to the resolved settings."""
    validate_name(name, "artifact name")
    entity, project = _defaults(project, entity)
    validate_name(entity, "entity")
    validate_name(project, "project")
    return f"{SCHEME}://{entity}/{project}/{name}"


def artifact_asset(name: str, project: str | None = None, entity: str | None = None) -> Asset:
    """The Airflow Asset standing for the artifact collection ``name``.

    The asset is named ``<entity>/<project>/<name>`` (asset names are unique across Airflow) with
    URI ``artifact://<entity>/<project>/<name>`` in the ``artifact`` group. Entity and project
    default to the resolved artifact_plugins settings of the process that parses the DAG; pass
    them explicitly when DAG parsing and workers may be configured differently.
    """
    from airflow.sdk import Asset

    uri = asset_uri(name, project=project, entity=entity)
    return Asset(name=uri.removeprefix(f"{SCHEME}://"), uri=uri, group=ASSET_GROUP)


def is_artifact_asset(obj: Any) -> bool:
    """True for assets made by :func:`artifact_asset` (by URI scheme)."""
    uri = getattr(obj, "uri", None)
    return isinstance(uri, str) and uri.startswith(f"{SCHEME}://")


def parse_asset_uri(uri: str) -> tuple[str, str, str]:
    """``artifact://e/p/n`` -> ``(e, p, n)``; raises ``ValueError`` for anything else."""
    prefix = f"{SCHEME}://"
    parts = uri.removeprefix(prefix).split("/") if uri.startswith(prefix) else []
    if len(parts) != 3 or not all(parts):
        raise ValueError(f"{uri!r} is not an artifact asset URI ('{prefix}<entity>/<project>/<name>')")
    entity, project, name = parts
    return entity, project, name
