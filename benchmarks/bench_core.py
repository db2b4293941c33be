"""Core speed on this machine, against the targets of the core issue.

    python benchmarks/bench_core.py [--quick]

Measures, on the embedded default (local store + SQLite) in a scratch directory:
BLAKE3 throughput on a 1 GiB file; logging that file vs ``cp``; first log of 10,000 x 4 KiB
files; re-log of the same unchanged files (checksum cache); download of them from the local
store (the "cached" download: no network involved); and ``import artifact_plugins`` time.
Prints a table; each number is the median of several runs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path


def median_time(fn: Callable[[], object], runs: int, setup: Callable[[], object] | None = None) -> float:
    """Median wall time of ``fn`` over ``runs`` runs (``setup`` runs untimed before each)."""
    times = []
    for _ in range(runs):
        if setup:
            setup()
        os.sync()  # start every run with no pending writeback from earlier runs or their clean-up
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def drop_page_cache_note() -> str:
    return "warm page cache (files were just written)"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="smaller data (256 MiB, 2,000 files)")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    big_bytes = (256 if args.quick else 1024) * 2**20
    n_small = 2_000 if args.quick else 10_000

    work = Path(tempfile.mkdtemp(prefix="ap-bench-"))
    os.environ["ARTIFACT_PLUGINS_STORE"] = str(work / "store")
    os.environ["ARTIFACT_PLUGINS_REGISTRY"] = f"sqlite:///{work / 'registry.db'}"
    os.environ["ARTIFACT_PLUGINS_CACHE_DIR"] = str(work / "cache")
    os.environ["ARTIFACT_PLUGINS_CONFIG"] = str(work / "none.toml")
    rows: list[tuple[str, str, str]] = []
    try:
        t = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", "import artifact_plugins"],
            capture_output=True,
            text=True,
            check=True,
        )
        import_s = statistics.median(
            [
                float(
                    subprocess.run(
                        [
                            sys.executable,
                            "-c",
                            "import time; t=time.perf_counter(); import artifact_plugins; print(time.perf_counter()-t)",
                        ],
                        capture_output=True,
                        text=True,
                        check=True,
                    ).stdout
                )
                for _ in range(args.runs)
            ]
        )
        del out, t
        rows.append(("import artifact_plugins", f"{import_s * 1000:.1f} ms", "light (no prefect/airflow/boto3)"))

        import artifact_plugins as ap
        from artifact_plugins.core.hashing import hash_file

        big = work / "big.bin"
        with open(big, "wb") as f:
            chunk = os.urandom(2**20)
            for i in range(big_bytes // 2**20):
                f.write(chunk[i % 7 :] + chunk[: i % 7])
        hash_s = median_time(lambda: hash_file(big), args.runs)
        rows.append((f"BLAKE3 of {big_bytes >> 20} MiB", f"{big_bytes / hash_s / 1e9:.2f} GB/s", "target >= 3 GB/s"))

        cp_dest = work / "cp-dest.bin"
        cp_s = median_time(
            lambda: subprocess.run(["cp", str(big), str(cp_dest)], check=True),
            args.runs,
            setup=lambda: cp_dest.unlink(missing_ok=True),
        )

        def fresh_store() -> None:
            shutil.rmtree(work / "store", ignore_errors=True)

        def log_big() -> None:
            art = ap.Artifact("big", "model")
            art.add_file(big)
            with ap.init(job_type="bench") as run:
                run.log_artifact(art)

        time.sleep(1.1)  # let the files age past the checksum cache's racy-timestamp window
        log_big_s = median_time(log_big, args.runs, setup=fresh_store)
        rows.append(
            (
                f"log {big_bytes >> 20} MiB file (new store)",
                f"{log_big_s:.2f} s",
                f"cp: {cp_s:.2f} s, ratio {log_big_s / cp_s:.2f} (target <= 1.5)",
            )
        )

        small = work / "small"
        small.mkdir()
        for i in range(n_small):
            d = small / f"d{i % 100:02d}"
            d.mkdir(exist_ok=True)
            (d / f"f{i:05d}.bin").write_bytes(os.urandom(4096))
        time.sleep(1.1)

        def log_small() -> None:
            art = ap.Artifact("small", "dataset")
            art.add_dir(small)
            with ap.init(job_type="bench") as run:
                run.log_artifact(art)

        def cold_setup() -> None:
            fresh_store()
            shutil.rmtree(work / "cache", ignore_errors=True)
            Path(work / "registry.db").unlink(missing_ok=True)
            from artifact_plugins.core import client

            client.close_clients()

        first_s = median_time(log_small, args.runs, setup=cold_setup)
        rows.append(
            (
                f"first log {n_small} x 4 KiB",
                f"{n_small / first_s:,.0f} files/s ({first_s:.2f} s)",
                "target >= 5,000 files/s",
            )
        )
        log_small()
        relog_s = median_time(log_small, args.runs)
        rows.append((f"re-log unchanged {n_small} x 4 KiB", f"{relog_s:.3f} s", "target <= 0.5 s"))

        dl = work / "dl"
        v = ap.Api().artifact("small:latest")
        dl_s = median_time(lambda: v.download(dl), args.runs, setup=lambda: shutil.rmtree(dl, ignore_errors=True))
        cp_small = work / "cp-small"
        cp_small_s = median_time(
            lambda: subprocess.run(["cp", "-r", str(small), str(cp_small)], check=True),
            args.runs,
            setup=lambda: shutil.rmtree(cp_small, ignore_errors=True),
        )
        rows.append(
            (
                f"download {n_small} x 4 KiB from local store",
                f"{dl_s:.2f} s",
                f"cp -r: {cp_small_s:.2f} s, ratio {dl_s / cp_small_s:.2f}",
            )
        )
        redl_s = median_time(lambda: v.download(dl), args.runs)
        rows.append(("re-download (already present)", f"{redl_s:.3f} s", "stat-only via checksum cache"))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    width = max(len(r[0]) for r in rows)
    print(
        f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}; median of {args.runs} runs;"
        f" {drop_page_cache_note()}"
    )
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:>28}  {note}")


if __name__ == "__main__":
    main()
