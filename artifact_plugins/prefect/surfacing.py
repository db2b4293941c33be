"""What a logged or used artifact version looks like from Prefect's side.

Called by :class:`~artifact_plugins.prefect.context.PrefectRunContextProvider` hooks, only
inside a Prefect flow run or task run. Every entry point is wrapped by :func:`guarded`: the
version is already committed when these run, so a failure here must never fail the user's task.

Per logged/used version this records:

* a **keyed markdown artifact** per collection (key slugged from ``project-name``): the
  version table and a Mermaid lineage chart with plain links under it (the open-source UI
  shows the key's history as a timeline, one entry per task run that logged or used it);
* an **inputs card** (unkeyed markdown artifact) on each consuming run;
* **asset events** keyed ``artifact://<entity>/<project>/<name>``: inside a task run through the
  task's ``AssetContext`` (so Prefect propagates the asset to downstream tasks and emits the
  materialization when the task ends), otherwise emitted directly;
* ``artifact_plugins.version.created`` / ``artifact_plugins.alias.moved`` events for automations.

With ``ProcessPoolTaskRunner`` Prefect does not carry assets from one task to the next, so
asset events lose their upstream links; the lineage in our registry is unaffected (it joins
runs through the flow run id).
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from artifact_plugins.core.api import Api
    from artifact_plugins.core.run import Run
    from artifact_plugins.core.run_context import AliasMove
    from artifact_plugins.core.version import ArtifactVersion

logger = logging.getLogger(__name__)

EVENT_VERSION_CREATED = "artifact_plugins.version.created"
EVENT_ALIAS_MOVED = "artifact_plugins.alias.moved"
ASSET_MATERIALIZED = "prefect.asset.materialization.succeeded"
ASSET_REFERENCED = "prefect.asset.referenced"
MATERIALIZED_BY = "artifact_plugins"
LABEL = "artifact_plugins"
CARD_VERSIONS = 20  # rows of the version table on a collection card
LINEAGE_DEPTH = 2  # hops drawn around the newest version on a collection card

_SLUG_RE = re.compile(r"[^a-z0-9]+")


# --------------------------------------------------------------------------- names and keys


def artifact_key(entity: str, project: str, name: str) -> str:
    """Prefect artifact key of a collection: ``project-name`` slugged to ``[a-z0-9-]``.

    The entity is prefixed when it is not ``default``. Names that differ only in case or in
    ``_``/``.`` share a slug (and so a card); the card's description names the exact collection.
    """
    parts = (project, name) if entity == "default" else (entity, project, name)
    return _SLUG_RE.sub("-", "-".join(parts).lower()).strip("-") or "artifact"


def asset_uri(entity: str, project: str, name: str) -> str:
    """The Prefect asset key of a collection: ``artifact://<entity>/<project>/<name>``."""
    return f"artifact://{entity}/{project}/{name}"


def collection_resource_id(entity: str, project: str, name: str) -> str:
    """Event resource id of a collection: ``artifact_plugins.artifact.<entity>.<project>.<name>``."""
    return f"{LABEL}.artifact.{entity}.{project}.{name}"


def alias_resource(alias: str) -> dict[str, str]:
    """A related resource naming an alias, for ``match_related`` in automation triggers."""
    return {
        "prefect.resource.id": f"{LABEL}.alias.{alias}",
        "prefect.resource.role": "alias",
        "prefect.resource.name": alias,
    }


def _split_collection(qualified: str) -> tuple[str, str, str]:
    """``entity/project/name[:vN]`` -> (entity, project, name)."""
    entity, project, rest = qualified.split("/", 2)
    return entity, project, rest.split(":", 1)[0].split("@", 1)[0]


# --------------------------------------------------------------------------- guard


def guarded(fn: Callable[..., None], *args: Any, **kwargs: Any) -> None:
    """Run ``fn``; any exception becomes a warning in the run's log instead of a task failure."""
    try:
        fn(*args, **kwargs)
    except Exception as exc:
        _run_logger().warning(
            "artifact_plugins: could not show this in Prefect (%s: %s); the artifact itself is stored",
            type(exc).__name__,
            exc,
        )
        logger.debug("Prefect surfacing failed", exc_info=True)


def _run_logger() -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
    try:
        from prefect.logging import get_run_logger

        return get_run_logger()
    except Exception:
        return logger


# --------------------------------------------------------------------------- hooks


def version_logged(run: Run, version: ArtifactVersion, *, created: bool) -> None:
    """Surface a committed (``created``) or deduplicated version logged by ``run``."""
    payload = version_payload(version, created=created)
    _step(_materialize_asset, run, version, payload)
    if created:
        _step(_emit_version_created, run, version, payload)
    _step(publish_collection_card, run, version.entity, version.project, version.name)


def version_used(run: Run, version: ArtifactVersion) -> None:
    """Surface that ``run`` used ``version``."""
    _step(_reference_asset, version)
    _step(publish_inputs_card, version)
    _step(publish_collection_card, run, version.entity, version.project, version.name)


