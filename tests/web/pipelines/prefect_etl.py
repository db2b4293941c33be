"""A real Prefect flow for the browser tests: ingest raw rentals, then clean them into ``bike-dataset``.

Run as ``python prefect_etl.py <workdir>`` with ``ARTIFACT_PLUGINS_*`` pointing at the registry under
test (Prefect runs it on an ephemeral local server). Plain ``@task`` functions call ``ap.init()``,
``ap.use_artifact()`` and ``ap.log_artifact()``; the Prefect run-context provider binds them to the
task runs, grouped by the flow run.
"""

from __future__ import annotations

import sys
from pathlib import Path

from prefect import flow, task

import artifact_plugins as ap

XSS = "<img src=x onerror=window.__xss=1>"


@task(task_run_name="ingest " + XSS)
def ingest(workdir: str) -> str:
    """Log the raw export (payloads in the run name and metadata must show up as text)."""
    raw = Path(workdir) / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    (raw / "rentals.csv").write_text("hour,temp,rentals\n" + "".join(f"{h},{10 + h % 7},{40 + h}\n" for h in range(48)))
    (raw / f"{XSS}.txt").write_text("a file whose name is a payload\n")
    with ap.init() as run:
        art = ap.Artifact(
            "raw-rentals", "raw-data", description="Hourly export.\n" + XSS, metadata={"source": XSS, "rows": 48}
        )
        art.add_dir(raw)
        return run.log_artifact(art).qualified_name


@task
def preprocess(raw_ref: str, workdir: str) -> str:
    """Clean the raw export into train/test splits."""
    raw = ap.use_artifact(raw_ref)
    rows = (raw.download(Path(workdir) / "raw-copy") / "rentals.csv").read_text().splitlines()
    out = Path(workdir) / "dataset"
    (out / "splits").mkdir(parents=True, exist_ok=True)
    (out / "splits" / "train.csv").write_text("\n".join(rows[:40]) + "\n")
    (out / "splits" / "test.csv").write_text("\n".join(rows[:1] + rows[40:]) + "\n")
    art = ap.Artifact(
        "bike-dataset",
        "dataset",
        description="Train/test splits of the hourly rentals.",
        metadata={"train_rows": 39, "test_rows": 8, "note": XSS},
    )
    art.add_dir(out)
    return ap.log_artifact(art, aliases=["production"]).qualified_name


@flow(name="bike-etl")
def etl(workdir: str) -> str:
    """ingest -> preprocess."""
    return preprocess(ingest(workdir), workdir)


if __name__ == "__main__":
    print(etl(sys.argv[1]))
