"""``Api``: query and manage artifacts outside (or inside) a run."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .client import Client, get_client
from .config import Settings
from .errors import ArtifactNotFoundError, InvalidInputError
from .lineage import LineageGraph, build_lineage
from .naming import Ref, parse_ref, validate_alias, validate_name
from .registry import AliasEventRecord, CollectionRecord, RunRecord
from .run import current_run, notify_alias_moves
from .version import ArtifactVersion


class Api:
    """Read and manage the registry with the same configuration as :func:`~artifact_plugins.init`."""

    def __init__(self, settings: Settings | None = None, **overrides: Any) -> None:
        self.settings = settings or Settings.resolve(**overrides)
        self._client: Client = get_client(self.settings)

    def _ref(self, ref: str | Ref) -> Ref:
        return ref if isinstance(ref, Ref) else parse_ref(ref)

    def artifact(self, ref: str) -> ArtifactVersion:
        """The committed version ``ref`` points at (``[[entity/]project/]name[:vN|:alias|@blake3:...]``)."""
        record = self._client.registry.resolve(self._ref(ref), self.settings.entity, self.settings.project)
        return ArtifactVersion(self._client, record)

    def artifact_exists(self, ref: str) -> bool:
        """Whether ``ref`` resolves."""
        try:
            self.artifact(ref)
        except ArtifactNotFoundError:
            return False
        return True

    def artifact_versions(self, type: str | None, name: str, project: str | None = None) -> list[ArtifactVersion]:
        """Every committed version of a collection (``name`` may be ``project/name``), oldest first."""
        ref = parse_ref(name)
        records = self._client.registry.versions(
            ref.entity or self.settings.entity, ref.project or project or self.settings.project, ref.name
        )
        if type is not None:
            validate_name(type, "artifact type")
            records = [r for r in records if r.type == type]
        return [ArtifactVersion(self._client, r) for r in records]

    artifacts = artifact_versions

    def artifact_collections(self, project: str | None = None, type: str | None = None) -> list[CollectionRecord]:
        """Collections of a project (default: the configured one; ``"*"``: every project)."""
        proj = None if project == "*" else (project or self.settings.project)
        return self._client.registry.collections(self.settings.entity, proj, type)

    def projects(self) -> list[tuple[str, str]]:
        """Every (entity, project) in the registry."""
        return self._client.registry.projects()

    def runs(
        self,
        group: str | None = None,
        orchestrator: str | None = None,
        job_type: str | None = None,
        project: str | None = None,
        limit: int | None = 100,
    ) -> list[RunRecord]:
        """Runs, newest first."""
        return self._client.registry.runs(
            entity=self.settings.entity,
            project=project,
            group=group,
            orchestrator=orchestrator,
            job_type=job_type,
            limit=limit,
        )

    def run(self, run_id: str) -> RunRecord:
        """One run by id."""
        return self._client.registry.run(run_id)

    def run_logged_artifacts(self, run_id: str) -> list[ArtifactVersion]:
        """Versions a run logged."""
        return self._run_edges(run_id, "logged")

    def run_used_artifacts(self, run_id: str) -> list[ArtifactVersion]:
        """Versions a run used."""
        return self._run_edges(run_id, "used")

    def _run_edges(self, run_id: str, kind: str) -> list[ArtifactVersion]:
        edges = [e for e in self._client.registry.edges(run_ids=[run_id]) if e.kind == kind]
        recs = {r.id: r for r in self._client.registry.versions_by_ids(e.version_id for e in edges)}
        return [ArtifactVersion(self._client, recs[e.version_id]) for e in edges if e.version_id in recs]

    def set_alias(
        self, ref: str, alias: str, expected: str | None = None, *, check: bool | None = None
    ) -> ArtifactVersion:
        """Point ``alias`` at the version ``ref`` resolves to.

        With ``expected`` (``"v6"``, or ``None`` together with ``check=True`` for "must not exist yet")
        this is a compare-and-swap: it fails with :class:`AliasConflictError` if the alias moved.
        """
        validate_alias(alias)
        version = self.artifact(ref)
        do_check = check if check is not None else expected is not None
        if expected is not None and not (expected.startswith("v") and expected[1:].isdigit()):
            raise InvalidInputError(f"expected={expected!r} must be a version such as 'v6'")
        run = current_run()
        move = self._client.registry.set_alias(
            version._record, alias, expected=expected, check=do_check, run_id=run.id if run else None
        )
        notify_alias_moves(self._client, version._record, [move] if move else [], run)
        return self.artifact(f"{version.entity}/{version.project}/{version.name}:{version.version}")

    def remove_alias(self, ref: str, alias: str, expected: str | None = None) -> None:
        """Remove ``alias`` from the collection of ``ref`` (compare-and-swap with ``expected``)."""
        validate_alias(alias)
        parsed = self._ref(ref)
        version = self.artifact(str(Ref(parsed.name, parsed.project, parsed.entity, alias=alias)))
        move = self._client.registry.remove_alias(
            version._record.collection_id,
            version._record.collection,
            alias,
            expected=expected,
            check=expected is not None,
        )
        notify_alias_moves(self._client, version._record, [move] if move else [], current_run())

    def alias_history(self, name: str, alias: str | None = None) -> list[AliasEventRecord]:
        """Every move of ``alias`` (or of all aliases) of collection ``name``."""
        versions = self.artifact_versions(None, name)
        if not versions:
            self.artifact(name)  # raises a not-found error naming the ref
        return versions[0].alias_history(alias)

    def alias_at(self, name: str, alias: str, at: datetime) -> ArtifactVersion | None:
        """The version ``alias`` pointed at, at time ``at`` ("what was production on 1 May")."""
        history = [e for e in self.alias_history(name, alias) if e.at <= at]
        if not history or history[-1].version is None:
            return None
        ref = parse_ref(name)
        return self.artifact(str(Ref(ref.name, ref.project, ref.entity, version=int(history[-1].version[1:]))))

    def lineage(
        self,
        ref: str | None = None,
        *,
        run_id: str | None = None,
        direction: str = "both",
        depth: int | None = None,
        collapse: str = "group",
    ) -> LineageGraph:
        """The lineage graph around a version (``ref``) or a run (``run_id``)."""
        if ref is None and run_id is None:
            raise InvalidInputError("lineage needs a version ref or a run_id")
        vids = [self.artifact(ref).id] if ref is not None else []
        rids = [self.run(run_id).id] if run_id is not None else []
        return build_lineage(self._client.registry, vids, rids, direction, depth, collapse)
