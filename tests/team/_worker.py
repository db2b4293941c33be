"""A worker process for the team-mode tests: ``python _worker.py ACTION INDEX START_FILE``.

Waits until START_FILE exists (so that all workers race), performs ACTION against the
registry and store named by the environment, and prints one JSON line with its result.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path


def wait_for(start: Path) -> None:
    start.with_name(f"{start.name}.ready.{os.getpid()}").touch()
    deadline = time.monotonic() + 60
    while not start.exists():
        if time.monotonic() > deadline:
            raise SystemExit("start signal never came")
        time.sleep(0.005)


def main() -> None:
    action, index, start = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
    work = Path(os.environ["TEAM_WORK"])
    import artifact_plugins as ap
    from artifact_plugins.core.errors import AliasConflictError

    def artifact(content: str, name: str = "shared") -> ap.Artifact:
        art = ap.Artifact(name, "dataset")
        src = work / f"src-{index}"
        src.mkdir(parents=True, exist_ok=True)
        (src / "data.txt").write_text(content)
        art.add_file(src / "data.txt")
        return art

    if action == "log-different":
        art = artifact(f"content of writer {index}")
        wait_for(start)
        with ap.init(job_type="writer") as run:
            v = run.log_artifact(art, aliases=[f"w{index}"])
        print(json.dumps({"version": v.version, "digest": v.digest}))
    elif action == "log-identical":
        art = artifact("the same content for everyone")
        wait_for(start)
        with ap.init(job_type="writer") as run:
            v = run.log_artifact(art, aliases=[f"w{index}"])
        print(json.dumps({"version": v.version, "digest": v.digest}))
    elif action == "upsert-part":
        art = ap.Artifact("parts", "dataset")
        src = work / f"part-{index}"
        src.mkdir(parents=True, exist_ok=True)
        (src / f"part-{index}.txt").write_text(f"part {index}")
        art.add_file(src / f"part-{index}.txt", name=f"parts/part-{index}.txt")
        wait_for(start)
        with ap.init(job_type="writer", group="g") as run:
            run.upsert_artifact(art, distributed_id="dist-1")
        print(json.dumps({"ok": True}))
    elif action == "move-alias":
        wait_for(start)
        try:
            v = ap.Api().set_alias(f"shared:v{index}", "production", expected="v0")
            print(json.dumps({"won": True, "version": v.version}))
        except AliasConflictError as exc:
            print(json.dumps({"won": False, "error": str(exc)}))
    elif action == "log-many":
        wait_for(start)
        versions = []
        for i in range(int(os.environ.get("TEAM_COUNT", "5"))):
            art = artifact(f"writer {index} round {i}")
            with ap.init(job_type="writer") as run:
                versions.append(run.log_artifact(art).version)
        print(json.dumps({"versions": versions}))
    elif action == "log-reusing-garbage":
        wait_for(start)
        versions = []
        for i in range(int(os.environ.get("TEAM_COUNT", "5"))):
            art = artifact("content every writer logs, once garbage", name=f"reuse-{index}")
            (work / f"src-{index}" / "own.txt").write_text(f"writer {index} round {i}")
            art.add_file(work / f"src-{index}" / "own.txt")
            with ap.init(job_type="writer") as run:
                versions.append(run.log_artifact(art).version)
        print(json.dumps({"versions": versions}))
    elif action == "log-dirs":
        wait_for(start)
        versions = []
        for i in range(int(os.environ.get("TEAM_COUNT", "5"))):
            src = work / f"dir-{index}-{i}"
            src.mkdir(parents=True)
            for k in range(300):  # enough for the draft to store its blobs and flag them
                (src / f"f{k}.txt").write_text(f"writer {index} round {i} file {k}")
            art = ap.Artifact(f"dirs-{index}", "dataset")
            art.add_dir(src)  # its blobs are garbage until the version is recorded
            time.sleep(0.02)
            with ap.init(job_type="writer") as run:
                versions.append(run.log_artifact(art).version)
        print(json.dumps({"versions": versions}))
    elif action == "gc-loop":
        from datetime import timedelta

        wait_for(start)
        stop, rounds, deleted = work / "stop", 0, 0
        while not stop.exists():
            deleted += len(ap.Api().gc(dry_run=False, grace=timedelta(0)).deleted_blobs)
            rounds += 1
        print(json.dumps({"rounds": rounds, "deleted": deleted}))
    elif action == "read-loop":
        from artifact_plugins.core.client import get_client
        from artifact_plugins.core.storage import blob_key

        client = get_client()
        api = ap.Api()
        wait_for(start)
        stop = work / "stop"
        seen, bad = 0, []
        while not stop.exists():
            for v in api.artifact_versions(None, "shared"):
                seen += 1
                manifest = client.manifest(v._record)  # raises if the manifest is missing or wrong
                if len(manifest) != v.file_count:
                    bad.append(f"{v.version}: {len(manifest)} entries, registry says {v.file_count}")
                for e in manifest:
                    if not client.store.has(blob_key(e.digest)):
                        bad.append(f"{v.version}: blob of {e.path} missing")
            time.sleep(0.01)
        print(json.dumps({"seen": seen, "bad": bad}))
    else:
        raise SystemExit(f"unknown action {action}")


if __name__ == "__main__":
    main()
