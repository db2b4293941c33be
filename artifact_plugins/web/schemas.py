"""Response models of the JSON API: they document the endpoints (``/api/openapi.json``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class TypeCount(BaseModel):
    """Collections and versions of one artifact type in a project."""

    type: str
    collection_count: int
    version_count: int


class Project(BaseModel):
    """A project and what it holds."""

    entity: str
    project: str
    collection_count: int
    version_count: int
    types: list[TypeCount]


class Collection(BaseModel):
    """A named sequence of versions of one artifact type."""

    entity: str
    project: str
    name: str
    type: str
    description: str | None
    version_count: int
    latest_version: str | None = Field(description="``v<N>`` of the newest committed version")
    created_at: str | None


class VersionSummary(BaseModel):
    """A version as listed (no metadata)."""

    qualified_name: str = Field(description="``entity/project/name:vN``")
    entity: str
    project: str
    name: str
    type: str
    version: str
    version_index: int
    digest: str = Field(description="content digest ``blake3:<hex>``")
    size: int
    file_count: int
    aliases: list[str]
    tags: list[str]
    state: str
    description: str | None
    created_at: str | None
    created_by: str | None = Field(description="id of the run that first committed it")
    page: str = Field(description="path of the version page, relative to the app root")


class RunSummary(BaseModel):
    """One step execution: a Prefect task run, an Airflow task-instance try or a script's ``init()``."""

    id: str
    name: str
    job_type: str
    orchestrator: str
    group: str | None = Field(description="the Prefect flow run / Airflow DAG run it belongs to")
    entity: str
    project: str
    status: str
    url: str | None = Field(description="deep link into the orchestrator UI (http(s) only)")
    group_url: str | None = Field(description="deep link to the flow run / DAG run")
    step: dict[str, Any]
    started_at: str | None
    finished_at: str | None


class CollectionDetail(Collection):
    """A collection with its current aliases and one page of versions, newest first."""

    aliases: dict[str, str] = Field(description="alias -> version it points at")
    offset: int
    versions: list[VersionSummary]
    runs: dict[str, RunSummary] = Field(description="the runs that logged the listed versions, by id")


class RunWithArtifacts(RunSummary):
    """A run with the versions it logged and used."""

    logged: list[VersionSummary]
    used: list[VersionSummary]


class RunDetail(RunWithArtifacts):
    """A run, its artifacts, and the other runs of its group."""

    group_runs: list[RunSummary]


class AliasEvent(BaseModel):
    """One alias move touching a version (``version`` is ``None`` when the alias was removed)."""

    alias: str
    version: str | None
    previous: str | None
    at: str | None
    run_id: str | None


class VersionDetail(VersionSummary):
    """A version with metadata, description, alias history and producing/consuming runs."""

    metadata: dict[str, Any]
    ttl_seconds: int | None
    manifest_key: str
    collection: Collection | None
    logged_by: RunSummary | None = Field(description="the run that first committed it")
    logged_by_runs: list[RunSummary] = Field(description="every run that logged this content")
    used_by: list[RunSummary]
    alias_history: list[AliasEvent] = Field(description="moves to or away from this version, newest first")


class DirEntry(BaseModel):
    """A sub-directory of a manifest listing."""

    name: str
    path: str
    file_count: int
    size: int


class FileEntry(BaseModel):
    """A file of a manifest listing."""

    name: str
    path: str
    size: int
    digest: str
    ref: str | None = Field(description="URI of a reference entry (its bytes are not in the store)")
    download: str | None = Field(description="download path relative to the app root")


class FileListing(BaseModel):
    """One directory of a version's manifest."""

    qualified_name: str
    path: str
    parent: str | None
    dirs: list[DirEntry]
    files: list[FileEntry]
    file_total: int = Field(description="files directly in this directory")
    offset: int
    total_files: int
    total_size: int


class LineageNode(BaseModel):
    """An artifact (version, or type when collapsed) or a run (step, group or job type)."""

    id: str
    kind: Literal["artifact", "run"]
    label: str
    data: dict[str, Any]


class LineageEdge(BaseModel):
    """``used``: artifact -> run; ``logged``: run -> artifact."""

    source: str
    target: str
    kind: Literal["used", "logged"]


class LineageGraph(BaseModel):
    """The lineage neighbourhood of a version or run."""

    collapse: str
    direction: str
    depth: int | None
    root: list[str]
    nodes: list[LineageNode]
    edges: list[LineageEdge]


class ChangedFile(BaseModel):
    """A path whose content changed."""

    path: str
    old_digest: str
    new_digest: str
    old_size: int
    new_size: int


class RenamedFile(BaseModel):
    """Identical content under another path."""

    old_path: str
    new_path: str
    digest: str
    size: int


class DiffFile(BaseModel):
    """A file only in one of the versions."""

    path: str
    digest: str
    size: int
    ref: str | None = None


class DiffSummary(BaseModel):
    """Counts of each kind of change."""

    added: int
    removed: int
    modified: int
    renamed: int
    references_changed: int
    unchanged: int
    added_bytes: int
    removed_bytes: int


class MetadataDiff(BaseModel):
    """Top-level metadata keys added, removed and changed."""

    added: dict[str, Any]
    removed: dict[str, Any]
    changed: dict[str, dict[str, Any]]


class Diff(BaseModel):
    """What changed from ``old`` to ``new``."""

    old: VersionSummary
    new: VersionSummary
    summary: DiffSummary
    added: list[DiffFile]
    removed: list[DiffFile]
    modified: list[ChangedFile]
    renamed: list[RenamedFile]
    references_changed: list[ChangedFile] = Field(description="reference entries whose remote identity changed")
    truncated: bool = Field(description="a list was cut at ``limit`` items (the summary is complete)")
    metadata: MetadataDiff
    description_changed: bool
    same_content: bool


class ErrorBody(BaseModel):
    """Every error: a message naming what was not found or what rule was broken."""

    detail: str
