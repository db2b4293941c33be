"""Team mode: concurrent-log throughput (8 processes) on PostgreSQL and SQLite, and the latency
of resolving ``name:latest``.

    python benchmarks/bench_team.py [--pg postgresql+psycopg://postgres@127.0.0.1:5432/postgres]

A throwaway database is created on the PostgreSQL server (and dropped afterwards); the SQLite
registry and the store live in a scratch directory. Each of 8 worker processes logs
``--logs`` small versions (distinct content) of one shared collection as fast as it can.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from pathlib import Path

WORKER = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    import artifact_plugins as ap
    i, n, work = int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
    src = work / f"src-{i}"
    src.mkdir(parents=True, exist_ok=True)
    ap.Api()  # connect (and check the schema) before the clock starts
    (work / f"ready-{i}").touch()
    while not (work / "go").exists():
        time.sleep(0.001)
    for k in range(n):
        f = src / "data.txt"
        f.write_text(f"worker {i} log {k}")
        art = ap.Artifact("shared", "dataset")
        art.add_file(f)
        with ap.init(job_type="bench") as run:
            run.log_artifact(art)
    """
)


def concurrent_logs(registry: str, work: Path, procs: int, logs: int) -> float:
    """Wall seconds for ``procs`` processes to log ``logs`` versions each."""
    env = {
        **os.environ,
        "ARTIFACT_PLUGINS_REGISTRY": registry,
        "ARTIFACT_PLUGINS_STORE": str(work / "store"),
        "ARTIFACT_PLUGINS_CACHE_DIR": str(work / "cache"),
        "ARTIFACT_PLUGINS_CONFIG": str(work / "none.toml"),
    }
    subprocess.run([sys.executable, "-c", "import artifact_plugins as ap; ap.Api()"], env=env, check=True)
    ps = [subprocess.Popen([sys.executable, "-c", WORKER, str(i), str(logs), str(work)], env=env) for i in range(procs)]
    while len(list(work.glob("ready-*"))) < procs:
        time.sleep(0.01)
    t = time.perf_counter()
    (work / "go").touch()
    for p in ps:
        assert p.wait() == 0
    return time.perf_counter() - t


def resolve_latency(registry: str, work: Path, n: int) -> tuple[float, float]:
    """p50 and p99 (ms) of ``Api().artifact('shared:latest')``."""
    os.environ.update(ARTIFACT_PLUGINS_REGISTRY=registry, ARTIFACT_PLUGINS_STORE=str(work / "store"))
    import artifact_plugins as ap
    from artifact_plugins.core import client

    client.close_clients()
    api = ap.Api()
    api.artifact("shared:latest")
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        api.artifact("shared:latest")
        samples.append((time.perf_counter() - t) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.99) - 1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--procs", type=int, default=8)
    parser.add_argument("--logs", type=int, default=25)
    parser.add_argument("--resolves", type=int, default=2000)
    args = parser.parse_args()
    import sqlalchemy

    admin = sqlalchemy.create_engine(args.pg, isolation_level="AUTOCOMMIT")
    db = f"ap_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as c:
        c.exec_driver_sql(f'CREATE DATABASE "{db}"')
    pg_url = args.pg.rsplit("/", 1)[0] + "/" + db
    rows = []
    try:
        for label, make_url in (("PostgreSQL", lambda w: pg_url), ("SQLite", lambda w: f"sqlite:///{w / 'r.db'}")):
            work = Path(tempfile.mkdtemp(prefix="ap-team-"))
            try:
                url = make_url(work)
                secs = concurrent_logs(url, work, args.procs, args.logs)
                total = args.procs * args.logs
                p50, p99 = resolve_latency(url, work, args.resolves)
                rows.append((label, total, secs, total / secs, p50, p99))
            finally:
                shutil.rmtree(work, ignore_errors=True)
    finally:
        from artifact_plugins.core import client

        client.close_clients()
        with admin.connect() as c:
            c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
    print(f"{args.procs} processes x {args.logs} logs each; {args.resolves} resolves of shared:latest")
    print(f"{'registry':<11} {'versions':>8} {'seconds':>8} {'logs/s':>8} {'p50 ms':>8} {'p99 ms':>8}")
    for label, total, secs, rate, p50, p99 in rows:
        print(f"{label:<11} {total:>8} {secs:>8.2f} {rate:>8.1f} {p50:>8.2f} {p99:>8.2f}")


if __name__ == "__main__":
    main()
