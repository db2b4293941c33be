"""Manifests stored as deltas of an earlier version's whole manifest.

A directory logged again after a few files changed is stored as the changed entries and the
removed paths; reading it (in a fresh process: nothing memoised) gives the whole manifest, and
gc keeps a delta's base for as long as the delta is live.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from core_helpers import age_files, age_store, tree_bytes

import artifact_plugins as ap
from artifact_plugins.core import delta as delta_mod
from artifact_plugins.core import manifest as manifest_mod
from artifact_plugins.core.client import close_clients, get_client
from artifact_plugins.core.errors import InvalidInputError
from artifact_plugins.core.hashing import digest_bytes
from artifact_plugins.core.manifest import (
    Delta,
    Manifest,
    ManifestEntry,
    delta_bytes,
    make_entry,
    read_delta_outline,
    read_stored,
)
from artifact_plugins.core.storage import blob_key, manifest_key

FILES = {f"d{i % 3}/f{i}.txt": f"content {i}" for i in range(12)}


@pytest.fixture
def src(make_tree: Callable[..., Path], small_trees: None) -> Path:
    root = make_tree("data", FILES)
    age_files(root)
    return root


def _log(root: Path, name: str | None = None, extra: Path | None = None) -> ap.ArtifactVersion:
    art = ap.Artifact("ds", "dataset")
    art.add_dir(root, name=name)
    if extra is not None:
        art.add_file(extra)
    with ap.init(job_type="producer") as run:
        return run.log_artifact(art)


def _edit(root: Path, changes: dict[str, str | None]) -> None:
    """Rewrite (or, for ``None``, remove) files, their mtimes outside the racy window."""
    for rel, text in changes.items():
        path = root / rel
        if text is None:
            path.unlink()
        else:
            path.write_text(text)
            age_files(path, seconds=60)


def _stored(version: ap.ArtifactVersion) -> Manifest | Delta:
    return read_stored(get_client().store.get_bytes(manifest_key(version.digest)))


def _read_fresh(ref: str, root: Path, dest: Path) -> None:
    """In a fresh client (no manifest memoised): ``ref`` reads, verifies and downloads as ``root``."""
    close_clients()
    version = ap.Api().artifact(ref)
    files = tree_bytes(root)
    assert {path: e.size for path, e in version.manifest().items()} == {p: len(b) for p, b in files.items()}
    assert version.verify().ok
    assert tree_bytes(version.download(dest)) == files


def test_a_few_changed_files_are_stored_as_a_delta(src: Path, tmp_path: Path) -> None:
    v0 = _log(src)
    assert isinstance(_stored(v0), Manifest)
    _edit(src, {"d0/f0.txt": "new 0", "d1/f4.txt": "new 4"})
    v1 = _log(src)
    stored = _stored(v1)
    assert isinstance(stored, Delta)
    assert stored.base == v0.digest and stored.digest == v1.digest
    assert sorted(e.path for e in stored.entries) == ["d0/f0.txt", "d1/f4.txt"] and stored.removed == []
    _read_fresh("ds:v1", src, tmp_path / "out")


def _compressed(version: ap.ArtifactVersion) -> bool:
    """Whether the version's stored manifest (gzip either way) was compressed: fewer bytes than its JSON."""
    data = get_client().store.get_bytes(manifest_key(version.digest))
    return len(data) < len(gzip.decompress(data))