def alias_moved(run: Run | None, move: AliasMove) -> None:
    """Emit ``artifact_plugins.alias.moved`` and refresh the collection card (a no-op if unchanged)."""
    _step(_emit_alias_moved, run, move)
    _step(publish_collection_card, run, *_split_collection(move.qualified_collection))


def _step(fn: Callable[..., None], *args: Any) -> None:
    """One independent side effect: a failure is reported and the others still happen."""
    guarded(fn, *args)


# --------------------------------------------------------------------------- payloads


def version_payload(version: ArtifactVersion, *, created: bool | None = None) -> dict[str, Any]:
    """JSON-safe facts about a version, used as asset metadata and event payload."""
    payload: dict[str, Any] = {
        "qualified_name": version.qualified_name,
        "version": version.version,
        "digest": version.digest,
        "type": version.type,
        "aliases": list(version.aliases),
        "size": int(version.size or 0),
        "file_count": int(version.file_count or 0),
    }
    if created is not None:
        payload["created"] = created
    return payload


def _run_payload(run: Run | None) -> dict[str, Any]:
    if run is None:
        return {}
    return {"run_id": str(run.id), "run_name": run.name, "run_url": run.url}


# --------------------------------------------------------------------------- assets


def _asset(version: ArtifactVersion) -> Any:
    from prefect.assets import Asset, AssetProperties

    description = version.description or f"{version.type} artifact"
    return Asset(
        key=asset_uri(version.entity, version.project, version.name),
        properties=AssetProperties(name=f"{version.project}/{version.name}", description=description[:2500]),
    )


def _task_asset_context() -> Any:
    """The running task's ``AssetContext``, or ``None`` at flow level / outside a task."""
    from prefect.context import AssetContext, TaskRunContext

    task_ctx = TaskRunContext.get()
    asset_ctx = AssetContext.get()
    if task_ctx is None or asset_ctx is None or asset_ctx.task_run_id != task_ctx.task_run.id:
        return None
    return asset_ctx


def _add_once(assets: set[Any], asset: Any) -> None:
    """Add ``asset`` unless one with its key is there (Asset equality also compares properties)."""
    if all(a.key != asset.key for a in assets):
        assets.add(asset)


def _materialize_asset(run: Run, version: ArtifactVersion, payload: dict[str, Any]) -> None:
    asset = _asset(version)
    asset_ctx = _task_asset_context()
    if asset_ctx is not None:
        # Prefect emits the materialization (with upstream assets as related resources) when
        # the task run ends, and passes the asset on to tasks that consume this task's result.
        _add_once(asset_ctx.downstream_assets, asset)
        if asset_ctx.materialized_by is None:
            asset_ctx.materialized_by = MATERIALIZED_BY
        asset_ctx.add_asset_metadata(asset.key, payload)
        asset_ctx.update_tracked_assets()
        return
    from prefect.context import AssetContext
    from prefect.events import emit_event

    upstream = [_asset(v) for v in run.used_artifacts()]
    emit_event(
        ASSET_MATERIALIZED,
        resource=AssetContext.asset_as_resource(asset),
        related=[AssetContext.asset_as_related(a) for a in upstream]
        + [AssetContext.related_materialized_by(MATERIALIZED_BY)],
        payload=payload,
    )


def _reference_asset(version: ArtifactVersion) -> None:
    from prefect.context import AssetContext
    from prefect.events import emit_event

    asset = _asset(version)
    asset_ctx = _task_asset_context()
    if asset_ctx is not None:
        # Recorded as a direct dependency: downstream tasks inherit it, and a materialization in
        # this task lists it as upstream.
        _add_once(asset_ctx.direct_asset_dependencies, asset)
        asset_ctx.update_tracked_assets()
    # Prefect only emits references for tasks that also materialize something; a pure consumer
    # still deserves one, with the version it resolved to.
    emit_event(ASSET_REFERENCED, resource=AssetContext.asset_as_resource(asset), payload=version_payload(version))


# --------------------------------------------------------------------------- plugin events


def _emit_version_created(run: Run, version: ArtifactVersion, payload: dict[str, Any]) -> None:
    from prefect.events import emit_event

    resource = {
        "prefect.resource.id": collection_resource_id(version.entity, version.project, version.name),
        "prefect.resource.name": f"{version.entity}/{version.project}/{version.name}",
        f"{LABEL}.version": version.version,
        f"{LABEL}.digest": version.digest,
        f"{LABEL}.type": version.type,
        f"{LABEL}.qualified_name": version.qualified_name,
    }
    related = [alias_resource(a) for a in version.aliases]
    related.append(
        {
            "prefect.resource.id": asset_uri(version.entity, version.project, version.name),
            "prefect.resource.role": "asset",
        }
    )
    emit_event(EVENT_VERSION_CREATED, resource=resource, related=related, payload=payload | _run_payload(run))


