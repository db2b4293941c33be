"""Web viewer speed: the JSON endpoints and a real Chromium page load on a large registry.

    python benchmarks/bench_web.py [--versions 10000] [--pipelines 50] [--files 1000] [--no-browser]

Builds, in a scratch directory, a registry with ``--versions`` committed versions and a lineage
neighbourhood of about ``10 * pipelines + 2`` nodes (500 by default) around ``raw-data:v0``:

* one ingest run logs ``raw-data:v0``; each of ``--pipelines`` pipeline groups (a flow run) has a
  preprocess step (uses raw-data, logs ``dataset-<i>``), two train steps (use it, log a model) and
  two evaluate steps (use a model, log a report) -- all through ``Registry`` methods;
* ``corpus`` v0/v1: real artifacts of ``--files`` files each (manifest listing, download, diff);
* the rest as filler: one collection of half the remaining versions (a long version list with an
  alias history as long) and collections of 100 versions -- inserted in bulk through
  ``Registry.write`` (what commits would leave, minus blobs nobody opens).

Then serves ``create_app()`` with uvicorn (its own process) on loopback and prints, per endpoint, the cold (first)
and median warm wall time over HTTP; and, in headless Chromium (``/usr/bin/chromium``), the time
from navigation to a fully drawn page: home, a version page, and its lineage collapsed (default)
and exploded (every run and version).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    a
    for a in (Path(__file__).resolve().parents[1] / "scripts" / "lib" / "chromium-args").read_text().split("\n")
    if a[:1] == "-"
]
PROJECT = "bench"


def fake_digest(n: int) -> str:
    """A unique, well-formed version digest for filler rows."""
    return "blake3:" + f"{n:064x}"


def build_lineage(registry: Any, pipelines: int) -> int:
    """The 500-node neighbourhood around raw-data:v0, through Registry methods. Returns versions made."""
    made = 0

    def run(key: str, job: str, group: str | None) -> str:
        return str(
            registry.ensure_run(
                run_key=key,
                orchestrator="prefect",
                job_type=job,
                name=key,
                group=group,
                entity="default",
                project=PROJECT,
                url=f"https://prefect.example/runs/{key}",
                group_url=None,
                step={"task_name": job, "flow_name": "pipeline"},
            ).id
        )

    def log(run_id: str, name: str, type_: str, n: int) -> int:
        nonlocal made
        made += 1
        res = registry.commit_version(
            entity="default",
            project=PROJECT,
            name=name,
            type=type_,
            digest=fake_digest(n),
            manifest_key=f"manifests/none/{n}.json.gz",
            size=1000 + n,
            file_count=3,
            description=f"{name} from {run_id}",
            metadata={"n": n},
            aliases=[],
            tags=[],
            run_id=run_id,
        )
        registry.finish_run(run_id, "finished")
        return int(res.version.id)

    raw = log(run("ingest", "ingest", None), "raw-data", "raw", 1)
    n = 10
    for i in range(pipelines):
        group = f"flow-run-{i:03d}"
        pre = run(f"{group}/preprocess", "preprocess", group)
        registry.record_use(pre, raw)
        ds = log(pre, f"dataset-{i}", "dataset", n := n + 1)
        for j in range(2):
            train = run(f"{group}/train-{j}", "train", group)
            registry.record_use(train, ds)
            model = log(train, f"model-{i}", "model", n := n + 1)
            ev = run(f"{group}/evaluate-{j}", "evaluate", group)
            registry.record_use(ev, model)
            log(ev, f"report-{i}", "report", n := n + 1)
    return made


def build_corpus(files: int, work: Path) -> None:
    """Two real versions of a ``files``-file dataset (one changed, one renamed, one added)."""
    import artifact_plugins as ap

    src = work / "corpus"
    for i in range(files):
        p = src / f"part-{i // 100:02d}" / f"file-{i:05d}.txt"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(f"row {i}\n")
    with ap.init(job_type="corpus", project=PROJECT) as r:
        r.log_artifact(_corpus(src))
    (src / "part-00" / "file-00000.txt").write_text("changed\n")
    (src / "part-00" / "file-00001.txt").rename(src / "part-00" / "renamed.txt")
    (src / "new.txt").write_text("new\n")
    with ap.init(job_type="corpus", project=PROJECT) as r:
        r.log_artifact(_corpus(src))


def _corpus(src: Path) -> Any:
    import artifact_plugins as ap

    art = ap.Artifact("corpus", "dataset", description="benchmark corpus", metadata={"files": "many"})
    art.add_dir(src)
    return art


def build_filler(registry: Any, count: int) -> None:
    """``count`` more versions in bulk: half in one long collection, the rest in collections of 100."""
    from sqlalchemy import insert, select, update

    from artifact_plugins.core.registry import models as m

    big = count // 2
    sizes = [big] + [100] * ((count - big) // 100)
    sizes[-1] += count - sum(sizes)
    now = datetime.now(UTC)
    base = 1_000_000
    for ci, size in enumerate(sizes):
        name = "big-collection" if ci == 0 else f"filler-{ci:03d}"
        first = registry.commit_version(
            entity="default",
            project=PROJECT,
            name=name,
            type="filler" if ci else "table",
            digest=fake_digest(base),
            manifest_key="manifests/none.json.gz",
            size=1,
            file_count=1,
            description=None,
            metadata={},
            aliases=[],
            tags=[],
            run_id=None,
        )
        base += 1
        coll_id = first.version.collection_id

        def fn(conn: Any, coll_id: int = coll_id, size: int = size, start: int = base) -> None:
            rows = [
                {
                    "collection_id": coll_id,
                    "index": k,
                    "digest": fake_digest(start + k),
                    "manifest_key": "m",
                    "size": 100 + k,
                    "file_count": 1,
                    "state": "committed",
                    "description": None,
                    "metadata": {"k": k},
                    "created_at": now,
                    "ttl_seconds": None,
                    "created_by": None,
                }
                for k in range(1, size)
            ]
            if rows:
                conn.execute(insert(m.Version), rows)
            q = select(m.Version.index, m.Version.id).where(m.Version.collection_id == coll_id)
            ids = {index: vid for index, vid in conn.execute(q)}
            events = [
                {
                    "collection_id": coll_id,
                    "alias": "latest",
                    "version_id": ids[k],
                    "previous_version_id": ids[k - 1],
                    "at": now,
                    "run_id": None,
                }
                for k in range(1, size)
            ]
            if events:
                conn.execute(insert(m.AliasEvent), events)
            conn.execute(
                update(m.Alias)
                .where(m.Alias.collection_id == coll_id, m.Alias.alias == "latest")
                .values(version_id=ids[size - 1])
            )
            conn.execute(update(m.Collection).where(m.Collection.id == coll_id).values(next_index=size))

        registry.write(fn)
        base += size


def serve() -> tuple[subprocess.Popen[bytes], int]:
    """``uvicorn --factory artifact_plugins.web:create_app`` in its own process on a free loopback port."""
    import httpx

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "artifact_plugins.web:create_app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ]
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{port}/static/favicon.svg", timeout=1)
            return proc, port
        except httpx.HTTPError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError("the web app did not start") from None
            time.sleep(0.1)


def time_endpoints(port: int, runs: int) -> list[tuple[str, float, float, int]]:
    """(path, cold ms, median warm ms, response bytes) per endpoint."""
    import httpx

    q = "default/bench"
    paths = [
        "api/projects",
        f"api/projects/{q}/collections",
        f"api/collections/{q}/big-collection",
        f"api/collections/{q}/big-collection?offset=4000&limit=100",
        f"api/versions/{q}/big-collection/latest",
        f"api/versions/{q}/raw-data/v0",
        f"api/versions/{q}/corpus/v1/files",
        f"api/versions/{q}/corpus/v1/files?path=part-05",
        f"api/versions/{q}/corpus/v1/download/part-05/file-00500.txt",
        f"api/diff/{q}/corpus?from=v0&to=v1",
        "api/runs",
        "api/runs?group=flow-run-007",
        f"api/lineage?ref={q}/raw-data:v0&depth=3&collapse=type",
        f"api/lineage?ref={q}/raw-data:v0&depth=3&collapse=group",
        f"api/lineage?ref={q}/raw-data:v0&depth=3&collapse=explode",
        f"api/lineage?ref={q}/raw-data:v0&collapse=explode",
        f"api/lineage?ref={q}/model-7:v0&depth=3&collapse=type",
        "",
    ]
    out = []
    with httpx.Client(base_url=f"http://127.0.0.1:{port}/", timeout=60) as client:
        for p in paths:
            t = time.perf_counter()
            r = client.get(p)
            cold = time.perf_counter() - t
            r.raise_for_status()
            warm = []
            for _ in range(runs):
                t = time.perf_counter()
                client.get(p).raise_for_status()
                warm.append(time.perf_counter() - t)
            out.append((p or "/ (page)", cold * 1000, statistics.median(warm) * 1000, len(r.content)))
    return out


def time_browser(port: int, runs: int) -> list[tuple[str, float, float, str]]:
    """(view, median wall ms from ``goto`` to drawn, median in-page ms since navigation start, detail)."""
    from playwright.sync_api import sync_playwright

    base = f"http://127.0.0.1:{port}/"
    q = "default/bench/raw-data/v0"
    views = [
        ("home (projects)", base, "body[data-ready='1']"),
        ("version page", f"{base}versions/{q}", "body[data-view='version'][data-ready='1']"),
        ("lineage, collapsed (default)", f"{base}#/versions/{q}?tab=lineage", "#lineage[data-ready='1']"),
        ("lineage, by group", f"{base}#/versions/{q}?tab=lineage&collapse=group", "#lineage[data-ready='1']"),
        ("lineage, exploded", f"{base}#/versions/{q}?tab=lineage&collapse=explode", "#lineage[data-ready='1']"),
    ]
    out = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        for label, url, ready in views:
            walls, inpage, detail = [], [], ""
            for _ in range(runs):
                page = context.new_page()
                t = time.perf_counter()
                page.goto(url)
                page.wait_for_selector(ready, timeout=60_000)
                walls.append((time.perf_counter() - t) * 1000)
                timings = page.evaluate("window.artifactsViewer.timings")
                lin = timings.get("lineage")
                inpage.append(lin["drawnAt"] if lin else timings["readyAt"])
                if lin:
                    detail = (
                        f"{lin['nodes']} nodes/{lin['edges']} edges: fetch {lin['fetchMs']:.0f} ms, "
                        f"layout+draw {lin['layoutAndDrawMs']:.0f} ms"
                    )
                page.close()
            out.append((label, statistics.median(walls), statistics.median(inpage), detail))
        browser.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--versions", type=int, default=10_000)
    parser.add_argument("--pipelines", type=int, default=50)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-browser", action="store_true")
    parser.add_argument("--keep", type=Path, help="build the registry here and keep it")
    args = parser.parse_args()

    work = args.keep or Path(tempfile.mkdtemp(prefix="ap-bench-web-"))
    work.mkdir(parents=True, exist_ok=True)
    os.environ["ARTIFACT_PLUGINS_STORE"] = str(work / "store")
    os.environ["ARTIFACT_PLUGINS_REGISTRY"] = f"sqlite:///{work / 'registry.db'}"
    os.environ["ARTIFACT_PLUGINS_CACHE_DIR"] = str(work / "cache")
    os.environ["ARTIFACT_PLUGINS_CONFIG"] = str(work / "none.toml")
    os.environ["ARTIFACT_PLUGINS_PROJECT"] = PROJECT
    os.chdir(work)
    try:
        import artifact_plugins as ap
        from artifact_plugins.core.client import get_client

        registry = get_client(ap.Settings.resolve()).registry
        t = time.perf_counter()
        fresh = not registry.projects()
        if fresh:
            made = build_lineage(registry, args.pipelines)
            build_corpus(args.files, work)
            build_filler(registry, max(0, args.versions - made - 2))
        total = sum(c.version_count for c in registry.collections("default", None, None))
        print(
            f"registry: {total} versions ({'built' if fresh else 'reused'} in {time.perf_counter() - t:.1f} s) "
            f"at {work}",
            flush=True,
        )

        server, port = serve()
        try:
            print(f"\n{'endpoint':<70} {'cold ms':>8} {'warm ms':>8} {'bytes':>9}")
            for path, cold, warm, size in time_endpoints(port, args.runs):
                print(f"{path:<70} {cold:8.1f} {warm:8.1f} {size:9d}")
            if not args.no_browser:
                print(f"\n{'Chromium: navigation -> drawn (median)':<40} {'wall ms':>8} {'in-page':>8}  detail")
                for label, wall, inpage, detail in time_browser(port, args.runs):
                    print(f"{label:<40} {wall:8.0f} {inpage:8.0f}  {detail}")
        finally:
            server.terminate()
            server.wait(10)
        print(f"\nload average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (numbers scale with contention)")
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
