"""What the number of transfer threads does to a download of many small objects from a bucket
whose requests cost nothing: the client's own cost, threads included.

    python benchmarks/bench_bucket_threads.py [--files 10000] [--size 4096] [--runs 5] [--dir DIR]
        [--threads 1,2,8,32]

Logs ``bench_first_log.py``'s small-file set once into a local store, then, ``--runs`` times,
downloads it in a fresh process for each thread count in turns, from ``bench_ops.py``'s file
bucket (a ``RemoteStore`` whose primitives read the local store's files: the path S3 and GCS
downloads take, minus the network) into an empty directory with an empty download cache, and
prints the median of each. 32 is what S3 and GCS stores use by default
(``ARTIFACT_PLUGINS_TRANSFER_WORKERS``). The largest count runs a second time with the files
handed to the threads as ``parallel_map`` did before the twenty-ninth session, a future
submitted per file to a thread pool, so the two ways are timed in the same turns.
"""

from __future__ import annotations

import argparse
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
home, action, path, threads, submit = sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), sys.argv[6] == "1"
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
    if submit:
        from concurrent.futures import ThreadPoolExecutor
        from contextvars import copy_context
        import artifact_plugins.core.transfer as transfer

        def a_future_per_item(fn, items, workers, pool=None):
            with ThreadPoolExecutor(min(workers, len(items))) as executor:
                futures = [executor.submit(copy_context().run, fn, x) for x in items]
                return [f.result() for f in futures]

        transfer.parallel_map = a_future_per_item
    t = time.perf_counter()
    api.artifact("set:latest").download(path)
    print(time.perf_counter() - t)
"""


def child(home: Path, action: str, path: Path, threads: int = 0, submit: bool = False) -> float:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(HERE), str(home), action, str(path), str(threads), "1" if submit else "0"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    return float(out[-1]) if out else 0.0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_size_options(p)
    add_run_options(p)
    p.add_argument("--threads", default="1,2,8,32", help="thread counts, comma-separated")
    args = p.parse_args()
    counts = [int(c) for c in args.threads.split(",")]
    ways = [(c, False) for c in counts] + [(max(counts), True)]
    base = Path(args.dir)
    src = first_log_set(base, args.files, args.size)
    work = base / f"bucket-threads-{uuid.uuid4().hex}"
    home = work / "home"
    home.mkdir(parents=True)
    times: dict[tuple[int, bool], list[float]] = {way: [] for way in ways}
    try:
        child(home, "log", src)
        for k in range(args.runs):
            for c, submit in ways:
                shutil.rmtree(home / "cache", ignore_errors=True)
                times[c, submit].append(child(home, "download", work / f"out-{k}-{c}-{submit}", c, submit))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"download of {args.files:,} objects of {args.size:,} bytes from the file bucket: median of {args.runs} runs")
    for c, submit in ways:
        how = ", a future per file (before)" if submit else ""
        print(f"  {c:3d} threads{how:30s} {statistics.median(times[c, submit]):8.3f} s")


if __name__ == "__main__":
    main()
