"""The walkthrough pipeline on the embedded default: preprocess -> train -> evaluate, then lineage.

Run it with ``artifacts demo``. It writes small generated files into a work directory, logs
them, uses them and prints the lineage graph — no server, no configuration.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from .core.api import Api
from .core.artifact import Artifact
from .core.lineage import LineageGraph
from .core.run import init
from .core.table import Table


def run_demo(workdir: Path, project: str = "bikes") -> LineageGraph:
    """Log a dataset, use it to 'train' a model, evaluate it, and return the model's lineage."""
    rng = random.Random(7)
    raw = workdir / "raw"
    (raw / "images").mkdir(parents=True, exist_ok=True)
    for i in range(20):
        (raw / "images" / f"bike_{i:02d}.txt").write_text(f"bike {i} pixels {rng.random():.6f}\n")
    (raw / "labels.csv").write_text("id,label\n" + "".join(f"{i},{rng.choice(['road', 'mtb'])}\n" for i in range(20)))

    with init(job_type="preprocess", project=project, group="demo") as run:
        data = Artifact("bike-dataset", type="dataset", description="bike photos and labels", metadata={"rows": 20})
        data.add_dir(raw / "images", name="images")
        data.add_file(raw / "labels.csv")
        data.add(Table(columns=["split", "rows"], data=[["train", 16], ["test", 4]]), "splits")
        dataset = run.log_artifact(data, aliases=["demo"])

    with init(job_type="train", project=project, group="demo") as run:
        used = run.use_artifact("bike-dataset:latest")
        root = used.download(workdir / "downloads" / "dataset")
        labels = (root / "labels.csv").read_text().splitlines()[1:]
        weights = {"road": sum(1 for line in labels if line.endswith("road")), "mtb": len(labels)}
        model = Artifact("bike-model", type="model", metadata={"trained_on": used.qualified_name})
        with model.new_file("model.json") as f:
            json.dump(weights, f)
        trained = run.log_artifact(model, aliases=["candidate"])

    with init(job_type="evaluate", project=project, group="demo") as run:
        m = run.use_artifact("bike-model:candidate")
        d = run.use_artifact(f"bike-dataset@{dataset.digest}")
        result = Artifact("bike-eval", type="result")
        result.add(Table(columns=["metric", "value"], data=[["accuracy", 0.9], ["files", d.file_count]]), "metrics")
        run.log_artifact(result)
        Api(project=project).set_alias(m.qualified_name.split("/", 2)[2], "production")

    return Api(project=project).lineage(f"bike-model:{trained.version}", collapse="explode")
