"""Disk full and permission denied, for real: small tmpfs mounts (ENOSPC), read-only remounts (EROFS)
and ``chattr +i`` directories (EPERM, which stops root too).

For the store, the download root, the download cache and the registry: the operation fails with
a clear error naming the path, nothing is corrupted, the registry is unchanged, and the same
operation succeeds once there is room (or permission) again.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import pytest
from core_helpers import registry_dump
from rel_env import Mounts, S3Env
from rel_helpers import (
    check_cache,
    check_root,
    check_store_objects,
    download_and_compare,
    local_store_objects,
    report,
    sqlite_integrity,
    unfinished_local_blobs,
    write_tree,
)

import artifact_plugins as ap
from artifact_plugins.core.client import close_clients
from artifact_plugins.core.errors import RegistryError, StoreError

#: Registry tables a failed log must not change (a run row recording the failed attempt is fine).
VERSION_TABLES = ("projects", "collections", "versions", "aliases", "alias_events", "tags", "edges", "parts")


def committed_state(db: Path) -> dict[str, Any]:
    dump = registry_dump(db)
    return {t: dump.get(t) for t in VERSION_TABLES}


def files_of(rng: random.Random, n: int, size: int) -> dict[str, bytes]:
    return {f"part-{i}.bin": rng.randbytes(size) for i in range(n)}


def log(src: Path, name: str = "ds") -> ap.ArtifactVersion:
    art = ap.Artifact(name, "dataset")
    art.add_dir(src)
    with ap.init(job_type="disk") as run:
        return run.log_artifact(art)


def no_temp_files(root: Path) -> bool:
    return not [p for p in root.rglob("*") if ".tmp-" in p.name]


def test_disk_full_while_logging(tmp_path: Path, mounts: Mounts) -> None:
    rng = random.Random(1)
    store = mounts.tmpfs(tmp_path / "store", "2m")
    seed_files = {"seed.txt": b"fits easily\n"}
    v0 = log(write_tree(tmp_path / "seed", seed_files))
    before = committed_state(tmp_path / "registry.db")
    big = write_tree(tmp_path / "big", files_of(rng, 3, 900 * 1024))  # 2.7 MiB > 2 MiB
    with pytest.raises(StoreError) as info:
        log(big)
    message = str(info.value)
    assert str(store) in message and "no space" in message.lower(), message
    assert committed_state(tmp_path / "registry.db") == before
    state = check_store_objects(local_store_objects(store))  # what landed is whole; no wrong bytes
    assert no_temp_files(store)
    # The blob the disk filled up under stays unreadable (absent to the store) with its bytes freed.
    unfinished = unfinished_local_blobs(store)
    assert all(p.stat().st_size == 0 for p in unfinished), unfinished
    assert download_and_compare(v0, tmp_path / "v0", seed_files)
    mounts.remount(store, "size=16m")
    v1 = log(big)
    verified = download_and_compare(v1, tmp_path / "v1", files_of(random.Random(1), 3, 900 * 1024))
    assert unfinished_local_blobs(store) == []  # the next log replaced it whole
    report(
        "test_disk_full_while_logging",
        "disk full (ENOSPC) in the store during log",
        trials=2,
        faults_injected=1,
        blobs_that_landed_before_the_disk_filled=state["blobs"],
        error=message,
        bytes_verified=verified + state["blob_bytes"],
    )


def test_disk_full_while_downloading(tmp_path: Path, mounts: Mounts) -> None:
    rng = random.Random(2)
    files = files_of(rng, 3, 900 * 1024) | {"small.txt": b"small\n"}
    v = log(write_tree(tmp_path / "src", files))
    before = committed_state(tmp_path / "registry.db")
    root = mounts.tmpfs(tmp_path / "root", "2m")
    with pytest.raises(StoreError) as info:
        v.download(root)
    message = str(info.value)
    assert str(root) in message and "no space" in message.lower(), message
    partial = check_root(root, files)  # files that made it are whole; nothing partial under a final name
    assert no_temp_files(root)
    assert committed_state(tmp_path / "registry.db") == before
    mounts.remount(root, "size=16m")
    v.download(root)
    verified = check_root(root, files)["bytes"]
    assert v.verify(root).ok
    report(
        "test_disk_full_while_downloading",
        "disk full (ENOSPC) in the download root",
        trials=2,
        faults_injected=1,
        whole_files_before_the_disk_filled=partial["files"],
        error=message,
        bytes_verified=verified,
    )


def test_disk_full_in_the_download_cache(tmp_path: Path, mounts: Mounts, s3env: S3Env) -> None:
    # Small blobs are what a directory download caches (large ones go straight to the destination);
    # the cache is on another file system here, so each is copied into it: 4 MB into 2 MB.
    rng = random.Random(3)
    files = {f"part{i:02d}.bin": rng.randbytes(200_000) for i in range(20)}
    v = log(write_tree(tmp_path / "src", files))
    cache = mounts.tmpfs(tmp_path / "cache", "2m")
    close_clients()
    with pytest.raises(StoreError) as info:
        ap.Api().artifact(v.qualified_name).download(tmp_path / "root")
    message = str(info.value)
    assert str(cache) in message and "no space" in message.lower(), message
    check_cache(cache)
    assert no_temp_files(cache)
    check_root(tmp_path / "root", files)
    mounts.remount(cache, "size=16m")
    ap.Api().artifact(v.qualified_name).download(tmp_path / "root")
    verified = check_root(tmp_path / "root", files)["bytes"] + check_cache(cache)["bytes"]
    report(
        "test_disk_full_in_the_download_cache",
        "disk full (ENOSPC) in the download cache (S3 store)",
        trials=2,
        faults_injected=1,
        error=message,
        bytes_verified=verified,
    )


@pytest.mark.parametrize("how", ["read-only-mount", "chattr+i"])
def test_permission_denied_while_logging(how: str, tmp_path: Path, mounts: Mounts) -> None:
    store = tmp_path / "store"
    if how == "read-only-mount":
        mounts.tmpfs(store, "8m")
    v0 = log(write_tree(tmp_path / "seed", {"seed.txt": b"seed\n"}))
    before = committed_state(tmp_path / "registry.db")
    stored_before = local_store_objects(store)
    if how == "read-only-mount":
        mounts.remount(store, "ro")
    else:  # every directory of the store: no new entry anywhere
        dirs = [*sorted((p for p in store.rglob("*") if p.is_dir()), reverse=True), store]
        for d in dirs:
            mounts.chattr(d, immutable=True)
    new = write_tree(tmp_path / "new", {"new.bin": os.urandom(2048), "other.txt": b"other\n"})
    with pytest.raises(StoreError) as info:
        log(new)
    message = str(info.value)
    assert str(store) in message, message
    assert ("read-only" in message.lower()) if how == "read-only-mount" else ("not permitted" in message), message
    assert committed_state(tmp_path / "registry.db") == before
    assert local_store_objects(store) == stored_before
    verified = download_and_compare(v0, tmp_path / "v0", {"seed.txt": b"seed\n"})
    if how == "read-only-mount":
        mounts.remount(store, "rw")
    else:
        for d in dirs:
            mounts.chattr(d, immutable=False)
    assert log(new).version == "v1"
    report(
        f"test_permission_denied_while_logging[{how}]",
        f"permission denied in the store during log ({how})",
        trials=2,
        faults_injected=1,
        error=message,
        bytes_verified=verified,
    )


@pytest.mark.parametrize("how", ["read-only-mount", "chattr+i"])
def test_permission_denied_while_downloading(how: str, tmp_path: Path, mounts: Mounts) -> None:
    files = {"a/one.bin": os.urandom(4096), "b/two.txt": b"two\n"}
    v = log(write_tree(tmp_path / "src", files))
    root = tmp_path / "root"
    if how == "read-only-mount":
        mounts.tmpfs(root, "8m")
        mounts.remount(root, "ro")
    else:
        root.mkdir()
        mounts.chattr(root, immutable=True)
    with pytest.raises(StoreError) as info:
        v.download(root)
    message = str(info.value)
    assert str(root) in message, message
    assert list(root.rglob("*")) == []
    if how == "read-only-mount":
        mounts.remount(root, "rw")
    else:
        mounts.chattr(root, immutable=False)
    v.download(root)
    verified = check_root(root, files)["bytes"]
    report(
        f"test_permission_denied_while_downloading[{how}]",
        f"permission denied in the download root ({how})",
        trials=2,
        faults_injected=1,
        error=message,
        bytes_verified=verified,
    )


def test_registry_disk_full(tmp_path: Path, mounts: Mounts, monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite cannot grow its WAL: the log fails with a RegistryError and the database stays intact."""
    regdir = mounts.tmpfs(tmp_path / "regdir", "4m")
    db = regdir / "registry.db"
    monkeypatch.setenv("ARTIFACT_PLUGINS_REGISTRY", f"sqlite:///{db}")
    close_clients()
    v0 = log(write_tree(tmp_path / "seed", {"seed.txt": b"seed\n"}))
    before = committed_state(db)
    filler = regdir / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)  # take every remaining byte, then give back a little
    try:
        while os.write(fd, b"\0" * 65536):
            pass
    except OSError:
        pass
    finally:
        os.close(fd)
    os.truncate(filler, filler.stat().st_size - 96 * 1024)
    # Room for the run row, not for a version whose metadata needs ~300 KiB of WAL.
    art = ap.Artifact("ds", "dataset", metadata={"notes": "x" * 300_000})
    art.add_dir(write_tree(tmp_path / "new", {"new.txt": b"new\n"}))
    with pytest.raises(RegistryError) as info, ap.init(job_type="disk") as run:
        run.log_artifact(art)
    message = str(info.value)
    assert str(db) in message and "is full" in message.replace(str(db), ""), message
    close_clients()
    filler.unlink()
    sqlite_integrity(db)
    assert committed_state(db) == before
    assert ap.Api().artifact("ds:latest").version == v0.version
    with ap.init(job_type="disk") as run:
        assert run.log_artifact(art).version == "v1"
    report(
        "test_registry_disk_full",
        "disk full (ENOSPC) under the SQLite registry",
        trials=2,
        faults_injected=1,
        error=message,
        bytes_verified=0,
    )


def test_read_only_download_cache(tmp_path: Path, mounts: Mounts, s3env: S3Env) -> None:
    files = {"blob.bin": os.urandom(50_000)}
    v = log(write_tree(tmp_path / "src", files))
    cache = mounts.tmpfs(tmp_path / "cache", "8m")
    mounts.remount(cache, "ro")
    close_clients()
    with pytest.raises(StoreError) as info:
        ap.Api().artifact(v.qualified_name).download(tmp_path / "root")
    message = str(info.value)
    assert str(cache) in message and "read-only" in message.lower(), message
    check_root(tmp_path / "root", files)
    mounts.remount(cache, "rw")
    ap.Api().artifact(v.qualified_name).download(tmp_path / "root")
    verified = check_root(tmp_path / "root", files)["bytes"]
    report(
        "test_read_only_download_cache",
        "read-only download cache (S3 store)",
        trials=2,
        faults_injected=1,
        error=message,
        bytes_verified=verified,
    )
