"""Parallel writers: mapped upserts finished into exactly one version."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from prefect import flow, unmapped
from prefect.runtime import flow_run as runtime_flow_run
from prefect_helpers import prefect_artifacts, read_events

import artifact_plugins as ap
from artifact_plugins.prefect import ArtifactPart, ArtifactRef, finish_artifact, upsert_artifact
from artifact_plugins.prefect.surfacing import artifact_key, collection_resource_id


@flow(name="writers")
def writers(paths: list[str]) -> dict[str, Any]:
    parts = upsert_artifact.map(name=unmapped("shards"), type=unmapped("dataset"), paths=paths)
    version = finish_artifact("shards", "dataset", parts=parts, aliases=["complete"])
    return {"parts": parts.result(), "version": version, "flow_run_id": str(runtime_flow_run.id)}


def test_mapped_writers_finish_into_one_version(api: ap.Api, make_files: Callable[..., Path]) -> None:
    root = make_files("shards", {f"shard-{i}.txt": f"shard {i}" for i in range(4)})
    result = writers([str(root / f"shard-{i}.txt") for i in range(4)])
    flow_run_id, version = result["flow_run_id"], result["version"]
    parts: list[ArtifactPart] = result["parts"]

    assert len(parts) == 4 and {p.distributed_id for p in parts} == {flow_run_id}
    assert sorted(e for p in parts for e in p.entries) == [f"shard-{i}.txt" for i in range(4)]
    assert version.qualified_name == "default/default/shards:v0" and version.file_count == 4
    assert "complete" in version.aliases

    versions = api.artifact_versions("dataset", "shards")
    assert [v.version for v in versions] == ["v0"]
    stored = versions[0]
    assert sorted(e.path for e in stored.files()) == [f"shard-{i}.txt" for i in range(4)]
    finisher = stored.logged_by()
    assert finisher is not None and finisher.group == flow_run_id
    assert finisher.step["task_name"] == "finish-artifact"

    created = read_events(
        ["artifact_plugins.version.created"],
        flow_run_id=flow_run_id,
        resource_id=collection_resource_id("default", "default", "shards"),
        settle=2.0,
    )
    assert len(created) == 1
    assert created[0].resource["artifact_plugins.version"] == "v0"
    assert prefect_artifacts(artifact_key("default", "default", "shards"), flow_run_id)


def test_parts_of_another_distributed_id_are_refused(api: ap.Api, make_files: Callable[..., Path]) -> None:
    path = make_files("p", {"p.txt": "p"}) / "p.txt"
    part = upsert_artifact.fn("solo", "dataset", str(path), distributed_id="batch-1")
    assert part.distributed_id == "batch-1" and part.entries == ("p.txt",)
    other = ArtifactPart("solo", "dataset", "batch-2", "default", "default")
    try:
        finish_artifact.fn("solo", "dataset", parts=[part, other])
    except ValueError as exc:
        assert "batch-1" in str(exc) and "batch-2" in str(exc)
    else:
        raise AssertionError("mixed distributed ids were accepted")
    done = finish_artifact.fn("solo", "dataset", parts=[part])
    assert done.qualified_name == "default/default/solo:v0" and done.file_count == 1


@flow(name="retried-writers", retries=1)
def retried_writers(folder: str) -> ArtifactRef:
    attempt = runtime_flow_run.run_count
    paths = []
    for i in range(3):  # the same names each attempt, new contents
        path = Path(folder) / f"shard-{i}.txt"
        path.write_text(f"attempt {attempt} shard {i}")
        paths.append(str(path))
    parts = upsert_artifact.map(name=unmapped("shards"), type=unmapped("dataset"), paths=paths, project=unmapped("p"))
    parts.wait()
    if attempt == 1:
        raise RuntimeError("the flow fails after its writers ran")
    return finish_artifact("shards", "dataset", parts=parts)  # no project=: the parts' is used


def test_a_flow_retry_finishes_with_the_parts_of_its_last_attempt(api: ap.Api, tmp_path: Path) -> None:
    # The flow run id (the default distributed id) survives a flow retry, so the failed attempt's
    # parts are still open under it; merging them too gave six files or a path conflict.
    folder = tmp_path / "shards"
    folder.mkdir()
    ref = retried_writers(str(folder))
    assert ref.qualified_name == "default/p/shards:v0"
    version = ap.Api(project="p").artifact("shards:v0")
    root = version.download(tmp_path / "out")
    assert {p.name: p.read_text() for p in root.iterdir()} == {
        f"shard-{i}.txt": f"attempt 2 shard {i}" for i in range(3)
    }
