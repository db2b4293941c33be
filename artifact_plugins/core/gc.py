"""Garbage collection: mark-and-sweep of blobs and manifests that no version needs any more.

Roots are the manifests of committed versions and of open distributed parts, plus every
manifest written within the grace period (a log in flight writes its manifest before it
commits). Anything younger than the grace period is never deleted, and the commit pipeline
refreshes the modification time of blobs it reuses, so a concurrent log is safe.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import timedelta

from .client import Client
from .errors import InvalidInputError, StoreError
from .manifest import Manifest
from .storage import blob_key

DEFAULT_GRACE = timedelta(hours=24)


@dataclass
class GcReport:
    """What a collection found (and, unless a dry run, deleted)."""

    dry_run: bool
    live_manifests: int = 0
    live_blobs: int = 0
    deleted_manifests: list[str] = field(default_factory=list)
    deleted_blobs: list[str] = field(default_factory=list)
    freed_bytes: int = 0
    kept_young: int = 0

    def summary(self) -> str:
        """One line for humans."""
        verb = "would free" if self.dry_run else "freed"
        return (
            f"{verb} {self.freed_bytes} bytes: {len(self.deleted_blobs)} blobs and {len(self.deleted_manifests)} "
            f"manifests; {self.live_blobs} blobs and {self.live_manifests} manifests are live; "
            f"{self.kept_young} unreferenced objects are younger than the grace period"
        )


def collect_garbage(client: Client, *, dry_run: bool = True, grace: timedelta = DEFAULT_GRACE) -> GcReport:
    """Delete (or, with ``dry_run``, list) unreferenced blobs and manifests older than ``grace``."""
    if grace < timedelta(0):
        raise InvalidInputError(f"invalid grace {grace}: must not be negative")
    store = client.store
    report = GcReport(dry_run=dry_run)
    cutoff = time.time() - grace.total_seconds()
    roots = client.registry.referenced_keys()
    manifests = list(store.iter_objects("manifests/"))
    live_manifest_keys = {o.key for o in manifests if o.key in roots or o.mtime >= cutoff}
    live_blobs: set[str] = set()
    for key in sorted(live_manifest_keys):
        try:
            manifest = Manifest.from_bytes(store.get_bytes(key))
        except StoreError:
            continue  # deleted concurrently by another gc; its versions are gone too
        live_blobs.update(blob_key(e.digest) for e in manifest if e.ref is None)
    report.live_manifests = len(live_manifest_keys)
    report.live_blobs = len(live_blobs)
    # Re-read the roots: a version committed since the first read must not lose its manifest.
    live_manifest_keys |= client.registry.referenced_keys() & {o.key for o in manifests}
    for obj in manifests:
        if obj.key in live_manifest_keys:
            continue
        if obj.mtime >= cutoff:
            report.kept_young += 1
            continue
        report.deleted_manifests.append(obj.key)
        report.freed_bytes += obj.size
        if not dry_run:
            store.delete(obj.key)
    for obj in store.iter_objects("blobs/"):
        # Temp files of uploads killed mid-copy are never referenced: reclaimed like any other
        # unreferenced object once older than the grace period (an upload in flight keeps its
        # temp file young).
        if obj.key in live_blobs:
            continue
        if obj.mtime >= cutoff:
            report.kept_young += 1
            continue
        if not dry_run and not store.delete_if_older(obj.key, cutoff):
            report.kept_young += 1  # touched by a concurrent log since it was listed
            continue
        report.deleted_blobs.append(obj.key)
        report.freed_bytes += obj.size
    return report
