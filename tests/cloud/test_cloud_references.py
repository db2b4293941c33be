"""s3:// and gs:// references against real servers: identity, versions, drift, prefix limits."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cloud_helpers import REFS_BUCKET, VERSIONED_BUCKET, Backend, unique

import artifact_plugins as ap
from artifact_plugins.core.references import ReferenceChangedError, TooManyObjectsError, verify_references
from artifact_plugins.core.references.base import identity_digest


def put_tree(backend: Backend, bucket: str, prefix: str, files: dict[str, bytes]) -> dict[str, str | None]:
    """Upload ``files`` under ``prefix``; returns each key's version / generation."""
    return {rel: backend.put(bucket, f"{prefix}/{rel}", data) for rel, data in files.items()}


def log_refs(uri: str, name: str | None = "data", **kwargs: object) -> ap.ArtifactVersion:
    art = ap.Artifact("refs", "dataset")
    art.add_reference(uri, name=name, **kwargs)  # type: ignore[arg-type]
    with ap.init(job_type="track") as run:
        return run.log_artifact(art)


FILES = {"a.txt": b"alpha\n", "sub/b.txt": b"bravo\n", "sub/c.bin": b"c" * 1000}


def test_prefix_entries_record_identity(backend: Backend, tmp_path: Path) -> None:
    backend.use_store()
    prefix = unique("p")
    put_tree(backend, REFS_BUCKET, prefix, FILES)
    backend.put(REFS_BUCKET, f"{prefix}/sub/", b"")  # a directory marker is not content

    v = log_refs(backend.uri(REFS_BUCKET, prefix + "/"))
    entries = v.manifest()
    assert sorted(entries) == ["data/a.txt", "data/sub/b.txt", "data/sub/c.bin"]
    for rel, data in FILES.items():
        e = entries[f"data/{rel}"]
        assert e.ref == backend.uri(REFS_BUCKET, f"{prefix}/{rel}")
        assert e.size == len(data)
        if backend.kind == "s3":
            assert e.extra["etag"] and "versionId" not in e.extra  # unversioned bucket
        else:
            assert e.extra["generation"] and e.extra["md5"] and e.extra["crc32c"]

    # A key naming no object is a prefix too; the same objects give the same digest.
    again = log_refs(backend.uri(REFS_BUCKET, prefix))
    assert again.digest == v.digest and again.version == v.version

    root = v.download(tmp_path / "out")
    for rel, data in FILES.items():
        assert (root / "data" / rel).read_bytes() == data
    assert verify_references(v) == dict.fromkeys(entries, "unchanged")


def test_single_object_and_default_name(backend: Backend, tmp_path: Path) -> None:
    backend.use_store()
    key = f"{unique('one')}/model.pt"
    backend.put(REFS_BUCKET, key, b"weights")
    v = log_refs(backend.uri(REFS_BUCKET, key), name=None)
    assert list(v.manifest()) == ["model.pt"]
    assert v.get_entry("model.pt").download(tmp_path / "o").read_bytes() == b"weights"


def test_drift_without_versioning_fails_the_download(backend: Backend, tmp_path: Path) -> None:
    backend.use_store()
    prefix = unique("drift")
    put_tree(backend, REFS_BUCKET, prefix, FILES)
    v = log_refs(backend.uri(REFS_BUCKET, prefix + "/"))

    backend.put(REFS_BUCKET, f"{prefix}/a.txt", b"alpha, edited\n")
    backend.delete(REFS_BUCKET, f"{prefix}/sub/b.txt")
    assert verify_references(v) == {"data/a.txt": "changed", "data/sub/b.txt": "missing", "data/sub/c.bin": "unchanged"}

    with pytest.raises(ReferenceChangedError, match="changed since it was logged"):
        v.get_entry("data/a.txt").download(tmp_path / "out")
    assert not (tmp_path / "out" / "data" / "a.txt").exists()
    assert v.get_entry("data/sub/c.bin").download(tmp_path / "out").read_bytes() == FILES["sub/c.bin"]

    # The same bytes put back: unchanged again, and downloadable.
    backend.put(REFS_BUCKET, f"{prefix}/a.txt", FILES["a.txt"])
    assert verify_references(v)["data/a.txt"] == "unchanged"
    assert v.get_entry("data/a.txt").download(tmp_path / "out2").read_bytes() == FILES["a.txt"]


def test_versioned_bucket_serves_the_logged_version(backend: Backend, tmp_path: Path) -> None:
    backend.use_store()
    prefix = unique("ver")
    big = os.urandom(9 * 2**20 + 7)  # large enough for the ranged/multipart download path
    versions = put_tree(backend, VERSIONED_BUCKET, prefix, {**FILES, "big.bin": big})
    v = log_refs(backend.uri(VERSIONED_BUCKET, prefix + "/"))
    field = "versionId" if backend.kind == "s3" else "generation"
    assert v.manifest()["data/a.txt"].extra[field] == versions["a.txt"]

    backend.put(VERSIONED_BUCKET, f"{prefix}/a.txt", b"overwritten\n")
    backend.put(VERSIONED_BUCKET, f"{prefix}/big.bin", b"small now")
    drift = verify_references(v)
    assert drift["data/a.txt"] == "changed" and drift["data/big.bin"] == "changed"

    root = v.download(tmp_path / "out")  # the recorded versions, not the live objects
    assert (root / "data" / "a.txt").read_bytes() == FILES["a.txt"]
    assert (root / "data" / "big.bin").read_bytes() == big


