"""Parallel writers: mapped tasks each contribute a part, one task commits a single version.

Each mapped ``write_part`` upserts its shard under the DAG run's distributed id
(``<dag_id>/<run_id>``, the default); ``finish`` merges the parts into one version of
``bike-shards`` and announces it on the asset. A retried part replaces its earlier attempt.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from airflow.sdk import dag, task

from artifact_plugins.airflow import FinishArtifactOperator, LogArtifactOperator, artifact_asset

PROJECT = "bikes"


@task
def make_shards(count: int = 3) -> list[list[dict[str, Any]]]:
    """Write ``count`` shard files; return one ``paths`` list per mapped writer."""
    folder = Path(tempfile.mkdtemp(prefix="bike-shards-"))
    parts = []
    for index in range(count):
        shard = folder / f"shard-{index}.csv"
        shard.write_text("hour,rentals\n" + "".join(f"{h},{(h * 7 + index) % 50}\n" for h in range(24)))
        parts.append([{"path": str(shard), "name": f"shards/{shard.name}"}])
    return parts


@dag(dag_id="artifact_parallel_writers", schedule=None, tags=["artifact_plugins", "example"])
def artifact_parallel_writers() -> None:
    """Three mapped writers, one finished version."""
    write = LogArtifactOperator.partial(
        task_id="write_part", name="bike-shards", type="dataset", distributed=True, project=PROJECT
    ).expand(paths=make_shards())
    finish = FinishArtifactOperator(
        task_id="finish",
        name="bike-shards",
        type="dataset",
        aliases=["complete"],
        project=PROJECT,
        outlets=[artifact_asset("bike-shards", project=PROJECT)],
    )
    write >> finish


artifact_parallel_writers()
