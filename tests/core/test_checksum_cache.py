"""The stat-keyed checksum cache: unchanged files are not rehashed, changed files are."""

from __future__ import annotations

import os
import random
import struct
import threading
import time

import pytest
from core_helpers import age_files

import artifact_plugins as ap
from artifact_plugins.core import artifact as artifact_mod
from artifact_plugins.core import hashing
from artifact_plugins.core.client import get_client
from artifact_plugins.core.hashing import ChecksumCache, digest_bytes


@pytest.fixture
def hash_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every path hashed through ``hashing.hash_file`` (wherever imported)."""
    calls: list[str] = []
    lock = threading.Lock()
    real = hashing.hash_file

    def counting(path, st=None, keep=None):
        with lock:
            calls.append(os.fspath(path))
        return real(path, st, keep)

    monkeypatch.setattr(hashing, "hash_file", counting)
    monkeypatch.setattr(artifact_mod, "hash_file", counting)
    return calls


def test_relog_of_unchanged_files_does_not_rehash(make_tree, hash_calls, api):
    files = {f"d{i % 3}/f{i}.txt": f"content {i}" for i in range(30)}
    src = make_tree("data", files)
    age_files(src)

    first = ap.Artifact("ds", "dataset")
    first.add_dir(src)
    assert len(hash_calls) == 30
    with ap.init() as run:
        v0 = run.log_artifact(first)

    hash_calls.clear()
    second = ap.Artifact("ds", "dataset")
    second.add_dir(src)
    assert hash_calls == []
    assert second.digest == v0.digest
    with ap.init() as run:
        again = run.log_artifact(second)
    assert again == v0
    assert len(api.artifact_versions(None, "ds")) == 1


def test_modified_file_is_rehashed(make_tree, hash_calls):
    src = make_tree("data", {"a.txt": "alpha", "b.txt": "beta", "c.txt": "gamma"})
    age_files(src)
    art = ap.Artifact("ds", "dataset")
    art.add_dir(src)
    old_digest = art.entries["b.txt"].digest

    (src / "b.txt").write_text("beta, edited")
    age_files(src / "b.txt", seconds=60)  # a different mtime, still outside the racy window
    hash_calls.clear()
    art2 = ap.Artifact("ds", "dataset")
    art2.add_dir(src)
    assert [os.path.basename(p) for p in hash_calls] == ["b.txt"]
    assert art2.entries["b.txt"].digest == digest_bytes(b"beta, edited") != old_digest
    assert art2.entries["a.txt"].digest == digest_bytes(b"alpha")


def test_same_size_rewrite_with_new_mtime_is_rehashed(make_tree, hash_calls):
    src = make_tree("data", {"a.txt": "1111"})
    age_files(src, seconds=300)
    ap.Artifact("ds", "dataset").add_dir(src)
    (src / "a.txt").write_text("2222")
    age_files(src, seconds=200)
    hash_calls.clear()
    art = ap.Artifact("ds", "dataset")
    art.add_dir(src)
    assert len(hash_calls) == 1
    assert art.entries["a.txt"].digest == digest_bytes(b"2222")


@pytest.fixture
def slow_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    """A file written in the test is still "just written" when the test's scans read it, however
    long a loaded machine takes between the two (the real window is 100 ms)."""
    monkeypatch.setattr(hashing, "FINE_RACY_WINDOW_NS", 60 * 10**9)


def test_settled_depends_on_the_timestamps_the_file_system_keeps():
    since = 1_700_000_000_500_000_000  # reading began at x.5 s
    ms, s = 10**6, 10**9
    # Sub-second mtimes (ext4, XFS, tmpfs, APFS): a rewrite gets another mtime 100 ms on.
    assert hashing.settled(since - 150 * ms + 1, since)
    assert not hashing.settled(since - 50 * ms + 1, since)
    assert not hashing.settled(since + 7, since)  # after reading began (or a skewed clock)
    # Whole-second mtimes (ext3, HFS+, FAT's even seconds): two seconds.
    assert not hashing.settled(1_700_000_000 * s, since)
    assert not hashing.settled(1_699_999_999 * s, since)
    assert hashing.settled(1_699_999_998 * s, since)


@pytest.mark.parametrize("tree", [False, True], ids=["per-file", "whole-directory"])
def test_a_file_is_remembered_by_the_timestamps_its_file_system_keeps(make_tree, hash_calls, tree, request):
    if tree:
        request.getfixturevalue("small_trees")
    src = make_tree("data", {f"f{i}.txt": f"content {i}" for i in range(6)})
    age_files(src)
    now = time.time_ns()
    whole = now // 10**9 * 10**9  # a whole second, less than one ago: as a seconds-only file system keeps it
    fine = now - 500 * 10**6 + 7  # half a second ago, to the nanosecond
    os.utime(src / "f0.txt", ns=(whole, whole))
    os.utime(src / "f1.txt", ns=(fine, fine))
    ap.Artifact("ds", "dataset").add_dir(src)
    assert len(hash_calls) == 6
    hash_calls.clear()
    ap.Artifact("ds", "dataset").add_dir(src)
    assert [os.path.basename(p) for p in hash_calls] == ["f0.txt"]


def test_a_file_is_judged_from_when_it_was_read_not_when_it_is_remembered(tmp_path):
    # A scan of many files takes seconds: a file rewritten right after it was read keeps its
    # (whole-second) mtime however long after that its digest is written down.
    cache = ChecksumCache(tmp_path / "cs.sqlite")
    f = tmp_path / "x.bin"
    f.write_bytes(b"x" * 10)
    since = time.time_ns()
    mtime = (since // 10**9 - 1) * 10**9
    os.utime(f, ns=(mtime, mtime))
    st = os.stat(f)
    cache.remember([(st, digest_bytes(b"x" * 10))], since)
    assert cache.lookup([st]) == [None]
    cache.remember([(st, digest_bytes(b"x" * 10))], since + 3 * 10**9)  # a read that began later
    assert cache.lookup([st]) == [digest_bytes(b"x" * 10)]


def test_recently_modified_files_are_not_cached(make_tree, hash_calls, slow_machine):
    src = make_tree("data", {"fresh.txt": "just written"})  # mtime is now: inside the racy window
    ap.Artifact("ds", "dataset").add_dir(src)
    ap.Artifact("ds", "dataset").add_dir(src)
    assert len(hash_calls) == 2


@pytest.fixture
def looked_up(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many files each per-file checksum look-up asked about."""
    sizes: list[int] = []
    real = ChecksumCache.lookup

    def counting(self, stats):
        sizes.append(len(stats))
        return real(self, stats)

    monkeypatch.setattr(ChecksumCache, "lookup", counting)
    return sizes


