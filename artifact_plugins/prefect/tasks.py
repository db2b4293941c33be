"""Prefect tasks that log, use and assemble artifact versions.

Each task opens an artifact run with :func:`artifact_plugins.init`; inside a Prefect task run the
run-context provider binds it to that task run (group: the flow run), so lineage is recorded
without being told. The tasks return frozen dataclasses (:class:`ArtifactRef`,
:class:`ArtifactPart`) that Prefect links to exactly the task run that produced them.

Called through ``task.fn(...)`` or from plain code, the same functions work against the store
with no Prefect side effects. When a task is ``.map``-ped, Prefect maps over every list, tuple
and dict argument: one meant for every item (``metadata``, ``aliases=["prod", "reviewed"]``,
``tags``, a ``{name: path}`` form of ``paths``) must be wrapped in ``prefect.unmapped``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from prefect import task
from prefect.cache_policies import NO_CACHE

import artifact_plugins as ap

from .refs import ArtifactPart, ArtifactRef, ref_string

if TYPE_CHECKING:
    from artifact_plugins.core.run import Run

PathLike: TypeAlias = str | os.PathLike[str]
#: Files and directories to put in an artifact: one path, several paths (files keep their base
#: name, directories contribute their contents at the root), or ``{entry name: local path}``.
Paths: TypeAlias = PathLike | Sequence[PathLike] | Mapping[str, PathLike] | None
#: Reference URIs (``s3://``, ``gs://``, ``https://``, ``file://``): one, several, or ``{entry name: uri}``.
References: TypeAlias = str | Sequence[str] | Mapping[str, str] | None


def _named(items: Any) -> list[tuple[str | None, Any]]:
    """Normalise one value, a sequence, or a ``{name: value}`` mapping into (name, value) pairs."""
    if items is None:
        return []
    if isinstance(items, Mapping):
        return [(str(k), v) for k, v in items.items()]
    if isinstance(items, str | os.PathLike):
        return [(None, items)]
    return [(None, v) for v in items]


def build_artifact(
    name: str,
    type: str,
    paths: Paths = None,
    references: References = None,
    *,
    metadata: Mapping[str, Any] | None = None,
    description: str | None = None,
) -> ap.Artifact:
    """An :class:`ap.Artifact` draft holding ``paths`` and ``references``.

    A missing local path raises :class:`FileNotFoundError` naming it before anything is stored.
    """
    art = ap.Artifact(name, type=type, description=description, metadata=dict(metadata or {}))
    for entry, raw in _named(paths):
        path = Path(raw)
        if path.is_dir():
            art.add_dir(str(path), name=entry)
        elif path.is_file():
            art.add_file(str(path), name=entry or path.name)
        else:
            raise FileNotFoundError(f"cannot add {str(raw)!r} to artifact {name!r}: no such file or directory")
    for entry, uri in _named(references):
        art.add_reference(str(uri), name=entry)
    return art


def resolve_settings(settings: ap.Settings | None = None, store_block: str | None = None) -> ap.Settings | None:
    """Explicit ``settings`` win; else the saved :class:`ArtifactStore` block named ``store_block``."""
    if settings is not None:
        return settings
    if store_block:
        from .blocks import ArtifactStore

        block = ArtifactStore.load(store_block)
        return block.settings()  # type: ignore[union-attr]
    return None


@contextmanager
def _artifact_run(
    job_type: str | None,
    project: str | None,
    entity: str | None,
    settings: ap.Settings | None,
    store_block: str | None,
) -> Iterator[Run]:
    """An artifact run bound to the current Prefect task run (or a plain run outside Prefect).

    Drafts built in it read ``s3://``/``gs://`` references as the store is reached (a block's
    keys reach references too).
    """
    settings = resolve_settings(settings, store_block)
    with ap.init(job_type=job_type, project=project, entity=entity, settings=settings) as run:
        yield run


@task(name="log-artifact", task_run_name="log-{name}", cache_policy=NO_CACHE)
def log_artifact(
    name: str,
    type: str = "dataset",
    paths: Paths = None,
    *,
    references: References = None,
    aliases: str | Sequence[str] | None = None,
    tags: str | Sequence[str] | None = None,
    metadata: Mapping[str, Any] | None = None,
    description: str | None = None,
    job_type: str | None = None,
    project: str | None = None,
    entity: str | None = None,
    settings: ap.Settings | None = None,
    store_block: str | None = None,
) -> ArtifactRef:
    """Commit ``paths``/``references`` as the next version of artifact ``name`` and return its ref.

    Content equal to an existing version (for example on a retry) reuses that version and only
    adds ``aliases``. The store comes from ``settings``, the ``store_block`` Block, or the
    environment/config file, in that order.
    """
    with _artifact_run(job_type, project, entity, settings, store_block) as run:
        art = build_artifact(name, type, paths, references, metadata=metadata, description=description)
        version = run.log_artifact(art, aliases=aliases, tags=tags)
    return ArtifactRef.from_version(version)


@task(name="use-artifact", task_run_name="use-{ref}", cache_policy=NO_CACHE)
def use_artifact(
    ref: str | ArtifactRef,
    download: bool = True,
    *,
    root: PathLike | None = None,
    path_prefix: str | None = None,
    job_type: str | None = None,
    project: str | None = None,
    entity: str | None = None,
    settings: ap.Settings | None = None,
    store_block: str | None = None,
) -> ArtifactRef:
    """Record that this task run uses ``ref`` and (by default) download it; return the resolved ref.

    ``ref`` is a ref string (``name``, ``name:v3``, ``project/name:alias``, ``name@blake3:...``) or
    an :class:`ArtifactRef`. The returned ref's ``path`` is the download root (``None`` when
    ``download=False``). A ref that matches nothing fails the task with a message naming the
    ref and the nearest existing versions.
    """
    with _artifact_run(job_type, project, entity, settings, store_block) as run:
        version = run.use_artifact(ref_string(ref))
        path = version.download(root=root, path_prefix=path_prefix) if download else None
    # Absolute: a downstream task may run in another working directory.
    return ArtifactRef.from_version(version, path=Path(path).resolve() if path is not None else None)


def _distributed_id(run: Run, explicit: str | None) -> str:
    """``explicit``, else the run context's default (the flow run id inside Prefect)."""
    did = explicit or run.context.default_distributed_id or run.context.group
    if not did:
        raise ValueError(
            "distributed_id is required outside a Prefect flow run (inside one it defaults to the flow run id); "
            "pass the same distributed_id to every upsert_artifact and to finish_artifact"
        )
    return did


