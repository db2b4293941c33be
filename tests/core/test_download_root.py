"""The default download root (``./artifacts/<name>-v<N>``) names a version only within one project:
a whole-version download there refuses a directory holding files the version lacks."""

from __future__ import annotations

from pathlib import Path

import pytest
from core_helpers import tree_bytes

import artifact_plugins as ap
from artifact_plugins.core.download_claims import IN_ROOT_PREFIX


def log_dir(project: str, src: Path) -> None:
    art = ap.Artifact("ds", "dataset")
    art.add_dir(src)
    with ap.init(project=project, job_type="log") as run:
        run.log_artifact(art)


def test_another_projects_same_named_version_is_refused_and_nothing_is_written(make_tree, tmp_path):
    log_dir("pa", make_tree("a", {"one.txt": "A1", "sub/only_in_a.txt": "A2"}))
    log_dir("pb", make_tree("b", {"one.txt": "B1"}))
    first = ap.Api().artifact("pa/ds:v0").download()
    assert first == Path("artifacts/ds-v0")
    before = tree_bytes(tmp_path / first)

    other = ap.Api().artifact("pb/ds:v0")
    with pytest.raises(ap.errors.ConflictError) as info:
        other.download()
    message = str(info.value)
    assert "pb/ds:v0" in message and "artifacts/ds-v0" in message and "'sub/only_in_a.txt'" in message
    assert "root=" in message
    assert tree_bytes(tmp_path / first) == before  # pa's download intact, no byte of pb's written

    assert tree_bytes(other.download(tmp_path / "b-copy")) == {"one.txt": b"B1"}
    # a partial download asks for some files only: the rest of the directory is not its business
    other.download(path_prefix="one.txt")
    assert tree_bytes(tmp_path / first) == {"one.txt": b"B1", "sub/only_in_a.txt": b"A2"}


def test_an_explicit_root_keeps_files_the_version_lacks(make_tree, tmp_path):
    log_dir("pa", make_tree("a", {"one.txt": "A1"}))
    dest = tmp_path / "mine"
    dest.mkdir()
    (dest / "notes.md").write_text("kept")
    ap.Api().artifact("pa/ds:v0").download(dest)
    assert tree_bytes(dest) == {"notes.md": b"kept", "one.txt": b"A1"}


def test_hidden_names_are_not_strays_but_a_users_file_is(make_tree, tmp_path):
    log_dir("pa", make_tree("a", {"one.txt": "A1", "sub/two.txt": "A2"}))
    v = ap.Api().artifact("pa/ds:v0")
    root = tmp_path / v.download()
    (root / f"{IN_ROOT_PREFIX}token.lock").write_text("")  # a download's claim
    (root / "sub" / ".two.txt.tmp-token").write_text("half")  # a fetch under way, or killed
    (root / ".DS_Store").write_text("a file browser's")
    (root / "sub" / ".ipynb_checkpoints").mkdir()
    (root / "sub" / ".ipynb_checkpoints" / "two-checkpoint.txt").write_text("a notebook's")
    (root / "one.txt").write_text("damaged")
    v.download()
    assert (root / "one.txt").read_text() == "A1"

    (root / "sub" / "extra.csv").write_text("mine")
    with pytest.raises(ap.errors.ConflictError, match=r"'sub/extra\.csv'"):
        v.download()


def test_an_unchecked_directory_reference_owns_its_directory(make_tree, tmp_path):
    ext = make_tree("ext", {"x.txt": "X", "deep/y.txt": "Y"})
    art = ap.Artifact("ds", "dataset")
    art.add_reference(ext.as_uri(), name="refs", checksum=False)
    with ap.init(project="pa", job_type="log") as run:
        run.log_artifact(art)
    v = ap.Api().artifact("pa/ds:v0")
    root = tmp_path / v.download()
    assert tree_bytes(root) == {"refs/deep/y.txt": b"Y", "refs/x.txt": b"X"}
    v.download()  # the reference's files are the entry's, not strays
    assert tree_bytes(root) == {"refs/deep/y.txt": b"Y", "refs/x.txt": b"X"}
