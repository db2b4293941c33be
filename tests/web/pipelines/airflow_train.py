"""A real Airflow DAG run for the browser tests: train a model on ``bike-dataset`` and evaluate it.

Run as ``python airflow_train.py`` in the Airflow environment, with ``AIRFLOW_HOME`` migrated and
``ARTIFACT_PLUGINS_*`` pointing at the registry the Prefect flow filled. ``@task`` functions call
``ap.use_artifact()`` / ``ap.log_artifact()``; the Airflow run-context provider binds them to the
task instances, grouped by the DAG run. The DAG is registered with ``sync_bag_to_db`` (see
``notes/airflow.md``) and run with ``dag.test()``.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from airflow.sdk import dag, task

import artifact_plugins as ap


@task
def train() -> str:
    """Fit a (pretend) model on the dataset's train split."""
    data = ap.use_artifact("bike-dataset:latest")
    rows = len((data.download(Path(tempfile.mkdtemp()) / "ds") / "splits" / "train.csv").read_text().splitlines())
    out = Path(tempfile.mkdtemp()) / "model"
    out.mkdir()
    (out / "weights.json").write_text(json.dumps({"slope": 1.0, "rows": rows}))
    art = ap.Artifact(
        "bike-model",
        "model",
        description="Linear model of rentals per hour.",
        metadata={"rows": rows, "framework": "numpy"},
    )
    art.add_dir(out)
    return ap.log_artifact(art, aliases=["candidate"]).qualified_name


@task
def evaluate(model_ref: str) -> str:
    """Score the model on the test split and log the report."""
    ap.use_artifact(model_ref)
    ap.use_artifact("bike-dataset:latest")
    report = Path(tempfile.mkdtemp()) / "report.json"
    report.write_text(json.dumps({"mae": 3.2}))
    art = ap.Artifact("eval-report", "report", metadata={"mae": 3.2})
    art.add_file(report)
    return ap.log_artifact(art).qualified_name


@dag(dag_id="bike_train", schedule=None, catchup=False)
def bike_train() -> None:
    """train -> evaluate."""
    evaluate(train())


if __name__ == "__main__":
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db

    the_dag = bike_train()
    DagBundlesManager().sync_bundles_to_db()
    bag = DagBag(dag_folder=os.devnull)
    bag.bag_dag(the_dag)
    sync_bag_to_db(bag, bundle_name="dags-folder", bundle_version=None)
    run = the_dag.test()
    print("dag run state:", run.state)
    raise SystemExit(0 if str(run.state) in ("success", "DagRunState.SUCCESS") else 1)
