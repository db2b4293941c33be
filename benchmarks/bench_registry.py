"""What a log's registry work costs the first time in a process, against the same work again.

    python benchmarks/bench_registry.py [--runs 9] [--dir DIR]

Each run is a fresh process with the registry opened (migrated) before any clock starts. It
logs two small directories (10 files each, two new versions of two collections) one after the
other, each as ``Artifact`` + ``add_dir`` + ``init`` + ``log_artifact`` + ``finish``, and times
the registry methods each log calls, by wrapping them: the run record (``ensure_run``,
``finish_run``), the store view before the commit (``store_view``), the version's
transaction (``commit_version``), and reading the run's record (``run``: since the
twenty-seventh session a finished run reads it only when its status is asked for, so 0
here). Both logs run the same statements on tables of the same shape, so what the first
costs beyond the second is what a process pays once per statement
(SQLAlchemy compiles each distinct statement the first time a process runs it, and caches it
for the process only) - which every orchestrator task that logs in its own process pays again.
Beside them, ``providers``: ``init()`` finding the run-context providers among every installed
distribution's entry points, once per process (the second log reuses what the first found);
and ``statements``: how many statements each log sends the registry (``BEGIN`` included).

Prints the median of each method for the first and the second log, and their difference.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from child_setup import SETUP, WARM

METHODS = ("ensure_run", "store_view", "commit_version", "finish_run", "run")

CHILD = (
    SETUP
    + """
from artifact_plugins.core import run_context
from artifact_plugins.core.registry import Registry
for name in METHODS:
    timed(Registry, name, name)
timed(run_context, "providers", "providers")
"""
    + WARM
    + """
from sqlalchemy import event

def count_statement(*args):
    spent["statements"] = spent.get("statements", 0) + 1

event.listen(client.registry.engine, "before_cursor_execute", count_statement)
laps = []
for src in sys.argv[2:4]:
    spent.clear()
    art = ap.Artifact(Path(src).name, "dataset")
    art.add_dir(src)
    with ap.init(job_type="bench") as run:
        run.log_artifact(art)
    laps.append(dict(spent))
print(json.dumps(laps))
"""
)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=9)
    p.add_argument("--dir", default=None, help="scratch directory (default: a temporary one)")
    args = p.parse_args()
    if args.dir is not None:
        Path(args.dir).mkdir(parents=True, exist_ok=True)
    code = f"METHODS = {METHODS!r}\nfrom pathlib import Path\n" + CHILD
    first: list[dict[str, float]] = []
    second: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory(dir=args.dir) as scratch:
        base = Path(scratch)
        sources = []
        for name in ("one", "two"):
            src = base / name
            src.mkdir()
            for i in range(10):
                (src / f"f{i}.txt").write_text(f"{name} {i}")
            sources.append(str(src))
        for k in range(args.runs):
            home = base / f"home{k}"
            home.mkdir()
            out = subprocess.run(
                [sys.executable, "-c", code, str(home), *sources], check=True, capture_output=True, text=True
            ).stdout
            a, b = json.loads(out.strip().splitlines()[-1])
            first.append(a)
            second.append(b)
    print(f"registry methods of a log, first and second in a process: median of {args.runs} processes (ms)")
    print(f"{'method':<16} {'first':>8} {'second':>8} {'difference':>11}")
    for name in [*METHODS, "all", "providers"]:
        a, b = (_median_ms(laps, name) for laps in (first, second))
        print(f"{name:<16} {a:8.2f} {b:8.2f} {a - b:11.2f}")
    a, b = (statistics.median(lap["statements"] for lap in laps) for laps in (first, second))
    print(f"{'statements':<16} {a:8.0f} {b:8.0f}  (sent to the registry per log, BEGIN included)")


def _median_ms(laps: list[dict[str, float]], name: str) -> float:
    """The median over ``laps`` of the time in method ``name`` (``"all"``: in every registry method), in ms."""
    total = (sum(lap.get(m, 0.0) for m in METHODS) if name == "all" else lap.get(name, 0.0) for lap in laps)
    return statistics.median(total) * 1e3


if __name__ == "__main__":
    main()
