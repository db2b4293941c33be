"""``add_dir`` over hostile trees: the documented policy, and never a hang.

Policy (see RELIABILITY.md): regular files and hard links are added; a symlink to a file is
followed when its target stays inside the directory; symlinks leaving it, directory symlinks
(not descended: no loops), dangling links, symlink loops and special files (FIFOs, sockets,
character and block devices) are skipped; names that are not valid entry paths (backslashes,
control characters, undecodable bytes) refuse the whole directory with an error naming them;
an unreadable subdirectory refuses the directory (it is never silently left out).

Every case runs in a child process with a deadline, so a hang fails the test instead of the suite.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from rel_helpers import report

import artifact_plugins as ap
from artifact_plugins.core.hashing import MMAP_THRESHOLD

HELPER = textwrap.dedent(
    """
    import json, os, sys
    import artifact_plugins as ap
    from artifact_plugins.core.errors import ArtifactPluginsError
    art = ap.Artifact("hostile", "dataset")
    try:
        art.add_dir(sys.argv[1])
    except ArtifactPluginsError as exc:
        print(json.dumps({"error": type(exc).__name__, "message": str(exc)}))
    else:
        print(json.dumps({"entries": {p: e.size for p, e in sorted(art.entries.items())}}))
    """
)


def add_dir_in_child(root: Path, timeout: float = 30, unprivileged: bool = False, prelude: str = "") -> dict:
    """Run ``add_dir(root)`` in a child with a deadline; ``unprivileged`` drops root's power to
    read any directory (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH), so file modes apply to it."""
    command = [sys.executable, "-c", prelude + HELPER, str(root)]
    if unprivileged and os.geteuid() == 0:
        command = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", *command]
    try:
        proc = subprocess.run(command, env=os.environ.copy(), capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"add_dir hung on {root}") from exc
    assert proc.returncode == 0, proc.stderr[-3000:]
    result: dict = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def hostile_tree(tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    (root / "sub" / "deeper").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("must not be added\n")
    (root / "plain.txt").write_text("plain\n")
    (root / "sub" / "deeper" / "nested.txt").write_text("nested\n")
    os.link(root / "plain.txt", root / "hardlink.txt")
    os.symlink("plain.txt", root / "link-inside.txt")
    os.symlink("../plain.txt", root / "sub" / "link-up-inside.txt")
    os.symlink(outside / "secret.txt", root / "link-outside.txt")
    os.symlink("../outside/secret.txt", root / "relative-link-outside.txt")
    os.symlink(outside, root / "dir-link-outside")
    os.symlink(".", root / "dir-link-loop")
    os.symlink("..", root / "sub" / "dir-link-parent")
    os.symlink("does-not-exist", root / "dangling")
    os.symlink("loop-b", root / "loop-a")
    os.symlink("loop-a", root / "loop-b")
    os.symlink("self", root / "self")
    os.mkfifo(root / "fifo")
    os.symlink("fifo", root / "link-to-fifo")
    os.symlink("/dev/zero", root / "link-to-dev-zero")
    os.symlink("/dev/urandom", root / "link-to-dev-urandom")
    if os.geteuid() == 0:  # device nodes need root
        os.mknod(root / "char-device", stat.S_IFCHR | 0o600, os.makedev(1, 5))  # like /dev/zero
        os.mknod(root / "block-device", stat.S_IFBLK | 0o600, os.makedev(7, 0))  # like /dev/loop0
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(root / "socket"))
    sock.close()
    return root


#: Makes the child share even a few files' stats (and hashing) with a forked child of its own.
FORK_ALWAYS = (
    "from artifact_plugins.core import forked\n"
    "forked.FORK_MIN_ITEMS = forked.STAT_FORK_MIN_ITEMS = 1\nforked.RESIDENT_BYTES_PER_ITEM = 2**40\n"
)


@pytest.mark.parametrize("prelude", ["", FORK_ALWAYS], ids=["serial", "forked"])
def test_add_dir_policy_over_a_hostile_tree(tmp_path: Path, prelude: str) -> None:
    root = hostile_tree(tmp_path)
    result = add_dir_in_child(root, prelude=prelude)
    assert result.get("entries") == {
        "hardlink.txt": 6,
        "link-inside.txt": 6,
        "plain.txt": 6,
        "sub/deeper/nested.txt": 7,
        "sub/link-up-inside.txt": 6,
    }, result
    # The directory given may itself be a symlink: the same policy applies relative to its target.
    os.symlink(root, tmp_path / "tree-link")
    assert add_dir_in_child(tmp_path / "tree-link", prelude=prelude) == result
    report(
        "test_add_dir_policy_over_a_hostile_tree",
        "add_dir over symlink loops, outside links, FIFOs, sockets, devices",
        trials=2,
        faults_injected=16,
        bytes_verified=0,
    )


@pytest.mark.parametrize(
    ("name", "rule"),
    [("back\\slash.txt", "backslash"), ("new\nline.txt", "control"), (b"latin1-\xe9.txt", "Unicode")],
)
def test_add_dir_refuses_names_that_are_not_entry_paths(tmp_path: Path, name: str | bytes, rule: str) -> None:
    root = tmp_path / "tree"
    root.mkdir()
    (root / "fine.txt").write_text("fine\n")
    path = os.path.join(os.fsencode(root), name) if isinstance(name, bytes) else os.path.join(root, name)
    with open(path, "wb") as f:
        f.write(b"x")
    result = add_dir_in_child(root)
    assert result.get("error") == "InvalidPathError" and rule in result["message"], result


@pytest.mark.parametrize("what", ["directory", "file"])
def test_add_dir_refuses_what_it_cannot_read(tmp_path: Path, what: str) -> None:
    """A subdirectory or file the process cannot read must not silently vanish from the artifact."""
    root = tmp_path / "tree"
    (root / "locked").mkdir(parents=True)
    (root / "readable.txt").write_text("ok\n")
    (root / "locked" / "hidden.txt").write_text("would be lost\n")
    victim = root / "locked" if what == "directory" else root / "locked" / "hidden.txt"
    os.chmod(victim, 0)
    try:
        result = add_dir_in_child(root, unprivileged=True)
    finally:
        os.chmod(victim, 0o755)
    assert result.get("error") and str(victim) in result["message"], result


SWAP = """
import os, stat
_real_open = os.open
_target = os.environ["AP_SWAP_TARGET"]
_how = os.environ["AP_SWAP_HOW"]
_done = []
def _swapping_open(path, flags, *args, **kwargs):
    if not _done and os.fspath(path) == _target:
        _done.append(1)
        os.unlink(_target)
        if _how == "fifo":
            os.mkfifo(_target)
        else:
            os.symlink("/dev/zero", _target)
    return _real_open(path, flags, *args, **kwargs)
