"""Fast tests: operators' ``execute()`` with a hand-built context and Airflow's real outlet accessors."""

from __future__ import annotations

import logging
import subprocess
import sys
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.sdk import Asset
from airflow.sdk.execution_time.context import OutletEventAccessors, TriggeringAssetEventsAccessor

import artifact_plugins as ap
from artifact_plugins.airflow import (
    AirflowRunContextProvider,
    ArtifactLink,
    FinishArtifactOperator,
    LogArtifactOperator,
    UseArtifactOperator,
    artifact_asset,
)
from artifact_plugins.airflow.context import current_task_context, event_extra

DAG_ID, RUN_ID = "unit_dag", "manual__2026-01-01T00:00:00+00:00"
BASE_URL = "http://airflow.test:8080"


def make_context(op: Any, *, try_number: int = 1, map_index: int = -1, **extra: Any) -> dict[str, Any]:
    """The part of an Airflow task context the operators read, with the real outlet accessors."""
    ti = SimpleNamespace(
        dag_id=DAG_ID,
        run_id=RUN_ID,
        task_id=op.task_id,
        map_index=map_index,
        try_number=try_number,
        id=uuid.uuid4(),
        dag_version_id=uuid.uuid4(),
        task=op,
    )
    return {
        "ti": ti,
        "task_instance": ti,
        "task": op,
        "run_id": RUN_ID,
        "outlet_events": OutletEventAccessors(),
        **extra,
    }


@pytest.fixture
def dataset_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "rentals.csv").write_text("hour,rentals\n1,10\n2,12\n")
    (folder / "README.txt").write_text("bikes\n")
    return folder


def log_op(dataset_dir: Path, **kwargs: Any) -> LogArtifactOperator:
    params: dict[str, Any] = {
        "task_id": "log_dataset",
        "name": "bike-dataset",
        "type": "dataset",
        "paths": [str(dataset_dir)],
        "aliases": ["raw"],
        "metadata": {"rows": 2},
        "outlets": [artifact_asset("bike-dataset")],
    }
    params.update(kwargs)
    return LogArtifactOperator(**params)


def test_artifact_asset_identity() -> None:
    asset = artifact_asset("bike-dataset", project="bikes", entity="acme")
    assert isinstance(asset, Asset)
    assert asset.uri == "artifact://acme/bikes/bike-dataset"
    assert asset.name == "acme/bikes/bike-dataset"
    assert asset.group == "artifact"
    assert artifact_asset("bike-dataset").uri == "artifact://default/default/bike-dataset"
    with pytest.raises(ValueError, match="bad/name"):
        artifact_asset("bad/name")


def test_log_emits_asset_event_and_records_ti_run(api: Any, dataset_dir: Path) -> None:
    op = log_op(dataset_dir)
    ctx = make_context(op, try_number=2)
    result = op.execute(ctx)

    version = api.artifact("bike-dataset:latest")
    assert result["version"] == version.version == "v0"
    assert result["digest"] == version.digest and result["digest"].startswith("blake3:")
    assert result["qualified_name"] == "default/default/bike-dataset:v0"
    assert result["file_count"] == 2 and "raw" in result["aliases"]

    extra = ctx["outlet_events"][artifact_asset("bike-dataset")].extra
    assert extra["version"] == "v0" and extra["digest"] == version.digest
    assert extra["qualified_name"] == version.qualified_name
    assert "raw" in extra["aliases"] and extra["try_number"] == 2 and extra["map_index"] == -1
    assert extra["ti_id"] == str(ctx["ti"].id)
    assert not [k for k in extra if any(w in k.lower() for w in ("token", "password", "secret"))]

    (run,) = api.runs(group=f"{DAG_ID}/{RUN_ID}")
    assert run.orchestrator == "airflow" and run.job_type == "log_dataset" and run.name == "log_dataset"
    assert dict(run.step) == {
        "dag_id": DAG_ID,
        "run_id": RUN_ID,
        "task_id": "log_dataset",
        "map_index": -1,
        "try_number": 2,
    }
    assert run.url == f"{BASE_URL}/dags/{DAG_ID}/runs/manual__2026-01-01T00%3A00%3A00%2B00%3A00/tasks/log_dataset"
    assert version.logged_by().id == run.id


