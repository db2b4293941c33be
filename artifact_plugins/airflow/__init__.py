"""Airflow adapter: artifact operators with automatic lineage, Assets and an Artifacts view.

>>> from artifact_plugins.airflow import LogArtifactOperator, UseArtifactOperator, artifact_asset
>>> log = LogArtifactOperator(task_id="log", name="bike-dataset", type="dataset", paths=["data/"],
...                           outlets=[artifact_asset("bike-dataset")])          # doctest: +SKIP

Inside any ``@task``, ``artifact_plugins.init()`` and ``artifact_plugins.use_artifact()`` bind to the
running task instance on their own (see :mod:`artifact_plugins.airflow.context`).

Names are loaded lazily so that the core's run-context provider
(:mod:`artifact_plugins.airflow.context`) can be imported without importing Airflow.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .assets import artifact_asset
    from .context import AirflowRunContextProvider
    from .links import ArtifactLink
    from .operators import FinishArtifactOperator, LogArtifactOperator, UseArtifactOperator

_EXPORTS = {
    "AirflowRunContextProvider": ".context",
    "ArtifactLink": ".links",
    "FinishArtifactOperator": ".operators",
    "LogArtifactOperator": ".operators",
    "UseArtifactOperator": ".operators",
    "artifact_asset": ".assets",
}

__all__ = [
    "AirflowRunContextProvider",
    "ArtifactLink",
    "FinishArtifactOperator",
    "LogArtifactOperator",
    "UseArtifactOperator",
    "artifact_asset",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
