"""Step (1) of a commit on the local store: which blobs are sent, and what is refused."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from core_helpers import age_store

import artifact_plugins as ap
import artifact_plugins.core.artifact as artifact_mod
from artifact_plugins.core.errors import FileChangedError, StoreError
from artifact_plugins.core.hashing import MMAP_THRESHOLD, digest_bytes
from artifact_plugins.core.storage import blob_key
from artifact_plugins.core.storage.local import LocalStore


def _log(art: ap.Artifact) -> ap.ArtifactVersion:
    with ap.init(job_type="producer") as run:
        return run.log_artifact(art)


def _first_version(make_tree: Callable[..., Path], files: dict[str, bytes]) -> ap.ArtifactVersion:
    art = ap.Artifact("ds", "dataset")
    art.add_dir(make_tree("src", files))
    return _log(art)


def test_identical_contents_are_stored_once(make_tree: Callable[..., Path], store_dir: Path) -> None:
    files = {f"d{i % 3}/copy{i}.txt": b"the same bytes" for i in range(7)} | {"other.txt": b"other"}
    v = _first_version(make_tree, files)
    blobs = sorted(p.name for p in (store_dir / "blobs").rglob("*") if p.is_file())
    assert blobs == sorted(blob_key(digest_bytes(c)).rsplit("/", 1)[1] for c in (b"the same bytes", b"other"))
    out = v.download(store_dir.parent / "out")
    assert all((out / rel).read_bytes() == content for rel, content in files.items())


def test_a_gone_blob_is_sent_again_from_a_local_file_with_the_same_bytes(
    make_tree: Callable[..., Path], store_dir: Path, tmp_path: Path
) -> None:
    v0 = _first_version(make_tree, {"keep.txt": b"kept", "lost.txt": b"deleted by hand"})
    lost_blob = store_dir / blob_key(digest_bytes(b"deleted by hand"))
    lost_blob.unlink()
    draft = v0.new_draft()
    copy = tmp_path / "copy.txt"
    copy.write_bytes(b"deleted by hand")
    draft.add_file(copy, "copy-of-lost.txt")  # a local source for the same digest
    v1 = _log(draft)
    assert lost_blob.read_bytes() == b"deleted by hand"
    out = v1.download(tmp_path / "out")
    assert (out / "lost.txt").read_bytes() == (out / "copy-of-lost.txt").read_bytes() == b"deleted by hand"


@pytest.mark.parametrize("prefix", [None, "pre", "a/b"])
def test_files_added_with_their_directory_are_stored_from_their_own_paths(
    make_tree: Callable[..., Path], store_dir: Path, prefix: str | None
) -> None:
    # A draft keeps the directory once and rebuilds each file's path from its entry path; a
    # name that normalisation changes (NFD on disk, NFC in the manifest) keeps its own path.
    files = {"top.txt": b"top", "d1/d2/deep.txt": b"deep", "cafe\u0301.txt": b"nfd name"}
    root = make_tree("src", files)
    art = ap.Artifact("ds", "dataset")
    art.add_dir(root, name=prefix)
    on_disk = {p.source for p in art.pending}
    assert on_disk == {str(root / rel) for rel in files}
    assert sorted(p.cut >= 0 for p in art.pending) == [False, True, True]  # only the NFD name keeps its path
    v = _log(art)
    out = v.download(store_dir.parent / "out")
    lead = f"{prefix}/" if prefix else ""
    got = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert got == {f"{lead}top.txt": b"top", f"{lead}d1/d2/deep.txt": b"deep", f"{lead}caf\u00e9.txt": b"nfd name"}


@pytest.mark.parametrize("size", [5, MMAP_THRESHOLD + 1])
def test_a_file_added_with_its_directory_and_then_edited_is_logged_as_it_was_added(
    make_tree: Callable[..., Path], store_dir: Path, tmp_path: Path, size: int
) -> None:
    """A file is stored in the local store as it is hashed: the version holds what was added."""
    first = os.urandom(size)
    root = make_tree("src", {"a.bin": first, "b.txt": b"other"})
    art = ap.Artifact("ds", "dataset")
    art.add_dir(root)
    assert (store_dir / blob_key(digest_bytes(first))).read_bytes() == first  # stored while hashed
    (root / "a.bin").write_bytes(b"edited after add_dir")
    v = _log(art)
    out = v.download(tmp_path / "out")
    assert (out / "a.bin").read_bytes() == first and (out / "b.txt").read_bytes() == b"other"


def test_a_small_file_whose_stored_copy_is_gone_and_that_was_edited_is_refused(
    make_tree: Callable[..., Path], store_dir: Path
) -> None:
    """Where the bytes stored at add time are gone, the log reads the file again: an edit is refused."""
    root = make_tree("src", {"a.txt": b"first", "b.txt": b"other"})
    art = ap.Artifact("ds", "dataset")
    art.add_dir(root)
    age_store(store_dir)
    assert blob_key(digest_bytes(b"first")) in ap.Api().gc(dry_run=False, grace=timedelta(0)).deleted_blobs
    (root / "a.txt").write_bytes(b"edited after add_dir")
    with ap.init(job_type="producer") as run, pytest.raises(FileChangedError, match=r"a\.txt"):
        run.log_artifact(art)


def test_a_store_that_refuses_bytes_at_add_time_gets_them_from_the_log(
    make_tree: Callable[..., Path], store_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Storing while hashing is best effort: one refusal stops it for the draft; the log sends the rest."""
    files = {f"f{i}.txt": f"file {i}".encode() for i in range(5)}
    root = make_tree("src", files)
    refused: list[str] = []

    def full(self: LocalStore, key: str, data: bytes) -> None:
        refused.append(key)
        raise StoreError(f"no space left to store {key}")

    monkeypatch.setattr(LocalStore, "put_bytes", full)
    art = ap.Artifact("ds", "dataset")
    art.add_dir(root)  # not an error: nothing is committed at add time
    assert len(refused) == 1
    monkeypatch.undo()
    assert not (store_dir / "blobs").exists()
    out = _log(art).download(tmp_path / "out")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == files


