"""The Artifact builder: a draft that collects files, references and tables before it is logged."""

from __future__ import annotations

import itertools
import operator
import os
import posixpath
import shutil
import stat as stat_mod
import struct
import tempfile
import time
import uuid
from array import array
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, NamedTuple, cast

from .delta import DeltaSource
from .errors import ArtifactFinalizedError, InvalidInputError, RegistryError, StoreError
from .forked import fork_pays, run_forked
from .gcpause import gc_paused
from .hashing import (
    MMAP_THRESHOLD,
    PREFIX,
    TREE_MAX_FILES,
    TREE_MIN_FILES,
    ChecksumCache,
    FileStat,
    Keep,
    Stat,
    TreeMark,
    compact_stat,
    hash_file,
    hex_of,
    stat_files,
)
from .manifest import Manifest, ManifestEntry, make_entry
from .metadata import validate_description, validate_metadata
from .naming import normalize_entry_path, normalize_entry_paths, validate_name
from .pacing import run_paced
from .references import handler_for
from .table import PartitionedTable, Table

if TYPE_CHECKING:
    from .client import Client
    from .storage.local import LocalStore
    from .version import ArtifactVersion


#: Threads hashing (and storing) small files while the disk is slow (see :func:`run_paced`).
HASH_WORKERS = 4
#: An add that hashes at least this many files has the blobs it stores meanwhile flagged as
#: stored (``Artifact._read_store_generation``): below it, the store checks saved cost less than
#: the registry read.
TRUST_STORED_MIN_FILES = 256


class _StoreAsHashed:
    """A :class:`~.hashing.Keep` into a local store: a small file is stored from the bytes just
    hashed, a large one copied by the kernel while it is hashed (:meth:`LocalStore.start_copy`).

    Best effort: the first failure to store (disk full, read-only) stops it for good, and the
    log sends what is missing then. A file that changes while it is stored still fails the add.
    """

    def __init__(self, store: LocalStore) -> None:
        from .storage import blob_key  # the storage package is imported when a store is

        self._store = store
        self._key = blob_key
        self._owner = os.getpid()
        #: False once storing failed: from then on files are only hashed.
        self.working = True

    def __call__(self, digest: str, data: bytes) -> None:
        if not self.working:
            return
        try:
            self._store.put_bytes(self._key(digest), data)
        except StoreError:
            if os.getpid() != self._owner:
                # In a forked helper (forked.py) the file counts as not done: the parent does it
                # again, and its failure is the one that shows.
                raise
            self.working = False

    def hash_large(self, path: str | os.PathLike[str], st: Stat) -> tuple[str, os.stat_result]:
        if not self.working:
            return hash_file(path, st)
        copy = self._store.start_copy(path, st)
        try:
            digest, after = hash_file(path, st)
        except BaseException:
            copy.abandon()
            raise
        try:
            copy.place(self._key(digest))
        except StoreError:  # large files are hashed in the parent only (never in a forked helper)
            self.working = False
        return digest, after


class PendingEntry(NamedTuple):
    """A manifest entry plus, for local files, where its bytes come from and when they were hashed.

    A named tuple: built once per file of a draft, so its construction cost and size count. Of
    the file's stat it keeps the modification time alone (the size is the entry's): that is all
    storing the bytes checks. A file added with its directory keeps no path of its own either:
    ``origin`` is then the directory (one string shared by all its files) and the file's path is
    that plus the entry's path from ``cut`` on. A stat and a full path per file were a fifth of a
    100,000-file draft's memory.
    """

    entry: ManifestEntry
    origin: str | None = None
    mtime_ns: int | None = None
    cut: int = -1
    #: The blob is held by a committed version the draft started from (see ``Artifact._hold``).
    held: bool = False

    @property
    def source(self) -> str | None:
        """The local file the entry's bytes come from (``None`` for a stored or referenced entry)."""
        if self.cut < 0 or self.origin is None:
            return self.origin
        return self.origin + self.entry.path[self.cut :]

    @property
    def hashed_stat(self) -> FileStat | None:
        """The size and modification time the source had when it was hashed (what storing it checks)."""
        if self.origin is None or self.mtime_ns is None:
            return None
        return FileStat(0, 0, 0, self.entry.size, self.mtime_ns)


