"""Blobs a log does not ask the store about: held by a committed version the draft started from,
or stored by the draft itself as it hashed the files.

For held blobs the log checks, in its turn at the store, that the version is still committed,
and asks about every blob when it is not. What marks a directory as held by a version is the
checksum cache's record of the directory's last scan, written after its commit. For stored
blobs it checks that no garbage collection went ahead since the draft began storing (the
store's generation), and asks about every blob when one did.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import cast

import pytest
from core_helpers import age_files, age_store, tree_bytes

import artifact_plugins as ap
from artifact_plugins.core import artifact, hashing
from artifact_plugins.core.client import close_clients
from artifact_plugins.core.errors import StoreError
from artifact_plugins.core.hashing import digest_bytes
from artifact_plugins.core.registry.registry import Registry
from artifact_plugins.core.storage import blob_key
from artifact_plugins.core.storage.local import LocalStore

FILES = {f"d{i % 3}/f{i}.txt": f"content {i}" for i in range(12)}


@pytest.fixture(autouse=True)
def trusted_from_one_file(monkeypatch: pytest.MonkeyPatch) -> None:
    """Directories of any size have the blobs stored as hashed flagged (here a dozen files)."""
    monkeypatch.setattr(artifact, "TRUST_STORED_MIN_FILES", 1)


@pytest.fixture
def generation_reads(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Every read of the store's generation (``Registry.store_generation``), by its ``while_idle``."""
    reads: list[bool] = []
    real = Registry.store_generation

    def counted(self: Registry, *, while_idle: bool = False) -> int | None:
        reads.append(while_idle)
        return real(self, while_idle=while_idle)

    monkeypatch.setattr(Registry, "store_generation", counted)
    return reads


