"""Where a first log of small files spends its time, step by step, next to `cp -r` of the same files.

    python benchmarks/bench_first_log.py [--files 10000] [--size 4096] [--runs 5] [--dir DIR]

Generates ``--files`` files of ``--size`` distinct bytes in 100 directories (under ``--dir``,
default ``benchmarks/.data``), then alternates, ``--runs`` times: ``cp -r`` of them into a new
directory, and a first log of them (``Artifact`` + ``add_dir`` + ``init`` + ``log_artifact`` +
``finish``) in a fresh process into an empty store, registry and checksum cache. The log's
process times each step by wrapping the function that does it:

* ``scan``: walking the directory (one ``stat`` per file)
* ``hash``: reading and hashing the files, minus ``remember`` (below); on the local store this
  includes writing each small file's blob from the bytes just hashed (created under its final
  name, made read-only once complete)
* ``remember``: writing their digests to the checksum cache (file by file, and the directory's rows)
* ``entries``: the rest of ``add_dir`` (path checks, entry objects)
* ``look up``: asking the store which blobs it lacks (one ``stat`` per blob), where the draft did
  not store them itself (it does on the local store, and reads the store's generation as it
  begins and again before the commit: both reads are counted here)
* ``store``: for blobs still missing (none, on the local store, since they were stored while
  hashed): reading each file again, checking its digest and writing the blob,
  serially while the disk keeps up, on threads while it is slow (``bench_pacing.py``)
* ``manifest``: building, hashing, serialising and storing the manifest
* ``registry``: the run record, the version's transaction and the run's end
* ``other``: what is left of the whole (upload bookkeeping, progress, Python between steps)

and prints the median of each. Nothing is deleted before a run (on this VM's ext4 with
``discard`` a bulk delete slows file creation for seconds): stores and copies are renamed into
a trash directory, removed at the end.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import uuid
from pathlib import Path

from child_setup import SETUP, WARM
from smallfiles import cp_r, first_log_set, print_step, print_steps, small_file_args

CHILD = (
    SETUP
    + r"""
src = sys.argv[2]
import artifact_plugins.core.artifact as artifact_mod
from artifact_plugins.core.client import Client
from artifact_plugins.core.hashing import ChecksumCache
from artifact_plugins.core.manifest import Manifest
from artifact_plugins.core.registry.registry import Registry
from artifact_plugins.core.storage.local import LocalStore

timed(artifact_mod, "_scan_dir", "scan")
timed(artifact_mod, "_tree_digests", "hash")
timed(ChecksumCache, "remember", "remember")
timed(ChecksumCache, "remember_tree", "remember")
timed(LocalStore, "missing", "look up")
timed(Registry, "store_generation", "look up")
timed(Registry, "store_view", "look up")
timed(artifact_plugins.core.transfer, "_transfer", "store")  # whole: the files may go on threads
timed(artifact_mod.Artifact, "manifest", "manifest")
timed(Manifest, "digest", "manifest")
timed(Client, "put_manifest", "manifest")
timed(Registry, "commit_version", "registry")
"""
    + WARM
    + r"""
t0 = time.perf_counter()
art = ap.Artifact("ds", "dataset"); art.add_dir(src)
t1 = time.perf_counter()
looked_up_in_add = spent.get("look up", 0.0)  # the generation read, made inside the hash step
with ap.init(job_type="bench") as run:
    t2 = time.perf_counter()
    run.log_artifact(art)
    t3 = time.perf_counter()
t4 = time.perf_counter()
spent["hash"] -= spent.get("remember", 0.0) + looked_up_in_add
spent["entries"] = (t1 - t0) - spent["scan"] - spent["hash"] - spent.get("remember", 0.0) - looked_up_in_add
spent["registry"] = spent.get("registry", 0.0) + (t2 - t1) + (t4 - t3)
spent["total"] = t4 - t0
spent["other"] = spent["total"] - sum(v for k, v in spent.items() if k != "total")
print(json.dumps(spent))
"""
)

STEPS = ("scan", "hash", "remember", "entries", "look up", "store", "manifest", "registry", "other", "total")


def first_log(home: Path, src: Path) -> dict[str, float]:
    home.mkdir(parents=True)
    out = subprocess.run([sys.executable, "-c", CHILD, str(home), str(src)], check=True, capture_output=True, text=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    args = small_file_args(__doc__)
    base = Path(args.dir)
    src = first_log_set(base, args.files, args.size)
    trash = base / f"first-log-trash-{uuid.uuid4().hex}"
    trash.mkdir(parents=True)
    logs: list[dict[str, float]] = []
    copies: list[float] = []
    try:
        for k in range(args.runs):
            os.sync()
            copies.append(cp_r(src, trash / f"cp-{k}"))
            os.sync()
            logs.append(first_log(trash / f"home-{k}", src))
    finally:
        shutil.rmtree(trash, ignore_errors=True)
    print(f"first log of {args.files:,} new files of {args.size:,} bytes: median of {args.runs} runs")
    cp = statistics.median(copies)
    print_steps(logs, STEPS, args.files)
    total = statistics.median(r["total"] for r in logs)
    print_step("cp -r", cp, args.files)
    print(f"first log / cp -r = {total / cp:.2f}")


if __name__ == "__main__":
    main()
