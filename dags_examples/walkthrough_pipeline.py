"""The walkthrough as an Airflow DAG: make a dataset, log it, use it, train and log a model.

``log_dataset`` and ``train`` announce their versions as asset events on ``artifact_asset(...)``;
``use_dataset`` records which exact version it read. Open the DAG run's "Artifacts" tab (or the
task's "Artifact" extra link) to see the versions and the lineage connecting them.
"""

from __future__ import annotations

import csv
import json
import random
import tempfile
from pathlib import Path
from typing import Any

from airflow.sdk import dag, task

import artifact_plugins as ap
from artifact_plugins.airflow import LogArtifactOperator, UseArtifactOperator, artifact_asset

PROJECT = "bikes"  # the Prefect walkthrough logs to the same project: one lineage graph for both


@task
def make_dataset(rows: int = 200, seed: int = 7) -> str:
    """Write a small synthetic bike-rental dataset (a CSV and a README) and return its folder."""
    folder = Path(tempfile.mkdtemp(prefix="bike-dataset-"))
    rng = random.Random(seed)
    with (folder / "rentals.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["hour", "temperature", "rentals"])
        for _ in range(rows):
            hour, temperature = rng.randrange(24), round(rng.uniform(-5, 35), 1)
            writer.writerow([hour, temperature, max(0, int(10 + 3 * temperature + rng.gauss(0, 5)))])
    (folder / "README.txt").write_text("Synthetic hourly bike rentals.\n")
    return str(folder)


@task(outlets=[artifact_asset("bike-model", project=PROJECT)])
def train(dataset: dict[str, Any]) -> str:
    """Fit rentals ~ temperature on the dataset version used upstream and log the model.

    ``ap.init()`` needs no run identity here: inside an Airflow task it binds to the task instance.
    """
    with (Path(dataset["path"]) / "rentals.csv").open() as fh:
        rows = [(float(r["temperature"]), float(r["rentals"])) for r in csv.DictReader(fh)]
    mean_t = sum(t for t, _ in rows) / len(rows)
    mean_r = sum(r for _, r in rows) / len(rows)
    slope = sum((t - mean_t) * (r - mean_r) for t, r in rows) / sum((t - mean_t) ** 2 for t, _ in rows)
    with ap.init(project=PROJECT) as run:
        run.use_artifact(dataset["qualified_name"])
        model = ap.Artifact("bike-model", type="model", metadata={"slope": round(slope, 4)})
        with model.new_file("model.json") as fh:
            json.dump({"slope": slope, "intercept": mean_r - slope * mean_t}, fh)
        version = run.log_artifact(model, aliases=["candidate"])
    return version.qualified_name


@dag(dag_id="artifact_walkthrough", schedule=None, tags=["artifact_plugins", "example"])
def artifact_walkthrough() -> None:
    """Dataset -> log -> use -> train -> model, with lineage in one DAG run."""
    log_dataset = LogArtifactOperator(
        task_id="log_dataset",
        name="bike-dataset",
        type="dataset",
        paths=[make_dataset()],
        aliases=["raw"],
        metadata={"source": "synthetic", "run": "{{ run_id }}"},
        description="Hourly bike rentals",
        project=PROJECT,
        outlets=[artifact_asset("bike-dataset", project=PROJECT)],
    )
    use_dataset = UseArtifactOperator(
        task_id="use_dataset",
        artifact="bike-dataset:latest",
        project=PROJECT,
        inlets=[artifact_asset("bike-dataset", project=PROJECT)],
    )
    log_dataset >> use_dataset
    train(use_dataset.output)


artifact_walkthrough()
