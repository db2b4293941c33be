"""Runs: one step execution that uses and logs artifacts, and :func:`init` to start one.

Inside a Prefect task or an Airflow task instance, an installed run-context provider tells
:func:`init` which step is running, and the run binds to it (same step -> same run record).
In a plain script, each :func:`init` is its own run.
"""

from __future__ import annotations

import dataclasses
import getpass
import logging
import os
import socket
import sys
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from types import TracebackType
from typing import Any, TypeVar

from .artifact import Artifact
from .client import Client, get_client
from .config import Settings
from .delta import DeltaSource, plan_delta
from .errors import DistributedConflictError, InvalidInputError, StoreTurnLostError
from .hashing import digest_bytes
from .liveness import HEARTBEAT, RUNNING
from .manifest import Manifest
from .metadata import validate_description, validate_metadata
from .naming import name_list, parse_ref, validate_alias, validate_name
from .redact import redact_uri
from .references import references_read_with
from .registry import CommitFields, RunRecord, StoreFence, VersionRecord
from .run_context import AliasMove, RunContext, RunContextProvider, current_run_context
from .storage import manifest_key
from .transfer import upload_blobs
from .version import ArtifactVersion

logger = logging.getLogger("artifact_plugins")
T = TypeVar("T")


def _script_context(job_type: str | None, name: str | None, group: str | None) -> RunContext:
    script = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "python"
    key = f"script:{uuid.uuid4()}"
    try:
        user = getpass.getuser()
    except Exception:
        user = "unknown"
    return RunContext(
        orchestrator="script",
        run_key=key,
        name=name or f"{script}-{key[-8:]}",
        job_type=job_type or script.removesuffix(".py") or "script",
        group=group,
        step={"host": socket.gethostname(), "pid": os.getpid(), "user": user, "argv0": script},
    )


MAX_JOB_TYPE = 256
MAX_RUN_TEXT = 512


def _fit_context(context: RunContext) -> RunContext:
    """Check an explicit job type's length and fit orchestrator-made identifiers into the registry."""
    if len(context.job_type) > MAX_JOB_TYPE:
        raise InvalidInputError(
            f"job_type {context.job_type[:60]!r}… is {len(context.job_type)} characters; the limit is {MAX_JOB_TYPE}"
        )
    key = context.run_key
    if len(key) > MAX_RUN_TEXT:  # very long dag/run/task ids: keep a readable prefix and a digest
        key = f"{key[: MAX_RUN_TEXT - 73]}#{digest_bytes(key.encode())}"

    def fit(text: str | None) -> str | None:
        return text if text is None or len(text) <= MAX_RUN_TEXT else text[: MAX_RUN_TEXT - 1] + "…"

    def link(url: str | None) -> str | None:  # a UI base URL configured with user info keeps it to itself
        return None if url is None else fit(redact_uri(url))

    return dataclasses.replace(
        context,
        run_key=key,
        name=fit(context.name) or "",
        group=fit(context.group),
        group_name=fit(context.group_name),
        url=link(context.url),
        group_url=link(context.group_url),
    )


