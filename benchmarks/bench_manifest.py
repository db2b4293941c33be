"""Per-entry work on entry paths and manifests: the batch routes against the one-by-one routes.

    python benchmarks/bench_manifest.py [--entries 10000,100000,1000000] [--runs 5]

A manifest is written on every first log or change (``to_bytes``: canonical JSON, gzipped) and
read on every download, use, diff and gc of a version the process has not read yet
(``from_bytes``: parsed and every entry validated). Plain entries (path, digest and size, text
needing no JSON escaping) are written by direct formatting; this script times that against the
``json.dumps`` route on the same manifests (paths like ``d0042/f0012345.bin``, distinct
digests), checks both give the same bytes, and times reading them back. It also times
checking the entry paths of a directory being added: ``normalize_entry_paths`` on the whole
batch against ``normalize_entry_path`` one path at a time, and diffing two manifests that
differ in 0.1% of their entries (``diff_manifests``, what ``version.diff`` runs once both
manifests are loaded). And the gzip level a manifest is stored at (``manifest.gzip_level``):
writing and reading back at level 1 against level 0 (stored blocks), with the bytes each gives,
for a delta-sized manifest of 500 entries and for each ``--entries``. One process, pure CPU;
medians.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import time
from collections.abc import Callable

from blake3 import blake3

from artifact_plugins.core import manifest as manifest_mod
from artifact_plugins.core.diff import diff_manifests
from artifact_plugins.core.manifest import Manifest, ManifestEntry, make_entry
from artifact_plugins.core.naming import normalize_entry_path, normalize_entry_paths


def build(n: int) -> Manifest:
    """A manifest of ``n`` plain entries in 1,000-file directories."""
    return Manifest(
        make_entry(f"d{i // 1000:04d}/f{i:07d}.bin", "blake3:" + blake3(i.to_bytes(8, "little")).hexdigest(), 1024 + i)
        for i in range(n)
    )


def _json_route(entries: list[ManifestEntry]) -> str:
    return json.dumps([e.to_json() for e in entries], separators=(",", ":"), ensure_ascii=False)[1:-1]


def median(fn: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        gc.collect()
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--entries", default="10000,100000,1000000")
    p.add_argument("--runs", type=int, default=5)
    args = p.parse_args()
    fast = manifest_mod._entries_text
    print(f"{'entries':>10} {'write, json.dumps':>20} {'write, direct':>18} {'speed-up':>9} {'read':>18}")
    for n in (int(x) for x in args.entries.split(",")):
        m = build(n)
        data = m.to_bytes()
        manifest_mod._entries_text = _json_route
        try:
            assert m.to_bytes() == data
            slow = median(m.to_bytes, args.runs)
        finally:
            manifest_mod._entries_text = fast
        quick = median(m.to_bytes, args.runs)
        digest = m.digest()
        read = median(lambda data=data, digest=digest: Manifest.from_bytes(data, digest), args.runs)
        per = 1e6 / n
        print(
            f"{n:>10,} {slow:9.3f} s {slow * per:4.1f} us {quick:7.3f} s {quick * per:4.1f} us {slow / quick:8.2f}x"
            f" {read:7.3f} s {read * per:4.1f} us"
        )
    print(f"\n{'entries':>10} {'paths, one by one':>20} {'paths, batch':>18} {'speed-up':>9}")
    for n in (int(x) for x in args.entries.split(",")):
        paths = [f"d{i // 1000:04d}/f{i:07d}.bin" for i in range(n)]
        assert normalize_entry_paths(paths) is paths
        slow = median(lambda paths=paths: [normalize_entry_path(p) for p in paths], args.runs)
        quick = median(lambda paths=paths: normalize_entry_paths(paths), args.runs)
        per = 1e6 / n
        print(f"{n:>10,} {slow:9.3f} s {slow * per:4.2f} us {quick:7.3f} s {quick * per:4.2f} us {slow / quick:8.2f}x")
    print(f"\n{'entries':>10} {'diff, 0.1% modified':>22}")
    for n in (int(x) for x in args.entries.split(",")):
        old = build(n)
        new = Manifest(
            make_entry(e.path, e.digest if i % 1000 else "blake3:" + "f" * 64, e.size) for i, e in enumerate(old)
        )
        assert len(diff_manifests(old, new).modified) == -(-n // 1000)
        took = median(lambda old=old, new=new: diff_manifests(old, new), args.runs)
        print(f"{n:>10,} {took:11.3f} s {took * 1e6 / n:5.2f} us")
    level_cells = " ".join(f"{f'level {level}: write':>15} {'read':>9} {'bytes':>12}" for level in (1, 0))
    print(f"\n{'entries':>10} {level_cells}")
    for n in [500, *(int(x) for x in args.entries.split(","))]:
        m = build(n)
        digest = m.digest()
        cells = []
        for level in (1, 0):
            data = m.to_bytes(level)
            write = median(lambda m=m, level=level: m.to_bytes(level), args.runs)
            read = median(lambda data=data, digest=digest: Manifest.from_bytes(data, digest), args.runs)
            cells.append(f"{write * 1e3:11.2f} ms {read * 1e3:6.2f} ms {len(data):12,}")
        print(f"{n:>10,} " + " ".join(cells))


if __name__ == "__main__":
    main()
