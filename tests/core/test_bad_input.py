"""Bad input: a specific error naming the value and the rule, and nothing stored or changed."""

from __future__ import annotations

import gzip
import json
import os
import sqlite3
from pathlib import Path

import pytest
from blake3 import blake3

import artifact_plugins as ap
from artifact_plugins.core import artifact as artifact_mod
from artifact_plugins.core.errors import (
    ArtifactNotFoundError,
    FileChangedError,
    InvalidAliasError,
    InvalidInputError,
    InvalidMetadataError,
    InvalidNameError,
    InvalidPathError,
    InvalidRefError,
)
from artifact_plugins.core.hashing import MMAP_THRESHOLD, digest_bytes
from artifact_plugins.core.manifest import DIGEST_HEADER, FORMAT
from artifact_plugins.core.storage import blob_key, manifest_key
from artifact_plugins.core.storage.local import LocalStore

BAD_NAMES = ["", "a" * 129, "has space", "a/b", "a:b", "tab\tname", "ünïcode", "..", "."]
BAD_ALIASES = ["v3", "v0", "v12345", "a/b", "", "has space", "x:y", "a" * 129]
BAD_PATHS = [
    "/abs/path.txt",
    "../escape.txt",
    "a/../../escape.txt",
    "a/..",
    "a//b",
    "a\x00b",
    "a\x07b",
    "line\nbreak",
    "a\\b",
    "C:/windows",
    "dir/",
    "",
    "x" * 1025,
    "é" * 513,  # 1026 bytes in UTF-8
]
BAD_REFS = [
    "a/b/c/d",
    "x:",
    "x@blake3:zz",
    "",
    "x@blake3:" + "A" * 64,
    "x@sha256:" + "0" * 64,
    "x:v1@blake3:" + "0" * 64,
    "has space:latest",
    "x:a/b",
    "/x",
]


@pytest.fixture
def seeded(tmp_path: Path) -> tuple[ap.Run, ap.Artifact, Path]:
    """A registry with ``ds:v0`` and ``ds:v1`` (aliases latest, best), an open run, and a fresh draft."""
    src = tmp_path / "seed"
    src.mkdir()
    run = ap.init(job_type="bad-input")
    for i, aliases in enumerate([["best"], ["candidate"]]):
        (src / "f.txt").write_text(f"seed {i}")
        art = ap.Artifact("ds", "dataset")
        art.add_file(src / "f.txt")
        run.log_artifact(art, aliases=aliases)
    fresh = tmp_path / "fresh.txt"
    fresh.write_text("never stored")
    draft = ap.Artifact("ds", "dataset")
    draft.add_file(fresh)
    yield run, draft, fresh
    run.finish()


def in_message(value: object, exc: BaseException) -> bool:
    msg = str(exc)
    return repr(value) in msg or (isinstance(value, str) and value != "" and value in msg)


# -- names and types -------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", BAD_NAMES)
def test_invalid_artifact_names(bad):
    with pytest.raises(InvalidNameError) as info:
        ap.Artifact(bad, "dataset")
    assert in_message(bad, info.value)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("bad", BAD_NAMES)
def test_invalid_artifact_types(bad):
    with pytest.raises(InvalidNameError) as info:
        ap.Artifact("ok-name", type=bad)
    assert in_message(bad, info.value)


def test_name_of_128_chars_is_fine():
    assert ap.Artifact("n" * 128, "t" * 128).name == "n" * 128


@pytest.mark.parametrize("bad", ["has space", "a/b", ""])
def test_invalid_project_entity_and_tag(bad, seeded, snapshot):
    run, draft, _ = seeded
    before = snapshot()
    with pytest.raises(InvalidNameError) as info:
        run.log_artifact(draft, tags=[bad])
    assert in_message(bad, info.value)
    with pytest.raises(InvalidNameError):
        ap.init(project=bad or " ")
    with pytest.raises(InvalidNameError):
        ap.Api(entity=bad or " ")
    assert snapshot() == before


# -- aliases ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", BAD_ALIASES)
def test_invalid_alias_on_log_leaves_everything_unchanged(bad, seeded, snapshot):
    run, draft, _ = seeded
    before = snapshot()
    with pytest.raises(InvalidAliasError) as info:
        run.log_artifact(draft, aliases=["fine", bad])
    assert in_message(bad, info.value)
    assert snapshot() == before


