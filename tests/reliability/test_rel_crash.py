"""SIGKILL at random points: logging, downloading, and the first-time schema migration.

Hundreds of trials with fixed seeds, each a real process forked from one preloaded interpreter
(``_crash_driver.py``) and killed with SIGKILL; after every kill a clean process repeats the same
operation. Afterwards the store, the registry, the download root and the cache must satisfy the
invariants of :mod:`rel_helpers`.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from rel_helpers import (
    check_cache,
    check_registry,
    check_store_objects,
    download_and_compare,
    local_store_objects,
    report,
    sqlite_integrity,
    tree_bytes,
    unfinished_local_blobs,
    write_tree,
)

import artifact_plugins as ap
from artifact_plugins.core import cache as cache_mod
from artifact_plugins.core.client import close_clients, get_client
from artifact_plugins.core.errors import StoreError
from artifact_plugins.core.registry import Registry
from artifact_plugins.core.storage import blob_key

DRIVER = Path(__file__).with_name("_crash_driver.py")
LOG_TRIALS = 200
DOWNLOAD_TRIALS = 80
S3_DOWNLOAD_TRIALS = 24
MIGRATE_TRIALS = 24


def drive(cfg: dict[str, Any], tmp_path: Path, timeout: float = 300) -> dict[str, Any]:
    """Run the crash driver with this test's environment; returns its JSON result."""
    cfg = {**cfg, "out": str(tmp_path / f"driver-{cfg['mode']}.json"), "work": str(tmp_path / "work")}
    Path(cfg["work"]).mkdir(exist_ok=True)
    config = tmp_path / f"driver-{cfg['mode']}-config.json"
    config.write_text(json.dumps(cfg))
    proc = subprocess.run(
        [sys.executable, str(DRIVER), str(config)],
        env=os.environ.copy(),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, f"crash driver failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    result: dict[str, Any] = json.loads(Path(cfg["out"]).read_text())
    result["stderr"] = proc.stderr
    return result


def variant_files(rng: random.Random, index: int) -> dict[str, bytes]:
    """A source tree: files shared by every variant (blob dedup), own small files, one large file."""
    files = {f"common/shared-{j}.txt": f"shared line {j}\n".encode() * 100 for j in range(8)}
    files |= {f"own/part-{j}.bin": rng.randbytes(rng.randrange(1, 32 * 1024)) for j in range(10)}
    files["own/empty.txt"] = b""
    files["large.bin"] = rng.randbytes(2**20 + 4096 * index)  # above the store's small-file path
    return files


def test_sigkill_while_logging(tmp_path: Path) -> None:
    rng = random.Random(20240610)
    variants, contents = [], {}
    for k in range(6):
        files = variant_files(rng, k)
        src = write_tree(tmp_path / f"src-{k}", files)
        variants.append({"index": k, "collection": f"crash-{k % 2}", "src": str(src)})
        contents[k] = files
    Registry(ap.Api().settings.registry).engine.dispose()  # schema up front: the trials are about commits
    close_clients()

    result = drive({"mode": "log", "seed": 7, "trials": LOG_TRIALS, "variants": variants}, tmp_path)
    trials = result["trials"]
    assert len(trials) == LOG_TRIALS
    problems = [t for t in trials if not t["killed"] and t["exit"] != 0]
    assert not problems, f"children failed on their own: {problems[:3]}\n{result['stderr'][-4000:]}"
    # Every clean re-run succeeded and deduplicated exactly when the killed log had committed.
    for t in trials:
        assert t["rerun_exit"] == 0, f"re-run after trial {t['trial']} failed:\n{result['stderr'][-4000:]}"
        rerun = t["rerun"]
        assert rerun["digest"] == rerun["expected_digest"]
        if not rerun["existed"]:
            assert rerun["version"] == rerun["versions_before"], f"re-run did not create the next version: {t}"
        else:
            assert rerun["version"] < rerun["versions_before"], f"re-run did not deduplicate: {t}"

    # The store never holds wrong bytes under a content address; the registry only complete versions.
    store_root = tmp_path / "store"
    store_state = check_store_objects(local_store_objects(store_root))
    sqlite_integrity(tmp_path / "registry.db")
    api = ap.Api()
    versions = check_registry(api)
    assert sorted(c.name for c in api.artifact_collections()) == ["calibration", "crash-0", "crash-1"]
    committed = Counter((v.metadata["variant"], v.metadata["marker"]) for v in versions if v.name != "calibration")
    logged = {(t["variant"], t["marker"]) for t in trials}
    assert set(committed) == logged, "a logged content is missing from the registry, or one appeared from nowhere"
    assert max(committed.values()) == 1, "a content was committed twice"
    # Every committed version downloads and verifies, byte for byte.
    verified = 0
    for v in versions:
        k, marker = v.metadata.get("variant", 0), v.metadata.get("marker")
        expected = dict(contents[k])
        if marker is not None:
            expected["trial.txt"] = f"variant {k} trial {marker}\n".encode()
        verified += download_and_compare(v, tmp_path / "check" / f"{v.name}-{v.version}", expected)
        assert v.verify().ok

    # Killed uploads leave temp files and unreferenced blobs only; gc reclaims them once old enough.
    leftovers = [p for p in store_root.rglob(".tmp-*")]
    unfinished = unfinished_local_blobs(store_root)
    from rel_helpers import age

    age([p for p in store_root.rglob("*") if p.is_file()])
    gc = api.gc(dry_run=False, grace=timedelta(hours=1))
    assert list(store_root.rglob(".tmp-*")) == [], "gc left temp files of killed uploads behind"
    assert unfinished_local_blobs(store_root) == [], "gc left unfinished blobs of killed uploads behind"
    for v in check_registry(api):
        assert v.verify().ok
    phases = Counter(t["phase"] for t in trials if t["killed"])
    # The kills covered every step of the commit protocol: building the draft, moving bytes
    # (blobs, manifest), and the registry transaction (including its COMMIT).
    for step in ("a", "um", "rc"):
        assert sum(phases[p] for p in step) > 0, f"no trial was killed in phase(s) {step!r}: {phases}"
    report(
        "test_sigkill_while_logging",
        "SIGKILL a logging process at random points",
        trials=len(trials),
        faults_injected=sum(t["killed"] for t in trials),
        kills_by_phase={k: phases[k] for k in sorted(phases)},
        completed_before_kill=sum(not t["killed"] for t in trials),
        reruns_deduplicated=sum(t["rerun"]["existed"] for t in trials),
        committed_versions=len(versions),
        store_blobs_checked=store_state["blobs"],
        temp_files_left_by_kills=len(leftovers),
        unfinished_blobs_left_by_kills=len(unfinished),
        gc_deleted_blobs=len(gc.deleted_blobs),
        bytes_verified=verified + store_state["blob_bytes"],
        full_log_seconds=round(result["full_log_seconds"], 4),
        seconds=round(result["seconds"], 1),
    )


def prepare_download(tmp_path: Path, rng: random.Random) -> tuple[ap.ArtifactVersion, dict[str, bytes]]:
    files = {f"data/shard-{j:02d}.bin": rng.randbytes(rng.randrange(1, 300_000)) for j in range(16)}
    files |= {"big/a.bin": rng.randbytes(6 * 2**20 + 17), "big/b.bin": rng.randbytes(3 * 2**20), "empty": b""}
    src = write_tree(tmp_path / "src", files)
    art = ap.Artifact("to-download", "dataset")
    art.add_dir(src)
    with ap.init(job_type="seed") as run:
        v = run.log_artifact(art)
    return v, tree_bytes(src)


def check_download_trials(result: dict[str, Any]) -> dict[str, int]:
    trials = result["trials"]
    for t in trials:
        assert t["violations_after_kill"] == [], f"trial {t['trial']}: {t['violations_after_kill']}"
        assert t["rerun_exit"] == 0, f"download after trial {t['trial']} failed:\n{result['stderr'][-4000:]}"
        assert t["violations_after_rerun"] == [] and t["missing_after_rerun"] == [], t
        assert t["killed"] or t["exit"] == 0, f"child failed on its own in trial {t['trial']}"
    return {
        "trials": len(trials),
        "faults_injected": sum(t["killed"] for t in trials),
        "files_checked_after_kills": sum(t["files_after_kill"] for t in trials),
        "bytes_hashed_in_checks": result["bytes_hashed"],
        "temp_files_seen_after_kills": sum(t["temp_files_after_kill"] for t in trials),
    }


def test_sigkill_while_downloading_from_a_local_store(tmp_path: Path) -> None:
    rng = random.Random(99)
    v, files = prepare_download(tmp_path, rng)
    from blake3 import blake3

    expected = {rel: blake3(data).hexdigest() for rel, data in files.items()}
    root = tmp_path / "download-root"
    result = drive(
        {
            "mode": "download",
            "seed": 11,
            "trials": DOWNLOAD_TRIALS,
            "ref": v.qualified_name,
            "root": str(root),
            "cache": str(tmp_path / "cache"),
            "expected": expected,
        },
        tmp_path,
    )
    counts = check_download_trials(result)
    bytes_verified = download_and_compare(v, tmp_path / "final", files)
    assert v.verify(root).ok
    report(
        "test_sigkill_while_downloading_from_a_local_store",
        "SIGKILL a downloading process (local store)",
        **counts,
        bytes_verified=bytes_verified + result["bytes_hashed"],
        seconds=round(result["seconds"], 1),
    )


def test_sigkill_while_downloading_from_s3(tmp_path: Path, s3env: Any) -> None:
    """Remote store: blobs go through the verified download cache, which a kill must never poison."""
    s3env.via(s3env.server.endpoint, multipart_threshold="5MiB", multipart_chunksize="5MiB")  # ranged GETs too
    rng = random.Random(1234)
    v, files = prepare_download(tmp_path, rng)
    from blake3 import blake3

    expected = {rel: blake3(data).hexdigest() for rel, data in files.items()}
    root, cache = tmp_path / "download-root", tmp_path / "cache"
    result = drive(
        {
            "mode": "download",
            "remote": True,
            "seed": 12,
            "trials": S3_DOWNLOAD_TRIALS,
            "ref": v.qualified_name,
            "root": str(root),
            "cache": str(cache),
            "expected": expected,
        },
        tmp_path,
    )
    counts = check_download_trials(result)
    cached = check_cache(cache)
    assert cached["blobs"] > 0
    bytes_verified = download_and_compare(v, tmp_path / "final", files)
    report(
        "test_sigkill_while_downloading_from_s3",
        "SIGKILL a downloading process (S3 store, verified cache)",
        **counts,
        cache_blobs_verified=cached["blobs"],
        bytes_verified=bytes_verified + result["bytes_hashed"] + cached["bytes"],
        seconds=round(result["seconds"], 1),
    )


def test_sigkill_during_first_schema_migration(tmp_path: Path) -> None:
    """A process killed while creating a brand-new registry never leaves it unusable."""
    src = write_tree(tmp_path / "src", {"a.txt": b"after the crash\n"})
    result = drive({"mode": "migrate", "seed": 5, "trials": MIGRATE_TRIALS, "src": str(src)}, tmp_path)
    trials = result["trials"]
    for t in trials:
        assert t["rerun_exit"] == 0, (
            f"registry unusable after a kill in trial {t['trial']}:\n{result['stderr'][-4000:]}"
        )
        db = Path(t["db"].removeprefix("sqlite:///"))
        sqlite_integrity(db)
        versions = ap.Api(registry=t["db"]).artifact_versions(None, "after-migration-crash")
        assert [x.version for x in versions] == ["v0"]
    report(
        "test_sigkill_during_first_schema_migration",
        "SIGKILL while creating a new registry (schema migration)",
        trials=len(trials),
        faults_injected=sum(t["killed"] for t in trials),
        seconds=round(result["seconds"], 1),
    )


FROZEN_FETCHER = """
import os, sys
from pathlib import Path
import artifact_plugins as ap
from artifact_plugins.core.client import get_client
from artifact_plugins.core.storage import blob_key

entry = ap.Api().artifact(sys.argv[1]).manifest()["big.bin"]
store = get_client().store

def fill(tmp):
    Path(sys.argv[2]).touch()
    os.kill(os.getpid(), 19)  # SIGSTOP while holding the cache lock of this blob
    store.get_file(blob_key(entry.digest), tmp)

get_client().download_cache.fetch(entry.digest, fill)
print("done")
"""


def test_downloader_frozen_holding_the_cache_lock(tmp_path: Path, s3env: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A process frozen (SIGSTOP) while filling the cache with a large blob (the viewer's path)
    blocks other fills of that blob for a bounded time, then they fail clearly; directory
    downloads, which take no lock, are not blocked at all; when it resumes it completes, and the
    cache holds only verified bytes."""
    files = {"big.bin": random.Random(3).randbytes(3 * 2**20)}
    src = write_tree(tmp_path / "src", files)
    art = ap.Artifact("frozen", "dataset")
    art.add_dir(src)
    with ap.init(job_type="seed") as run:
        v = run.log_artifact(art)
    digest = v.manifest()["big.bin"].digest
    marker = tmp_path / "frozen-marker"
    child = subprocess.Popen(
        [sys.executable, "-c", FROZEN_FETCHER, v.qualified_name, str(marker)],
        env=os.environ.copy(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert child.poll() is None, child.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.01)
        close_clients()
        t0 = time.monotonic()
        root = ap.Api().artifact(v.qualified_name).download(tmp_path / "root-a")
        unblocked = time.monotonic() - t0
        assert (root / "big.bin").read_bytes() == files["big.bin"] and unblocked < 30

        monkeypatch.setattr(cache_mod, "LOCK_TIMEOUT_S", 2)
        store = get_client().store
        t0 = time.monotonic()
        with pytest.raises(StoreError) as info:
            get_client().download_cache.fetch(digest, lambda tmp: store.get_file(blob_key(digest), tmp))
        waited = time.monotonic() - t0
    finally:
        child.send_signal(signal.SIGCONT)
        out, err = child.communicate(timeout=60)
    assert child.returncode == 0 and out.strip() == "done", err
    assert "fetching" in str(info.value) and waited < 10
    check_cache(tmp_path / "cache")
    assert get_client().download_cache.get(digest) is not None  # the resumed fill completed, verified
    verified = download_and_compare(v, tmp_path / "root-c", files)
    report(
        "test_downloader_frozen_holding_the_cache_lock",
        "download cache lock held by a frozen (SIGSTOP) process",
        trials=1,
        faults_injected=1,
        waited_seconds=round(waited, 2),
        directory_download_unblocked_seconds=round(unblocked, 2),
        error=str(info.value),
        bytes_verified=verified,
    )
