"""Reference handlers: entries that point at objects which stay where they are.

A handler turns a URI (a single object or a prefix) into manifest entries that record the
object's size and remote identity, fetches the exact recorded object later, and reports drift.
"""

from __future__ import annotations

import logging
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from typing import Literal

from ..errors import ArtifactPluginsError
from ..hashing import digest_bytes
from ..manifest import ManifestEntry
from ..naming import normalize_entry_path

logger = logging.getLogger("artifact_plugins.references")

Drift = Literal["unchanged", "changed", "missing"]


class ReferenceChangedError(ArtifactPluginsError):
    """A referenced object no longer matches what was recorded when it was logged."""

    exit_code = 6


class TooManyObjectsError(ArtifactPluginsError, ValueError):
    """A reference prefix expands to more objects than ``max_objects`` allows."""

    exit_code = 2


def identity_digest(uri: str, *identity: object) -> str:
    """A digest derived from a URI and its remote identity (etag, version, size ...)."""
    return digest_bytes("\0".join(["ref", uri, *(str(i) for i in identity)]).encode())


def is_unchecked(entry: ManifestEntry) -> bool:
    """A reference logged with ``checksum=False``: its digest names the URI alone, so nothing tells
    what it fetches now from what it named when logged."""
    return entry.ref is not None and entry.digest == identity_digest(entry.ref)


def fetch_tree(uri: str, dest: str, items: Iterable[tuple[str, Callable[[str], None]]]) -> int:
    """Write a ``checksum=False`` prefix reference as the directory ``dest``: one file per
    ``(relative path, write(path))`` item. Returns how many were written.

    Remote names are untrusted: each is re-validated as an entry path, so none can escape
    ``dest``. An empty prefix is an error (it "names nothing now").
    """
    os.makedirs(dest)
    count = 0
    for rel, write in items:
        path = os.path.join(dest, normalize_entry_path(rel))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        write(path)
        count += 1
    if not count:
        raise ReferenceChangedError(f"reference {uri} names no object and no objects under it now (checksum=False)")
    logger.warning(
        "reference %s was logged with checksum=False: downloaded the %d objects under it now, "
        "which may differ from what was there when it was logged",
        uri,
        count,
    )
    return count


class ReferenceHandler(ABC):
    """Tracks objects of one or more URI schemes."""

    schemes: tuple[str, ...] = ()

    @abstractmethod
    def entries(self, uri: str, name: str | None, checksum: bool, max_objects: int | None) -> list[ManifestEntry]:
        """Manifest entries for ``uri`` (one object, or every object under a prefix)."""

    @abstractmethod
    def fetch(self, entry: ManifestEntry, dest: str | os.PathLike[str]) -> None:
        """Write the exact recorded object to ``dest``; raise :class:`ReferenceChangedError` if it drifted."""

    @abstractmethod
    def check(self, entry: ManifestEntry) -> Drift:
        """Compare the live object with the recorded identity, without downloading it."""
