"""A first log of one large file: copied while it is hashed (as shipped) against hashed, then copied.

    python benchmarks/bench_big_log.py [--mib 1024] [--runs 7] [--dir DIR]

Generates one file of ``--mib`` MiB of incompressible bytes (under ``--dir``, default
``benchmarks/.data``), then takes turns, ``--runs`` times: ``cp`` of it into a new file, and a
first log of it (``Artifact`` + ``add_file`` + ``init`` + ``log_artifact`` + ``finish``, the
registry created before the clock) in a fresh process into an empty store, registry and
checksum cache, two ways:

* ``overlapped``: the shipped path. The kernel copies the file into the store
  (``LocalStore.start_copy``) while BLAKE3 hashes it; the log finds the blob there.
* ``one after the other``: ``_StoreAsHashed.hash_large`` replaced by a plain hash, so the file
  is hashed at add time and copied by the log (what the code did before the overlap).

Each run starts after ``sync()``; outputs are renamed into a trash directory and deleted at the
end (a bulk delete slows file creation on this VM's ext4 with ``discard``). Prints the median
and the range of each, and the ratios to ``cp``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

from blake3 import blake3
from child_setup import SETUP, WARM
from smallfiles import add_run_options

CHILD = (
    SETUP
    + r"""
src, how = sys.argv[2], sys.argv[3]
import artifact_plugins.core.artifact as artifact_mod
if how == "one after the other":
    artifact_mod._StoreAsHashed.hash_large = lambda self, path, st: artifact_mod.hash_file(path, st)
"""
    + WARM
    + r"""
os.sync()
t0 = time.perf_counter()
art = ap.Artifact("model", "model"); art.add_file(src)
with ap.init(job_type="bench") as run:
    run.log_artifact(art)
print(json.dumps(time.perf_counter() - t0))
"""
)

WAYS = ("overlapped", "one after the other")


def make_file(path: Path, mib: int) -> None:
    """``mib`` MiB of BLAKE3 output, written once (a marker-free check: the size says it is whole)."""
    if path.exists() and path.stat().st_size == mib * 2**20:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        xof = blake3(b"bench_big_log")
        for i in range(mib):
            f.write(xof.digest(length=2**20, seek=i * 2**20))
    os.replace(tmp, path)
    old = time.time() - 3600  # outside the checksum cache's racy window
    os.utime(path, (old, old))


def add_big_file_options(p: argparse.ArgumentParser, runs: int) -> None:
    """``--mib`` (the file's size, default 1024), ``--runs`` (default ``runs``) and ``--dir``."""
    p.add_argument("--mib", type=int, default=1024)
    add_run_options(p)
    p.set_defaults(runs=runs)


def big_file(args: argparse.Namespace) -> Path:
    """The ``--mib`` MiB file under ``--dir`` (shared with ``bench_fresh_pages.py``), made the first time."""
    path = Path(args.dir) / f"big-log-{args.mib}mib.bin"
    make_file(path, args.mib)
    return path


def log_once(home: Path, src: Path, how: str) -> float:
    home.mkdir(parents=True)
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(home), str(src), how], check=True, capture_output=True, text=True
    )
    return float(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_big_file_options(p, runs=7)
    args = p.parse_args()
    src = big_file(args)
    trash = Path(args.dir) / f"big-log-trash-{uuid.uuid4().hex}"
    trash.mkdir(parents=True)
    times: dict[str, list[float]] = {"cp": [], **{w: [] for w in WAYS}}
    try:
        for k in range(args.runs):
            os.sync()
            t = time.perf_counter()
            subprocess.run(["cp", str(src), str(trash / f"cp-{k}")], check=True)
            times["cp"].append(time.perf_counter() - t)
            for way in WAYS if k % 2 == 0 else reversed(WAYS):
                times[way].append(log_once(trash / f"{way.replace(' ', '-')}-{k}", src, way))
    finally:
        shutil.rmtree(trash, ignore_errors=True)
    print(f"first log of one {args.mib:,} MiB file: median (range) of {args.runs} runs, in turns")
    cp = statistics.median(times["cp"])
    for label, values in times.items():
        median = statistics.median(values)
        ratio = "" if label == "cp" else f"   {median / cp:.2f}x cp"
        print(f"  {label:<20} {median * 1e3:7.0f} ms  ({min(values) * 1e3:.0f}-{max(values) * 1e3:.0f}){ratio}")
    pairs = [b - a for a, b in zip(times["overlapped"], times["one after the other"], strict=True)]
    print(f"  one after the other minus overlapped, run by run: median {statistics.median(pairs) * 1e3:.0f} ms")


if __name__ == "__main__":
    main()
