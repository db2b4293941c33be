"""What writing 1 GiB costs on this VM depending on which free memory the writer gets.

    python benchmarks/bench_fresh_pages.py [--mib 1024] [--runs 6] [--dir DIR]

No code of this project runs here: it measures the machine. Each round deletes the two copies
the round before left (``2 x --mib`` MiB of page cache freed at once), then two writers copy the
file one after the other: ``cp``, and a fresh Python process (``copy_file_range`` while BLAKE3
hashes the file, as a first log does, timed from after its start-up). Even rounds run ``cp``
first, odd rounds the Python process first. ``run_all.py``'s 1 GiB workload has ``cp -r`` go
first: it starts as soon as the previous output is deleted, a log after its interpreter and
imports.

On a machine that hands back freed memory to its host (a balloon with free-page reporting),
pages the guest freed a moment ago are cheap to fill again and pages the host took back cost a
fault each. Prints each round's two times and the medians by who went first: a writer that
copies as fast as the other when first and several times slower when second measures the
memory it was given, not its own work.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

from bench_big_log import add_big_file_options, big_file

COPY_WHILE_HASHING = r"""
import mmap, os, sys, threading, time
from blake3 import blake3
src, dest = sys.argv[1:3]
os.sync()

def copy():
    s, d = os.open(src, os.O_RDONLY), os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    size, done = os.fstat(s).st_size, 0
    while done < size:
        done += os.copy_file_range(s, d, min(64 << 20, size - done))
    os.close(s), os.close(d)

t = time.perf_counter()
thread = threading.Thread(target=copy)
thread.start()
with open(src, "rb") as f, mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ) as m:
    blake3(max_threads=blake3.AUTO).update(m).digest()
thread.join()
print(time.perf_counter() - t)
"""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_big_file_options(p, runs=6)
    args = p.parse_args()
    src = big_file(args)
    work = Path(args.dir) / f"fresh-pages-{uuid.uuid4().hex}"
    work.mkdir(parents=True)
    times: dict[tuple[str, int], list[float]] = {}
    try:
        for k in range(args.runs):
            for old in work.iterdir():
                old.unlink()
            os.sync()
            order = ("cp", "python") if k % 2 == 0 else ("python", "cp")
            took = {who: _copy(who, src, work / f"{who}-{k}") for who in order}
            for place, who in enumerate(order):
                times.setdefault((who, place), []).append(took[who])
            print(f"  round {k}: " + "   ".join(f"{who} {took[who] * 1e3:6.0f} ms" for who in order))
    finally:
        for f in work.iterdir():
            f.unlink()
        work.rmdir()
    print(f"{args.mib:,} MiB, {args.runs} rounds: median (range)")
    for (who, place), values in sorted(times.items()):
        label = f"{who}, {'first' if place == 0 else 'second'}"
        spread = f"{min(values) * 1e3:.0f}-{max(values) * 1e3:.0f}"
        print(f"  {label:<16} {statistics.median(values) * 1e3:6.0f} ms  ({spread})")


def _copy(who: str, src: Path, dest: Path) -> float:
    """Seconds ``cp`` (from its start) or the Python copy (after its start-up) took to copy ``src``."""
    if who == "cp":
        t = time.perf_counter()
        subprocess.run(["cp", str(src), str(dest)], check=True)
        return time.perf_counter() - t
    out = subprocess.run(
        [sys.executable, "-c", COPY_WHILE_HASHING, str(src), str(dest)], check=True, capture_output=True, text=True
    )
    return float(out.stdout)


if __name__ == "__main__":
    main()
