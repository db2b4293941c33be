"""Downloading a version into a directory: built aside and renamed into place when it is new."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import artifact_plugins as ap
from artifact_plugins.core import transfer
from artifact_plugins.core.errors import InvalidInputError, StoreError
from artifact_plugins.core.storage.local import LocalStore

FILES = {f"d{i % 3}/f{i}.bin": os.urandom(100 + i) for i in range(12)}


def logged(tmp_path: Path) -> ap.ArtifactVersion:
    src = tmp_path / "src"
    for rel, data in FILES.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes(data)
    art = ap.Artifact("tree", "dataset")
    art.add_dir(src)
    with ap.init(job_type="t") as run:
        return run.log_artifact(art)


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def leftovers(parent: Path) -> list[str]:
    return [p.name for p in parent.rglob("*") if ".tmp-" in p.name]


def test_new_root_is_complete_with_nothing_left_beside_it(tmp_path: Path) -> None:
    v = logged(tmp_path)
    root = tmp_path / "out" / "new"
    assert v.download(root) == root
    assert tree(root) == FILES
    assert leftovers(tmp_path / "out") == []
    assert os.listdir(tmp_path / "out") == ["new"]


def test_failed_download_into_new_root_keeps_what_arrived_and_a_retry_fetches_only_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    v = logged(tmp_path)
    root = tmp_path / "out"
    broken = v.get_entry("d1/f4.bin").digest.split(":")[1]
    real_get = LocalStore.get_file
    fetched: list[str] = []

    def get_file(self: LocalStore, key: str, dest: Any, **kwargs: Any) -> Any:
        if key.endswith(broken):
            Path(dest).write_bytes(b"half")  # bytes written, then the store fails
            raise StoreError(f"blob {key} unreadable (injected)")
        fetched.append(key)
        return real_get(self, key, dest, **kwargs)

    monkeypatch.setattr(LocalStore, "get_file", get_file)
    with pytest.raises(StoreError, match="injected"):
        v.download(root)
    got = tree(root)
    assert "d1/f4.bin" not in got  # the failed file is not left under its final name
    assert got and all(FILES[k] == b for k, b in got.items())  # what arrived is complete
    assert leftovers(tmp_path) == []

    monkeypatch.setattr(LocalStore, "get_file", real_get)
    calls: list[str] = []
    monkeypatch.setattr(
        LocalStore, "get_file", lambda self, key, dest, **kw: (calls.append(key), real_get(self, key, dest, **kw))[-1]
    )
    v.download(root)
    assert tree(root) == FILES
    assert len(calls) == len(FILES) - len(got)  # only what had not arrived
    assert any(c.endswith(broken) for c in calls)


def test_root_made_by_someone_else_meanwhile_is_filled_file_by_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    v = logged(tmp_path)
    root = tmp_path / "out"
    real = transfer.materialize

    def racing(client: Any, entries: Any, where: Any, label: str, verify: bool = False, fresh: bool = False) -> None:
        if fresh:  # another process creates the root, with a file of its own, while we build ours
            root.mkdir()
            (root / "theirs.txt").write_text("keep me")
        real(client, entries, where, label, verify, fresh)

    monkeypatch.setattr(transfer, "materialize", racing)
    v.download(root)
    assert tree(root) == {**FILES, "theirs.txt": b"keep me"}
    assert leftovers(tmp_path) == []


def test_an_existing_empty_root_and_a_root_that_is_a_file(tmp_path: Path) -> None:
    v = logged(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    v.download(empty)
    assert tree(empty) == FILES
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(InvalidInputError, match=str(blocker)):
        v.download(blocker)
    assert blocker.read_text() == "not a directory"
    assert leftovers(tmp_path) == []


# A download in another process that stops (SIGSTOP) inside its first file, holding its staging
# directory: killed, it leaves the directory behind; alive, nobody may take it away.
PAUSED_DOWNLOAD = """
import os, signal, sys
import artifact_plugins as ap
from artifact_plugins.core.storage.local import LocalStore

real = LocalStore.get_file
stopped = []

