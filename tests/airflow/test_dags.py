"""Integration: real DAG runs (``dag.test()``) on a real Airflow metadata DB.

Each test asserts on both sides: what Airflow recorded (task states, asset events and their
``extra``, XComs, extra-link XComs) and what our registry recorded (runs bound to task-instance
tries, lineage connected within the DAG run).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

BASE_URL = "http://airflow.test:8080"


def _group(dr: Any) -> str:
    return f"{dr.dag_id}/{dr.run_id}"


def test_walkthrough_then_asset_consumer(api: Any, run_dag: Any, records: Any, example_dag: Any) -> None:
    dag = example_dag("walkthrough_pipeline.py", "artifact_walkthrough")
    dr = run_dag(dag)
    assert dr.state == "success", records.task_states(dag.dag_id, dr.run_id)

    dataset = api.artifact("bikes/bike-dataset:latest")
    model = api.artifact("bikes/bike-model:candidate")
    assert dataset.metadata["run"] == dr.run_id  # templated metadata was rendered
    assert "raw" in dataset.aliases

    # Airflow side: one asset event per logged version, carrying the version in `extra`.
    events = {e["task_id"]: e for e in records.asset_events(dag.dag_id, dr.run_id)}
    assert set(events) == {"log_dataset", "train"}
    ds_event = events["log_dataset"]
    assert ds_event["uri"] == "artifact://default/bikes/bike-dataset" and ds_event["group"] == "artifact"
    assert ds_event["extra"]["version"] == dataset.version
    assert ds_event["extra"]["digest"] == dataset.digest
    assert ds_event["extra"]["qualified_name"] == dataset.qualified_name
    assert ds_event["extra"]["try_number"] == 1 and "raw" in ds_event["extra"]["aliases"]
    assert events["train"]["extra"]["qualified_name"] == model.qualified_name
    assert events["train"]["extra"]["inputs"] == [dataset.qualified_name]  # @task used it via ap.init()

    xcoms = records.xcoms(dag.dag_id, dr.run_id)
    used = xcoms[("use_dataset", -1)]
    assert (used["version"], used["digest"]) == (dataset.version, dataset.digest)
    assert used["qualified_name"] == dataset.qualified_name
    assert (Path(used["path"]) / "rentals.csv").is_file()
    assert xcoms[("train", -1)] == model.qualified_name

    links = records.xcoms(dag.dag_id, dr.run_id, key="_link_ArtifactLink")
    page = f"{BASE_URL}/artifacts/versions/default/bikes/bike-dataset/{dataset.version}"
    assert links[("log_dataset", -1)] == page and links[("use_dataset", -1)] == page

    # Registry side: one run per task-instance try, grouped by the DAG run.
    runs = {r.step["task_id"]: r for r in api.runs(group=_group(dr))}
    assert set(runs) == {"log_dataset", "use_dataset", "train"}
    for task_id, run in runs.items():
        assert run.orchestrator == "airflow" and run.job_type == run.step["task_id"] and run.status == "finished"
        assert run.step["run_id"] == dr.run_id and run.step["try_number"] == 1 and run.step["map_index"] == -1
        assert run.url.startswith(f"{BASE_URL}/dags/{dag.dag_id}/runs/") and run.url.endswith(f"/tasks/{task_id}")
    assert dataset.logged_by().id == runs["log_dataset"].id
    assert {r.id for r in dataset.used_by()} == {runs["use_dataset"].id, runs["train"].id}
    assert model.logged_by().id == runs["train"].id

    graph = api.lineage(model.qualified_name, direction="upstream", collapse="group")
    group_node = f"g:{_group(dr)}"
    edges = {(e.source, e.target, e.kind) for e in graph.edges}
    dataset_node = next(n.id for n in graph.nodes if n.label == f"bike-dataset:{dataset.version}")
    assert (dataset_node, group_node, "used") in edges
    assert any(src == group_node and kind == "logged" for src, _, kind in edges)

    # The asset-scheduled consumer, run by hand, uses :latest and records that use.
    consumer = example_dag("asset_consumer.py", "artifact_consumer")
    assert [a.uri for a in consumer.timetable.asset_condition.objects] == [ds_event["uri"]]
    cr = run_dag(consumer)
    assert cr.state == "success", records.task_states(consumer.dag_id, cr.run_id)
    consumed = records.xcoms(consumer.dag_id, cr.run_id)[("summarize", -1)]
    assert consumed["qualified_name"] == dataset.qualified_name
    (consumer_run,) = api.runs(group=_group(cr))
    assert consumer_run.step["task_id"] == "use_dataset" and consumer_run.job_type == "use_dataset"
    assert consumer_run.id in {r.id for r in api.artifact(dataset.qualified_name).used_by()}


def test_mapped_parallel_writers(api: Any, run_dag: Any, records: Any, example_dag: Any) -> None:
    dag = example_dag("parallel_writers.py", "artifact_parallel_writers")
    dr = run_dag(dag)
    states = records.task_states(dag.dag_id, dr.run_id)
    assert dr.state == "success", states
    assert {k for k in states if k[0] == "write_part"} == {("write_part", i) for i in range(3)}

    version = api.artifact("bikes/bike-shards:complete")
    assert sorted(e.path for e in version.files()) == [f"shards/shard-{i}.csv" for i in range(3)]
    assert version.version_index == 0 and version.file_count == 3

    (event,) = records.asset_events(dag.dag_id, dr.run_id)
    assert event["task_id"] == "finish" and event["uri"] == "artifact://default/bikes/bike-shards"
    assert event["extra"]["digest"] == version.digest and "complete" in event["extra"]["aliases"]

    xcoms = records.xcoms(dag.dag_id, dr.run_id)
    for index in range(3):
        part = xcoms[("write_part", index)]
        assert part["part"] is True and part["distributed_id"] == _group(dr)
    assert xcoms[("finish", -1)]["digest"] == version.digest
    links = records.xcoms(dag.dag_id, dr.run_id, key="_link_ArtifactLink")
    assert links[("finish", -1)].endswith(f"/artifacts/versions/default/bikes/bike-shards/{version.version}")

    parts = [r for r in api.runs(group=_group(dr)) if r.step["task_id"] == "write_part"]
    assert sorted(r.step["map_index"] for r in parts) == [0, 1, 2]
    assert all(r.url.endswith(f"/tasks/write_part/mapped/{r.step['map_index']}") for r in parts)
    assert version.logged_by().step["task_id"] == "finish"


def test_mapped_log_and_use_per_map_index(api: Any, run_dag: Any, records: Any, tmp_path: Path) -> None:
    from airflow.sdk import dag

    from artifact_plugins.airflow import LogArtifactOperator, UseArtifactOperator, artifact_asset

    cities = ["city-a", "city-b"]
    for city in cities:
        (tmp_path / f"{city}.csv").write_text(f"{city}\n")

    @dag(dag_id="artifact_mapped_each", schedule=None)
    def mapped_each() -> None:
        logs = LogArtifactOperator.partial(
            task_id="log_each", type="dataset", outlets=[artifact_asset(c) for c in cities]
        ).expand_kwargs([{"name": c, "paths": [str(tmp_path / f"{c}.csv")]} for c in cities])
        uses = UseArtifactOperator.partial(task_id="use_each", download=False).expand(
            artifact=[f"{c}:latest" for c in cities]
        )
        logs >> uses

    dr = run_dag(mapped_each())
    assert dr.state == "success", records.task_states("artifact_mapped_each", dr.run_id)
    # Airflow emits an event for every declared outlet of a successful task instance; only the
    # asset of the artifact the instance logged carries the version.
    events = [e for e in records.asset_events("artifact_mapped_each", dr.run_id) if e["extra"]]
    assert sorted((e["map_index"], e["uri"]) for e in events) == [
        (i, f"artifact://default/default/{c}") for i, c in enumerate(cities)
    ]
    assert all(e["extra"]["map_index"] == e["map_index"] and e["extra"]["version"] for e in events)
    xcoms = records.xcoms("artifact_mapped_each", dr.run_id)
    links = records.xcoms("artifact_mapped_each", dr.run_id, key="_link_ArtifactLink")
    for index, city in enumerate(cities):
        version = api.artifact(f"{city}:latest")
        assert xcoms[("use_each", index)]["digest"] == version.digest
        assert links[("use_each", index)].endswith(f"/artifacts/versions/default/default/{city}/{version.version}")
        (consumer,) = version.used_by()
        assert (consumer.step["task_id"], consumer.step["map_index"]) == ("use_each", index)


def _faults_dag(tmp_path: Path) -> Any:
    from airflow.sdk import dag, get_current_context, task

    import artifact_plugins as ap
    from artifact_plugins.airflow import LogArtifactOperator, UseArtifactOperator, artifact_asset

    data = tmp_path / "payload.txt"
    data.write_text("the same bytes on every try\n")

    @task(retries=1, retry_delay=0, outlets=[artifact_asset("flaky")])
    def flaky_log() -> str:
        """Logs, then fails on the first try only; the retry logs identical content."""
        art = ap.Artifact("flaky", "dataset")
        art.add_file(data, name="payload.txt")
        version = ap.log_artifact(art)
        if get_current_context()["ti"].try_number == 1:
            raise RuntimeError("worker lost after the commit")
        return version.qualified_name

    @task(outlets=[artifact_asset("skipped")])
    def log_then_skip() -> None:
        """Logs, then skips itself (e.g. "nothing new downstream"): the try ended, without error."""
        from airflow.sdk.exceptions import AirflowSkipException

        with ap.init() as run:
            art = ap.Artifact("skipped", "dataset")
            art.add_file(data, name="payload.txt")
            run.log_artifact(art)
            raise AirflowSkipException("the data did not change")

    @dag(dag_id="artifact_faults", schedule=None)
    def faults() -> None:
        flaky_log()
        log_then_skip()
        LogArtifactOperator(
            task_id="log_broken",
            name="broken",
            type="dataset",
            paths=[str(data), str(tmp_path / "vanished.csv")],
            outlets=[artifact_asset("broken")],
        )
        UseArtifactOperator(task_id="use_missing", artifact="never-logged:v3")
        LogArtifactOperator(
            task_id="log_via_connection",
            name="secure",
            type="dataset",
            paths=[str(data)],
            artifact_conn_id="artifact_secret_conn",
            outlets=[artifact_asset("secure", project="vault")],
        )

    return faults()


def test_faults_retries_and_credentials(
    api: Any, run_dag: Any, records: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: Any
) -> None:
    secret = "c0nn-Pa55w0rd-9f3b7e"
    conn_store, conn_registry = tmp_path / "vault-store", tmp_path / "vault-registry.db"
    monkeypatch.setenv(
        "AIRFLOW_CONN_ARTIFACT_SECRET_CONN",
        json.dumps(
            {
                "conn_type": "generic",
                "login": "artifact-writer",
                "password": secret,
                "extra": {"store": str(conn_store), "registry": f"sqlite:///{conn_registry}", "project": "vault"},
            }
        ),
    )
    dag = _faults_dag(tmp_path)
    dr = run_dag(dag)
    states = records.task_states(dag.dag_id, dr.run_id)
    assert states[("flaky_log", -1)] == ("success", 2)
    assert states[("log_broken", -1)][0] == "failed"
    assert states[("use_missing", -1)][0] == "failed"
    assert states[("log_via_connection", -1)][0] == "success"
    assert dr.state == "failed"
    output = capfd.readouterr()
    logs = output.out + output.err

    # A retried task instance: one version, two runs (failed try, finished try), one asset event.
    (version,) = api.artifact_versions("dataset", "flaky")
    tries = {r.step["try_number"]: r for r in api.runs(group=_group(dr)) if r.step["task_id"] == "flaky_log"}
    assert tries[1].status == "failed" and tries[2].status == "finished"
    events = records.asset_events(dag.dag_id, dr.run_id)
    flaky_events = [e for e in events if e["task_id"] == "flaky_log"]
    assert len(flaky_events) == 1
    assert flaky_events[0]["extra"]["try_number"] == 2 and flaky_events[0]["extra"]["created"] is False
    assert flaky_events[0]["extra"]["version"] == version.version

    # A try that skips itself inside its run's block ends the run finished, not failed.
    assert states[("log_then_skip", -1)][0] == "skipped"
    (skipped,) = [r for r in api.runs(group=_group(dr)) if r.step["task_id"] == "log_then_skip"]
    assert skipped.status == "finished"
    assert api.artifact("skipped:latest").version == "v0"

    # A failing log leaves no version and no asset event; a missing ref fails naming the ref.
    import artifact_plugins as ap

    with pytest.raises(ap.errors.ArtifactNotFoundError):
        api.artifact("broken:latest")
    assert not [e for e in events if e["task_id"] == "log_broken"]
    assert "vanished.csv" in logs
    assert "never-logged" in logs and "ArtifactNotFoundError" in logs

    # Settings from a connection: used, never leaked.
    secure = ap.Api(settings=ap.Settings.resolve(store=str(conn_store), registry=f"sqlite:///{conn_registry}"))
    secure_version = secure.artifact("default/vault/secure:latest")
    (secure_event,) = [e for e in events if e["task_id"] == "log_via_connection"]
    assert secure_event["extra"]["digest"] == secure_version.digest
    xcoms = records.xcoms(dag.dag_id, dr.run_id)
    stored = b"".join(p.read_bytes() for p in conn_store.rglob("*") if p.is_file()) + conn_registry.read_bytes()
    assert secret.encode() not in stored
    for text in (json.dumps(list(xcoms.values()), default=str), json.dumps(events, default=str), logs):
        assert secret not in text


def test_s3_store_through_airflow_connections(
    run_dag: Any, records: Any, lake: Any, tmp_path: Path, capfd: Any
) -> None:
    """Task instances read the AWS connection through the Task SDK, as on a worker: the store's
    keys and endpoint come from ``lake_aws`` only (the standard chain's keys are refused)."""
    from airflow.sdk import dag

    from artifact_plugins.airflow import LogArtifactOperator, UseArtifactOperator, artifact_asset

    data = tmp_path / "rentals.csv"
    data.write_text("hour,rentals\n1,10\n")
    conns = {"artifact_conn_id": "lake_store", "aws_conn_id": "lake_aws"}

    @dag(dag_id="artifact_s3_connections", schedule=None)
    def s3_connections() -> None:
        log = LogArtifactOperator(
            task_id="log",
            name="rentals",
            type="dataset",
            paths=[str(data)],
            outlets=[artifact_asset("rentals", project="lake")],
            **conns,
        )
        use = UseArtifactOperator(task_id="use", artifact="rentals:latest", root=str(tmp_path / "dl"), **conns)
        log >> use

    dr = run_dag(s3_connections())
    states = records.task_states("artifact_s3_connections", dr.run_id)
    assert dr.state == "success", states
    xcoms = records.xcoms("artifact_s3_connections", dr.run_id)
    assert xcoms[("use", -1)]["qualified_name"] == "default/lake/rentals:v0"
    assert (tmp_path / "dl" / "rentals.csv").read_text() == data.read_text()
    assert sum("/blobs/blake3/" in k for k in lake.objects()) == 1
    output = capfd.readouterr()
    assert lake.secret not in output.out + output.err + json.dumps(list(xcoms.values()), default=str)


def test_many_small_files_are_logged_and_used_on_two_cores(
    api: Any, run_dag: Any, records: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Inside Airflow's task process (its threads and log handlers around), the forked child that
    stats, hashes and downloads half the files does its share and the DAG run's result is exact."""
    from airflow.sdk import dag
    from processes import count_forks

    from artifact_plugins.airflow import LogArtifactOperator, UseArtifactOperator

    forks = count_forks(monkeypatch)
    src = tmp_path / "many"
    for i in range(600):
        (src / f"d{i % 6}").mkdir(parents=True, exist_ok=True)
        (src / f"d{i % 6}" / f"f{i}.txt").write_text(f"line {i}\n" * (i % 30 + 1))

    @dag(dag_id="artifact_many_files", schedule=None)
    def many_files() -> None:
        logged = LogArtifactOperator(task_id="log_many", name="many", type="dataset", paths=[str(src)])
        logged >> UseArtifactOperator(task_id="use_many", artifact="many:latest")

    dr = run_dag(many_files())
    assert dr.state == "success", records.task_states("artifact_many_files", dr.run_id)
    assert len(forks) == 3  # the log's scan and hashing, the use's download
    used = Path(records.xcoms("artifact_many_files", dr.run_id)[("use_many", -1)]["path"])
    files = sorted(p.relative_to(src) for p in src.rglob("*") if p.is_file())
    assert sorted(p.relative_to(used) for p in used.rglob("*") if p.is_file()) == files
    assert all((used / f).read_bytes() == (src / f).read_bytes() for f in files)
    assert len(api.artifact("many:latest").manifest()) == 600
