"""ArtifactVersion (a committed version) and Entry (one of its files)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ConflictError, EntryNotFoundError, InvalidAliasError, InvalidMetadataError
from .manifest import ManifestEntry
from .metadata import validate_description, validate_metadata
from .naming import LATEST, name_list, normalize_entry_path, validate_alias, validate_name
from .registry import RunRecord, VersionRecord
from .table import PARTITIONED_SUFFIX, TABLE_SUFFIX

if TYPE_CHECKING:
    from .artifact import Artifact
    from .client import Client
    from .diff import VersionDiff
    from .lineage import LineageGraph
    from .run import Run
    from .verify import VerifyReport


def default_root(version: VersionRecord) -> Path:
    """``./artifacts/<name>-v<N>`` (``-`` rather than ``:`` so the path is valid everywhere)."""
    return Path("artifacts") / f"{version.name}-v{version.index}"


@dataclass(frozen=True)
class Entry:
    """One file of a committed version; ``download()`` fetches just this file."""

    version: ArtifactVersion
    entry: ManifestEntry

    @property
    def path(self) -> str:
        """The entry's path inside the artifact."""
        return self.entry.path

    @property
    def digest(self) -> str:
        """``blake3:<hex>`` of the content."""
        return self.entry.digest

    @property
    def size(self) -> int:
        """Bytes."""
        return self.entry.size

    @property
    def ref(self) -> str | None:
        """The URI for reference entries, else ``None``."""
        return self.entry.ref

    def download(self, root: str | os.PathLike[str] | None = None, verify: bool = False) -> Path:
        """Fetch this file under ``root`` (default: the version's download root) and return its path.

        ``verify`` re-hashes what was written against the manifest, as ``ArtifactVersion.download`` does.
        """
        from .transfer import materialize

        base = Path(root) if root is not None else default_root(self.version._record)
        label = f"{self.version.qualified_name}/{self.path}"
        materialize(self.version._client, [self.entry], base, label, verify=verify)
        return base / self.entry.path