@pytest.mark.parametrize("bad", BAD_ALIASES)
def test_invalid_alias_on_set_alias_and_save(bad, seeded, snapshot, api):
    before = snapshot()
    with pytest.raises(InvalidAliasError) as info:
        api.set_alias("ds:v0", bad)
    assert in_message(bad, info.value)
    v = api.artifact("ds:v0")
    v.aliases.append(bad)
    v.description = "must not be saved either"
    with pytest.raises(InvalidAliasError):
        v.save()
    assert snapshot() == before


def test_version_like_alias_names_the_rule(seeded):
    run, draft, _ = seeded
    with pytest.raises(InvalidAliasError, match=r"'v3'.*version"):
        run.log_artifact(draft, aliases=["v3"])


# -- entry paths -----------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", BAD_PATHS)
def test_invalid_entry_paths_on_add_file(bad, seeded, snapshot):
    _run, draft, fresh = seeded
    before = snapshot()
    entries_before = dict(draft.entries)
    with pytest.raises(InvalidPathError) as info:
        draft.add_file(fresh, name=bad)
    assert in_message(bad, info.value)
    assert draft.entries == entries_before
    assert snapshot() == before


@pytest.mark.parametrize("bad", BAD_PATHS)
def test_invalid_entry_paths_on_new_file(bad):
    art = ap.Artifact("ds", "dataset")
    with pytest.raises(InvalidPathError) as info, art.new_file(bad) as f:
        f.write("x")
    assert in_message(bad, info.value)
    assert art.entries == {}


@pytest.mark.parametrize("bad", ["/abs", "..", "a//b", "a\\b"])
def test_invalid_prefix_on_add_dir(bad, make_tree):
    src = make_tree("tree", {"x.txt": "x"})
    art = ap.Artifact("ds", "dataset")
    with pytest.raises(InvalidPathError):
        art.add_dir(src, name=bad)
    assert art.entries == {}


def test_entry_path_limits_and_normalisation(tmp_path):
    f = tmp_path / "f.txt"
    f.write_text("x")
    art = ap.Artifact("ds", "dataset")
    assert art.add_file(f, name="y" * 1024).path == "y" * 1024
    assert art.add_file(f, name="./a/./b.txt").path == "a/b.txt"
    assert art.add_file(f, name="cafe\u0301.txt").path == "caf\u00e9.txt"  # NFC


# -- refs ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", BAD_REFS)
def test_refs_that_do_not_parse(bad, seeded, snapshot, api):
    run, _draft, _ = seeded
    before = snapshot()
    with pytest.raises(InvalidRefError) as info:
        api.artifact(bad)
    assert in_message(bad, info.value)
    with pytest.raises(InvalidRefError) as info2:
        run.use_artifact(bad)
    assert in_message(bad, info2.value)
    assert snapshot() == before


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("ds:v7", ["ds:v7", "v1", "v0"]),
        ("ds:nope", ["ds:nope", "v1", "v0", "best", "candidate"]),
        ("ds@blake3:" + "0" * 64, ["0" * 64, "v1"]),
        ("other-project/ds:v0", ["other-project", "ds:v0"]),
        ("dz:latest", ["dz:latest", "ds"]),
    ],
)
def test_unknown_versions_and_aliases(ref, expected, seeded, snapshot, api):
    run, _draft, _ = seeded
    before = snapshot()
    with pytest.raises(ArtifactNotFoundError) as info:
        api.artifact(ref)
    for part in expected:
        assert part in str(info.value), (part, str(info.value))
    with pytest.raises(ArtifactNotFoundError):
        run.use_artifact(ref)
    assert isinstance(info.value, LookupError)
    assert snapshot() == before


def test_deleted_version_is_not_found_and_named(seeded, api):
    api.artifact("ds:v0").delete(delete_aliases=True)
    with pytest.raises(ArtifactNotFoundError, match="ds:v0") as info:
        api.artifact("ds:v0")
    assert "v1" in str(info.value)


# -- metadata --------------------------------------------------------------------------------------

BAD_METADATA = [
    ({"x": object()}, "object"),
    ({"x": float("nan")}, "nan"),
    ({"x": float("inf")}, "inf"),
    ({"x": {1, 2}}, "{1, 2}"),
    ({"nested": {"deep": [1, b"bytes"]}}, "bytes"),
    ({1: "non-string key"}, "1"),
    (["not", "a", "dict"], "list"),
]