class Run:
    """A step execution: records what it used and what it logged."""

    def __init__(
        self,
        client: Client,
        context: RunContext,
        provider: RunContextProvider | None,
        entity: str,
        project: str,
        explicit: bool = False,
    ) -> None:
        self._client = client
        context = _fit_context(context)
        self._context = context
        self._provider = provider
        self.entity = entity
        self.project = project
        self._record: RunRecord = client.registry.ensure_run(
            run_key=context.run_key,
            orchestrator=context.orchestrator,
            job_type=context.job_type,
            name=context.name,
            group=context.group,
            group_name=context.group_name,
            refresh_identity=explicit,
            entity=entity,
            project=project,
            url=context.url,
            group_url=context.group_url,
            step=dict(context.step),
        )
        self._finished = False
        HEARTBEAT.add(self, self.id, client.registry, self._finish_at_exit)

    # -- identity ---------------------------------------------------------------------------------

    @property
    def id(self) -> str:
        """Registry id of the run."""
        return self._record.id

    @property
    def job_type(self) -> str:
        """What kind of step this is (``train``, ``preprocess``...)."""
        return self._record.job_type

    @property
    def orchestrator(self) -> str:
        """``prefect``, ``airflow`` or ``script``."""
        return self._record.orchestrator

    @property
    def name(self) -> str:
        """Display name."""
        return self._record.name

    @property
    def group(self) -> str | None:
        """The flow run / DAG run this step belongs to."""
        return self._record.group

    @property
    def url(self) -> str | None:
        """Deep link into the orchestrator UI."""
        return self._record.url

    @property
    def status(self) -> str:
        """``running``, ``finished`` or ``failed``."""
        if self._finished and self._record.status == RUNNING:
            # Ended since the record was read, and not read back then (most runs are never asked):
            # the outcome may be an orchestrator adapter's, so it is read from the registry.
            self._record = self._client.registry.run(self.id)
        return self._record.status

    @property
    def context(self) -> RunContext:
        """The run context this run is bound to."""
        return self._context

    @property
    def settings(self) -> Settings:
        """The configuration this run writes to."""
        return self._client.settings

    def __repr__(self) -> str:
        return f"<Run {self.id} {self.orchestrator}:{self.job_type} {self.name!r}>"

    # -- context manager --------------------------------------------------------------------------

    def __enter__(self) -> Run:
        # Drafts built in the block read their s3:// / gs:// references as the store is reached.
        self._scope = ExitStack()
        self._scope.enter_context(references_read_with(self.settings.store_access))
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            self.finish("failed" if exc_type else "finished")
        finally:
            self._scope.close()

    def finish(self, status: str = "finished") -> None:
        """Mark the run finished (or failed). Idempotent."""
        self._finish(status, if_running=False)

    def _finish_at_exit(self, status: str) -> None:
        """The end of a run its program left open: an outcome recorded meanwhile (by an
        orchestrator adapter) stands."""
        self._finish(status, if_running=True)

    def _finish(self, status: str, *, if_running: bool) -> None:
        if not self._finished:
            self._finished = True
            HEARTBEAT.discard(self)
            self._client.registry.finish_run(self.id, status, if_running=if_running)
            if _current.get() is self:
                _current.set(None)

    # -- logging ----------------------------------------------------------------------------------

    def log_artifact(
        self,
        artifact: Artifact,
        aliases: Iterable[str] | None = None,
        tags: Iterable[str] | None = None,
        *,
        ttl_seconds: int | None = None,
    ) -> ArtifactVersion:
        """Commit ``artifact`` as a new version (or reuse the version with the same content) and record lineage."""
        alias_list = [validate_alias(a) if a != "latest" else a for a in name_list(aliases)]
        tag_list = [validate_name(t, "tag") for t in name_list(tags)]
        version, created = self._commit(artifact, alias_list, tag_list, output=True, ttl_seconds=ttl_seconds)
        if not created:
            logger.info("%s already exists with the same content; no new version created", version.qualified_name)
        self._notify("on_logged", version, created=created)
        return version

    def _commit(
        self, artifact: Artifact, aliases: list[str], tags: list[str], *, output: bool, ttl_seconds: int | None = None
    ) -> tuple[ArtifactVersion, bool]:
        """The commit protocol: (1) blobs, (2) manifest, (3) one registry transaction.

        ``output=False`` commits a draft that is only being *used*: it is not recorded as this
        run's output.
        """
        manifest = artifact.manifest()
        metadata, description = _checked_fields(artifact)
        registry, digest = self._client.registry, manifest.digest()
        fields = CommitFields(
            entity=self.entity,
            project=self.project,
            name=artifact.name,
            type=artifact.type,
            digest=digest,
            manifest_key=manifest_key(digest),
            size=manifest.size,
            file_count=len(manifest),
            description=description,
            metadata=metadata,
            aliases=aliases,
            tags=tags,
            run_id=self.id if output else None,
            ttl_seconds=ttl_seconds,
        )
        result = None
        manifest_absent = not self._client.store.has(fields["manifest_key"])
        if not manifest_absent:
            # Re-logging content the store holds the manifest of (written only after all its
            # blobs were): if this collection holds a committed version of it, the bytes are
            # there and kept alive by that version (gc never deletes what a live version
            # references), so steps (1) and (2) have nothing to do, and the commit reuses the
            # version if it still exists at that moment. If there is none (a log that never
            # committed left the manifest; or the version was deleted meanwhile), the full
            # protocol runs below. (A registry can outlive a store switch: a committed version
            # whose manifest the store lacks is committed again through the full protocol.)
            result = registry.reuse_version(**fields)
            if result is not None:
                self._client.remember_manifest(digest, manifest)
        stored: str | None = None
        generation: int | None = None
        scope = self._client.scope
        if result is None:
            committed, stored, generation = store_then_record(
                self._client,
                self.id,
                artifact,
                manifest,
                lambda fence: registry.commit_version(fence=fence, **fields),
                artifact._held_in(scope),
                artifact._delta_in(scope),
                artifact._stored_in(scope),
                manifest_absent,
                artifact._known_generation(scope),
            )
            result = committed
        artifact._committed_as(scope, digest, stored, generation)
        version = ArtifactVersion(self._client, result.version, self)
        artifact._mark_logged(version)
        notify_alias_moves(self._client, result.version, result.moves, self)
        return version, result.created

    def use_artifact(self, artifact_or_ref: str | Artifact | ArtifactVersion | Any) -> ArtifactVersion:
        """Resolve a ref (or log a never-logged draft first), record the use, and return the version.

        Accepts a ref string, an :class:`Artifact` draft, an :class:`ArtifactVersion`, or any object
        with a ``qualified_name`` (such as the adapters' ``ArtifactRef``).
        """
        if not isinstance(artifact_or_ref, str | Artifact | ArtifactVersion):
            qualified = getattr(artifact_or_ref, "qualified_name", None)
            if not isinstance(qualified, str):
                raise InvalidInputError(
                    f"use_artifact() takes a ref string, an Artifact or an ArtifactVersion, not {artifact_or_ref!r}"
                )
            artifact_or_ref = qualified
        if isinstance(artifact_or_ref, Artifact):
            version = artifact_or_ref.logged_version or self._commit(artifact_or_ref, [], [], output=False)[0]
        elif isinstance(artifact_or_ref, ArtifactVersion):
            version = ArtifactVersion(self._client, artifact_or_ref._record, self)
        else:
            record = self._client.registry.resolve(parse_ref(artifact_or_ref), self.entity, self.project)
            version = ArtifactVersion(self._client, record, self)
        self._client.registry.record_use(self.id, version.id)
        self._notify("on_used", version)
        return version

    def _distributed_id(self, distributed_id: str | None) -> str:
        did = distributed_id or self._context.default_distributed_id or self._context.group
        if not did:
            raise InvalidInputError(
                "distributed_id is required outside an orchestrator run: pass the same distributed_id "
                "to every upsert_artifact and to finish_artifact"
            )
        return did

    def upsert_artifact(
        self, artifact: Artifact, distributed_id: str | None = None, *, part_key: str | None = None
    ) -> None:
        """Contribute a part to a distributed artifact; parts are merged by :meth:`finish_artifact`.

        ``part_key`` (default: the orchestrator step's, e.g. an Airflow map index) names this
        writer's part, so a retried writer replaces the part its failed attempt left open.
        """
        did = self._distributed_id(distributed_id)
        manifest = artifact.manifest()
        _checked_fields(artifact)
        store_then_record(
            self._client,
            self.id,
            artifact,
            manifest,
            lambda fence: self._client.registry.add_part(
                entity=self.entity,
                project=self.project,
                name=artifact.name,
                type=artifact.type,
                distributed_id=did,
                digest=manifest.digest(),
                manifest_key=manifest_key(manifest.digest()),
                run_id=self.id,
                part_key=part_key or self._context.part_key,
                fence=fence,
            ),
        )

    def open_parts(self, name: str, distributed_id: str | None = None) -> int:
        """How many parts of distributed artifact ``name`` are waiting for :meth:`finish_artifact`."""
        did = self._distributed_id(distributed_id)
        return len(self._client.registry.parts(self.entity, self.project, validate_name(name), did))

    def finish_artifact(
        self,
        artifact: Artifact,
        distributed_id: str | None = None,
        aliases: Iterable[str] | None = None,
        tags: Iterable[str] | None = None,
        *,
        only_parts: Iterable[str] | None = None,
    ) -> ArtifactVersion:
        """Merge every part upserted under ``distributed_id`` (plus ``artifact``'s own entries) into one version.

        A finish retried after it succeeded returns the version it made; a finish with no parts
        and no entries of its own is an error (it never commits an empty version).
        ``only_parts`` (part digests) merges those parts alone: an orchestrator that retries a whole
        run under the same id (a Prefect flow retry) knows which parts its last attempt wrote,
        while parts of a failed attempt are still open under the id. Every part is closed.
        """
        did = self._distributed_id(distributed_id)
        parts = self._client.registry.parts(self.entity, self.project, artifact.name, did)
        if only_parts is not None and parts:
            wanted = set(only_parts)
            missing = wanted - {digest for digest, _, _ in parts}
            if missing:
                raise InvalidInputError(
                    f"distributed artifact {artifact.name!r} ({did}) in {self.entity}/{self.project} has no open "
                    f"part {sorted(missing)[0]}; was it upserted in another project, or finished already?"
                )
            parts = [part for part in parts if part[0] in wanted]
        if not parts and not artifact.pending:
            done = self._client.registry.finished_version(self.entity, self.project, artifact.name, did)
            if done is None:
                raise InvalidInputError(
                    f"distributed artifact {artifact.name!r} ({did}) has no upserted parts to finish; "
                    "call upsert_artifact with the same name and distributed_id first"
                )
            result = self._client.registry.commit_version(
                entity=self.entity,
                project=self.project,
                name=done.name,
                type=done.type,
                digest=done.digest,
                manifest_key=done.manifest_key,
                size=done.size,
                file_count=done.file_count,
                description=None,
                metadata={},
                aliases=name_list(aliases),
                tags=name_list(tags),
                run_id=self.id,
            )
            version = ArtifactVersion(self._client, result.version, self)
            artifact._mark_logged(version)
            self._notify("on_logged", version, created=result.created)
            notify_alias_moves(self._client, result.version, result.moves, self)
            return version
        owner: dict[str, str] = {p.entry.path: "the finishing artifact" for p in artifact.pending}
        merged = {p.entry.path: p.entry for p in artifact.pending}
        for digest, key, run_id in parts:
            part = Manifest.from_bytes(self._client.store.get_bytes(key), expected_digest=digest)
            who = f"part {digest[:19]}… (run {run_id})"
            for e in part:
                prior = merged.get(e.path)
                if prior is not None and prior.digest != e.digest:
                    raise DistributedConflictError(
                        f"distributed artifact {artifact.name!r} ({did}): path {e.path!r} has digest {prior.digest} "
                        f"in {owner[e.path]} and {e.digest} in {who}"
                    )
                merged[e.path] = e
                owner.setdefault(e.path, who)
        final = Artifact(artifact.name, artifact.type, artifact.description, artifact.metadata)
        from .artifact import PendingEntry

        sources = {p.entry.path: p for p in artifact.pending}
        for path, e in merged.items():
            final._add_pending(sources.get(path) or PendingEntry(e))
        version = self.log_artifact(final, aliases=aliases, tags=tags)
        writers = [run_id for _, _, run_id in parts if run_id is not None]
        self._client.registry.close_parts(self.entity, self.project, artifact.name, did, version.id, writers)
        artifact._mark_logged(version)
        return version

    # -- queries ----------------------------------------------------------------------------------

    def _edge_versions(self, kind: str) -> list[ArtifactVersion]:
        edges = [e for e in self._client.registry.edges(run_ids=[self.id]) if e.kind == kind]
        records = {r.id: r for r in self._client.registry.versions_by_ids(e.version_id for e in edges)}
        return [ArtifactVersion(self._client, records[e.version_id], self) for e in edges if e.version_id in records]

    def logged_artifacts(self) -> list[ArtifactVersion]:
        """Versions this run logged, in order."""
        return self._edge_versions("logged")

    def used_artifacts(self) -> list[ArtifactVersion]:
        """Versions this run used, in order."""
        return self._edge_versions("used")

    def _notify(self, hook: str, version: ArtifactVersion, **kwargs: Any) -> None:
        if self._provider is not None:
            _call_hook(self._provider, hook, self, version, **kwargs)


