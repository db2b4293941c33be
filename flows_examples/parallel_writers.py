"""Parallel writers: mapped tasks each upsert one shard, one task finishes them into a version.

Every ``upsert_artifact`` task run adds its shard under the flow run id (the default
distributed id); ``finish_artifact`` waits for the parts it is given and merges them into a
single version of ``bike-shards``. A shard task that fails leaves no version behind: nothing
is committed until the finish. Run with ``python flows_examples/parallel_writers.py``.
"""

from __future__ import annotations

import json
import random
import tempfile
from pathlib import Path

from prefect import flow, task, unmapped

from artifact_plugins.prefect import ArtifactRef, finish_artifact, upsert_artifact

PROJECT = "bikes"


@task
def write_shard(index: int, workdir: str, rows: int) -> dict[str, str]:
    """Produce one shard file; returns {entry name: local path} for ``upsert_artifact``."""
    rng = random.Random(index)
    path = Path(workdir) / f"shard-{index:03d}.jsonl"
    with path.open("w") as fh:
        for _ in range(rows):
            fh.write(json.dumps({"station": index, "rentals": rng.randrange(100)}) + "\n")
    return {f"shards/{path.name}": str(path)}


@flow(name="bike-parallel-writers")
def parallel_writers(shards: int = 4, rows: int = 100, workdir: str | None = None) -> ArtifactRef:
    """Write ``shards`` shards in parallel and assemble them into one artifact version."""
    workdir = workdir or tempfile.mkdtemp(prefix="bike-shards-")
    files = write_shard.map(range(shards), workdir=unmapped(workdir), rows=unmapped(rows))
    parts = upsert_artifact.map(
        name=unmapped("bike-shards"),
        type=unmapped("dataset"),
        paths=files,
        project=unmapped(PROJECT),
    )
    return finish_artifact(
        "bike-shards",
        "dataset",
        parts=parts,
        project=PROJECT,
        metadata={"shards": shards, "rows_per_shard": rows},
    )


if __name__ == "__main__":
    version = parallel_writers()
    print(f"{version.qualified_name}: {version.file_count} files, {version.digest}")
