"""The read model behind the web app: registry queries shaped as JSON-ready dicts.

Everything here is read-only and built on the core (``Registry`` reads, manifests, the blob
store). Queries are batched: a list of runs with what each logged and used costs two or three
round trips whatever its length.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..core.api import Api
from ..core.client import Client, get_client
from ..core.config import Settings
from ..core.errors import ArtifactNotFoundError, EntryNotFoundError, InvalidInputError, NotFoundError, StoreError
from ..core.manifest import Manifest, ManifestEntry
from ..core.naming import parse_ref, validate_name
from ..core.registry import CollectionRecord, EdgeRecord, Registry, RunRecord, VersionRecord
from ..core.storage import blob_key
from .diff import diff_metadata, diff_versions

MAX_LIMIT = 1000
"""Largest page any list endpoint returns."""

SAFE_URL_SCHEMES = ("http://", "https://")


def iso(value: datetime | None) -> str | None:
    """ISO 8601 text of a datetime (``None`` stays ``None``)."""
    return value.isoformat() if value is not None else None


def safe_url(url: str | None) -> str | None:
    """``url`` if it is an http(s) URL, else ``None`` (never hand a ``javascript:`` link to a page)."""
    if url and url.lower().startswith(SAFE_URL_SCHEMES):
        return url
    return None


def version_path(entity: str, project: str, name: str, version: str) -> str:
    """The app-relative path of a version page, e.g. ``versions/acme/bikes/bike-dataset/v3``."""
    return "versions/" + "/".join(quote(p, safe="") for p in (entity, project, name, version))


def _clamp(limit: int | None, default: int = 100) -> int:
    if limit is None:
        return default
    if limit < 1:
        raise InvalidInputError(f"invalid limit {limit!r}: must be at least 1")
    return min(limit, MAX_LIMIT)


def run_summary(r: RunRecord) -> dict[str, Any]:
    """The JSON form of a run (without what it logged or used)."""
    return {
        "id": r.id,
        "name": r.name,
        "job_type": r.job_type,
        "orchestrator": r.orchestrator,
        "group": r.group,
        "entity": r.entity,
        "project": r.project,
        "status": r.status,
        "url": safe_url(r.url),
        "group_url": safe_url(r.group_url),
        "step": dict(r.step),
        "started_at": iso(r.started_at),
        "finished_at": iso(r.finished_at),
    }


def version_summary(v: VersionRecord) -> dict[str, Any]:
    """The JSON form of a version in lists (no metadata)."""
    return {
        "qualified_name": f"{v.collection}:{v.version}",
        "entity": v.entity,
        "project": v.project,
        "name": v.name,
        "type": v.type,
        "version": v.version,
        "version_index": v.index,
        "digest": v.digest,
        "size": v.size,
        "file_count": v.file_count,
        "aliases": list(v.aliases),
        "tags": list(v.tags),
        "state": v.state,
        "description": v.description,
        "created_at": iso(v.created_at),
        "created_by": v.created_by,
        "page": version_path(v.entity, v.project, v.name, v.version),
    }


def collection_summary(c: CollectionRecord) -> dict[str, Any]:
    """The JSON form of a collection."""
    return {
        "entity": c.entity,
        "project": c.project,
        "name": c.name,
        "type": c.type,
        "description": c.description,
        "version_count": c.version_count,
        "latest_version": f"v{c.latest_index}" if c.latest_index is not None else None,
        "created_at": iso(c.created_at),
    }


@dataclass
class _Tree:
    """Directory index of one manifest: sub-directories (with file counts and bytes) and files per directory."""

    dirs: dict[str, dict[str, list[int]]] = field(default_factory=dict)
    files: dict[str, list[ManifestEntry]] = field(default_factory=dict)

    @classmethod
    def build(cls, manifest: Manifest) -> _Tree:
        tree = cls()
        for e in sorted(manifest, key=lambda e: e.path):
            parts = e.path.split("/")
            tree.files.setdefault("/".join(parts[:-1]), []).append(e)
            for k in range(len(parts) - 1):
                parent = "/".join(parts[:k])
                stats = tree.dirs.setdefault(parent, {}).setdefault(parts[k], [0, 0])
                stats[0] += 1
                stats[1] += e.size
        return tree


class Catalog:
    """Read-only queries of one registry and store, shaped for the web app."""

    def __init__(self, settings: Settings | None = None) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._trees: OrderedDict[str, _Tree] = OrderedDict()

    # -- plumbing ------------------------------------------------------------------------------

    @property
    def settings(self) -> Settings:
        """The configuration (resolved from the environment on first use when none was given)."""
        if self._settings is None:
            with self._lock:
                if self._settings is None:
                    self._settings = Settings.resolve()
        return self._settings

    @property
    def client(self) -> Client:
        """The core client of this process (a fresh one after ``fork``)."""
        return get_client(self.settings)

    @property
    def registry(self) -> Registry:
        """The metadata registry."""
        return self.client.registry

    def resolve(self, entity: str, project: str, name: str, version: str) -> VersionRecord:
        """The committed version ``version`` (``v3``, an alias, or ``blake3:<hex>``) of a collection."""
        selector = "@" + version.lstrip("@") if version.lstrip("@").startswith("blake3:") else ":" + version
        ref = parse_ref(f"{entity}/{project}/{name}{selector}")
        return self.registry.resolve(ref, entity, project)

    def _version_refs(self, edges: Iterable[EdgeRecord]) -> dict[int, dict[str, Any]]:
        ids = {e.version_id for e in edges}
        return {v.id: version_summary(v) for v in self.registry.versions_by_ids(ids)} if ids else {}

    # -- projects and collections ---------------------------------------------------------------

    def projects(self) -> list[dict[str, Any]]:
        """Every project with its collection and version counts per artifact type."""
        pairs = self.registry.projects()
        out: dict[tuple[str, str], dict[str, Any]] = {
            (e, p): {"entity": e, "project": p, "collection_count": 0, "version_count": 0, "types": {}}
            for e, p in sorted(pairs)
        }
        for entity in sorted({e for e, _ in pairs}):
            for c in self.registry.collections(entity, None, None):
                proj = out.get((c.entity, c.project))
                if proj is None:
                    continue
                proj["collection_count"] += 1
                proj["version_count"] += c.version_count
                t = proj["types"].setdefault(c.type, {"type": c.type, "collection_count": 0, "version_count": 0})
                t["collection_count"] += 1
                t["version_count"] += c.version_count
        for proj in out.values():
            proj["types"] = sorted(proj["types"].values(), key=lambda t: t["type"])
        return list(out.values())

    def _require_project(self, entity: str, project: str) -> None:
        validate_name(entity, "entity")
        validate_name(project, "project")
        pairs = self.registry.projects()
        if (entity, project) not in pairs:
            known = ", ".join(f"{e}/{p}" for e, p in pairs[:10]) or "none"
            raise ArtifactNotFoundError(f"project {entity}/{project} not found; projects: {known}")

    def collections(self, entity: str, project: str, type: str | None = None) -> list[dict[str, Any]]:
        """Collections of a project, optionally of one artifact type."""
        self._require_project(entity, project)
        if type is not None:
            validate_name(type, "artifact type")
        return [collection_summary(c) for c in self.registry.collections(entity, project, type)]

    def collection(
        self, entity: str, project: str, name: str, limit: int | None = 100, offset: int = 0
    ) -> dict[str, Any]:
        """A collection, its current aliases and one page of its versions (newest first)."""
        self._require_project(entity, project)
        validate_name(name, "artifact name")
        if offset < 0:
            raise InvalidInputError(f"invalid offset {offset!r}: must not be negative")
        found = self.registry.collection(entity, project, name)
        if found is None:
            names = [c.name for c in self.registry.collections(entity, project, None)]
            hint = ", ".join(sorted(names)[:10]) or "none"
            raise ArtifactNotFoundError(f"collection {entity}/{project}/{name} not found; collections: {hint}")
        page = self.registry.versions(entity, project, name, limit=_clamp(limit), offset=offset, newest_first=True)
        aliases = self.registry.collection_aliases(found.id)
        producers = {v.created_by for v in page if v.created_by}
        runs = self.registry.runs(ids=producers) if producers else []
        return {
            **collection_summary(found),
            "aliases": aliases,
            "offset": offset,
            "versions": [version_summary(v) for v in page],
            "runs": {r.id: run_summary(r) for r in runs},
        }

    # -- versions --------------------------------------------------------------------------------

    def version(self, entity: str, project: str, name: str, version: str) -> dict[str, Any]:
        """One version: identity, aliases (and their history), metadata, description, runs."""
        rec = self.resolve(entity, project, name, version)
        reg = self.registry
        edges = reg.edges(version_ids=[rec.id])
        run_ids = {e.run_id for e in edges} | ({rec.created_by} if rec.created_by else set())
        runs = {r.id: r for r in reg.runs(ids=run_ids)} if run_ids else {}
        producer = runs.get(rec.created_by) if rec.created_by else None
        logged_by = [runs[e.run_id] for e in edges if e.kind == "logged" and e.run_id in runs]
        used_by = [runs[e.run_id] for e in edges if e.kind == "used" and e.run_id in runs]
        history = [
            {"alias": h.alias, "version": h.version, "previous": h.previous, "at": iso(h.at), "run_id": h.run_id}
            for h in reg.alias_history(rec.collection_id, version_id=rec.id)
        ]
        history.reverse()
        collection = reg.collection(rec.entity, rec.project, rec.name)
        return {
            **version_summary(rec),
            "metadata": dict(rec.metadata),
            "ttl_seconds": rec.ttl_seconds,
            "manifest_key": rec.manifest_key,
            "collection": collection_summary(collection) if collection else None,
            "logged_by": run_summary(producer) if producer else None,
            "logged_by_runs": [run_summary(r) for r in logged_by],
            "used_by": [run_summary(r) for r in used_by],
            "alias_history": history,
        }

    def _manifest(self, rec: VersionRecord) -> Manifest:
        try:
            return self.client.manifest(rec)
        except StoreError as exc:
            raise NotFoundError(f"the manifest of {rec.collection}:{rec.version} cannot be read: {exc}") from None

    def _tree(self, rec: VersionRecord) -> _Tree:
        with self._lock:
            tree = self._trees.get(rec.digest)
            if tree is not None:
                self._trees.move_to_end(rec.digest)
                return tree
        tree = _Tree.build(self._manifest(rec))
        with self._lock:
            self._trees[rec.digest] = tree
            while len(self._trees) > 16:
                self._trees.popitem(last=False)
        return tree

    def files(
        self,
        entity: str,
        project: str,
        name: str,
        version: str,
        path: str = "",
        limit: int | None = 500,
        offset: int = 0,
    ) -> dict[str, Any]:
        """One directory of a version's manifest: sub-directories and (a page of) files."""
        rec = self.resolve(entity, project, name, version)
        tree = self._tree(rec)
        path = path.strip("/")
        if path and path not in tree.dirs and path not in tree.files:
            raise EntryNotFoundError(f"{rec.collection}:{rec.version} has no directory {path!r}")
        files = tree.files.get(path, [])
        n = _clamp(limit, 500)
        base = version_path(rec.entity, rec.project, rec.name, rec.version)
        return {
            "qualified_name": f"{rec.collection}:{rec.version}",
            "path": path,
            "parent": path.rpartition("/")[0] if path else None,
            "dirs": [
                {"name": d, "path": f"{path}/{d}" if path else d, "file_count": s[0], "size": s[1]}
                for d, s in sorted(tree.dirs.get(path, {}).items())
            ],
            "files": [
                {
                    "name": e.path.rpartition("/")[2],
                    "path": e.path,
                    "size": e.size,
                    "digest": e.digest,
                    "ref": e.ref,
                    "download": None if e.ref is not None else "api/" + base + "/download/" + quote(e.path),
                }
                for e in files[offset : offset + n]
            ],
            "file_total": len(files),
            "offset": offset,
            "total_files": rec.file_count,
            "total_size": rec.size,
        }

    def blob_path(self, entity: str, project: str, name: str, version: str, path: str) -> tuple[Path, ManifestEntry]:
        """A local file holding the bytes of one entry (the store's own file, or the verified download cache)."""
        rec = self.resolve(entity, project, name, version)
        entry = self._manifest(rec).get(path)
        if entry is None:
            raise EntryNotFoundError(f"{rec.collection}:{rec.version} has no file {path!r}")
        if entry.ref is not None:
            raise InvalidInputError(
                f"{path!r} of {rec.collection}:{rec.version} is a reference to {entry.ref}; "
                "its bytes are not held by the artifact store"
            )
        store = self.client.store
        key = blob_key(entry.digest)
        local = store.local_path(key) if store.is_local else None
        if local is not None:
            if not os.path.isfile(local):
                raise NotFoundError(f"the bytes of {path!r} ({entry.digest}) are missing from the store")
            return Path(local), entry
        cached = self.client.download_cache.fetch(entry.digest, lambda tmp: store.get_file(key, tmp))
        return cached, entry

    # -- runs ---------------------------------------------------------------------------------------

    def runs(
        self,
        *,
        entity: str | None = None,
        project: str | None = None,
        group: str | None = None,
        orchestrator: str | None = None,
        job_type: str | None = None,
        task_id: str | None = None,
        map_index: int | None = None,
        limit: int | None = 100,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        """Runs matching every filter, newest first, each with the versions it logged and used."""
        if offset < 0:
            raise InvalidInputError(f"invalid offset {offset!r}: must not be negative")
        n = _clamp(limit)
        filtered = task_id is not None
        records = self.registry.runs(
            entity=entity,
            project=project,
            group=group,
            orchestrator=orchestrator,
            job_type=job_type,
            limit=None if filtered else offset + n,
        )
        if task_id is not None:
            records = [r for r in records if r.step.get("task_id") == task_id]
            if map_index is not None and map_index >= 0:
                records = [r for r in records if r.step.get("map_index") == map_index]
        records = records[offset : offset + n]
        return self._with_edges(records)

    def _with_edges(self, records: list[RunRecord]) -> list[dict[str, Any]]:
        edges = self.registry.edges(run_ids=[r.id for r in records]) if records else []
        refs = self._version_refs(edges)
        out = []
        for r in records:
            mine = [e for e in edges if e.run_id == r.id and e.version_id in refs]
            out.append(
                {
                    **run_summary(r),
                    "logged": [refs[e.version_id] for e in mine if e.kind == "logged"],
                    "used": [refs[e.version_id] for e in mine if e.kind == "used"],
                }
            )
        return out

    def run(self, run_id: str) -> dict[str, Any]:
        """One run with what it logged and used and the other runs of its group."""
        rec = self.registry.run(run_id)
        (out,) = self._with_edges([rec])
        siblings = self.registry.runs(group=rec.group, limit=MAX_LIMIT) if rec.group else []
        out["group_runs"] = [run_summary(r) for r in reversed(siblings) if r.id != rec.id]
        return out

    # -- lineage and diff ----------------------------------------------------------------------------

    def lineage(
        self,
        *,
        ref: str | None = None,
        run_id: str | None = None,
        direction: str = "both",
        depth: int | None = None,
        collapse: str = "type",
    ) -> dict[str, Any]:
        """The lineage graph around a version (``ref``) or a run, with display hints on collapsed nodes."""
        if (ref is None) == (run_id is None):
            raise InvalidInputError("lineage needs exactly one of ref= (a version) or run= (a run id)")
        api = Api(settings=self.settings)
        graph = api.lineage(ref, run_id=run_id, direction=direction, depth=depth, collapse=collapse).to_dict()
        if graph["collapse"] == "group":
            self._describe_groups(graph["nodes"])
        for node in graph["nodes"]:
            data = node["data"]
            if "url" in data:
                data["url"] = safe_url(data["url"])
        graph.update(direction=direction, depth=depth)
        return graph

    def _describe_groups(self, nodes: list[dict[str, Any]]) -> None:
        """Give merged group nodes a title (flow/DAG), a subtitle (its run) and their run count and status."""
        groups = {n["data"]["group"]: n for n in nodes if n["kind"] == "run" and n["id"].startswith("g:")}
        if not groups:
            return
        members = self.registry.group_run_ids(groups)
        ids = [rid for rids in members.values() for rid in rids]
        by_group: dict[str, list[RunRecord]] = {}
        for r in self.registry.runs(ids=ids) if ids else []:
            if r.group is not None:
                by_group.setdefault(r.group, []).append(r)
        for g, node in groups.items():
            runs = by_group.get(g, [])
            step = runs[0].step if runs else {}
            title = step.get("flow_name") or step.get("dag_id") or node["data"].get("job_type") or g
            subtitle = step.get("flow_run_name") or step.get("run_id") or g
            statuses = {r.status for r in runs}
            status = next((s for s in ("failed", "crashed", "running") if s in statuses), None)
            node["data"].update(
                title=str(title),
                subtitle=str(subtitle),
                runs=len(runs),
                job_types=sorted({r.job_type for r in runs}),
                status=status or (runs[0].status if runs else None),
            )

    def diff(
        self, entity: str, project: str, name: str, old: str, new: str, limit: int | None = 1000
    ) -> dict[str, Any]:
        """Files added, removed, modified, renamed (and references changed) from ``old`` to ``new``, and
        metadata changes."""
        a = self.resolve(entity, project, name, old)
        b = self.resolve(entity, project, name, new)
        changes = diff_versions(self._manifest(a), self._manifest(b), _clamp(limit, 1000))
        return {
            "old": version_summary(a),
            "new": version_summary(b),
            **changes,
            "metadata": diff_metadata(a.metadata, b.metadata),
            "description_changed": a.description != b.description,
            "same_content": a.digest == b.digest,
        }