def _call_hook(provider: RunContextProvider, hook: str, *args: Any, **kwargs: Any) -> None:
    """Call ``provider.<hook>`` if it has one; a failure there is logged, never raised (an
    orchestrator side effect must not fail the log, use or run it reports on)."""
    fn = getattr(provider, hook, None)  # on_bound is optional (RunContextProvider)
    if fn is None:
        return
    try:
        fn(*args, **kwargs)
    except Exception as exc:
        logger.warning("%s hook %s failed: %s", type(provider).__name__, hook, exc)


#: How many times a commit runs steps (1)-(3) when a garbage collection went ahead of it (the
#: first time without a store turn, then with one).
TURN_ATTEMPTS = 3


def store_then_record(
    client: Client,
    run_id: str,
    artifact: Artifact,
    manifest: Manifest,
    record: Callable[[StoreFence], T],
    held: frozenset[str] = frozenset(),
    delta: DeltaSource | None = None,
    stored_since: int | None = None,
    manifest_absent: bool = False,
    known_generation: int | None = None,
) -> tuple[T, str | None, int | None]:
    """Steps (1) and (2) of the commit protocol, then ``record(fence)`` (step 3), whose
    transaction checks the fence (:meth:`~.registry.Registry.hold_fence`).

    From asking the store which blobs it has until the version (or part) is recorded, a blob
    found present must stay. The first attempt takes no turn at the store: it reads the store's
    generation (:meth:`~.registry.Registry.store_view`), and records only if no deleting
    collection went ahead since. Where one did (or one was deleting when it looked), the steps
    run again under a store turn, which a collection waits for (and the commit waits for an
    earlier one): blobs the collection deleted are found missing and sent again. A commit held
    up past its turn's lease loses the turn to a collection, records nothing, and runs again.

    ``held`` are the digests of committed versions that hold the blobs of the draft's entries
    flagged ``held``: a store that only gc deletes from (``BlobStore.only_gc_deletes``, the
    local one) is not asked about those blobs if every one of these versions is still
    committed (gc keeps every blob of a committed version). If one is not, the store is asked
    about every blob. Entries are also flagged ``held`` because the draft stored their blobs as
    it hashed them, while the store's generation was ``stored_since``
    (:meth:`~.registry.Registry.store_generation`): they are taken as present if the fence's
    generation is the same (no collection went ahead since); if it is not, the store is asked
    about every blob. ``delta``, whose version must be among ``held``, is what the manifest may
    be stored as a delta of (:func:`~.delta.plan_delta`). ``manifest_absent``: the caller found
    no manifest of this digest in the store (see :meth:`~.client.Client.put_manifest`).

    ``known_generation``: a store generation under which every ``held`` blob was present
    (``Artifact._known_generation``). The first attempt then reads nothing before asking the
    store: that generation is its fence, so it records only if no collection went ahead since
    and the ``held`` versions are still committed (a generation alone could be another
    registry's, at the same address, since recreated). Where either changed, the steps run
    again as above. Not where the draft's own blobs were stored under another generation
    (``stored_since``).

    Returns what ``record`` returned, how the manifest is stored (``""`` whole, else the base
    of its delta; ``None`` if it was stored already), and the store generation the record was
    fenced by (``None`` if it held a turn instead).
    """
    registry = client.registry

    def waiting(what: str) -> None:
        logger.warning("storing %r waits for %s to end", artifact.name, what)

    attempt = 1
    assumed = known_generation is not None and stored_since in (None, known_generation)
    while True:
        fence: StoreFence | None
        if assumed:
            fence, committed = StoreFence(generation=known_generation, held=held), set(held)
        else:
            fence, committed = registry.store_view(held) if attempt == 1 else (None, set())
        if fence is None:
            fence = StoreFence(turn=registry.acquire_store_lock("commit", run_id, on_wait=waiting))
            committed = registry.committed_digests(held) if held else set()
        try:
            trusted = bool(held) or stored_since is not None
            if len(committed) < len(held):
                logger.info("a version %r started from is no longer committed: checking every blob", artifact.name)
                held, delta, trusted = frozenset(), None, False
            if trusted and stored_since is not None:
                generation = fence.generation if fence.turn is None else registry.store_generation()
                if generation != stored_since:
                    logger.info("a garbage collection ran since %r was stored: checking every blob", artifact.name)
                    trusted = False
            upload_blobs(client, artifact.pending, artifact.name, skip_held=trusted and client.store.only_gc_deletes)
            plan = plan_delta(client, manifest, delta) if delta is not None and delta.version in held else None
            stored = client.put_manifest(manifest, plan, found_absent=manifest_absent)
            # The record's transaction ends the turn, if the commit held one.
            return record(fence), stored, fence.generation if fence.turn is None else None
        except StoreTurnLostError:
            if assumed:
                logger.info("the store or registry changed since %r was last logged: checking again", artifact.name)
                assumed = False
                continue
            if attempt == TURN_ATTEMPTS:
                raise
            logger.warning(
                "storing %r again: a garbage collection went ahead of it while it stored",
                artifact.name,
            )
            attempt += 1
        except BaseException:
            if fence.turn is not None:
                registry.release_store_lock(fence.turn)
            raise


