"""One measured operation per process, for ``run_all.py``.

    python bench_ops.py OP '<json args>'

Runs in the project's environment (``ours_*``, ``blake3_*``) or in the peers' environment
(``wandb_*``, ``dvc_*``, ``mlflow_*``, built by ``benchmarks/setup-peers``). Imports happen
before the clock starts; the last line printed is JSON:
``{"seconds": <the operation>, "rss_kib": <peak RSS, self and waited children>,
"base_rss_kib": <peak RSS before the operation>, ...}``.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _rss() -> int:
    """Peak RSS (KiB) of this process image and of the children it waited for.

    ``VmHWM`` rather than ``ru_maxrss``: the latter carries over the parent's RSS at fork/exec
    time, so a process started by a big harness would report the harness's size.
    """
    own = 0
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                own = int(line.split()[1])
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, kids)


#: What the process prints, when ``BENCH_HANDSHAKE`` is set, once it is ready to start its clock;
#: it then waits for a line on stdin (``run_all.release`` empties the trash meanwhile).
READY = "bench-ops: ready"


class Clock:
    """Times the operation proper; ``extra`` collects whatever else the op wants to report."""

    def __init__(self) -> None:
        self.start = self.stop = 0.0
        self.base_rss = 0
        self.extra: dict[str, Any] = {}

    def __enter__(self) -> Clock:
        if os.environ.pop("BENCH_HANDSHAKE", None):  # run_all.release(): told when to start
            print(READY, flush=True)
            sys.stdin.readline()
        self.base_rss = _rss()
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop = time.perf_counter()


# -- this project ---------------------------------------------------------------------------------


def _ours_env(a: dict[str, Any]) -> None:
    home = Path(a["home"])
    os.environ["ARTIFACT_PLUGINS_STORE"] = str(home / "store")
    os.environ["ARTIFACT_PLUGINS_REGISTRY"] = f"sqlite:///{home / 'registry.db'}"
    os.environ["ARTIFACT_PLUGINS_CACHE_DIR"] = str(home / "cache")
    os.environ["ARTIFACT_PLUGINS_CONFIG"] = str(home / "no-config.toml")
    os.environ["ARTIFACT_PLUGINS_PROJECT"] = "bench"


def _ours_ready() -> None:
    """Import what the package loads lazily and open (migrate) the registry before the clock starts.

    The peers get the same treatment: ``import wandb`` + ``wandb.init()`` and ``import mlflow`` +
    ``start_run()`` happen before their clocks too.
    """
    import artifact_plugins.core.api
    import artifact_plugins.core.run
    import artifact_plugins.core.transfer  # noqa: F401
    from artifact_plugins.core.client import get_client

    client = get_client()
    client.registry  # noqa: B018
    client.checksum_cache._connect()


def _non_local(client: Any) -> None:
    """Make the client's store a bucket store whose objects are the local store's files.

    :func:`_file_bucket`: downloads then take the path S3 and GCS downloads take, minus the network.
    """
    client.__dict__["store"] = _file_bucket(client.settings.store)


#: What :func:`_file_bucket` reads a large object in, as :class:`~artifact_plugins.core.storage.s3.S3Store`
#: does by default (``multipart_chunksize``, ``max_concurrency``).
_PART_BYTES, _PART_WORKERS = 16 * 2**20, 16
#: What :func:`_file_bucket` reads of a part at a time (``s3._READ_CHUNK``).
_READ_BYTES = 2**20


def _file_bucket(root: str) -> Any:
    """A :class:`~artifact_plugins.core.storage.RemoteStore` whose objects are the files of the local
    store at ``root``.

    Everything above the bucket's primitives is the code S3 and GCS run: small blobs read whole
    through the download cache, on the store's transfer threads; a large blob read in parallel
    ranged parts written straight to its destination and hashed part by part as they land. The
    primitives are file reads and writes where a bucket would answer requests.
    """
    from artifact_plugins.core.storage import DEFAULT_TRANSFER_WORKERS, ObjectPage, RemoteStore, parallel_map
    from artifact_plugins.core.storage.local import LocalStore

    files = LocalStore(root)

    class FileBucket(RemoteStore):
        scheme = "file-bucket"

        def _file(self, full_key: str) -> str:
            return str(files.local_path(full_key))

        def _stat(self, full_key: str) -> float | None:
            try:
                return os.stat(self._file(full_key)).st_mtime
            except FileNotFoundError:
                return None

        def _list(self, prefix: str, start: str | None = None) -> Any:
            names = sorted(
                (o.key, o.size, o.mtime) for o in files.iter_objects(prefix) if start is None or o.key >= start
            )
            for k in range(0, len(names), self.page_size):
                page: ObjectPage = names[k : k + self.page_size]
                yield page

        def _upload_bytes(self, full_key: str, data: bytes) -> None:
            if not files.has(full_key):
                files.put_bytes(full_key, data)

        def _upload_file(self, full_key: str, src: str, size: int, on_bytes: Any) -> None:
            files.put_file(full_key, src)

        def _download(self, full_key: str, dest: str, size: int | None, on_bytes: Any, on_part: Any = None) -> None:
            src = os.open(self._file(full_key), os.O_RDONLY)
            out = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                total = os.fstat(src).st_size if size is None else size
                os.ftruncate(out, total)

                def part(start: int) -> None:
                    end, pos = min(start + _PART_BYTES, total), start
                    while pos < end:  # a chunk at a time, as a bucket's response body is read
                        view = memoryview(os.pread(src, min(_READ_BYTES, end - pos), pos))
                        if not view:
                            raise EOFError(f"{full_key} ends at {pos} bytes where {total} were expected")
                        if on_bytes is not None:
                            on_bytes(len(view))
                        while view:
                            n = os.pwrite(out, view, pos)
                            pos, view = pos + n, view[n:]
                    if on_part is not None:
                        on_part(start, end)

                parallel_map(part, list(range(0, total, _PART_BYTES)), _PART_WORKERS)
            finally:
                os.close(src)
                os.close(out)

        def _read(self, full_key: str) -> bytes:
            return files.get_bytes(full_key)

        def _delete(self, full_key: str) -> None:
            files.delete(full_key)

        def _describe(self, exc: BaseException) -> tuple[str, bool]:
            return str(exc), isinstance(exc, FileNotFoundError)

    return FileBucket("bench", "", DEFAULT_TRANSFER_WORKERS)


def ours_log(a: dict[str, Any], clock: Clock) -> None:
    """Artifact + add_dir/add_file + init + log_artifact + finish."""
    _ours_env(a)
    import artifact_plugins as ap

    _ours_ready()
    src = a["src"]
    with clock:
        art = ap.Artifact(a["name"], "dataset")
        if os.path.isdir(src):
            art.add_dir(src)
        else:
            art.add_file(src)
        with ap.init(job_type="bench") as run:
            v = run.log_artifact(art)
    clock.extra.update(version=v.version, entries=v.file_count)


def ours_download(a: dict[str, Any], clock: Clock) -> None:
    """Api().artifact(name:latest).download(dest); ``cold``: from a bucket store over the same files
    (:func:`_file_bucket`)."""
    _ours_env(a)
    import artifact_plugins as ap
    from artifact_plugins.core.client import get_client

    _ours_ready()
    with clock:
        api = ap.Api()
        if a.get("cold"):
            _non_local(get_client(api.settings))
        v = api.artifact(f"{a['name']}:latest")
        v.download(a["dest"], path_prefix=a.get("prefix"))
    clock.extra["entries"] = v.file_count


def ours_use_download(a: dict[str, Any], clock: Clock) -> None:
    """init + use_artifact(name:latest) + download + finish (a consuming pipeline step)."""
    _ours_env(a)
    import artifact_plugins as ap

    _ours_ready()
    with clock, ap.init(job_type="consume") as run:
        run.use_artifact(f"{a['name']}:latest").download(a["dest"])


def ours_lineage(a: dict[str, Any], clock: Clock) -> None:
    """Api().lineage(ref, direction, depth=None)."""
    _ours_env(a)
    import artifact_plugins as ap

    _ours_ready()
    with clock:
        g = ap.Api().lineage(a["ref"], direction=a["direction"], depth=None, collapse=a.get("collapse", "group"))
    clock.extra.update(nodes=len(g.nodes), edges=len(g.edges))


def ours_build_lineage(a: dict[str, Any], clock: Clock) -> None:
    """Untimed set-up: a 1,000-run history (see run_all.py for its shape)."""
    _ours_env(a)
    import artifact_plugins as ap

    runs = a["runs"]
    chain = runs // 2
    with clock:
        art = ap.Artifact("raw", "dataset")
        with art.new_file("seed.txt") as f:
            f.write("seed")
        with ap.init(job_type="ingest") as run:
            run.log_artifact(art)
        # a chain: step i uses chain:v(i-1) (raw:v0 for i=0) and logs chain:vi
        prev = "raw:latest"
        for i in range(chain):
            with ap.init(job_type="refine", group=f"flow-{i // 10}") as run:
                run.use_artifact(prev)
                art = ap.Artifact("chain", "dataset")
                with art.new_file("step.txt") as f:
                    f.write(str(i))
                run.log_artifact(art)
            prev = "chain:latest"
        # a fan-out: many steps each use raw:v0 and log their own report
        for i in range(runs - chain - 1):
            with ap.init(job_type="evaluate", group=f"eval-{i // 10}") as run:
                run.use_artifact("raw:v0")
                art = ap.Artifact(f"report-{i % 20}", "report")
                with art.new_file("r.txt") as f:
                    f.write(str(i))
                run.log_artifact(art)


def ours_scale(a: dict[str, Any], clock: Clock) -> None:
    """The 1,000,000-entry artifact: first log, re-log, log after a change, diff, prefix download."""
    _ours_env(a)
    import artifact_plugins as ap

    src, name, timings = a["src"], a["name"], {}
    _ours_ready()

    def log() -> Any:
        art = ap.Artifact(name, "dataset")
        art.add_dir(src)
        with ap.init(job_type="bench") as run:
            return run.log_artifact(art)

    with clock:
        t = time.perf_counter()
        v0 = log()
        timings["first_log"] = time.perf_counter() - t
        timings["first_log_rss_kib"] = _rss()
        t = time.perf_counter()
        log()
        timings["relog"] = time.perf_counter() - t
        # change 0.1% of the files (1,000): what a nightly refresh of a huge dataset looks like
        files = sorted(Path(src).rglob("*"))
        changed = [p for p in files if p.is_file()][:: max(1, len(files) // 1000)][:1000]
        for p in changed:
            p.write_bytes(p.read_bytes() + b"+")
        t = time.perf_counter()
        v1 = log()
        timings["log_change"] = time.perf_counter() - t
        t = time.perf_counter()
        d = v1.diff(v0)
        timings["diff"] = time.perf_counter() - t
        timings["diff_modified"] = len(d.modified)
        api = ap.Api()
        prefix = a["prefix"]
        t = time.perf_counter()
        api.artifact(f"{name}:latest").download(a["dest"], path_prefix=prefix)
        timings["download_prefix"] = time.perf_counter() - t
        timings["prefix_files"] = sum(len(fs) for _, _, fs in os.walk(a["dest"]))
        # a fresh process would parse the manifest: time that too
        from artifact_plugins.core.client import get_client

        client = get_client(api.settings)
        client._manifests.clear()
        t = time.perf_counter()
        record = api.artifact(f"{name}:latest")._record
        m = client.manifest(record)
        timings["manifest_load"] = time.perf_counter() - t
        timings["entries"] = len(m)
        stored = Path(client.settings.store) / record.manifest_key
        timings["manifest_bytes"] = os.path.getsize(stored)
        from artifact_plugins.core.errors import InvalidInputError
        from artifact_plugins.core.manifest import read_delta_outline
        from artifact_plugins.core.storage import manifest_key

        try:  # the latest version's manifest may be a delta: what was read is then it and its base
            base = read_delta_outline(stored.read_bytes()).base
            timings["manifest_base_bytes"] = os.path.getsize(Path(client.settings.store) / manifest_key(base))
        except InvalidInputError:  # stored whole
            pass
        for p in changed:  # restore the data set for the next invocation
            p.write_bytes(p.read_bytes()[:-1])
    clock.extra.update(timings)


def blake3_hash(a: dict[str, Any], clock: Clock) -> None:
    """BLAKE3 over the same bytes: one read per small file, mmap + BLAKE3's threads for large ones."""
    from blake3 import blake3

    src = a["src"]
    paths = [src] if os.path.isfile(src) else sorted(os.path.join(d, f) for d, _, fs in os.walk(src) for f in fs)
    with clock:
        for p in paths:
            if os.path.getsize(p) >= 4 * 2**20:
                h = blake3(max_threads=blake3.AUTO)
                h.update_mmap(p)
            else:
                with open(p, "rb") as f:
                    h = blake3(f.read())
            h.hexdigest()


