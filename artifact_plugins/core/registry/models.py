"""SQLAlchemy 2 models of the registry. The schema itself is owned by Alembic migrations."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    """Declarative base of the registry tables."""


class Project(Base):
    """An entity/project namespace."""

    __tablename__ = "projects"
    __table_args__ = (UniqueConstraint("entity", "name", name="uq_projects_entity_name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    entity: Mapped[str] = mapped_column(String(128))
    name: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Collection(Base):
    """A named sequence of versions of one artifact type within a project."""

    __tablename__ = "collections"
    __table_args__ = (UniqueConstraint("project_id", "name", name="uq_collections_project_name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    name: Mapped[str] = mapped_column(String(128))
    type: Mapped[str] = mapped_column(String(128), index=True)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    next_index: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Version(Base):
    """A committed version: index, content digest, manifest location and user metadata."""

    __tablename__ = "versions"
    __table_args__ = (
        UniqueConstraint("collection_id", "index", name="uq_versions_collection_index"),
        Index("ix_versions_collection_digest", "collection_id", "digest"),
        Index("ix_versions_digest", "digest"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id"))
    index: Mapped[int] = mapped_column(Integer)
    digest: Mapped[str] = mapped_column(String(71))
    manifest_key: Mapped[str] = mapped_column(String(256))
    size: Mapped[int] = mapped_column(BigInteger)
    file_count: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), default="committed")
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ttl_seconds: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_by: Mapped[str | None] = mapped_column(ForeignKey("runs.id"), nullable=True)


class Alias(Base):
    """Where an alias points now; unique per collection."""

    __tablename__ = "aliases"
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id"), primary_key=True)
    alias: Mapped[str] = mapped_column(String(128), primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("versions.id"), index=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AliasEvent(Base):
    """Every alias move, kept forever: answers 'what did production point at on 1 May'."""

    __tablename__ = "alias_events"
    __table_args__ = (Index("ix_alias_events_lookup", "collection_id", "alias", "at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id"))
    alias: Mapped[str] = mapped_column(String(128))
    version_id: Mapped[int | None] = mapped_column(ForeignKey("versions.id", name="fk_parts_version_id"), nullable=True)
    previous_version_id: Mapped[int | None] = mapped_column(ForeignKey("versions.id"), nullable=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    run_id: Mapped[str | None] = mapped_column(ForeignKey("runs.id"), nullable=True)


class Tag(Base):
    """A free-form label on a version."""

    __tablename__ = "tags"
    version_id: Mapped[int] = mapped_column(ForeignKey("versions.id"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(128), primary_key=True)


class Run(Base):
    """One step execution (a Prefect task run, an Airflow task-instance try, a script's init())."""

    __tablename__ = "runs"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    run_key: Mapped[str] = mapped_column(String(512), unique=True)
    orchestrator: Mapped[str] = mapped_column(String(32), index=True)
    job_type: Mapped[str] = mapped_column(String(256), index=True)
    name: Mapped[str] = mapped_column(String(512))
    group: Mapped[str | None] = mapped_column("group_key", String(512), nullable=True, index=True)
    group_name: Mapped[str | None] = mapped_column(String(512), nullable=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    url: Mapped[str | None] = mapped_column(Text, nullable=True)
    group_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    step: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    #: The process holding the run open and how long it is known alive (``core/liveness.py``).
    owner: Mapped[str | None] = mapped_column(String(512), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class Edge(Base):
    """A lineage edge: ``used`` (version -> run) or ``logged`` (run -> version)."""

    __tablename__ = "edges"
    __table_args__ = (Index("ix_edges_version", "version_id", "kind"),)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id"), primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("versions.id"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8), primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Part(Base):
    """A part upserted by one of several parallel writers, merged at finish."""

    __tablename__ = "parts"
    __table_args__ = (
        UniqueConstraint("collection_id", "distributed_id", "digest", name="uq_parts_content"),
        Index("ix_parts_group", "collection_id", "distributed_id"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id"))
    distributed_id: Mapped[str] = mapped_column(String(512))
    digest: Mapped[str] = mapped_column(String(71))
    manifest_key: Mapped[str] = mapped_column(String(256))
    run_id: Mapped[str | None] = mapped_column(ForeignKey("runs.id"), nullable=True)
    state: Mapped[str] = mapped_column(String(16), default="open")
    part_key: Mapped[str | None] = mapped_column(String(512), nullable=True)
    version_id: Mapped[int | None] = mapped_column(ForeignKey("versions.id", name="fk_parts_version_id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class RetentionPolicy(Base):
    """How many / how old versions of a collection to keep (aliased and protected versions always stay)."""

    __tablename__ = "retention_policies"
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id"), primary_key=True)
    keep_last: Mapped[int | None] = mapped_column(Integer, nullable=True)
    keep_within_seconds: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ProtectedAlias(Base):
    """An alias (e.g. ``production``) that moves only with ``expected=`` or ``force=True``."""

    __tablename__ = "protected_aliases"
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), primary_key=True)
    alias: Mapped[str] = mapped_column(String(128), primary_key=True)


class StoreLock(Base):
    """A turn at the store: commits (``kind="commit"``) share it, a deleting garbage collection
    (``kind="gc"``) has it alone. Turns are taken in ``id`` order; a turn whose process died or
    whose lease ran out is over; a finished turn's row is deleted. So a collection never deletes
    a blob that a commit in flight found present, and neither side waits forever for the other."""

    __tablename__ = "store_locks"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    owner: Mapped[str] = mapped_column(String(512))
    run_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    lease_until: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class StoreGeneration(Base):
    """One row: how many deleting garbage collections have gone ahead at the store (``value``).

    A collection adds one in the transaction in which it goes ahead, before it deletes anything.
    A draft that wrote blobs while this was ``n`` and no collection held a turn may count them
    as present when it commits, if the count is still ``n`` in its turn: no collection deleted
    anything between (see ``Registry.store_generation``)."""

    __tablename__ = "store_generation"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    value: Mapped[int] = mapped_column(Integer)
