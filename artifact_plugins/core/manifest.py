"""Manifest / ManifestEntry: the list of an artifact version's files and references.

The version digest is BLAKE3 over a versioned header and, for every entry sorted by path, the
path and the entry digest. Nothing else (type, metadata, aliases) changes it.

A manifest is stored whole (format version 1) or as a *delta* (format version 2): the entries
that differ from a whole manifest it names as its base, and the paths it removes. A delta's
digest is still the digest of the manifest it resolves to, and reading checks it; a base is never
itself a delta, so reading a version costs at most two objects.
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Callable, Collection, Iterable, Iterator
from typing import Any, NamedTuple

from blake3 import blake3
from pydantic import BaseModel, ConfigDict, Field

from .errors import InvalidInputError
from .gcpause import gc_paused
from .hashing import PREFIX
from .naming import normalize_entry_path, normalize_entry_paths

DIGEST_HEADER = b"artifact-plugins manifest v1\n"
FORMAT = "artifact-plugins-manifest"
#: The format versions of a whole manifest and of a delta.
WHOLE, DELTA = 1, 2
#: Decompressed JSON a stored manifest may expand to: ~7 million entries, far beyond any sane
#: manifest, yet refused before it can exhaust memory (JSON parsing needs several times as much).
MAX_MANIFEST_BYTES = 1 * 2**30
_DIGEST_RE = re.compile(re.escape(PREFIX) + "[0-9a-f]{64}")
#: Digests joined one per line, each ``blake3:`` and 64 hex digits: 72 characters a line.
_DIGEST_LINES = re.compile("(?:" + re.escape(PREFIX) + "[0-9a-f]{64}\n)*")
_DIGEST_LINE_CHARS = len(PREFIX) + 64 + 1
#: The largest entry size a manifest may state (1 PiB).
MAX_ENTRY_SIZE = 2**50
#: Entries hashed or serialised per chunk when streaming a manifest (bounds peak memory: 20,000
#: a chunk left ~5 MiB more at the peak of a 100,000-file log than 4,096, and was no faster).
_CHUNK = 4096
#: A manifest of at most this many entries (whole, or the entries of a delta) is stored in a local
#: store at gzip level 0 (stored blocks: still gzip, no compression work), larger ones and every
#: manifest in a bucket at level 1: 2.6x fewer bytes, which a disk does not miss but a bucket's
#: every reader downloads. ``bench_manifest.py`` (AMD EPYC): writing 500 entries took 2.35 ms at
#: level 1 and 1.22 at level 0, 10,000 entries 38.7 and 23.1 ms. The bound keeps the larger
#: bytes, held once more while joined, small beside the draft's own entries.
STORED_MAX_ENTRIES = 16_384
#: Text JSON writes as it is (printable ASCII but '"' and '\\').
_JSON_PLAIN = re.compile(r"[ !#-\[\]-~]*")


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


class _NoExtra(dict[str, Any]):
    """The ``extra`` of entries made by :func:`make_entry` without one: an empty dict shared by
    all of them (64 bytes saved per entry), which refuses changes so it stays empty."""

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError("ManifestEntry.extra is read-only; build a new entry instead")

    __setitem__ = __delitem__ = __ior__ = update = setdefault = pop = popitem = clear = _refuse  # type: ignore[assignment]

    def __copy__(self) -> dict[str, Any]:
        return {}

    def __deepcopy__(self, memo: Any) -> dict[str, Any]:
        return {}

    def __reduce__(self) -> Any:
        return (dict, ())


_NO_EXTRA = _NoExtra()
_FIELDS_SET = {"path", "digest", "size", "ref", "extra"}
_new = object.__new__
_set = object.__setattr__


def make_entry(
    path: str, digest: str, size: int, ref: str | None = None, extra: dict[str, Any] | None = None
) -> ManifestEntry:
    """A :class:`ManifestEntry` from values the caller has already validated.

    What ``ManifestEntry.model_construct`` does, without its per-call overhead and with one
    shared fields-set (pydantic copies it before any change): about 3x faster and ~40% smaller
    per entry, which is what a million-entry manifest is made of.
    """
    entry = _new(ManifestEntry)
    _set(entry, "__dict__", {"path": path, "digest": digest, "size": size, "ref": ref, "extra": extra or _NO_EXTRA})
    _set(entry, "__pydantic_fields_set__", _FIELDS_SET)
    _set(entry, "__pydantic_extra__", None)
    _set(entry, "__pydantic_private__", None)
    return entry


def _check_digest(path: str, digest: object) -> str:
    if not isinstance(digest, str) or _DIGEST_RE.fullmatch(digest) is None:
        raise InvalidInputError(f"manifest entry {path!r} has invalid digest {digest!r}: must be blake3:<64 hex>")
    return digest


def entry_from_json(raw: dict[str, Any]) -> ManifestEntry:
    """Validate one serialized entry strictly: a tampered manifest is refused before any write."""
    if not isinstance(raw, dict):
        raise InvalidInputError(f"manifest entry {raw!r:.100} is not an object")
    path = raw.get("path")
    if normalize_entry_path(path) != path:
        raise InvalidInputError(f"manifest entry path {path!r} is not in canonical form")
    assert isinstance(path, str)
    size = raw.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0 or size > MAX_ENTRY_SIZE:
        raise InvalidInputError(f"manifest entry {path!r} has invalid size {size!r}: must be 0..2**50")
    ref = raw.get("ref")
    if ref is not None and not isinstance(ref, str):
        raise InvalidInputError(f"manifest entry {path!r} has invalid ref {ref!r:.100}")
    extra = raw.get("extra") or {}
    if not isinstance(extra, dict):
        raise InvalidInputError(f"manifest entry {path!r} has invalid extra {extra!r:.100}")
    return make_entry(path, _check_digest(path, raw.get("digest")), size, ref, extra)


def _entries_from_json(items: list[Any]) -> Iterator[ManifestEntry]:
    """:func:`entry_from_json` of every item, in order, validated a chunk at a time.

    A chunk of plain entries (exactly path, digest and size) is checked at once: its paths by
    :func:`normalize_entry_paths`, its digests by one match over them joined, its sizes in
    one pass; any other chunk goes entry by entry. With the collector paused as well, reading a
    manifest took ~20% less time at 10,000 and 100,000 entries and ~37% less at 1,000,000
    (``benchmarks/bench_manifest.py``). Each chunk's parsed items are let go before the next
    chunk: the parsed JSON and the entries are never both whole in memory.
    """
    items.reverse()
    while items:
        chunk = items[-_CHUNK:]
        del items[-_CHUNK:]
        chunk.reverse()
        plain = _plain_entries(chunk)
        if plain is not None:
            yield from plain
        else:
            yield from map(entry_from_json, chunk)


def _plain_entries(chunk: list[Any]) -> Iterator[ManifestEntry] | None:
    """The entries of ``chunk`` if every item is a valid plain entry, else ``None``."""
    if not all(type(raw) is dict and len(raw) == 3 for raw in chunk):
        return None
    try:
        paths = [raw["path"] for raw in chunk]
        digests = [raw["digest"] for raw in chunk]
        sizes = [raw["size"] for raw in chunk]
        digest_text = "\n".join(digests) + "\n"
        paths_ok = normalize_entry_paths(paths) is paths
    except (KeyError, TypeError, InvalidInputError):
        # Another field, a value that is not a string, or a bad path: entry by entry, the first
        # bad entry is the one named, whatever is wrong with it.
        return None
    if not (
        paths_ok
        # Every line a digest, and exactly one line per digest (none holds a newline of its own).
        and len(digest_text) == _DIGEST_LINE_CHARS * len(digests)
        and _DIGEST_LINES.fullmatch(digest_text)
        and all(type(size) is int and 0 <= size <= MAX_ENTRY_SIZE for size in sizes)
    ):
        return None
    return map(make_entry, paths, digests, sizes)


def _entries_text(entries: list[ManifestEntry]) -> str:
    """The entries as ``json.dumps`` would write them inside a list (no brackets), compact.

    Entries with only path, digest and size whose text needs no escaping are formatted
    directly (``to_bytes`` 1.4-1.7x faster, ``benchmarks/bench_manifest.py``); anything else
    goes through ``json``.
    """
    fields = [e.__dict__ for e in entries]
    if (
        all(f["ref"] is None and not f["extra"] and type(f["size"]) is int for f in fields)
        and _JSON_PLAIN.fullmatch("".join([f["path"] for f in fields]))
        and _JSON_PLAIN.fullmatch("".join([f["digest"] for f in fields]))
    ):
        return ",".join([f'{{"path":"{f["path"]}","digest":"{f["digest"]}","size":{f["size"]}}}' for f in fields])
    return json.dumps([e.to_json() for e in entries], separators=(",", ":"), ensure_ascii=False)[1:-1]


def _decompress(data: bytes) -> bytes:
    """Gunzip ``data``, refusing (before allocating it) output beyond :data:`MAX_MANIFEST_BYTES`:
    a small tampered object cannot expand into an out-of-memory crash (a "gzip bomb")."""
    d = zlib.decompressobj(wbits=31)
    try:
        out = d.decompress(data, MAX_MANIFEST_BYTES + 1)
    except zlib.error as exc:
        raise InvalidInputError(f"manifest is not valid gzip: {exc}") from None
    if len(out) > MAX_MANIFEST_BYTES or d.unconsumed_tail:
        raise InvalidInputError(
            f"manifest expands to more than the limit of {MAX_MANIFEST_BYTES} bytes; refusing to read it"
        )
    if not d.eof:
        raise InvalidInputError("manifest is not valid gzip: it is truncated")
    return out


class Delta(NamedTuple):
    """A stored delta manifest, parsed: resolve it with :meth:`Manifest.apply`."""

    #: The digest of the manifest it resolves to (the version digest).
    digest: str
    #: The digest of the whole manifest it changes.
    base: str
    #: Entries added or changed.
    entries: list[ManifestEntry]
    #: Paths of the base that are not in the result.
    removed: list[str]


def gzip_level(entries: int, local: bool) -> int:
    """The gzip level to store a manifest of ``entries`` entries at (see :data:`STORED_MAX_ENTRIES`):
    ``local``, whether the store is on local disk."""
    return 0 if local and entries <= STORED_MAX_ENTRIES else 1


def delta_bytes(
    digest: str, base: str, entries: Collection[ManifestEntry], removed: Collection[str], level: int = 1
) -> bytes:
    """A delta manifest, gzipped at ``level``: ``entries`` replace or add to those of the whole
    manifest ``base``, ``removed`` paths are dropped, and ``digest`` is the digest of the result."""
    head = {"format": FORMAT, "version": DELTA, "digest": digest, "base": base, "removed": sorted(removed)}
    text = json.dumps(head, separators=(",", ":"), ensure_ascii=False)[:-1] + ',"entries":['
    text += _entries_text(sorted(entries, key=lambda e: e.path)) + "]}"
    return zlib.compress(text.encode(), level, wbits=31)


_BASE_IN_HEAD = re.compile(rb'^\{"format":"[^"]*","version":2,"digest":"[^"]*","base":"(blake3:[0-9a-f]{64})"')


def stored_base(data: bytes) -> str | None:
    """The base a stored manifest is a delta of, read from the start of its bytes alone; ``None``
    for a whole manifest (or bytes this code did not write)."""
    head = zlib.decompressobj(wbits=31).decompress(data[:1024], 512) if data[:2] == b"\x1f\x8b" else data[:512]
    found = _BASE_IN_HEAD.match(head)
    return found.group(1).decode() if found else None


def _parse(data: bytes) -> dict[str, Any]:
    """A stored manifest's JSON document, of a known format and version, with an entry list."""
    raw = _decompress(data) if data[:2] == b"\x1f\x8b" else data
    if len(raw) > MAX_MANIFEST_BYTES:
        raise InvalidInputError(f"manifest of {len(raw)} bytes exceeds the limit of {MAX_MANIFEST_BYTES}")
    try:
        doc = json.loads(raw)
        del raw  # the text is not needed while the entries are built
    except ValueError as exc:
        raise InvalidInputError(f"manifest is not valid JSON: {exc}") from None
    except RecursionError:
        raise InvalidInputError("manifest is not valid: its JSON is nested absurdly deep") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or doc.get("version") not in (WHOLE, DELTA):
        raise InvalidInputError("manifest has an unknown format or version")
    if not isinstance(doc.get("entries"), list):
        raise InvalidInputError("manifest has no entry list")
    return doc


