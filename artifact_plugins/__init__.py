"""artifact_plugins: versioned, content-addressed artifacts with automatic lineage.

Importing this package is cheap: the public names below are loaded on first use, and no
orchestrator, cloud SDK or database driver is imported until something needs it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "Artifact": "artifact_plugins.core.artifact",
    "ArtifactVersion": "artifact_plugins.core.version",
    "Entry": "artifact_plugins.core.version",
    "ManifestEntry": "artifact_plugins.core.manifest",
    "Manifest": "artifact_plugins.core.manifest",
    "Table": "artifact_plugins.core.table",
    "PartitionedTable": "artifact_plugins.core.table",
    "Run": "artifact_plugins.core.run",
    "init": "artifact_plugins.core.run",
    "log_artifact": "artifact_plugins.core.run",
    "use_artifact": "artifact_plugins.core.run",
    "current_run": "artifact_plugins.core.run",
    "Api": "artifact_plugins.core.api",
    "Settings": "artifact_plugins.core.config",
    "LineageGraph": "artifact_plugins.core.lineage",
    "RunContext": "artifact_plugins.core.run_context",
    "RunContextProvider": "artifact_plugins.core.run_context",
    "parse_ref": "artifact_plugins.core.naming",
    "Ref": "artifact_plugins.core.naming",
    "errors": "artifact_plugins.core.errors",
    "ArtifactPluginsError": "artifact_plugins.core.errors",
    "ArtifactNotFoundError": "artifact_plugins.core.errors",
    "AliasConflictError": "artifact_plugins.core.errors",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from .core import errors
    from .core.api import Api
    from .core.artifact import Artifact
    from .core.config import Settings
    from .core.errors import AliasConflictError, ArtifactNotFoundError, ArtifactPluginsError
    from .core.lineage import LineageGraph
    from .core.manifest import Manifest, ManifestEntry
    from .core.naming import Ref, parse_ref
    from .core.run import Run, current_run, init, log_artifact, use_artifact
    from .core.run_context import RunContext, RunContextProvider
    from .core.table import PartitionedTable, Table
    from .core.version import ArtifactVersion, Entry


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'artifact_plugins' has no attribute {name!r}")
    mod = importlib.import_module(module)
    value = mod if name == "errors" else getattr(mod, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
