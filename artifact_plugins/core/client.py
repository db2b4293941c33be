"""The per-process handle on one configuration: its store, registry and caches.

``Run`` and ``Api`` share the same :class:`Client` for equal settings, so a process opens each
registry and store once. After ``fork`` a fresh client is built (database connections must
not cross process boundaries).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from functools import cached_property
from pathlib import Path

from .cache import DownloadCache
from .config import Settings
from .delta import DeltaPlan
from .errors import InvalidInputError, StoreError
from .hashing import ChecksumCache, store_scope
from .liveness import HEARTBEAT
from .manifest import DeltaOutline, Manifest, delta_bytes, gzip_level, read_delta_outline, stored_base
from .registry import Registry, VersionRecord
from .storage import BlobStore, manifest_key, open_store

#: Entries the per-client manifest memo holds at most, over all manifests.
MAX_MEMO_ENTRIES = 2_000_000


class Client:
    """Store + registry + caches for one :class:`Settings`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._manifests: dict[str, Manifest] = {}

    @cached_property
    def store(self) -> BlobStore:
        """The blob store."""
        return open_store(self.settings.store, self.settings.store_access)

    @cached_property
    def scope(self) -> str:
        """Names this registry and store pair (:func:`~.hashing.store_scope`)."""
        return store_scope(self.settings.registry, self.settings.store)

    @cached_property
    def registry(self) -> Registry:
        """The metadata registry (migrated on first use)."""
        return Registry(self.settings.registry)

    @cached_property
    def checksum_cache(self) -> ChecksumCache:
        """Stat-keyed digests of local files."""
        return ChecksumCache(Path(self.settings.cache_dir) / "checksums.sqlite")

    @cached_property
    def download_cache(self) -> DownloadCache:
        """The bounded cache of fetched remote blobs."""
        return DownloadCache(self.settings.cache_dir, self.settings.cache_max_bytes)

    def close(self) -> None:
        """Close the registry's connections and the store's sessions, if they were opened.

        Runs still open on this registry are no longer kept alive or finished at exit.
        """
        if "registry" in self.__dict__:
            HEARTBEAT.forget(self.registry)
            self.registry.engine.dispose()
        if "store" in self.__dict__:
            self.store.close()

    def manifest(self, version: VersionRecord) -> Manifest:
        """The validated manifest of a committed version (memoised; manifests are immutable)."""
        return self._manifest(version.digest, version.manifest_key, self._whole_manifest)

    def _whole_manifest(self, digest: str) -> Manifest:
        """The stored manifest with ``digest``, which must be whole (the base of a delta)."""
        return self._manifest(digest, manifest_key(digest), None)

    def _manifest(self, digest: str, key: str, base: Callable[[str], Manifest] | None) -> Manifest:
        cached = self._manifests.get(digest)
        if cached is None:
            cached = Manifest.from_bytes(self.store.get_bytes(key), expected_digest=digest, base=base)
            self.remember_manifest(digest, cached)
        return cached

    def stored_delta_outline(self, digest: str, base: str | None = None) -> DeltaOutline | None:
        """What the delta stored as the manifest ``digest`` changes; ``None`` if that manifest is
        stored whole (told from its first bytes: a whole manifest is not parsed). ``base``, when
        known, is the base the delta must be of; a delta of another is refused."""
        data = self.store.get_bytes(manifest_key(digest))
        if stored_base(data) is None:
            return None
        outline = read_delta_outline(data)
        if outline.digest != digest or base not in (None, outline.base):
            raise InvalidInputError(f"the stored manifest of {digest} is not the delta it should be")
        return outline

    def _resolvable(self, key: str) -> bool:
        """Whether the stored manifest at ``key`` is whole or a delta whose base is stored."""
        try:
            base = stored_base(self.store.get_bytes(key))
        except StoreError:
            return False
        return base is None or self.store.has(manifest_key(base))

    def remember_manifest(self, digest: str, manifest: Manifest) -> None:
        """Memoise a manifest; bounded in manifests and in entries (a million-entry manifest
        costs hundreds of MiB, so only a couple of those stay)."""
        self._manifests.pop(digest, None)  # remembered again: its old place must not count twice
        held = sum(len(m) for m in self._manifests.values())
        if len(self._manifests) >= 64 or held + len(manifest) > MAX_MEMO_ENTRIES:
            self._manifests.clear()
        self._manifests[digest] = manifest

    def put_manifest(
        self, manifest: Manifest, delta: DeltaPlan | None = None, *, found_absent: bool = False
    ) -> str | None:
        """Store a manifest, whole or as ``delta``, unless it is stored already; returns how it was
        stored: ``""`` whole, else the base of its delta (``None``: it was there already).

        ``found_absent``: the caller looked for it earlier in this log and found none. A remote
        store is then not asked again (one request fewer per new version): its write replaces
        whatever another writer may have put there meanwhile, with a manifest of the same
        digest. The local store is asked (one ``stat``), as its write keeps a complete object it
        finds, which must then be checked.
        """
        digest = manifest.digest()
        key = manifest_key(digest)
        stored: str | None = None
        present = False if found_absent and not self.store.is_local else self.store.has(key)
        if present and not self.registry.committed_digests([digest]) and not self._resolvable(key):
            # A delta left by a log that never committed, its base collected since: gc keeps the
            # base of every delta it finds, but one that stopped between the two left it so.
            self.store.delete(key)
            present = False
        if not present:
            local = self.store.is_local
            if delta is None:
                data, stored = manifest.to_bytes(gzip_level(len(manifest), local)), ""
            else:
                entries = manifest.entries
                changed = [entries[p] for p in delta.changed]
                level = gzip_level(len(changed) + len(delta.removed), local)
                data, stored = delta_bytes(digest, delta.base, changed, delta.removed, level), delta.base
            self.store.put_bytes(key, data)
        self.remember_manifest(digest, manifest)
        return stored


_clients: dict[tuple[Settings, int], Client] = {}
_lock = threading.Lock()


def get_client(settings: Settings | None = None) -> Client:
    """The shared client for ``settings`` (default: resolved from the environment)."""
    settings = settings or Settings.resolve()
    key = (settings, os.getpid())
    with _lock:
        client = _clients.get(key)
        if client is None:
            client = _clients[key] = Client(settings)
        return client


def default_checksum_cache() -> ChecksumCache:
    """The checksum cache of the default settings (used by drafts before they know their run)."""
    return get_client().checksum_cache


def open_clients() -> list[Client]:
    """The clients of this process whose registry was opened (for adapters that record outcomes)."""
    pid = os.getpid()
    with _lock:
        return [c for (_s, p), c in _clients.items() if p == pid and "registry" in c.__dict__]


def close_clients() -> None:
    """Close and forget every client (and cached reference handler) of this process.

    The next :func:`get_client` reads its configuration afresh, as a new process would: for
    tests, benchmarks and long-lived workers whose environment changed.
    """
    from .references import clear_handlers

    with _lock:
        clients = list(_clients.values())
        _clients.clear()
    for c in clients:
        c.close()
    clear_handlers()
