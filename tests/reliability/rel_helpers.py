"""Invariant checks and result counters shared by the reliability tests.

The checks are the promises of DESIGN §3/§5 stated as code:

* a store never holds bytes under a content address they do not hash to (blobs and manifests);
* the registry holds only complete versions: contiguous indexes, one version per digest and
  collection, every manifest present and valid, ``latest`` on the newest version;
* every committed version downloads, and what lands on disk hashes to its manifest.

Each test writes its counters (trials, faults injected, bytes verified, failures) to
``test-artifacts/reliability/<test>.json``; RELIABILITY.md is filled from those files.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from blake3 import blake3
from core_helpers import tree_bytes as tree_bytes  # re-exported for the reliability tests

import artifact_plugins as ap
from artifact_plugins.core.client import get_client
from artifact_plugins.core.hashing import PREFIX
from artifact_plugins.core.manifest import Manifest
from artifact_plugins.core.storage import blob_key, manifest_key

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "test-artifacts" / "reliability"


def report(test: str, scenario: str, **counters: Any) -> dict[str, Any]:
    """Record a test's counters (``trials``, ``faults_injected``, ``bytes_verified``, ...); ``failures`` is 0
    by construction (any failure raised before this point)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    doc = {"test": test, "scenario": scenario, **counters, "failures": 0, "finished_at": time.strftime("%FT%T%z")}
    (RESULTS / f"{test}.json").write_text(json.dumps(doc, indent=2, sort_keys=True, default=str) + "\n")
    return doc


def hex_digest(data: bytes) -> str:
    return blake3(data).hexdigest()


def file_digest(path: Path) -> str:
    h = blake3()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return PREFIX + h.hexdigest()


def is_temp(name: str) -> bool:
    return ".tmp-" in name


# -- stores --------------------------------------------------------------------------------------


def check_store_objects(objects: Mapping[str, bytes]) -> Counter[str]:
    """Every blob hashes to its key and every manifest parses and hashes to its key (temp objects counted apart)."""
    seen: Counter[str] = Counter()
    for key, data in objects.items():
        name = key.rsplit("/", 1)[-1]
        if is_temp(name):
            seen["temp"] += 1
            continue
        if key.startswith("blobs/"):
            assert hex_digest(data) == name, f"blob {key} holds bytes that hash to {hex_digest(data)}"
            seen["blobs"] += 1
            seen["blob_bytes"] += len(data)
        elif key.startswith("manifests/"):
            digest = PREFIX + name.split(".", 1)[0]

            def whole(base: str) -> Manifest:  # a delta's base must be stored, and whole
                return Manifest.from_bytes(objects[manifest_key(base)], expected_digest=base)

            Manifest.from_bytes(data, expected_digest=digest, base=whole)
            seen["manifests"] += 1
        else:
            raise AssertionError(f"unexpected object {key} in the store")
    return seen


def local_store_objects(root: Path) -> dict[str, bytes]:
    """Every finished file of a local store (key -> bytes); see :func:`unfinished_local_blobs`."""
    if not root.exists():
        return {}
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and p.stat().st_mode & stat.S_IRUSR
    }


def unfinished_local_blobs(root: Path) -> list[Path]:
    """Blobs a local store's writer created under their final names and never finished (mode 0:
    the store counts them as absent; the next writer replaces them, gc removes them)."""
    if not root.exists():
        return []
    return [p for p in root.rglob("*") if p.is_file() and not p.stat().st_mode & stat.S_IRUSR]


def check_cache(cache_dir: Path) -> Counter[str]:
    """The download cache holds only verified blobs under their final names."""
    seen: Counter[str] = Counter()
    blobs = cache_dir / "blobs" / "blake3"
    if not blobs.exists():
        return seen
    for p in blobs.rglob("*"):
        if not p.is_file():
            continue
        if is_temp(p.name):
            seen["temp"] += 1
            continue
        assert file_digest(p) == PREFIX + p.name, f"cache holds unverified bytes under {p}"
        seen["blobs"] += 1
        seen["bytes"] += p.stat().st_size
    return seen


def check_root(root: Path, expected: Mapping[str, bytes]) -> Counter[str]:
    """No file under a final name in a download root is partial: each one is exactly its expected bytes."""
    seen: Counter[str] = Counter()
    if not root.exists():
        return seen
    for p in root.rglob("*"):
        if not p.is_file():
            continue
        if is_temp(p.name):
            seen["temp"] += 1
            continue
        rel = p.relative_to(root).as_posix()
        assert rel in expected, f"unexpected file {rel} in the download root"
        data = p.read_bytes()
        assert data == expected[rel], f"{rel} in the download root holds {len(data)} wrong bytes"
        seen["files"] += 1
        seen["bytes"] += len(data)
    return seen


# -- registry ------------------------------------------------------------------------------------


def sqlite_integrity(db: Path) -> None:
    """SQLite's own integrity and foreign-key checks pass."""
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    finally:
        conn.close()


def check_registry(api: ap.Api) -> list[ap.ArtifactVersion]:
    """Only complete versions: contiguous indexes, one per digest, manifests valid, ``latest`` on the newest."""
    client = get_client(api.settings)
    out: list[ap.ArtifactVersion] = []
    for c in api.artifact_collections("*"):
        versions = api.artifact_versions(None, f"{c.project}/{c.name}")
        indexes = [v.version_index for v in versions]
        assert indexes == list(range(len(versions))), f"{c.name}: version indexes {indexes} are not contiguous"
        digests = [v.digest for v in versions]
        assert len(set(digests)) == len(digests), f"{c.name}: a digest was committed twice: {digests}"
        if versions:
            assert "latest" in versions[-1].aliases, f"{c.name}: latest is not on the newest version"
        for v in versions:
            manifest = client.manifest(v._record)  # raises unless present, valid and matching the digest
            assert len(manifest) == v.file_count and manifest.size == v.size
            out.append(v)
    return out


def download_and_compare(
    version: ap.ArtifactVersion, root: Path, expected: Mapping[str, bytes], verify: bool = True
) -> int:
    """Download ``version`` to a fresh ``root`` and compare every file; returns the bytes verified."""
    version.download(root, verify=verify)
    got = {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}
    assert got.keys() == expected.keys(), f"{version.qualified_name}: files {sorted(got)} != {sorted(expected)}"
    for rel, data in expected.items():
        assert got[rel] == data, f"{version.qualified_name}: {rel} differs"
    return sum(len(d) for d in expected.values())


def write_tree(root: Path, files: Mapping[str, bytes]) -> Path:
    """Write ``files`` under ``root`` and return it."""
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    root.mkdir(parents=True, exist_ok=True)
    return root


def age(paths: Iterable[Path], seconds: float = 7200) -> None:
    """Move mtimes into the past (so gc's grace period has passed for them)."""
    t = time.time() - seconds
    for p in paths:
        os.utime(p, (t, t))


def blob_path(store_root: Path, digest: str) -> Path:
    return store_root / blob_key(digest)