def test_unchanged_tree_is_known_from_one_row(make_tree, hash_calls, small_trees, looked_up):
    files = {f"d{i % 3}/f{i}.txt": f"content {i}" for i in range(12)}
    src = make_tree("data", files)
    age_files(src)
    first = ap.Artifact("ds", "dataset")
    first.add_dir(src)
    assert len(hash_calls) == 12
    hash_calls.clear()
    looked_up.clear()
    again = ap.Artifact("ds", "dataset")
    again.add_dir(src, name="under/a/prefix")  # the same directory: the entry prefix plays no part
    assert hash_calls == []
    assert looked_up == []
    assert {p: e.digest for p, e in again.entries.items()} == {
        f"under/a/prefix/{p}": e.digest for p, e in first.entries.items()
    }
    assert again.entries["under/a/prefix/d1/f4.txt"].digest == digest_bytes(b"content 4")


@pytest.mark.parametrize("change", ["rewrite", "add", "remove", "rename"])
def test_a_changed_tree_looks_up_only_what_changed(make_tree, hash_calls, small_trees, looked_up, change):
    src = make_tree("data", {f"f{i}.txt": f"content {i}" for i in range(8)})
    age_files(src)
    ap.Artifact("ds", "dataset").add_dir(src)
    if change == "rewrite":  # same size, new bytes, an older mtime than before
        (src / "f3.txt").write_text("CONTENT 3")
        age_files(src / "f3.txt", seconds=400)
    elif change == "add":
        (src / "new.txt").write_text("new")
        age_files(src / "new.txt")
    elif change == "remove":
        (src / "f5.txt").unlink()
    else:
        (src / "f6.txt").rename(src / "g6.txt")
    hash_calls.clear()
    looked_up.clear()
    art = ap.Artifact("ds", "dataset")
    art.add_dir(src)
    expected = {p.name: digest_bytes(p.read_bytes()) for p in src.iterdir()}
    assert {p: e.digest for p, e in art.entries.items()} == expected
    # A renamed file is neither looked up nor hashed: the tree's rows know its stat under the
    # path that is gone.
    assert [os.path.basename(p) for p in hash_calls] == {"rewrite": ["f3.txt"], "add": ["new.txt"]}.get(change, [])
    assert looked_up == ([1] if change in ("rewrite", "add") else [])
    # The tree is remembered as it is now: a third scan looks nothing up.
    looked_up.clear()
    ap.Artifact("ds", "dataset").add_dir(src)
    assert looked_up == []