@pytest.fixture
def held_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Drafts flag no entry for having stored its blob as it was hashed: what the store is asked
    about then shows what the versions a draft started from hold."""
    monkeypatch.setattr(ap.Artifact, "_flag_stored", lambda *args: None)


@pytest.fixture
def src(make_tree: Callable[..., Path], small_trees: None) -> Path:
    root = make_tree("data", FILES)
    age_files(root)
    return root


def _log(art: ap.Artifact) -> ap.ArtifactVersion:
    with ap.init(job_type="producer") as run:
        return run.log_artifact(art)


def _draft(root: Path) -> ap.Artifact:
    art = ap.Artifact("ds", "dataset")
    art.add_dir(root)
    return art


def _rewrite(root: Path, rels: list[str], tag: str) -> list[str]:
    """New contents for ``rels`` (their mtimes outside the racy window); their blob keys."""
    for rel in rels:
        (root / rel).write_text(f"{tag} {rel}")
        age_files(root / rel, seconds=60)
    return [blob_key(digest_bytes(f"{tag} {rel}".encode())) for rel in rels]


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _same_files(version: ap.ArtifactVersion, root: Path, dest: Path) -> bool:
    """Whether ``version`` downloads to exactly the files under ``root``."""
    return tree_bytes(version.download(dest)) == tree_bytes(root)


def test_a_log_after_a_change_asks_the_store_only_about_what_changed(
    src: Path, asked: list[str], tmp_path: Path, held_only: None
) -> None:
    _log(_draft(src))
    for k, changed in enumerate([["d0/f0.txt", "d1/f4.txt"], ["d2/f5.txt"]], start=1):
        new_keys = _rewrite(src, changed, f"round {k}")
        asked.clear()
        v = _log(_draft(src))
        assert v.version == f"v{k}"
        assert sorted(asked) == sorted(new_keys)  # the other blobs are held by the previous version
        assert v.verify().ok and _same_files(v, src, tmp_path / f"out{k}")


def test_a_relog_that_rewrites_the_rows_keeps_the_directory_held(
    src: Path, asked: list[str], monkeypatch: pytest.MonkeyPatch, held_only: None
) -> None:
    """A file logged right after it was written is not remembered, so a re-log of the same files
    (the same version) looks it up again and writes the directory's rows anew: it marks the new
    rows as held too, and the log after the next change still asks only about what changed."""
    monkeypatch.setattr(hashing, "FINE_RACY_WINDOW_NS", 60 * 10**9)  # just written, however slow the machine
    _log(_draft(src))
    (src / "d0/f0.txt").write_text("fresh")
    assert _log(_draft(src)).version == "v1"
    assert _log(_draft(src)).version == "v1"  # a re-log: the fresh file is looked up again
    (changed,) = _rewrite(src, ["d1/f1.txt"], "changed")
    asked.clear()
    assert _log(_draft(src)).version == "v2"
    assert sorted(asked) == sorted([changed, blob_key(digest_bytes(b"fresh"))])


def test_a_base_no_longer_committed_makes_the_log_ask_about_every_blob(
    src: Path, asked: list[str], api: ap.Api, store_dir: Path, tmp_path: Path
) -> None:
    v0 = _log(_draft(src))
    (changed,) = _rewrite(src, ["d0/f0.txt"], "changed")
    draft = _draft(src)  # its unchanged entries are held by v0 ...
    v0.delete()  # ... which a gc then takes away, before the log
    age_store(store_dir)
    # v0's blobs, and the changed file's, stored as the draft hashed it
    assert len(api.gc(dry_run=False, grace=timedelta(hours=1)).deleted_blobs) == len(FILES) + 1
    asked.clear()
    v1 = _log(draft)
    # v0 is found gone in the turn: every blob is asked about, and sent again from the files.
    assert sorted(asked) == sorted(blob_key(e.digest) for e in draft.entries.values())
    assert changed in asked
    assert v1.verify().ok and _same_files(v1, src, tmp_path / "out")


def test_a_log_after_a_change_reads_nothing_from_the_registry_before_asking_the_store(
    src: Path, asked: list[str], tmp_path: Path, held_only: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """v0's commit was fenced by the store's generation, which the directory's mark keeps: the
    next log takes it as its fence (its transaction checks it, and that v0 is still committed)
    instead of reading the store view first."""
    _log(_draft(src))
    (changed,) = _rewrite(src, ["d0/f0.txt"], "changed")
    views: list[object] = []
    real_view = Registry.store_view
    monkeypatch.setattr(Registry, "store_view", lambda self, held=(): views.append(held) or real_view(self, held))
    asked.clear()
    v1 = _log(_draft(src))
    assert asked == [changed]
    assert views == []
    assert v1.verify().ok and _same_files(v1, src, tmp_path / "out")


def test_a_base_deleted_without_a_gc_makes_the_log_ask_about_every_blob(
    src: Path, asked: list[str], tmp_path: Path, held_only: None
) -> None:
    """The store's generation is unchanged (no collection ran), so only the check that the
    versions holding the unchanged blobs are still committed tells the log to ask about them."""
    v0 = _log(_draft(src))
    _rewrite(src, ["d0/f0.txt"], "changed")
    draft = _draft(src)
    v0.delete()
    asked.clear()
    v1 = _log(draft)
    assert set(asked) == {blob_key(e.digest) for e in draft.entries.values()}
    assert v1.verify().ok and _same_files(v1, src, tmp_path / "out")


def test_a_registry_and_store_made_anew_in_the_same_place_get_every_blob(
    src: Path, tmp_path: Path, store_dir: Path, registry_db: Path, held_only: None
) -> None:
    """The checksum cache outlives them: its mark names v0 and generation 0, which the new
    registry's generation also is. The commit finds v0 unknown, so the store is asked about
    every blob and they are all sent again."""
    _log(_draft(src))
    close_clients()
    shutil.rmtree(store_dir)
    registry_db.unlink()
    _rewrite(src, ["d0/f0.txt"], "changed")
    v0 = _log(_draft(src))
    assert v0.version == "v0"
    assert v0.verify().ok and _same_files(v0, src, tmp_path / "out")


def test_a_gc_since_the_directorys_last_log_makes_the_log_check_the_registry_and_the_store(
    src: Path, asked: list[str], tmp_path: Path, api: ap.Api, store_dir: Path, held_only: None
) -> None:
    """The mark's generation is out of date once a collection went ahead (here one that deleted
    nothing of v0): the commit finds its assumed fence broken, records nothing, and runs again
    from a fresh read of the registry; v0 is still committed, so only what changed is asked about."""
    _log(_draft(src))
    api.gc(dry_run=False, grace=timedelta(hours=1))
    (changed,) = _rewrite(src, ["d0/f0.txt"], "changed")
    asked.clear()
    v1 = _log(_draft(src))
    assert asked == [changed, changed]  # once under the assumed fence, once after the fresh read
    assert v1.version == "v1" and v1.verify().ok and _same_files(v1, src, tmp_path / "out")
    (again,) = _rewrite(src, ["d1/f1.txt"], "again")
    asked.clear()
    assert _log(_draft(src)).version == "v2"
    assert asked == [again]  # v1's commit was fenced by the new generation: assumed again


def test_a_new_draft_whose_base_was_deleted_without_a_gc_asks_about_every_blob(
    src: Path, asked: list[str], tmp_path: Path, held_only: None
) -> None:
    """A draft made from a version knows no store generation its blobs were present under: only
    the check that the version is still committed tells the log to ask about them."""
    v0 = _log(_draft(src))
    draft = v0.new_draft()
    draft.add_file(_write(tmp_path / "added.txt", "added"), "added.txt")
    v0.delete()
    asked.clear()
    v1 = _log(draft)
    assert sorted(asked) == sorted({blob_key(e.digest) for e in draft.entries.values()})
    assert v1.verify().ok


def test_a_carried_over_entry_whose_base_was_collected_is_refused(
    make_tree: Callable[..., Path], api: ap.Api, store_dir: Path, snapshot: Callable[[], object]
) -> None:
    v0 = _log(_draft(make_tree("src", {"keep.txt": b"kept", "lost.txt": b"collected"})))
    draft = v0.new_draft()
    with draft.new_file("added.txt") as f:
        f.write("new")
    v0.delete()
    age_store(store_dir)
    api.gc(dry_run=False, grace=timedelta(hours=1))
    with ap.init(job_type="producer") as run:
        before = snapshot()
        with pytest.raises(StoreError, match=r"2 entries carried over.*'keep\.txt'"):
            run.log_artifact(draft)
        assert snapshot() == before  # no version, no manifest, no blob of the refused log
    assert draft.logged_version is None


def test_a_blob_deleted_by_hand_from_a_committed_base_is_found_by_verify(
    make_tree: Callable[..., Path], store_dir: Path
) -> None:
    """The log trusts a committed version to hold its blobs (as the re-log shortcut does): a blob
    removed from the store behind the project's back is not asked about, ``verify`` names it."""
    v0 = _log(_draft(make_tree("src", {"keep.txt": b"kept", "lost.txt": b"deleted by hand"})))
    (store_dir / blob_key(digest_bytes(b"deleted by hand"))).unlink()
    draft = v0.new_draft()
    with draft.new_file("added.txt") as f:
        f.write("new")
    report = _log(draft).verify()
    assert [(m.path, m.problem) for m in report.mismatches] == [("lost.txt", "missing")]


