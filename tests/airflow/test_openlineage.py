"""OpenLineage: a real DAG run with the provider's file transport records artifact digests as dataset versions.

OpenLineage reads its configuration once per process, so the DAG runs in a child process configured
with the file transport (the rest of the suite runs with OpenLineage disabled).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    from pathlib import Path

    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db
    from airflow.sdk import DAG

    import artifact_plugins as ap
    from artifact_plugins.airflow import LogArtifactOperator, UseArtifactOperator, artifact_asset

    data = Path(sys.argv[1])
    with DAG(dag_id="artifact_openlineage", schedule=None) as dag:
        log = LogArtifactOperator(task_id="log_dataset", name="ol-dataset", type="dataset", paths=[str(data)],
                                  outlets=[artifact_asset("ol-dataset")])
        use = UseArtifactOperator(task_id="use_dataset", artifact="ol-dataset:latest", download=False)
        log >> use

    DagBundlesManager().sync_bundles_to_db()
    bag = DagBag(dag_folder=os.devnull)
    bag.bag_dag(dag)
    sync_bag_to_db(bag, bundle_name="dags-folder", bundle_version=None)
    run = dag.test()
    result = {"state": str(run.state), "digest": ap.Api().artifact("ol-dataset:v0").digest}
    Path(sys.argv[2]).write_text(json.dumps(result))
    """
)


def test_file_transport_events_carry_the_digest(airflow_db: Path, artifact_env: dict[str, str], tmp_path: Path) -> None:
    events_file = tmp_path / "openlineage.jsonl"
    data = tmp_path / "ol.csv"
    data.write_text("x\n1\n")
    script = tmp_path / "ol_run.py"
    script.write_text(SCRIPT)
    env = {
        **os.environ,
        "AIRFLOW__OPENLINEAGE__DISABLED": "False",
        "AIRFLOW__OPENLINEAGE__NAMESPACE": "artifact-tests",
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(
            {"type": "file", "log_file_path": str(events_file), "append": True}
        ),
    }
    result_file = tmp_path / "result.json"
    proc = subprocess.run(
        [sys.executable, str(script), str(data), str(result_file)],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0 and result_file.exists(), proc.stdout[-4000:] + proc.stderr[-4000:]
    result = json.loads(result_file.read_text())
    assert result["state"].endswith("success")

    events = [json.loads(line) for line in events_file.read_text().splitlines() if line.strip()]
    complete: dict[str, Any] = {
        e["job"]["name"].rsplit(".", 1)[-1]: e
        for e in events
        if e.get("eventType") == "COMPLETE" and e["job"]["name"].startswith("artifact_openlineage.")
    }
    assert set(complete) == {"log_dataset", "use_dataset"}

    (output,) = complete["log_dataset"]["outputs"]
    assert (output["namespace"], output["name"]) == ("artifact://default/default", "ol-dataset")
    assert output["facets"]["version"]["datasetVersion"] == result["digest"]
    assert [(i["namespace"], i["name"]) for i in complete["log_dataset"]["inputs"]] == [("file", str(data))]

    (used,) = complete["use_dataset"]["inputs"]
    assert (used["namespace"], used["name"]) == ("artifact://default/default", "ol-dataset")
    assert used["facets"]["version"]["datasetVersion"] == result["digest"]