def test_extra_link_points_to_the_version_page(api: Any, dataset_dir: Path) -> None:
    op = log_op(dataset_dir)
    op.execute(make_context(op))
    link = ArtifactLink().get_link(op, ti_key=SimpleNamespace())  # type: ignore[arg-type]
    assert link == f"{BASE_URL}/artifacts/versions/default/default/bike-dataset/v0"
    assert ArtifactLink().get_link(log_op(dataset_dir), ti_key=SimpleNamespace()) == ""  # type: ignore[arg-type]
    assert any(isinstance(link, ArtifactLink) for link in op.operator_extra_links)


def test_no_event_unless_the_asset_is_declared(api: Any, dataset_dir: Path, caplog: Any) -> None:
    op = log_op(dataset_dir, outlets=[])
    ctx = make_context(op)
    op.execute(ctx)
    assert len(ctx["outlet_events"]) == 0

    other = log_op(dataset_dir, task_id="other", outlets=[artifact_asset("bike-dataset", project="elsewhere")])
    ctx = make_context(other)
    with caplog.at_level(logging.WARNING):
        other.execute(ctx)
    assert len(ctx["outlet_events"]) == 0
    assert "no asset event" in caplog.text


def test_retried_try_deduplicates_and_keeps_both_runs(api: Any, dataset_dir: Path) -> None:
    first = log_op(dataset_dir)
    first.execute(make_context(first, try_number=1))
    second = log_op(dataset_dir)
    ctx = make_context(second, try_number=2)
    result = second.execute(ctx)
    assert result["version"] == "v0"
    assert [v.version for v in api.artifact_versions("dataset", "bike-dataset")] == ["v0"]
    runs = api.runs(group=f"{DAG_ID}/{RUN_ID}")
    assert sorted(r.step["try_number"] for r in runs) == [1, 2]
    assert ctx["outlet_events"][artifact_asset("bike-dataset")].extra["created"] is False


def test_failing_log_leaves_no_version(api: Any, dataset_dir: Path) -> None:
    op = log_op(dataset_dir, paths=[str(dataset_dir), str(dataset_dir / "missing.csv")])
    ctx = make_context(op)
    with pytest.raises(FileNotFoundError, match=r"missing\.csv"):
        op.execute(ctx)
    assert len(ctx["outlet_events"]) == 0
    with pytest.raises(ap.errors.ArtifactNotFoundError):
        api.artifact("bike-dataset:latest")
    (run,) = api.runs(group=f"{DAG_ID}/{RUN_ID}")
    assert run.status == "failed"


def test_use_downloads_and_records_lineage(api: Any, dataset_dir: Path, tmp_path: Path) -> None:
    log = log_op(dataset_dir)
    log.execute(make_context(log))
    use = UseArtifactOperator(task_id="use_dataset", artifact="bike-dataset:latest", root=str(tmp_path / "dl"))
    result = use.execute(make_context(use))
    assert result["version"] == "v0" and result["qualified_name"] == "default/default/bike-dataset:v0"
    assert result["ref"] == "bike-dataset:latest"
    path = Path(result["path"])
    assert (path / "rentals.csv").read_text() == (dataset_dir / "rentals.csv").read_text()

    version = api.artifact("bike-dataset:v0")
    (consumer,) = version.used_by()
    assert consumer.step["task_id"] == "use_dataset" and consumer.group == f"{DAG_ID}/{RUN_ID}"
    assert (
        ArtifactLink()
        .get_link(use, ti_key=SimpleNamespace())
        .endswith(  # type: ignore[arg-type]
            "/artifacts/versions/default/default/bike-dataset/v0"
        )
    )


