"""Registry contents the web tests browse, and the plumbing to point the core at a scratch folder."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import artifact_plugins as ap
from artifact_plugins.core import client as client_mod
from artifact_plugins.core import run as run_mod

XSS = "<img src=x onerror=window.__xss=1>"
XSS_SCRIPT = "<script>window.__xss=2</script>"
ENV_VARS = ("STORE", "REGISTRY", "CACHE_DIR", "CONFIG", "ENTITY", "PROJECT", "CACHE_MAX_BYTES")


def env_for(root: Path, project: str = "bikes") -> dict[str, str]:
    """``ARTIFACT_PLUGINS_*`` variables selecting a store, registry and cache under ``root``."""
    return {
        "ARTIFACT_PLUGINS_STORE": str(root / "store"),
        "ARTIFACT_PLUGINS_REGISTRY": f"sqlite:///{root / 'registry.db'}",
        "ARTIFACT_PLUGINS_CACHE_DIR": str(root / "cache"),
        "ARTIFACT_PLUGINS_CONFIG": str(root / "no-config.toml"),
        "ARTIFACT_PLUGINS_PROJECT": project,
    }


@contextlib.contextmanager
def core_at(root: Path, project: str = "bikes") -> Iterator[ap.Settings]:
    """Point the core (environment, shared clients, current run) at ``root`` for the duration."""
    saved = {f"ARTIFACT_PLUGINS_{n}": os.environ.get(f"ARTIFACT_PLUGINS_{n}") for n in ENV_VARS}
    cwd = os.getcwd()
    for key in saved:
        os.environ.pop(key, None)
    os.environ.update(env_for(root, project))
    root.mkdir(parents=True, exist_ok=True)
    os.chdir(root)
    run_mod._current.set(None)
    try:
        yield ap.Settings.resolve()
    finally:
        os.chdir(cwd)
        run_mod._current.set(None)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        client_mod.close_clients()


@dataclass
class Seeded:
    """What :func:`seed` logged."""

    settings: ap.Settings
    dataset_v0: ap.ArtifactVersion
    dataset_v1: ap.ArtifactVersion
    model: ap.ArtifactVersion
    report: ap.ArtifactVersion
    train_run: str
    evil_run: str
    reference_path: str
    xss_file: str


def _write(path: Path, data: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data)


def seed(root: Path, settings: ap.Settings) -> Seeded:
    """A small registry: a dataset (two versions: modified, renamed, removed, added files), a model and a
    report made from it by grouped runs, an Airflow-style run with a ``javascript:`` link, another project,
    and script-injection payloads in every free-text field the registry allows."""
    src = root / "inputs"
    _write(src / "train.csv", "a,b\n1,2\n")
    _write(src / "test.csv", "a,b\n3,4\n")
    _write(src / "images" / "a.png", b"\x89PNG fake a" * 20)
    _write(src / "images" / "b.png", b"\x89PNG fake b" * 20)
    _write(src / XSS, "payload file\n")
    _write(src / "docs" / "deep" / "readme.md", "# readme\n")
    outside = root / "outside" / "remote.bin"
    _write(outside, b"remote bytes")

    with ap.init(job_type="ingest", name=XSS, group="etl-1", settings=settings) as run:
        art = ap.Artifact(
            "bike-dataset",
            "dataset",
            description=f"Rentals per hour.\n{XSS}\n{XSS_SCRIPT}",
            metadata={"note": XSS, XSS: "a key payload", "rows": 3, "nested": {"a": [1, 2]}},
        )
        art.add_dir(src)
        art.add_reference(outside.as_uri(), name="refs/remote.bin")
        v0 = run.log_artifact(art, aliases=["production"])
    _write(src / "train.csv", "a,b\n1,2\n5,6\n")
    (src / "images" / "a.png").rename(src / "images" / "a-renamed.png")
    (src / "test.csv").unlink()
    _write(src / "new.txt", "new\n")
    with ap.init(job_type="ingest", name="ingest-2", group="etl-2", settings=settings) as run:
        art = ap.Artifact(
            "bike-dataset",
            "dataset",
            description="Rentals per hour, more rows.",
            metadata={"note": "clean", "rows": 4, "added": True},
        )
        art.add_dir(src)
        v1 = run.log_artifact(art, aliases=["staging"])
    with ap.init(job_type="train", name="train-1", group="train-group", settings=settings) as run:
        run.use_artifact(v1.qualified_name)
        m = ap.Artifact("bike-model", "model", metadata={"accuracy": 0.91})
        with m.new_file("model.bin") as fh:
            fh.write("weights")
        model = run.log_artifact(m, aliases=["best"])
        train_run = run.id
    with ap.init(job_type="evaluate", name="evaluate-1", group="train-group", settings=settings) as run:
        run.use_artifact(model.qualified_name)
        r = ap.Artifact("eval-report", "report", description=XSS_SCRIPT)
        with r.new_file("report.json") as fh:
            fh.write('{"accuracy": 0.91}')
        report = run.log_artifact(r)
    with ap.init(job_type="other-job", project="other", settings=settings) as run:
        o = ap.Artifact("other-model", "model")
        with o.new_file("x.txt") as fh:
            fh.write("x")
        run.log_artifact(o)

    registry = client_mod.get_client(settings).registry
    step: dict[str, Any] = {"dag_id": "mydag", "run_id": "run-1", "task_id": "use", "map_index": 2, "try_number": 1}
    evil = registry.ensure_run(
        run_key="airflow:mydag/run-1/use/2/1",
        orchestrator="airflow",
        job_type="mydag",
        name="use[2]",
        group="mydag/run-1",
        entity="default",
        project="bikes",
        url="javascript:window.__xss=3",
        group_url="https://airflow.example/dags/mydag",
        step=step,
    )
    registry.record_use(evil.id, v1.id)
    registry.finish_run(evil.id, "failed")
    log_step = {**step, "task_id": "log", "map_index": -1}
    logger = registry.ensure_run(
        run_key="airflow:mydag/run-1/log/-1/1",
        orchestrator="airflow",
        job_type="mydag",
        name="log",
        group="mydag/run-1",
        entity="default",
        project="bikes",
        url="https://airflow.example/dags/mydag/runs/run-1/tasks/log",
        group_url=None,
        step=log_step,
    )
    registry.record_use(logger.id, v0.id)
    return Seeded(settings, v0, v1, model, report, train_run, evil.id, "refs/remote.bin", XSS)
