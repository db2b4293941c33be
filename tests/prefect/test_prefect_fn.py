"""Outside a run (plain calls, ``task.fn``) the tasks work against the store with no Prefect effects."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from prefect import flow
from prefect.runtime import flow_run as runtime_flow_run
from prefect_helpers import prefect_artifacts, read_events

import artifact_plugins as ap
from artifact_plugins.prefect import finish_artifact, log_artifact, upsert_artifact, use_artifact
from artifact_plugins.prefect.surfacing import artifact_key, collection_resource_id


def test_task_fn_outside_a_run_uses_the_store_only(
    api: ap.Api, make_files: Callable[..., Path], tmp_path: Path
) -> None:
    data = make_files("plain", {"a.txt": "a", "sub/b.txt": "b"})
    ref = log_artifact.fn("plain", "dataset", data, aliases=["first"], project="offline")
    assert ref.qualified_name == "default/offline/plain:v0" and ref.file_count == 2
    assert set(ref.aliases) == {"first", "latest"}

    used = use_artifact.fn("offline/plain:first", root=tmp_path / "dl")
    assert used.path == tmp_path / "dl" and (used.path / "sub" / "b.txt").read_text() == "b"
    meta = use_artifact.fn(ref, download=False)
    assert meta.path is None and meta.digest == ref.digest

    version = api.artifact("offline/plain:v0")
    producer = version.logged_by()
    assert producer is not None and producer.orchestrator == "script" and producer.group is None
    assert [r.orchestrator for r in version.used_by()] == ["script", "script"]

    with pytest.raises(ValueError, match="distributed_id"):
        upsert_artifact.fn("parts", "dataset", data / "a.txt")
    upsert_artifact.fn("parts", "dataset", data / "a.txt", distributed_id="job-1")
    upsert_artifact.fn("parts", "dataset", {"b.txt": data / "sub" / "b.txt"}, distributed_id="job-1")
    done = finish_artifact.fn("parts", "dataset", distributed_id="job-1")
    assert done.file_count == 2

    # nothing reached Prefect
    assert prefect_artifacts(artifact_key("default", "offline", "plain")) == []
    assert prefect_artifacts(artifact_key("default", "default", "parts")) == []
    events = read_events(
        ["artifact_plugins.version.created"],
        resource_id=collection_resource_id("default", "offline", "plain"),
        expect=1,
        timeout=6.0,
    )
    assert events == []


@flow(name="fn-in-flow")
def fn_in_flow(path: str) -> tuple[str, str]:
    ref = log_artifact.fn("flow-level", "dataset", path)
    return ref.qualified_name, str(runtime_flow_run.id)


def test_task_fn_inside_a_flow_binds_to_the_flow_run(api: ap.Api, make_files: Callable[..., Path]) -> None:
    path = make_files("fl", {"x.txt": "x"}) / "x.txt"
    qualified, flow_run_id = fn_in_flow(str(path))
    producer = api.artifact(qualified).logged_by()
    assert producer is not None and producer.orchestrator == "prefect"
    assert producer.group == flow_run_id and producer.step["task_run_id"] is None
    assert producer.job_type == "fn-in-flow"
    cards = prefect_artifacts(artifact_key("default", "default", "flow-level"), flow_run_id)
    assert cards and cards[0].task_run_id is None and str(cards[0].flow_run_id) == flow_run_id
    materialized = read_events(["prefect.asset.materialization.succeeded"], flow_run_id=flow_run_id)
    assert [e.resource.id for e in materialized] == ["artifact://default/default/flow-level"]
