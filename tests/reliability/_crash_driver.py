"""Crash-trial driver: ``python _crash_driver.py CONFIG.json``.

Runs in a fresh interpreter that preloads the package once, then forks one child per trial and
SIGKILLs it at a seeded random point; after every kill it forks a clean child that repeats the
same operation to completion. Forked children are separate processes that open their own
registry, store and caches (the driver itself never opens any of them), so a trial costs a
fork, not an interpreter start-up.

Modes (``config["mode"]``):

``log``       the child logs one of the prepared source trees; kill points are either uniform
              over a full log's duration or aimed at a phase of the commit protocol that the child
              announces through a pipe (hashing, run row, blob upload, manifest, registry
              transaction, COMMIT). The clean re-run reports whether the content already existed
              and which version it got, so the test can check it deduplicated.
``download``  the child downloads one version into a shared root; the driver prepares the root
              and cache (wiped, partly deleted, files replaced by same-size garbage) before each
              trial and checks the on-disk invariants after the kill and after the clean re-run.
``migrate``   the child opens a brand-new SQLite registry (first-time schema migration); the
              clean child then opens it and logs.

The driver writes one JSON document with every trial's outcome to ``config["out"]``.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Preload everything a child needs, once (imports only: nothing is opened before a fork).
import alembic.command
import alembic.runtime.migration
import alembic.script
import sqlalchemy.dialects.sqlite
from blake3 import blake3

import artifact_plugins as ap
import artifact_plugins.core.api
import artifact_plugins.core.artifact
import artifact_plugins.core.run
import artifact_plugins.core.transfer

_ = (alembic.command, alembic.runtime.migration, alembic.script, sqlalchemy.dialects.sqlite)
# Every source tree is remembered whole and marked as held by the version it was committed as,
# however small: logs that skip asking the store about held blobs are killed too.
artifact_plugins.core.artifact.TREE_MIN_FILES = 1

PHASES = {
    "a": "building the draft (hashing)",
    "i": "run row written",
    "u": "uploading blobs",
    "m": "writing the manifest",
    "r": "registry transaction",
    "c": "COMMIT of the version",
    "R": "commit returned",
    "d": "done",
}


def fork_child(fn: Callable[[int], None]) -> tuple[int, int]:
    """Fork a child running ``fn(write_fd)``; returns (pid, read_fd)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        code = 1
        try:
            fn(w)
            code = 0
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    os.close(w)
    return pid, r


def read_until(fd: int, wanted: bytes, seen: bytearray) -> None:
    """Read the child's phase marks until ``wanted`` appears (or the child closes the pipe)."""
    while wanted not in seen:
        chunk = os.read(fd, 64)
        if not chunk:
            return
        seen += chunk


def drain(fd: int, seen: bytearray) -> None:
    while True:
        chunk = os.read(fd, 64)
        if not chunk:
            break
        seen += chunk
    os.close(fd)