class DeltaOutline(NamedTuple):
    """Which paths a stored delta manifest changes, without its entries: what planning the next
    delta of the same base needs (:func:`~.delta.plan_delta`)."""

    #: The digest of the manifest it resolves to (the version digest).
    digest: str
    #: The digest of the whole manifest it changes.
    base: str
    #: Paths of the entries it adds or changes.
    paths: list[str]
    #: Paths of the base that are not in the result.
    removed: list[str]


def _delta_head(doc: dict[str, Any]) -> tuple[str, str, list[str]]:
    """A delta document's digest, base and removed paths, validated."""
    digest, base, removed = doc.get("digest"), doc.get("base"), doc.get("removed")
    for name, value in (("digest", digest), ("base", base)):
        if not isinstance(value, str) or _DIGEST_RE.fullmatch(value) is None:
            raise InvalidInputError(f"delta manifest has invalid {name} {value!r:.100}: must be blake3:<64 hex>")
    try:
        if not isinstance(removed, list) or any(
            not isinstance(p, str) or normalize_entry_path(p) != p for p in removed
        ):
            raise InvalidInputError("not canonical paths")
    except InvalidInputError as exc:
        raise InvalidInputError(f"delta manifest has an invalid list of removed paths: {exc}") from None
    return str(digest), str(base), removed


