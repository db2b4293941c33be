"""The local-disk blob store (the embedded default)."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat as stat_mod
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

from blake3 import blake3

from ..errors import FileChangedError, IntegrityError, StoreError
from ..hashing import Stat, open_regular, read_to_check
from ..hashing import read_fd as _read_fd
from .base import BlobStore, StoredObject, local_write_error, temp_token

SMALL_FILE = 1 * 2**20

_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL
_OWNER_READ = stat_mod.S_IRUSR


def copy_file(src: str | os.PathLike[str], dest: str | os.PathLike[str]) -> None:
    """Copy bytes only (no metadata), using the kernel's copy paths (reflink/copy_file_range) when possible."""
    shutil.copyfile(src, dest)


def write_new_file(
    path: str | os.PathLike[str], data: bytes, mode: int = 0o644, *, stat: bool = False
) -> os.stat_result | None:
    """Create ``path`` (which must not exist) holding ``data``, with as few system calls as possible.

    With ``stat``, returns the new file's stat, taken from the open file (no second path lookup).
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        write_all(fd, data)
        return os.fstat(fd) if stat else None
    finally:
        os.close(fd)


def write_all(fd: int, data: bytes) -> None:
    """Write every byte of ``data`` to ``fd`` (one ``write`` unless the kernel takes fewer)."""
    written = os.write(fd, data)
    if written < len(data):  # short writes are rare: no memoryview per file otherwise
        view = memoryview(data)[written:]
        while view:
            view = view[os.write(fd, view) :]


class LocalStore(BlobStore):
    """Blobs as read-only files under a root directory, never visible half-written.

    Objects written from memory (small blobs, manifests) are created under their final names
    with no permission bits at all and made readable (``0o444``) once every byte is in: an
    object counts as present only when its owner may read it. That saves the rename a temp
    file needs (``benchmarks/bench_place.py`` times both ways). A
    writer killed mid-write leaves an unreadable file that the next writer of that object
    replaces whole (temp name + rename) and gc removes like any unreferenced blob. Large
    blobs, and every object on a file system that does not keep creation modes
    (:meth:`_keeps_modes`), are written to a temp name and renamed into place.
    """

    is_local = True
    only_gc_deletes = True

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser().resolve()
        self.uri = self.root.as_uri()
        self._prefix = f"{self.root}/"  # plain strings: pathlib costs more than the syscalls on hot paths
        self._modes_kept: bool | None = None  # see _keeps_modes

    def _path(self, key: str) -> Path:
        return self.root / key

    def _fs(self, key: str) -> str:
        return self._prefix + key

    def has(self, key: str) -> bool:
        return _complete(self._prefix + key)

    def missing(self, keys: Iterable[str]) -> set[str]:
        prefix = self._prefix
        return {k for k in keys if not _complete(prefix + k)}

    def _create(self, key: str, data: bytes) -> None:
        """Store bytes under their final name (see the class docstring); nothing if they are there."""
        if not self._keeps_modes():
            if not self.has(key):
                self._place_bytes(key, data)
            return
        final = self._prefix + key
        try:
            try:
                fd = os.open(final, _CREATE, 0)  # mode 0 whatever the umask: "still being written"
            except FileNotFoundError:
                os.makedirs(final.rsplit("/", 1)[0], exist_ok=True)
                fd = os.open(final, _CREATE, 0)
        except FileExistsError:
            if not _complete(final):  # a killed writer's leftover, or a writer still at it: replaced whole
                self._place_bytes(key, data)
            return
        try:
            write_all(fd, data)
            os.fchmod(fd, 0o444)
        except BaseException:
            # Left unreadable, so it counts as absent; its bytes are freed. Never unlinked by
            # name: another writer may have replaced it with the complete blob meanwhile.
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            raise
        finally:
            os.close(fd)

    def _place_bytes(self, key: str, data: bytes) -> None:
        """Write ``data`` to a temp name and rename it onto ``key`` (replacing whatever is there)."""
        self._place(key, lambda tmp: write_new_file(tmp, data, 0o444))

    def _keeps_modes(self) -> bool:
        """Whether this store's file system keeps the mode a file is created with.

        Some do not (FAT, SMB mounts with a fixed file mode): there a new file reads as
        readable at once, and a half-written blob under its final name would count as
        complete, so every write takes a temp name and a rename. Probed once per store object,
        with a temp file under ``blobs/`` (gc reclaims one a killed process leaves).
        """
        if self._modes_kept is None:
            parent = self._prefix + "blobs"
            probe = f"{parent}/.tmp-{temp_token()}"
            try:
                os.makedirs(parent, exist_ok=True)
                fd = os.open(probe, _CREATE, 0)
            except OSError:
                return False  # not decided: the write itself reports what is wrong
            try:
                self._modes_kept = not os.fstat(fd).st_mode & 0o777
            finally:
                os.close(fd)
                with contextlib.suppress(OSError):
                    os.unlink(probe)
        return self._modes_kept

    def _place(self, key: str, write_tmp: object) -> None:
        """Write via ``write_tmp(tmp_path)`` then rename to ``key``; creates missing directories once."""
        final = self._prefix + key
        parent = final.rsplit("/", 1)[0]
        tmp = f"{parent}/.tmp-{temp_token()}"
        assert callable(write_tmp)
        try:
            try:
                write_tmp(tmp)
            except FileNotFoundError:
                os.makedirs(parent, exist_ok=True)
                write_tmp(tmp)
            os.replace(tmp, final)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def put_file(self, key: str, src: str | os.PathLike[str], expect: Stat | None = None) -> None:
        try:
            if expect is not None and expect.st_size < SMALL_FILE:
                # Small files: read once, check the bytes still hash to the key, write them.
                data = read_to_check(src, expect.st_size)
                if blake3(data).hexdigest() != key[key.rindex("/") + 1 :]:
                    raise FileChangedError(
                        f"{os.fspath(src)!r} changed since it was added; log it again once it is stable"
                    )
                self._create(key, data)
                return

            def copy(tmp: str) -> None:
                os.close(open_regular(src))  # a FIFO or a device swapped in would block or never end
                copy_file(src, tmp)
                if expect is not None:
                    now = os.stat(src)
                    if (now.st_size, now.st_mtime_ns) != (expect.st_size, expect.st_mtime_ns):
                        raise FileChangedError(
                            f"{os.fspath(src)!r} changed while it was being stored; log it again once it is stable"
                        )
                os.chmod(tmp, 0o444)

            self._place(key, copy)
        except OSError as exc:
            raise self._error("store", key, exc) from exc

    def start_copy(self, src: str | os.PathLike[str], st: Stat) -> BlobCopy:
        """Begin copying ``src`` (``st`` its stat) into the store under a temp name, in a thread,
        before its key is known: :meth:`BlobCopy.place` makes it the blob once it is hashed.

        A large file is then read from disk once for its digest and once by the kernel for its
        copy at the same time, where hashing and then storing it took the two one after the
        other.
        """
        return BlobCopy(self, os.fspath(src), st)

    def put_bytes(self, key: str, data: bytes) -> None:
        try:
            self._create(key, data)
        except OSError as exc:
            raise self._error("store", key, exc) from exc

    def get_bytes(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except OSError as exc:
            raise self._error("read", key, exc) from exc

    def get_file(self, key: str, dest: str | os.PathLike[str], size: int | None = None) -> os.stat_result | None:
        """Copy the blob to ``dest`` and return ``dest``'s stat (a small blob's is taken while writing it).

        ``size``, the size the manifest records, saves a ``fstat``; a blob of another size is
        refused with :class:`IntegrityError` (the store was altered). The caller removes ``dest``.
        """
        try:
            src = self._prefix + key
            fd = os.open(src, os.O_RDONLY)
            try:
                expected = os.fstat(fd).st_size if size is None else size
                data = _read_fd(fd, expected) if expected < SMALL_FILE else None
            finally:
                os.close(fd)
            if data is None:
                copy_file(src, dest)
                landed = os.stat(dest)
                self._check_size(key, landed.st_size, expected)
                return landed
            self._check_size(key, len(data), expected)
            return write_new_file(dest, data, stat=True)
        except OSError as exc:
            raise (local_write_error(exc, dest) or self._error("read", key, exc)) from exc

    def _check_size(self, key: str, found: int, expected: int) -> None:
        """Refuse a blob whose size is not the recorded one (a small blob is read up to one byte past it)."""
        if found != expected:
            held = f"more than {expected}" if found > expected else str(found)
            raise IntegrityError(
                f"blob {key} in {self.root} holds {held} bytes where {expected} were recorded: the store was "
                "altered; `artifacts verify <name:version>` lists what is damaged"
            )

    def iter_objects(self, prefix: str) -> Iterator[StoredObject]:
        base = self._path(prefix)
        if not base.exists():
            return
        for dirpath, _dirs, files in os.walk(base):
            for name in files:
                full = os.path.join(dirpath, name)
                try:
                    st = os.stat(full)
                except FileNotFoundError:
                    continue
                yield StoredObject(os.path.relpath(full, self.root).replace(os.sep, "/"), st.st_size, st.st_mtime)

    def delete(self, key: str) -> None:
        try:
            self._path(key).unlink(missing_ok=True)
        except OSError as exc:
            raise self._error("delete", key, exc) from exc

    def delete_if_older(self, key: str, cutoff: float) -> bool:
        path = self._path(key)
        try:
            if os.stat(path).st_mtime >= cutoff:
                return False
            path.unlink()
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise self._error("delete", key, exc) from exc
        return True

    def local_path(self, key: str) -> str | None:
        return str(self._path(key))

    def _error(self, verb: str, key: str, exc: OSError) -> StoreError:
        if exc.errno == errno.ENOENT and verb == "read":
            return StoreError(f"blob {key} is missing from the store at {self.root}; the store was altered or gc'ed")
        if exc.errno == errno.ENOSPC:
            return StoreError(
                f"no space left to {verb} {key} in {self.root}; free space and retry (nothing was committed)"
            )
        return StoreError(f"cannot {verb} {key} in {self.root}: {exc.strerror or exc}")


#: Bytes copied per ``copy_file_range`` call by :class:`BlobCopy`: how far a copy goes on after
#: it is told to stop (the blob was there already).
COPY_CHUNK = 64 * 2**20


class BlobCopy:
    """A file being copied into a :class:`LocalStore` under a temp name (:meth:`LocalStore.start_copy`).

    Exactly one of :meth:`place` and :meth:`abandon` must follow; either waits for the copy's
    thread and leaves no temp file behind. A temp file a killed process leaves is reclaimed by
    gc like any unreferenced object under ``blobs/``.
    """

    def __init__(self, store: LocalStore, src: str, st: Stat) -> None:
        self._store, self._src, self._stat = store, src, st
        self._tmp = f"{store._prefix}blobs/blake3/.tmp-{temp_token()}"
        self._stop = threading.Event()
        self._error: OSError | None = None
        self._thread = threading.Thread(target=self._copy, name="artifact-plugins-copy", daemon=True)
        self._thread.start()

    def _copy(self) -> None:
        try:
            src = open_regular(self._src)  # a FIFO or a device swapped in would block or never end
            try:
                try:
                    dest = os.open(self._tmp, _CREATE, 0o600)
                except FileNotFoundError:
                    os.makedirs(self._tmp.rsplit("/", 1)[0], exist_ok=True)
                    dest = os.open(self._tmp, _CREATE, 0o600)
                try:
                    self._copy_range(src, dest)
                finally:
                    os.close(dest)
            finally:
                os.close(src)
        except OSError as exc:
            self._error = exc
        except StoreError as exc:  # open_regular's refusal of a special file: the hashing reports it
            self._error = OSError(errno.EINVAL, str(exc))

    def _copy_range(self, src: int, dest: int) -> None:
        """Copy in chunks by the kernel (no bytes through this process), stopping early if told."""
        size, offset = self._stat.st_size, 0
        copy_range = getattr(os, "copy_file_range", None)
        while offset < size and not self._stop.is_set():
            count = min(COPY_CHUNK, size - offset)
            try:
                sent = copy_range(src, dest, count) if copy_range is not None else 0
            except OSError as exc:
                if offset or exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL):
                    raise
                sent = 0
            if sent == 0 and offset == 0:  # no kernel copy between these two files: plain reads
                with os.fdopen(os.dup(src), "rb") as fin, os.fdopen(os.dup(dest), "wb") as fout:
                    shutil.copyfileobj(fin, fout, 2**20)
                return
            if sent == 0:
                return  # the file shrank: the stat check in place() refuses it
            offset += sent

    def place(self, key: str) -> None:
        """Wait for the copy, then make it blob ``key`` (dropped if the store has that blob).

        Raises :class:`FileChangedError` if the file's size or mtime moved since its stat was
        taken (the copy may not hold the bytes hashed), :class:`StoreError` if the copy failed.
        """
        store = self._store
        if store.has(key):
            self.abandon()
            return
        self._thread.join()
        try:
            if self._error is not None:
                raise store._error("store", key, self._error)
            now = os.stat(self._src)
            if (now.st_size, now.st_mtime_ns) != (self._stat.st_size, self._stat.st_mtime_ns):
                raise FileChangedError(
                    f"{self._src!r} changed while it was being stored; log it again once it is stable"
                )
            final = store._prefix + key
            os.chmod(self._tmp, 0o444)
            try:
                os.replace(self._tmp, final)
            except FileNotFoundError:
                os.makedirs(final.rsplit("/", 1)[0], exist_ok=True)
                os.replace(self._tmp, final)
        except OSError as exc:
            self._discard()
            raise store._error("store", key, exc) from exc
        except BaseException:
            self._discard()
            raise

    def abandon(self) -> None:
        """Stop the copy (within one chunk) and remove what it wrote."""
        self._stop.set()
        self._thread.join()
        self._discard()

    def _discard(self) -> None:
        with contextlib.suppress(OSError):
            os.unlink(self._tmp)


def _complete(path: str) -> bool:
    """Whether a blob is there under its final name with every byte in (its owner may read it)."""
    try:
        return bool(os.stat(path).st_mode & _OWNER_READ)
    except OSError:
        return False
