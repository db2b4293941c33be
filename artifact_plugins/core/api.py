"""``Api``: query and manage artifacts outside (or inside) a run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from .client import Client, get_client
from .config import Settings
from .diff import VersionDiff
from .errors import AliasedVersionError, ArtifactNotFoundError, InvalidAliasError, InvalidInputError
from .gc import DEFAULT_GRACE, GcReport, collect_garbage
from .lineage import LineageGraph, build_lineage
from .naming import Ref, parse_ref, validate_alias, validate_name
from .registry import AliasEventRecord, CollectionRecord, RunRecord
from .retention import Expiry, RetentionPolicy, expired_versions
from .run import current_run, notify_alias_moves
from .verify import VerifyReport
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
        self, ref: str, alias: str, expected: str | None = None, *, check: bool | None = None, force: bool = False
    ) -> ArtifactVersion:
        """Point ``alias`` at the version ``ref`` resolves to.

        With ``expected`` (``"v6"``, or ``None`` together with ``check=True`` for "must not exist yet")
        this is a compare-and-swap: it fails with :class:`AliasConflictError` if the alias moved.
        """
        _check_movable(alias)
        version = self.artifact(ref)
        do_check = check if check is not None else expected is not None
        if expected is not None and not (expected.startswith("v") and expected[1:].isdigit()):
            raise InvalidInputError(f"expected={expected!r} must be a version such as 'v6'")
        run = current_run()
        move = self._client.registry.set_alias(
            version._record, alias, expected=expected, check=do_check, force=force, run_id=run.id if run else None
        )
        notify_alias_moves(self._client, version._record, [move] if move else [], run)
        return self.artifact(f"{version.entity}/{version.project}/{version.name}:{version.version}")

    def remove_alias(self, ref: str, alias: str, expected: str | None = None, *, force: bool = False) -> None:
        """Remove ``alias`` from the collection of ``ref`` (compare-and-swap with ``expected``)."""
        _check_movable(alias)
        parsed = self._ref(ref)
        version = self.artifact(str(Ref(parsed.name, parsed.project, parsed.entity, alias=alias)))
        move = self._client.registry.remove_alias(
            version._record.collection_id,
            version._record.collection,
            alias,
            expected=expected,
            check=expected is not None,
            force=force,
        )
        notify_alias_moves(self._client, version._record, [move] if move else [], current_run())

    def alias_history(self, name: str, alias: str | None = None) -> list[AliasEventRecord]:
        """Every move of ``alias`` (or of all aliases) of collection ``name``."""
        if alias is not None:
            validate_alias(alias)
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

    # -- lifecycle -----------------------------------------------------------------------------

    def protect_alias(self, alias: str, project: str | None = None, *, protected: bool = True) -> None:
        """Protect ``alias`` (e.g. ``production``) in a project: moving or removing it then needs
        ``expected=`` (compare-and-swap) or ``force=True``."""
        validate_alias(alias)
        if alias == "latest":
            raise InvalidInputError("alias 'latest' cannot be protected: it always follows the newest version")
        self._client.registry.protect_alias(self.settings.entity, project or self.settings.project, alias, protected)

    def protected_aliases(self, project: str | None = None) -> list[str]:
        """The protected aliases of a project."""
        return self._client.registry.protected_aliases(self.settings.entity, project or self.settings.project)

    def diff(self, old: str, new: str) -> VersionDiff:
        """What changed from version ``old`` to version ``new``."""
        return self.artifact(new).diff(self.artifact(old))

    def verify(self, ref: str, root: str | None = None) -> VerifyReport:
        """Re-hash a version's stored blobs (or a download ``root``) and report mismatches."""
        return self.artifact(ref).verify(root)

    def verify_references(self, ref: str) -> dict[str, str]:
        """Drift of every reference entry of a version (``unchanged``, ``changed`` or ``missing``),
        checked against the live objects without downloading them."""
        from .references import verify_references

        return dict(verify_references(self.artifact(ref)))

    def set_retention(self, name: str, *, keep_last: int | None = None, keep_within: timedelta | None = None) -> None:
        """Set a collection's retention policy (both ``None`` clears it). Aliased versions always stay."""
        if keep_last is not None and (not isinstance(keep_last, int) or keep_last < 1):
            raise InvalidInputError(f"invalid keep_last={keep_last!r}: must be a positive integer")
        if keep_within is not None and keep_within.total_seconds() <= 0:
            raise InvalidInputError(f"invalid keep_within={keep_within}: must be positive")
        versions = self.artifact_versions(None, name)
        if not versions:
            self.artifact(name)  # raises a not-found error naming the collection
        seconds = int(keep_within.total_seconds()) if keep_within is not None else None
        self._client.registry.set_retention(versions[0]._record.collection_id, keep_last, seconds)

    def retention_plan(self, project: str | None = None) -> list[Expiry]:
        """Versions that retention policies and TTLs would delete now (every project with ``"*"``)."""
        policies = self._client.registry.retention_policies()
        out: list[Expiry] = []
        now = datetime.now(UTC)
        for coll in self.artifact_collections(project or "*"):
            keep = policies.get(coll.id)
            policy = RetentionPolicy(keep[0], timedelta(seconds=keep[1]) if keep[1] else None) if keep else None
            records = self._client.registry.versions(coll.entity, coll.project, coll.name)
            out += expired_versions(records, policy, now)
        return out

    def apply_retention(self, project: str | None = None, *, dry_run: bool = False) -> list[Expiry]:
        """Soft-delete what :meth:`retention_plan` lists (storage is freed later by :meth:`gc`)."""
        plan = self.retention_plan(project)
        if not dry_run:
            for expiry in plan:
                try:
                    self._client.registry.delete_version(expiry.version, delete_aliases=False)
                except AliasedVersionError:
                    continue  # gained an alias since the plan was made: it stays
        return plan

    def gc(self, *, dry_run: bool = True, grace: timedelta = DEFAULT_GRACE) -> GcReport:
        """Mark-and-sweep the store: delete blobs and manifests no committed version references,
        never touching anything younger than ``grace``."""
        return collect_garbage(self._client, dry_run=dry_run, grace=grace)


def _check_movable(alias: str) -> None:
    validate_alias(alias)
    if alias == "latest":
        raise InvalidAliasError("alias 'latest' is managed: it always points at the newest version and cannot be moved")