def hash_local_files(
    paths: Sequence[str], checksum_cache: ChecksumCache | None, keep: Keep | None = None
) -> list[tuple[str, FileStat]]:
    """Digest and stat of each file, skipping rehashing for files the checksum cache knows unchanged.

    ``keep`` is handed each small file read (see :func:`hash_file`)."""
    try:
        stats = [compact_stat(os.stat(p)) for p in paths]
    except OSError as exc:
        raise InvalidInputError(f"cannot add {exc.filename!r}: {exc.strerror}") from None
    digests, _hashed = _digests(paths, stats, checksum_cache, keep)
    return list(zip(digests, stats, strict=True))


class TreeScan(NamedTuple):
    """What the checksum cache knew of a directory a draft scanned, kept for the commit."""

    #: Names the rows that now remember the directory (``None``: it is not remembered).
    token: int | None
    #: For each file, 1 if it is as the rows remembered it before this scan.
    unchanged: bytearray
    #: Files the rows remembered that the scan did not find (paths under the directory).
    gone: list[str]
    #: Per registry and store, the committed version that holds every file the rows remembered.
    held_by: dict[str, TreeMark]
    #: Whether the scan wrote the rows again (``token`` is then not the one ``held_by`` marked).
    rewritten: bool


def _same_entry(a: ManifestEntry | None, b: ManifestEntry) -> bool:
    """Whether ``a`` is ``b``, or an entry with the same content and identity."""
    return a is b or (a is not None and (a.digest, a.size, a.ref, a.extra) == (b.digest, b.size, b.ref, b.extra))


class _AddedTree(NamedTuple):
    """A directory a draft added, to be marked as held by the version the draft is committed as."""

    root: str
    token: int
    prefix: str
    entries: int
    marks: dict[str, TreeMark]
    #: Whether ``marks`` name rows older than ``token`` (a mark then has to be written anew).
    rewritten: bool


def _digests(
    paths: Sequence[str],
    stats: list[FileStat],
    checksum_cache: ChecksumCache | None,
    keep: Keep | None = None,
    begin: Callable[[int], None] | None = None,
) -> tuple[list[str], array[int]]:
    """The digest of each file, and the indices of the files hashed (read) for it; ``stats`` is
    updated in place to the stat each file was hashed at.

    Files the checksum cache knows unchanged are not read. ``keep`` is handed each small file read;
    ``begin``, if any, is told how many files are about to be read, before the first is.
    """
    since = time.time_ns()
    known: list[str | None] = checksum_cache.lookup(stats) if checksum_cache is not None else [None] * len(paths)
    hashed = _unknown(known)
    return _hash_all(paths, stats, known, since, checksum_cache, keep, hashed, begin), hashed


def _tree_digests(
    paths: Sequence[str],
    stats: list[FileStat],
    checksum_cache: ChecksumCache,
    tree: tuple[str, Sequence[str]],
    keep: Keep | None = None,
    begin: Callable[[int], None] | None = None,
) -> tuple[list[str], TreeScan | None, array[int]]:
    """:func:`_digests` of a scanned directory, ``tree`` being ``(root, paths under root)``.

    The files that are as the last scan of ``root`` left them are not even looked up file by
    file (a few rows for the directory): a log after a few files changed looks up and hashes
    those few, and rewrites the rows of those few. Also returns what the rows told of the
    directory (``None`` for a directory too small or too large to be remembered), and which
    files were hashed.
    """
    if not TREE_MIN_FILES <= len(paths) <= TREE_MAX_FILES:
        digests, hashed = _digests(paths, stats, checksum_cache, keep, begin)
        return digests, None, hashed
    since = time.time_ns()  # before any file is read: what settled() measures from
    found = checksum_cache.known_tree(*tree, stats)
    if found is None:
        known = checksum_cache.lookup(stats)
        hashed = _unknown(known)
        # The files hashed are remembered with the directory's rows, in one transaction.
        digests = _hash_all(paths, stats, known, since, None, keep, hashed, begin)
        token = checksum_cache.remember_tree(*tree, stats, digests, since=since, hashed=hashed)
        return digests, TreeScan(token, bytearray(len(paths)), [], {}, True), hashed
    known = found.digests
    unchanged = bytearray(map(operator.is_not, known, itertools.repeat(None)))
    unknown = list(itertools.compress(range(len(known)), map(operator.not_, unchanged)))
    if not unknown:
        return cast(list[str], known), TreeScan(found.token, unchanged, found.gone, found.held_by, False), array("q")
    for i, d in zip(unknown, checksum_cache.lookup([stats[i] for i in unknown]), strict=True):
        known[i] = d
    todo = array("q", (i for i in unknown if known[i] is None))
    digests = _hash_all(paths, stats, known, since, None, keep, todo, begin)
    changed = (found.token, unknown) if found.same_paths else None
    token = checksum_cache.remember_tree(*tree, stats, digests, changed, since, todo)
    return digests, TreeScan(token, unchanged, found.gone, found.held_by, token != found.token), todo