def kill_and_reap(pid: int) -> tuple[bool, int]:
    """SIGKILL (if still running) and reap; returns (was it killed, exit code)."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return os.WTERMSIG(status) == signal.SIGKILL, -os.WTERMSIG(status)
    return False, os.WEXITSTATUS(status)


def run_clean(fn: Callable[[int], None], timeout: float = 120) -> tuple[int, bytes]:
    """Fork ``fn`` and let it finish; returns (exit code, phase marks)."""
    pid, r = fork_child(fn)
    seen = bytearray()
    drain(r, seen)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), bytes(seen)


# -- log mode ------------------------------------------------------------------------------------


def instrument(w: int) -> None:
    """Make the commit pipeline announce its phases on ``w`` (a pipe to the driver)."""
    from sqlalchemy import event

    from artifact_plugins.core import client as client_mod
    from artifact_plugins.core import run as run_mod
    from artifact_plugins.core.registry import registry as reg_mod

    def mark(c: bytes) -> None:
        os.write(w, c)

    upload, put_manifest, commit = run_mod.upload_blobs, client_mod.Client.put_manifest, reg_mod.Registry.commit_version
    state = {"in_commit": False, "engines": set()}

    def upload_marked(*a: Any, **k: Any) -> Any:
        mark(b"u")
        return upload(*a, **k)

    def put_manifest_marked(self: Any, *a: Any, **k: Any) -> Any:
        mark(b"m")
        return put_manifest(self, *a, **k)

    def commit_marked(self: Any, **kw: Any) -> Any:
        if id(self.engine) not in state["engines"]:
            state["engines"].add(id(self.engine))

            @event.listens_for(self.engine, "commit")
            def on_commit(conn: Any) -> None:
                if state["in_commit"]:
                    mark(b"c")

        mark(b"r")
        state["in_commit"] = True
        try:
            result = commit(self, **kw)
        finally:
            state["in_commit"] = False
        mark(b"R")
        return result

    run_mod.upload_blobs = upload_marked
    client_mod.Client.put_manifest = put_manifest_marked
    reg_mod.Registry.commit_version = commit_marked


def warm_client(operation: Callable[[], None]) -> Any:
    """Run ``operation`` in the driver so the shared client's engine has compiled its statements."""
    from artifact_plugins.core.client import get_client

    client = get_client()
    operation()
    return client


def before_fork(client: Any) -> None:
    """Leave nothing open that a child could inherit: no database connection, no store, no sockets."""
    client.registry.engine.dispose()  # closes pooled connections; keeps the compiled-statement cache
    cache = client.__dict__.get("checksum_cache")
    if cache is not None and cache._conn is not None:
        cache._conn.close()
        cache._conn = None
    store = client.__dict__.pop("store", None)
    if store is not None and hasattr(store, "close"):
        store.close()
    client._manifests.clear()


def adopt(client: Any) -> None:
    """In a child: use the driver's (connection-less) client, which opens its own connections and store."""
    from artifact_plugins.core import client as client_mod

    client_mod._clients[(client.settings, os.getpid())] = client


def trial_files(variant: dict[str, Any], marker: int | None) -> Any:
    art = ap.Artifact(variant["collection"], "dataset", metadata={"variant": variant["index"], "marker": marker})
    art.add_dir(variant["src"])
    if marker is not None:
        with art.new_file("trial.txt") as f:
            f.write(f"variant {variant['index']} trial {marker}\n")
    return art


def log_child(client: Any, variant: dict[str, Any], marker: int | None, out: str | None) -> Callable[[int], None]:
    def body(w: int) -> None:
        adopt(client)
        instrument(w)
        os.write(w, b"a")
        art = trial_files(variant, marker)
        existed, before = False, 0
        if out:
            api = ap.Api()
            existed = api.artifact_exists(f"{variant['collection']}@{art.digest}")
            before = len(api.artifact_versions(None, variant["collection"]))
        with ap.init(job_type="crash-trial") as run:
            os.write(w, b"i")
            v = run.log_artifact(art, aliases=[f"variant-{variant['index']}"])
        os.write(w, b"d")
        if out:
            Path(out).write_text(
                json.dumps(
                    {
                        "existed": existed,
                        "versions_before": before,
                        "version": v.version_index,
                        "digest": v.digest,
                        "expected_digest": art.digest,
                    }
                )
            )

    return body