def test_a_local_store_keeps_small_manifests_in_gzip_without_compressing(
    src: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whole and delta manifests alike: gzip's stored blocks (level 0) up to STORED_MAX_ENTRIES
    entries, compressed above; either reads back the same."""
    v0 = _log(src)
    _edit(src, {"d0/f0.txt": "new 0"})
    v1 = _log(src)
    assert not _compressed(v0) and not _compressed(v1)
    monkeypatch.setattr(manifest_mod, "STORED_MAX_ENTRIES", 5)  # the whole manifest's 12 entries are more
    _edit(src, {"d0/f0.txt": "newer 0", "d1/f1.txt": None})
    v2 = _log(src)
    assert isinstance(_stored(v2), Delta) and not _compressed(v2)  # 1 entry and 1 removed path
    _read_fresh("ds:v2", src, tmp_path / "v2")
    whole = _log(src, name="under")  # another prefix: stored whole
    assert isinstance(_stored(whole), Manifest) and _compressed(whole)
    close_clients()
    assert sorted(ap.Api().artifact(f"ds:v{whole.version_index}").manifest()) == sorted(
        f"under/{p}" for p in tree_bytes(src)
    )


def test_every_delta_is_of_the_same_whole_manifest(src: Path, tmp_path: Path) -> None:
    """v2 starts from v1, itself a delta of v0: v2 is stored against v0 (a read costs two objects)."""
    v0 = _log(src)
    _edit(src, {"d0/f0.txt": "new 0"})
    _log(src)
    _edit(src, {"d1/f1.txt": "new 1", "d2/f2.txt": None, "d0/added.txt": "added"})
    v2 = _log(src)
    stored = _stored(v2)
    assert isinstance(stored, Delta) and stored.base == v0.digest
    assert sorted(e.path for e in stored.entries) == ["d0/added.txt", "d0/f0.txt", "d1/f1.txt"]
    assert stored.removed == ["d2/f2.txt"]
    _read_fresh("ds:v2", src, tmp_path / "out")


def test_a_file_back_as_it_was_in_the_base_stays_right(src: Path, tmp_path: Path) -> None:
    """A file removed in v1 and added back in v2: v2's delta (of v0) must not remove it."""
    _log(src)
    _edit(src, {"d0/f0.txt": None})
    _log(src)
    _edit(src, {"d0/f0.txt": "content 0 again"})
    v2 = _log(src)
    stored = _stored(v2)
    assert isinstance(stored, Delta) and stored.removed == []
    _read_fresh("ds:v2", src, tmp_path / "out")


def test_a_large_change_is_stored_whole(src: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(delta_mod, "MIN_DELTA_LIMIT", 2)  # at most max(2, 12 // 8) changed entries
    _log(src)
    _edit(src, {"d0/f0.txt": "new 0", "d1/f1.txt": "new 1"})
    assert isinstance(_stored(_log(src)), Delta)
    _edit(src, {"d0/f0.txt": "newer 0", "d1/f1.txt": "newer 1", "d2/f2.txt": "newer 2"})
    assert isinstance(_stored(_log(src)), Manifest)


@pytest.mark.parametrize("other", ["extra entry", "other prefix"])
def test_a_draft_that_is_not_the_directory_alone_is_stored_whole(src: Path, tmp_path: Path, other: str) -> None:
    extra = tmp_path / "extra.txt"
    extra.write_text("not in the directory")
    _log(src, extra=extra) if other == "extra entry" else _log(src, name="under")
    _edit(src, {"d0/f0.txt": "new 0"})
    assert isinstance(_stored(_log(src)), Manifest)


def test_gc_keeps_the_base_of_a_live_delta(src: Path, api: ap.Api, store_dir: Path, tmp_path: Path) -> None:
    v0 = _log(src)
    _edit(src, {"d0/f0.txt": "new 0"})
    v1 = _log(src)
    age_store(store_dir)
    report = api.gc(dry_run=False, grace=timedelta(hours=1))  # v0 live: its manifest is a root and a base
    assert report.deleted_manifests == report.deleted_blobs == [] and report.live_manifests == 2
    v0.delete()
    report = api.gc(dry_run=False, grace=timedelta(hours=1))
    assert report.deleted_manifests == [] and report.live_manifests == 2
    assert report.deleted_blobs == [blob_key(digest_bytes(b"content 0"))]  # only v0's own
    _read_fresh("ds:v1", src, tmp_path / "out")
    v1.delete()
    report = api.gc(dry_run=False, grace=timedelta(hours=1))
    assert sorted(report.deleted_manifests) == sorted(manifest_key(v.digest) for v in (v0, v1))
    assert len(report.deleted_blobs) == len(FILES)


def _entries(n: int) -> list[ManifestEntry]:
    return [make_entry(f"f{i}.txt", digest_bytes(str(i).encode()), i) for i in range(n)]


def test_a_delta_that_does_not_resolve_to_its_digest_is_refused() -> None:
    base = Manifest(_entries(3))
    changed = make_entry("f0.txt", digest_bytes(b"changed"), 7)
    good = Manifest([changed, *_entries(3)[1:]])
    data = delta_bytes(good.digest(), base.digest(), [changed], ["f2.txt"])  # claims f2 stays: it does not
    with pytest.raises(InvalidInputError, match="resolves to content digest"):
        Manifest.from_bytes(data, base=lambda digest: base)
    data = delta_bytes(good.digest(), base.digest(), [changed], [])
    assert Manifest.from_bytes(data, expected_digest=good.digest(), base=lambda digest: base).entries == good.entries
    with pytest.raises(InvalidInputError, match=r"delta of .* not at hand"):
        Manifest.from_bytes(data)


def test_a_delta_whose_base_is_a_delta_is_refused(src: Path) -> None:
    """A stored delta named as a base (a tampered store) is refused, not followed."""
    v0 = _log(src)
    _edit(src, {"d0/f0.txt": "new 0"})
    v1 = _log(src)
    entry = make_entry("d0/f0.txt", digest_bytes(b"newer"), 5)
    store = get_client().store
    store.delete(manifest_key(v0.digest))
    store.put_bytes(manifest_key(v0.digest), delta_bytes(v0.digest, v1.digest, [entry], []))
    close_clients()
    with pytest.raises(InvalidInputError, match="not at hand"):
        ap.Api().artifact("ds:v1").manifest()


@pytest.mark.parametrize("removed", [["../escape"], ["a//b"], [3]], ids=["parent", "not canonical", "not a path"])
def test_a_delta_with_a_bad_removed_path_is_refused(removed: list[object]) -> None:
    base = Manifest(_entries(2))
    text = gzip.decompress(delta_bytes(base.digest(), base.digest(), [], [])).decode()
    bad = text.replace('"removed":[]', '"removed":' + json.dumps(removed))
    with pytest.raises(InvalidInputError, match="invalid list of removed paths"):
        read_stored(gzip.compress(bad.encode()))


def test_a_delta_outline_names_what_the_delta_changes() -> None:
    """Planning the next delta reads only the paths of the one before: the same paths, the same
    head, and the same refusals of what is not a delta this code wrote."""
    base = Manifest(_entries(4))
    changed = _entries(3)[1:]
    data = delta_bytes(digest_bytes(b"result"), base.digest(), changed, ["f0.txt"])
    outline, full = read_delta_outline(data), read_stored(data)
    assert isinstance(full, Delta)
    assert (outline.digest, outline.base, outline.removed) == (full.digest, full.base, full.removed)
    assert outline.paths == [e.path for e in full.entries]
    with pytest.raises(InvalidInputError, match="whole"):
        read_delta_outline(base.to_bytes())
    unicode = [make_entry("données/é.txt", digest_bytes(b"u"), 1)]  # canonical, not the plain fast path
    for entries in ([], unicode):
        other = delta_bytes(digest_bytes(b"result"), base.digest(), entries, [])
        assert read_delta_outline(other).paths == [e.path for e in entries]
    text = gzip.decompress(data).decode()
    for bad in (text.replace(changed[0].path, "../up"), text.replace(changed[0].path, changed[1].path)):
        with pytest.raises(InvalidInputError, match="invalid entry list"):
            read_delta_outline(gzip.compress(bad.encode()))


def test_a_left_over_delta_whose_base_is_gone_is_written_again_whole(src: Path, tmp_path: Path) -> None:
    """A delta no committed version references, whose base is gone (a gc that stopped between
    deleting the base and the delta), is not reused by a log of the same content."""
    v0 = _log(src)
    _edit(src, {"d0/f0.txt": "new 0"})
    v1 = _log(src)
    assert isinstance(_stored(v1), Delta)
    v1.delete()
    v0.delete()
    registry = get_client().registry
    turn = registry.acquire_store_lock("gc", "a collection that stopped")  # it went ahead: counted itself
    get_client().store.delete(manifest_key(v0.digest))
    registry.release_store_lock(turn)
    close_clients()
    v2 = _log(src)
    assert v2.digest == v1.digest and isinstance(_stored(v2), Manifest)
    _read_fresh("ds:v2", src, tmp_path / "out")


def test_a_new_draft_of_a_version_is_stored_as_a_delta_of_it(make_tree: Callable[..., Path]) -> None:
    """``v.new_draft()`` plus a few edits: stored as those edits, against the whole manifest
    underneath (v2, drafted from v1, itself a delta of v0, is a delta of v0)."""
    v0 = _log(make_tree("src", {f"f{i:02d}.txt": f"content {i}" for i in range(20)}))
    draft = v0.new_draft()
    draft.remove("f03.txt")
    with draft.new_file("f05.txt") as f:
        f.write("replaced")
    with draft.new_file("new.txt") as f:
        f.write("added")
    with ap.init(job_type="producer") as run:
        v1 = run.log_artifact(draft)
    stored = _stored(v1)
    assert isinstance(stored, Delta) and stored.base == v0.digest
    assert sorted(e.path for e in stored.entries) == ["f05.txt", "new.txt"] and stored.removed == ["f03.txt"]
    draft = v1.new_draft()
    draft.remove("new.txt")
    with ap.init(job_type="producer") as run:
        v2 = run.log_artifact(draft)
    stored = _stored(v2)
    assert isinstance(stored, Delta) and stored.base == v0.digest
    assert [e.path for e in stored.entries] == ["f05.txt"] and sorted(stored.removed) == ["f03.txt", "new.txt"]
    close_clients()
    api = ap.Api()
    assert {p: e.digest for p, e in api.artifact("ds:v2").manifest().items()} == {
        **{f"f{i:02d}.txt": digest_bytes(f"content {i}".encode()) for i in range(20) if i != 3},
        "f05.txt": digest_bytes(b"replaced"),
    }
    assert api.artifact("ds:v1").verify().ok and api.artifact("ds:v2").verify().ok


def test_the_mark_says_how_the_version_is_stored_across_a_relog(src: Path) -> None:
    """The checksum cache's mark of the directory names the version, the base its manifest is
    a delta of and the store generation its commit was fenced by; a re-log (which reuses the
    version and writes no manifest) keeps all three."""
    from artifact_plugins.core.artifact import _scan_dir
    from artifact_plugins.core.hashing import TreeMark

    v0 = _log(src)
    _edit(src, {"d0/f0.txt": "new 0"})
    v1 = _log(src)
    for _ in range(2):  # after the log, and after a re-log of the same files
        _, rels, stats = _scan_dir(str(src))
        known = get_client().checksum_cache.known_tree(str(src), rels, stats)
        generation = get_client().registry.store_generation()
        mark = TreeMark(v1.digest, "", True, v0.digest, generation)
        assert known is not None and known.held_by == {get_client().scope: mark}
        assert _log(src).version == "v1"