def _unknown(known: Sequence[str | None]) -> array[int]:
    """The indices of ``known`` that are ``None``, as one array of machine integers."""
    return array("q", itertools.compress(range(len(known)), map(operator.is_, known, itertools.repeat(None))))


def _hash_all(
    paths: Sequence[str],
    stats: list[FileStat],
    known: list[str | None],
    since: int,
    checksum_cache: ChecksumCache | None = None,
    keep: Keep | None = None,
    todo: array[int] | None = None,
    begin: Callable[[int], None] | None = None,
) -> list[str]:
    """Fill in every ``None`` of ``known`` by hashing that file (and remember it in ``checksum_cache``
    if :func:`~.hashing.settled` when read from ``since`` on). ``todo``, if the caller has it, is
    :func:`_unknown` of ``known`` (a log after a few files changed then never goes over them all).
    ``begin(files)`` is called before the first file is read, if there is one to read.

    No per-file tuples or lists of int objects: at a million files, short-lived objects
    interleaved with the draft's own leave the heap fragmented, and the process's peak memory is
    what they leave behind. The files to hash are indexed by one array of machine integers, so a
    log after a few files changed goes over those few.
    """
    if todo is None:
        todo = _unknown(known)
    if begin is not None and todo:
        begin(len(todo))

    def hash_one(i: int) -> None:
        digest, after = hash_file(paths[i], stats[i], keep)
        known[i] = digest
        stats[i] = compact_stat(after)  # at once: full stats add up to GiBs

    def paced(fn: Callable[[int], object], items: Sequence[int]) -> None:
        # Small files are syscall-bound, and threads only add GIL hand-offs while the disk keeps
        # up; while it makes each file wait (``keep`` writing blobs to a slow disk) they overlap
        # the waits. Large files are hashed by BLAKE3's own thread pool.
        run_paced(fn, items, HASH_WORKERS)

    if fork_pays(len(todo)):  # a second core for the small files, in a forked child (``forked.py``)
        paced(hash_one, array("q", (i for i in todo if stats[i].st_size >= MMAP_THRESHOLD)))
        run_forked(
            hash_one,
            array("q", (i for i in todo if stats[i].st_size < MMAP_THRESHOLD)),
            export=_export_hashed(known, stats),
            adopt=_adopt_hashed(known, stats),
            width=_HASHED_WIDTH,
            run=paced,
        )
    else:
        paced(hash_one, todo)
    if checksum_cache is not None and todo:
        checksum_cache.remember(((stats[i], cast(str, known[i])) for i in todo), since)
    return cast(list[str], known)  # every None was filled in above


#: What a forked child hands back per file it hashed: the raw digest, then its :class:`FileStat`.
_HASHED = struct.Struct(f"32s{len(FileStat._fields)}q")
_HASHED_WIDTH = _HASHED.size


def _export_hashed(known: list[str | None], stats: list[FileStat]) -> Callable[[int], bytes]:
    """For :func:`~.forked.run_forked`: file ``i``'s digest and stat as the child found them."""

    def export(i: int) -> bytes:
        return _HASHED.pack(bytes.fromhex(hex_of(cast(str, known[i]))), *stats[i])

    return export