def test_a_draft_that_dropped_a_file_marks_nothing(
    src: Path, asked: list[str], api: ap.Api, store_dir: Path, tmp_path: Path
) -> None:
    """v0 lacks a file of the directory, so it must not be marked as holding the directory: the
    file's blob (collected: no version has it) is asked about and sent by the next log."""
    art = _draft(src)
    art.remove("d0/f0.txt")
    _log(art)
    age_store(store_dir)
    assert api.gc(dry_run=False, grace=timedelta(hours=1)).deleted_blobs == [blob_key(digest_bytes(b"content 0"))]
    asked.clear()
    v1 = _log(_draft(src))
    assert len(asked) == len(FILES)
    assert v1.verify().ok and _same_files(v1, src, tmp_path / "out")


def test_a_log_into_another_store_asks_about_every_blob(
    src: Path, asked: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A directory held by a version of one store (and registry) is not held in another."""
    _log(_draft(src))
    monkeypatch.setenv("ARTIFACT_PLUGINS_STORE", str(tmp_path / "other-store"))
    close_clients()
    asked.clear()
    v = _log(_draft(src))
    assert len(asked) == len(FILES)
    assert v.verify().ok and _same_files(v, src, tmp_path / "out")


def test_a_scan_by_another_process_in_between_is_not_patched_over(
    src: Path, asked: list[str], api: ap.Api, store_dir: Path, tmp_path: Path, held_only: None
) -> None:
    """Process A reads the directory's rows, then process B scans the directory (a file changed
    in between) and writes them, then A writes its own. A's scan must replace B's rows whole, not
    patch them: patched, they would say A's version holds the file B saw changed, and the next
    log would not send that file's bytes (here collected as garbage, as no version has them)."""
    from processes import finish, start_python, wait_for_file

    _log(_draft(src))
    _rewrite(src, ["d0/f3.txt"], "seen by A")
    scanned, go = tmp_path / "scanned", tmp_path / "go"
    setup = f"""
        import time
        from pathlib import Path
        import artifact_plugins as ap
        from artifact_plugins.core import artifact, hashing
        artifact.TREE_MIN_FILES = 5
        src = {str(src)!r}
    """
    a = start_python(
        setup
        + f"""
        remember = hashing.ChecksumCache.remember_tree
        def paused(self, *args, **kwargs):
            Path({str(scanned)!r}).touch()
            while not Path({str(go)!r}).exists():
                time.sleep(0.01)
            return remember(self, *args, **kwargs)
        hashing.ChecksumCache.remember_tree = paused
        art = ap.Artifact("ds", "dataset")
        art.add_dir(src)
        with ap.init(job_type="a") as run:
            run.log_artifact(art)
        """
    )
    wait_for_file(scanned, a)
    (seen_by_b,) = _rewrite(src, ["d1/f4.txt"], "seen by B")
    finish(start_python(setup + '\n        ap.Artifact("ds", "dataset").add_dir(src)\n'))
    go.touch()
    finish(a)
    age_store(store_dir)
    assert seen_by_b in api.gc(dry_run=False, grace=timedelta(hours=1)).deleted_blobs
    asked.clear()
    v = _log(_draft(src))
    assert seen_by_b in asked
    assert v.verify().ok and _same_files(v, src, tmp_path / "out")