def test_use_without_download(api: Any, dataset_dir: Path) -> None:
    log = log_op(dataset_dir)
    log.execute(make_context(log))
    use = UseArtifactOperator(task_id="peek", artifact="bike-dataset:raw", download=False)
    result = use.execute(make_context(use))
    assert result["path"] is None and result["version"] == "v0"


def test_missing_artifact_fails_naming_the_ref(api: Any) -> None:
    use = UseArtifactOperator(task_id="use_missing", artifact="no-such-dataset:v4")
    with pytest.raises(ap.errors.ArtifactNotFoundError, match="no-such-dataset"):
        use.execute(make_context(use))


def triggering_event(asset: Asset, extra: dict[str, Any]) -> Any:
    """An asset event as a DAG run triggered by ``asset`` receives it, with ``extra``."""
    from airflow.sdk.api.datamodels._generated import AssetEventDagRunReference
    from airflow.sdk.execution_time.comms import AssetEventDagRunReferenceResult

    return AssetEventDagRunReferenceResult.from_asset_event_dag_run_reference(
        AssetEventDagRunReference.model_validate(
            {
                "asset": {"name": asset.name, "uri": asset.uri, "extra": {}},
                "extra": extra,
                "source_task_id": "log_dataset",
                "source_dag_id": DAG_ID,
                "source_run_id": "earlier",
                "source_map_index": -1,
                "source_aliases": [],
                "timestamp": "2026-01-01T00:00:00Z",
            }
        )
    )


def test_use_by_asset_pins_the_triggering_version(api: Any, dataset_dir: Path) -> None:
    log = log_op(dataset_dir)
    first = log.execute(make_context(log))
    (dataset_dir / "rentals.csv").write_text("hour,rentals\n1,11\n")
    second = log.execute(make_context(log))
    assert (first["version"], second["version"]) == ("v0", "v1")

    asset = artifact_asset("bike-dataset")
    event = triggering_event(asset, {"qualified_name": first["qualified_name"], "version": "v0"})
    use = UseArtifactOperator(task_id="consume", artifact=asset, download=False)
    triggered = use.execute(make_context(use, triggering_asset_events=TriggeringAssetEventsAccessor.build([event])))
    assert triggered["version"] == "v0" and triggered["ref"] == first["qualified_name"]

    manual = use.execute(make_context(use, triggering_asset_events=TriggeringAssetEventsAccessor.build([])))
    assert manual["version"] == "v1" and manual["ref"] == "default/default/bike-dataset:latest"


def test_distributed_parts_commit_one_version(api: Any, tmp_path: Path) -> None:
    for result, ctx in _write_parts(tmp_path):
        assert result["part"] is True and result["distributed_id"] == f"{DAG_ID}/{RUN_ID}"
        assert len(ctx["outlet_events"]) == 0
    with pytest.raises(ap.errors.ArtifactNotFoundError):
        api.artifact("bike-shards:latest")

    finish = FinishArtifactOperator(
        task_id="finish",
        name="bike-shards",
        type="dataset",
        aliases=["complete"],
        outlets=[artifact_asset("bike-shards")],
    )
    ctx = make_context(finish)
    result = finish.execute(ctx)
    version = api.artifact("bike-shards:complete")
    assert result["version"] == version.version == "v0"
    assert sorted(e.path for e in version.files()) == [f"shards/shard-{i}.csv" for i in range(3)]
    assert ctx["outlet_events"][artifact_asset("bike-shards")].extra["digest"] == version.digest
    parts = [r for r in api.runs(group=f"{DAG_ID}/{RUN_ID}") if r.step["task_id"] == "write_part"]
    assert sorted(r.step["map_index"] for r in parts) == [0, 1, 2]