def test_pinned_version_in_the_uri(backend: Backend, tmp_path: Path) -> None:
    backend.use_store()
    key = f"{unique('pin')}/cfg.json"
    first = backend.put(VERSIONED_BUCKET, key, b'{"v": 1}')
    backend.put(VERSIONED_BUCKET, key, b'{"v": 2}')
    pin = f"?versionId={first}" if backend.kind == "s3" else f"#{first}"
    v = log_refs(backend.uri(VERSIONED_BUCKET, key) + pin, name="cfg.json")
    e = v.manifest()["cfg.json"]
    assert e.size == len(b'{"v": 1}')
    assert v.get_entry("cfg.json").download(tmp_path / "o").read_bytes() == b'{"v": 1}'


def test_prefix_limit_is_loud(backend: Backend) -> None:
    backend.use_store()
    prefix = unique("many")
    put_tree(backend, REFS_BUCKET, prefix, {f"f{i}.txt": b"%d" % i for i in range(6)})
    art = ap.Artifact("limited", "dataset")
    with pytest.raises(TooManyObjectsError, match="max_objects=5"):
        art.add_reference(backend.uri(REFS_BUCKET, prefix + "/"), max_objects=5)
    assert art.entries == {}  # nothing half-added
    assert len(art.add_reference(backend.uri(REFS_BUCKET, prefix + "/"), max_objects=6)) == 6
    assert len(ap.Artifact("x").add_reference(backend.uri(REFS_BUCKET, prefix + "/"), max_objects=None)) == 6


def test_checksum_false_records_the_uri_only(backend: Backend, tmp_path: Path) -> None:
    backend.use_store()
    prefix = unique("nock")
    put_tree(backend, REFS_BUCKET, prefix, FILES)
    uri = backend.uri(REFS_BUCKET, f"{prefix}/a.txt")
    v = log_refs(uri, name="a.txt", checksum=False)
    e = v.manifest()["a.txt"]
    assert (e.ref, e.digest, e.size, e.extra) == (uri, identity_digest(uri), 0, {})
    backend.put(REFS_BUCKET, f"{prefix}/a.txt", b"new content\n")
    assert verify_references(v) == {"a.txt": "unchanged"}  # nothing recorded to drift from
    assert v.get_entry("a.txt").download(tmp_path / "o").read_bytes() == b"new content\n"
    backend.delete(REFS_BUCKET, f"{prefix}/a.txt")
    assert verify_references(v) == {"a.txt": "missing"}


def test_checksum_false_prefix_downloads_what_is_there_now(
    backend: Backend, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    backend.use_store()
    prefix = unique("nockdir")
    put_tree(backend, REFS_BUCKET, prefix, FILES)
    v = log_refs(backend.uri(REFS_BUCKET, prefix + "/"), name="tree", checksum=False)
    (e,) = v.manifest().values()
    assert (e.path, e.size, e.extra) == ("tree", 0, {})  # nothing was listed at log time
    backend.put(REFS_BUCKET, f"{prefix}/late.txt", b"added after logging\n")

    with caplog.at_level("WARNING", logger="artifact_plugins.references"):
        root = v.download(tmp_path / "out")
    got = {p.relative_to(root / "tree").as_posix(): p.read_bytes() for p in (root / "tree").rglob("*") if p.is_file()}
    assert got == {**FILES, "late.txt": b"added after logging\n"}
    assert "checksum=False" in caplog.text and "4 objects" in caplog.text

    # Downloading again replaces the directory (a vanished object vanishes locally too).
    backend.delete(REFS_BUCKET, f"{prefix}/late.txt")
    v.download(tmp_path / "out")
    assert not (root / "tree" / "late.txt").exists() and (root / "tree" / "sub" / "b.txt").read_bytes() == b"bravo\n"
    assert verify_references(v) == {"tree": "unchanged"}

    for rel in FILES:
        backend.delete(REFS_BUCKET, f"{prefix}/{rel}")
    assert verify_references(v) == {"tree": "missing"}
    with pytest.raises(ReferenceChangedError, match="names no object"):
        v.download(tmp_path / "gone")
    assert not (tmp_path / "gone" / "tree").exists()  # no half-written directory left


def test_missing_object_and_empty_prefix_are_refused(backend: Backend) -> None:
    backend.use_store()
    with pytest.raises(ValueError, match="no objects under"):
        ap.Artifact("x").add_reference(backend.uri(REFS_BUCKET, unique("nothing") + "/"))