class ArtifactVersion:
    """A committed, immutable version. Description, metadata, aliases and tags are editable via :meth:`save`."""

    def __init__(self, client: Client, record: VersionRecord, run: Run | None = None) -> None:
        self._client = client
        self._record = record
        self._run = run
        self.description: str | None = record.description
        self.metadata: dict[str, Any] = dict(record.metadata)
        self.aliases: list[str] = list(record.aliases)
        self.tags: list[str] = list(record.tags)
        self.ttl: timedelta | None = timedelta(seconds=record.ttl_seconds) if record.ttl_seconds else None

    def __repr__(self) -> str:
        return f"<ArtifactVersion {self.qualified_name} {self.digest[:19]}… aliases={self.aliases}>"

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, ArtifactVersion)
            and other._record.id == self._record.id
            and (other._client.settings.registry == self._client.settings.registry)
        )

    def __hash__(self) -> int:
        return hash((self._record.id, self._client.settings.registry))

    # -- identity ---------------------------------------------------------------------------------

    @property
    def id(self) -> int:
        """Registry id."""
        return self._record.id

    @property
    def name(self) -> str:
        """Collection name, e.g. ``bike-dataset``."""
        return self._record.name

    @property
    def entity(self) -> str:
        """Entity."""
        return self._record.entity

    @property
    def project(self) -> str:
        """Project."""
        return self._record.project

    @property
    def type(self) -> str:
        """Artifact type, e.g. ``dataset``."""
        return self._record.type

    @property
    def version(self) -> str:
        """``v<index>``."""
        return self._record.version

    @property
    def version_index(self) -> int:
        """The version number."""
        return self._record.index

    @property
    def qualified_name(self) -> str:
        """``entity/project/name:vN``."""
        return f"{self._record.collection}:{self.version}"

    @property
    def digest(self) -> str:
        """Content digest ``blake3:<hex>``."""
        return self._record.digest

    @property
    def size(self) -> int:
        """Total bytes, references included."""
        return self._record.size

    @property
    def file_count(self) -> int:
        """Number of entries."""
        return self._record.file_count

    @property
    def created_at(self) -> datetime:
        """Commit time (UTC)."""
        return self._record.created_at

    @property
    def state(self) -> str:
        """``committed`` or ``deleted``."""
        return self._record.state

    # -- content ----------------------------------------------------------------------------------

    def manifest(self) -> dict[str, ManifestEntry]:
        """Entries keyed by path."""
        return self._client.manifest(self._record).entries

    def files(self, path_prefix: str | None = None) -> list[Entry]:
        """Entries, optionally only those under ``path_prefix``."""
        return [Entry(self, e) for e in self._select(path_prefix)]

    def _select(self, path_prefix: str | None) -> list[ManifestEntry]:
        """Every entry, or those whose path starts with ``path_prefix`` (a plain string prefix, as in
        W&B: ``"images"`` also selects ``images2/``; a leading ``./`` is ignored). A prefix that selects
        nothing is an error: a mistyped prefix would otherwise download nothing, quietly."""
        entries = list(self._client.manifest(self._record))
        if not path_prefix:
            return entries
        prefix = path_prefix
        while prefix.startswith("./"):
            prefix = prefix[2:]
        selected = [e for e in entries if e.path.startswith(prefix)]
        if not selected and entries:
            sample = ", ".join(sorted({e.path.split("/", 1)[0] for e in entries})[:5])
            raise EntryNotFoundError(
                f"{self.qualified_name} has no entry whose path starts with {path_prefix!r}; "
                f"its paths start with: {sample}"
            )
        return selected

    def get_entry(self, name: str) -> Entry:
        """The entry at ``name`` (``my_table`` also finds ``my_table.table.json``)."""
        manifest = self._client.manifest(self._record)
        path = normalize_entry_path(name)
        found = manifest.get(path) or manifest.get(path + TABLE_SUFFIX)
        if found is None:
            sample = ", ".join(sorted(manifest.entries)[:5])
            raise EntryNotFoundError(f"{self.qualified_name} has no entry {name!r}; entries include: {sample}")
        return Entry(self, found)

    get_path = get_entry

    def download(
        self, root: str | os.PathLike[str] | None = None, path_prefix: str | None = None, verify: bool = False
    ) -> Path:
        """Materialise the version (or the entries under ``path_prefix``) under ``root`` and return ``root``.

        Files already under ``root`` that the version lacks are left alone. The default root is
        the exception: a whole-version download refuses one that holds such files, hidden ones
        aside (most likely a same-named version of another project, or of a registry, downloaded
        there before), since it would not then be this version; nothing is written. Pass
        ``root``, or remove the directory.
        """
        from .transfer import download_tree, stray_files

        entries = self._select(path_prefix)
        base = Path(root) if root is not None else default_root(self._record)
        strays = stray_files(base, entries) if root is None and path_prefix is None else []
        if strays:
            raise ConflictError(
                f"cannot download {self.qualified_name} into its default root {str(base)!r}: it holds "
                f"files the version does not have ({', '.join(map(repr, strays))}), so it is not this "
                "version; pass root= to download elsewhere, or remove the directory"
            )
        download_tree(self._client, entries, base, self.qualified_name, verify=verify)
        if not self._client.store.is_local:
            self._client.download_cache.evict()
        return base

    def get(self, name: str) -> Any:
        """Load a stored :class:`~artifact_plugins.Table` or :class:`~artifact_plugins.PartitionedTable`."""
        from .table import PartitionedTable, Table

        manifest = self._client.manifest(self._record)
        path = normalize_entry_path(name)
        partitioned = manifest.get(path) or manifest.get(path + PARTITIONED_SUFFIX)
        if partitioned is not None and partitioned.path.endswith(PARTITIONED_SUFFIX):
            local = Entry(self, partitioned).download()
            parts_path = json.loads(local.read_text("utf-8"))["parts_path"].rstrip("/") + "/"
            part_entries = sorted(
                (e for e in self.files(parts_path) if e.path.endswith(TABLE_SUFFIX)), key=lambda e: e.path
            )
            return PartitionedTable.load(local, [Table.load(e.download()) for e in part_entries])
        return Table.load(self.get_entry(name).download())

    # -- lineage ----------------------------------------------------------------------------------

    def logged_by(self) -> RunRecord | None:
        """The run that first committed this version."""
        rid = self._record.created_by
        return self._client.registry.run(rid) if rid else None

    def used_by(self) -> list[RunRecord]:
        """Runs that used this version, oldest first."""
        edges = [e for e in self._client.registry.edges(version_ids=[self.id]) if e.kind == "used"]
        runs = {r.id: r for r in self._client.registry.runs(ids=[e.run_id for e in edges])}
        return [runs[e.run_id] for e in edges if e.run_id in runs]

    def lineage(self, direction: str = "both", depth: int | None = None, collapse: str = "group") -> LineageGraph:
        """The lineage graph around this version."""
        from .lineage import build_lineage

        return build_lineage(self._client.registry, [self.id], [], direction, depth, collapse)

    def alias_history(self, alias: str | None = None) -> list[Any]:
        """Every move of ``alias`` (or of all aliases) in this version's collection."""
        return self._client.registry.alias_history(self._record.collection_id, alias)

    # -- editing ----------------------------------------------------------------------------------

    def save(self) -> ArtifactVersion:
        """Persist changes to ``description``, ``metadata``, ``aliases`` and ``tags``."""
        description = validate_description(self.description)
        metadata = validate_metadata(self.metadata)
        aliases = [a for a in dict.fromkeys(name_list(self.aliases)) if a == LATEST or validate_alias(a)]
        tags = [validate_name(t, "tag") for t in dict.fromkeys(name_list(self.tags))]
        if LATEST in aliases and LATEST not in self._record.aliases:  # (dropping it keeps it: it is managed)
            raise InvalidAliasError(
                f"alias 'latest' cannot be added to {self.qualified_name}: it always points at the newest "
                "version and moves by itself"
            )
        if self.ttl is not None and self.ttl.total_seconds() <= 0:
            raise InvalidMetadataError(f"ttl {self.ttl} must be positive (or None for no expiry)")
        record, moves = self._client.registry.update_version(
            self._record,
            description=description,
            metadata=metadata,
            aliases=aliases,
            tags=tags,
            run_id=self._run.id if self._run else None,
            ttl_seconds=int(self.ttl.total_seconds()) if self.ttl is not None else None,
        )
        self._refresh(record)
        from .run import notify_alias_moves

        notify_alias_moves(self._client, self._record, moves)
        return self

    def _refresh(self, record: VersionRecord) -> None:
        self._record = record
        self.description = record.description
        self.metadata = dict(record.metadata)
        self.aliases = list(record.aliases)
        self.tags = list(record.tags)
        self.ttl = timedelta(seconds=record.ttl_seconds) if record.ttl_seconds else None

    def delete(self, delete_aliases: bool = False) -> None:
        """Soft-delete this version (refused while it has aliases unless ``delete_aliases``); gc frees its bytes."""
        self._client.registry.delete_version(self._record, delete_aliases)
        self._refresh(self._client.registry.version(self.id))

    def diff(self, other: ArtifactVersion | str) -> VersionDiff:
        """What changed from ``other`` (a version or a ref, e.g. ``"bike-dataset:v2"``) to this version."""
        from .diff import diff_manifests

        if isinstance(other, str):
            from .api import Api

            other = Api(settings=self._client.settings).artifact(other)
        return diff_manifests(
            other._client.manifest(other._record),
            self._client.manifest(self._record),
            other.qualified_name,
            self.qualified_name,
        )

    def verify(self, root: str | os.PathLike[str] | None = None) -> VerifyReport:
        """Re-hash a download root (``root``) or, without one, the stored blobs; report every mismatch."""
        from .verify import verify_root, verify_store

        manifest = self._client.manifest(self._record)
        if root is not None:
            return verify_root(manifest, Path(root), self.qualified_name, self._client.checksum_cache)
        return verify_store(self._client, manifest, self.qualified_name)

    def new_draft(self) -> Artifact:
        """A draft pre-filled with this version's entries; log it to make an incremental version."""
        from .artifact import Artifact, PendingEntry

        draft = Artifact(self.name, self.type, self.description, self.metadata)
        held = draft._hold(self._client.scope, self.digest)
        for e in self._client.manifest(self._record):
            draft._add_pending(PendingEntry(e, held=held))
        draft.base = self
        return draft

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly summary."""
        return {
            "qualified_name": self.qualified_name,
            "name": self.name,
            "entity": self.entity,
            "project": self.project,
            "type": self.type,
            "version": self.version,
            "version_index": self.version_index,
            "digest": self.digest,
            "size": self.size,
            "file_count": self.file_count,
            "aliases": self.aliases,
            "tags": self.tags,
            "description": self.description,
            "metadata": self.metadata,
            "created_at": self.created_at.isoformat(),
            "ttl_seconds": int(self.ttl.total_seconds()) if self.ttl else None,
            "state": self.state,
        }
