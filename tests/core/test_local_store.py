"""The local store writes a small blob under its final name: never visible before every byte is in."""

from __future__ import annotations

import errno
import os
import stat
from datetime import timedelta
from pathlib import Path

import pytest
from processes import finish, start_python

import artifact_plugins as ap
from artifact_plugins.core.errors import StoreError
from artifact_plugins.core.hashing import FileStat, digest_bytes
from artifact_plugins.core.storage import blob_key
from artifact_plugins.core.storage.local import LocalStore


def _source(tmp_path: Path, data: bytes, name: str = "src.bin") -> tuple[str, str, FileStat]:
    """A file holding ``data``: its blob key, path and the stat ``put_file`` checks."""
    path = tmp_path / name
    path.write_bytes(data)
    st = os.stat(path)
    return blob_key(digest_bytes(data)), str(path), FileStat(0, 0, 0, st.st_size, st.st_mtime_ns)


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_stored_small_blob_is_read_only_and_present(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    key, src, st = _source(tmp_path, b"small bytes")
    assert store.missing([key]) == {key}
    store.put_file(key, src, expect=st)
    assert store.has(key) and store.missing([key]) == set()
    assert _mode(store.root / key) == 0o444
    assert store.get_bytes(key) == b"small bytes"
    assert [p.name for p in (store.root / key).parent.iterdir()] == [key.rsplit("/", 1)[1]]  # no temp file


def test_a_killed_writers_leftover_counts_as_missing_and_is_replaced_whole(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    key, src, st = _source(tmp_path, b"the whole blob")
    leftover = store.root / key
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(b"the wh")  # what a writer killed mid-write leaves: part of it, mode 0
    os.chmod(leftover, 0)
    assert not store.has(key) and store.missing([key]) == {key}
    store.put_file(key, src, expect=st)
    assert store.has(key)
    assert leftover.read_bytes() == b"the whole blob" and _mode(leftover) == 0o444
    assert sorted(p.name for p in leftover.parent.iterdir()) == [leftover.name]


def test_a_complete_blob_is_never_written_again(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    key, src, st = _source(tmp_path, b"once")
    store.put_file(key, src, expect=st)
    before = os.stat(store.root / key)
    store.put_file(key, src, expect=st)
    after = os.stat(store.root / key)
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_a_failed_write_leaves_an_empty_unreadable_placeholder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = LocalStore(tmp_path / "store")
    key, src, st = _source(tmp_path, b"x" * 5000)

    def full(fd: int, data: bytes) -> int:  # the disk fills up mid-write (a real ENOSPC: test_rel_disk.py)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr("artifact_plugins.core.storage.local.os.write", full)
    with pytest.raises(StoreError, match="no space left"):
        store.put_file(key, src, expect=st)
    monkeypatch.undo()
    placeholder = store.root / key
    assert os.path.getsize(placeholder) == 0 and _mode(placeholder) == 0  # its bytes freed, never "present"
    assert store.missing([key]) == {key}
    store.put_file(key, src, expect=st)
    assert placeholder.read_bytes() == b"x" * 5000 and _mode(placeholder) == 0o444


def test_gc_removes_an_old_unfinished_blob(store_dir: Path) -> None:
    with ap.init(job_type="producer") as run:
        art = ap.Artifact("ds", "dataset")
        with art.new_file("a.txt") as f:
            f.write("kept")
        run.log_artifact(art)
    kept = next(p for p in (store_dir / "blobs").rglob("*") if p.is_file())
    unfinished = kept.parent / ("0" * 64)
    unfinished.write_bytes(b"")
    os.chmod(unfinished, 0)
    os.utime(unfinished, (1, 1))
    report = ap.Api().gc(dry_run=False, grace=timedelta(hours=1))
    assert not unfinished.exists() and kept.exists()
    assert any(key.endswith("0" * 64) for key in report.deleted_blobs)


def test_processes_storing_the_same_blobs_at_once_all_land_them_whole(tmp_path: Path) -> None:
    blobs = [os.urandom(3000 + i) for i in range(300)]
    src = tmp_path / "src"
    src.mkdir()
    for i, data in enumerate(blobs):
        (src / f"{i}.bin").write_bytes(data)
    code = f"""
        import os, sys
        from artifact_plugins.core.hashing import FileStat, digest_bytes
        from artifact_plugins.core.storage import blob_key
        from artifact_plugins.core.storage.local import LocalStore
        store = LocalStore({str(tmp_path / "store")!r})
        src = {str(src)!r}
        names = sorted(os.listdir(src), reverse=int(sys.argv[1]) % 2 == 1)
        for name in names:
            path = os.path.join(src, name)
            data = open(path, "rb").read()
            st = os.stat(path)
            store.put_file(blob_key(digest_bytes(data)), path, expect=FileStat(0, 0, 0, st.st_size, st.st_mtime_ns))
        print("done")
    """
    procs = [start_python(code.replace("sys.argv[1]", str(n))) for n in range(4)]
    for p in procs:
        assert finish(p)[0].strip() == "done"
    store = LocalStore(tmp_path / "store")
    keys = [blob_key(digest_bytes(data)) for data in blobs]
    assert store.missing(keys) == set()
    for key, data in zip(keys, blobs, strict=True):
        assert store.get_bytes(key) == data and _mode(store.root / key) == 0o444
    files = [p for p in (store.root / "blobs").rglob("*") if p.is_file()]
    assert len(files) == len(blobs)  # no temp file, no second copy


def test_where_the_file_system_ignores_creation_modes_blobs_take_a_temp_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On FAT or a fixed-mode SMB mount a new file reads as readable at once; mode 0 cannot mark
    a blob unfinished there, so every blob is written to a temp name and renamed (the fault:
    ``fstat`` reporting what such a file system reports)."""
    real_fstat = os.fstat

    def modes_ignored(fd: int) -> os.stat_result:
        st = real_fstat(fd)
        if stat.S_IMODE(st.st_mode) == 0:
            return os.stat_result((st.st_mode | 0o755, *tuple(st)[1:]))
        return st

    placed: list[str] = []
    real_place = LocalStore._place

    def spy(self: LocalStore, key: str, write_tmp: object) -> None:
        placed.append(key)
        real_place(self, key, write_tmp)

    monkeypatch.setattr("artifact_plugins.core.storage.local.os.fstat", modes_ignored)
    monkeypatch.setattr(LocalStore, "_place", spy)
    store = LocalStore(tmp_path / "store")
    key, src, st = _source(tmp_path, b"on a FAT stick")
    store.put_file(key, src, expect=st)
    store.put_bytes(key, b"on a FAT stick")  # there already: not written again
    assert placed == [key]
    assert store.get_bytes(key) == b"on a FAT stick" and _mode(store.root / key) == 0o444
    assert [p.name for p in (store.root / "blobs").rglob("*") if p.is_file()] == [key.rsplit("/", 1)[1]]