# -- W&B SDK, offline -----------------------------------------------------------------------------


def _wandb_env(a: dict[str, Any]) -> None:
    home = Path(a["home"])
    home.mkdir(parents=True, exist_ok=True)
    os.environ.update(
        WANDB_MODE="offline",
        WANDB_DIR=str(home),
        WANDB_CACHE_DIR=str(home / "cache"),
        WANDB_DATA_DIR=str(home / "data"),
        WANDB_CONFIG_DIR=str(home / "config"),
        WANDB_ARTIFACT_DIR=str(home / "artifacts"),
        WANDB_SILENT="true",
        WANDB_CONSOLE="off",
        WANDB_DISABLE_GIT="true",
        WANDB_DISABLE_CODE="true",
        WANDB_ERROR_REPORTING="false",
    )


def wandb_log(a: dict[str, Any], clock: Clock) -> None:
    """wandb.init (before the clock) then Artifact + add_dir/add_file + log_artifact + finish."""
    _wandb_env(a)
    import wandb

    run = wandb.init(project="bench", job_type="bench", settings=wandb.Settings(x_disable_stats=True))
    src = a["src"]
    with clock:
        art = wandb.Artifact(a["name"], type="dataset")
        if os.path.isdir(src):
            art.add_dir(src)
        else:
            art.add_file(src)
        clock.extra["add_seconds"] = time.perf_counter() - clock.start
        run.log_artifact(art)
        run.finish()