@pytest.mark.parametrize(("bad", "named"), BAD_METADATA)
def test_metadata_not_json_on_construction(bad, named):
    with pytest.raises(InvalidMetadataError) as info:
        ap.Artifact("ds", "dataset", metadata=bad)
    assert named in str(info.value)


@pytest.mark.parametrize(("bad", "named"), BAD_METADATA)
def test_metadata_not_json_on_save(bad, named, seeded, snapshot, api):
    before = snapshot()
    v = api.artifact("ds:latest")
    v.metadata = bad
    with pytest.raises(InvalidMetadataError) as info:
        v.save()
    assert named in str(info.value)
    assert snapshot() == before


@pytest.mark.parametrize(("bad", "named"), BAD_METADATA[:4])
def test_metadata_set_on_the_draft_after_construction_is_checked_at_log(bad, named, seeded, snapshot):
    """``artifact.metadata = {...}`` (as in the walkthrough) is validated before anything is stored."""
    run, draft, _ = seeded
    before = snapshot()
    draft.metadata = bad
    with pytest.raises(InvalidMetadataError) as info:
        run.log_artifact(draft)
    assert named in str(info.value)
    assert snapshot() == before


def test_description_must_be_a_string(seeded, snapshot, api):
    with pytest.raises(InvalidMetadataError, match="description"):
        ap.Artifact("ds", "dataset", description=123)  # type: ignore[arg-type]
    before = snapshot()
    v = api.artifact("ds:latest")
    v.description = ["not", "text"]  # type: ignore[assignment]
    with pytest.raises(InvalidMetadataError, match="description"):
        v.save()
    assert snapshot() == before


# -- missing and changing files --------------------------------------------------------------------


def test_missing_file_and_directory(tmp_path, seeded, snapshot):
    _run, draft, _ = seeded
    before = snapshot()
    missing = tmp_path / "does-not-exist.bin"
    with pytest.raises(InvalidInputError) as info:
        draft.add_file(missing)
    assert str(missing) in str(info.value)
    with pytest.raises(InvalidInputError) as info2:
        draft.add_dir(tmp_path / "no-such-dir")
    assert "no-such-dir" in str(info2.value)
    with pytest.raises(InvalidInputError, match="does-not-exist"):
        draft.add_reference(missing.as_uri())
    assert sorted(draft.entries) == ["fresh.txt"]
    assert snapshot() == before


def test_file_changing_while_hashed(tmp_path, seeded, snapshot, monkeypatch):
    """Fault injection: the file grows between its stat and the end of its hash."""
    _run, draft, _ = seeded
    victim = tmp_path / "growing.log"
    victim.write_text("first line\n")
    real = artifact_mod.hash_file

    def growing_hash(path, st=None, keep=None):
        with open(path, "a") as f:
            f.write("another line\n")
        return real(path, st, keep)

    monkeypatch.setattr(artifact_mod, "hash_file", growing_hash)
    before = snapshot()
    with pytest.raises(FileChangedError) as info:
        draft.add_file(victim)
    assert "growing.log" in str(info.value)
    assert "growing.log" not in draft.entries
    assert snapshot() == before


def test_file_changing_while_stored(tmp_path, seeded, snapshot, monkeypatch, store_dir):
    """Fault injection: the file is appended to when the store starts copying it."""
    run, _draft, _ = seeded
    victim = tmp_path / "model.bin"
    victim.write_bytes(os.urandom(MMAP_THRESHOLD + 2**20))  # large: copied by the kernel, then its stat is checked
    art = ap.Artifact("ds", "dataset")
    art.add_file(victim)
    (store_dir / blob_key(art.entries["model.bin"].digest)).unlink()  # copied as hashed: gone again
    real_put = LocalStore.put_file

    def put_while_growing(self, key, src, expect=None):
        with open(src, "ab") as f:
            f.write(b"tail")
        return real_put(self, key, src, expect)

    monkeypatch.setattr(LocalStore, "put_file", put_while_growing)
    before = snapshot()
    with pytest.raises(FileChangedError) as info:
        run.log_artifact(art)
    assert "model.bin" in str(info.value)
    assert snapshot() == before
    assert art.logged_version is None