def _write_parts(
    tmp_path: Path, retry_index: int | None = None, label: str = "part"
) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Run the three mapped part writers (part ``retry_index`` twice); returns each try's result and context."""
    out = []
    for index in range(3):
        shard = tmp_path / f"shard-{index}.csv"
        shard.write_text(f"{label} {index}\n")
        tries = [1, 2] if index == retry_index else [1]
        for try_number in tries:
            part = LogArtifactOperator(
                task_id="write_part",
                name="bike-shards",
                type="dataset",
                distributed=True,
                paths=[{"path": str(shard), "name": f"shards/{shard.name}"}],
            )
            ctx = make_context(part, map_index=index, try_number=try_number)
            out.append((part.execute(ctx), ctx))
    return out


def _finish(try_number: int) -> tuple[dict[str, Any], dict[str, Any]]:
    finish = FinishArtifactOperator(
        task_id="finish", name="bike-shards", type="dataset", outlets=[artifact_asset("bike-shards")]
    )
    ctx = make_context(finish, try_number=try_number)
    return finish.execute(ctx), ctx["outlet_events"][artifact_asset("bike-shards")].extra


def test_retried_part_and_retried_finish_commit_exactly_one_version(api: Any, tmp_path: Path) -> None:
    _write_parts(tmp_path, retry_index=1)  # part 1 ran twice (the first try died after its upsert)
    first, first_event = _finish(try_number=1)
    # The first finish committed, then its worker died: the retry must not merge again (the parts are closed).
    second, second_event = _finish(try_number=2)
    assert second["version"] == first["version"] and second["digest"] == first["digest"]
    (version,) = api.artifact_versions("dataset", "bike-shards")
    assert version.file_count == 3
    assert (first_event["created"], second_event["created"]) == (True, False)
    runs = api.runs(group=f"{DAG_ID}/{RUN_ID}")
    finish_runs = {r.step["try_number"]: r for r in runs if r.step["task_id"] == "finish"}
    assert {v.qualified_name for v in api.run_logged_artifacts(finish_runs[2].id)} == {version.qualified_name}


def test_finish_without_parts_fails_and_commits_nothing(api: Any) -> None:
    with pytest.raises(ValueError, match="no upserted parts"):
        _finish(try_number=1)
    assert api.artifact_versions("dataset", "bike-shards") == []


def test_finish_after_rerun_parts_merges_the_new_parts(api: Any, tmp_path: Path) -> None:
    _write_parts(tmp_path)
    first, _ = _finish(try_number=1)
    _write_parts(tmp_path, label="recomputed")  # the DAG run was cleared: the writers ran again
    second, event = _finish(try_number=2)
    assert (first["version"], second["version"]) == ("v0", "v1") and event["created"] is True


def test_distributed_part_refuses_aliases(api: Any, dataset_dir: Path) -> None:
    op = log_op(dataset_dir, distributed=True)
    with pytest.raises(ValueError, match="FinishArtifactOperator"):
        op.execute(make_context(op))


def test_ap_init_inside_a_task_binds_to_the_task_instance(api: Any, dataset_dir: Path) -> None:
    from airflow.sdk.execution_time.context import set_current_context

    holder = log_op(dataset_dir, task_id="train")
    ctx = make_context(holder, map_index=3, try_number=1)
    assert current_task_context() is None and AirflowRunContextProvider().current() is None
    with set_current_context(ctx):  # type: ignore[arg-type]
        with ap.init() as run:
            art = ap.Artifact("bike-model", "model")
            with art.new_file("model.json") as fh:
                fh.write("{}")
            version = run.log_artifact(art)
        assert run.orchestrator == "airflow" and run.group == f"{DAG_ID}/{RUN_ID}" and run.job_type == "train"
        assert run.url.endswith("/tasks/train/mapped/3")
    assert version.logged_by().step == {
        "dag_id": DAG_ID,
        "run_id": RUN_ID,
        "task_id": "train",
        "map_index": 3,
        "try_number": 1,
    }
    assert len(ctx["outlet_events"]) == 0  # the task's outlet is bike-dataset, not bike-model


