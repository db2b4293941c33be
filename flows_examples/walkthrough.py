"""The walkthrough pipeline as a Prefect flow: preprocess -> train -> evaluate.

Two styles side by side:

* the adapter's tasks (``log_artifact``, ``use_artifact``) placed straight in the flow;
* ``ap.init()`` / ``run.use_artifact()`` / ``run.log_artifact()`` inside ordinary ``@task`` code,
  which binds to the enclosing task run without being told.

Every version is recorded with the task run that made or used it, grouped by the flow run, and
shows up in the Prefect UI as keyed artifacts (version table + lineage chart), inputs cards
and events. Run it with ``python flows_examples/walkthrough.py`` (embedded store, ephemeral
Prefect server); ``artifacts lineage bikes/bike-model:latest`` draws the result.
"""

from __future__ import annotations

import csv
import json
import random
import tempfile
from pathlib import Path

from prefect import flow, task
from prefect.cache_policies import TASK_SOURCE

import artifact_plugins as ap
from artifact_plugins.prefect import ArtifactDigests, ArtifactRef, log_artifact, use_artifact

PROJECT = "bikes"


@task
def collect_raw(workdir: str, rows: int, seed: int) -> Path:
    """Pretend to fetch raw rental counts: a CSV of (hour, temperature, rentals)."""
    rng = random.Random(seed)
    path = Path(workdir) / "raw" / "rentals.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["hour", "temperature", "rentals"])
        for _ in range(rows):
            hour, temp = rng.randrange(24), round(rng.uniform(-5, 35), 1)
            writer.writerow([hour, temp, max(0, int(10 * temp + 3 * hour + rng.gauss(0, 20)))])
    return path


@task
def preprocess(raw: ArtifactRef, workdir: str) -> ArtifactRef:
    """Clean the raw data into train/test splits, logged as ``bike-dataset`` (user-task style)."""
    with ap.init(project=PROJECT) as run:
        source = run.use_artifact(raw.qualified_name)
        rows = list(csv.DictReader((source.download() / "rentals.csv").open()))
        clean = [r for r in rows if -5 <= float(r["temperature"]) <= 35]
        out = Path(workdir) / "dataset"
        out.mkdir(parents=True, exist_ok=True)
        cut = int(len(clean) * 0.8)
        for split, part in (("train", clean[:cut]), ("test", clean[cut:])):
            with (out / f"{split}.csv").open("w", newline="") as fh:
                writer = csv.DictWriter(fh, fieldnames=["hour", "temperature", "rentals"])
                writer.writeheader()
                writer.writerows(part)
        art = ap.Artifact("bike-dataset", type="dataset", metadata={"rows": len(clean), "split": 0.8})
        art.add_dir(str(out))
        version = run.log_artifact(art)
    return ArtifactRef.from_version(version)


@task(cache_policy=ArtifactDigests() + TASK_SOURCE, persist_result=True)
def train(dataset: ArtifactRef, workdir: str) -> Path:
    """Fit rentals ~ a*temperature + b by least squares; cached on the dataset's digest and the
    workdir (the cached result is a path in it): run twice with the same ``workdir`` for a hit."""
    assert dataset.path is not None, "train needs a downloaded dataset"
    rows = list(csv.DictReader((dataset.path / "train.csv").open()))
    xs = [float(r["temperature"]) for r in rows]
    ys = [float(r["rentals"]) for r in rows]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    var = sum((x - mx) ** 2 for x in xs) or 1.0
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var
    model = Path(workdir) / "model" / "model.json"
    model.parent.mkdir(parents=True, exist_ok=True)
    model.write_text(json.dumps({"slope": slope, "intercept": my - slope * mx}))
    return model.parent


@task
def evaluate(model: ArtifactRef, dataset: ArtifactRef) -> float:
    """Mean absolute error of the model on the test split (used artifacts come downloaded)."""
    assert model.path is not None and dataset.path is not None
    params = json.loads((model.path / "model.json").read_text())
    rows = list(csv.DictReader((dataset.path / "test.csv").open()))
    errors = [abs(params["slope"] * float(r["temperature"]) + params["intercept"] - float(r["rentals"])) for r in rows]
    return sum(errors) / max(len(errors), 1)


@flow(name="bike-walkthrough")
def walkthrough(workdir: str | None = None, rows: int = 500, seed: int = 7) -> dict[str, str]:
    """preprocess -> train -> evaluate, with every artifact versioned and its lineage recorded."""
    workdir = workdir or tempfile.mkdtemp(prefix="bike-walkthrough-")
    raw_file = collect_raw(workdir, rows, seed)
    raw = log_artifact("bike-raw", "raw_data", raw_file, project=PROJECT, description="hourly rentals")
    dataset_ref = preprocess(raw, workdir)
    dataset = use_artifact(dataset_ref, project=PROJECT)
    model_dir = train(dataset, workdir)
    model = log_artifact("bike-model", "model", model_dir, project=PROJECT, aliases=["candidate"])
    used_model = use_artifact(model, project=PROJECT)
    mae = evaluate(used_model, dataset)
    report = Path(workdir) / "report.json"
    report.write_text(json.dumps({"mae": mae, "model": model.qualified_name}))
    log_artifact("bike-eval", "report", report, project=PROJECT, metadata={"mae": mae})
    return {"raw": raw.qualified_name, "dataset": dataset.qualified_name, "model": model.qualified_name}


if __name__ == "__main__":
    result = walkthrough()
    print(json.dumps(result, indent=2))
    print(ap.Api().lineage(result["model"], collapse="group").to_mermaid())