def _emit_alias_moved(run: Run | None, move: AliasMove) -> None:
    from prefect.events import emit_event

    entity, project, name = _split_collection(move.qualified_collection)
    resource = {
        "prefect.resource.id": collection_resource_id(entity, project, name),
        "prefect.resource.name": f"{entity}/{project}/{name}",
        f"{LABEL}.alias": move.alias,
        f"{LABEL}.version": move.version or "",
        f"{LABEL}.previous": move.previous or "",
        f"{LABEL}.digest": move.digest or "",
        f"{LABEL}.qualified_name": f"{entity}/{project}/{name}:{move.version}" if move.version else "",
    }
    payload = {
        "collection": f"{entity}/{project}/{name}",
        "alias": move.alias,
        "version": move.version,
        "previous": move.previous,
        "digest": move.digest,
    }
    emit_event(
        EVENT_ALIAS_MOVED, resource=resource, related=[alias_resource(move.alias)], payload=payload | _run_payload(run)
    )


# --------------------------------------------------------------------------- Prefect artifacts


def _create_markdown(
    markdown: str, description: str, key: str | None = None, meta: dict[str, str] | None = None
) -> None:
    """Create a markdown artifact attached to the current flow run / task run."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import ArtifactCreate
    from prefect.utilities.context import get_task_and_flow_run_ids

    task_run_id, flow_run_id = get_task_and_flow_run_ids()
    # The synchronous client works from sync and async tasks alike.
    with get_client(sync_client=True) as client:
        client.create_artifact(
            ArtifactCreate(
                key=key,
                type="markdown",
                description=description,
                data=markdown,
                metadata_=meta,
                task_run_id=task_run_id,
                flow_run_id=flow_run_id,
            )
        )


def publish_collection_card(run: Run | None, entity: str, project: str, name: str) -> None:
    """(Re)publish the keyed card of a collection: version table + lineage chart.

    Several hooks fire for one log (the version, then each alias move); a card identical to the
    one the current task run (or flow run) last published for the collection is skipped.
    """
    from . import cards

    collection = f"{entity}/{project}/{name}"
    every = _api_for(run).artifact_versions(None, collection)
    if not every:
        return
    shown = list(reversed(every))[:CARD_VERSIONS]
    newest = shown[0]
    markdown = cards.collection_markdown(
        collection,
        newest.type,
        shown,
        total=len(every),
        lineage=cards.chart_for(newest, LINEAGE_DEPTH),
        artifact_key=artifact_key,
    )
    key = artifact_key(entity, project, name)
    _publish_once(
        key,
        markdown,
        f"{collection}: {newest.version} ({cards.short_digest(newest.digest)}) of {len(every)} version(s)",
        key=key,
        meta={"collection": collection, "latest_version": newest.version, "latest_digest": newest.digest},
    )


def publish_inputs_card(version: ArtifactVersion) -> None:
    """Attach an inputs card to the consuming run: what it used and who produced it.

    A run that uses the same version again (a second ``with ap.init()`` block in the task) gets
    no second copy of the same card.
    """
    from . import cards

    _publish_once(
        f"inputs:{version.qualified_name}",
        cards.inputs_markdown(version, artifact_key(version.entity, version.project, version.name)),
        f"input artifact {version.qualified_name} ({cards.short_digest(version.digest)})",
        meta={"qualified_name": version.qualified_name, "digest": version.digest},
    )


_published: dict[tuple[str, str], str] = {}
_published_lock = threading.Lock()


def _publish_once(
    card: str, markdown: str, description: str, *, key: str | None = None, meta: dict[str, str] | None = None
) -> None:
    """Create the markdown artifact, unless the current task run (or flow run) last published
    exactly this ``markdown`` as ``card`` (a collection's key, or one version's inputs)."""
    from prefect.utilities.context import get_task_and_flow_run_ids

    task_run_id, flow_run_id = get_task_and_flow_run_ids()
    scope = (str(task_run_id or flow_run_id), card)
    fingerprint = hashlib.blake2b(markdown.encode(), digest_size=16).hexdigest()
    with _published_lock:
        if _published.get(scope) == fingerprint:
            return
    _create_markdown(markdown, description, key=key, meta=meta)
    with _published_lock:
        if len(_published) > 4096:
            _published.clear()
        _published[scope] = fingerprint


def _api_for(run: Run | None) -> Api:
    """An :class:`Api` on the same settings as ``run`` (the store the version lives in)."""
    from artifact_plugins.core.api import Api

    return Api(settings=run.settings if run is not None else None)


__all__: Sequence[str] = (
    "EVENT_ALIAS_MOVED",
    "EVENT_VERSION_CREATED",
    "alias_moved",
    "artifact_key",
    "asset_uri",
    "collection_resource_id",
    "guarded",
    "version_logged",
    "version_used",
)