def test_files_moved_within_a_tree_are_known_by_their_stat_and_small_ones_are_not_kept_twice(
    make_tree, hash_calls, small_trees, looked_up, monkeypatch
):
    monkeypatch.setattr(hashing, "TREE_ALONE_SIZE", 100)
    files = {f"d{i % 2}/f{i}.txt": f"content {i}" for i in range(8)} | {"big.bin": "B" * 100}
    src = make_tree("data", files)
    age_files(src)
    ap.Artifact("ds", "dataset").add_dir(src)
    cache = get_client().checksum_cache
    kept = cache._connect().execute("SELECT size FROM file_digests").fetchall()
    assert kept == [(100,)]  # the small files only in the tree's rows
    (src / "d0" / "f0.txt").rename(src / "d1" / "moved.txt")  # to another subdirectory
    (src / "d1" / "f1.txt").write_text("CONTENT 1")  # and a rewrite beside it: still hashed
    age_files(src / "d1" / "f1.txt", seconds=400)
    hash_calls.clear()
    looked_up.clear()
    art = ap.Artifact("ds", "dataset")
    art.add_dir(src)
    assert [os.path.basename(p) for p in hash_calls] == ["f1.txt"]
    assert looked_up == [1]
    assert art.entries["d1/moved.txt"].digest == digest_bytes(b"content 0")
    assert art.entries["d1/f1.txt"].digest == digest_bytes(b"CONTENT 1")
    # Added on its own, a small file of the tree is read again; the large one is not.
    hash_calls.clear()
    alone = ap.Artifact("single", "dataset")
    alone.add_file(src / "d1" / "moved.txt")
    alone.add_file(src / "big.bin")
    assert [os.path.basename(p) for p in hash_calls] == ["moved.txt"]


def test_a_just_modified_file_is_the_only_one_looked_up_again(
    make_tree, hash_calls, small_trees, looked_up, slow_machine
):
    src = make_tree("data", {f"f{i}.txt": f"content {i}" for i in range(8)})
    age_files(src)
    (src / "f2.txt").write_text("fresh")  # inside the racy window: its mtime may not tell a rewrite
    ap.Artifact("ds", "dataset").add_dir(src)
    assert len(hash_calls) == 8
    hash_calls.clear()
    looked_up.clear()
    art = ap.Artifact("ds", "dataset")
    art.add_dir(src)
    assert looked_up == [1]
    assert [os.path.basename(p) for p in hash_calls] == ["f2.txt"]  # nor remembered per file
    assert art.entries["f2.txt"].digest == digest_bytes(b"fresh")
    age_files(src / "f2.txt")  # settled now: the next scan remembers it
    ap.Artifact("ds", "dataset").add_dir(src)
    looked_up.clear()
    hash_calls.clear()
    ap.Artifact("ds", "dataset").add_dir(src)
    assert looked_up == [] and hash_calls == []


