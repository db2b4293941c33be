"""Downloads mark what they are building with a held lock, so what dead ones left can be removed.

A download builds a new root in a hidden sibling ``.<name>.tmp-<token>`` and writes into an
existing root under per-file temp names ``.<file>.tmp-<token>`` (``transfer.py``). Either way it
holds a lock on ``<prefix><token>.lock`` for as long as it runs: beside the new root, or inside
the existing one. The operating system drops the lock when its process dies, however it dies,
so a later download of the same root that can take the lock knows the token's owner is gone and
removes whatever carries that token. A live download's lock cannot be taken: its files stay.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Iterator

from filelock import FileLock, Timeout

from .storage.base import temp_token

LOCK_SUFFIX = ".lock"
#: Lock files of downloads into an existing root, inside that root.
IN_ROOT_PREFIX = ".download.tmp-"


class Claim:
    """A token whose lock file is held: ``<directory>/<prefix><token>.lock``."""

    def __init__(self, path: str, token: str, lock: FileLock) -> None:
        self.path, self.token, self._lock = path, token, lock

    def release(self) -> None:
        """Remove the lock file, then let go of the lock (a sweeper that takes it then finds nothing)."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        self._lock.release()


def claim(directory: str, prefix: str) -> Claim:
    """A new token, held as ``<directory>/<prefix><token>.lock`` until :meth:`Claim.release`.

    Raises ``OSError`` where the lock file cannot be created (a read-only directory).
    """
    token = temp_token()
    path = os.path.join(directory, f"{prefix}{token}{LOCK_SUFFIX}")
    lock = FileLock(path, timeout=0)
    lock.acquire()  # a new file: never contended
    return Claim(path, token, lock)


def sweep(directory: str, prefix: str, remove: Callable[[str], object]) -> None:
    """For each claim in ``directory`` named ``<prefix>…`` whose holder died: ``remove(token)``
    (what carries its token), then the claim itself. Live claims and their files are left alone."""
    for dead in _dead_claims(directory, prefix):
        try:
            remove(dead.token)
        finally:
            dead.release()


def _dead_claims(directory: str, prefix: str) -> Iterator[Claim]:
    """The claims in ``directory`` named ``<prefix>…`` whose holder died, each taken over."""
    try:
        with os.scandir(directory) as it:
            names = [e.name for e in it if e.name.startswith(prefix) and e.name.endswith(LOCK_SUFFIX)]
    except OSError:
        return
    for name in names:
        path = os.path.join(directory, name)
        lock = FileLock(path, timeout=0)
        try:
            lock.acquire()
        except (Timeout, OSError):
            continue  # held by a live download (or not ours to take)
        yield Claim(path, name[len(prefix) : -len(LOCK_SUFFIX)], lock)


def remove_tagged(root: str, token: str) -> None:
    """Remove the temp files (and temp directories) under ``root`` that carry ``token``:
    ``.<name>.tmp-<token>`` and ``.<name>.tmp-<token>.old``."""
    tags = (f".tmp-{token}", f".tmp-{token}.old")
    for dirpath, dirs, files in os.walk(root):
        for name in [*files, *dirs]:
            if name.startswith(".") and name.endswith(tags):
                path = os.path.join(dirpath, name)
                if os.path.isdir(path) and not os.path.islink(path):
                    shutil.rmtree(path, ignore_errors=True)
                    dirs.remove(name)
                else:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(path)
