"""Bad input and faults: failures leave nothing behind, retries do not duplicate, errors name refs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from prefect import flow, task
from prefect.futures import PrefectFuture
from prefect.runtime import flow_run as runtime_flow_run
from prefect_helpers import read_events

import artifact_plugins as ap
from artifact_plugins.prefect import log_artifact, surfacing, use_artifact
from artifact_plugins.prefect.surfacing import collection_resource_id


def _outcome(future: PrefectFuture[Any]) -> tuple[bool, str]:
    """(failed?, state message) of a submitted task, without failing the flow."""
    future.wait()
    return future.state.is_failed(), future.state.message or ""


@flow
def log_flow(paths: list[str]) -> tuple[bool, str]:
    return _outcome(log_artifact.submit("broken", "dataset", paths))


def test_failing_log_task_leaves_no_version(api: ap.Api, make_files: Callable[..., Path], tmp_path: Path) -> None:
    good = make_files("good", {"a.txt": "a"}) / "a.txt"
    failed, message = log_flow([str(good), str(tmp_path / "missing.txt")])
    assert failed
    assert "missing.txt" in message
    with pytest.raises(ap.errors.ArtifactNotFoundError):
        api.artifact("broken:latest")
    assert api.artifact_collections() == []


ATTEMPTS: list[int] = []


@task(retries=2, retry_delay_seconds=0)
def flaky_writer(path: str) -> str:
    """Logs a version, then fails on the first attempt; the retry logs the same content again."""
    ATTEMPTS.append(1)
    with ap.init() as run:
        art = ap.Artifact("flaky", type="dataset")
        art.add_file(path)
        version = run.log_artifact(art)
    if len(ATTEMPTS) == 1:
        raise RuntimeError("transient failure after logging")
    return version.qualified_name


@flow
def retry_flow(path: str) -> tuple[str, str]:
    return flaky_writer(path), str(runtime_flow_run.id)


def test_retried_task_does_not_duplicate_the_version(api: ap.Api, make_files: Callable[..., Path]) -> None:
    ATTEMPTS.clear()
    path = make_files("flaky", {"f.txt": "same bytes"}) / "f.txt"
    qualified, flow_run_id = retry_flow(str(path))
    assert len(ATTEMPTS) == 2
    assert qualified == "default/default/flaky:v0"
    versions = api.artifact_versions("dataset", "flaky")
    assert [v.version for v in versions] == ["v0"]
    producer = versions[0].logged_by()
    assert producer is not None and producer.orchestrator == "prefect" and producer.group == flow_run_id
    created = read_events(
        ["artifact_plugins.version.created"],
        flow_run_id=flow_run_id,
        resource_id=collection_resource_id("default", "default", "flaky"),
        settle=2.0,
    )
    assert len(created) == 1


@flow
def missing_flow(ref: str) -> tuple[bool, str]:
    return _outcome(use_artifact.submit(ref))


def test_missing_artifact_fails_naming_the_ref_and_nearest_versions(
    api: ap.Api, make_files: Callable[..., Path]
) -> None:
    for i in range(2):
        art = ap.Artifact("present", type="dataset")
        with art.new_file("x.txt") as fh:
            fh.write(str(i))
        with ap.init() as run:
            run.log_artifact(art)
    failed, message = missing_flow("present:v7")
    assert failed
    assert "ArtifactNotFoundError" in message and "present:v7" in message
    assert "v1" in message  # the nearest existing versions are named


@flow
def hook_failure_flow(path: str) -> str:
    return log_artifact("survivor", "dataset", path).qualified_name


def test_a_failing_prefect_side_effect_does_not_fail_the_task(
    api: ap.Api, make_files: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise ConnectionError("Prefect API unreachable")

    monkeypatch.setattr(surfacing, "publish_collection_card", boom)
    monkeypatch.setattr(surfacing, "_emit_version_created", boom)
    path = make_files("s", {"s.txt": "s"}) / "s.txt"
    assert hook_failure_flow(str(path)) == "default/default/survivor:v0"
    assert api.artifact("survivor:latest").version == "v0"