def _rows(cache: ChecksumCache, root: str) -> list[int]:
    """The parts of the rows remembering ``root`` (negative: patches)."""
    key = hashing._tree_key(root)
    return [r[0] for r in cache._connect().execute("SELECT part FROM trees WHERE key = ? ORDER BY part", (key,))]


def test_a_few_changed_files_are_remembered_as_a_patch(make_tree, small_trees, looked_up, monkeypatch):
    """Changes are written as patch rows while they cover at most 1/4 of the files here (3 of
    12), then the rows are written whole; every scan between reads them right."""
    monkeypatch.setattr(hashing, "_PATCH_MIN_FILES", 1)
    monkeypatch.setattr(hashing, "_PATCH_SHARE", 4)
    src = make_tree("data", {f"f{i:02d}.txt": f"content {i}" for i in range(12)})
    age_files(src)
    cache = artifact_mod.Artifact("ds", "dataset")._cache()
    assert cache is not None
    ap.Artifact("ds", "dataset").add_dir(src)
    assert _rows(cache, str(src)) == [0, 1, 2, 3]
    for step, (names, parts) in enumerate(
        [(["f01.txt"], [-1, 0, 1, 2, 3]), (["f07.txt", "f01.txt"], [-2, -1, 0, 1, 2, 3]), (["f11.txt"], [0, 1, 2, 3])]
    ):
        for name in names:
            (src / name).write_text(f"step {step}")
            age_files(src / name, seconds=60 - step)
        art = ap.Artifact("ds", "dataset")
        art.add_dir(src)
        assert {p: e.digest for p, e in art.entries.items()} == {
            p.name: digest_bytes(p.read_bytes()) for p in src.iterdir()
        }
        assert _rows(cache, str(src)) == parts  # the third change would make 4 patched files: whole
        looked_up.clear()
        again = ap.Artifact("ds", "dataset")
        again.add_dir(src)  # what the rows (and patches) remember is every file as it is
        assert looked_up == [] and again.entries == art.entries


def test_a_patch_is_written_only_on_the_rows_it_was_made_against(tmp_path):
    """If another scan wrote the rows since they were read, the rows are written whole (a patch
    of one scan on another's rows would be marked as neither's), and the mark of the first scan
    is not recorded."""
    cache = ChecksumCache(tmp_path / "cs.sqlite")
    rels = [f"f{i}" for i in range(4)]
    stats = [hashing.FileStat(0o100644, 10 + i, 2, 3, 4) for i in range(4)]
    digests = [digest_bytes(r.encode()) for r in rels]
    first = cache.remember_tree("/d", rels, stats, digests)
    other = cache.remember_tree("/d", rels, stats, digests)  # another process's scan
    assert first is not None and other is not None and other != first
    changed = [stats[0]._replace(st_mtime_ns=5), *stats[1:]]
    mine = cache.remember_tree("/d", rels, changed, [digest_bytes(b"new"), *digests[1:]], (first, [0]))
    assert _rows(cache, "/d") == [0]  # written whole, no patch
    cache.mark_tree("/d", first, "scope", hashing.TreeMark(digest_bytes(b"v"), "", True, ""))
    known = cache.known_tree("/d", rels, changed)
    assert known is not None and known.held_by == {} and known.token == mine
    assert known.digests == [digest_bytes(b"new"), *digests[1:]]
    cache.mark_tree("/d", mine, "scope", hashing.TreeMark(digest_bytes(b"v"), "", True, ""))
    known = cache.known_tree("/d", rels, changed)
    assert known is not None and known.held_by == {"scope": hashing.TreeMark(digest_bytes(b"v"), "", True, "")}