def _keys(art: ap.Artifact) -> list[str]:
    return sorted(blob_key(e.digest) for e in art.entries.values())


def test_a_log_does_not_ask_the_store_about_blobs_its_draft_stored(src: Path, asked: list[str], tmp_path: Path) -> None:
    v0 = _log(_draft(src))
    assert asked == []  # every blob was stored as its file was hashed, and no gc ran since
    _rewrite(src, ["d0/f0.txt"], "changed")
    v1 = _log(_draft(src))
    assert asked == []  # held by v0, or stored by the draft
    assert v0.verify().ok and v1.verify().ok
    assert _same_files(v1, src, tmp_path / "out")


def test_a_gc_after_the_draft_stored_its_blobs_makes_the_log_ask_about_every_blob(
    src: Path, asked: list[str], api: ap.Api, store_dir: Path, tmp_path: Path
) -> None:
    draft = _draft(src)  # stores every blob; none is referenced yet
    age_store(store_dir)
    assert len(api.gc(dry_run=False, grace=timedelta(0)).deleted_blobs) == len(FILES)
    v = _log(draft)
    assert sorted(asked) == _keys(draft)  # the generation moved: every blob asked about, and sent again
    assert v.verify().ok and _same_files(v, src, tmp_path / "out")


def test_a_draft_begun_while_a_gc_has_its_turn_asks_about_every_blob(
    src: Path, asked: list[str], api: ap.Api, store_dir: Path, tmp_path: Path
) -> None:
    """A collection that already went ahead when the draft began counted itself before: the
    generation does not move again, so the draft must not rely on it."""
    registry = ap.Api()._client.registry
    turn = registry.acquire_store_lock("gc")
    try:
        draft = _draft(src)
        lost = sorted(store_dir.glob("blobs/blake3/*/*"))[0]
        lost.unlink()  # what the collection deletes while it runs
    finally:
        registry.release_store_lock(turn)
    v = _log(draft)
    assert sorted(asked) == _keys(draft)
    assert lost.exists() and v.verify().ok and _same_files(v, src, tmp_path / "out")


