"""Storage faults between the library and a real S3 server (SeaweedFS), injected by a loopback proxy.

Seeded random faults (503, 500, resets before and during uploads, lost responses, stalls past
the read timeout, truncated and corrupted bodies) hit a share of every request. A log or a
download must either succeed with exactly the right bytes or fail with a clear
:class:`ArtifactPluginsError` naming the store, within a bounded time; a failed log never
commits a version, and the store never holds wrong bytes under a content address.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from rel_env import S3Env
from rel_helpers import check_cache, check_registry, check_root, check_store_objects, report, write_tree
from rel_proxy import ALL_FAULTS, ChaosProxy
from servers import SECRET_KEY

import artifact_plugins as ap
from artifact_plugins.core.client import close_clients
from artifact_plugins.core.errors import ArtifactPluginsError, StoreError
from artifact_plugins.core.registry import Registry

LOG_TRIALS = 24
DOWNLOAD_TRIALS = 24
WORKERS = 6
#: Client settings under test: few attempts and short timeouts, so that faults resolve quickly.
CLIENT = {
    "max_attempts": "3",
    "connect_timeout": "1",
    "read_timeout": "1",
    "multipart_threshold": "5MiB",
    "multipart_chunksize": "5MiB",
}
#: The longest a single log or download may take under these settings before it must have given up.
BOUND_S = 60.0


@pytest.fixture
def proxy(s3env: S3Env) -> Any:
    p = ChaosProxy(s3env.port, seed=4242, stall_s=1.5)
    s3env.via(p.endpoint, **CLIENT)
    yield p
    p.close()


def random_files(rng: random.Random, large: bool) -> dict[str, bytes]:
    files = {f"f-{j}.bin": rng.randbytes(rng.randrange(0, 48 * 1024)) for j in range(rng.randrange(2, 7))}
    if large:
        files["large.bin"] = rng.randbytes(6 * 2**20 + rng.randrange(1000))  # multipart upload / ranged GETs
    return files


def assert_clear(exc: BaseException, s3env: S3Env) -> None:
    """A failure is one of ours, names the store, and carries no credentials."""
    assert isinstance(exc, ArtifactPluginsError), f"unexpected {type(exc).__name__}: {exc}"
    text = str(exc)
    assert SECRET_KEY not in text
    if isinstance(exc, StoreError):
        assert s3env.uri in text, text


def direct(s3env: S3Env, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, label: str) -> None:
    """Talk to SeaweedFS directly with a fresh download cache (for checks after the faults)."""
    monkeypatch.setenv("ARTIFACT_PLUGINS_CACHE_DIR", str(tmp_path / f"cache-{label}"))
    s3env.via(s3env.server.endpoint)


def test_logs_under_random_storage_faults(
    s3env: S3Env, proxy: ChaosProxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Concurrent logs (threads, as a Prefect task runner would run them) under random faults."""
    rng = random.Random(31337)
    trials = []
    for trial in range(LOG_TRIALS):
        files = random_files(rng, large=trial % 3 == 0)
        trials.append((trial, write_tree(tmp_path / f"src-{trial}", files), files))
    contents: dict[str, dict[str, bytes]] = {}
    Registry(ap.Api().settings.registry).engine.dispose()  # open the registry before the threads start

    def one(item: tuple[int, Path, dict[str, bytes]]) -> tuple[str, str, float, Path, str]:
        trial, src, _files = item
        art = ap.Artifact("under-faults", "dataset", metadata={"trial": trial})
        art.add_dir(src)
        t0 = time.monotonic()
        try:
            with ap.init(job_type="faulty-log") as run:
                v = run.log_artifact(art)
            assert v.digest == art.digest
            return "committed", "", time.monotonic() - t0, src, art.digest
        except Exception as exc:
            assert_clear(exc, s3env)
            return f"failed: {type(exc).__name__}", str(exc), time.monotonic() - t0, src, art.digest

    proxy.chaos(0.2, ALL_FAULTS)
    with ThreadPoolExecutor(WORKERS) as pool:
        results = list(pool.map(one, trials))
    proxy.calm()
    outcomes = Counter(r[0] for r in results)
    for (_, _, files), (_, _, _, _, digest) in zip(trials, results, strict=True):
        contents[digest] = files
    committed = {r[4] for r in results if r[0] == "committed"}
    assert {v.digest for v in ap.Api().artifact_versions(None, "under-faults")} == committed, "a failed log committed"
    slowest = max(r[2] for r in results)
    assert slowest < BOUND_S, f"a log took {slowest:.1f}s"

    # Failed logs succeed once the faults stop.
    for outcome, _, _, src, digest in results:
        if outcome != "committed":
            art = ap.Artifact("under-faults", "dataset")
            art.add_dir(src)
            with ap.init(job_type="retry") as run:
                assert run.log_artifact(art).digest == digest

    # Straight from the server: no wrong bytes under any key; every version complete and exact.
    direct(s3env, monkeypatch, tmp_path, "check")
    stored = check_store_objects(s3env.objects())
    verified = 0
    for v in check_registry(ap.Api()):
        root = v.download(tmp_path / "check" / v.version, verify=True)
        verified += check_root(root, contents[v.digest])["bytes"]
        assert {p.name for p in root.rglob("*") if p.is_file()} == set(contents[v.digest])
    assert len(ap.Api().artifact_versions(None, "under-faults")) == LOG_TRIALS
    kinds = Counter(k for k, _, _ in proxy.injected)
    assert sum(kinds.values()) >= LOG_TRIALS, kinds
    report(
        "test_logs_under_random_storage_faults",
        "S3 faults during log (503/500/resets/lost responses/stalls/truncated/corrupted bodies)",
        trials=LOG_TRIALS,
        faults_injected=sum(kinds.values()),
        faults_by_kind=dict(sorted(kinds.items())),
        requests=dict(proxy.requests),
        outcomes=dict(outcomes),
        errors=sorted({r[1][:300] for r in results if r[1]}),
        slowest_log_seconds=round(slowest, 2),
        store_objects_checked=stored["blobs"] + stored["manifests"],
        bytes_verified=verified + stored["blob_bytes"],
    )


