"""Task-instance listener: records the outcome of a try on its artifact run.

Artifact calls inside a task (``ap.init()``, ``ap.log_artifact()``...) bind to a run of the
task-instance try. Airflow calls this listener on the worker when the try succeeds, skips
itself, fails or is marked for retry, and the run takes that outcome — a try that logged and then
failed shows as failed, never as still running or finished. Registered by
:class:`~artifact_plugins.airflow.plugin.ArtifactPlugin`.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from pluggy import HookimplMarker

from .context import run_key_for

hookimpl = HookimplMarker("airflow")
logger = logging.getLogger(__name__)


class ArtifactRunListener:
    """Finishes the open artifact run of a task-instance try with the try's outcome."""

    @hookimpl
    def on_task_instance_success(self, previous_state: Any, task_instance: Any) -> None:
        """The try succeeded: its open run (if any) is finished."""
        self._close(task_instance, "finished")

    @hookimpl
    def on_task_instance_skipped(self, previous_state: Any, task_instance: Any) -> None:
        """The try skipped itself (``AirflowSkipException``): it ended without error, so its run is
        finished, even if the skip left a ``with ap.init()`` block by raising (which marked it failed)."""
        self._close(task_instance, "finished")

    @hookimpl
    def on_task_instance_failed(self, previous_state: Any, task_instance: Any, error: Any) -> None:
        """The try failed (or will be retried): its open run (if any) is marked failed."""
        self._close(task_instance, "failed")

    @staticmethod
    def _close(task_instance: Any, status: str) -> None:
        if "artifact_plugins.core.run" not in sys.modules:  # the try never touched an artifact
            return
        try:
            from artifact_plugins.core.run import record_step_outcome

            record_step_outcome(run_key_for(task_instance), status)
        except Exception as exc:  # a listener must never break the task runner
            logger.warning("could not finish the artifact run of %s: %s", task_instance, exc)
