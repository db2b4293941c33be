"""Re-hashing stored blobs or a download root against a version's manifest."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .client import Client
from .errors import StoreError
from .hashing import hash_file
from .manifest import Manifest
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


def verify_root(manifest: Manifest, root: Path, label: str) -> VerifyReport:
    """Re-hash every file of ``manifest`` under ``root``; extra files under ``root`` are reported too."""
    report = VerifyReport(target=f"{label} at {root}")
    for e in manifest:
        dest = safe_destination(root, e.path)
        if not dest.is_file():
            report.mismatches.append(Mismatch(e.path, "missing", e.digest))
            continue
        actual, st = hash_file(dest)
        report.checked_files += 1
        report.checked_bytes += st.st_size
        if actual != e.digest:
            report.mismatches.append(Mismatch(e.path, "modified", e.digest, actual))
    expected = set(manifest.entries)
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            rel = Path(dirpath, name).relative_to(root).as_posix()
            if rel not in expected and ".tmp-" not in name:
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
