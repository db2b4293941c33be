"""The Prefect run-context provider: binds artifact runs to Prefect task runs and flow runs.

Registered through the ``artifact_plugins.run_context`` entry point. Importing this module is
cheap and never imports Prefect: if ``prefect`` is not in ``sys.modules`` the running code cannot
be inside a Prefect run, so :meth:`PrefectRunContextProvider.current` returns ``None`` at once.
The hooks hand off to :mod:`artifact_plugins.prefect.surfacing`, which does the Prefect-side
effects and never lets a failure reach the user's task.
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Any

from artifact_plugins.core.run_context import AliasMove, RunContext

if TYPE_CHECKING:
    from artifact_plugins.core.run import Run
    from artifact_plugins.core.version import ArtifactVersion

logger = logging.getLogger(__name__)

ORCHESTRATOR = "prefect"

# Names of this adapter's own tasks: their task name says nothing about the user's step, so a
# run made by one of them takes its job_type from the flow instead.
ADAPTER_TASK_NAMES = frozenset({"log-artifact", "use-artifact", "upsert-artifact", "finish-artifact"})


def ui_base_url() -> str | None:
    """The Prefect UI root (``PREFECT_UI_URL``, or derived from the API URL), without a trailing slash."""
    from prefect.settings import get_current_settings

    url = get_current_settings().ui_url
    return str(url).rstrip("/") if url else None


def task_run_url(task_run_id: object) -> str | None:
    """Deep link to a task run page, or ``None`` when no UI URL is known."""
    base = ui_base_url()
    return f"{base}/runs/task-run/{task_run_id}" if base else None


def flow_run_url(flow_run_id: object) -> str | None:
    """Deep link to a flow run page (the current ``/runs/flow-run/<id>`` form), or ``None``."""
    base = ui_base_url()
    return f"{base}/runs/flow-run/{flow_run_id}" if base else None


def _flow_context() -> Any:
    from prefect.context import FlowRunContext

    ctx = FlowRunContext.get()
    return ctx if ctx is not None and ctx.flow_run is not None else None


def _task_context() -> Any:
    from prefect.context import TaskRunContext

    return TaskRunContext.get()


def in_prefect_run() -> bool:
    """Whether the calling code runs inside a Prefect flow run or task run (never imports Prefect)."""
    if "prefect" not in sys.modules:
        return False
    return _task_context() is not None or _flow_context() is not None


class PrefectRunContextProvider:
    """Reports the running Prefect task run (or flow run) as an artifact run context.

    * ``run_key``: the task run id; code running at flow level (no task) uses the flow run id.
    * ``group``: the flow run id, so a use task and a log task of one flow run connect.
    * ``job_type``: the user task's name; the flow name for this adapter's own tasks and for
      flow-level code (an explicit ``job_type`` given to ``ap.init`` still wins).
    * ``url``/``group_url``: task run and flow run pages, when a UI URL is configured.
    * ``default_distributed_id``: the flow run id, so mapped writers share one by default.
    """

    def current(self) -> RunContext | None:
        """The running task run's (or flow run's) identity, or ``None`` outside Prefect."""
        if "prefect" not in sys.modules:
            return None
        task_ctx = _task_context()
        flow_ctx = _flow_context()
        if task_ctx is not None:
            return self._task_run_context(task_ctx, flow_ctx)
        if flow_ctx is not None:
            return self._flow_run_context(flow_ctx)
        return None

    @staticmethod
    def _task_run_context(task_ctx: Any, flow_ctx: Any) -> RunContext:
        task_run = task_ctx.task_run
        task_name = task_ctx.task.name
        flow_run = flow_ctx.flow_run if flow_ctx is not None else None
        flow_name = flow_ctx.flow.name if flow_ctx is not None else None
        flow_run_id = str(task_run.flow_run_id) if task_run.flow_run_id else None
        job_type = flow_name if task_name in ADAPTER_TASK_NAMES and flow_name else task_name
        step: dict[str, Any] = {
            "flow_run_id": flow_run_id,
            "task_run_id": str(task_run.id),
            "task_name": task_name,
            "flow_name": flow_name,
            "run_count": task_run.run_count,
            "task_run_name": task_run.name,
            "flow_run_name": flow_run.name if flow_run is not None else None,
            "tags": sorted(task_run.tags or ()),
        }
        return RunContext(
            orchestrator=ORCHESTRATOR,
            run_key=str(task_run.id),
            name=task_run.name,
            job_type=job_type,
            group=flow_run_id,
            group_name=f"{flow_name} / {flow_run.name}" if flow_run is not None else None,
            url=task_run_url(task_run.id),
            group_url=flow_run_url(flow_run_id) if flow_run_id else None,
            step=step,
            default_distributed_id=flow_run_id or str(task_run.id),
            part_key=f"{flow_run_id}/{task_name}/{task_run.dynamic_key}",
        )

    @staticmethod
    def _flow_run_context(flow_ctx: Any) -> RunContext:
        flow_run = flow_ctx.flow_run
        flow_run_id = str(flow_run.id)
        step: dict[str, Any] = {
            "flow_run_id": flow_run_id,
            "task_run_id": None,
            "task_name": None,
            "flow_name": flow_ctx.flow.name,
            "run_count": flow_run.run_count,
            "flow_run_name": flow_run.name,
            "tags": sorted(flow_run.tags or ()),
        }
        url = flow_run_url(flow_run_id)
        return RunContext(
            orchestrator=ORCHESTRATOR,
            run_key=flow_run_id,
            name=flow_run.name,
            job_type=flow_ctx.flow.name,
            group=flow_run_id,
            group_name=f"{flow_ctx.flow.name} / {flow_run.name}",
            url=url,
            group_url=url,
            step=step,
            default_distributed_id=flow_run_id,
        )

    def on_bound(self, run: Run) -> None:
        """Have Prefect report the task run's (or flow run's) final state to ``run`` when it ends."""
        from .outcome import watch_outcome

        task_ctx = _task_context()
        if task_ctx is not None:
            watch_outcome(task_ctx.task)
        elif (flow_ctx := _flow_context()) is not None:
            watch_outcome(flow_ctx.flow)

    def on_logged(self, run: Run, version: ArtifactVersion, *, created: bool) -> None:
        """Surface a committed version in Prefect (card, asset event, ``version.created`` event)."""
        if in_prefect_run():
            from . import surfacing

            surfacing.guarded(surfacing.version_logged, run, version, created=created)

    def on_used(self, run: Run, version: ArtifactVersion) -> None:
        """Surface a use in Prefect (inputs card, asset reference, refreshed collection card)."""
        if in_prefect_run():
            from . import surfacing

            surfacing.guarded(surfacing.version_used, run, version)

    def on_alias_moved(self, run: Run | None, move: AliasMove) -> None:
        """Emit ``artifact_plugins.alias.moved`` for automations."""
        if in_prefect_run():
            from . import surfacing

            surfacing.guarded(surfacing.alias_moved, run, move)
