"""The local-disk blob store (the embedded default)."""

from __future__ import annotations

import errno
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

from ..errors import FileChangedError, StoreError
from .base import BlobStore, StoredObject


def copy_file(src: str | os.PathLike[str], dest: str | os.PathLike[str]) -> None:
    """Copy bytes only (no metadata), using the kernel's copy paths (reflink/copy_file_range) when possible."""
    shutil.copyfile(src, dest)


class LocalStore(BlobStore):
    """Blobs as files under a root directory; writes go to a temp name and are renamed into place."""

    is_local = True

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser().resolve()
        self.uri = self.root.as_uri()
        self._made: set[Path] = set()

    def _path(self, key: str) -> Path:
        return self.root / key

    def _tmp_for(self, final: Path) -> Path:
        parent = final.parent
        if parent not in self._made:
            parent.mkdir(parents=True, exist_ok=True)
            self._made.add(parent)
        return parent / f".tmp-{uuid.uuid4().hex}"

    def has(self, key: str) -> bool:
        return os.path.exists(self._path(key))

    def put_file(self, key: str, src: str | os.PathLike[str], expect: os.stat_result | None = None) -> None:
        final = self._path(key)
        try:
            tmp = self._tmp_for(final)
            try:
                copy_file(src, tmp)
                if expect is not None:
                    now = os.stat(src)
                    if (now.st_size, now.st_mtime_ns) != (expect.st_size, expect.st_mtime_ns):
                        raise FileChangedError(
                            f"{os.fspath(src)!r} changed while it was being stored; log it again once it is stable"
                        )
                os.chmod(tmp, 0o444)
                os.replace(tmp, final)
            finally:
                if tmp.exists():
                    tmp.unlink()
        except OSError as exc:
            raise self._error("store", key, exc) from exc

    def put_bytes(self, key: str, data: bytes) -> None:
        final = self._path(key)
        try:
            tmp = self._tmp_for(final)
            try:
                with open(tmp, "wb") as f:
                    f.write(data)
                os.chmod(tmp, 0o444)
                os.replace(tmp, final)
            finally:
                if tmp.exists():
                    tmp.unlink()
        except OSError as exc:
            raise self._error("store", key, exc) from exc

    def get_bytes(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except OSError as exc:
            raise self._error("read", key, exc) from exc

    def get_file(self, key: str, dest: str | os.PathLike[str]) -> None:
        try:
            copy_file(self._path(key), dest)
        except OSError as exc:
            raise self._error("read", key, exc) from exc

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