# -- DVC ------------------------------------------------------------------------------------------


def _dvc_repo(ws: Path, cache: Path | None, remote: Path | None) -> Any:
    from dvc.repo import Repo

    if not (ws / ".dvc").exists():
        ws.mkdir(parents=True, exist_ok=True)
        Repo.init(str(ws), no_scm=True)
        repo = Repo(str(ws))
        with repo.config.edit() as conf:
            conf["core"]["analytics"] = False
            conf["core"]["autostage"] = False
            conf["core"]["site_cache_dir"] = str(ws / ".dvc" / "site")
            if cache is not None:
                conf["cache"]["dir"] = str(cache)
            if remote is not None:
                conf["remote"]["bench"] = {"url": str(remote)}
                conf["core"]["remote"] = "bench"
        repo.close()
    return Repo(str(ws))


def _discard(path: Path, a: dict[str, Any]) -> None:
    """Remove ``path``: into the harness's trash (a rename) when it has one, so that no bulk
    delete happens right before a measured run (see ``run_all.rm``)."""
    if not (path.exists() or path.is_symlink()):
        return
    trash = a.get("trash")
    if trash and trash != "None":
        Path(trash).mkdir(parents=True, exist_ok=True)
        os.rename(path, Path(trash) / os.urandom(8).hex())
    elif path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink()


