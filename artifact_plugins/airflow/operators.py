"""Operators that log, use and finish artifacts with lineage recorded from the task instance.

Every operator opens one artifact run bound to the running task-instance try (through the
:class:`~artifact_plugins.airflow.context.AirflowRunContextProvider`), so the registry knows which
DAG run, task, map index and try produced or consumed each version. Declare
``artifact_asset(name)`` in ``outlets`` (in ``partial()`` for mapped tasks) to get an Airflow asset
event per logged version.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import Asset, BaseOperator

from artifact_plugins.core.errors import InvalidInputError

from .assets import is_artifact_asset, parse_asset_uri
from .context import bound_context
from .links import LINK_ATTRIBUTE, ArtifactLink, version_page_url
from .openlineage import LineageDataset, operator_lineage
from .settings import resolve_settings

if TYPE_CHECKING:
    from airflow.sdk import Context

    from artifact_plugins.core.run import Run
    from artifact_plugins.core.version import ArtifactVersion

logger = logging.getLogger(__name__)

PathSpec = str | os.PathLike[str] | Mapping[str, Any]
ReferenceSpec = str | Mapping[str, Any]


def version_payload(version: ArtifactVersion) -> dict[str, Any]:
    """The JSON-serialisable description of a version pushed as XCom."""
    return {
        "name": version.name,
        "type": version.type,
        "version": version.version,
        "version_index": version.version_index,
        "digest": version.digest,
        "qualified_name": version.qualified_name,
        "aliases": list(version.aliases),
        "entity": version.entity,
        "project": version.project,
        "size": version.size,
        "file_count": version.file_count,
        "url": version_page_url(version),
    }


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, str | os.PathLike | Mapping):
        return [value]
    return list(value)


def _metadata(value: object) -> dict[str, Any]:
    """The (rendered) ``metadata`` field as a dict. Templates render to strings unless the DAG sets
    ``render_template_as_native_obj=True``: a string holding a JSON object is read as one."""
    if value is None:
        return {}
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = json.loads(value)
    if not isinstance(value, Mapping):
        raise InvalidInputError(
            f"metadata {value!r:.80} is not a mapping: give a dict or a JSON object (a template renders to a "
            "string: use one that prints JSON, or render_template_as_native_obj=True on the DAG)"
        )
    return dict(value)


def _spec_field(spec: Mapping[str, Any], key: str, field: str) -> Any:
    """``spec[key]`` of one mapping item of ``paths``/``references``, or an error naming what is missing."""
    if key not in spec:
        raise InvalidInputError(f"{field} item {dict(spec)!r:.120} has no {key!r} (keys: {key}, name ...)")
    return spec[key]


class _ArtifactOperator(BaseOperator):
    """Shared plumbing: settings, the bound artifact run, the extra link and OpenLineage."""

    operator_extra_links = (ArtifactLink(),)
    ui_color = "#e8f1fb"

    def __init__(
        self,
        *,
        project: str | None = None,
        entity: str | None = None,
        job_type: str | None = None,
        artifact_conn_id: str | None = None,
        aws_conn_id: str | None = None,
        gcp_conn_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.project = project
        self.entity = entity
        self.job_type = job_type
        self.artifact_conn_id = artifact_conn_id
        self.aws_conn_id = aws_conn_id
        self.gcp_conn_id = gcp_conn_id
        self._lineage_inputs: list[LineageDataset] = []
        self._lineage_outputs: list[LineageDataset] = []

    @contextlib.contextmanager
    def artifact_run(self, context: Context, *, project: str | None = None, entity: str | None = None) -> Iterator[Run]:
        """An artifact run bound to this task-instance try, finished (or failed) on exit.

        ``project``/``entity`` are fallbacks for when the operator was given none. With
        ``aws_conn_id`` (``gcp_conn_id``), ``s3://`` (``gs://``) references are read with that
        connection too (a run's block reads references as its store is reached).
        """
        import artifact_plugins as ap

        self._lineage_inputs, self._lineage_outputs = [], []
        settings = resolve_settings(self.artifact_conn_id, self.aws_conn_id, self.gcp_conn_id)
        with (
            bound_context(context),
            ap.init(
                job_type=self.job_type,
                project=self.project or project,
                entity=self.entity or entity,
                settings=settings,
            ) as run,
        ):
            yield run

    def remember_version(self, version: ArtifactVersion, *, produced: bool) -> dict[str, Any]:
        """Record ``version`` for the extra link and OpenLineage; return its XCom payload."""
        payload = version_payload(version)
        setattr(self, LINK_ATTRIBUTE, payload["url"])
        dataset = LineageDataset.for_version(version)
        (self._lineage_outputs if produced else self._lineage_inputs).append(dataset)
        return payload

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any | None:
        """Inputs and outputs of this run for OpenLineage; artifact versions carry their digest."""
        return operator_lineage(list(self._lineage_inputs), list(self._lineage_outputs))


class LogArtifactOperator(_ArtifactOperator):
    """Log files, directories and references as a new version of the artifact ``name``.

    ``paths`` are local files or directories (a string, or ``{"path": ..., "name": ...}`` to place
    them inside the artifact); ``references`` are URIs tracked where they are (a string, or
    ``{"uri": ..., "name": ..., "checksum": ..., "max_objects": ...}``). The version is committed
    atomically: a failing task never leaves a partial version, and a retry that logs the same
    content deduplicates to the version already committed.

    With ``distributed=True`` (or a ``distributed_id``) the task only upserts its files as a part;
    a downstream :class:`FinishArtifactOperator` commits all parts of the DAG run as one version.
    This is how mapped writers (``.partial(...).expand(paths=...)``) build one artifact.
    The XCom return value describes the version (or the part).
    """

    template_fields: Sequence[str] = (
        "name",
        "type",
        "paths",
        "references",
        "aliases",
        "metadata",
        "description",
        "distributed_id",
        "tags",
    )
    template_fields_renderers = {"metadata": "json"}

    def __init__(
        self,
        *,
        name: str,
        type: str,
        paths: Sequence[PathSpec] | PathSpec | None = None,
        references: Sequence[ReferenceSpec] | ReferenceSpec | None = None,
        aliases: Sequence[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
        description: str | None = None,
        tags: Sequence[str] | None = None,
        distributed: bool = False,
        distributed_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.name = name
        self.type = type
        self.paths = paths
        self.references = references
        self.aliases = aliases
        self.metadata = metadata
        self.description = description
        self.tags = tags
        self.distributed = distributed
        self.distributed_id = distributed_id

    def build_artifact(self) -> Any:
        """The :class:`~artifact_plugins.Artifact` described by the (rendered) fields."""
        import artifact_plugins as ap

        art = ap.Artifact(self.name, self.type, description=self.description, metadata=_metadata(self.metadata))
        for spec in _as_list(self.paths):
            if isinstance(spec, Mapping):
                path, entry_name = _spec_field(spec, "path", "paths"), spec.get("name")
            else:
                path, entry_name = spec, None
            local = Path(os.fspath(path))
            if local.is_dir():
                art.add_dir(local, name=entry_name)
            elif local.is_file():
                art.add_file(local, name=entry_name)
            else:
                raise FileNotFoundError(f"artifact {self.name!r}: path {str(local)!r} does not exist")
            self._lineage_inputs.append(LineageDataset.for_location(str(local.resolve())))
        for spec in _as_list(self.references):
            if isinstance(spec, Mapping):
                options = {k: spec[k] for k in ("name", "checksum", "max_objects") if k in spec}
                uri = _spec_field(spec, "uri", "references")
            else:
                uri, options = spec, {}
            art.add_reference(uri, **options)
            self._lineage_inputs.append(LineageDataset.for_location(uri))
        return art

    def execute(self, context: Context) -> dict[str, Any]:
        """Log the artifact (or upsert this task's part of a distributed one)."""
        distributed = self.distributed or self.distributed_id is not None
        if distributed:
            finish_fields = [f for f in ("aliases", "metadata", "description", "tags") if getattr(self, f)]
            if finish_fields:
                raise InvalidInputError(
                    f"artifact {self.name!r}: {', '.join(finish_fields)} of a distributed artifact are set by "
                    "FinishArtifactOperator (a part carries files only)"
                )
        if not _as_list(self.paths) and not _as_list(self.references):
            raise InvalidInputError(f"artifact {self.name!r}: nothing to log; give paths or references")
        with self.artifact_run(context) as run:
            art = self.build_artifact()
            if distributed:
                distributed_id = self.distributed_id or default_distributed_id(context)
                run.upsert_artifact(art, distributed_id=distributed_id)
                self.log.info("Upserted a part of artifact %s (distributed id %s)", self.name, distributed_id)
                return {"name": self.name, "type": self.type, "distributed_id": distributed_id, "part": True}
            version = run.log_artifact(art, aliases=self.aliases, tags=self.tags)
        payload = self.remember_version(version, produced=True)
        self.log.info("Logged artifact %s (%s): %s", version.qualified_name, version.digest, payload["url"])
        return payload


def default_distributed_id(context: Mapping[str, Any]) -> str:
    """The distributed id shared by all tasks of one DAG run: ``<dag_id>/<run_id>``."""
    ti = context["ti"]
    return f"{ti.dag_id}/{ti.run_id}"


class FinishArtifactOperator(_ArtifactOperator):
    """Commit the parts upserted by distributed :class:`LogArtifactOperator` tasks as one version.

    ``distributed_id`` defaults to ``<dag_id>/<run_id>``, the default of the writers, so a mapped
    writer followed by this operator needs no id at all. Declare ``artifact_asset(name)`` in its
    outlets to get the asset event of the finished version. The XCom return value describes it.
    """

    template_fields: Sequence[str] = (
        "name",
        "type",
        "distributed_id",
        "aliases",
        "metadata",
        "description",
        "tags",
    )
    template_fields_renderers = {"metadata": "json"}

    def __init__(
        self,
        *,
        name: str,
        type: str,
        distributed_id: str | None = None,
        aliases: Sequence[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
        description: str | None = None,
        tags: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.name = name
        self.type = type
        self.distributed_id = distributed_id
        self.aliases = aliases
        self.metadata = metadata
        self.description = description
        self.tags = tags

    def execute(self, context: Context) -> dict[str, Any]:
        """Merge the parts and commit the version (a retried finish returns the version it made)."""
        import artifact_plugins as ap

        distributed_id = self.distributed_id or default_distributed_id(context)
        art = ap.Artifact(self.name, self.type, description=self.description, metadata=_metadata(self.metadata))
        with self.artifact_run(context) as run:
            # The core returns the version an earlier try already finished, and refuses to finish
            # when nothing was upserted.
            version = run.finish_artifact(art, distributed_id=distributed_id, aliases=self.aliases, tags=self.tags)
        payload = self.remember_version(version, produced=True)
        self.log.info("Finished artifact %s (%s): %s", version.qualified_name, version.digest, payload["url"])
        return payload


class UseArtifactOperator(_ArtifactOperator):
    """Resolve an artifact version, record that this task used it, and optionally download it.

    ``artifact`` is a ref (``"bike-dataset:latest"``, ``"proj/name:v3"``, ``"name@blake3:..."``) or
    an :func:`~artifact_plugins.airflow.artifact_asset`; with an asset, a DAG run triggered by that
    asset uses the exact version announced by the triggering event, any other run uses ``:latest``.
    The XCom return value holds the resolved version, digest, qualified name and local ``path``
    (``None`` when ``download=False``). A missing artifact fails the task with a message naming
    the ref.
    """

    template_fields: Sequence[str] = ("artifact", "root", "path_prefix")

    def __init__(
        self,
        *,
        artifact: str | Asset,
        download: bool = True,
        root: str | None = None,
        path_prefix: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.artifact = artifact
        self.download = download
        self.root = root
        self.path_prefix = path_prefix

    def resolve_ref(self, context: Mapping[str, Any]) -> str:
        """The ref to use: the string as given, or the version that triggered this run for an asset."""
        if isinstance(self.artifact, str):
            return self.artifact
        if not is_artifact_asset(self.artifact):
            raise TypeError(f"artifact must be a ref string or artifact_asset(...), got {self.artifact!r}")
        entity, project, name = parse_asset_uri(self.artifact.uri)
        triggering = context.get("triggering_asset_events") or {}
        try:
            events = list(triggering[self.artifact]) if self.artifact in triggering else []
        except (KeyError, TypeError):
            events = []
        for event in reversed(events):
            qualified = (getattr(event, "extra", None) or {}).get("qualified_name")
            if not isinstance(qualified, str) or not qualified:
                continue
            if qualified.rpartition(":")[0] == f"{entity}/{project}/{name}":
                return qualified
            # An event made by hand (the UI's "Create Event", the REST API) may name anything.
            self.log.warning(
                "ignoring an event on %s that names %r, a version of another artifact", self.artifact.uri, qualified
            )
        latest = f"{entity}/{project}/{name}:latest"
        if events:
            self.log.warning("no triggering event on %s names a version of it; using %s", self.artifact.uri, latest)
        return latest

    def execute(self, context: Context) -> dict[str, Any]:
        """Use the artifact; download it when ``download`` is set."""
        ref = self.resolve_ref(context)
        entity = project = None
        if isinstance(self.artifact, Asset):  # record the use in the asset's project by default
            entity, project, _ = parse_asset_uri(self.artifact.uri)
        with self.artifact_run(context, project=project, entity=entity) as run:
            version = run.use_artifact(ref)
            path = version.download(root=self.root, path_prefix=self.path_prefix) if self.download else None
        payload = self.remember_version(version, produced=False)
        payload["ref"] = ref
        payload["path"] = str(Path(path).resolve()) if path is not None else None
        self.log.info("Using artifact %s (%s) for ref %s", version.qualified_name, version.digest, ref)
        return payload