@pytest.mark.parametrize("bound", ["directories", "files"])
def test_the_most_recent_directories_are_kept_within_both_bounds(tmp_path, monkeypatch, bound):
    """At most ``TREES_KEPT`` directories of ``TREE_FILES_KEPT`` files together are remembered,
    the most recent first; the most recent one is always kept."""
    monkeypatch.setattr(hashing, "_CHUNK_FILES", 2)  # rows of 2 files: a 3-file directory is 2 rows
    if bound == "directories":
        monkeypatch.setattr(hashing, "TREES_KEPT", 2)
    else:  # room for the rows of two 3-file directories (4 rows of 2 files), not of three
        monkeypatch.setattr(hashing, "TREE_FILES_KEPT", 8)
    cache = ChecksumCache(tmp_path / "cs.sqlite")
    rels = ["a", "b", "c"]
    stats = [hashing.FileStat(0o100644, 10 + i, 2, 3, 4) for i in range(3)]
    digests = [digest_bytes(r.encode()) for r in rels]
    for d in ("/one", "/two", "/three"):
        assert cache.remember_tree(d, rels, stats, digests) is not None
    assert cache.known_tree("/one", rels, stats) is None
    for d in ("/two", "/three"):
        known = cache.known_tree(d, rels, stats)
        assert known is not None and known.digests == digests
    monkeypatch.setattr(hashing, "TREE_FILES_KEPT", 1)  # smaller than one directory: the newest stays
    cache.remember_tree("/four", rels, stats, digests)
    assert [cache.known_tree(d, rels, stats) is not None for d in ("/two", "/three", "/four")] == [False, False, True]


def test_a_patch_that_does_not_fit_its_tree_is_ignored(tmp_path):
    cache = ChecksumCache(tmp_path / "cs.sqlite")
    rels = [f"f{i}" for i in range(4)]
    stats = [hashing.FileStat(0o100644, 10 + i, 2, 3, 4) for i in range(4)]
    token = cache.remember_tree("/d", rels, stats, [digest_bytes(r.encode()) for r in rels])
    changed = [stats[0]._replace(st_mtime_ns=5), *stats[1:]]
    cache.remember_tree(
        "/d", rels, changed, [digest_bytes(b"new")] + [digest_bytes(r.encode()) for r in rels[1:]], (token, [0])
    )
    assert _rows(cache, "/d") == [-1, 0]
    conn = cache._connect()
    conn.execute("UPDATE trees SET paths = ? WHERE part = -1", (struct.pack("q", 4),))  # an index past the tree
    assert cache.known_tree("/d", rels, changed) is None
    conn.execute("UPDATE trees SET paths = ?, stats = substr(stats, 1, 8) WHERE part = -1", (struct.pack("q", 0),))
    assert cache.known_tree("/d", rels, changed) is None


def test_tree_matching_agrees_with_comparing_file_by_file(monkeypatch):
    """The block-wise comparison finds exactly the files whose path and stat are unchanged."""
    monkeypatch.setattr(hashing, "_CHUNK_FILES", 50)  # stats packed in several calls
    rng = random.Random(7)
    for n in (1, 63, 64, 65, 200, 1000):
        rels = [f"d{i % 7}/f{i}" for i in range(n)]
        stats = [hashing.FileStat(0o100644, 1000 + i, 42, rng.randrange(1 << 20), 10**18 + i) for i in range(n)]
        for k in range(20):
            new_rels, new_stats = list(rels), list(stats)
            changes = n if k % 7 == 0 else rng.randrange(min(n, 5) + 1)  # now and then every file
            for i in rng.sample(range(n), changes):
                new_stats[i] = new_stats[i]._replace(st_mtime_ns=new_stats[i].st_mtime_ns + 1)
            if rng.random() < 0.3:  # a rename, an addition, a removal
                new_rels[rng.randrange(n)] += ".renamed"
                new_rels.append("added")
                new_stats.append(stats[0])
                gone = rng.randrange(len(new_rels))
                del new_rels[gone], new_stats[gone]
            old_packed, new_packed = hashing._stat_bytes(stats), hashing._stat_bytes(new_stats)
            assert old_packed is not None and new_packed is not None
            by_path = list(hashing._unchanged_by_path(rels, old_packed, new_rels, new_packed))
            where = {p: j for j, p in enumerate(rels)}
            expected = [(i, where[p]) for i, p in enumerate(new_rels) if p in where and new_stats[i] == stats[where[p]]]
            assert by_path == expected
            if new_rels == rels:  # the same paths: the changed files, found block by block
                changed = list(hashing._changed_files(old_packed, new_packed))
                assert changed == [i for i in range(n) if new_stats[i] != stats[i]]


