"""Small-file work shared with a forked child: every item done once, errors where they would be
without the child, and the child never outlives the call. Real forks, real files."""

from __future__ import annotations

import os
import signal
import struct
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from core_helpers import age_files, tree_bytes
from processes import count_forks

import artifact_plugins as ap
from artifact_plugins.core import artifact as artifact_mod
from artifact_plugins.core import forked, hashing
from artifact_plugins.core import progress as progress_mod
from artifact_plugins.core import transfer as transfer_mod
from artifact_plugins.core.forked import fork_pays, run_forked
from artifact_plugins.core.hashing import digest_bytes, hex_of
from artifact_plugins.core.storage.local import LocalStore

pytestmark = pytest.mark.skipif(not fork_pays(10**9), reason="needs Linux and two cores, as CI has")

ITEMS = 600
WIDTH = struct.calcsize("qq")


@pytest.fixture(autouse=True)
def forks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The pids of the children forked from here on (batches of a few hundred items are forked)."""
    return count_forks(monkeypatch)


def serial(fn: Callable[[int], object], items: Sequence[int]) -> None:
    for item in items:
        fn(item)


class Work:
    """Squares items, noting in memory which process did each (the parent adopts the child's).

    ``parent_delay``/``child_delay``: seconds each item takes in that process (to make one side
    the slower)."""

    def __init__(
        self, fail: Callable[[int], None] = lambda item: None, parent_delay: float = 0.0, child_delay: float = 0.0
    ) -> None:
        self.parent = os.getpid()
        self.done: dict[int, tuple[int, int]] = {}
        self.calls: list[int] = []
        self.fail = fail
        self.delays = parent_delay, child_delay

    def fn(self, item: int) -> None:
        self.calls.append(item)
        self.fail(item)
        delay = self.delays[os.getpid() != self.parent]
        if delay:
            time.sleep(delay)
        self.done[item] = (item * item, os.getpid())

    def export(self, item: int) -> bytes:
        return struct.pack("qq", *self.done[item])

    def adopt(self, item: int, data: bytes) -> None:
        assert item not in self.done, f"item {item} adopted after the parent did it"
        square, pid = struct.unpack("qq", data)
        self.done[item] = (square, pid)

    def run(self, items: Sequence[int]) -> None:
        run_forked(self.fn, items, export=self.export, adopt=self.adopt, width=WIDTH, run=serial)

    def by_child(self) -> set[int]:
        return {item for item, (_, pid) in self.done.items() if pid != self.parent}

    def check_every_item_once(self) -> None:
        assert sorted(self.done) == list(range(ITEMS))
        assert all(square == item * item for item, (square, _) in self.done.items())
        assert not self.by_child() & set(self.calls), "the parent did an item the child did"


@pytest.fixture(autouse=True)
def chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks of 50 items: six per half of ``ITEMS``."""
    monkeypatch.setattr(forked, "CHUNK_ITEMS", CHUNK)


CHUNK = 50


def in_child(at: int, action: Callable[[], None]) -> Callable[[int], None]:
    """A ``fail`` hook running ``action`` in the child on its ``at``-th item (counting from 1)."""
    parent, count = os.getpid(), [0]

    def hook(item: int) -> None:
        if os.getpid() != parent:
            count[0] += 1
            if count[0] == at:
                action()

    return hook


def whole_chunks(items: set[int]) -> bool:
    return items == {k for k in range(ITEMS) if k // CHUNK in {i // CHUNK for i in items}}


def test_a_child_faster_than_the_parent_does_its_half_then_takes_the_parents_chunks() -> None:
    work = Work(parent_delay=0.002)
    work.run(range(ITEMS))
    work.check_every_item_once()
    by_child = work.by_child()
    assert set(range(ITEMS // 2, ITEMS)) < by_child, "the child took none of the parent's queue"
    assert whole_chunks(by_child)


def test_a_parent_faster_than_the_child_takes_the_childs_chunks() -> None:
    work = Work(parent_delay=0.0005, child_delay=0.002)
    work.run(range(ITEMS))
    work.check_every_item_once()
    assert 0 < len(work.by_child()) < ITEMS // 2 and whole_chunks(work.by_child())
    assert any(k >= ITEMS // 2 for k in work.calls), "the parent took none of the child's queue"


def test_too_few_items_or_too_large_a_parent_are_not_forked(monkeypatch: pytest.MonkeyPatch) -> None:
    work = Work()
    work.run(range(99))
    assert {pid for _, pid in work.done.values()} == {work.parent}
    monkeypatch.setattr(forked, "RESIDENT_BYTES_PER_ITEM", 1024)  # a few MiB for 600 items: the parent is bigger
    work = Work()
    work.run(range(ITEMS))
    assert {pid for _, pid in work.done.values()} == {work.parent}


def test_no_file_descriptors_for_the_queues_means_no_child(monkeypatch: pytest.MonkeyPatch) -> None:
    pipes = []
    real_pipe = os.pipe

    def one_pipe_only() -> tuple[int, int]:
        if pipes:
            raise OSError(24, "Too many open files")
        pipes.append(real_pipe())
        return pipes[-1]

    closed: list[int] = []
    real_close = os.close

    def close(fd: int) -> None:
        closed.append(fd)
        real_close(fd)

    monkeypatch.setattr(os, "pipe", one_pipe_only)
    monkeypatch.setattr(os, "close", close)
    work = Work()
    work.run(range(ITEMS))
    work.check_every_item_once()
    assert work.by_child() == set()
    assert set(pipes[0]) <= set(closed)  # the first queue's ends were not left open


def _child_stopped_after(work: Work, finished: int) -> None:
    """The child stopped in its first chunk (the first of the second half) after ``finished``
    items: those are adopted, the parent did the rest of that chunk."""
    start = ITEMS // 2
    assert work.by_child() == set(range(start, start + finished))
    assert set(range(start + finished, start + CHUNK)) <= set(work.calls)


def test_items_the_child_failed_on_are_done_by_the_parent() -> None:
    def disk_hiccup() -> None:
        raise OSError("the child's disk hiccup")

    work = Work(in_child(11, disk_hiccup), parent_delay=0.001)
    work.run(range(ITEMS))
    work.check_every_item_once()
    _child_stopped_after(work, 10)


def test_an_error_on_the_childs_share_is_raised_by_the_parent_as_without_it() -> None:
    def always(item: int) -> None:
        if item == ITEMS - 1:
            raise ValueError(f"item {item} is bad")

    with pytest.raises(ValueError, match=f"item {ITEMS - 1} is bad"):
        Work(always).run(range(ITEMS))


def test_a_killed_child_leaves_its_share_to_the_parent() -> None:
    work = Work(in_child(11, lambda: os.kill(os.getpid(), signal.SIGKILL)), parent_delay=0.001)
    work.run(range(ITEMS))
    work.check_every_item_once()
    _child_stopped_after(work, 10)


def test_a_stuck_child_is_killed_and_its_share_done_by_the_parent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(forked, "STALL_SECONDS", 1.0)
    # as if on a lock some other thread of the parent held at the fork
    work = Work(in_child(6, lambda: time.sleep(3600)), parent_delay=0.001)
    started = time.monotonic()
    work.run(range(ITEMS))
    assert time.monotonic() - started < 30
    work.check_every_item_once()
    _child_stopped_after(work, 5)


def test_an_interrupted_parent_kills_and_reaps_the_child(tmp_path: Path) -> None:
    parent = os.getpid()
    pid_file = tmp_path / "child.pid"

    def stall_or_interrupt(item: int) -> None:
        if os.getpid() != parent:
            if not pid_file.exists():  # whole or not at all: the parent may kill the child at once
                tmp = tmp_path / f"child.pid.{item}"
                tmp.write_text(str(os.getpid()))
                tmp.rename(pid_file)
            time.sleep(60)
        elif item == 0:
            deadline = time.monotonic() + 10
            while not pid_file.exists() and time.monotonic() < deadline:
                time.sleep(0.01)
            raise KeyboardInterrupt

    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        Work(stall_or_interrupt).run(range(ITEMS))
    assert time.monotonic() - started < 10
    child = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):  # killed and waited for: not even a zombie is left
        os.kill(child, 0)


def small_files(root: Path, files: int = 1_500) -> dict[str, bytes]:
    """``files`` small files of distinct sizes in a few directories under ``root``; their bytes."""
    for i in range(files):
        d = root / f"d{i % 7}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"f{i}.bin").write_bytes(f"file {i} ".encode() * (i % 50 + 1))
    return tree_bytes(root)


def hash_calls(monkeypatch: pytest.MonkeyPatch, module: Any) -> list[str]:
    """The paths ``module.hash_file`` is called with from here on."""
    hashed: list[str] = []
    real_hash = module.hash_file

    def counting(path: str, *args: Any, **kwargs: Any) -> Any:
        hashed.append(path)
        return real_hash(path, *args, **kwargs)

    monkeypatch.setattr(module, "hash_file", counting)
    return hashed


def test_add_dir_with_a_forked_child_logs_every_file_as_it_is(
    tmp_path: Path, store_dir: Path, forks: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "src"
    expected = small_files(src)
    age_files(src)  # settled, so the checksum cache may remember them
    with ap.init(job_type="forked") as run:
        art = ap.Artifact("shared", "dataset")
        art.add_dir(str(src))
        assert len(forks) == 2  # one for the scan's stats, one for the hashing
        # Written as the files were hashed (half of them by the child), before any log: right bytes.
        blobs = {
            e.path: store_dir / "blobs" / "blake3" / hex_of(e.digest)[:2] / hex_of(e.digest) for e in art.manifest()
        }
        assert {path: blob.read_bytes() for path, blob in blobs.items()} == expected
        logged = run.log_artifact(art)
    assert {e.path: (e.digest, e.size) for e in art.manifest()} == {
        path: (digest_bytes(data), len(data)) for path, data in expected.items()
    }
    target = tmp_path / "out"
    ap.Api().artifact(f"{logged.name}:{logged.version}").download(str(target))
    assert tree_bytes(target) == expected
    # The checksum cache remembered the child's files with the stats it saw: nothing is hashed again.
    hashed = hash_calls(monkeypatch, artifact_mod)
    ap.Artifact("shared", "dataset").add_dir(str(src))
    assert hashed == []


@pytest.fixture
def logged_tree(tmp_path: Path) -> tuple[str, dict[str, bytes]]:
    """A logged version of 1,500 small files: its name and the files' bytes."""
    src = tmp_path / "logged"
    expected = small_files(src)
    with ap.init(job_type="log") as run:
        art = ap.Artifact("files", "dataset")
        art.add_dir(str(src))
        logged = run.log_artifact(art)
    return f"{logged.name}:{logged.version}", expected


@pytest.fixture(params=["new directory", "existing directory"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """Where a download goes: a directory it creates, or one that exists (temp name + rename per file)."""
    out = tmp_path / "out"
    if request.param == "existing directory":
        out.mkdir()
    return out


class Advances:
    """A progress factory recording, per process, the bytes and files each bar was advanced by."""

    def __init__(self) -> None:
        self.by_pid: dict[int, list[int]] = {}

    def __call__(self, label: str, total_bytes: int, total_files: int) -> Any:
        outer = self

        class Bar:
            def __enter__(self) -> Bar:
                return self

            def __exit__(self, *exc: object) -> None:
                pass

            def advance(self, nbytes: int, files: int = 1) -> None:
                totals = outer.by_pid.setdefault(os.getpid(), [0, 0])
                totals[0] += nbytes
                totals[1] += files

        return Bar()


def test_a_download_shares_small_files_with_a_forked_child(
    target: Path, logged_tree: tuple[str, dict[str, bytes]], forks: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    name, expected = logged_tree
    advances = Advances()
    monkeypatch.setattr(progress_mod, "_global_factory", advances)
    monkeypatch.setattr(hashing, "FINE_RACY_WINDOW_NS", 0)  # files just written may be remembered
    logged_with = len(forks)  # the fixture's log forked too
    existed = target.exists()
    ap.Api().artifact(name).download(str(target))
    # Into a directory that exists, what is already there is stat'ed first (on two cores too).
    assert len(forks) == logged_with + 1 + existed
    assert tree_bytes(target) == expected
    # Progress is the parent's alone, and it heard of every file, the child's too.
    assert advances.by_pid == {os.getpid(): [sum(map(len, expected.values())), len(expected)]}
    # The checksum cache has the stats the child's files landed with: a second download reads nothing.
    hashed = hash_calls(monkeypatch, transfer_mod)
    ap.Api().artifact(name).download(str(target))
    assert hashed == []


def test_a_file_the_child_was_killed_writing_is_written_again_whole(
    target: Path, logged_tree: tuple[str, dict[str, bytes]], forks: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    name, expected = logged_tree
    parent, killed_at = os.getpid(), {"calls": 0}
    real_get = LocalStore.get_file

    def dies_half_way(self: LocalStore, key: str, dest: Any, size: int | None = None) -> Any:
        if os.getpid() != parent:
            killed_at["calls"] += 1
            if killed_at["calls"] == 200:  # a partial file at the destination, then the OOM killer
                Path(dest).write_bytes(b"half")
                os.kill(os.getpid(), signal.SIGKILL)
        return real_get(self, key, dest, size)

    monkeypatch.setattr(LocalStore, "get_file", dies_half_way)
    logged_with = len(forks)  # the fixture's log forked too
    existed = target.exists()
    ap.Api().artifact(name).download(str(target))
    # Into a directory that exists, what is already there is stat'ed first (on two cores too).
    assert len(forks) == logged_with + 1 + existed
    assert tree_bytes(target) == expected
    assert not [p for p in target.rglob("*") if ".tmp-" in p.name]


def test_stat_files_with_a_forked_child_gives_what_os_stat_gives(tmp_path: Path, forks: list[int]) -> None:
    expected = small_files(tmp_path / "files", 600)
    paths = [str(tmp_path / "files" / rel) for rel in sorted(expected)]
    (tmp_path / "link").symlink_to(paths[0])
    paths[300:300] = [str(tmp_path / "missing"), str(tmp_path / "link"), str(tmp_path / "files")]
    found = hashing.stat_files(len(paths), paths.__getitem__)
    assert len(forks) == 1
    want = []
    for p in paths:
        try:
            want.append(hashing.compact_stat(os.stat(p)))
        except FileNotFoundError:
            want.append(None)
    assert found == want
    assert found[300] is None and found[301] == found[0]  # missing: None; a symlink: its target's


def test_stats_fork_only_from_their_own_larger_threshold(
    tmp_path: Path, forks: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stat saves less than hashing a file does: a directory with enough files to fork the
    hashing (``FORK_MIN_ITEMS``) but fewer than ``STAT_FORK_MIN_ITEMS`` is scanned by the parent alone."""
    src = tmp_path / "src"
    expected = small_files(src, 600)
    monkeypatch.setattr(forked, "STAT_FORK_MIN_ITEMS", 601)
    art = ap.Artifact("hashing-forks-only", "dataset")
    art.add_dir(str(src))
    assert len(forks) == 1  # the hashing's child only
    monkeypatch.setattr(forked, "STAT_FORK_MIN_ITEMS", 600)
    paths = [str(src / rel) for rel in sorted(expected)]
    assert hashing.stat_files(len(paths), paths.__getitem__) == [hashing.compact_stat(os.stat(p)) for p in paths]
    assert len(forks) == 2  # 600 stats: at the threshold, forked


def test_stat_files_left_by_a_killed_child_are_stat_ed_by_the_parent(
    tmp_path: Path, forks: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = small_files(tmp_path / "files", 600)
    paths = [str(tmp_path / "files" / rel) for rel in sorted(expected)]
    parent, real_stat = os.getpid(), os.stat

    def dies_in_the_child(path: Any, *args: Any, **kwargs: Any) -> os.stat_result:
        if os.getpid() != parent:
            os.kill(os.getpid(), signal.SIGKILL)
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", dies_in_the_child)
    found = hashing.stat_files(len(paths), paths.__getitem__)
    assert len(forks) == 1
    assert found == [hashing.compact_stat(real_stat(p)) for p in paths]