def _adopt_hashed(known: list[str | None], stats: list[FileStat]) -> Callable[[int, bytes], None]:
    """For :func:`~.forked.run_forked`: file ``i``'s digest and stat, from what the child exported."""

    def adopt(i: int, data: bytes) -> None:
        raw, *fields = _HASHED.unpack(data)
        known[i] = PREFIX + raw.hex()
        stats[i] = compact_stat(FileStat(*fields))

    return adopt


def _scan_dir(root: str) -> tuple[list[str], list[str], list[FileStat]]:
    """Regular files under ``root``: full paths, ``/``-separated relative paths and stats.

    The order is ``os.walk``'s with sorted names (a directory's files, then its sorted
    subdirectories). The directories are listed first (each entry's type comes with the
    listing), then every file is stat'ed once by :func:`~.hashing.stat_files`, on two cores where
    there are many. Symlinks to files are followed when they stay inside ``root``; directory
    symlinks are not descended (no loops); special files and dangling links are skipped; an
    unreadable directory is an error (never silently left out).
    """
    fulls: list[str] = []
    rels: list[str] = []
    links: list[int] = []  # where the symlinks are among fulls
    by_name = operator.attrgetter("name")
    stack: list[tuple[str, str]] = [(root, "")]
    while stack:
        top, rel_top = stack.pop()
        subdirs = []
        try:
            with os.scandir(top) as it:
                items = list(it)
        except FileNotFoundError:
            continue  # removed while we walked
        except OSError as exc:
            # Never skip silently: its files would be missing from the artifact without a word.
            raise InvalidInputError(
                f"cannot add directory {top!r}: {exc.strerror or exc}; fix its permissions or add the "
                "readable parts explicitly"
            ) from None
        items.sort(key=by_name)
        for e in items:
            fname = e.name
            try:
                if not e.is_file(follow_symlinks=False):  # a plain file, as the listing says: no syscall
                    if e.is_dir():  # a symlink's target takes a stat
                        if not e.is_symlink():
                            subdirs.append(fname)
                        continue
                    if e.is_symlink():
                        links.append(len(fulls))
            except OSError:
                continue  # vanished meanwhile
            fulls.append(f"{top}/{fname}")
            rels.append(rel_top + fname)
        stack.extend((os.path.join(top, d), f"{rel_top}{d}/") for d in reversed(subdirs))
    found = stat_files(len(fulls), fulls.__getitem__)
    real_root = os.path.realpath(root)
    leaving = {i for i in links if os.path.commonpath([os.path.realpath(fulls[i]), real_root]) != real_root}
    is_reg = stat_mod.S_ISREG
    if leaving or None in found or not all(map(is_reg, map(operator.itemgetter(0), cast(list[FileStat], found)))):
        keep = [i for i, st in enumerate(found) if st is not None and is_reg(st.st_mode) and i not in leaving]
        return [fulls[i] for i in keep], [rels[i] for i in keep], [cast(FileStat, found[i]) for i in keep]
    return fulls, rels, cast(list[FileStat], found)