@pytest.mark.parametrize("files_per_row", [4096, 1])
def test_a_row_that_does_not_fit_its_tree_is_ignored(tmp_path, monkeypatch, files_per_row):
    """A damaged row (digests and stats of different lengths) gives no digest, never a wrong one."""
    monkeypatch.setattr(hashing, "_CHUNK_FILES", files_per_row)
    cache = ChecksumCache(tmp_path / "cs.sqlite")
    stats = [hashing.FileStat(0o100644, 1, 2, 3, 4), hashing.FileStat(0o100644, 5, 2, 3, 4)]
    cache.remember_tree("/data", ["a", "b"], stats, [digest_bytes(b"a"), digest_bytes(b"b")])
    known = cache.known_tree("/data", ["a", "b"], stats)
    assert known is not None and known.digests == [digest_bytes(b"a"), digest_bytes(b"b")]
    assert cache.known_tree("/other", ["a", "b"], stats) is None
    conn = cache._connect()
    assert conn.execute("SELECT count(*) FROM trees").fetchone() == ({4096: 1, 1: 2}[files_per_row],)
    if files_per_row == 1:  # a part missing: the rows left do not make the tree
        conn.execute("DELETE FROM trees WHERE part = 0")
        assert cache.known_tree("/data", ["a", "b"], stats) is None
        cache.remember_tree("/data", ["a", "b"], stats, [digest_bytes(b"a"), digest_bytes(b"b")])
    conn.execute("UPDATE trees SET digests = substr(digests, 1, 16)")
    assert cache.known_tree("/data", ["a", "b"], stats) is None
    # An inode number beyond int64 cannot be packed: such a tree is neither remembered nor matched
    # (with a row per file, the first row was already written when the second failed to pack).
    huge = [stats[0], stats[1]._replace(st_ino=2**63)]
    cache.remember_tree("/huge", ["a", "b"], huge, [digest_bytes(b"a"), digest_bytes(b"b")])
    assert cache.known_tree("/huge", ["a", "b"], huge) is None
    assert conn.execute("SELECT count(*) FROM trees WHERE key = ?", (hashing._tree_key("/huge"),)).fetchone() == (0,)


def test_cache_is_shared_across_processes(make_tree, hash_calls, tmp_path):
    """A file hashed by another process (same cache dir) is not hashed again here."""
    from core_helpers import run_python

    src = make_tree("data", {"big.bin": os.urandom(64 * 1024)})
    age_files(src)
    run_python(
        f"""
        import artifact_plugins as ap
        ap.Artifact("ds", "dataset").add_dir({str(src)!r})
        """
    )
    art = ap.Artifact("ds", "dataset")
    art.add_dir(src)
    assert hash_calls == []
    assert art.entries["big.bin"].digest == digest_bytes((src / "big.bin").read_bytes())


def test_checksum_cache_unit(tmp_path):
    cache = ChecksumCache(tmp_path / "cs.sqlite")
    f = tmp_path / "x.bin"
    f.write_bytes(b"x" * 10)
    t = time.time() - 100
    os.utime(f, (t, t))
    st = os.stat(f)
    assert cache.lookup([st]) == [None]
    cache.remember([(st, digest_bytes(b"x" * 10))])
    assert cache.lookup([st]) == [digest_bytes(b"x" * 10)]
    # another ChecksumCache on the same file sees it (shared by processes through SQLite)
    assert ChecksumCache(tmp_path / "cs.sqlite").lookup([st]) == [digest_bytes(b"x" * 10)]
    os.utime(f, (t + 1, t + 1))
    assert cache.lookup([os.stat(f)]) == [None]
    # a broken cache file never fails a lookup
    broken = tmp_path / "broken.sqlite"
    broken.write_bytes(b"this is not a database" * 100)
    assert ChecksumCache(broken).lookup([st]) == [None]


