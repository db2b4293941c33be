"""Binds artifact runs to Airflow task-instance tries.

This module is loaded by the core through the ``artifact_plugins.run_context`` entry point in
every process that logs or uses artifacts, so it imports nothing from Airflow at module level:
when ``airflow.sdk`` has not been imported by the running process we cannot be inside a task.

A registry run is one task-instance *try*: the run key carries dag_id, run_id, task_id, map_index
and try_number, so a retry is a new run while every ``ap.init()`` made inside the same try shares
one run row. The group is the DAG run, so a task that uses an artifact and a later task that logs
one are connected in the lineage graph.

The hooks turn registry events into Airflow side effects: a logged version becomes an asset event
on ``artifact_asset(name)`` when the task declares that asset in its outlets.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import uuid
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from artifact_plugins.core.run_context import AliasMove, RunContext

if TYPE_CHECKING:
    from artifact_plugins.core.run import Run
    from artifact_plugins.core.version import ArtifactVersion

logger = logging.getLogger(__name__)

ORCHESTRATOR = "airflow"
DEFAULT_BASE_URL = "http://localhost:8080/"

# The task context an operator is executing with. Operators set it around their work so that the
# provider also recognises a hand-built context (unit tests calling ``execute()`` directly);
# otherwise the provider asks Airflow for the current task context.
_explicit_context: ContextVar[Mapping[str, Any] | None] = ContextVar("artifact_plugins_airflow_ctx", default=None)


@contextlib.contextmanager
def bound_context(context: Mapping[str, Any]) -> Iterator[None]:
    """Make ``context`` the task context seen by the provider for the duration of the block."""
    token = _explicit_context.set(context)
    try:
        yield
    finally:
        _explicit_context.reset(token)


def current_task_context() -> Mapping[str, Any] | None:
    """The running task's Airflow context, or ``None`` outside a task instance."""
    explicit = _explicit_context.get()
    if explicit is not None:
        return explicit
    if "airflow.sdk" not in sys.modules:
        return None
    try:
        from airflow.sdk import get_current_context

        return get_current_context()
    except Exception:  # RuntimeError outside a task; anything else means "not in a task" too
        return None


def api_base_url() -> str:
    """The Airflow UI/API base URL from ``[api] base_url``, without a trailing slash."""
    try:
        from airflow.sdk.configuration import conf
    except ImportError:  # pragma: no cover - the SDK is always installed with Airflow 3
        return DEFAULT_BASE_URL.rstrip("/")
    try:
        base = conf.get("api", "base_url", fallback=DEFAULT_BASE_URL)
    except Exception:
        base = DEFAULT_BASE_URL
    return (base or DEFAULT_BASE_URL).rstrip("/")


def dag_run_url(dag_id: str, run_id: str, base_url: str | None = None) -> str:
    """Deep link to a DAG run page of the Airflow UI."""
    base = api_base_url() if base_url is None else base_url.rstrip("/")
    return f"{base}/dags/{quote(dag_id)}/runs/{quote(run_id)}"


def task_instance_url(dag_id: str, run_id: str, task_id: str, map_index: int = -1, base_url: str | None = None) -> str:
    """Deep link to a task-instance page; mapped instances get the ``/mapped/<index>`` suffix."""
    mapped = f"/mapped/{map_index}" if map_index is not None and map_index >= 0 else ""
    return f"{dag_run_url(dag_id, run_id, base_url)}/tasks/{quote(task_id)}{mapped}"


def _ti_identity(context: Mapping[str, Any]) -> dict[str, Any]:
    ti = context.get("ti") or context.get("task_instance")
    if ti is None:
        raise LookupError("Airflow context has no task instance")
    map_index = getattr(ti, "map_index", -1)
    try_number = getattr(ti, "try_number", None)
    return {
        "dag_id": str(ti.dag_id),
        "run_id": str(ti.run_id),
        "task_id": str(ti.task_id),
        "map_index": -1 if map_index is None else int(map_index),
        "try_number": 1 if try_number is None else int(try_number),
    }


def _run_key(step: Mapping[str, Any]) -> str:
    return f"airflow:{step['dag_id']}/{step['run_id']}/{step['task_id']}/{step['map_index']}/{step['try_number']}"


def run_key_for(task_instance: Any) -> str:
    """The registry run key of a task-instance try (what :func:`run_context_from` binds runs to)."""
    return _run_key(_ti_identity({"ti": task_instance}))


def run_context_from(context: Mapping[str, Any], base_url: str | None = None) -> RunContext:
    """Build the core's :class:`RunContext` for the task-instance try described by ``context``."""
    step = _ti_identity(context)
    dag_id, run_id, task_id = step["dag_id"], step["run_id"], step["task_id"]
    map_index = step["map_index"]
    base = api_base_url() if base_url is None else base_url.rstrip("/")
    group = f"{dag_id}/{run_id}"
    name = task_id if map_index < 0 else f"{task_id}[{map_index}]"
    return RunContext(
        orchestrator=ORCHESTRATOR,
        run_key=_run_key(step),
        name=name,
        job_type=task_id,  # the step kind (DESIGN §6); the DAG run is the group
        group=group,
        group_name=f"{dag_id} / {run_id}",
        url=task_instance_url(dag_id, run_id, task_id, map_index, base),
        group_url=dag_run_url(dag_id, run_id, base),
        step=step,
        default_distributed_id=group,
        part_key=f"{group}/{task_id}/{map_index}",
    )


