"""Manifest / ManifestEntry: the list of an artifact version's files and references.

The version digest is BLAKE3 over a versioned header and, for every entry sorted by path, the
path and the entry digest. Nothing else (type, metadata, aliases) changes it.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Iterator
from typing import Any

from blake3 import blake3
from pydantic import BaseModel, ConfigDict, Field

from .errors import InvalidInputError
from .hashing import PREFIX
from .naming import normalize_entry_path

DIGEST_HEADER = b"artifact-plugins manifest v1\n"
FORMAT = "artifact-plugins-manifest"
MAX_MANIFEST_BYTES = 4 * 2**30  # decompressed; far beyond any sane manifest
_HEX = set("0123456789abcdef")


class ManifestEntry(BaseModel):
    """One file of an artifact version: its path, content digest and size.

    Reference entries also carry ``ref`` (the URI) and ``extra`` (remote identity: etag,
    versionId, generation, last_modified ...).
    """

    model_config = ConfigDict(frozen=True)

    path: str
    digest: str
    size: int = Field(ge=0)
    ref: str | None = None
    extra: dict[str, Any] = Field(default_factory=dict)

    @property
    def is_reference(self) -> bool:
        """True for entries that point at external objects instead of stored blobs."""
        return self.ref is not None

    def to_json(self) -> dict[str, Any]:
        """Compact JSON form, omitting empty optional fields."""
        out: dict[str, Any] = {"path": self.path, "digest": self.digest, "size": self.size}
        if self.ref is not None:
            out["ref"] = self.ref
        if self.extra:
            out["extra"] = self.extra
        return out


def _check_digest(path: str, digest: object) -> str:
    if (
        not isinstance(digest, str)
        or not digest.startswith(PREFIX)
        or len(digest) != len(PREFIX) + 64
        or not set(digest[len(PREFIX) :]) <= _HEX
    ):
        raise InvalidInputError(f"manifest entry {path!r} has invalid digest {digest!r}: must be blake3:<64 hex>")
    return digest


def entry_from_json(raw: dict[str, Any]) -> ManifestEntry:
    """Validate one serialized entry strictly: a tampered manifest is refused before any write."""
    if not isinstance(raw, dict):
        raise InvalidInputError(f"manifest entry {raw!r} is not an object")
    path = raw.get("path")
    if normalize_entry_path(path) != path:
        raise InvalidInputError(f"manifest entry path {path!r} is not in canonical form")
    assert isinstance(path, str)
    size = raw.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0 or size > 2**50:
        raise InvalidInputError(f"manifest entry {path!r} has invalid size {size!r}: must be 0..2**50")
    ref = raw.get("ref")
    if ref is not None and not isinstance(ref, str):
        raise InvalidInputError(f"manifest entry {path!r} has invalid ref {ref!r}")
    extra = raw.get("extra") or {}
    if not isinstance(extra, dict):
        raise InvalidInputError(f"manifest entry {path!r} has invalid extra {extra!r}")
    return ManifestEntry.model_construct(
        path=path, digest=_check_digest(path, raw.get("digest")), size=size, ref=ref, extra=extra
    )


class Manifest:
    """An ordered, path-unique collection of entries with a canonical digest."""

    __slots__ = ("_entries",)

    def __init__(self, entries: Iterable[ManifestEntry] = ()) -> None:
        self._entries: dict[str, ManifestEntry] = {}
        for e in entries:
            if e.path in self._entries:
                raise InvalidInputError(f"manifest lists path {e.path!r} twice")
            self._entries[e.path] = e

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[ManifestEntry]:
        return iter(self._entries.values())

    def __contains__(self, path: object) -> bool:
        return path in self._entries

    def get(self, path: str) -> ManifestEntry | None:
        """The entry at ``path``, if any."""
        return self._entries.get(path)

    @property
    def entries(self) -> dict[str, ManifestEntry]:
        """Entries keyed by path (do not mutate)."""
        return self._entries

    @property
    def size(self) -> int:
        """Total bytes of all entries, references included."""
        return sum(e.size for e in self._entries.values())

    def digest(self) -> str:
        """The version digest: BLAKE3 over the header and the sorted (path, entry digest) pairs."""
        h = blake3(DIGEST_HEADER)
        for path in sorted(self._entries):
            h.update(f"{path}\0{self._entries[path].digest}\n".encode())
        return PREFIX + h.hexdigest()

    def to_bytes(self) -> bytes:
        """Gzipped canonical JSON (entries sorted by path)."""
        doc = {
            "format": FORMAT,
            "version": 1,
            "digest": self.digest(),
            "entries": [self._entries[p].to_json() for p in sorted(self._entries)],
        }
        return gzip.compress(json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode(), compresslevel=5)

    @classmethod
    def from_bytes(cls, data: bytes, expected_digest: str | None = None) -> Manifest:
        """Parse and validate a stored manifest; refuses bad paths, digests, sizes and duplicates."""
        try:
            raw = gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
        except (OSError, EOFError) as exc:
            raise InvalidInputError(f"manifest is not valid gzip: {exc}") from None
        if len(raw) > MAX_MANIFEST_BYTES:
            raise InvalidInputError(f"manifest of {len(raw)} bytes exceeds the limit of {MAX_MANIFEST_BYTES}")
        try:
            doc = json.loads(raw)
        except ValueError as exc:
            raise InvalidInputError(f"manifest is not valid JSON: {exc}") from None
        if not isinstance(doc, dict) or doc.get("format") != FORMAT or doc.get("version") != 1:
            raise InvalidInputError("manifest has an unknown format or version")
        entries = doc.get("entries")
        if not isinstance(entries, list):
            raise InvalidInputError("manifest has no entry list")
        manifest = cls(entry_from_json(e) for e in entries)
        if expected_digest is not None and manifest.digest() != expected_digest:
            raise InvalidInputError(
                f"manifest content digest {manifest.digest()} does not match the recorded {expected_digest}"
            )
        return manifest