def test_digests_remembered_in_the_earlier_table_are_carried_over(tmp_path):
    """A cache file written before the per-file table was rebuilt keyed by (dev, ino) alone: its
    digests are still known, and the earlier table is gone."""
    import sqlite3

    f = tmp_path / "x.bin"
    f.write_bytes(b"kept")
    t = time.time() - 100
    os.utime(f, (t, t))
    st = os.stat(f)
    path = tmp_path / "cs.sqlite"
    with sqlite3.connect(path) as old:
        old.execute(
            "CREATE TABLE checksums (dev INTEGER, ino INTEGER, size INTEGER, "
            "mtime_ns INTEGER, digest TEXT NOT NULL, PRIMARY KEY (dev, ino))"
        )
        old.execute("INSERT INTO checksums VALUES (?,?,?,?,?)", (st.st_dev, st.st_ino, 4, st.st_mtime_ns, "blake3:x"))
    old.close()
    assert ChecksumCache(path).lookup([st]) == ["blake3:x"]
    with sqlite3.connect(path) as conn:
        tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    conn.close()
    assert "checksums" not in tables and "file_digests" in tables
    assert ChecksumCache(path).lookup([st]) == ["blake3:x"]  # and by the next process too


def test_a_slow_download_never_teaches_the_cache_a_reference_identity_as_content(tmp_path, monkeypatch):
    """An unchecksummed reference's digest is derived from its URI, not its bytes: it must not be remembered
    as the digest of the downloaded file, or re-adding that file would record the wrong content digest."""
    from artifact_plugins.core.storage.local import LocalStore

    ext = tmp_path / "ext" / "data.csv"
    ext.parent.mkdir()
    ext.write_text("referenced bytes")
    stored = tmp_path / "b.txt"
    stored.write_text("stored bytes")
    art = ap.Artifact("mixed", "dataset")
    art.add_reference(ext.as_uri(), name="a.csv", checksum=False)
    art.add_file(stored)
    with ap.init() as run:
        v = run.log_artifact(art)

    real_get = LocalStore.get_file

    def slow_get(self, key, dest, **kwargs):  # a slow network: b.txt arrives well after a.csv was written
        time.sleep(1.2)
        return real_get(self, key, dest, **kwargs)

    monkeypatch.setattr(LocalStore, "get_file", slow_get)
    out = v.download(tmp_path / "out")
    monkeypatch.setattr(LocalStore, "get_file", real_get)
    assert (out / "a.csv").read_text() == "referenced bytes"

    again = ap.Artifact("copy", "dataset")
    entry = again.add_file(out / "a.csv")
    assert entry.digest == digest_bytes(b"referenced bytes")


@pytest.mark.parametrize("into", ["new", "existing"])
def test_a_download_teaches_the_cache_the_files_it_wrote(make_tree, hash_calls, tmp_path, monkeypatch, into):
    """What a download writes is known by its stat afterwards: adding the downloaded tree hashes nothing.

    Small blobs of the local store are stat'ed from the open file while written (no path lookup);
    the stat must be the destination's, through the rename a download into an existing directory makes.
    """
    files = {f"d{i % 2}/f{i}.txt": f"content {i}" for i in range(6)}
    files["big.bin"] = os.urandom(2 * 2**20)  # above the small-blob size: copied, then stat'ed
    src = make_tree("data", files)
    art = ap.Artifact("ds", "dataset")
    art.add_dir(src)
    with ap.init() as run:
        v = run.log_artifact(art)
    monkeypatch.setattr(hashing, "RACY_WINDOW_NS", -1)  # remember files however fresh (they are ours)
    monkeypatch.setattr(hashing, "FINE_RACY_WINDOW_NS", -1)
    out = tmp_path / "out"
    if into == "existing":
        out.mkdir()
    v.download(out)
    hash_calls.clear()
    again = ap.Artifact("ds", "dataset")
    again.add_dir(out)
    assert hash_calls == []
    assert again.digest == v.digest