def test_downloads_under_random_storage_faults(s3env: S3Env, proxy: ChaosProxy, tmp_path: Path) -> None:
    """Concurrent downloads, each with its own cold cache, under random faults on every GET."""
    rng = random.Random(8080)
    files = random_files(rng, large=True) | {"small.txt": b"tiny\n", "empty": b""}
    src = write_tree(tmp_path / "src", files)
    art = ap.Artifact("to-fetch", "dataset")
    art.add_dir(src)
    with ap.init(job_type="seed") as run:
        run.log_artifact(art)

    def one(trial: int) -> tuple[str, str, float, int]:
        cache, root = tmp_path / f"cache-{trial}", tmp_path / f"root-{trial}"
        api = ap.Api(cache_dir=str(cache))
        t0 = time.monotonic()
        try:
            api.artifact("to-fetch:v0").download(root, verify=True)
            outcome, message = "downloaded", ""
        except Exception as exc:
            assert_clear(exc, s3env)
            outcome, message = f"failed: {type(exc).__name__}", str(exc)
        elapsed = time.monotonic() - t0
        check_cache(cache)  # only verified blobs, whatever happened
        check_root(root, files)  # no partial file under a final name
        return outcome, message, elapsed, trial

    proxy.chaos(0.3, ALL_FAULTS, match=lambda m, p: m == "GET")
    with ThreadPoolExecutor(WORKERS) as pool:
        results = list(pool.map(one, range(DOWNLOAD_TRIALS)))
    proxy.calm()
    verified = 0
    for *_, trial in results:  # the next download completes, into the same root and cache
        root = (
            ap.Api(cache_dir=str(tmp_path / f"cache-{trial}"))
            .artifact("to-fetch:v0")
            .download(tmp_path / f"root-{trial}", verify=True)
        )
        verified += check_root(root, files)["bytes"]
        assert {p.name for p in root.rglob("*") if p.is_file()} == set(files)
    outcomes = Counter(r[0] for r in results)
    slowest = max(r[2] for r in results)
    assert slowest < BOUND_S, f"a download took {slowest:.1f}s"
    kinds = Counter(k for k, _, _ in proxy.injected)
    assert outcomes["downloaded"] > 0 and sum(kinds.values()) >= DOWNLOAD_TRIALS
    report(
        "test_downloads_under_random_storage_faults",
        "S3 faults during download (same fault mix on GETs)",
        trials=DOWNLOAD_TRIALS,
        faults_injected=sum(kinds.values()),
        faults_by_kind=dict(sorted(kinds.items())),
        outcomes=dict(outcomes),
        errors=sorted({r[1][:300] for r in results if r[1]}),
        slowest_download_seconds=round(slowest, 2),
        bytes_verified=verified,
    )


@pytest.mark.parametrize("kind", ["503", "reset", "stall"])
def test_total_outage_fails_clearly_within_bounded_retries(
    kind: str, s3env: S3Env, proxy: ChaosProxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every request fails the same way: log and download give up after bounded retries, nothing committed."""
    files = {"a.bin": b"a" * 1000, "b.bin": b"b" * 2000}
    with ap.init(job_type="seed") as run:
        art = ap.Artifact("outage", "dataset")
        art.add_dir(write_tree(tmp_path / "seed", files))
        run.log_artifact(art)
    proxy.requests.clear()
    proxy.script(10**9, kind)
    new = ap.Artifact("outage", "dataset")
    new.add_dir(write_tree(tmp_path / "new", {"c.bin": b"c" * 3000}))
    t0 = time.monotonic()
    with pytest.raises(StoreError) as info, ap.init(job_type="outage") as run:
        run.log_artifact(new)
    log_s = time.monotonic() - t0
    assert_clear(info.value, s3env)
    assert [v.version for v in ap.Api().artifact_versions(None, "outage")] == ["v0"]
    log_requests = sum(proxy.requests.values())

    monkeypatch.setenv("ARTIFACT_PLUGINS_CACHE_DIR", str(tmp_path / "cold-cache"))
    close_clients()
    t0 = time.monotonic()
    with pytest.raises(StoreError) as info:
        ap.Api().artifact("outage:v0").download(tmp_path / "root")
    download_s = time.monotonic() - t0
    assert_clear(info.value, s3env)
    assert not (tmp_path / "root").exists() or not [p for p in (tmp_path / "root").rglob("*") if p.is_file()]
    assert log_s < BOUND_S and download_s < BOUND_S
    # Retries are bounded: a handful of attempts per request, not a retry storm.
    assert log_requests <= 3 * 3 * 4, proxy.requests
    proxy.calm()
    with ap.init(job_type="after-outage") as run:
        assert run.log_artifact(new).version == "v1"
    report(
        f"test_total_outage_fails_clearly_within_bounded_retries[{kind}]",
        f"S3 total outage ({kind} on every request)",
        trials=2,
        faults_injected=len(proxy.injected),
        requests_for_failed_log=log_requests,
        log_gave_up_after_seconds=round(log_s, 2),
        download_gave_up_after_seconds=round(download_s, 2),
        bytes_verified=0,
    )