def _delta_of(doc: dict[str, Any]) -> Delta:
    digest, base, removed = _delta_head(doc)
    entries = list(Manifest(_entries_from_json(doc["entries"])))  # paths unique within the delta
    return Delta(digest, base, entries, removed)


def read_delta_outline(data: bytes) -> DeltaOutline:
    """A stored delta manifest's :class:`DeltaOutline`: its head validated and its entries' paths
    checked canonical, their digests and sizes not read (no entry objects are built, which is
    most of what :func:`read_stored` costs)."""
    with gc_paused():
        doc = _parse(data)
        if doc["version"] != DELTA:
            raise InvalidInputError("manifest is whole, not a delta")
        digest, base, removed = _delta_head(doc)
        try:
            paths = [raw["path"] for raw in doc["entries"]]
            if normalize_entry_paths(paths) != paths or len(set(paths)) != len(paths):
                raise InvalidInputError("paths not canonical, or listed twice")
        except (KeyError, TypeError, InvalidInputError) as exc:
            raise InvalidInputError(f"delta manifest has an invalid entry list: {exc}") from None
        return DeltaOutline(digest, base, paths, removed)


def read_stored(data: bytes) -> Manifest | Delta:
    """A stored manifest, whole or delta, validated (a delta's result is checked on :meth:`Manifest.apply`)."""
    with gc_paused():  # parsed dicts and entries are acyclic: the collector would find nothing
        doc = _parse(data)
        if doc["version"] == DELTA:
            return _delta_of(doc)
        entries = doc["entries"]
        del doc
        return Manifest(_entries_from_json(entries))


