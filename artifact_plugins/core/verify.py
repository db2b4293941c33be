"""Re-hashing stored blobs or a download root against a version's manifest."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .client import Client
from .errors import InvalidInputError, StoreError
from .hashing import ChecksumCache, hash_file
from .manifest import Manifest
from .references import is_unchecked
from .storage import blob_key
from .transfer import safe_destination


@dataclass(frozen=True)
class Mismatch:
    """A path whose bytes are not what the manifest says (``problem``: missing, modified, extra)."""

    path: str
    problem: str
    expected: str | None = None
    actual: str | None = None


@dataclass
class VerifyReport:
    """The outcome of a verification: every mismatch, and how much was checked."""

    target: str
    checked_files: int = 0
    checked_bytes: int = 0
    skipped_references: int = 0
    mismatches: list[Mismatch] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing mismatched."""
        return not self.mismatches

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {**asdict(self), "ok": self.ok}


def verify_root(manifest: Manifest, root: Path, label: str, cache: ChecksumCache | None = None) -> VerifyReport:
    """Re-hash every file of ``manifest`` under ``root``; extra files under ``root`` are reported too.

    A checked reference's file is held to the bytes this machine fetched for it (with ``cache``,
    the checksum cache that recorded the fetch); a reference fetched elsewhere, or logged with
    ``checksum=False``, has nothing to be compared with and is counted in ``skipped_references``.
    """
    if not root.is_dir():
        problem = "is not a directory" if root.exists() else "does not exist"
        raise InvalidInputError(f"cannot verify {label} at {os.fspath(root)!r}: the directory {problem}")
    report = VerifyReport(target=f"{label} at {root}")
    fetched_trees: list[str] = []  # unchecked prefix references download as directories
    for e in manifest:
        dest = safe_destination(root, e.path)
        if e.ref is not None and is_unchecked(e):
            report.skipped_references += 1
            if dest.is_dir():
                fetched_trees.append(e.path + "/")
            continue
        if not dest.is_file():
            report.mismatches.append(Mismatch(e.path, "missing", e.digest))
            continue
        actual, st = hash_file(dest)
        expected = e.digest
        if e.ref is not None and actual != e.digest:  # a file:// reference's digest is its content's
            ref_digest, fetched = (cache.fetched([st])[0] if cache is not None else None) or (None, "")
            if ref_digest != e.digest:
                report.skipped_references += 1
                continue
            expected = fetched
        report.checked_files += 1
        report.checked_bytes += st.st_size
        if actual != expected:
            report.mismatches.append(Mismatch(e.path, "modified", expected, actual))
    expected_paths = set(manifest.entries)
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            rel = Path(dirpath, name).relative_to(root).as_posix()
            if rel not in expected_paths and ".tmp-" not in name and not rel.startswith(tuple(fetched_trees)):
                report.mismatches.append(Mismatch(rel, "extra"))
    return report


def verify_store(client: Client, manifest: Manifest, label: str) -> VerifyReport:
    """Re-hash every stored blob of ``manifest`` (reference entries are skipped, see verify_references)."""
    report = VerifyReport(target=f"{label} in {client.store.uri}")
    store = client.store
    for e in manifest:
        if e.ref is not None:
            report.skipped_references += 1
            continue
        key = blob_key(e.digest)
        local = store.local_path(key)
        try:
            if local is not None:
                actual, st = hash_file(local)
                size = st.st_size
            else:
                from .hashing import digest_bytes

                data = store.get_bytes(key)
                actual, size = digest_bytes(data), len(data)
        except StoreError:
            report.mismatches.append(Mismatch(e.path, "missing", e.digest))
            continue
        report.checked_files += 1
        report.checked_bytes += size
        if actual != e.digest:
            report.mismatches.append(Mismatch(e.path, "modified", e.digest, actual))
    return report
