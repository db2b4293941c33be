"""The small-file data set and options shared by the per-step benchmark scripts
(``bench_first_log.py``, ``bench_relog.py``, ``bench_change.py``, ``bench_place.py``,
``bench_pacing.py``)."""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

#: Where the scripts that keep their data between runs keep it.
DATA = Path(__file__).resolve().parent / ".data"


def add_run_options(p: argparse.ArgumentParser, dir_help: str = "where the data and scratch stores live") -> None:
    """``--runs`` (default 5) and ``--dir`` (default :data:`DATA`)."""
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--dir", default=str(DATA), help=dir_help)


def first_log_set(base: Path, files: int, size: int) -> Path:
    """The small-file set under ``base`` that ``bench_first_log.py`` and ``bench_pacing.py``
    share, generated the first time."""
    src = base / f"first-log-{files}x{size}"
    generate(src, files, size)
    return src


def add_size_options(p: argparse.ArgumentParser) -> None:
    """``--files`` and ``--size``: how many small files, of how many bytes each."""
    p.add_argument("--files", type=int, default=10_000)
    p.add_argument("--size", type=int, default=4096)


def small_file_args(doc: str | None) -> argparse.Namespace:
    """The command line of a script that takes ``--files``, ``--size``, ``--runs`` and ``--dir``, parsed."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_size_options(p)
    add_run_options(p)
    return p.parse_args()


def cp_r(src: Path, dest: Path) -> float:
    """Seconds that ``cp -r src dest`` took."""
    t = time.perf_counter()
    subprocess.run(["cp", "-r", str(src), str(dest)], check=True)
    return time.perf_counter() - t


def print_step(label: str, seconds: float, files: int, note: str = "") -> None:
    """One line of a per-step table: milliseconds, and microseconds a file."""
    print(f"  {label:<9} {seconds * 1e3:8.1f} ms  {seconds * 1e6 / files:6.1f} us a file{note}")


def print_steps(runs: Sequence[dict[str, float]], steps: Sequence[str], files: int) -> None:
    """:func:`print_step` of the median of each step over ``runs`` (a step a run lacks counts as 0)."""
    for step in steps:
        print_step(step, statistics.median(r.get(step, 0.0) for r in runs), files)


def generate(root: Path, files: int, size: int) -> None:
    """``files`` files of ``size`` distinct bytes in 100 directories under ``root``, mtimes an hour
    old (outside the checksum cache's racy window, as files being logged usually are).

    Made once: a marker beside ``root`` (not inside it, where it would be logged too) says the
    set is complete.
    """
    marker = root.parent / f".{root.name}.complete"
    if marker.exists():
        return
    old = time.time() - 3600
    for i in range(files):
        d = root / f"d{i % 100:03d}"
        d.mkdir(parents=True, exist_ok=True)
        f = d / f"f{i:07d}.bin"
        f.write_bytes(i.to_bytes(8, "little") * (size // 8))
        os.utime(f, (old, old))
    os.sync()
    marker.touch()


def wait_until_settled(work: Path, say: Callable[[str], None] = print) -> None:
    """Wait (at most three minutes) until creating files on the disk under ``work`` is fast again.

    On this VM's ext4 (mounted with ``discard``), creating files right after a bulk delete is
    10-40x slower for seconds to minutes. The probe creates 1,000 files of 4 KiB, and the disk
    counts as settled when two probes in a row stay under 60 us per file: a probe of 200 tiny
    files once passed while `cp -r` of the 10,000-file set still ran 8x slower than on a settled
    disk (its discards were not done). The probes are left behind (deleting them would undo it).
    """
    os.sync()
    probe_root = work / "probe" / uuid.uuid4().hex
    t0 = time.perf_counter()
    per_file, fast, block = 0.0, 0, b"x" * 4096
    for k in range(60):
        probe = probe_root / str(k)
        probe.mkdir(parents=True)
        t = time.perf_counter()
        for i in range(1000):
            (probe / str(i)).write_bytes(block)
        per_file = (time.perf_counter() - t) / 1000
        fast = fast + 1 if per_file < 60e-6 else 0
        if fast == 2:
            break
        time.sleep(3)
    say(f"  (disk settled in {time.perf_counter() - t0:.0f} s: {per_file * 1e6:.0f} us per file create)")