class Manifest:
    """An ordered, path-unique collection of entries with a canonical digest."""

    __slots__ = ("_digest", "_entries")

    def __init__(self, entries: Iterable[ManifestEntry] = ()) -> None:
        self._entries: dict[str, ManifestEntry] = {}
        self._digest: str | None = None
        table = self._entries
        for e in entries:
            path = e.path
            if path in table:
                raise InvalidInputError(f"manifest lists path {path!r} twice")
            table[path] = e

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
        if self._digest is None:  # entries never change after construction: compute once
            h = blake3(DIGEST_HEADER)
            table = self._entries
            paths = sorted(table)
            for start in range(0, len(paths), _CHUNK):
                h.update("".join([f"{p}\0{table[p].digest}\n" for p in paths[start : start + _CHUNK]]).encode())
            self._digest = PREFIX + h.hexdigest()
        return self._digest

    def to_bytes(self, level: int = 1) -> bytes:
        """Canonical JSON (entries sorted by path), gzipped at ``level`` (1: fastest compression;
        0: none, see :data:`STORED_MAX_ENTRIES`).

        Streamed through the compressor a chunk of entries at a time, so a million-entry
        manifest never exists as one JSON string (the bytes are what ``json.dumps`` of the
        whole document would give).
        """
        table = self._entries
        paths = sorted(table)
        head = json.dumps({"format": FORMAT, "version": 1, "digest": self.digest()}, separators=(",", ":"))
        gz = zlib.compressobj(level, zlib.DEFLATED, 31)  # wbits=31: gzip
        out = [gz.compress(head[:-1].encode() + b',"entries":[')]
        for start in range(0, len(paths), _CHUNK):
            part = _entries_text([table[p] for p in paths[start : start + _CHUNK]])
            out.append(gz.compress((("," if start else "") + part).encode()))
        out.append(gz.compress(b"]}"))
        out.append(gz.flush())
        return b"".join(out)

    def apply(self, delta: Delta) -> Manifest:
        """The manifest ``delta`` resolves to on this one (its base); refused unless the result
        has the digest the delta states."""
        table = dict(self._entries)
        for path in delta.removed:
            table.pop(path, None)
        for e in delta.entries:
            table[e.path] = e
        out = Manifest()
        out._entries = table
        if out.digest() != delta.digest:
            raise InvalidInputError(
                f"delta manifest resolves to content digest {out.digest()}, not the {delta.digest} it states"
            )
        return out

    @classmethod
    def from_bytes(
        cls, data: bytes, expected_digest: str | None = None, base: Callable[[str], Manifest] | None = None
    ) -> Manifest:
        """Parse and validate a stored manifest; refuses bad paths, digests, sizes and duplicates.

        A delta is resolved on the whole manifest ``base(digest)`` returns; without ``base`` it is refused.
        """
        stored = read_stored(data)
        if isinstance(stored, Delta):
            if base is None:
                raise InvalidInputError(f"manifest is a delta of {stored.base}, which is not at hand to resolve it")
            manifest = base(stored.base).apply(stored)
        else:
            manifest = stored
        if expected_digest is not None and manifest.digest() != expected_digest:
            raise InvalidInputError(
                f"manifest content digest {manifest.digest()} does not match the recorded {expected_digest}"
            )
        return manifest
