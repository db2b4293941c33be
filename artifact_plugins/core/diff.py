"""Differences between two versions' manifests: added, removed, modified, renamed, references moved."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .manifest import Manifest, ManifestEntry


@dataclass(frozen=True)
class Change:
    """One changed path: sizes and digests before and after (``None`` where absent)."""

    path: str
    old_size: int | None = None
    new_size: int | None = None
    old_digest: str | None = None
    new_digest: str | None = None
    old_path: str | None = None


@dataclass
class VersionDiff:
    """What it takes to go from version ``old`` to version ``new``."""

    old: str
    new: str
    added: list[Change] = field(default_factory=list)
    removed: list[Change] = field(default_factory=list)
    modified: list[Change] = field(default_factory=list)
    renamed: list[Change] = field(default_factory=list)
    references_changed: list[Change] = field(default_factory=list)
    unchanged: int = 0

    @property
    def is_empty(self) -> bool:
        """True when both versions have identical content."""
        return not (self.added or self.removed or self.modified or self.renamed or self.references_changed)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (for ``artifacts diff --json``)."""
        return asdict(self)

    def summary(self) -> str:
        """``+3 -1 ~2 >1 (refs 0), 120 unchanged``."""
        return (
            f"+{len(self.added)} added, -{len(self.removed)} removed, ~{len(self.modified)} modified, "
            f">{len(self.renamed)} renamed, {len(self.references_changed)} references changed, "
            f"{self.unchanged} unchanged"
        )


def _change(path: str, old: ManifestEntry | None, new: ManifestEntry | None, old_path: str | None = None) -> Change:
    return Change(
        path=path,
        old_size=old.size if old else None,
        new_size=new.size if new else None,
        old_digest=old.digest if old else None,
        new_digest=new.digest if new else None,
        old_path=old_path,
    )


def diff_manifests(old: Manifest, new: Manifest, old_name: str = "old", new_name: str = "new") -> VersionDiff:
    """Compare two manifests. A path that disappeared while the same content appeared under a new
    path is a rename; a reference entry whose remote identity changed is reported separately.
    Every list is in path order.

    One pass over each manifest; only the changes are sorted, never the paths both share (at a
    million entries, building and sorting that set was most of the diff).
    """
    result = VersionDiff(old_name, new_name)
    old_e, new_e = old.entries, new.entries
    gone: dict[str, ManifestEntry] = {}
    unchanged = 0
    for path, a in old_e.items():
        b = new_e.get(path)
        if b is None:
            gone[path] = a
        elif a.digest == b.digest:
            unchanged += 1
        elif a.ref is not None and b.ref is not None:
            result.references_changed.append(_change(path, a, b))
        else:
            result.modified.append(_change(path, a, b))
    result.unchanged = unchanged
    result.references_changed.sort(key=_path_of)
    result.modified.sort(key=_path_of)
    came = sorted(p for p in new_e if p not in old_e)
    by_digest: dict[str, list[str]] = {}
    for path in sorted(gone):
        by_digest.setdefault(gone[path].digest, []).append(path)
    for path in came:
        e = new_e[path]
        sources = by_digest.get(e.digest)
        if sources:
            src = sources.pop(0)
            result.renamed.append(_change(path, gone.pop(src), e, old_path=src))
        else:
            result.added.append(_change(path, None, e))
    result.removed = [_change(p, gone[p], None) for p in sorted(gone)]
    return result


def _path_of(change: Change) -> str:
    return change.path