def test_templated_fields_are_declared() -> None:
    assert {"name", "type", "paths", "references", "aliases", "metadata", "description", "distributed_id"} <= set(
        LogArtifactOperator.template_fields
    )
    assert {"artifact", "root"} <= set(UseArtifactOperator.template_fields)
    assert {"name", "distributed_id", "aliases"} <= set(FinishArtifactOperator.template_fields)


def test_event_extra_is_json_and_secret_free(api: Any, dataset_dir: Path) -> None:
    import json

    op = log_op(dataset_dir)
    op.execute(make_context(op))
    extra = event_extra(api.artifact("bike-dataset:v0"), make_context(op), created=True, inputs=["a/b/c:v0"])
    assert json.loads(json.dumps(extra)) == extra
    assert extra["inputs"] == ["a/b/c:v0"]


def test_openlineage_facets_carry_the_digest(api: Any, dataset_dir: Path) -> None:
    op = log_op(dataset_dir)
    result = op.execute(make_context(op))
    lineage = op.get_openlineage_facets_on_complete(None)
    (output,) = lineage.outputs
    assert (output.namespace, output.name) == ("artifact://default/default", "bike-dataset")
    assert output.facets["version"].datasetVersion == result["digest"]
    assert [i.namespace for i in lineage.inputs] == ["file"]

    use = UseArtifactOperator(task_id="use", artifact="bike-dataset:v0", download=False)
    use.execute(make_context(use))
    (used,) = use.get_openlineage_facets_on_complete(None).inputs
    assert used.facets["version"].datasetVersion == result["digest"]