def test_a_draft_whose_store_refused_a_blob_asks_about_every_blob_of_that_directory(
    src: Path, make_tree: Callable[..., Path], asked: list[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    first = make_tree("first", {"a.txt": "a", "b.txt": "b"})
    draft = ap.Artifact("ds", "dataset")
    draft.add_dir(first)  # stored as hashed: flagged
    real, calls = LocalStore.put_bytes, []

    def refusing(self: LocalStore, key: str, data: bytes) -> None:  # the disk fills up half-way
        calls.append(key)
        if len(calls) > 3:
            raise StoreError(f"no space left to store {key}")
        real(self, key, data)

    monkeypatch.setattr(LocalStore, "put_bytes", refusing)
    draft.add_dir(src, "more")
    monkeypatch.setattr(LocalStore, "put_bytes", real)
    v = _log(draft)
    more = sorted(blob_key(e.digest) for p, e in draft.entries.items() if p.startswith("more/"))
    assert sorted(asked) == more  # not the first directory's, stored before
    out = v.download(tmp_path / "out")
    assert v.verify().ok and tree_bytes(out / "more") == tree_bytes(src) and (out / "a.txt").read_text() == "a"


def test_a_collection_that_deletes_counts_itself_in_the_store_generation(
    src: Path, api: ap.Api, store_dir: Path
) -> None:
    registry = ap.Api()._client.registry
    before = registry.store_generation()
    api.gc(dry_run=True, grace=timedelta(0))
    assert registry.store_generation() == before  # a dry run deletes nothing
    api.gc(dry_run=False, grace=timedelta(0))
    assert registry.store_generation() == cast(int, before) + 1
    assert registry.store_generation(while_idle=True) == cast(int, before) + 1


def test_blobs_a_forked_helper_failed_to_store_are_stored_by_the_parent(
    make_tree: Callable[..., Path], asked: list[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The second half of many small files is hashed (and stored) in a forked child. A blob the
    child cannot store must not end up flagged as stored: the file counts as not done there, and
    the parent hashes and stores it (here with success, so nothing needs asking about)."""
    import os

    from artifact_plugins.core import forked

    monkeypatch.setattr(forked, "RESIDENT_BYTES_PER_ITEM", 2**40)
    n = forked.FORK_MIN_ITEMS + 10
    assert forked.fork_pays(n), "this test needs a second core"
    root = make_tree("many", {f"f{i:05d}.txt": f"file {i}" for i in range(n)})
    age_files(root)
    parent, real = os.getpid(), LocalStore.put_bytes

    def child_refuses(self: LocalStore, key: str, data: bytes) -> None:
        if os.getpid() != parent:
            raise StoreError(f"the child cannot store {key}")
        real(self, key, data)

    monkeypatch.setattr(LocalStore, "put_bytes", child_refuses)
    draft = _draft(root)
    monkeypatch.setattr(LocalStore, "put_bytes", real)
    v = _log(draft)
    assert asked == []
    assert v.verify().ok and _same_files(v, root, tmp_path / "out")


def test_a_small_directory_is_not_worth_the_registry_read(
    src: Path, asked: list[str], generation_reads: list[bool], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(artifact, "TRUST_STORED_MIN_FILES", len(FILES) + 1)
    draft = _draft(src)
    with draft.new_file("extra.txt") as f:
        f.write("one more")
    assert _log(draft).verify().ok
    assert generation_reads == [] and sorted(asked) == _keys(draft)


def test_a_few_changed_files_are_flagged_stored_by_the_generation_of_the_directorys_mark(
    src: Path, asked: list[str], generation_reads: list[bool], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Too few files to read the store's generation for: the mark of the directory's last commit
    knows one, read before any of the new blobs was stored, so they are not asked about either."""
    monkeypatch.setattr(artifact, "TRUST_STORED_MIN_FILES", len(FILES) + 1)
    v0 = _log(_draft(src))
    _rewrite(src, ["d0/f0.txt", "d1/f4.txt"], "changed")
    asked.clear()
    v1 = _log(_draft(src))
    assert asked == [] and generation_reads == []
    assert v0.verify().ok and v1.verify().ok and _same_files(v1, src, tmp_path / "out")


def test_a_gc_after_a_few_changed_files_were_stored_makes_the_log_ask_about_every_blob(
    src: Path, asked: list[str], api: ap.Api, store_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The blobs of the changed files, flagged by the mark's generation, are collected before the
    commit (nothing references them yet): the generation moved, so every blob is asked about and
    the collected ones are sent again."""
    monkeypatch.setattr(artifact, "TRUST_STORED_MIN_FILES", len(FILES) + 1)
    _log(_draft(src))
    new_keys = _rewrite(src, ["d0/f0.txt", "d1/f4.txt"], "changed")
    draft = _draft(src)
    age_store(store_dir)
    assert sorted(api.gc(dry_run=False, grace=timedelta(0)).deleted_blobs) == sorted(new_keys)
    asked.clear()
    v1 = _log(draft)
    assert set(new_keys) <= set(asked) and set(asked) == set(_keys(draft))
    assert v1.verify().ok and _same_files(v1, src, tmp_path / "out")


def test_a_draft_stored_in_one_store_and_logged_into_another_asks_about_every_blob(
    src: Path, asked: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    draft = _draft(src)  # its blobs stored in the default store, and flagged for it
    monkeypatch.setenv("ARTIFACT_PLUGINS_STORE", str(tmp_path / "other-store"))
    close_clients()
    v = _log(draft)
    assert sorted(asked) == _keys(draft)  # none is taken as present there: all are sent
    assert v.verify().ok and _same_files(v, src, tmp_path / "out")
