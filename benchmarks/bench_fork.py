"""What a fork costs as the forking process grows: the basis of ``forked.RESIDENT_BYTES_PER_ITEM``.

    python benchmarks/bench_fork.py [--gib 0,1,4] [--runs 5]

For each size, the process first fills that many GiB of memory (touched, so resident), then
forks ``--runs`` times a child that exits at once, and prints the median time of ``os.fork()``
in the parent and of fork + ``waitpid`` (the child's exit tears down its copy of the page
tables). A forked child shares a batch of small-file work only where the files saved outweigh
this (``artifact_plugins/core/forked.py``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time


def fork_times(runs: int) -> tuple[float, float]:
    """Median seconds of ``os.fork()`` in the parent, and of fork + reaping the child."""
    forks, reaped = [], []
    for _ in range(runs):
        start = time.perf_counter()
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        forked = time.perf_counter()
        os.waitpid(pid, 0)
        forks.append(forked - start)
        reaped.append(time.perf_counter() - start)
    return statistics.median(forks), statistics.median(reaped)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gib", default="0,1,4", help="resident sizes to measure at, in GiB (ascending)")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    held: list[bytearray] = []
    for gib in (float(g) for g in args.gib.split(",")):
        while sum(map(len, held)) < gib * 2**30:
            held.append(bytearray(2**26))  # zero-filled: every page touched, so resident
        fork, reaped = fork_times(args.runs)
        print(f"{gib:4.1f} GiB resident: fork {fork * 1e3:6.1f} ms, fork + reap {reaped * 1e3:6.1f} ms")


if __name__ == "__main__":
    main()