def _blob_files(store_dir: Path) -> list[Path]:
    return sorted(p for p in (store_dir / "blobs").rglob("*") if p.is_file())


def test_a_large_file_is_copied_into_the_store_while_it_is_hashed(
    make_tree: Callable[..., Path], store_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Small files are stored from the bytes hashed, large ones copied as they are hashed: the
    log then has nothing left to send."""
    small, large = b"small", os.urandom(MMAP_THRESHOLD + 3 * 2**20 + 1)
    art = ap.Artifact("ds", "dataset")
    art.add_dir(make_tree("src", {"small.bin": small, "large.bin": large}))
    assert (store_dir / blob_key(digest_bytes(small))).read_bytes() == small
    large_blob = store_dir / blob_key(digest_bytes(large))
    assert large_blob.read_bytes() == large
    assert large_blob.stat().st_mode & 0o777 == 0o444
    assert _blob_files(store_dir) == sorted([large_blob, store_dir / blob_key(digest_bytes(small))])  # no temp file

    def nothing_left_to_send(self: LocalStore, key: str, src: object, expect: object = None) -> None:
        raise AssertionError(f"{key} was sent again by the log")

    monkeypatch.setattr(LocalStore, "put_file", nothing_left_to_send)
    out = _log(art).download(tmp_path / "out")
    assert (out / "large.bin").read_bytes() == large


def test_a_large_file_whose_blob_is_there_leaves_that_blob_alone(store_dir: Path, tmp_path: Path) -> None:
    data = os.urandom(MMAP_THRESHOLD + 1)
    first, second = tmp_path / "first.bin", tmp_path / "second.bin"
    first.write_bytes(data)
    second.write_bytes(data)
    ap.Artifact("ds", "dataset").add_file(first)
    blob = store_dir / blob_key(digest_bytes(data))
    inode = blob.stat().st_ino
    ap.Artifact("ds", "dataset").add_file(second)  # same bytes, another file: its copy is dropped
    assert blob.stat().st_ino == inode
    assert _blob_files(store_dir) == [blob]


def test_a_large_file_that_changes_while_it_is_copied_is_refused_and_leaves_nothing(
    store_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fault injection: the file is appended to right after it was hashed, while its copy may still run."""
    victim = tmp_path / "model.bin"
    victim.write_bytes(os.urandom(MMAP_THRESHOLD + 2**20))
    real = artifact_mod.hash_file

    def hash_then_append(path: str, st: object = None, keep: object = None) -> tuple[str, os.stat_result]:
        found = real(path, st, keep)  # type: ignore[arg-type]
        if keep is None and os.path.getsize(path) > MMAP_THRESHOLD:  # the large file's own hashing
            with open(path, "ab") as f:
                f.write(b"appended")
        return found

    monkeypatch.setattr(artifact_mod, "hash_file", hash_then_append)
    art = ap.Artifact("ds", "dataset")
    with pytest.raises(FileChangedError, match=r"model\.bin"):
        art.add_file(victim)
    assert not art.entries
    assert _blob_files(store_dir) == []


def test_a_store_that_cannot_take_a_large_copy_at_add_time_gets_it_from_the_log(
    store_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fault injection: the kernel's copy fails for want of space; the add still succeeds and
    the log sends the file."""
    data = os.urandom(MMAP_THRESHOLD + 1)
    src = tmp_path / "model.bin"
    src.write_bytes(data)

    def full(*args: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "copy_file_range", full)
    art = ap.Artifact("ds", "dataset")
    art.add_file(src)
    assert _blob_files(store_dir) == []
    monkeypatch.undo()
    out = _log(art).download(tmp_path / "out")
    assert (out / "model.bin").read_bytes() == data


def test_a_log_asks_about_the_entries_not_held_whatever_was_replaced_or_removed(
    make_tree: Callable[..., Path], tmp_path: Path, asked: list[str]
) -> None:
    v0 = _first_version(make_tree, {f"f{i}.txt": f"file {i}".encode() for i in range(20)})
    draft = v0.new_draft()  # its 20 entries are held by v0
    for name in ("new.txt", "f3.txt", "gone.txt"):
        (tmp_path / name).write_bytes(f"fresh {name}".encode())
        draft.add_file(tmp_path / name, name, overwrite=True)
    draft.remove("gone.txt")
    asked.clear()  # what this log asks, not v0's
    v1 = _log(draft)
    fresh = {blob_key(digest_bytes(f"fresh {name}".encode())) for name in ("new.txt", "f3.txt")}
    assert sorted(asked) == sorted(fresh)  # not the 19 held entries, nor the removed one
    assert v1.download(tmp_path / "out").joinpath("f3.txt").read_bytes() == b"fresh f3.txt"