def get_file(self, key, dest, **kwargs):
    landed = real(self, key, dest, **kwargs)
    if not stopped:
        stopped.append(key)
        os.kill(os.getpid(), signal.SIGSTOP)
    return landed

LocalStore.get_file = get_file
ap.Api().artifact(sys.argv[1]).download(sys.argv[2])
print("done")
"""


def start_paused_download(v: ap.ArtifactVersion, root: Path) -> subprocess.Popen[str]:
    """A download of ``v`` into ``root`` in another process, stopped inside its first file: its
    lock is beside ``root`` when ``root`` is new, inside it when it exists."""
    existing = root.is_dir()
    where, prefix = (root, ".download.tmp-") if existing else (root.parent, f".{root.name}.tmp-")
    proc = subprocess.Popen(
        [sys.executable, "-c", PAUSED_DOWNLOAD, v.qualified_name, str(root)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not any(n.startswith(prefix) and n.endswith(".lock") for n in os.listdir(where)):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the download never started"
        time.sleep(0.02)
    while _state(proc.pid) != "T":  # stopped inside its first file
        assert time.monotonic() < deadline, "the download never paused"
        time.sleep(0.02)
    return proc


def _state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


def test_a_killed_download_leaves_nothing_after_the_next_download(tmp_path: Path) -> None:
    v = logged(tmp_path)
    (tmp_path / "out").mkdir()
    root = tmp_path / "out" / "model"
    killed = start_paused_download(v, root)
    killed.kill()
    killed.wait()
    assert len(leftovers(tmp_path / "out")) == 2  # its half-built directory and its lock file
    assert not root.exists()  # nobody ever saw a partial root

    assert v.download(root) == root
    assert tree(root) == FILES
    assert leftovers(tmp_path / "out") == []
    assert os.listdir(tmp_path / "out") == ["model"]


def test_a_live_download_keeps_its_staging_directory(tmp_path: Path) -> None:
    v = logged(tmp_path)
    (tmp_path / "out").mkdir()
    root = tmp_path / "out" / "model"
    paused = start_paused_download(v, root)
    try:
        (theirs,) = [n for n in os.listdir(tmp_path / "out") if not n.endswith(".lock")]
        assert v.download(root) == root
        assert tree(root) == FILES
        assert (tmp_path / "out" / theirs).is_dir()  # still theirs, untouched
    finally:
        paused.send_signal(signal.SIGCONT)
        out, err = paused.communicate(timeout=60)
    # It completes into the root that now exists, file by file, and cleans up after itself.
    assert paused.returncode == 0 and out.strip() == "done", err
    assert tree(root) == FILES
    assert leftovers(tmp_path / "out") == []


def test_a_killed_download_into_an_existing_root_leaves_nothing_after_the_next_one(tmp_path: Path) -> None:
    v = logged(tmp_path)
    root = tmp_path / "out"
    root.mkdir()
    (root / "theirs.txt").write_bytes(b"keep me")
    killed = start_paused_download(v, root)
    killed.kill()
    killed.wait()
    left = sorted(leftovers(root))
    assert len(left) == 2 and left[0].startswith(".download.tmp-"), left  # its lock and its first file's temp
    assert not any(n.endswith(".tmp-") for n in left)

    v.download(root)
    assert tree(root) == {**FILES, "theirs.txt": b"keep me"}
    assert leftovers(root) == []


def test_a_live_download_into_an_existing_root_keeps_its_temp_files(tmp_path: Path) -> None:
    v = logged(tmp_path)
    root = tmp_path / "out"
    root.mkdir()
    paused = start_paused_download(v, root)
    try:
        theirs = sorted(leftovers(root))
        assert len(theirs) == 2
        v.download(root)  # a second download of the same root meanwhile
        assert sorted(leftovers(root)) == theirs  # still theirs, untouched
        assert {p: b for p, b in tree(root).items() if ".tmp-" not in p} == FILES
    finally:
        paused.send_signal(signal.SIGCONT)
        out, err = paused.communicate(timeout=60)
    assert paused.returncode == 0 and out.strip() == "done", err
    assert tree(root) == FILES
    assert leftovers(root) == []
