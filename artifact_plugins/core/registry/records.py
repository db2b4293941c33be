"""Plain, immutable records the registry returns (no session attached)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NotRequired, TypedDict


def utc(dt: datetime | None) -> datetime | None:
    """Make a datetime read back from any backend timezone-aware (UTC)."""
    if dt is None:
        return None
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def as_utc(dt: datetime) -> datetime:
    """Like :func:`utc` for values that are never ``None``."""
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def now() -> datetime:
    """The current time, UTC."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class VersionRecord:
    """One committed (or deleted) version with its collection's identity."""

    id: int
    entity: str
    project: str
    name: str
    type: str
    index: int
    digest: str
    manifest_key: str
    size: int
    file_count: int
    state: str
    description: str | None
    metadata: dict[str, Any]
    created_at: datetime
    ttl_seconds: int | None
    created_by: str | None
    collection_id: int
    aliases: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()

    @property
    def version(self) -> str:
        """``v<index>``."""
        return f"v{self.index}"

    @property
    def collection(self) -> str:
        """``entity/project/name``."""
        return f"{self.entity}/{self.project}/{self.name}"


@dataclass(frozen=True)
class RunRecord:
    """One step execution as stored."""

    id: str
    run_key: str
    orchestrator: str
    job_type: str
    name: str
    group: str | None
    group_name: str | None
    entity: str
    project: str
    url: str | None
    group_url: str | None
    step: dict[str, Any]
    #: ``running``, ``finished``, ``failed``, or ``crashed``: a run left ``running`` by a process
    #: that is gone (``core/liveness.py``).
    status: str
    started_at: datetime
    finished_at: datetime | None


@dataclass(frozen=True)
class CollectionRecord:
    """A collection and a summary of its versions."""

    id: int
    entity: str
    project: str
    name: str
    type: str
    description: str | None
    created_at: datetime
    version_count: int = 0
    latest_index: int | None = None


@dataclass(frozen=True)
class AliasEventRecord:
    """One alias move: ``version`` is ``None`` when the alias was removed."""

    alias: str
    version: str | None
    previous: str | None
    at: datetime
    run_id: str | None


@dataclass(frozen=True)
class EdgeRecord:
    """A lineage edge between a run and a version (``kind`` is ``used`` or ``logged``)."""

    run_id: str
    version_id: int
    kind: str
    at: datetime


class CommitFields(TypedDict):
    """What step (3) of the commit protocol records for a version (see ``Registry.commit_version``)."""

    entity: str
    project: str
    name: str
    type: str
    digest: str
    manifest_key: str
    size: int
    file_count: int
    description: str | None
    metadata: dict[str, Any]
    aliases: Iterable[str]
    tags: Iterable[str]
    run_id: str | None
    ttl_seconds: NotRequired[int | None]


@dataclass(frozen=True)
class StoreFence:
    """What keeps the blobs a commit found present in the store there until its transaction
    records it (:meth:`~.registry.Registry.store_view`): either a store ``turn`` it holds
    (no deleting collection goes ahead while it does), or the store's ``generation`` it read
    while no collection was deleting (the recording transaction checks it is unchanged).

    ``held``: versions the recording transaction must also find committed (a generation taken
    from an earlier commit is only known to be this registry's while they are).
    """

    turn: int | None = None
    generation: int | None = None
    held: frozenset[str] = frozenset()


@dataclass(frozen=True)
class CommitResult:
    """What a commit did: the version, whether it is new, and which aliases moved."""

    version: VersionRecord
    created: bool
    moves: list[tuple[str, int | None, int | None]] = field(default_factory=list)
