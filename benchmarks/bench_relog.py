"""Where a re-log of unchanged small files spends its time, and what each of its shortcuts saves.

    python benchmarks/bench_relog.py [--files 10000] [--size 4096] [--pairs 7] [--dir DIR] [--scan-only]

Generates ``--files`` files (100 directories, mtimes aged past the checksum cache's racy
window), logs them once per variant (untimed), then re-logs them in fresh processes, the
variants taking turns run by run. Each re-log is timed in four phases: ``add_dir`` (scan,
checksum cache, entries), ``init`` (the run record), ``commit`` (``log_artifact``) and
``finish``. Variants, each with one shortcut taken away:

* ``as shipped``
* ``no tree``: no directory rows in the checksum cache (one look-up per file)
* ``collector on``: the cyclic garbage collector left running while ``add_dir`` builds the draft
* ``young after``: the collector paused, but what ``add_dir`` built left in the young
  generations afterwards (not moved to the oldest one), so the next collections walk it
* ``ORM statements``: the registry's statements built from the ORM models instead of Core tables

Before the re-logs (or alone, with ``--scan-only``), the scan itself against the floor of its
system calls: ``_scan_dir`` of the files as shipped, with its stats always shared with a forked
child, and never (``forked.STAT_FORK_MIN_ITEMS`` decides between the two); a bare loop of
``os.stat`` over their paths in one process, and that loop split in halves with a forked child;
taking turns.

Prints the median of each phase per variant. The store, registry and caches live under
``--dir`` (default: a temporary directory), the same disk as the data.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from child_setup import SETUP, WARM
from smallfiles import add_size_options, generate

from artifact_plugins.core.gcpause import gc_paused

VARIANTS = {
    "as shipped": "",
    "no tree": "import artifact_plugins.core.artifact as a; a.TREE_MIN_FILES = 10**12",
    "collector on": "import contextlib, artifact_plugins.core.artifact as a; a.gc_paused = contextlib.nullcontext",
    "young after": (
        "import contextlib, gc, artifact_plugins.core.artifact as a\n"
        "@contextlib.contextmanager\n"
        "def paused():\n"
        "    gc.disable()\n"
        "    try:\n"
        "        yield\n"
        "    finally:\n"
        "        gc.enable()\n"
        "a.gc_paused = paused"
    ),
    "ORM statements": (
        "import artifact_plugins.core.registry.registry as r, artifact_plugins.core.registry.models as m; r.tb = m"
    ),
}

CHILD = (
    SETUP
    + """
src, timed_run = sys.argv[2], sys.argv[3] == "1"
PATCH
"""
    + WARM
    + """
marks = [time.perf_counter()]
art = ap.Artifact("ds", "dataset"); art.add_dir(src); marks.append(time.perf_counter())
run = ap.init(job_type="bench"); marks.append(time.perf_counter())
run.log_artifact(art); marks.append(time.perf_counter())
run.finish(); marks.append(time.perf_counter())
if timed_run:
    names = ["add_dir", "init", "commit", "finish"]
    print(json.dumps({n: b - a for n, a, b in zip(names, marks, marks[1:])}))
"""
)


def relog(home: Path, src: Path, patch: str, timed: bool) -> dict[str, float]:
    code = CHILD.replace("PATCH", patch)
    out = subprocess.run(
        [sys.executable, "-c", code, str(home), str(src), "1" if timed else "0"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1]) if timed else {}


def scan_floor(src: Path, runs: int) -> None:
    """Print the median time of the re-log's scan (``_scan_dir``: as shipped, with its stats on
    two cores, on one) next to a bare ``os.stat`` loop over the same files, in this process alone
    and in halves with a forked child; taking turns run by run. The scan's distance from the
    bare loop is the Python it adds per file."""
    from artifact_plugins.core import forked
    from artifact_plugins.core.artifact import _scan_dir

    paths = _scan_dir(str(src))[0]
    half = len(paths) // 2

    def stat_all(part: list[str]) -> None:
        for path in part:
            os.stat(path)

    def halves_forked() -> None:
        pid = os.fork()
        if pid == 0:
            stat_all(paths[half:])
            os._exit(0)
        stat_all(paths[:half])
        os.waitpid(pid, 0)

    def scan(stat_fork_min: int) -> Callable[[], object]:
        def run() -> None:
            shipped = forked.STAT_FORK_MIN_ITEMS
            forked.STAT_FORK_MIN_ITEMS = stat_fork_min
            try:
                _scan_dir(str(src))
            finally:
                forked.STAT_FORK_MIN_ITEMS = shipped

        return run

    ways: dict[str, Callable[[], object]] = {
        "scan (_scan_dir)": scan(forked.STAT_FORK_MIN_ITEMS),
        "scan, stats forked": scan(1),
        "scan, one core": scan(2**62),
        "bare os.stat loop": lambda: stat_all(paths),
        "the same, halves forked": halves_forked,
    }
    times: dict[str, list[float]] = {label: [] for label in ways}
    with gc_paused():  # as add_dir runs the scan
        for _ in range(runs):
            for label, fn in ways.items():
                t = time.perf_counter()
                fn()
                times[label].append(time.perf_counter() - t)
    for label, spent in times.items():
        med = statistics.median(spent)
        print(f"{label:<24} {med * 1e3:7.1f} ms  {med * 1e6 / len(paths):5.2f} us a file")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_size_options(p)
    p.add_argument("--pairs", type=int, default=7, help="timed re-logs per variant")
    p.add_argument("--dir", default=None, help="scratch directory (default: a temporary one)")
    p.add_argument("--scan-only", action="store_true", help="time the scan against the bare stat loop only")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as scratch:
        base = Path(scratch)
        src = base / "src"
        generate(src, args.files, args.size)
        scan_floor(src, max(args.pairs, 5))
        if args.scan_only:
            return
        homes = {name: base / f"home-{i}" for i, name in enumerate(VARIANTS)}
        for name, patch in VARIANTS.items():  # the first log of each variant, untimed
            homes[name].mkdir()
            relog(homes[name], src, patch, timed=False)
            relog(homes[name], src, patch, timed=False)  # and one warm-up re-log
        samples: dict[str, list[dict[str, float]]] = {name: [] for name in VARIANTS}
        for _ in range(args.pairs):
            for name, patch in VARIANTS.items():
                samples[name].append(relog(homes[name], src, patch, timed=True))
    print(f"re-log of {args.files:,} unchanged files of {args.size:,} bytes: median of {args.pairs} runs (ms)")
    print(f"{'variant':<16} {'add_dir':>8} {'init':>7} {'commit':>7} {'finish':>7} {'total':>7}")
    for name, runs in samples.items():
        med = {k: statistics.median(r[k] for r in runs) * 1e3 for k in runs[0]}
        total = statistics.median(sum(r.values()) for r in runs) * 1e3
        phases = " ".join(f"{med[k]:{w}.1f}" for k, w in (("add_dir", 8), ("init", 7), ("commit", 7), ("finish", 7)))
        print(f"{name:<16} {phases} {total:7.1f}")


if __name__ == "__main__":
    main()
