"""Corners of the public API a contract audit found loose: how aliases are given, ``latest`` in
``save()``, C1 control characters, lineage collapse names, ``path_prefix``, verified entry downloads."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

import artifact_plugins as ap
from artifact_plugins.cli import app
from artifact_plugins.core import run_context
from artifact_plugins.core.errors import (
    EntryNotFoundError,
    IntegrityError,
    InvalidAliasError,
    InvalidInputError,
    InvalidPathError,
)
from artifact_plugins.core.run_context import RunContext


def logged(make_tree, files: dict[str, str | bytes] | None = None, **kwargs) -> ap.ArtifactVersion:
    art = ap.Artifact("ds", "dataset")
    art.add_dir(make_tree("src", files or {"images/a.png": "a", "images2/b.png": "b", "c.txt": "c"}))
    with ap.init(job_type="t") as run:
        return run.log_artifact(art, **kwargs)


def test_a_single_string_is_one_alias_and_one_tag(make_tree) -> None:
    v = logged(make_tree, aliases="best", tags="nightly")
    assert sorted(v.aliases) == ["best", "latest"]
    assert v.tags == ["nightly"]


def test_save_refuses_to_put_latest_on_an_older_version(make_tree, api: ap.Api) -> None:
    logged(make_tree)
    logged(make_tree, {"other.txt": "x"})
    old = api.artifact("ds:v0")
    old.aliases.append("latest")
    with pytest.raises(InvalidAliasError, match="'latest' cannot be added to"):
        old.save()
    new = api.artifact("ds:v1")
    new.aliases = ["latest", "prod"]  # keeping it is fine (and dropping it keeps it: it is managed)
    assert sorted(new.save().aliases) == ["latest", "prod"]
    assert api.artifact("ds:latest").version == "v1"


@pytest.mark.parametrize("char", ["\x85", "\x9b", "\x80", "\x9f"])
def test_c1_control_characters_are_refused_in_entry_paths(char: str, tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_text("x")
    with pytest.raises(InvalidPathError, match="control characters"):
        ap.Artifact("r").add_file(tmp_path / "f.txt", name=f"a{char}b")


def test_collapse_accepts_its_other_names_and_lists_them_when_refusing(make_tree, api: ap.Api) -> None:
    logged(make_tree)
    by_type = api.lineage("ds:v0", collapse="type")
    assert api.lineage("ds:v0", collapse="job_type").to_json() == by_type.to_json()
    with pytest.raises(InvalidInputError) as info:
        api.lineage("ds:v0", collapse="steps")
    assert all(name in str(info.value) for name in ("explode", "group", "type", "step", "none", "job_type"))


def test_path_prefix_is_a_string_prefix_ignoring_a_leading_dot_slash(make_tree, tmp_path: Path) -> None:
    v = logged(make_tree)
    root = v.download(tmp_path / "a", path_prefix="./images/")
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()) == ["images/a.png"]
    root = v.download(tmp_path / "b", path_prefix="images")  # as in W&B: images2/ starts with it too
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()) == [
        "images/a.png",
        "images2/b.png",
    ]


def test_a_path_prefix_that_selects_nothing_is_an_error(make_tree, tmp_path: Path) -> None:
    v = logged(make_tree)
    with pytest.raises(EntryNotFoundError, match="no entry whose path starts with 'imgs'") as info:
        v.download(tmp_path / "out", path_prefix="imgs")
    assert "images" in str(info.value)
    assert not (tmp_path / "out").exists()


def test_an_entry_download_can_verify_the_bytes(make_tree, store_dir: Path, tmp_path: Path) -> None:
    v = logged(make_tree)
    entry = v.get_entry("c.txt")
    blob = store_dir / "blobs" / "blake3" / entry.digest[7:9] / entry.digest[7:]
    blob.chmod(0o644)
    assert entry.size == 1
    blob.write_text("e")
    assert entry.download(tmp_path / "unchecked").read_text() == "e"  # same size: the store is trusted by default
    with pytest.raises(IntegrityError):
        entry.download(tmp_path / "checked", verify=True)
    assert not (tmp_path / "checked" / "c.txt").exists()
    blob.write_text("evil")  # another size: refused without hashing, nothing left behind
    with pytest.raises(IntegrityError, match="holds more than 1 bytes where 1 were recorded"):
        entry.download(tmp_path / "resized")
    assert not (tmp_path / "resized" / "c.txt").exists()


def test_a_large_blob_of_another_size_is_refused(make_tree, store_dir: Path, tmp_path: Path) -> None:
    v = logged(make_tree, {"big.bin": b"x" * (2 * 2**20)})
    entry = v.get_entry("big.bin")
    blob = store_dir / "blobs" / "blake3" / entry.digest[7:9] / entry.digest[7:]
    blob.chmod(0o644)
    with blob.open("r+b") as f:
        f.truncate(2**20)
    with pytest.raises(IntegrityError, match=f"holds {2**20} bytes where {2 * 2**20} were recorded"):
        v.download(tmp_path / "out")
    assert not (tmp_path / "out" / "big.bin").exists()


def test_alias_history_validates_the_alias(make_tree, api: ap.Api) -> None:
    logged(make_tree)
    with pytest.raises(InvalidAliasError, match="reserved for version numbers"):
        api.alias_history("ds", "v3")


def test_downloading_onto_a_file_is_bad_input(make_tree, tmp_path: Path) -> None:
    v = logged(make_tree)
    (tmp_path / "afile").write_text("x")
    with pytest.raises(InvalidInputError, match="is not a directory"):
        v.download(tmp_path / "afile")


@dataclass
class LinkingProvider:
    """An orchestrator whose UI base URL was configured with user info."""

    def current(self) -> RunContext | None:
        return RunContext(
            orchestrator="fake",
            run_key="fake:step",
            name="step",
            job_type="train",
            group="g",
            url="https://admin:SUPERSECRET@ui.example/runs/1",
            group_url="https://admin:SUPERSECRET@ui.example/flows/g",
        )


def test_run_links_never_keep_user_info_and_show_lists_run_status(make_tree, api: ap.Api) -> None:
    provider = LinkingProvider()
    run_context.register_provider(provider)
    try:
        v = logged(make_tree)
    finally:
        run_context.providers().remove(provider)
    producer = v.logged_by()
    assert producer is not None
    assert producer.url == "https://***@ui.example/runs/1"
    assert producer.group_url is not None and "SUPERSECRET" not in producer.group_url
    shown = CliRunner().invoke(app, ["show", "ds:v0"])
    assert shown.exit_code == 0, shown.output
    assert "[finished] https://***@ui.example/runs/1" in shown.output
    assert "SUPERSECRET" not in shown.output