def _checked_fields(artifact: Artifact) -> tuple[dict[str, Any], str | None]:
    """Metadata and description of a draft, validated again: they may have been set after construction."""
    return validate_metadata(artifact.metadata), validate_description(artifact.description)


def notify_alias_moves(
    client: Client, record: VersionRecord, moves: list[tuple[str, int | None, int | None]], run: Run | None = None
) -> None:
    """Tell the active run-context provider about alias moves (for orchestrator events)."""
    if not moves:
        return
    found = current_run_context() if run is None else ((run._provider, run.context) if run._provider else None)
    if not found:
        return
    provider = found[0]
    ids = {i for _, a, b in moves for i in (a, b) if i is not None}
    index = {r.id: r for r in client.registry.versions_by_ids(ids)}
    for alias, new, old in moves:
        target = index.get(new) if new is not None else None
        move = AliasMove(
            qualified_collection=record.collection,
            alias=alias,
            version=target.version if target else None,
            previous=index[old].version if old is not None and old in index else None,
            digest=target.digest if target else None,
            settings=client.settings,
        )
        _call_hook(provider, "on_alias_moved", run, move)


class _CurrentRun(threading.local):
    run: Run | None = None

    def get(self) -> Run | None:
        return self.run

    def set(self, run: Run | None) -> None:
        self.run = run