os.open = _swapping_open
"""


@pytest.mark.parametrize("how", ["fifo", "dev-zero"])
def test_a_file_swapped_for_a_special_file_while_added_never_hangs(
    tmp_path: Path, how: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between the scan and the read, a regular file becomes a FIFO (opening it would block for a
    writer) or a link to /dev/zero (reading it never ends): add_dir must fail, not hang or eat memory."""
    root = tmp_path / "tree"
    root.mkdir()
    (root / "a.txt").write_text("a\n")
    (root / "victim.bin").write_bytes(os.urandom(5000))
    monkeypatch.setenv("AP_SWAP_TARGET", str(root / "victim.bin"))
    monkeypatch.setenv("AP_SWAP_HOW", how)
    result = add_dir_in_child(root, timeout=30, prelude=SWAP)
    assert result.get("error") in ("FileChangedError", "StoreError"), result
    assert "victim.bin" in result["message"]


LOG_AFTER_SWAP = textwrap.dedent(
    """
    import os, sys, json
    import artifact_plugins as ap
    from artifact_plugins.core.errors import ArtifactPluginsError
    src = sys.argv[1]
    art = ap.Artifact("swapped", "dataset")
    art.add_file(src)
    if sys.argv[3] == "reread":  # the bytes stored as the file was hashed are removed: the log reads it again
        for dirpath, _dirs, files in os.walk(os.environ["ARTIFACT_PLUGINS_STORE"]):
            for name in files:
                os.unlink(os.path.join(dirpath, name))
    os.unlink(src)
    if sys.argv[2] == "fifo":
        os.mkfifo(src)
    else:
        os.symlink("/dev/zero", src)
    try:
        with ap.init(job_type="swap") as run:
            run.log_artifact(art)
    except ArtifactPluginsError as exc:
        print(json.dumps({"error": type(exc).__name__, "message": str(exc)}))
    else:
        print(json.dumps({"logged": True}))
    """
)


def log_after_swap(src: Path, how: str, stored: str) -> dict[str, object]:
    """Add ``src``, swap it for a special file, log it, in a child; its outcome. ``stored``:
    ``"reread"`` removes the bytes stored as it was hashed first, ``"keep"`` leaves them."""
    try:
        proc = subprocess.run(
            [sys.executable, "-c", LOG_AFTER_SWAP, str(src), how, stored],
            capture_output=True,
            text=True,
            timeout=30,
            env=os.environ.copy(),
        )
    except subprocess.TimeoutExpired as exc:
        raise AssertionError("log hung on a swapped file") from exc
    assert proc.returncode == 0, proc.stderr[-3000:]
    result: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.parametrize("how", ["fifo", "dev-zero"])
@pytest.mark.parametrize("size", [5000, 3 * 2**20, MMAP_THRESHOLD + 2**20])
def test_a_file_swapped_for_a_special_file_before_log_never_hangs(tmp_path: Path, how: str, size: int) -> None:
    src = tmp_path / "victim.bin"
    src.write_bytes(os.urandom(size))
    result = log_after_swap(src, how, "reread")
    assert result.get("error") in ("FileChangedError", "StoreError"), result
    store = tmp_path / "store"
    blobs = [p for p in store.rglob("*") if p.is_file()] if store.exists() else []
    assert all(p.stat().st_size <= size for p in blobs)  # nothing endless was copied into the store


@pytest.mark.parametrize("how", ["fifo", "dev-zero"])
def test_a_small_file_swapped_after_it_was_stored_is_logged_as_added(tmp_path: Path, how: str) -> None:
    """Its bytes went to the store as it was hashed: the log never opens the special file."""
    src = tmp_path / "victim.bin"
    original = os.urandom(5000)
    src.write_bytes(original)
    assert log_after_swap(src, how, "keep") == {"logged": True}
    out = ap.Api().artifact("swapped:latest").download(tmp_path / "out")
    assert (out / "victim.bin").read_bytes() == original
