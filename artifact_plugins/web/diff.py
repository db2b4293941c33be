"""What changed between two versions of a collection: files added, removed, modified, renamed; metadata."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..core.manifest import ManifestEntry


def _file(e: ManifestEntry) -> dict[str, Any]:
    out: dict[str, Any] = {"path": e.path, "digest": e.digest, "size": e.size}
    if e.ref is not None:
        out["ref"] = e.ref
    return out


def diff_entries(
    old: Mapping[str, ManifestEntry], new: Mapping[str, ManifestEntry], limit: int | None = None
) -> dict[str, Any]:
    """Compare two manifests (entries keyed by path).

    A path only in ``new`` is *added*, only in ``old`` *removed*, in both with another digest
    *modified*. A removed and an added path with the same content digest are paired as one
    *rename* (several of the same digest pair up in path order). Each list holds at most
    ``limit`` items, sorted by path; ``summary`` always has the full counts.
    """
    added_paths = sorted(p for p in new if p not in old)
    removed_paths = sorted(p for p in old if p not in new)
    modified = [
        {
            "path": p,
            "old_digest": old[p].digest,
            "new_digest": new[p].digest,
            "old_size": old[p].size,
            "new_size": new[p].size,
        }
        for p in sorted(p for p in new if p in old and old[p].digest != new[p].digest)
    ]
    unchanged = sum(1 for p in new if p in old and old[p].digest == new[p].digest)
    removed_by_digest: dict[str, list[str]] = {}
    for p in removed_paths:
        removed_by_digest.setdefault(old[p].digest, []).append(p)
    renamed: list[dict[str, Any]] = []
    renamed_old: set[str] = set()
    renamed_new: set[str] = set()
    for p in added_paths:
        candidates = removed_by_digest.get(new[p].digest)
        if candidates:
            src = candidates.pop(0)
            renamed.append({"old_path": src, "new_path": p, "digest": new[p].digest, "size": new[p].size})
            renamed_old.add(src)
            renamed_new.add(p)
    added = [_file(new[p]) for p in added_paths if p not in renamed_new]
    removed = [_file(old[p]) for p in removed_paths if p not in renamed_old]
    summary = {
        "added": len(added),
        "removed": len(removed),
        "modified": len(modified),
        "renamed": len(renamed),
        "unchanged": unchanged,
        "added_bytes": sum(f["size"] for f in added),
        "removed_bytes": sum(f["size"] for f in removed),
    }
    lists = {"added": added, "removed": removed, "modified": modified, "renamed": renamed}
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
