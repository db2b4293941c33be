"""Garbage collection: mark-and-sweep of blobs and manifests that no version needs any more.

Roots are the manifests of committed versions and of open distributed parts, plus every
manifest written within the grace period (a log in flight writes its manifest before it
commits). A live delta manifest keeps its base manifest, and the blobs of the manifest it
resolves to: a base kept only for its deltas does not keep the blobs they replaced. Anything
younger than the grace period is never deleted.

A concurrent log is safe on every store, whatever the grace: a collection that deletes takes
the store alone (:meth:`~artifact_plugins.core.registry.Registry.acquire_store_lock`) before it
reads the roots, so no commit is between asking which blobs the store has and recording its
version while it runs; commits that began earlier are waited for, later ones wait for it. A
commit held up past its turn's lease is not waited for: the collection ends that turn, and the
commit, finding it ended when it records, records nothing and runs again (blobs deleted
meanwhile are sent again).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta

from .client import Client
from .errors import InvalidInputError, RegistryError, StoreError
from .liveness import heartbeat_seconds
from .manifest import Delta, Manifest, read_stored
from .storage import blob_key, manifest_key

DEFAULT_GRACE = timedelta(hours=24)
logger = logging.getLogger("artifact_plugins")


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
    if dry_run:
        return _collect(client, GcReport(dry_run=True), grace, lambda: None)
    registry = client.registry

    def waiting(what: str) -> None:
        logger.warning("garbage collection waits for %s to end", what)

    turn = registry.acquire_store_lock("gc", on_wait=waiting)
    renew_at = 0.0  # renew at once: a turn that ran out while it waited must not delete anything

    def keep_turn() -> None:
        nonlocal renew_at
        if time.monotonic() < renew_at:
            return
        if not registry.renew_store_lock(turn):
            raise RegistryError(
                "garbage collection stopped: its turn at the store ran out (the process was held up longer "
                "than its lease), so commits may have gone ahead; nothing they need was deleted, run gc again"
            )
        renew_at = time.monotonic() + heartbeat_seconds()  # a lease outlasts several of these

    try:
        return _collect(client, GcReport(dry_run=False), grace, keep_turn)
    finally:
        registry.release_store_lock(turn)


def _collect(client: Client, report: GcReport, grace: timedelta, keep_turn: Callable[[], None]) -> GcReport:
    """Mark from the roots and sweep; ``keep_turn()`` before each listed object and deletion."""
    dry_run = report.dry_run
    store = client.store
    cutoff = time.time() - grace.total_seconds()
    roots = client.registry.referenced_keys()
    manifests = list(store.iter_objects("manifests/"))
    live_manifest_keys: set[str] = set()
    live_blobs: set[str] = set()

    def mark(keys: Iterable[str]) -> None:
        """Mark manifests live with the blobs they need; a delta, its base and the blobs of the
        manifest it resolves to (each base read once, for all its deltas)."""
        todo = sorted(set(keys) - live_manifest_keys)
        live_manifest_keys.update(todo)
        deltas: dict[str, list[Delta]] = {}
        whole: set[str] = set()
        for key in todo:
            keep_turn()
            try:
                stored = read_stored(store.get_bytes(key))
            except StoreError:
                continue  # deleted concurrently by another gc; its versions are gone too
            if isinstance(stored, Delta):
                deltas.setdefault(manifest_key(stored.base), []).append(stored)
            else:
                whole.add(key)
                live_blobs.update(blob_key(e.digest) for e in stored if e.ref is None)
        for base_key, of_base in sorted(deltas.items()):
            live_manifest_keys.add(base_key)
            base = Manifest()  # a base marked live itself already keeps its blobs: not read again
            if base_key not in whole:
                keep_turn()
                # A base that is gone leaves its deltas' versions broken: keep what they list.
                with contextlib.suppress(StoreError):
                    base = Manifest.from_bytes(store.get_bytes(base_key))
            for delta in of_base:
                resolved = base.apply(delta) if len(base) else delta.entries
                live_blobs.update(blob_key(e.digest) for e in resolved if e.ref is None)

    mark(o.key for o in manifests if o.key in roots or o.mtime >= cutoff)
    report.live_manifests = len(live_manifest_keys)
    report.live_blobs = len(live_blobs)
    # Re-read the roots: a version committed since the first read must not lose its manifest.
    mark(client.registry.referenced_keys() & {o.key for o in manifests})
    for obj in manifests:
        if obj.key in live_manifest_keys:
            continue
        if obj.mtime >= cutoff:
            report.kept_young += 1
            continue
        report.deleted_manifests.append(obj.key)
        report.freed_bytes += obj.size
        if not dry_run:
            keep_turn()
            store.delete(obj.key)
    for obj in store.iter_objects("blobs/"):
        keep_turn()
        # Temp files of uploads killed mid-copy are never referenced: reclaimed like any other
        # unreferenced object once older than the grace period (an upload in flight keeps its
        # temp file young).
        if obj.key in live_blobs:
            continue
        if obj.mtime >= cutoff:
            report.kept_young += 1
            continue
        if not dry_run and not store.delete_if_older(obj.key, cutoff):
            report.kept_young += 1  # written again since it was listed
            continue
        report.deleted_blobs.append(obj.key)
        report.freed_bytes += obj.size
    return report