_current = _CurrentRun()


def init(
    job_type: str | None = None,
    project: str | None = None,
    entity: str | None = None,
    name: str | None = None,
    group: str | None = None,
    settings: Settings | None = None,
    **overrides: Any,
) -> Run:
    """Start (or, inside an orchestrator step, bind to) a run. Use as a context manager.

    ``settings`` or keyword overrides (``store=``, ``registry=``...) take precedence over the
    environment and config file.
    """
    settings = settings or Settings.resolve(project=project, entity=entity, **overrides)
    client = get_client(settings)
    found = current_run_context()
    if found is not None:
        provider, ctx = found
        if job_type or name or group:
            ctx = dataclasses.replace(
                ctx, name=name or ctx.name, job_type=job_type or ctx.job_type, group=group or ctx.group
            )
        run = Run(
            client,
            ctx,
            provider,
            entity or settings.entity,
            project or settings.project,
            explicit=bool(job_type or name or group),
        )
        _call_hook(provider, "on_bound", run)
    else:
        run = Run(
            client, _script_context(job_type, name, group), None, entity or settings.entity, project or settings.project
        )
    _current.set(run)
    return run


def current_run() -> Run | None:
    """The run most recently started by :func:`init` in this thread, if still open."""
    return _current.get()


@contextmanager
def _implicit_run() -> Iterator[Run]:
    """The run a module-level call belongs to.

    Inside an orchestrator step with no open ``init()`` run, the call binds to the step's run
    and closes it again afterwards (the step may end at any time; a later call re-opens it).
    In a script, the first call starts a run that stays current and is closed at exit.
    """
    run = _current.get()
    found = current_run_context()
    if run is not None and not run._finished and (found is None or found[1].run_key == run.context.run_key):
        yield run
        return
    run = init()
    if found is None:  # a script's run: finished at exit (core/liveness.py)
        yield run
        return
    try:
        yield run
    except BaseException:
        run.finish("failed")
        raise
    run.finish()


def log_artifact(
    artifact: Artifact, aliases: Iterable[str] | None = None, tags: Iterable[str] | None = None
) -> ArtifactVersion:
    """Log ``artifact`` from the current run (binding to the orchestrator step, or starting a script run)."""
    with _implicit_run() as run:
        return run.log_artifact(artifact, aliases=aliases, tags=tags)


def use_artifact(artifact_or_ref: str | Artifact | ArtifactVersion | Any) -> ArtifactVersion:
    """Use an artifact from the current run (binding to the orchestrator step, or starting a script run)."""
    with _implicit_run() as run:
        return run.use_artifact(artifact_or_ref)


def record_step_outcome(run_key: str, status: str) -> None:
    """Set the status of the run bound to an orchestrator step, in every registry this process used.

    Orchestrator adapters call this when the step ends (an Airflow task-instance try succeeds or
    fails): the step's outcome is final even if artifact calls inside it already closed the run.
    """
    from .client import open_clients

    run = _current.get()
    if run is not None and run.context.run_key == run_key:
        run.finish(status)
    for client in open_clients():
        client.registry.finish_run_by_key(run_key, status)
