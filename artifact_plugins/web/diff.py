"""The diff view's JSON: the core's manifest diff (added, removed, modified, renamed, references
changed) shaped for the page, with list limits, and the metadata changes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..core.diff import Change, diff_manifests
from ..core.manifest import Manifest

KINDS = ("added", "removed", "modified", "renamed", "references_changed")


def _file(c: Change, side: Manifest) -> dict[str, Any]:
    entry = side.get(c.path)
    return {
        "path": c.path,
        "digest": c.new_digest or c.old_digest or "",
        "size": c.new_size if c.new_size is not None else (c.old_size or 0),
        "ref": entry.ref if entry is not None else None,
    }


def _changed(c: Change) -> dict[str, Any]:
    return {
        "path": c.path,
        "old_digest": c.old_digest or "",
        "new_digest": c.new_digest or "",
        "old_size": c.old_size or 0,
        "new_size": c.new_size or 0,
    }


def diff_versions(old: Manifest, new: Manifest, limit: int | None = None) -> dict[str, Any]:
    """Compare two manifests with :func:`artifact_plugins.core.diff.diff_manifests`.

    Each list holds at most ``limit`` items, sorted by path; ``summary`` always has the full counts
    (and the bytes added and removed).
    """
    d = diff_manifests(old, new)
    lists: dict[str, list[dict[str, Any]]] = {
        "added": [_file(c, new) for c in d.added],
        "removed": [_file(c, old) for c in d.removed],
        "modified": [_changed(c) for c in d.modified],
        "renamed": [
            {"old_path": c.old_path or "", "new_path": c.path, "digest": c.new_digest or "", "size": c.new_size or 0}
            for c in sorted(d.renamed, key=lambda c: c.path)
        ],
        "references_changed": [_changed(c) for c in d.references_changed],
    }
    summary = {k: len(v) for k, v in lists.items()}
    summary.update(
        unchanged=d.unchanged,
        added_bytes=sum(f["size"] for f in lists["added"]),
        removed_bytes=sum(f["size"] for f in lists["removed"]),
    )
    truncated = limit is not None and any(len(v) > limit for v in lists.values())
    if limit is not None:
        lists = {k: v[:limit] for k, v in lists.items()}
    return {"summary": summary, **lists, "truncated": truncated}


def diff_metadata(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """Top-level metadata keys added, removed and changed (with both values)."""
    return {
        "added": {k: new[k] for k in sorted(new) if k not in old},
        "removed": {k: old[k] for k in sorted(old) if k not in new},
        "changed": {k: {"old": old[k], "new": new[k]} for k in sorted(new) if k in old and old[k] != new[k]},
    }