def event_extra(
    version: ArtifactVersion,
    context: Mapping[str, Any] | None,
    *,
    created: bool | None = None,
    inputs: list[str] | None = None,
) -> dict[str, Any]:
    """The JSON ``extra`` of the asset event announcing ``version``.

    Key names deliberately avoid words (token, password, secret) that Airflow's API masks.
    """
    extra: dict[str, Any] = {
        "artifact": version.name,
        "version": version.version,
        "version_index": version.version_index,
        "digest": version.digest,
        "qualified_name": version.qualified_name,
        "type": version.type,
        "aliases": list(version.aliases),
        "entity": version.entity,
        "project": version.project,
        "size": version.size,
        "file_count": version.file_count,
    }
    if created is not None:
        extra["created"] = created
    if inputs:
        extra["inputs"] = list(inputs)
    ti = (context or {}).get("ti")
    if ti is not None:
        for key in ("try_number", "map_index"):
            value = getattr(ti, key, None)
            if isinstance(value, int):
                extra[key] = value
        for key, attr in (("ti_id", "id"), ("dag_version_id", "dag_version_id")):
            value = getattr(ti, attr, None)
            if isinstance(value, str | uuid.UUID):
                extra[key] = str(value)
    return extra


def _declared_outlet(context: Mapping[str, Any], version: ArtifactVersion) -> Any | None:
    """The outlet asset of the running task that stands for ``version``'s collection, if declared."""
    from .assets import asset_uri, is_artifact_asset

    task = context.get("task")
    if task is None:
        ti = context.get("ti")
        task = getattr(ti, "task", None)
    outlets = list(getattr(task, "outlets", None) or [])
    wanted = asset_uri(version.name, project=version.project, entity=version.entity)
    for outlet in outlets:
        if getattr(outlet, "uri", None) == wanted:
            return outlet
    if any(is_artifact_asset(o) for o in outlets):
        logger.warning(
            "artifact %s was logged but no outlet of this task is artifact_asset(%r, project=%r, entity=%r); "
            "no asset event emitted for it",
            version.qualified_name,
            version.name,
            version.project,
            version.entity,
        )
    return None


class AirflowRunContextProvider:
    """The :class:`~artifact_plugins.core.run_context.RunContextProvider` for Airflow task instances."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._inputs: dict[str, list[str]] = {}

    def current(self) -> RunContext | None:
        """The running task-instance try as a :class:`RunContext`, or ``None`` outside Airflow tasks."""
        context = current_task_context()
        if context is None:
            return None
        try:
            return run_context_from(context)
        except (LookupError, AttributeError, TypeError, ValueError) as exc:
            logger.debug("Airflow context without a usable task instance: %s", exc)
            return None

    def _emit(self, version: ArtifactVersion, *, created: bool | None, inputs: list[str]) -> None:
        context = current_task_context()
        if context is None:
            return
        outlet = _declared_outlet(context, version)
        events = context.get("outlet_events")
        if outlet is None or events is None:
            return
        events[outlet].extra = event_extra(version, context, created=created, inputs=inputs)

    def on_logged(self, run: Run, version: ArtifactVersion, *, created: bool) -> None:
        """Attach ``version`` to the task's asset event for its artifact asset (when declared)."""
        try:
            with self._lock:
                inputs = list(self._inputs.get(str(run.id), []))
            self._emit(version, created=created, inputs=inputs)
        except Exception as exc:
            logger.warning("could not emit the Airflow asset event for %s: %s", version.qualified_name, exc)

    def on_used(self, run: Run, version: ArtifactVersion) -> None:
        """Remember ``version`` as an input of this try; later asset events list it under ``inputs``."""
        try:
            with self._lock:
                used = self._inputs.setdefault(str(run.id), [])
                if version.qualified_name not in used:
                    used.append(version.qualified_name)
                if len(self._inputs) > 1024:  # long-lived workers: forget the oldest tries
                    self._inputs.pop(next(iter(self._inputs)))
        except Exception as exc:
            logger.warning("could not record the use of %s: %s", version.qualified_name, exc)

    def on_alias_moved(self, run: Run | None, move: AliasMove) -> None:
        """Keep the ``aliases`` of an already prepared asset event in step with an alias move."""
        try:
            context = current_task_context()
            if context is None or context.get("outlet_events") is None:
                return
            events = context["outlet_events"]
            for key in list(events):
                extra = events[key].extra
                collection = str(extra.get("qualified_name", "")).rsplit(":", 1)[0] if extra else None
                if collection != move.qualified_collection:
                    continue
                aliases = [a for a in extra.get("aliases", []) if a != move.alias]
                if move.version is not None and extra.get("version") == move.version:
                    aliases.append(move.alias)
                extra["aliases"] = aliases
        except Exception as exc:
            logger.warning("could not update the asset event after moving alias %s: %s", move.alias, exc)