class Artifact:
    """A draft artifact: name, type, description, metadata and a set of entries.

    Entries are hashed when added, so the builder always knows its digest. Logging it
    (``run.log_artifact``) commits a new version or, if the content already exists, reuses it.
    """

    def __init__(
        self,
        name: str,
        type: str = "dataset",
        description: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self.name = validate_name(name, "artifact name")
        self.type = validate_name(type, "artifact type")
        self.description = validate_description(description)
        self.metadata: dict[str, Any] = validate_metadata(metadata)
        self._entries: dict[str, PendingEntry] = {}
        self._tmpdir: tempfile.TemporaryDirectory[str] | None = None
        self._logged: ArtifactVersion | None = None
        self._checksum_cache: ChecksumCache | None = None
        self._keep: _StoreAsHashed | None = None  # see _store_as_hashed
        self._keep_resolved = False
        # Entries flagged held: their blobs are held by committed versions (see _hold) or were
        # stored by this draft (see _store_as_hashed), all in one registry and store. And
        # directories to mark once committed.
        self._held_scope: str | None = None
        self._held_by: set[str] = set()
        # A store generation read, while no collection was under way, before the draft stored any
        # blob: read as it began storing, or the one its directory's last commit was fenced by.
        self._stored_since: int | None = None
        self._stored_scope = ""
        self._generation_read = False
        self._stored_flagged = False
        self._marked_at: tuple[str, int] | None = None  # see _known_generation
        self._trees: list[_AddedTree] = []
        self._trees_intact = True
        self._delta_source: DeltaSource | None = None
        self.base: ArtifactVersion | None = None

    def __repr__(self) -> str:
        return f"<Artifact draft {self.name!r} type={self.type!r} entries={len(self._entries)}>"

    # -- state -----------------------------------------------------------------------------------

    @property
    def logged_version(self) -> ArtifactVersion | None:
        """The committed version once this draft was logged."""
        return self._logged

    def _check_open(self) -> None:
        if self._logged is not None:
            raise ArtifactFinalizedError(
                f"artifact {self.name!r} was already logged as {self._logged.version}; "
                "call .new_draft() on the version to change it"
            )

    def _cache(self) -> ChecksumCache | None:
        if self._checksum_cache is None:
            from .client import default_checksum_cache

            self._checksum_cache = default_checksum_cache()
        return self._checksum_cache

    def _adding_client(self) -> Client:
        """The client whose store and registry this draft most likely logs to: the active run's,
        else the default settings'."""
        from .client import get_client
        from .run import current_run

        run = current_run()
        return get_client(run.settings if run is not None else None)

    def _store_as_hashed(self) -> _StoreAsHashed | None:
        """Where the bytes of files go as they are hashed: the store of the active run (else the
        default settings' store), if it is local (:class:`_StoreAsHashed`).

        A first log of small files read each twice before (once to hash, once to store), and
        one of a large file hashed it, then copied it. A run that logs to another store sends
        the bytes there; blobs of a draft never logged are unreferenced and left to gc.

        Entries whose blobs were stored here after :meth:`_read_store_generation` are flagged
        ``held`` (:meth:`_flag_stored`): the log counts them present without asking the store if
        no collection went ahead meanwhile (see :meth:`_stored_in`).
        """
        if not self._keep_resolved:
            from .storage.local import LocalStore

            self._keep_resolved = True
            client = self._adding_client()
            if isinstance(client.store, LocalStore):
                self._stored_scope = client.scope
                self._keep = _StoreAsHashed(client.store)
        return self._keep

    def _read_store_generation(self, files: int) -> None:
        """Before ``files`` files of a directory are hashed and their blobs stored: read the store's
        generation (:meth:`~.registry.Registry.store_generation`), once per draft, so that the
        blobs stored from here on may be flagged. Not for fewer than
        :data:`TRUST_STORED_MIN_FILES` files (the store checks it saves cost less than the read)
        nor while a collection holds a turn (one under way counted itself before)."""
        if files >= TRUST_STORED_MIN_FILES and self._stored_since is None and not self._generation_read:
            self._generation_read = True
            try:
                self._stored_since = self._adding_client().registry.store_generation(while_idle=True)
            except RegistryError:  # the log finds out what is wrong; its blobs are all checked then
                self._stored_since = None

    def _flag_stored(self, hashed: Sequence[int], flags: bytearray) -> None:
        """Flag ``held`` the files of ``hashed``, whose blobs were stored as they were hashed, if
        storing never failed and the store's generation was read while no collection was under
        way (otherwise none)."""
        keep = self._keep
        if keep is None or not keep.working or self._stored_since is None or not self._claim_scope(self._stored_scope):
            return
        for i in hashed:
            flags[i] = 1
        self._stored_flagged = True

    def _hold(self, scope: str, version_digest: str) -> bool:
        """Note that entries about to be added have their blobs held by the committed version
        ``version_digest`` of the registry and store ``scope`` (:func:`~.hashing.store_scope`);
        whether they may be flagged ``held``.

        A log into that registry and store does not ask the store about held blobs: it checks,
        in its turn at the store, that the versions holding them are still committed (gc keeps
        every blob of a committed version), and asks about every blob if one is not. One scope
        per draft: entries held in another are not flagged.
        """
        if not self._claim_scope(scope):
            return False
        self._held_by.add(version_digest)
        return True

    def _claim_scope(self, scope: str) -> bool:
        """Whether entries flagged ``held`` may rely on registry and store ``scope``: the only
        one they rely on, from the first flagged entry on."""
        if self._held_scope not in (None, scope):
            return False
        self._held_scope = scope
        return True

    def _held_in(self, scope: str) -> frozenset[str]:
        """The committed versions the ``held`` entries rely on, if this draft logs to ``scope``;
        empty when it logs elsewhere (then no entry counts as held)."""
        return frozenset(self._held_by) if scope == self._held_scope else frozenset()

    def _stored_in(self, scope: str) -> int | None:
        """If some ``held`` entries are so because this draft stored their blobs in ``scope``
        (and it logs there): the store's generation when it began. They are present if no
        collection went ahead since, that is, if the generation is the same in the commit's turn."""
        return self._stored_since if self._stored_flagged and scope == self._held_scope else None

    def _only_tree(self) -> _AddedTree | None:
        """The directory the draft is made of, if it is made of exactly one directory's files."""
        if len(self._trees) != 1 or not self._trees_intact or len(self._entries) != self._trees[0].entries:
            return None
        return self._trees[0]

    def _known_generation(self, scope: str) -> int | None:
        """If every ``held`` entry is so because the checksum cache marked its directory as held
        by one version, whose commit was fenced by the store's generation (and this draft logs
        to ``scope``): that generation. While the store's generation is still that, no
        collection has deleted anything since, so those blobs are all present: the commit may
        take it as its fence without reading the registry first (:func:`~.run.store_then_record`);
        its transaction then checks that the version is still committed (a generation alone
        could be another registry's)."""
        if self._marked_at is None or scope != self._held_scope:
            return None
        version, generation = self._marked_at
        return generation if self._held_by == {version} else None

    def _delta_in(self, scope: str) -> DeltaSource | None:
        """What to store this draft's manifest as a delta of, if it logs to ``scope`` (see :mod:`.delta`):
        the version it was made from (``new_draft``), or the one its only directory was last
        committed as."""
        if scope != self._held_scope:
            return None
        if self.base is not None and not self._trees:
            base = self.base.manifest()
            entries = self._entries
            changed = [p for p, pending in entries.items() if not _same_entry(base.get(p), pending.entry)]
            removed = [p for p in base if p not in entries]
            return DeltaSource(self.base.digest, None, changed, removed, len(entries))
        return self._delta_source if self._only_tree() is not None else None

    def _committed_as(
        self, scope: str, version_digest: str, stored_base: str | None, generation: int | None = None
    ) -> None:
        """After the draft was committed as version ``version_digest`` (of ``scope``, its manifest
        stored as ``stored_base`` says, under the store's ``generation``, see
        :class:`~.hashing.TreeMark`): mark the directories it added as held by that version in
        the checksum cache, so the next log of one of them asks the store only about the files
        that changed. Not when an entry was removed or replaced since: the version may then
        lack a file the directory has. Where the commit reused the version a mark names
        (``stored_base`` and ``generation`` ``None``), what that mark knew is kept."""
        cache = self._checksum_cache
        if cache is None or not self._trees_intact:
            return
        only = self._only_tree()
        for tree in self._trees:
            old = tree.marks.get(scope)
            if stored_base is None and old and old.version == version_digest:
                mark = TreeMark(version_digest, tree.prefix, tree is only, old.stored_base, old.generation)
            else:
                mark = TreeMark(version_digest, tree.prefix, tree is only, stored_base, generation)
            if old != mark or tree.rewritten:  # a re-log that rewrote the rows marks them too
                cache.mark_tree(tree.root, tree.token, scope, mark)

    def _note_scan(self, root: str, prefix: str, scan: TreeScan, paths: list[str]) -> bytearray:
        """Keep what the checksum cache knew of a directory about to be added under ``prefix``
        (its entry ``paths``); returns which of its files are held by a committed version."""
        scope = self._adding_client().scope
        mark = scan.held_by.get(scope)
        first = not self._entries and not self._trees
        if scan.token is not None:
            self._trees.append(_AddedTree(root, scan.token, prefix, len(paths), scan.held_by, scan.rewritten))
        if mark is None or not self._hold(scope, mark.version):
            return bytearray(len(paths))
        if first and mark.generation is not None:
            self._marked_at = (mark.version, mark.generation)
            if self._stored_since is None and self._keep is not None and self._stored_scope == scope:
                # The mark's generation was read before anything this draft stored: while it is
                # still the store's, the blobs stored as the changed files were hashed are there
                # too, so they are flagged without reading the generation (TRUST_STORED_MIN_FILES).
                self._stored_since = mark.generation
        if first and mark.exact and mark.prefix == prefix:
            try:
                removed = normalize_entry_paths([posixpath.join(prefix, rel) for rel in scan.gone])
            except InvalidInputError:
                return scan.unchanged
            changed = [paths[i] for i in itertools.compress(range(len(paths)), map(operator.not_, scan.unchanged))]
            self._delta_source = DeltaSource(mark.version, mark.stored_base, changed, removed, len(paths))
        return scan.unchanged

    def _put(self, pending: PendingEntry, overwrite: bool) -> ManifestEntry:
        path = pending.entry.path
        old = self._entries.get(path)
        if old is not None and old.entry.digest != pending.entry.digest:
            if not overwrite:
                raise InvalidInputError(
                    f"artifact {self.name!r} already has a different entry at {path!r}; "
                    "pass overwrite=True to replace it or choose another name"
                )
            self._trees_intact = False
        self._entries[path] = pending
        return pending.entry

    # -- adding content ------------------------------------------------------------------------

    def add_file(
        self, local_path: str | os.PathLike[str], name: str | None = None, *, overwrite: bool = False
    ) -> ManifestEntry:
        """Add one local file at entry path ``name`` (default: the file's name)."""
        self._check_open()
        path = os.fspath(local_path)
        if not os.path.isfile(path):
            raise InvalidInputError(f"cannot add file {path!r}: it does not exist or is not a regular file")
        entry_path = normalize_entry_path(name if name is not None else os.path.basename(path))
        ((digest, st),) = hash_local_files([path], self._cache(), self._store_as_hashed())
        entry = make_entry(entry_path, digest, st.st_size)
        return self._put(PendingEntry(entry, os.path.abspath(path), st.st_mtime_ns), overwrite)

    def add_dir(
        self, local_path: str | os.PathLike[str], name: str | None = None, *, overwrite: bool = False
    ) -> list[ManifestEntry]:
        """Add every regular file under a directory, recursively, under prefix ``name``.

        Symlinks to files are followed when they stay inside the directory; symlinks that leave
        it, directory symlinks (loops) and special files (FIFOs, sockets, devices) are skipped.
        """
        self._check_open()
        root = os.path.abspath(os.fspath(local_path))
        if not os.path.isdir(root):
            raise InvalidInputError(f"cannot add directory {root!r}: it does not exist or is not a directory")
        with gc_paused():
            fulls, scanned, stats = _scan_dir(root)
            rels = scanned if name is None else [posixpath.join(name, rel) for rel in scanned]
            paths = normalize_entry_paths(rels)
            cache, keep = self._cache(), self._store_as_hashed()
            begin = self._read_store_generation if keep is not None else None
            if cache is None:
                (digests, hashed), scan = _digests(fulls, stats, None, keep, begin), None
            else:
                digests, scan, hashed = _tree_digests(fulls, stats, cache, (root, scanned), keep, begin)
            held = bytearray(len(fulls))
            if scan is not None:
                held = self._note_scan(root, name or "", scan, paths)
            if keep is not None and hashed:
                self._flag_stored(hashed, held)
            out = []
            put = self._put
            base, cut = f"{root}/", 0 if name is None else len(posixpath.join(name, ""))
            # Each stat and full path is let go as its entry is made: never both at once.
            spent_stats, spent_fulls = cast(list[FileStat | None], stats), cast(list[str | None], fulls)
            for i, st in enumerate(stats):
                path, full = paths[i], fulls[i]
                spent_stats[i] = spent_fulls[i] = None
                entry = make_entry(path, digests[i], st.st_size)
                if base + path[cut:] == full:  # the usual case: the path is the directory's plus the entry's
                    pending = PendingEntry(entry, base, st.st_mtime_ns, cut, held[i] == 1)
                else:  # the entry path was normalised away from the file's name
                    pending = PendingEntry(entry, full, st.st_mtime_ns, held=held[i] == 1)
                out.append(put(pending, overwrite))
        return out

    @contextmanager
    def new_file(self, name: str, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO[Any]]:
        """Open a new file that is added at entry path ``name`` when the block exits."""
        self._check_open()
        entry_path = normalize_entry_path(name)
        if self._tmpdir is None:
            self._tmpdir = tempfile.TemporaryDirectory(prefix="artifact-plugins-")
        local = Path(self._tmpdir.name) / f"{uuid.uuid4().hex}-{os.path.basename(entry_path)}"
        with open(local, mode, encoding=None if "b" in mode else encoding) as f:
            yield f
        self.add_file(local, entry_path, overwrite=True)

    def add_reference(
        self,
        uri: str,
        name: str | None = None,
        *,
        checksum: bool = True,
        max_objects: int | None = 10_000,
        overwrite: bool = False,
    ) -> list[ManifestEntry]:
        """Track an external object or prefix (``file://``, and with extras ``s3://``, ``gs://``, ``http(s)://``)."""
        self._check_open()
        entries = handler_for(uri).entries(uri, name, checksum, max_objects)
        return [self._put(PendingEntry(e), overwrite) for e in entries]

    def add(self, obj: Table | PartitionedTable, name: str, *, overwrite: bool = False) -> ManifestEntry:
        """Store a :class:`Table` as ``<name>.table.json`` or a :class:`PartitionedTable` as
        ``<name>.partitioned-table.json``."""
        if not isinstance(obj, Table | PartitionedTable):
            raise InvalidInputError(f"cannot add {type(obj).__name__} objects; supported: Table, PartitionedTable")
        path = name if name.endswith(obj.suffix) else name + obj.suffix
        with self.new_file(path, "wb") as f:
            f.write(obj.serialize())
        return self._entries[normalize_entry_path(path)].entry

    def remove(self, path_or_prefix: str) -> int:
        """Remove the entry at a path, or every entry under a directory prefix; returns how many."""
        self._check_open()
        p = normalize_entry_path(path_or_prefix.rstrip("/"))
        doomed = [k for k in self._entries if k == p or k.startswith(p + "/")]
        if not doomed:
            raise InvalidInputError(f"artifact {self.name!r} has no entry at or under {path_or_prefix!r}")
        for k in doomed:
            del self._entries[k]
        self._trees_intact = False
        return len(doomed)

    def _add_pending(self, pending: PendingEntry) -> None:
        self._entries[pending.entry.path] = pending

    # -- reading ---------------------------------------------------------------------------------

    @property
    def entries(self) -> dict[str, ManifestEntry]:
        """Entries keyed by path."""
        return {k: v.entry for k, v in self._entries.items()}

    @property
    def pending(self) -> list[PendingEntry]:
        """Entries with their local sources (for the commit pipeline)."""
        return list(self._entries.values())

    def manifest(self) -> Manifest:
        """The manifest this draft would commit."""
        return Manifest(p.entry for p in self._entries.values())

    @property
    def digest(self) -> str:
        """The version digest this draft would have."""
        return self.manifest().digest()

    @property
    def size(self) -> int:
        """Total bytes of the entries."""
        return sum(p.entry.size for p in self._entries.values())

    def _mark_logged(self, version: ArtifactVersion) -> None:
        self._logged = version
        if self._tmpdir is not None:
            self._tmpdir.cleanup()
            self._tmpdir = None

    def __del__(self) -> None:
        tmp = getattr(self, "_tmpdir", None)
        if tmp is not None:
            shutil.rmtree(tmp.name, ignore_errors=True)