@task(name="upsert-artifact", task_run_name="upsert-{name}", cache_policy=NO_CACHE)
def upsert_artifact(
    name: str,
    type: str = "dataset",
    paths: Paths = None,
    *,
    references: References = None,
    distributed_id: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    job_type: str | None = None,
    project: str | None = None,
    entity: str | None = None,
    settings: ap.Settings | None = None,
    store_block: str | None = None,
) -> ArtifactPart:
    """Add one part of a distributed artifact (a parallel writer, typically under ``.map``).

    Parts are merged into one version by :func:`finish_artifact`; ``distributed_id`` defaults to
    the flow run id, so every mapped writer of one flow run contributes to the same artifact.
    """
    with _artifact_run(job_type, project, entity, settings, store_block) as run:
        art = build_artifact(name, type, paths, references, metadata=metadata)
        group = _distributed_id(run, distributed_id)
        run.upsert_artifact(art, distributed_id=group)
    return ArtifactPart(
        name=name,
        type=type,
        distributed_id=group,
        entity=run.entity,
        project=run.project,
        digest=art.digest,
        entries=tuple(sorted(art.entries)),
    )


def _parts_distributed_id(name: str, parts: Sequence[ArtifactPart], explicit: str | None) -> str | None:
    ids = {p.distributed_id for p in parts}
    names = {p.name for p in parts}
    if names - {name}:
        raise ValueError(f"finish_artifact({name!r}) was given parts of other artifacts: {sorted(names - {name})}")
    if explicit is not None:
        ids.add(explicit)
    return _one(ids, name, "distributed ids")


def _one(values: set[str], name: str, what: str) -> str | None:
    """The one value the parts given to ``finish_artifact(name)`` share (``None`` for no parts)."""
    if len(values) > 1:
        raise ValueError(f"finish_artifact({name!r}) was given parts with different {what}: {sorted(values)}")
    return next(iter(values), None)


@task(name="finish-artifact", task_run_name="finish-{name}", cache_policy=NO_CACHE)
def finish_artifact(
    name: str,
    type: str = "dataset",
    parts: Sequence[ArtifactPart] | None = None,
    *,
    distributed_id: str | None = None,
    aliases: str | Sequence[str] | None = None,
    tags: str | Sequence[str] | None = None,
    metadata: Mapping[str, Any] | None = None,
    description: str | None = None,
    job_type: str | None = None,
    project: str | None = None,
    entity: str | None = None,
    settings: ap.Settings | None = None,
    store_block: str | None = None,
) -> ArtifactRef:
    """Merge every part upserted under ``distributed_id`` into one version and return its ref.

    Pass the mapped ``upsert_artifact`` results as ``parts`` so the finish waits for them and the
    Prefect graph shows the dependency; their distributed id, project and entity are then used, and
    only those parts are merged (after a flow retry, parts of the failed attempt are left out).
    Without parts or an explicit id it defaults to the flow run id.
    """
    given = list(parts or ())
    group = _parts_distributed_id(name, given, distributed_id)
    if given:  # where the parts were written, unless told otherwise
        project = project or _one({p.project for p in given}, name, "projects")
        entity = entity or _one({p.entity for p in given}, name, "entities")
    art = ap.Artifact(name, type=type, description=description, metadata=dict(metadata or {}))
    with _artifact_run(job_type, project, entity, settings, store_block) as run:
        version = run.finish_artifact(
            art,
            distributed_id=_distributed_id(run, group),
            aliases=aliases,
            tags=tags,
            # A flow retry keeps the flow run id (the default distributed id): parts a failed
            # attempt wrote are still open under it. Merge the ones this attempt was given.
            only_parts=[p.digest for p in given] if given else None,
        )
    return ArtifactRef.from_version(version)
