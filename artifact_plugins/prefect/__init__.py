"""Prefect adapter: artifact tasks with automatic lineage, surfaced in the Prefect UI.

::

    from prefect import flow
    from artifact_plugins.prefect import log_artifact, use_artifact

    @flow
    def pipeline() -> None:
        raw = log_artifact("raw-data", "dataset", "data/raw.csv")
        data = use_artifact(raw)
        ...

The names below are loaded on first access: the run-context provider registered by this
package (``artifact_plugins.prefect.context``) must stay importable without importing Prefect.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .blocks import ArtifactStore
    from .cache import ArtifactDigests
    from .context import PrefectRunContextProvider
    from .refs import ArtifactPart, ArtifactRef
    from .tasks import finish_artifact, log_artifact, upsert_artifact, use_artifact

_EXPORTS = {
    "log_artifact": "tasks",
    "use_artifact": "tasks",
    "upsert_artifact": "tasks",
    "finish_artifact": "tasks",
    "ArtifactRef": "refs",
    "ArtifactPart": "refs",
    "ArtifactDigests": "cache",
    "ArtifactStore": "blocks",
    "PrefectRunContextProvider": "context",
}

__all__ = [
    "ArtifactDigests",
    "ArtifactPart",
    "ArtifactRef",
    "ArtifactStore",
    "PrefectRunContextProvider",
    "finish_artifact",
    "log_artifact",
    "upsert_artifact",
    "use_artifact",
]


def __getattr__(name: str) -> Any:
    """Import the public names lazily (PEP 562)."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """Module attributes including the lazily loaded public names."""
    return sorted(set(globals()) | set(_EXPORTS))
