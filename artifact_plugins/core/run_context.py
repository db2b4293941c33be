"""Run-context providers: how the core learns which orchestrator step it runs in.

The core never imports an orchestrator. Adapters register a :class:`RunContextProvider`
under the entry-point group ``artifact_plugins.run_context``; :func:`current_run_context`
asks each of them, in name order, and the first one that recognises the running code wins.
Providers must be cheap to import and must not import their orchestrator unless it is already
imported by the running process (if ``prefect`` is not in ``sys.modules`` we cannot be inside a
Prefect task run).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib.metadata import Distribution, EntryPoint, distributions
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from .config import Settings
    from .run import Run
    from .version import ArtifactVersion

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "artifact_plugins.run_context"


@dataclass(frozen=True)
class RunContext:
    """Identity of one orchestrator step execution, as a provider reports it.

    ``run_key`` is unique per step execution (a Prefect task run id, an Airflow task-instance
    try); every ``ap.init()`` made with the same key binds to the same registry run.
    """

    orchestrator: str
    run_key: str
    name: str
    job_type: str
    group: str | None = None
    group_name: str | None = None
    url: str | None = None
    group_url: str | None = None
    step: Mapping[str, Any] = field(default_factory=dict)
    default_distributed_id: str | None = None
    #: Identifies this step's part of a distributed artifact across retries (an upsert from a
    #: retried step replaces the part its earlier try left open).
    part_key: str | None = None


@dataclass(frozen=True)
class AliasMove:
    """An alias moved from ``previous`` (or nowhere) to ``version`` (or removed when ``None``)."""

    qualified_collection: str
    alias: str
    version: str | None
    previous: str | None
    digest: str | None
    settings: Settings | None = None


@runtime_checkable
class RunContextProvider(Protocol):
    """What an orchestrator adapter implements so the core binds runs to its steps.

    A provider may also define ``on_bound(run)``: :func:`artifact_plugins.init` calls it each
    time it binds ``run`` to the provider's step (an adapter uses it to learn how the step ends).
    """

    def current(self) -> RunContext | None:
        """The running step's identity, or ``None`` when not inside this orchestrator's step."""

    def on_logged(self, run: Run, version: ArtifactVersion, *, created: bool) -> None:
        """Called after ``version`` was committed (``created``) or deduplicated by ``run``."""

    def on_used(self, run: Run, version: ArtifactVersion) -> None:
        """Called after ``run`` recorded that it used ``version``."""

    def on_alias_moved(self, run: Run | None, move: AliasMove) -> None:
        """Called after an alias moved while this provider's step was running."""


_providers: list[RunContextProvider] | None = None


def provider_entry_points() -> list[EntryPoint]:
    """The entry points of :data:`ENTRY_POINT_GROUP`, sorted by name.

    What ``importlib.metadata.entry_points(group=...)`` finds, for less: that parses every
    installed distribution's ``entry_points.txt`` (a process with Prefect or Airflow installed
    holds over a hundred), this only those whose text names the group. As there, where a
    distribution is installed twice on ``sys.path``, the first copy is the one taken.
    """
    named = [dist for dist in distributions() if ENTRY_POINT_GROUP in (dist.read_text("entry_points.txt") or "")]
    if len(named) > 1:  # reading a name parses the distribution's metadata: only when two may clash
        firsts: dict[str, Distribution] = {}
        for dist in named:
            firsts.setdefault(re.sub(r"[-_.]+", "-", dist.name or "").lower(), dist)
        named = list(firsts.values())
    found = [ep for dist in named for ep in dist.entry_points.select(group=ENTRY_POINT_GROUP)]
    return sorted(found, key=lambda ep: ep.name)


def providers() -> list[RunContextProvider]:
    """The installed providers, loaded once; a provider that fails to load is skipped with a warning."""
    global _providers
    if _providers is None:
        loaded: list[RunContextProvider] = []
        for ep in provider_entry_points():
            try:
                loaded.append(ep.load()())
            except Exception as exc:  # an adapter whose orchestrator is not installed
                logger.debug("run-context provider %s unavailable: %s", ep.name, exc)
        _providers = loaded
    return _providers


def register_provider(provider: RunContextProvider) -> None:
    """Add a provider at run time (tests, or adapters installed without entry points)."""
    providers().append(provider)


def current_run_context() -> tuple[RunContextProvider, RunContext] | None:
    """The first provider that recognises the running code, with its context."""
    for provider in providers():
        try:
            ctx = provider.current()
        except Exception as exc:
            logger.warning("run-context provider %r failed: %s", provider, exc)
            continue
        if ctx is not None:
            return provider, ctx
    return None
