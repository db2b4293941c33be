"""The benchmark suite: this project side by side with W&B (offline), DVC and MLflow, and the
machine's limits (``cat``, ``cp -r``, BLAKE3), on the same generated data, in one run.

    benchmarks/setup-peers && python benchmarks/run_all.py

Writes the tables into ``benchmarks/RESULTS.md`` (between the ``results`` markers) and the raw
samples into ``benchmarks/results.json``. Every measured operation runs in its own process
(``bench_ops.py``), which reports the operation's wall time (imports excluded) and its peak RSS.
Options: ``--runs N`` (default 5), ``--quick`` (tiny workloads, for checking the suite itself),
``--only a,b`` (workloads), ``--no-peers``, ``--no-scale``, ``--cell-budget S``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench_ops import READY
from smallfiles import wait_until_settled

HERE = Path(__file__).resolve().parent
OPS = HERE / "bench_ops.py"
PEERS_PY = HERE / ".peers" / "venv" / "bin" / "python"
RESULTS = HERE / "RESULTS.md"
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"


# -- workloads --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Workload:
    name: str
    files: int
    size: int
    dirs: int = 1
    seed: str = ""
    distinct: int = 0  # distinct contents (0: every file unique)

    @property
    def total(self) -> int:
        return self.files * self.size

    @property
    def label(self) -> str:
        if self.files == 1:
            return f"1 x {_human(self.size)}"
        return f"{self.files:,} x {_human(self.size)}"


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:g} {unit}" if unit == "B" else f"{n:.3g} {unit}"
        n /= 1024
    return str(n)


def _content(seed: str, i: int, size: int) -> bytes:
    from blake3 import blake3

    return blake3(f"{seed}:{i}".encode()).digest(length=size)


def file_path(root: Path, w: Workload, i: int) -> Path:
    if w.files == 1:
        return root / "data.bin"
    return root / f"d{i % w.dirs:04d}" / f"f{i:07d}.bin"


def generate(root: Path, w: Workload, force: bool = False) -> Path:
    """Deterministic data: file ``i`` holds the BLAKE3 XOF of ``seed:i`` (incompressible, unique)."""
    from blake3 import blake3

    marker = root.parent / f".{root.name}.complete"  # outside the data: every tool logs the whole dir
    spec = json.dumps(asdict(w), sort_keys=True)
    if not force and marker.exists() and marker.read_text() == spec:
        return root
    rm(root)
    root.mkdir(parents=True)
    if w.files == 1:
        xof, chunk = blake3(w.seed.encode()), 64 * 2**20
        with open(file_path(root, w, 0), "wb") as f:
            for off in range(0, w.size, chunk):
                f.write(xof.digest(length=min(chunk, w.size - off), seek=off))
    else:
        for d in range(min(w.dirs, w.files)):
            (root / f"d{d:04d}").mkdir()
        for i in range(w.files):
            with open(file_path(root, w, i), "wb") as f:
                f.write(_content(w.seed, i % w.distinct if w.distinct else i, w.size))
    os.sync()
    marker.write_text(spec)
    return root


def change_files(root: Path, w: Workload, k: int, count: int) -> int:
    """History step ``k``: rewrite a deterministic ``count`` of the files with new content."""
    picks = random.Random(k).sample(range(w.files), count)
    for i in picks:
        file_path(root, w, i).write_bytes(_content(f"{w.seed}/v{k}", i, w.size))
    return len(picks)


# -- measuring ----------------------------------------------------------------------------------------


@dataclass
class Cell:
    tool: str
    op: str
    workload: str
    samples: list[dict[str, Any]] = field(default_factory=list)
    note: str = ""

    @property
    def seconds(self) -> float:
        return statistics.median(s["seconds"] for s in self.samples)

    @property
    def rss_mib(self) -> float | None:
        known = [s["rss_kib"] for s in self.samples if s.get("rss_kib") is not None]
        return statistics.median(known) / 1024 if known else None

    @property
    def n(self) -> int:
        return len(self.samples)


@dataclass
class Leg:
    """One operation of :meth:`Bench.measure_in_turns`: ``run()`` returns a sample, ``setup()`` (if
    any) runs before each, unmeasured; ``min_runs`` is what a slow peer gets before its budget stops it."""

    tool: str
    op: str
    run: Any
    setup: Any = None
    min_runs: int = 3


class Bench:
    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args = args
        self.work = work
        self.cells: dict[tuple[str, str, str], Cell] = {}
        self.log_lines: list[str] = []
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("ARTIFACT_PLUGINS_", "WANDB_", "PYTHON"))}

    def say(self, msg: str) -> None:
        print(msg, flush=True)

    def _spawn(self, py: Path | str, op: str, a: dict[str, Any]) -> dict[str, Any]:
        os.sync()  # no writeback left over from an earlier run or its clean-up
        argv = [str(py), str(OPS), op, json.dumps(a)]
        if not RELEASE:
            p = subprocess.run(argv, capture_output=True, text=True, env=self.env, timeout=3600)
            out, err, code = p.stdout, p.stderr, p.returncode
        else:
            # The child stops before its clock (bench_ops.READY) until the trash is emptied.
            with tempfile.TemporaryFile("w+") as errf:
                child = subprocess.Popen(
                    argv,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=errf,
                    text=True,
                    env={**self.env, "BENCH_HANDSHAKE": "1"},
                )
                assert child.stdin is not None and child.stdout is not None
                lines = []
                for line in child.stdout:  # ends early at EOF: an op without a clock
                    if line.rstrip("\n") == READY:
                        release()
                        os.sync()
                        child.stdin.write("go\n")
                        child.stdin.flush()
                        break
                    lines.append(line)
                out = "".join(lines) + child.stdout.read()
                code = child.wait(timeout=3600)
                errf.seek(0)
                err = errf.read()
        if code != 0:
            raise RuntimeError(f"{op} failed ({code}):\n{err[-3000:]}")
        return dict(json.loads(out.strip().splitlines()[-1]))

    def _command(self, argv: list[str]) -> dict[str, Any]:
        release()
        os.sync()
        t = time.perf_counter()
        p = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
        _, status, _usage = os.wait4(p.pid, 0)
        seconds = time.perf_counter() - t
        p.returncode = os.waitstatus_to_exitcode(status)
        if p.returncode != 0:
            raise RuntimeError(f"{argv} failed ({p.returncode})")
        # No memory figure: ru_maxrss of a child carries over this process's RSS at fork time.
        return {"seconds": seconds, "rss_kib": None, "base_rss_kib": 0}

    def measure(
        self,
        tool: str,
        op: str,
        w: str,
        run: Any,
        setup: Any = None,
        runs: int | None = None,
        min_runs: int = 3,
    ) -> Cell:
        """Up to ``runs`` samples; a slow peer cell stops early once past the cell budget."""
        return self.measure_in_turns(w, [Leg(tool, op, run, setup, min_runs)], runs)[0]

    def measure_in_turns(self, w: str, legs: list[Leg], runs: int | None = None) -> list[Cell]:
        """:meth:`measure` of several operations taking turns, one sample of each per round.

        Operations whose ratio is reported (``cp -r`` and this project's first log) are measured
        in turns, so a drift of the disk's pace during the workload (this VM's ext4 moves by a
        third within minutes) weighs on both alike instead of on whichever ran second.
        """
        runs = runs or self.args.runs
        budget = self.args.cell_budget
        cells = [self.cells.setdefault((leg.tool, leg.op, w), Cell(leg.tool, leg.op, w)) for leg in legs]
        spent = [0.0] * len(legs)
        going = [True] * len(legs)
        while any(going):
            for k, (leg, cell) in enumerate(zip(legs, cells, strict=True)):
                if not going[k]:
                    continue
                if leg.setup is not None:
                    leg.setup()
                s = leg.run()
                cell.samples.append(s)
                spent[k] += s["seconds"]
                if cell.n >= runs:
                    going[k] = False
                elif leg.tool == "ours":  # this project: 5 runs, or 3 when they are slow (a big-workload cell)
                    going[k] = not (cell.n >= 3 and spent[k] > 3 * budget)
                elif (cell.n >= leg.min_runs and spent[k] > budget) or spent[k] > 2 * budget:
                    cell.note = f"{cell.n} runs (cell budget)"
                    going[k] = False
        for cell in cells:
            mem = f"{cell.rss_mib:7.0f} MiB" if cell.rss_mib is not None else "      — MiB"
            self.say(f"  {cell.tool:<7} {cell.op:<18} {w:<10} {cell.seconds:8.3f} s  {mem}  (n={cell.n})")
        return cells

    def ours(self, op: str, a: dict[str, Any]) -> dict[str, Any]:
        return self._spawn(sys.executable, op, a)

    def peer(self, op: str, a: dict[str, Any]) -> dict[str, Any]:
        return self._spawn(PEERS_PY, op, a)


#: Where ``rm`` moves things during a workload (deleted, and the disk let settle, between workloads).
TRASH: Path | None = None
#: Whether :func:`release` empties the trash right before each measured run's clock (the 1 GiB workload).
RELEASE = False


def release() -> None:
    """Empty the trash now, if :data:`RELEASE`: right before a measured run's clock starts.

    On this VM, memory the guest freed a moment ago is cheap to write into again, while memory
    free for longer may have been handed back to the host, and then costs a fault per page on
    its next use: ``bench_fresh_pages.py`` copies the 1 GiB file in 0.3 s or in 2.3-2.7 s by which
    memory the copy gets. A run that started seconds after the previous output was deleted (a
    tool whose start-up is long) often wrote into the slow kind; one exec'd at once (``cp``)
    into the fast. In the 1 GiB workload, each run's previous output (a GiB of page cache) is therefore
    deleted when the run's own clock is about to start, for every tool alike. (Deleting one big
    file does not slow the file creations after it, as a bulk delete of small files does.)
    """
    if RELEASE and TRASH is not None and TRASH.exists():
        shutil.rmtree(TRASH)


def rm(*paths: Path) -> None:
    """Remove ``paths``: moved into :data:`TRASH` (a rename) while measuring, really deleted otherwise.

    On this VM's ext4 (mounted with ``discard``), creating files right after a bulk delete is
    10-40x slower for several seconds; a run's clean-up must not slow the next measured run.
    """
    for p in paths:
        if not (p.exists() or p.is_symlink()):
            continue
        if TRASH is not None:
            TRASH.mkdir(parents=True, exist_ok=True)
            os.rename(p, TRASH / uuid.uuid4().hex)
        elif p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink()


def settle(b: Bench) -> None:
    """Empty the trash, then wait until creating files is fast again (:func:`wait_until_settled`)."""
    if TRASH is not None and TRASH.exists():
        shutil.rmtree(TRASH)
    wait_until_settled(b.work, b.say)


def bench_workload(b: Bench, w: Workload, src_root: Path, peers: bool) -> None:
    src = src_root / w.name
    target = src if w.files > 1 else src / "data.bin"
    name = w.name
    home = b.work / "ours" / name
    dest = b.work / "dl" / name
    b.say(f"\n== {w.name}: {w.label} ({_human(w.total)})")

    # -- limits first, right after the disk settled (`cp -r` below, in turns with the first log:
    # every run starts after `os.sync()` and nothing is deleted meanwhile, so neither leaves the
    # disk busy for the other)
    cpdest = b.work / "cp" / name
    if w.files == 1:
        cat = ["cat", str(target)]
    else:
        cat = ["sh", "-c", f"find '{src}' -type f -name '*.bin' -print0 | xargs -0 cat > /dev/null"]
    b.measure("limit", "cat", name, lambda: b._command(cat), runs=b.args.runs)
    b.measure("limit", "blake3", name, lambda: b.ours("blake3_hash", {"src": str(target)}))

    # -- this project (its first log in turns with `cp -r`, the limit it is held to)
    a = {"home": str(home), "src": str(target), "name": name, "dest": str(dest)}
    cpdest.parent.mkdir(parents=True, exist_ok=True)
    b.measure_in_turns(
        name,
        [
            Leg("limit", "cp", lambda: b._command(["cp", "-r", str(target), str(cpdest)]), lambda: rm(cpdest)),
            Leg("ours", "first_log", lambda: b.ours("ours_log", a), lambda: rm(home)),
        ],
    )
    rm(cpdest)
    b.measure("ours", "relog", name, lambda: b.ours("ours_log", a))
    b.measure("ours", "download_cached", name, lambda: b.ours("ours_download", a), setup=lambda: rm(dest))
    b.measure("ours", "redownload", name, lambda: b.ours("ours_download", a))
    if w.files <= 20_000 or b.args.quick:  # on 100,000 files these take minutes per run: 10k and 1 GiB show them
        b.measure(
            "ours",
            "download_cold",
            name,
            lambda: b.ours("ours_download", {**a, "cold": True}),
            setup=lambda: rm(dest, home / "cache" / "blobs"),
        )
        b.measure("ours", "use_download", name, lambda: b.ours("ours_use_download", a), setup=lambda: rm(dest))
    rm(dest)
    if not peers:
        return

    # -- W&B offline
    wb = b.work / "wandb" / name
    wa = {"home": str(wb), "src": str(target), "name": name}
    b.measure("wandb", "first_log", name, lambda: b.peer("wandb_log", wa), setup=lambda: rm(wb))
    b.measure("wandb", "relog", name, lambda: b.peer("wandb_log", wa))
    rm(wb)

    # -- DVC: the source root is the DVC project; cache in its .dvc, remote beside it
    remote = b.work / "dvc" / "remote"
    dvc_target = target.relative_to(src_root).as_posix()
    fresh = {"ws": str(src_root), "remote": str(remote), "trash": str(TRASH)}
    addp = {"ws": str(src_root), "target": dvc_target}
    b.measure("dvc", "first_log", name, lambda: b.peer("dvc_add_push", addp), setup=lambda: b.peer("dvc_fresh", fresh))
    b.measure("dvc", "relog", name, lambda: b.peer("dvc_add_push", addp))
    dvcfile = src_root / f"{dvc_target}.dvc"
    if w.files > 20_000 and not b.args.quick:
        # DVC needs minutes per operation here; its downloads are measured on the smaller sets.
        b.peer("dvc_fresh", fresh)
        rm(remote)
        dvcfile = None
    if dvcfile is not None:
        ws2, ws3 = b.work / "dvc" / "ws-cached", b.work / "dvc" / "ws-cold"
        co = {
            "ws": str(ws2),
            "target": dvc_target,
            "cache": str(src_root / ".dvc" / "cache"),
            "dvcfile": str(dvcfile),
            "trash": str(TRASH),
        }
        b.measure("dvc", "download_cached", name, lambda: b.peer("dvc_checkout", co))
        cold_cache = b.work / "dvc" / "ws-cold-cache"
        pull = {**co, "ws": str(ws3), "cache": str(cold_cache), "remote": str(remote), "pull": True}
        b.measure("dvc", "download_cold", name, lambda: b.peer("dvc_checkout", pull), setup=lambda: rm(cold_cache, ws3))
        rm(ws2, ws3, cold_cache)
        b.peer("dvc_fresh", fresh)  # drop the DVC cache copy of this workload
        rm(remote)

    # -- MLflow, local file store
    ml = b.work / "mlflow" / name
    ma = {"home": str(ml), "src": str(target), "name": name, "dest": str(dest)}
    b.measure("mlflow", "first_log", name, lambda: b.peer("mlflow_log", ma), setup=lambda: rm(ml))
    b.measure("mlflow", "relog", name, lambda: b.peer("mlflow_log", ma))
    b.measure("mlflow", "download_cached", name, lambda: b.peer("mlflow_download", ma), setup=lambda: rm(dest))
    rm(ml, dest)


#: Files rewritten per version of a history: 1% of the 10,000-file history, and the same 100 files
#: (0.1%) of the 100,000-file one, where only this project logs: the cost of a change must not
#: grow with the artifact.
HISTORY_CHANGED = 100


def bench_history(b: Bench, w: Workload, src_root: Path, peers: bool, versions: int = 9) -> None:
    """A history: v0, then ``versions`` versions that each rewrite :data:`HISTORY_CHANGED` files."""
    src = generate(src_root / w.name, w, force=True)
    time.sleep(1.2)  # v0's files are older than the checksum cache's racy window, as real data is
    changed = min(HISTORY_CHANGED, w.files // 100)
    b.say(f"\n== history: {w.label}, {changed:,} of the files change per version")
    home, wb, ml = (b.work / t / "history" for t in ("ours", "wandb", "mlflow"))
    remote = b.work / "dvc" / "remote"
    rm(home, wb, ml, remote)
    a = {"home": str(home), "src": str(src), "name": w.name}
    wa = {"home": str(wb), "src": str(src), "name": w.name}
    ma = {"home": str(ml), "src": str(src), "name": w.name}
    addp = {"ws": str(src_root), "target": w.name}
    b.ours("ours_log", a)
    if peers:
        b.peer("wandb_log", wa)
        b.peer("dvc_fresh", {"ws": str(src_root), "remote": str(remote), "trash": str(TRASH)})
        b.peer("dvc_add_push", addp)
        b.peer("mlflow_log", ma)
    for k in range(1, versions + 1):
        change_files(src, w, k, changed)  # logged at once: the changed files are fresh, as in a pipeline
        b.measure("ours", "log_change", w.name, lambda: b.ours("ours_log", a), runs=k)
        # The same directory logged again unchanged, right after: what the change cost beyond
        # a re-log is the difference of these two, measured on the same files and store.
        b.measure("ours", "relog", w.name, lambda: b.ours("ours_log", a), runs=k)
        if peers and k <= b.args.runs:  # the peers log the first versions only: they are slow
            b.measure("wandb", "log_change", w.name, lambda: b.peer("wandb_log", wa), runs=k)
            b.measure("dvc", "log_change", w.name, lambda: b.peer("dvc_add_push", addp), runs=k)
            b.measure("mlflow", "log_change", w.name, lambda: b.peer("mlflow_log", ma), runs=k)
    if peers:
        b.peer("dvc_fresh", {"ws": str(src_root), "remote": str(remote), "trash": str(TRASH)})
    rm(home, wb, ml, remote)
    (src.parent / f".{src.name}.complete").unlink(missing_ok=True)  # modified: regenerate next time


def bench_lineage(b: Bench, runs: int) -> None:
    home = b.work / "ours" / "lineage"
    rm(home)
    b.say(f"\n== lineage over a {runs:,}-run history")
    t = time.perf_counter()
    b.ours("ours_build_lineage", {"home": str(home), "runs": runs})
    b.say(f"  (built in {time.perf_counter() - t:.1f} s)")
    for op, ref, direction, collapse in (
        ("lineage_all", "raw:v0", "downstream", "group"),
        ("lineage_chain", "chain:latest", "upstream", "explode"),
    ):
        a = {"home": str(home), "ref": ref, "direction": direction, "collapse": collapse}
        b.measure("ours", op, "lineage", lambda a=a: b.ours("ours_lineage", a))


def bench_scale(b: Bench, w: Workload, src_root: Path) -> dict[str, Any]:
    src = src_root / w.name
    t = time.perf_counter()
    generate(src, w)
    b.say(f"\n== scale: one artifact of {w.label} (data ready in {time.perf_counter() - t:.0f} s)")
    home = b.work / "ours" / "scale"
    dest = b.work / "dl" / "scale"
    rm(home, dest)
    prefix = "d0000/"  # 1/1000 of the directories: 1,000 files
    out = b.ours(
        "ours_scale", {"home": str(home), "src": str(src), "name": w.name, "dest": str(dest), "prefix": prefix}
    )
    rm(home, dest)
    b.say("  " + json.dumps(out))
    return out


# -- report -----------------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    fs = subprocess.run(["df", "-T", str(HERE)], capture_output=True, text=True).stdout.splitlines()[-1].split()[1]
    peers = "not installed"
    if PEERS_PY.exists():
        peers = subprocess.run(
            [
                str(PEERS_PY),
                "-c",
                "import importlib.metadata as m; print(', '.join(f'{n} {m.version(n)}' "
                "for n in ('wandb', 'dvc', 'mlflow')))",
            ],
            capture_output=True,
            text=True,
        ).stdout.strip()
    return {
        "cpu": f"{cpu}, {os.cpu_count()} cores",
        "memory": f"{mem:.0f} GiB",
        "disk": f"{fs} on a virtual disk",
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "peers": peers,
    }


def _stored_manifest(scale: dict[str, Any]) -> str:
    """What loading the latest version's manifest read, in bytes as stored: a whole one, or a delta and its base.

    Both are gzip streams, compressed or not by their size (``manifest.gzip_level``).
    """
    stored, base = scale["manifest_bytes"], scale.get("manifest_base_bytes")
    if base is None:
        return f"{stored / 2**20:.1f} MiB as stored"
    return f"a delta of {stored / 2**10:.0f} KiB on {base / 2**20:.1f} MiB, as stored"


def fmt_s(x: float | None) -> str:
    if x is None:
        return "—"
    return f"{x * 1000:.0f} ms" if x < 1 else f"{x:.2f} s"


def report(b: Bench, workloads: list[Workload], scale: dict[str, Any] | None, meta: dict[str, Any]) -> str:
    c = b.cells

    def cell(tool: str, op: str, w: str) -> Cell | None:
        return c.get((tool, op, w))

    def show(x: Cell | None) -> str:
        if x is None:
            return "—"
        star = f" (n={x.n})" if x.n < b.args.runs else ""
        mem = f" · {x.rss_mib:.0f} MiB" if x.rss_mib is not None else ""
        return f"{fmt_s(x.seconds)}{mem}{star}"

    def ratio(peer: Cell | None, ours: Cell | None) -> str:
        if peer is None or ours is None or ours.seconds == 0:
            return "—"
        return f"{peer.seconds / ours.seconds:.1f}x"

    lines = [
        f"Run: {meta['started']} → {meta['finished']} ({meta['minutes']:.1f} min), "
        f"load average at start {meta['load_start']}, at end {meta['load_end']}.",
        "",
        "Machine: " + "; ".join(f"{k}: {v}" for k, v in meta["machine"].items()) + ".",
        "",
        f"Each cell: median wall time of the operation over {b.args.runs} runs (n= where fewer), "
        "then the median peak RSS of its process. Page cache warm (the data was just written or read).",
        "",
    ]
    ops = [
        ("first_log", "first log"),
        ("relog", "re-log unchanged"),
        ("download_cached", "cached download"),
        ("download_cold", "cold download"),
        ("redownload", "re-download, files already there"),
        ("use_download", "use_artifact(name:latest) + download"),
    ]
    for w in workloads:
        lines += [
            f"### {w.label} ({_human(w.total)})",
            "",
            "| operation | this project | W&B offline | DVC | MLflow | W&B / ours | DVC / ours | MLflow / ours |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for op, label in ops:
            ours = cell("ours", op, w.name)
            if ours is None:
                continue
            peers = [cell(t, op, w.name) for t in ("wandb", "dvc", "mlflow")]
            lines.append(
                f"| {label} | {show(ours)} | "
                + " | ".join(show(p) for p in peers)
                + " | "
                + " | ".join(ratio(p, ours) for p in peers)
                + " |"
            )
        cat, cp, b3 = (cell("limit", o, w.name) for o in ("cat", "cp", "blake3"))
        first, dl = cell("ours", "first_log", w.name), cell("ours", "download_cached", w.name)
        lines += [
            "",
            f"Limits on the same bytes: `cat > /dev/null` {show(cat)}; `cp -r` {show(cp)}; BLAKE3 {show(b3)}. "
            f"First log / `cp -r` = **{first.seconds / cp.seconds:.2f}**, cached download / `cp -r` = "
            f"**{dl.seconds / cp.seconds:.2f}**, first log / BLAKE3 = {first.seconds / b3.seconds:.1f}."
            if cat and cp and b3 and first and dl
            else "",
            "",
        ]
    hist = [x for x in (cell(t, "log_change", "history") for t in ("ours", "wandb", "dvc", "mlflow")) if x]
    if hist:
        ours = hist[0]
        lines += [
            "### 10-version history: 10,000 x 4 KiB, 1% (100 files) rewritten per version",
            "",
            "Median of logging the changed directory, over the 9 versions after v0 for this project and over "
            f"the first {b.args.runs} for the peers (they are slow).",
            "",
            "| | this project | W&B offline | DVC | MLflow |",
            "|---|---|---|---|---|",
            "| log after a 1% change | "
            + " | ".join(show(cell(t, "log_change", "history")) for t in ("ours", "wandb", "dvc", "mlflow"))
            + " |",
            "| peer / ours | — | "
            + " | ".join(ratio(cell(t, "log_change", "history"), ours) for t in ("wandb", "dvc", "mlflow"))
            + " |",
            "| re-log of the same directory, unchanged, after each version | "
            + show(cell("ours", "relog", "history"))
            + " | | | |",
            "",
        ]
    big_hist = cell("ours", "log_change", "history100k")
    if big_hist:
        lines += [
            "### 6-version history: 100,000 x 1 KiB, the same 100 files (0.1%) rewritten per version",
            "",
            f"This project only, median over the 5 versions after v0: {show(big_hist)} (a re-log of "
            f"the same directory unchanged, after each version: {show(cell('ours', 'relog', 'history100k'))}).",
            "",
        ]
    lin = [x for x in (cell("ours", o, "lineage") for o in ("lineage_all", "lineage_chain")) if x]
    if lin:
        lines += ["### Lineage over a 1,000-run history", "", "| query | time · peak RSS | graph |", "|---|---|---|"]
        for x, label in zip(
            lin,
            (
                "`lineage('raw:v0', 'downstream', collapse='group')` — the whole history",
                "`lineage('chain:latest', 'upstream', collapse='explode')` — a 500-step chain",
            ),
            strict=False,
        ):
            s = x.samples[-1]
            lines.append(f"| {label} | {show(x)} | {s.get('nodes')} nodes, {s.get('edges')} edges |")
        lines += [
            "",
            "No peer has an equivalent offline query (W&B needs its server; DVC and MLflow record no "
            "artifact lineage), so this row has no comparison.",
            "",
        ]
    if scale:
        per_entry = (scale["first_log_rss_kib"] - scale["base_rss_kib"]) * 1024 / scale["entries"]
        lines += [
            f"### Scale: one artifact of {scale['entries']:,} entries",
            "",
            "| step | time |",
            "|---|---|",
            f"| first log | {fmt_s(scale['first_log'])} |",
            f"| re-log unchanged | {fmt_s(scale['relog'])} |",
            f"| log after changing 1,000 files | {fmt_s(scale['log_change'])} |",
            f"| diff of the two versions ({scale['diff_modified']:,} modified found) | {fmt_s(scale['diff'])} |",
            f"| download of prefix `d0000/` ({scale['prefix_files']:,} files) | {fmt_s(scale['download_prefix'])} |",
            f"| load + validate the manifest ({_stored_manifest(scale)}) | {fmt_s(scale['manifest_load'])} |",
            "",
            f"Peak RSS of the whole sequence: {scale['rss_kib'] / 1024:.0f} MiB; after the first log "
            f"{scale['first_log_rss_kib'] / 1024:.0f} MiB, i.e. **{per_entry:.0f} bytes per entry** above the "
            f"process's {scale['base_rss_kib'] / 1024:.0f} MiB baseline.",
            "",
        ]
    lines += targets(b, scale)
    return "\n".join(lines)


def targets(b: Bench, scale: dict[str, Any] | None) -> list[str]:
    """The issue's targets, checked against this run's medians."""
    c = b.cells

    def sec(tool: str, op: str, w: str) -> float | None:
        x = c.get((tool, op, w))
        return x.seconds if x is not None else None

    rows: list[tuple[str, str, bool | None]] = []

    def ratio_row(label: str, num: float | None, den: float | None, ok: Any, fmt: str = "{:.1f}x") -> None:
        if num is None or den is None or den == 0:
            rows.append((label, "not measured", None))
            return
        r = num / den
        rows.append((label, fmt.format(r), bool(ok(r))))

    for w in ("small10k", "big"):
        ratio_row(
            f"first log ≥ 5x faster than W&B ({w})",
            sec("wandb", "first_log", w),
            sec("ours", "first_log", w),
            lambda r: r >= 5,
        )
    for w in ("small10k", "small100k", "big"):
        ratio_row(
            f"first log within 2x of `cp -r` ({w})",
            sec("ours", "first_log", w),
            sec("limit", "cp", w),
            lambda r: r <= 2,
            "{:.2f}",
        )
    for w in ("small10k", "small100k", "big"):
        ratio_row(
            f"re-log unchanged ≥ 50x faster than W&B ({w})",
            sec("wandb", "relog", w),
            sec("ours", "relog", w),
            lambda r: r >= 50,
        )
    # What a change costs beyond a re-log (of the same directory, logged again unchanged right
    # after each version: the median of the per-version differences), as a share of what a first
    # log costs beyond a re-log: 100 changed files are 1% of the 10,000-file history and 0.1% of
    # the 100,000-file one.
    for hist_w, base_w, label in (
        ("history", "small10k", "1% change (100 of 10,000 files)"),
        ("history100k", "small100k", "0.1% change (100 of 100,000 files)"),
    ):
        change, relog, first = (
            sec("ours", "log_change", hist_w),
            sec("ours", "relog", hist_w),
            sec("ours", "first_log", base_w),
        )
        base_relog = sec("ours", "relog", base_w)
        changes, relogs = (c.get(("ours", op, hist_w)) for op in ("log_change", "relog"))
        if (
            changes
            and relogs
            and change is not None
            and relog is not None
            and first is not None
            and base_relog is not None
        ):
            pairs = zip(changes.samples, relogs.samples, strict=True)
            extra = max(statistics.median(a["seconds"] - b["seconds"] for a, b in pairs), 0.0)
            share = extra / max(first - base_relog, 1e-9)
            rows.append(
                (
                    f"log after a {label} proportional to the change",
                    f"{fmt_s(change)}, a re-log of the same {fmt_s(relog)}: {fmt_s(extra)} more (median of the "
                    f"per-version differences; {share:.1%} of what a first log costs beyond a re-log)",
                    share <= 0.03,
                )
            )
    for w in ("small10k", "small100k", "big"):
        ratio_row(
            f"cached download within 1.5x of `cp -r` ({w})",
            sec("ours", "download_cached", w),
            sec("limit", "cp", w),
            lambda r: r <= 1.5,
            "{:.2f}",
        )
    big = c.get(("ours", "first_log", "big"))
    if big is not None and big.samples:
        s = sorted(big.samples, key=lambda s: s["seconds"])[len(big.samples) // 2]
        above = (s["rss_kib"] - s["base_rss_kib"]) / 1024
        rows.append(
            (
                "memory flat in file size (first log of the 1 GiB file: peak RSS above baseline ≤ 1/8 of the file)",
                f"{above:.0f} MiB",
                above <= 1024 / 8,
            )
        )
    for op, what in (("first_log", "first log"), ("download_cached", "cached download")):
        many = c.get(("ours", op, "small100k"))
        if many is not None and many.samples:
            s = sorted(many.samples, key=lambda s: s["seconds"])[len(many.samples) // 2]
            per = (s["rss_kib"] - s["base_rss_kib"]) * 1024 / s["entries"]
            rows.append(
                (
                    f"≤ 1 KiB per manifest entry ({what} of {s['entries']:,} files, peak RSS above baseline)",
                    f"{per:.0f} bytes",
                    per <= 1024,
                )
            )
    if scale:
        per = (scale["first_log_rss_kib"] - scale["base_rss_kib"]) * 1024 / scale["entries"]
        label = f"≤ 1 KiB per manifest entry (first log of {scale['entries']:,} entries)"
        rows.append((label, f"{per:.0f} bytes", per <= 1024))
        rows.append(
            (
                f"{scale['entries']:,} entries: log, diff, prefix download without running out of memory",
                f"peak {scale['rss_kib'] / 1024:.0f} MiB",
                True,
            )
        )
    out = ["### Targets", "", "| target | this run | met |", "|---|---|---|"]
    out += [f"| {label} | {value} | {'yes' if ok else 'no' if ok is not None else '—'} |" for label, value, ok in rows]
    return [*out, ""]


def write_results(text: str) -> None:
    body = f"{BEGIN}\n{text}\n{END}"
    if RESULTS.exists() and BEGIN in RESULTS.read_text():
        old = RESULTS.read_text()
        new = old[: old.index(BEGIN)] + body + old[old.index(END) + len(END) :]
    else:
        new = "# Benchmark results\n\n    benchmarks/setup-peers && python benchmarks/run_all.py\n\n" + body + "\n"
    RESULTS.write_text(new)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--quick", action="store_true", help="tiny workloads: checks the suite, not the speed")
    p.add_argument(
        "--only", default="", help="comma-separated workloads: small10k,small100k,big,history,history100k,lineage,scale"
    )
    p.add_argument("--no-peers", action="store_true")
    p.add_argument("--no-scale", action="store_true")
    p.add_argument(
        "--cell-budget",
        type=float,
        default=30.0,
        help="seconds a slow peer cell may take: it stops at 3 runs past this, or at 1 run past twice this",
    )
    p.add_argument("--data", default=str(HERE / ".data"), help="where generated data and scratch stores live")
    p.add_argument("--no-write", action="store_true", help="do not touch RESULTS.md / results.json")
    args = p.parse_args()
    q = args.quick
    workloads = [
        Workload("small10k", 200 if q else 10_000, 4096, 100 if not q else 10, "small10k"),
        Workload("small100k", 500 if q else 100_000, 1024, 100 if not q else 10, "small100k"),
        Workload("big", 1, (16 if q else 1024) * 2**20, 1, "big"),
    ]
    history = Workload("history", 200 if q else 10_000, 4096, 100 if not q else 10, "history")
    # The 100,000 x 1 KiB shape of small100k, so its first log and re-log are the baseline.
    history_100k = Workload("history100k", 500 if q else 100_000, 1024, 100 if not q else 10, "history100k")
    scale_w = Workload("scale", 5_000 if q else 1_000_000, 32, 100 if q else 1000, "scale", distinct=1000)
    only = set(filter(None, args.only.split(",")))
    peers = not args.no_peers
    if peers and not PEERS_PY.exists():
        sys.exit("peers are not installed: run benchmarks/setup-peers first (or pass --no-peers)")
    data = Path(args.data).resolve()
    src_root = data / ("src-quick" if q else "src")
    work = data / "work"
    rm(work)
    work.mkdir(parents=True)
    b = Bench(args, work)
    meta: dict[str, Any] = {
        "started": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "load_start": " / ".join(f"{x:.2f}" for x in os.getloadavg()),
        "machine": machine(),
    }
    t0 = time.perf_counter()
    b.say(f"machine: {meta['machine']}\nload: {meta['load_start']}")
    chosen = [w for w in workloads if not only or w.name in only]
    for w in chosen:
        t = time.perf_counter()
        generate(src_root / w.name, w)
        b.say(f"data {w.name} ready ({time.perf_counter() - t:.1f} s)")
    time.sleep(1.2)
    global TRASH, RELEASE
    TRASH = work / ".trash"
    settle(b)
    for w in chosen:
        RELEASE = w.files == 1  # a GiB per run and tool: released before each clock (see release())
        bench_workload(b, w, src_root, peers)
        RELEASE = False
        settle(b)
    if not only or "history" in only:
        bench_history(b, history, src_root, peers)
        settle(b)
    if not only or "history100k" in only:
        bench_history(b, history_100k, src_root, False, versions=5)
        settle(b)
    if not only or "lineage" in only:
        bench_lineage(b, 100 if q else 1000)
        settle(b)
    scale = None
    if not args.no_scale and (not only or "scale" in only):
        scale = bench_scale(b, scale_w, src_root)
    TRASH = None
    meta["finished"] = datetime.now(UTC).strftime("%H:%M UTC")
    meta["minutes"] = (time.perf_counter() - t0) / 60
    meta["load_end"] = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    text = report(b, chosen, scale, meta)
    print("\n" + text)
    if not args.no_write and not q:
        write_results(text)
        (HERE / "results.json").write_text(
            json.dumps(
                {"meta": meta, "cells": [asdict(c) for c in b.cells.values()], "scale": scale}, indent=1, default=str
            )
        )
    rm(work)


if __name__ == "__main__":
    main()