def test_small_file_edited_between_add_and_log_is_refused_even_when_its_stat_is_unchanged(
    tmp_path, seeded, snapshot, store_dir
):
    """A small file whose blob is not in the store yet is read again when stored and its bytes
    hashed again: an edit that kept its length and was given back its mtime is refused, not
    stored under the old digest."""
    run, _draft, _ = seeded
    src = tmp_path / "small.txt"
    src.write_text("small, new bytes")
    os.utime(src, ns=(0, 0))
    art = ap.Artifact("ds", "dataset")
    art.add_file(src)
    (store_dir / blob_key(digest_bytes(b"small, new bytes"))).unlink()  # stored while hashed: gone again
    src.write_text("small, NEW bytes")
    os.utime(src, ns=(0, 0))  # same length, same mtime: only the bytes tell
    before = snapshot()
    with pytest.raises(FileChangedError, match=r"small\.txt"):
        run.log_artifact(art)
    assert snapshot() == before
    assert art.logged_version is None


def test_large_file_edited_between_add_and_log_is_refused_when_its_copy_is_gone(tmp_path, seeded, snapshot, store_dir):
    """A large file whose copy made at add time is gone is read again by the log: an edit is refused."""
    run, _draft, _ = seeded
    victim = tmp_path / "edited.bin"
    victim.write_bytes(b"as added" * (MMAP_THRESHOLD // 8))
    art = ap.Artifact("ds", "dataset")
    art.add_file(victim)
    (store_dir / blob_key(art.entries["edited.bin"].digest)).unlink()
    victim.write_bytes(b"edited afterwards!")
    before = snapshot()
    with pytest.raises(FileChangedError, match=r"edited\.bin"):
        run.log_artifact(art)
    assert snapshot() == before


# -- tampered manifests ----------------------------------------------------------------------------


def craft_manifest(entries: list[dict]) -> tuple[str, bytes]:
    """A manifest with the real format and a correct digest over whatever entries it is given."""
    h = blake3(DIGEST_HEADER)
    for e in sorted(entries, key=lambda e: e["path"]):
        h.update(f"{e['path']}\0{e['digest']}\n".encode())
    digest = "blake3:" + h.hexdigest()
    doc = {"format": FORMAT, "version": 1, "digest": digest, "entries": entries}
    return digest, gzip.compress(json.dumps(doc).encode())


@pytest.mark.parametrize(
    "evil",
    ["../escaped.txt", "../../escaped.txt", "/tmp/ap-escaped-absolute.txt", "sub/../../escaped.txt", "a//../x"],
)
def test_tampered_manifest_is_refused_before_any_write(evil, tmp_path, store_dir, registry_db, api):
    src = tmp_path / "ok.txt"
    src.write_text("innocent")
    with ap.init() as run:
        art = ap.Artifact("victim", "dataset")
        art.add_file(src)
        v = run.log_artifact(art)
    blob = digest_bytes(b"innocent")
    entries = [
        {"path": "fine.txt", "digest": blob, "size": 8},
        {"path": evil, "digest": blob, "size": 8},
    ]
    digest, data = craft_manifest(entries)
    key = manifest_key(digest)
    (store_dir / key).parent.mkdir(parents=True, exist_ok=True)
    (store_dir / key).write_bytes(data)
    conn = sqlite3.connect(registry_db)
    with conn:
        conn.execute("UPDATE versions SET digest = ?, manifest_key = ? WHERE id = ?", (digest, key, v.id))
    conn.close()

    tampered = ap.Api().artifact("victim:v0")
    assert tampered.digest == digest
    root = tmp_path / "download-root"
    with pytest.raises(InvalidInputError) as info:
        tampered.download(root)
    assert evil in str(info.value) or repr(evil) in str(info.value)
    assert not root.exists() or [p for p in root.rglob("*")] == []
    assert not (tmp_path / "escaped.txt").exists()
    assert not Path("/tmp/ap-escaped-absolute.txt").exists()
    with pytest.raises(InvalidInputError):
        tampered.get_entry("fine.txt").download(root)
    assert not root.exists() or [p for p in root.rglob("*")] == []


def test_download_revalidates_entry_paths(tmp_path):
    """The second line of defence: entry paths are re-checked right before writing."""
    from artifact_plugins.core.transfer import safe_destination

    root = tmp_path / "root"
    assert safe_destination(root, "a/b.txt") == root / "a" / "b.txt"
    for evil in ["../x", "/etc/passwd", "a/../../x", "a//b", "a\\b"]:
        with pytest.raises(InvalidPathError):
            safe_destination(root, evil)
