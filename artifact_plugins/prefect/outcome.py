"""Records the outcome of a Prefect task run (or flow run) on the artifact run bound to it.

A run bound to a task closes when its ``with ap.init()`` block (or a module-level
``ap.log_artifact``) ends, but the task can still fail afterwards, or succeed on a retry after
an attempt that failed inside the block. What the Prefect UI shows as the task's final state is
what the registry should show too, so the first bind to a task (or flow) adds two state hooks
to it: Prefect calls them when the run ends, and they set the bound run's status.
"""

from __future__ import annotations

from typing import Any

from artifact_plugins.core.run import record_step_outcome


def record_failed_run(_owner: Any, prefect_run: Any, _state: Any) -> None:
    """Prefect ``on_failure`` hook: the artifact run bound to ``prefect_run`` is marked failed."""
    record_step_outcome(str(prefect_run.id), "failed")


def record_finished_run(_owner: Any, prefect_run: Any, _state: Any) -> None:
    """Prefect ``on_completion`` hook: the artifact run bound to ``prefect_run`` is finished."""
    record_step_outcome(str(prefect_run.id), "finished")


def watch_outcome(owner: Any) -> None:
    """Add the two hooks to a Prefect ``Task`` or ``Flow`` once (Prefect reads them when the run ends)."""
    for hooks, hook in (
        (owner.on_failure_hooks, record_failed_run),
        (owner.on_completion_hooks, record_finished_run),
    ):
        if hook not in hooks:
            hooks.append(hook)
