"""What the number of transfer threads does to a download of many small objects from a bucket
whose requests cost nothing: the client's own cost, threads included.

    python benchmarks/bench_bucket_threads.py [--files 10000] [--size 4096] [--runs 5] [--dir DIR]
        [--threads 1,2,8,32]

Logs ``bench_first_log.py``'s small-file set once into a local store, then, ``--runs`` times,
downloads it in a fresh process for each thread count in turns, from ``bench_ops.py``'s file
bucket (a ``RemoteStore`` whose primitives read the local store's files: the path S3 and GCS
downloads take, minus the network) into an empty directory with an empty download cache, and
prints the median of each. 32 is what S3 and GCS stores use by default
(``ARTIFACT_PLUGINS_TRANSFER_WORKERS``).
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import uuid
from pathlib import Path

from smallfiles import add_run_options, add_size_options, first_log_set

HERE = Path(__file__).resolve().parent

CHILD = r"""
import os, sys, time
sys.path.insert(0, sys.argv[1])
import bench_ops
home, action, path, threads = sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
bench_ops._ours_env({"home": home})
bench_ops._ours_ready()
import artifact_plugins as ap
from artifact_plugins.core.client import get_client
if action == "log":
    art = ap.Artifact("set", "dataset")
    art.add_dir(path)
    with ap.init(job_type="bench") as run:
        run.log_artifact(art)
else:
    api = ap.Api()
    client = get_client(api.settings)
    bench_ops._non_local(client)
    client.store.transfer_workers = threads
    t = time.perf_counter()
    api.artifact("set:latest").download(path)
    print(time.perf_counter() - t)
"""


def child(home: Path, action: str, path: Path, threads: int = 0) -> float:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(HERE), str(home), action, str(path), str(threads)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    return float(out[-1]) if out else 0.0


def main() -> None:
    import argparse

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_size_options(p)
    add_run_options(p)
    p.add_argument("--threads", default="1,2,8,32", help="thread counts, comma-separated")
    args = p.parse_args()
    counts = [int(c) for c in args.threads.split(",")]
    base = Path(args.dir)
    src = first_log_set(base, args.files, args.size)
    work = base / f"bucket-threads-{uuid.uuid4().hex}"
    home = work / "home"
    home.mkdir(parents=True)
    times: dict[int, list[float]] = {c: [] for c in counts}
    try:
        child(home, "log", src)
        for k in range(args.runs):
            for c in counts:
                shutil.rmtree(home / "cache", ignore_errors=True)
                times[c].append(child(home, "download", work / f"out-{k}-{c}", c))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"download of {args.files:,} objects of {args.size:,} bytes from the file bucket: median of {args.runs} runs")
    for c in counts:
        print(f"  {c:3d} threads  {statistics.median(times[c]):8.3f} s")


if __name__ == "__main__":
    main()
