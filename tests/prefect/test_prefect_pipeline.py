"""A log -> transform -> use flow: what our registry stores and what Prefect recorded."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from prefect import flow, task
from prefect.runtime import flow_run as runtime_flow_run
from prefect_helpers import prefect_artifacts, read_events, run_artifacts
from processes import count_forks

import artifact_plugins as ap
from artifact_plugins.prefect import ArtifactRef, log_artifact, use_artifact
from artifact_plugins.prefect.surfacing import artifact_key, asset_uri, collection_resource_id


@task
def clean(raw: ArtifactRef, out_dir: str) -> ArtifactRef:
    """A user task: uses ``raw`` and logs ``clean`` through ap.init()."""
    with ap.init() as run:
        source = run.use_artifact(raw.qualified_name)
        text = (source.download() / "raw.csv").read_text()
        out = Path(out_dir) / "clean.csv"
        out.write_text(text.upper())
        art = ap.Artifact("clean", type="dataset")
        art.add_file(str(out))
        return ArtifactRef.from_version(run.log_artifact(art, aliases=["best"]))


@flow(name="pipeline")
def pipeline(raw_dir: str, out_dir: str) -> dict[str, Any]:
    raw = log_artifact("raw", "dataset", raw_dir, metadata={"rows": 2}, description="raw rows")
    cleaned = clean(raw, out_dir)
    used = use_artifact(cleaned)
    return {"raw": raw, "clean": cleaned, "used": used, "flow_run_id": str(runtime_flow_run.id)}


def test_pipeline_records_lineage_and_surfaces_it(api: ap.Api, make_files: Callable[..., Path], tmp_path: Path) -> None:
    raw_dir = make_files("raw", {"raw.csv": "a,b\n1,2\n"})
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    result = pipeline(str(raw_dir), str(out_dir))
    flow_run_id = result["flow_run_id"]
    raw, cleaned, used = result["raw"], result["clean"], result["used"]

    # -- refs are dataclasses with the committed identity
    assert isinstance(raw, ArtifactRef) and raw.qualified_name == "default/default/raw:v0"
    assert raw.aliases == ("latest",) and raw.digest.startswith("blake3:") and raw.file_count == 1
    assert cleaned.qualified_name == "default/default/clean:v0" and "best" in cleaned.aliases
    assert used.digest == cleaned.digest and used.path is not None
    assert (used.path / "clean.csv").read_text() == "A,B\n1,2\n"

    # -- our registry: versions and runs bound to task runs of this flow run
    raw_v = api.artifact("raw:latest")
    assert raw_v.metadata == {"rows": 2} and raw_v.description == "raw rows"
    producer = raw_v.logged_by()
    assert producer is not None
    assert producer.orchestrator == "prefect" and producer.group == flow_run_id
    assert producer.job_type == "pipeline"  # the adapter task takes the flow name
    assert producer.step["task_name"] == "log-artifact" and producer.step["flow_name"] == "pipeline"
    assert producer.url is not None and producer.url.endswith(f"/runs/task-run/{producer.step['task_run_id']}")
    assert producer.group_url is not None and producer.group_url.endswith(f"/runs/flow-run/{flow_run_id}")

    clean_v = api.artifact("clean:best")
    transformer = clean_v.logged_by()
    assert transformer is not None and transformer.job_type == "clean" and transformer.group == flow_run_id
    assert [r.id for r in raw_v.used_by()] == [transformer.id]  # use and log in one task -> one run
    consumers = clean_v.used_by()
    assert len(consumers) == 1 and consumers[0].step["task_name"] == "use-artifact"
    assert consumers[0].group == flow_run_id

    # lineage across the flow run: raw -> (flow run) -> clean
    graph = api.lineage("raw:v0", direction="downstream", collapse="group")
    assert _reachable(graph, "raw", "clean")

    # -- Prefect: keyed collection cards
    cards = prefect_artifacts(artifact_key("default", "default", "raw"), flow_run_id)
    assert cards, "no keyed card for raw"
    latest_card = cards[0]
    assert latest_card.type == "markdown" and "default/default/raw" in (latest_card.description or "")
    data = str(latest_card.data)
    assert "```mermaid" in data and "| v0 |" in data and raw.digest.split(":")[1][:12] in data
    assert latest_card.metadata_ is not None and latest_card.metadata_["latest_version"] == "v0"
    assert {str(c.task_run_id) for c in cards} >= {producer.step["task_run_id"], transformer.step["task_run_id"]}

    clean_cards = prefect_artifacts(artifact_key("default", "default", "clean"), flow_run_id)
    assert clean_cards and "best" in str(clean_cards[0].data)

    # -- Prefect: inputs cards on the consuming task runs
    inputs = [a for a in run_artifacts(flow_run_id) if a.key is None]
    by_task = {str(a.task_run_id): a for a in inputs}
    assert "default/default/raw:v0" in (by_task[transformer.step["task_run_id"]].description or "")
    assert "default/default/clean:v0" in (by_task[consumers[0].step["task_run_id"]].description or "")

    # -- Prefect: plugin events and asset events
    created = read_events(["artifact_plugins.version.created"], flow_run_id=flow_run_id, expect=2)
    by_resource = {e.resource.id: e for e in created}
    raw_event = by_resource[collection_resource_id("default", "default", "raw")]
    assert raw_event.resource["artifact_plugins.version"] == "v0"
    assert raw_event.resource["artifact_plugins.digest"] == raw.digest
    assert raw_event.resource["prefect.resource.name"] == "default/default/raw"
    assert raw_event.payload["digest"] == raw.digest
    clean_event = by_resource[collection_resource_id("default", "default", "clean")]
    assert {r.id for r in clean_event.related if r.role == "alias"} >= {
        "artifact_plugins.alias.best",
        "artifact_plugins.alias.latest",
    }

    materialized = read_events(["prefect.asset.materialization.succeeded"], flow_run_id=flow_run_id, expect=2)
    mats = {e.resource.id: e for e in materialized}
    assert mats[asset_uri("default", "default", "raw")].payload["version"] == "v0"
    clean_mat = mats[asset_uri("default", "default", "clean")]
    assert clean_mat.payload["digest"] == cleaned.digest
    assert asset_uri("default", "default", "raw") in {r.id for r in clean_mat.related if r.role == "asset"}

    # Per asset: Prefect also emits its own copy of a referenced event, so two events in all can
    # both be about the first asset while the second's is still on its way.
    for name in ("raw", "clean"):
        uri = asset_uri("default", "default", name)
        referenced = read_events(["prefect.asset.referenced"], flow_run_id=flow_run_id, resource_id=uri)
        assert uri in {e.resource.id for e in referenced}


def _reachable(graph: Any, source_name: str, target_name: str) -> bool:
    """Whether a node named ``target_name`` is reachable from one named ``source_name``."""
    ids = {n.id: n for n in graph.nodes}
    adjacency: dict[str, set[str]] = {}
    for edge in graph.edges:
        adjacency.setdefault(edge.source, set()).add(edge.target)
    start = [i for i, n in ids.items() if n.label.startswith(f"{source_name}:")]
    seen, stack = set(start), list(start)
    while stack:
        for nxt in adjacency.get(stack.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return any(ids[i].label.startswith(f"{target_name}:") for i in seen if i in ids)


@task
async def async_writer(text: str) -> ArtifactRef:
    """An async user task logging through the module-level shortcut."""
    art = ap.Artifact("async-out", type="report")
    with art.new_file("out.txt") as fh:
        fh.write(text)
    return ArtifactRef.from_version(ap.log_artifact(art, aliases=["fresh"]))


@flow(name="submitting")
async def submitting(path: str) -> dict[str, Any]:
    logged = log_artifact.submit("submitted", "dataset", path, aliases=["first", "second"])
    used = use_artifact.submit(logged)
    written = await async_writer(used.result().digest)
    return {"used": used.result(), "written": written, "flow_run_id": str(runtime_flow_run.id)}


def test_submit_and_async_tasks(api: ap.Api, make_files: Callable[..., Path]) -> None:
    import asyncio

    path = make_files("sub", {"s.txt": "s"}) / "s.txt"
    result = asyncio.run(submitting(str(path)))
    used, written, flow_run_id = result["used"], result["written"], result["flow_run_id"]
    assert used.qualified_name == "default/default/submitted:v0" and used.path is not None
    assert written.qualified_name == "default/default/async-out:v0"
    producer = api.artifact("async-out:fresh").logged_by()
    assert producer is not None and producer.job_type == "async_writer" and producer.group == flow_run_id

    # one log with three alias moves publishes one card from the logging task run
    logger_run = api.artifact("submitted:v0").logged_by()
    assert logger_run is not None
    cards = prefect_artifacts(artifact_key("default", "default", "submitted"), flow_run_id)
    from_logger = [c for c in cards if str(c.task_run_id) == logger_run.step["task_run_id"]]
    assert len(from_logger) == 1
    assert "`first`" in str(from_logger[0].data) and "`second`" in str(from_logger[0].data)

    created = read_events(["artifact_plugins.version.created"], flow_run_id=flow_run_id, expect=2)
    assert {e.resource.id for e in created} == {
        collection_resource_id("default", "default", "submitted"),
        collection_resource_id("default", "default", "async-out"),
    }


def test_many_small_files_are_logged_and_used_on_two_cores(
    api: ap.Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Inside a Prefect flow run (its event loop, API log handler and threads around), the forked
    child that stats, hashes and downloads half the files does its share and the flow's result is exact."""
    forks = count_forks(monkeypatch)
    src = tmp_path / "many"
    for i in range(600):
        (src / f"d{i % 6}").mkdir(parents=True, exist_ok=True)
        (src / f"d{i % 6}" / f"f{i}.txt").write_text(f"line {i}\n" * (i % 30 + 1))

    @flow(name="many-files")
    def many_files() -> ArtifactRef:
        return use_artifact(log_artifact("many", "dataset", str(src)), root=str(tmp_path / "out"))

    used = many_files()
    assert len(forks) == 3  # the log's scan and hashing, the use's download
    out = tmp_path / "out"
    files = sorted(p.relative_to(src) for p in src.rglob("*") if p.is_file())
    assert sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file()) == files
    assert all((out / f).read_bytes() == (src / f).read_bytes() for f in files)
    assert used.digest == api.artifact("many:latest").digest
