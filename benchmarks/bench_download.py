"""Where a cached download of small files spends its time, step by step, next to `cp -r` of them.

    python benchmarks/bench_download.py [--files 10000] [--size 4096] [--runs 5] [--dir DIR]

Logs ``--files`` files of ``--size`` distinct bytes once (untimed) into a local store, then
alternates, ``--runs`` times: ``cp -r`` of the source files into a new directory, and
``Api().artifact("ds:latest").download(<new directory>)`` in a fresh process. The download's
process times each step by wrapping the function that does it:

* ``resolve``: finding the version in the registry
* ``manifest``: reading and parsing the version's manifest from the store
* ``paths``: checking every entry's destination path
* ``copy``: reading each blob and writing it to its destination (serially while the disk keeps
  up, on threads while it is slow; the second half in a forked child, ``forked.py``, where one pays)
* ``remember``: writing the written files' digests to the checksum cache
* ``other``: what is left (directories, the staging directory and its rename, progress)

and prints the median of each. After the download it times ``strays`` apart (not in the
total): listing the downloaded directory for files the version lacks, which a re-download into
the default root (``./artifacts/<name>-v<N>``) does first. Beside ``cp -r`` it times ``floor``: the least a Python loop
does to copy the same files, in this process (open, read, close the source; create, write,
``fstat``, close the destination; directories made before the clock), which is what the
``copy`` step would cost with none of its own work. As in ``bench_first_log.py``, nothing is
deleted before a run: copies go into a trash directory removed at the end.
"""

from __future__ import annotations

import gc
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

from child_setup import SETUP, WARM
from smallfiles import cp_r, first_log_set, print_step, print_steps, small_file_args

LOG = (
    SETUP
    + WARM
    + r"""
art = ap.Artifact("ds", "dataset"); art.add_dir(sys.argv[2])
with ap.init(job_type="bench") as run:
    run.log_artifact(art)
"""
)

CHILD = (
    SETUP
    + r"""
dest = sys.argv[2]
import artifact_plugins.core.transfer as transfer
from artifact_plugins.core.client import Client
from artifact_plugins.core.hashing import ChecksumCache

timed(ap.Api, "artifact", "resolve")
timed(Client, "manifest", "manifest")
timed(transfer, "_transfer", "copy")  # whole: the files may go on threads
timed(transfer, "run_forked", "copy")  # and half of them to a forked child
timed(ChecksumCache, "remember", "remember")
timed(transfer, "_materialize", "materialize")
timed(transfer, "materialize", "paths")
"""
    + WARM
    + r"""
t0 = time.perf_counter()
version = ap.Api().artifact("ds:latest")
version.download(dest)
spent["total"] = time.perf_counter() - t0
spent["paths"] -= spent["materialize"]
spent["other"] = spent["total"] - sum(v for k, v in spent.items() if k not in ("total", "materialize"))
t = time.perf_counter()  # what a re-download into the default root adds: the directory listed for strays
transfer.stray_files(dest, version._select(None))
spent["strays"] = time.perf_counter() - t
print(json.dumps(spent))
"""
)

STEPS = ("resolve", "manifest", "paths", "copy", "remember", "other", "total")


def child(code: str, home: Path, arg: Path) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", code, str(home), str(arg)], check=True, capture_output=True, text=True)
    lines = out.stdout.strip().splitlines()
    return dict(json.loads(lines[-1])) if lines else {}


def python_floor(src: Path, dest: Path, size: int) -> float:
    """Copy the files under ``src`` to ``dest`` with the fewest Python calls; the time of the loop."""
    pairs = []
    for d in sorted(os.listdir(src)):
        (dest / d).mkdir(parents=True)
        pairs += [(f"{src}/{d}/{f}", f"{dest}/{d}/{f}") for f in sorted(os.listdir(src / d))]
    stats = []
    read_only, create = os.O_RDONLY, os.O_WRONLY | os.O_CREAT | os.O_EXCL
    gc.disable()  # as the project's own loops run (``gcpause.py``)
    t = time.perf_counter()
    for source, target in pairs:
        fd = os.open(source, read_only)
        data = os.read(fd, size + 1)  # as the store reads a blob of known size
        os.close(fd)
        fd = os.open(target, create, 0o644)
        os.write(fd, data)
        stats.append(os.fstat(fd))
        os.close(fd)
    elapsed = time.perf_counter() - t
    gc.enable()
    return elapsed


def main() -> None:
    args = small_file_args(__doc__)
    base = Path(args.dir)
    src = first_log_set(base, args.files, args.size)
    trash = base / f"download-trash-{uuid.uuid4().hex}"
    home = trash / "home"
    home.mkdir(parents=True)
    child(LOG, home, src)
    downloads: list[dict[str, float]] = []
    copies: list[float] = []
    floors: list[float] = []
    try:
        for k in range(args.runs):
            os.sync()
            copies.append(cp_r(src, trash / f"cp-{k}"))
            os.sync()
            floors.append(python_floor(src, trash / f"floor-{k}", args.size))
            os.sync()
            downloads.append(child(CHILD, home, trash / f"download-{k}"))
    finally:
        shutil.rmtree(trash, ignore_errors=True)
    print(f"cached download of {args.files:,} files of {args.size:,} bytes: median of {args.runs} runs")
    cp = statistics.median(copies)
    print_steps(downloads, STEPS, args.files)
    total = statistics.median(r["total"] for r in downloads)
    floor = statistics.median(floors)
    print_step("floor", floor, args.files, "  (the copy loop alone)")
    strays = statistics.median(r["strays"] for r in downloads)
    print_step("strays", strays, args.files, "  (not in total: a re-download into the default root lists it)")
    print_step("cp -r", cp, args.files)
    print(f"cached download / cp -r = {total / cp:.2f}")


if __name__ == "__main__":
    main()
