"""The small-file data set and options shared by the per-step benchmark scripts
(``bench_first_log.py``, ``bench_relog.py``, ``bench_place.py``)."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path


def add_size_options(p: argparse.ArgumentParser) -> None:
    """``--files`` and ``--size``: how many small files, of how many bytes each."""
    p.add_argument("--files", type=int, default=10_000)
    p.add_argument("--size", type=int, default=4096)


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
