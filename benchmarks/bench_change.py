"""Where a log after a 1% change spends its time, next to a re-log of the same files unchanged.

    python benchmarks/bench_change.py [--files 10000] [--size 4096] [--changed N] [--fresh] [--runs 7] [--dir DIR]

Generates ``--files`` files (100 directories, mtimes aged past the checksum cache's racy
window) and logs them once. Then, ``--runs`` times: rewrites ``--changed`` of them (default 1%;
a fixed pseudo-random pick per run), waits out the racy window (not with ``--fresh``: then
the changed files are logged at once by a new process, as a pipeline's next task logs what the
one before wrote; its start-up takes them past the checksum cache's 100 ms window for
sub-second mtimes, not past the 2 s one for whole-second mtimes), logs the
directory in a fresh process (a new version), and logs it again unchanged in another (the
re-log shortcut); each log starts after ``sync()``, as in ``run_all.py``. Each log's process
times what it calls by wrapping the function that does it:

* ``scan``: walking the directory (``artifact._scan_dir``)
* ``look up``: the per-file checksum cache look-ups (of the files the directory's rows do not know)
* ``tree``: reading the directory's rows in the checksum cache (and writing the new ones), and matching them
* ``hash``: hashing the files the cache did not know (and remembering them)
* ``send``: step (1) of the commit, all of it: choosing the entries whose blobs the store is
  asked about (those not flagged held), asking, and sending what it lacks
* ``store check``: of ``send``, asking the store which blobs it lacks (on local disk: one ``stat``
  per blob that no committed version holds and the draft did not store itself as it hashed
  it, which it does only for 256 files or more)
* ``store``: writing the new blobs
* ``held check``: the store's generation (the commit's fence against a garbage collection), and
  whether the versions the unchanged files' blobs are held by are still committed, in one read;
  where the draft hashed 256 files or more, also the generation it stored their blobs under,
  read before hashing them. 0 where the directory's mark in the checksum cache knows the
  generation its last commit was fenced by: the commit takes that as its fence, and reads
  nothing before asking the store
* ``delta plan``: reading what the previous version's delta manifest changed (to store the new
  manifest as a delta of the same base)
* ``manifest``: serialising and writing the manifest
* ``commit``: the registry transaction of a new version (or of the reused one); it also checks
  that no garbage collection went ahead since the held check
* ``store turn``: taking a turn at the store (only where a garbage collection was deleting, or
  went ahead of the commit: 0 here), and ending it where the commit did not
* ``mark``: recording in the checksum cache that the new version holds the directory's files
* ``total``: ``Artifact`` + ``add_dir`` + ``init`` + ``log_artifact`` + ``finish``

and prints the median of each step for both logs: the difference is what the change cost.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from child_setup import SETUP, WARM
from smallfiles import add_size_options, generate

STEPS = {
    "scan": ("artifact_plugins.core.artifact", None, "_scan_dir"),
    "look up": ("artifact_plugins.core.hashing", "ChecksumCache", "lookup"),
    "tree": ("artifact_plugins.core.hashing", "ChecksumCache", "known_tree", "remember_tree"),
    "hash": ("artifact_plugins.core.artifact", None, "_hash_all"),
    "send": ("artifact_plugins.core.run", None, "upload_blobs"),
    "store check": ("artifact_plugins.core.storage.local", "LocalStore", "missing"),
    "store": ("artifact_plugins.core.transfer", None, "_transfer"),
    "held check": (
        "artifact_plugins.core.registry.registry",
        "Registry",
        "store_view",
        "committed_digests",
        "store_generation",
    ),
    "delta plan": ("artifact_plugins.core.run", None, "plan_delta"),
    "manifest": ("artifact_plugins.core.client", "Client", "put_manifest"),
    "commit": ("artifact_plugins.core.registry.registry", "Registry", "commit_version", "reuse_version"),
    "store turn": ("artifact_plugins.core.registry.registry", "Registry", "acquire_store_lock", "release_store_lock"),
    "mark": ("artifact_plugins.core.hashing", "ChecksumCache", "mark_tree"),
}

CHILD = (
    SETUP
    + """
import importlib
src, steps = sys.argv[2], json.loads(sys.argv[3])
for step, (module, owner, *names) in steps.items():
    target = importlib.import_module(module)
    for name in names:
        timed(getattr(target, owner) if owner else target, name, step)
"""
    + WARM
    + """
t = time.perf_counter()
art = ap.Artifact("ds", "dataset")
art.add_dir(src)
with ap.init(job_type="bench") as run:
    version = run.log_artifact(art)
spent["total"] = time.perf_counter() - t
spent["version"] = version.version_index
print(json.dumps(spent))
"""
)


def log(home: Path, src: Path) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(home), str(src), json.dumps(STEPS)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def change(src: Path, files: int, size: int, k: int, count: int) -> None:
    """Rewrite a fixed pseudo-random ``count`` of the files (new bytes, same size)."""
    for i in random.Random(k).sample(range(files), count):
        (src / f"d{i % 100:03d}" / f"f{i:07d}.bin").write_bytes(os.urandom(size))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_size_options(p)
    p.add_argument("--changed", type=int, default=None, help="files rewritten per version (default: 1%%)")
    p.add_argument("--fresh", action="store_true", help="log the changed files at once, by a new process")
    p.add_argument("--runs", type=int, default=7)
    p.add_argument("--dir", default=None, help="scratch directory (default: a temporary one)")
    args = p.parse_args()
    count = args.changed if args.changed is not None else max(1, args.files // 100)
    if not 0 < count <= args.files:
        p.error(f"--changed {count}: must be between 1 and --files ({args.files})")
    if args.dir is not None:
        Path(args.dir).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=args.dir) as scratch:
        base = Path(scratch)
        src, home = base / "src", base / "home"
        generate(src, args.files, args.size)
        home.mkdir()
        log(home, src)  # v0, untimed
        changed: list[dict[str, float]] = []
        unchanged: list[dict[str, float]] = []
        for k in range(1, args.runs + 1):
            change(src, args.files, args.size, k, count)
            if not args.fresh:
                time.sleep(1.2)  # past the racy window
            os.sync()  # as run_all.py does before every run: no writeback of the rewrite is pending
            changed.append(log(home, src))
            os.sync()
            unchanged.append(log(home, src))
            assert changed[-1]["version"] == k and unchanged[-1]["version"] == k, "not one new version per change"
    print(
        f"log after a change ({count:,} of {args.files:,} files of {args.size:,} bytes) "
        f"and re-log unchanged: median of {args.runs} runs (ms)"
    )
    print(f"{'step':<12} {'change':>8} {'re-log':>8} {'difference':>11}")
    for step in [*STEPS, "total"]:
        a = statistics.median(r.get(step, 0.0) for r in changed) * 1e3
        b = statistics.median(r.get(step, 0.0) for r in unchanged) * 1e3
        print(f"{step:<12} {a:8.1f} {b:8.1f} {a - b:11.1f}")


if __name__ == "__main__":
    main()