def dvc_fresh(a: dict[str, Any], clock: Clock) -> None:
    """Untimed set-up: a new DVC project (no SCM) in ``ws`` with an empty cache and local remote."""
    ws = Path(a["ws"])
    ws.mkdir(parents=True, exist_ok=True)
    os.chdir(ws)
    _discard(ws / ".dvc", a)
    for f in [*ws.glob("*.dvc"), *ws.glob("*/*.dvc")]:
        f.unlink()
    if a.get("remote"):
        _discard(Path(a["remote"]), a)
    cache = Path(a["cache"]) if a.get("cache") else None
    if cache is not None and a.get("wipe_cache"):
        shutil.rmtree(cache, ignore_errors=True)
    _dvc_repo(ws, cache, Path(a["remote"]) if a.get("remote") else None).close()
    with clock:
        pass


def dvc_add_push(a: dict[str, Any], clock: Clock) -> None:
    """``dvc add <target>`` (hash + copy into the cache) then ``dvc push`` to the local remote."""
    os.environ["DVC_NO_ANALYTICS"] = "1"
    os.chdir(a["ws"])
    repo = _dvc_repo(Path(a["ws"]), None, None)
    with clock:
        repo.add(a["target"])
        repo.push()
    repo.close()


def dvc_checkout(a: dict[str, Any], clock: Clock) -> None:
    """Download from the local DVC cache: ``dvc checkout`` (cached) or ``dvc pull`` from the remote (cold)."""
    os.environ["DVC_NO_ANALYTICS"] = "1"
    ws = Path(a["ws"])
    out = ws / Path(a["dvcfile"]).name.removesuffix(".dvc")  # the .dvc file is copied to the workspace root
    _discard(out, a)
    ws.mkdir(parents=True, exist_ok=True)
    os.chdir(ws)
    repo = _dvc_repo(ws, Path(a["cache"]), Path(a["remote"]) if a.get("remote") else None)
    shutil.copy(a["dvcfile"], ws / Path(a["dvcfile"]).name)
    with clock:
        if a.get("pull"):
            repo.pull(targets=[Path(a["dvcfile"]).name])
        else:
            repo.checkout(targets=[Path(a["dvcfile"]).name])
    repo.close()


