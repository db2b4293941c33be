"""``file://`` references: local or network-mounted files tracked in place."""

from __future__ import annotations

import os
import shutil
from functools import partial
from pathlib import Path
from urllib.parse import unquote, urlsplit

from ..errors import InvalidInputError
from ..hashing import hash_file
from ..manifest import ManifestEntry
from ..naming import join_entry_path, normalize_entry_path
from .base import (
    Drift,
    ReferenceChangedError,
    ReferenceHandler,
    TooManyObjectsError,
    fetch_tree,
    identity_digest,
    is_unchecked,
)


def _path_of(uri: str) -> Path:
    parts = urlsplit(uri)
    if parts.netloc not in ("", "localhost"):
        raise InvalidInputError(f"file reference {uri!r} names host {parts.netloc!r}; only local paths are supported")
    return Path(unquote(parts.path))


class FileReferenceHandler(ReferenceHandler):
    """Records content digests of local files (or only their URI with ``checksum=False``)."""

    schemes = ("file",)

    def entries(self, uri: str, name: str | None, checksum: bool, max_objects: int | None) -> list[ManifestEntry]:
        root = _path_of(uri)
        if not root.exists():
            raise InvalidInputError(f"file reference {uri!r}: {root} does not exist")
        if not checksum:
            path = normalize_entry_path(name or root.name)
            return [ManifestEntry(path=path, digest=identity_digest(uri), size=0, ref=uri)]
        if root.is_file():
            digest, st = hash_file(root)
            return [
                ManifestEntry(path=normalize_entry_path(name or root.name), digest=digest, size=st.st_size, ref=uri)
            ]
        out: list[ManifestEntry] = []
        prefix = name if name is not None else root.name
        for dirpath, dirs, files in os.walk(root):
            dirs.sort()
            for fname in sorted(files):
                full = Path(dirpath) / fname
                if not full.is_file():
                    continue
                if max_objects is not None and len(out) >= max_objects:
                    raise TooManyObjectsError(
                        f"file reference {uri!r} holds more than max_objects={max_objects} files; "
                        "raise max_objects or reference a narrower prefix"
                    )
                rel = full.relative_to(root).as_posix()
                digest, st = hash_file(full)
                out.append(
                    ManifestEntry(path=join_entry_path(prefix, rel), digest=digest, size=st.st_size, ref=full.as_uri())
                )
        return out

    def fetch(self, entry: ManifestEntry, dest: str | os.PathLike[str]) -> None:
        assert entry.ref is not None
        src = _path_of(entry.ref)
        if entry.size == 0 and is_unchecked(entry):  # checksum=False: the URI alone
            if src.is_dir():
                files = sorted(p for p in src.rglob("*") if p.is_file())
                fetch_tree(
                    entry.ref,
                    os.fspath(dest),
                    ((p.relative_to(src).as_posix(), partial(shutil.copyfile, p)) for p in files),
                )
                return
            if not src.is_file():
                raise ReferenceChangedError(
                    f"reference {entry.ref} names nothing now (it was logged with checksum=False)"
                )
            shutil.copyfile(src, dest)
            return
        if self.check(entry) != "unchanged":
            raise ReferenceChangedError(
                f"reference {entry.ref} changed since it was logged (recorded {entry.digest}); "
                "log a new version to track its current content"
            )
        shutil.copyfile(src, dest)

    def check(self, entry: ManifestEntry) -> Drift:
        assert entry.ref is not None
        src = _path_of(entry.ref)
        if entry.size == 0 and is_unchecked(entry):
            return "unchanged" if src.is_file() or (src.is_dir() and any(src.iterdir())) else "missing"
        if not src.is_file():
            return "missing"
        digest, _ = hash_file(src)
        return "unchanged" if digest == entry.digest else "changed"