def test_connection_settings_never_leak(
    artifact_env: dict[str, str], dataset_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    import json

    secret = "Pa55-w0rd-" + uuid.uuid4().hex
    store, registry = tmp_path / "conn-store", tmp_path / "conn-registry.db"
    monkeypatch.setenv(
        "AIRFLOW_CONN_ARTIFACT_STORE",
        json.dumps(
            {
                "conn_type": "generic",
                "login": "svc",
                "password": secret,
                "extra": {"store": str(store), "registry": f"sqlite:///{registry}", "project": "bikes"},
            }
        ),
    )
    op = log_op(dataset_dir, artifact_conn_id="artifact_store", outlets=[artifact_asset("bike-dataset", "bikes")])
    ctx = make_context(op)
    with caplog.at_level(logging.DEBUG):
        result = op.execute(ctx)
    assert result["qualified_name"] == "default/bikes/bike-dataset:v0"
    assert registry.exists() and store.exists()
    event = ctx["outlet_events"][artifact_asset("bike-dataset", "bikes")].extra
    blobs = b"".join(p.read_bytes() for p in store.rglob("*") if p.is_file()) + registry.read_bytes()
    for text in (json.dumps(result), json.dumps(event), caplog.text):
        assert secret not in text
    assert secret.encode() not in blobs


def test_aws_connection_gives_an_s3_store_its_keys_and_endpoint(
    artifact_env: dict[str, str], lake: Any, dataset_dir: Path, tmp_path: Path, caplog: Any
) -> None:
    import json

    conns = {"artifact_conn_id": "lake_store", "aws_conn_id": "lake_aws"}
    trips = f"{lake.prefix}-refs/trips.csv"  # a reference: listed and fetched with the connection too
    lake.server.client().put_object(Bucket="artifacts", Key=trips, Body=b"trip,minutes\n1,14\n")
    refs = [{"uri": f"s3://artifacts/{trips}", "name": "trips.csv"}]
    log = log_op(dataset_dir, references=refs, outlets=[artifact_asset("bike-dataset", "lake")], **conns)
    ctx = make_context(log)
    with caplog.at_level(logging.DEBUG):
        logged = log.execute(ctx)
        use = UseArtifactOperator(task_id="use", artifact="bike-dataset:latest", root=str(tmp_path / "dl"), **conns)
        used = use.execute(make_context(use))
    assert logged["qualified_name"] == "default/lake/bike-dataset:v0" == used["qualified_name"]
    keys = lake.objects()
    assert sum("/blobs/blake3/" in k for k in keys) == 2 and sum("/manifests/blake3/" in k for k in keys) == 1
    assert (Path(used["path"]) / "rentals.csv").read_text() == (dataset_dir / "rentals.csv").read_text()
    assert (Path(used["path"]) / "trips.csv").read_text() == "trip,minutes\n1,14\n"
    event = ctx["outlet_events"][artifact_asset("bike-dataset", "lake")].extra
    for text in (json.dumps(logged), json.dumps(used), json.dumps(event), caplog.text):
        assert lake.secret not in text
    assert lake.secret.encode() not in lake.registry.read_bytes()


def test_google_connection_gives_a_gs_store_its_service_account_key(
    artifact_env: dict[str, str],
    fake_gcs: Any,
    dataset_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: Any,
) -> None:
    import json

    from servers import TokenServer

    prefix = f"gcs-{uuid.uuid4().hex[:10]}"
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", fake_gcs.endpoint)
    trips = f"{prefix}-refs/trips.csv"  # a reference, listed and fetched with the key too
    fake_gcs.client().bucket("artifacts").blob(trips).upload_from_string(b"trip,minutes\n1,14\n")
    store = {"store": f"gs://artifacts/{prefix}", "registry": f"sqlite:///{tmp_path / 'gcs.db'}", "project": "gcs"}
    monkeypatch.setenv("AIRFLOW_CONN_GCS_STORE", json.dumps({"conn_type": "generic", "extra": store}))
    with TokenServer() as tokens:
        key = tokens.service_account_key()
        extra = {"keyfile_dict": json.dumps(key), "project": "test-project"}
        monkeypatch.setenv("AIRFLOW_CONN_GCS_KEY", json.dumps({"conn_type": "google_cloud_platform", "extra": extra}))
        conns = {"artifact_conn_id": "gcs_store", "gcp_conn_id": "gcs_key"}
        refs = [{"uri": f"gs://artifacts/{trips}", "name": "trips.csv"}]
        log = log_op(dataset_dir, references=refs, outlets=[artifact_asset("bike-dataset", "gcs")], **conns)
        with caplog.at_level(logging.DEBUG):
            logged = log.execute(make_context(log))
            use = UseArtifactOperator(task_id="use", artifact="bike-dataset:latest", root=str(tmp_path / "dl"), **conns)
            used = use.execute(make_context(use))
        assert tokens.grants >= 2  # the store and the reference handler each got a token signed with the key
    assert logged["qualified_name"] == "default/gcs/bike-dataset:v0" == used["qualified_name"]
    names = [b.name for b in fake_gcs.client().list_blobs("artifacts", prefix=prefix + "/")]
    assert sum("/blobs/blake3/" in n for n in names) == 2 and sum("/manifests/blake3/" in n for n in names) == 1
    assert (Path(used["path"]) / "trips.csv").read_text() == "trip,minutes\n1,14\n"
    key_line = key["private_key"].splitlines()[1]  # a line of the private key's body
    for text in (json.dumps(logged), json.dumps(used), caplog.text):
        assert key_line not in text
    assert key_line.encode() not in (tmp_path / "gcs.db").read_bytes()

    with TokenServer(refuse=True) as refusing:
        bad = {"keyfile_dict": json.dumps(refusing.service_account_key())}
        monkeypatch.setenv("AIRFLOW_CONN_GCS_BAD", json.dumps({"conn_type": "google_cloud_platform", "extra": bad}))
        log = log_op(dataset_dir, artifact_conn_id="gcs_store", gcp_conn_id="gcs_bad")
        refused = r"no access token for the credentials of Airflow connection 'gcs_bad'"
        with pytest.raises(ap.errors.StoreError, match=refused):
            log.execute(make_context(log))


def test_aws_connection_it_cannot_apply_is_refused_by_name(
    artifact_env: dict[str, str], dataset_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from artifact_plugins.airflow.settings import resolve_settings

    def conn(name: str, **fields: Any) -> None:
        monkeypatch.setenv(f"AIRFLOW_CONN_{name.upper()}", json.dumps({"conn_type": "aws", **fields}))

    conn("assume", extra={"role_arn": "arn:aws:iam::1:role/x", "region_name": "eu-west-1"})
    unusable = r"'assume' has extra keys artifact_plugins cannot apply: \['role_arn'\]"
    with pytest.raises(ap.errors.InvalidConfigError, match=unusable):
        resolve_settings(None, "assume", store="s3://bucket/p")
    conn("half", login="AKIAEXAMPLE")
    with pytest.raises(ap.errors.InvalidConfigError, match="'half' has an access key id without a secret"):
        resolve_settings(None, "half", store="s3://bucket/p")
    # The store of this test is a local directory: S3 keys for it are a mistake, said before any work.
    conn("keys", login="AKIAEXAMPLE", password="example-secret-key")
    log = log_op(dataset_dir, aws_conn_id="keys")
    with pytest.raises(ap.errors.InvalidConfigError, match=r"connection 'keys' gives s3:// credentials, but the store"):
        log.execute(make_context(log))
    monkeypatch.setenv(
        "AIRFLOW_CONN_IMPERSONATE",
        json.dumps({"conn_type": "google_cloud_platform", "extra": {"impersonation_chain": "sa@p.iam"}}),
    )
    unusable = r"'impersonate' has extra keys artifact_plugins cannot apply"
    with pytest.raises(ap.errors.InvalidConfigError, match=unusable):
        resolve_settings(None, gcp_conn_id="impersonate", store="gs://bucket/p")
    with pytest.raises(ap.errors.InvalidConfigError, match="the store is either s3:// or gs://"):
        resolve_settings(None, "keys", "impersonate", store="gs://bucket/p")
    # Region and endpoint alone are fine: the keys then come from boto3's chain, as with the provider.
    conn("chain", extra={"region_name": "eu-west-1", "endpoint_url": "http://127.0.0.1:1"})
    settings = resolve_settings(None, "chain", store="s3://bucket/p")
    assert settings is not None and settings.store_access is not None
    assert dict(settings.store_access.options) == {"endpoint_url": "http://127.0.0.1:1", "region": "eu-west-1"}
    assert settings.store_access.session().region_name == "eu-west-1"


def test_provider_module_imports_without_airflow() -> None:
    code = (
        "import sys, artifact_plugins.airflow.context as c;"
        "assert 'airflow' not in sys.modules, 'airflow imported';"
        "assert c.AirflowRunContextProvider().current() is None"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_postgres_connection_supplies_a_registry_url_that_is_redacted_when_described(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import json

    from artifact_plugins.airflow.settings import connection_settings, resolve_settings

    monkeypatch.setenv(
        "AIRFLOW_CONN_TEAM_REGISTRY",
        json.dumps(
            {
                "conn_type": "postgres",
                "host": "db.internal",
                "port": 5432,
                "schema": "artifacts",
                "login": "writer",
                "password": "pg-Pa55",
                "extra": {"store": "/srv/artifacts", "entity": "acme"},
            }
        ),
    )
    values = connection_settings("team_registry")
    assert values["registry"] == "postgresql+psycopg://writer:pg-Pa55@db.internal:5432/artifacts"
    settings = resolve_settings("team_registry", project="bikes")
    assert settings is not None and (settings.entity, settings.project) == ("acme", "bikes")
    assert "pg-Pa55" not in json.dumps(settings.describe())
    assert resolve_settings(None) is None

    monkeypatch.setenv("AIRFLOW_CONN_TYPO", json.dumps({"conn_type": "generic", "extra": {"regsitry": "x"}}))
    with pytest.raises(ValueError, match="regsitry"):
        connection_settings("typo")


def test_a_connection_whose_extra_is_not_json_fails_the_task(
    api: Any, dataset_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Airflow reads malformed extra as {} (logging an error): the task would log into the worker's
    # default store and registry instead of the connection's.
    monkeypatch.setenv("AIRFLOW_CONN_BROKEN_EXTRA", "generic://?__extra__=%7Bnot-json")
    op = log_op(dataset_dir, artifact_conn_id="broken_extra")
    with pytest.raises(ap.errors.InvalidConfigError, match=r"connection 'broken_extra': its extra is not valid JSON"):
        op.execute(make_context(op))
    assert api.artifact_versions("dataset", "bike-dataset") == []


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"distributed": True, "aliases": None, "tags": ["t"]}, "metadata, tags of a distributed"),
        ({"paths": None}, "nothing to log; give paths or references"),
        ({"metadata": "{'a': 1}"}, "metadata \"{'a': 1}\" is not a mapping"),
        ({"paths": [{"name": "x"}]}, "paths item {'name': 'x'} has no 'path'"),
        ({"paths": None, "references": [{"name": "x"}]}, "references item {'name': 'x'} has no 'uri'"),
    ],
)
def test_operator_inputs_are_refused_naming_the_field(
    api: Any, dataset_dir: Path, fields: dict[str, Any], message: str
) -> None:
    op = log_op(dataset_dir, **fields)
    with pytest.raises(ap.errors.InvalidInputError) as info:
        op.execute(make_context(op))
    assert message in str(info.value)
    assert api.artifact_versions("dataset", "bike-dataset") == []


def test_metadata_rendered_as_a_json_string_is_read_as_an_object(api: Any, dataset_dir: Path) -> None:
    op = log_op(dataset_dir, metadata='{"rows": 2, "day": "2026-01-01"}')
    op.execute(make_context(op))
    assert api.artifact("bike-dataset:v0").metadata == {"rows": 2, "day": "2026-01-01"}


def test_finish_takes_tags(api: Any, tmp_path: Path) -> None:
    _write_parts(tmp_path)
    finish = FinishArtifactOperator(task_id="finish", name="bike-shards", type="dataset", tags=["nightly"])
    finish.execute(make_context(finish))
    assert api.artifact("bike-shards:v0").tags == ["nightly"]


def test_use_by_asset_ignores_an_event_naming_another_artifact(api: Any, dataset_dir: Path, capsys: Any) -> None:
    log = log_op(dataset_dir)
    log.execute(make_context(log))
    other = log_op(dataset_dir, name="other-dataset", outlets=[])
    other.execute(make_context(other))

    asset = artifact_asset("bike-dataset")
    event = triggering_event(asset, {"qualified_name": "default/default/other-dataset:v0"})  # made by hand, say
    use = UseArtifactOperator(task_id="consume", artifact=asset, download=False)
    used = use.execute(make_context(use, triggering_asset_events=TriggeringAssetEventsAccessor.build([event])))
    assert used["qualified_name"] == "default/default/bike-dataset:v0"
    printed = capsys.readouterr()
    assert "names 'default/default/other-dataset:v0', a version of another artifact" in printed.out + printed.err


def test_a_file_reference_and_its_path_are_one_openlineage_dataset(tmp_path: Path) -> None:
    from artifact_plugins.airflow.openlineage import LineageDataset

    path = tmp_path / "a b.csv"
    assert LineageDataset.for_location(path.as_uri()) == LineageDataset.for_location(str(path))
    assert LineageDataset.for_location("s3://bucket/key.csv") == LineageDataset("s3://bucket", "key.csv")