# -- MLflow ---------------------------------------------------------------------------------------


def _mlflow(a: dict[str, Any]) -> Any:
    import warnings

    warnings.filterwarnings("ignore")
    os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
    # The issue asks for MLflow's local file store; MLflow 3 keeps it behind this switch.
    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
    import mlflow

    mlflow.set_tracking_uri(Path(a["home"]).resolve().as_uri())
    return mlflow


def mlflow_log(a: dict[str, Any], clock: Clock) -> None:
    """start_run (before the clock) then log_artifacts/log_artifact into the local file store + end_run."""
    mlflow = _mlflow(a)
    run = mlflow.start_run()
    src = a["src"]
    with clock:
        if os.path.isdir(src):
            mlflow.log_artifacts(src, artifact_path=a["name"])
        else:
            mlflow.log_artifact(src, artifact_path=a["name"])
        mlflow.end_run()
    Path(a["home"], "last-run").write_text(run.info.run_id)


def mlflow_download(a: dict[str, Any], clock: Clock) -> None:
    """mlflow.artifacts.download_artifacts(run_id, artifact_path, dst_path) from the local file store."""
    mlflow = _mlflow(a)
    run_id = Path(a["home"], "last-run").read_text()
    with clock:
        mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=a["name"], dst_path=a["dest"])


OPS: dict[str, Callable[[dict[str, Any], Clock], None]] = {
    f.__name__: f
    for f in (
        ours_log,
        ours_download,
        ours_use_download,
        ours_lineage,
        ours_build_lineage,
        ours_scale,
        blake3_hash,
        wandb_log,
        dvc_fresh,
        dvc_add_push,
        dvc_checkout,
        mlflow_log,
        mlflow_download,
    )
}


def main() -> None:
    op, args = sys.argv[1], json.loads(sys.argv[2])
    clock = Clock()
    OPS[op](args, clock)
    out = {"seconds": clock.stop - clock.start, "rss_kib": _rss(), "base_rss_kib": clock.base_rss, **clock.extra}
    sys.stdout.flush()
    print("\n" + json.dumps(out))


if __name__ == "__main__":
    main()