def run_log(cfg: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    variants = cfg["variants"]
    work = Path(cfg["work"])
    calibration = {"collection": "calibration", "index": 0, "src": variants[0]["src"]}

    def calibrate() -> None:
        with ap.init(job_type="calibration") as run:
            run.log_artifact(trial_files(calibration, None))

    client = warm_client(calibrate)
    before_fork(client)
    t0 = time.monotonic()  # how long a whole (deduplicating) log takes in a child
    code, _ = run_clean(log_child(client, calibration, None, None))
    assert code == 0, "calibration log failed"
    full = time.monotonic() - t0
    targets = ["uniform"] * 4 + list("aiumrcR")
    used: dict[int, list[int | None]] = {v["index"]: [None] for v in variants}
    trials = []
    for trial in range(cfg["trials"]):
        variant = variants[rng.randrange(len(variants))]
        # Mostly new content (the kill hits a creating commit), sometimes content seen before (dedup).
        marker = trial if rng.random() < 0.75 else rng.choice(used[variant["index"]])
        used[variant["index"]].append(marker)
        target = rng.choice(targets)
        before_fork(client)
        pid, r = fork_child(log_child(client, variant, marker, None))
        seen = bytearray()
        if target == "uniform":
            time.sleep(rng.uniform(0, full * 1.3))
        else:
            read_until(r, target.encode(), seen)
            time.sleep(rng.uniform(0, 0.0005 if target in "cR" else 0.005))
        killed, code = kill_and_reap(pid)
        drain(r, seen)
        phase = chr(seen[-1]) if seen else "-"
        result_file = work / f"rerun-{trial}.json"
        before_fork(client)
        rerun_code, _ = run_clean(log_child(client, variant, marker, str(result_file)))
        rerun = json.loads(result_file.read_text()) if rerun_code == 0 else None
        trials.append(
            {
                "trial": trial,
                "variant": variant["index"],
                "marker": marker,
                "target": target,
                "killed": killed,
                "exit": code,
                "phase": phase,
                "marks": seen.decode(),
                "rerun_exit": rerun_code,
                "rerun": rerun,
            }
        )
    return {"full_log_seconds": full, "trials": trials}


# -- download mode -------------------------------------------------------------------------------


HASHED = [0]


def file_digest(path: Path) -> str:
    HASHED[0] += path.stat().st_size
    h = blake3()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def check_download_state(
    root: Path, cache: Path, expected: dict[str, str], planted: dict[str, str] | None = None
) -> tuple[list[str], int, int]:
    """Violations of: no partial file under a final name in the root; no unverified blob in the cache.

    ``planted`` maps paths the driver itself overwrote with garbage to that garbage's digest: a
    kill that came before the download replaced them legitimately leaves them as they were.
    """
    planted = planted or {}
    bad: list[str] = []
    files = temps = 0
    if root.exists():
        for p in root.rglob("*"):
            if not p.is_file():
                continue
            if ".tmp-" in p.name:
                temps += 1
                continue
            rel = p.relative_to(root).as_posix()
            if rel not in expected:
                bad.append(f"unexpected file {rel}")
            elif file_digest(p) not in (expected[rel], planted.get(rel)):
                bad.append(f"{rel} holds wrong bytes under its final name")
            files += 1
    blobs = cache / "blobs" / "blake3"
    if blobs.exists():
        planted_digests = set(planted.values())
        for p in blobs.rglob("*"):
            if not p.is_file() or ".tmp-" in p.name:
                continue
            actual = file_digest(p)
            if actual == p.name:
                continue
            # A small cached blob is a hard link to the file a download wrote; the driver's own
            # in-place garbage reaches it through that link (as a user's edit would). The cache
            # re-verifies small blobs on every hit, so that is not a violation; anything else is.
            if not (actual in planted_digests and p.stat().st_nlink > 1):
                bad.append(f"cache blob {p.name} is not verified")
    return bad, files, temps


def download_child(client: Any, ref: str, root: str) -> Callable[[int], None]:
    def body(w: int) -> None:
        adopt(client)
        ap.Api().artifact(ref).download(root)
        os.write(w, b"d")

    return body


def run_download(cfg: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    import shutil

    root, cache = Path(cfg["root"]), Path(cfg["cache"])
    expected: dict[str, str] = cfg["expected"]  # rel path -> hex digest

    def resolve() -> None:
        from artifact_plugins.core.client import get_client

        v = ap.Api().artifact(cfg["ref"])
        get_client().manifest(v._record)

    client = warm_client(resolve)
    before_fork(client)
    t0 = time.monotonic()
    code, _ = run_clean(download_child(client, cfg["ref"], str(root)))
    full = time.monotonic() - t0
    assert code == 0, "calibration download failed"
    trials = []
    for trial in range(cfg["trials"]):
        # Prepare an interesting starting state: the kill should land while bytes move.
        shape = rng.choice(["empty", "empty", "some-missing", "garbage"])
        planted: dict[str, str] = {}
        if shape == "empty":
            shutil.rmtree(root, ignore_errors=True)
        else:
            files = sorted(p for p in root.rglob("*") if p.is_file() and ".tmp-" not in p.name)
            for p in rng.sample(files, k=max(1, len(files) // 2)) if files else []:
                if shape == "garbage":  # same size, other bytes: must be rehashed and replaced
                    garbage = rng.randbytes(p.stat().st_size)
                    p.write_bytes(garbage)
                    planted[p.relative_to(root).as_posix()] = blake3(garbage).hexdigest()
                else:
                    p.unlink()
        if cfg.get("remote") and rng.random() < 0.6:
            shutil.rmtree(cache / "blobs", ignore_errors=True)
        before_fork(client)
        pid, r = fork_child(download_child(client, cfg["ref"], str(root)))
        time.sleep(rng.uniform(0, full * 1.2))
        killed, code = kill_and_reap(pid)
        seen = bytearray()
        drain(r, seen)
        after_kill, files_after_kill, temps = check_download_state(root, cache, expected, planted)
        before_fork(client)
        rerun_code, _ = run_clean(download_child(client, cfg["ref"], str(root)))
        after_rerun, files_after_rerun, _ = check_download_state(root, cache, expected)
        missing = sorted(set(expected) - {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()})
        trials.append(
            {
                "trial": trial,
                "shape": shape,
                "killed": killed,
                "exit": code,
                "violations_after_kill": after_kill,
                "files_after_kill": files_after_kill,
                "temp_files_after_kill": temps,
                "rerun_exit": rerun_code,
                "violations_after_rerun": after_rerun,
                "missing_after_rerun": missing,
                "files_after_rerun": files_after_rerun,
            }
        )
    return {"full_download_seconds": full, "trials": trials, "bytes_hashed": HASHED[0]}


# -- migrate mode --------------------------------------------------------------------------------


def migrate_child(url: str) -> Callable[[int], None]:
    def body(w: int) -> None:
        from artifact_plugins.core.registry import Registry

        Registry(url)
        os.write(w, b"d")

    return body


def migrate_then_log_child(url: str, src: str) -> Callable[[int], None]:
    def body(w: int) -> None:
        os.environ["ARTIFACT_PLUGINS_REGISTRY"] = url
        art = ap.Artifact("after-migration-crash", "dataset")
        art.add_dir(src)
        with ap.init(job_type="after-crash") as run:
            run.log_artifact(art)
        os.write(w, b"d")

    return body


def run_migrate(cfg: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    work = Path(cfg["work"])
    t0 = time.monotonic()
    code, _ = run_clean(migrate_child(f"sqlite:///{work / 'calibration.db'}"))
    full = time.monotonic() - t0
    assert code == 0, "calibration migration failed"
    trials = []
    for trial in range(cfg["trials"]):
        url = f"sqlite:///{work / f'reg-{trial}.db'}"
        pid, r = fork_child(migrate_child(url))
        time.sleep(rng.uniform(0, full * 0.9))
        killed, code = kill_and_reap(pid)
        drain(r, bytearray())
        rerun_code, _ = run_clean(migrate_then_log_child(url, cfg["src"]))
        trials.append({"trial": trial, "killed": killed, "exit": code, "rerun_exit": rerun_code, "db": url})
    return {"full_migration_seconds": full, "trials": trials}


def main() -> None:
    cfg = json.loads(Path(sys.argv[1]).read_text())
    rng = random.Random(cfg["seed"])
    runner = {"log": run_log, "download": run_download, "migrate": run_migrate}[cfg["mode"]]
    started = time.monotonic()
    result = runner(cfg, rng)
    result["seconds"] = time.monotonic() - started
    Path(cfg["out"]).write_text(json.dumps(result))


if __name__ == "__main__":
    main()
