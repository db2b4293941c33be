"""Task-instance listener: closes the artifact run a task left open when the try ends.

``ap.log_artifact()`` / ``ap.use_artifact()`` (or ``ap.init()`` without ``with``) inside a task open
a run bound to the task-instance try and leave it open. Airflow calls this listener on the worker
when the try succeeds, fails or is marked for retry, and the run is finished with the matching
status, so a failed try is never shown as still running. Registered by
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
    def on_task_instance_failed(self, previous_state: Any, task_instance: Any, error: Any) -> None:
        """The try failed (or will be retried): its open run (if any) is marked failed."""
        self._close(task_instance, "failed")

    @staticmethod
    def _close(task_instance: Any, status: str) -> None:
        if "artifact_plugins.core.run" not in sys.modules:  # the try never touched an artifact
            return
        try:
            from artifact_plugins.core.run import current_run

            run = current_run()
            if run is not None and run.context.run_key == run_key_for(task_instance):
                run.finish(status)
        except Exception as exc:  # a listener must never break the task runner
            logger.warning("could not finish the artifact run of %s: %s", task_instance, exc)
