"""An asset-triggered consumer: runs whenever a new ``bike-dataset`` version is logged.

``UseArtifactOperator`` given the asset uses the exact version announced by the triggering asset
event (``:latest`` when run by hand) and records that use, which Airflow itself does not.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import dag, task

from artifact_plugins.airflow import UseArtifactOperator, artifact_asset

BIKE_DATASET = artifact_asset("bike-dataset", project="bikes")


@task
def summarize(used: dict[str, Any]) -> dict[str, Any]:
    """Report which version this run consumed."""
    print(f"consumed {used['qualified_name']} ({used['digest']}) at {used['path']}")
    return {"qualified_name": used["qualified_name"], "file_count": used["file_count"]}


@dag(dag_id="artifact_consumer", schedule=[BIKE_DATASET], tags=["artifact_plugins", "example"])
def artifact_consumer() -> None:
    """Use the version that triggered the run."""
    use = UseArtifactOperator(task_id="use_dataset", artifact=BIKE_DATASET, inlets=[BIKE_DATASET])
    summarize(use.output)


artifact_consumer()
