"""Lineage graphs (explode / group / type) with their exports, and run-context providers."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest

import artifact_plugins as ap
from artifact_plugins.core import run_context
from artifact_plugins.core.errors import InvalidInputError
from artifact_plugins.core.run_context import AliasMove, RunContext


def new_draft(tmp_path, name: str, content: str, type: str = "dataset") -> ap.Artifact:
    p = tmp_path / "src" / name / content
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(content)
    art = ap.Artifact(name, type)
    art.add_file(p, name="f.txt")
    return art


@pytest.fixture
def pipeline(tmp_path) -> dict[str, Any]:
    """raw --(prep, flow A)--> dataset; in flow B one step uses dataset, another logs model; eval uses model."""
    with ap.init(job_type="ingest", group="flow-a") as ingest:
        raw = ingest.log_artifact(new_draft(tmp_path, "raw", "r"))
    with ap.init(job_type="prep", group="flow-a") as prep:
        prep.use_artifact("raw:latest")
        dataset = prep.log_artifact(new_draft(tmp_path, "bike-dataset", "d"))
    with ap.init(job_type="load", group="flow-b") as load:
        load.use_artifact("bike-dataset:latest")
    with ap.init(job_type="train", group="flow-b") as train:
        model = train.log_artifact(new_draft(tmp_path, "bike-model", "m", "model"))
    with ap.init(job_type="eval", group="flow-c") as evaluate:
        evaluate.use_artifact("bike-model:v0")
    return {
        "raw": raw,
        "dataset": dataset,
        "model": model,
        "ingest": ingest,
        "prep": prep,
        "load": load,
        "train": train,
        "eval": evaluate,
    }


def labels(graph) -> set[str]:
    return {n.label for n in graph.nodes}


def edge_labels(graph) -> set[tuple[str, str, str]]:
    by_id = {n.id: n.label for n in graph.nodes}
    return {(by_id[e.source], by_id[e.target], e.kind) for e in graph.edges}


def test_explode_connects_use_and_log_within_a_group(pipeline, api):
    g = api.lineage("bike-model:v0", direction="upstream", collapse="explode")
    assert {"bike-model:v0", "bike-dataset:v0", "raw:v0"} <= labels(g)
    by_label = {n.label: n for n in g.nodes}
    assert by_label["bike-model:v0"].kind == "artifact"
    run_nodes = {n.data["run_id"]: n for n in g.nodes if n.kind == "run"}
    assert {pipeline[k].id for k in ("load", "train", "prep")} <= set(run_nodes)
    edges = edge_labels(g)
    load, train = run_nodes[pipeline["load"].id].label, run_nodes[pipeline["train"].id].label
    assert ("bike-dataset:v0", load, "used") in edges
    assert (train, "bike-model:v0", "logged") in edges
    assert g.root == [f"v:{pipeline['model'].id}"]
    # upstream only: the downstream eval run is not in the graph
    assert pipeline["eval"].id not in run_nodes


def test_group_collapse_merges_runs_of_a_flow(pipeline, api):
    g = api.lineage("bike-model:v0", direction="both", collapse="group")
    runs = [n for n in g.nodes if n.kind == "run"]
    groups = sorted(n.data["group"] for n in runs)
    assert groups == ["flow-a", "flow-b", "flow-c"]
    flow_b = next(n.id for n in runs if n.data["group"] == "flow-b")
    ids = {n.label: n.id for n in g.nodes if n.kind == "artifact"}
    pairs = {(e.source, e.target, e.kind) for e in g.edges}
    assert (ids["bike-dataset:v0"], flow_b, "used") in pairs
    assert (flow_b, ids["bike-model:v0"], "logged") in pairs
    assert {"raw:v0", "bike-dataset:v0", "bike-model:v0"} == {n.label for n in g.nodes if n.kind == "artifact"}


def test_type_collapse_is_the_overview(pipeline, api):
    g = api.lineage("bike-dataset:v0", direction="both", collapse="type")
    assert {n.label for n in g.nodes if n.kind == "artifact"} == {"dataset ×2", "model"}
    assert {n.label for n in g.nodes if n.kind == "run"} == {"ingest", "prep", "load", "train", "eval"}
    assert ("dataset ×2", "load", "used") in edge_labels(g)
    assert ("train", "model", "logged") in edge_labels(g)


def test_direction_and_depth(pipeline, api):
    down = api.lineage("bike-dataset:v0", direction="downstream", collapse="explode")
    assert "bike-model:v0" in labels(down) and "raw:v0" not in labels(down)
    up = api.lineage("bike-dataset:v0", direction="upstream", collapse="explode")
    assert "raw:v0" in labels(up) and "bike-model:v0" not in labels(up)

    near = api.lineage("bike-model:v0", direction="upstream", depth=1, collapse="explode")
    assert "bike-dataset:v0" in labels(near) and "raw:v0" not in labels(near)
    far = api.lineage("bike-model:v0", direction="upstream", depth=None, collapse="explode")
    assert "raw:v0" in labels(far)
    only = api.lineage("bike-model:v0", direction="upstream", depth=0, collapse="explode")
    assert labels(only) == {"bike-model:v0"} and only.edges == []


def test_lineage_from_a_run(pipeline, api):
    g = api.lineage(run_id=pipeline["train"].id, direction="upstream", collapse="explode")
    assert {"bike-model:v0", "bike-dataset:v0"} <= labels(g)


def test_exports_contain_nodes_and_edges(pipeline, api):
    g = api.lineage("bike-model:v0", direction="upstream", collapse="explode")
    doc = json.loads(g.to_json())
    assert doc["collapse"] == "explode"
    assert {n["label"] for n in doc["nodes"]} == labels(g)
    assert len(doc["edges"]) == len(g.edges) > 0
    assert {(e["source"], e["target"], e["kind"]) for e in doc["edges"]} == {
        (e.source, e.target, e.kind) for e in g.edges
    }

    mermaid = g.to_mermaid()
    assert mermaid.startswith("flowchart LR")
    assert '["bike-model:v0"]' in mermaid and '["bike-dataset:v0"]' in mermaid
    assert mermaid.count("-.->") == sum(e.kind == "used" for e in g.edges)
    assert mermaid.count("-->") == sum(e.kind == "logged" for e in g.edges)
    assert 'subgraph c0["flow-' in mermaid  # runs of a group are clustered when exploded

    dot = g.to_dot()
    assert dot.startswith("digraph lineage {") and dot.rstrip().endswith("}")
    assert 'label="bike-model:v0"' in dot and 'label="bike-dataset:v0"' in dot
    assert dot.count("->") == len(g.edges)
    assert dot.count("[style=dashed]") == sum(e.kind == "used" for e in g.edges)

    text = g.to_text()
    assert "--logged-->" in text and "--used-->" in text


def test_lineage_rejects_bad_arguments(pipeline, api):
    with pytest.raises(InvalidInputError, match="sideways"):
        api.lineage("bike-model:v0", direction="sideways")
    with pytest.raises(InvalidInputError, match="blob"):
        api.lineage("bike-model:v0", collapse="blob")
    with pytest.raises(InvalidInputError, match="-1"):
        api.lineage("bike-model:v0", depth=-1)
    with pytest.raises(InvalidInputError):
        api.lineage()


def test_version_lineage_shortcut(pipeline, api):
    v = api.artifact("bike-dataset:v0")
    assert labels(v.lineage(direction="both", collapse="explode")) == labels(
        api.lineage("bike-dataset:v0", direction="both", collapse="explode")
    )


# -- run-context providers -------------------------------------------------------------------------


@dataclass
class FakeProvider:
    """A tiny orchestrator: ``active`` is the running step's key (or None outside a step)."""

    active: str | None = None
    group: str | None = "fake-flow-1"
    calls: list[tuple[Any, ...]] = field(default_factory=list)

    def current(self) -> RunContext | None:
        if self.active is None:
            return None
        return RunContext(
            orchestrator="fake",
            run_key=f"fake:{self.active}",
            name=f"step {self.active}",
            job_type=f"task-{self.active}",
            group=self.group,
            url=f"https://fake.example/{self.active}",
            step={"task": self.active},
            default_distributed_id=f"dist-{self.group}",
        )

    def on_logged(self, run, version, *, created: bool) -> None:
        self.calls.append(("logged", run.id, version.version, created))

    def on_used(self, run, version) -> None:
        self.calls.append(("used", run.id, version.version))

    def on_alias_moved(self, run, move: AliasMove) -> None:
        self.calls.append(("alias", run.id if run else None, move.alias, move.version, move.previous))


@pytest.fixture
def provider():
    p = FakeProvider()
    run_context.register_provider(p)
    yield p
    run_context.providers().remove(p)


def test_provider_binds_init_to_the_running_step(provider, tmp_path, api):
    assert isinstance(provider, ap.RunContextProvider)
    provider.active = "a"
    with ap.init() as first:
        pass
    with ap.init() as again:
        pass
    assert first.id == again.id
    assert (again.orchestrator, again.group, again.url) == ("fake", "fake-flow-1", "https://fake.example/a")
    assert (again.job_type, again.name) == ("task-a", "step a")
    assert api.run(first.id).step == {"task": "a"}
    provider.active = "b"
    with ap.init() as other:
        pass
    assert other.id != first.id
    provider.active = None
    with ap.init() as script:
        pass
    assert script.orchestrator == "script"


def test_explicit_job_type_wins_when_binding_to_an_existing_step_run(provider, api):
    """DESIGN §6: job_type is the explicit one, else the task's name, even if the step's run already exists."""
    provider.active = "a"
    with ap.init() as implicit:
        pass
    with ap.init(job_type="train", name="training step") as explicit:
        pass
    assert explicit.id == implicit.id
    assert (explicit.job_type, explicit.name) == ("train", "training step")
    assert (api.run(explicit.id).job_type, api.run(explicit.id).name) == ("train", "training step")


def test_provider_hooks_are_called(provider, tmp_path, api):
    provider.active = "a"
    with ap.init() as run:
        v0 = run.log_artifact(new_draft(tmp_path, "hooked", "0"), aliases=["best"])
        same = run.log_artifact(new_draft(tmp_path, "hooked", "0"))
        run.use_artifact("hooked:v0")
    assert same == v0
    assert ("logged", run.id, "v0", True) in provider.calls
    assert ("logged", run.id, "v0", False) in provider.calls
    assert ("used", run.id, "v0") in provider.calls
    assert ("alias", run.id, "latest", "v0", None) in provider.calls
    assert ("alias", run.id, "best", "v0", None) in provider.calls

    provider.calls.clear()
    with ap.init() as run:
        run.log_artifact(new_draft(tmp_path, "hooked", "1"), aliases=["best"])
    assert ("alias", run.id, "latest", "v1", "v0") in provider.calls
    assert ("alias", run.id, "best", "v1", "v0") in provider.calls

    provider.calls.clear()
    api.set_alias("hooked:v0", "production")
    assert [c[2:] for c in provider.calls] == [("production", "v0", None)]


def test_implicit_log_binds_to_the_step_and_its_default_distributed_id(provider, tmp_path, api):
    provider.active = "w1"
    v = ap.log_artifact(new_draft(tmp_path, "implicit", "x"))
    bound = ap.init()
    assert api.run_logged_artifacts(bound.id) == [v]
    bound.upsert_artifact(new_draft(tmp_path, "parts", "p1"))  # distributed id from the provider
    provider.active = "w2"
    with ap.init() as run2:
        run2.upsert_artifact(_other_part(tmp_path))
        final = run2.finish_artifact(ap.Artifact("parts", "dataset"))
    assert sorted(final.manifest()) == ["f.txt", "g.txt"]


def _other_part(tmp_path) -> ap.Artifact:
    p = tmp_path / "src" / "g.txt"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text("second part")
    art = ap.Artifact("parts", "dataset")
    art.add_file(p)
    return art


def test_a_failing_provider_hook_never_fails_the_log(provider, tmp_path, api):
    def boom(*args, **kwargs):
        raise RuntimeError("orchestrator API down")

    provider.active = "a"
    provider.on_logged = boom  # type: ignore[method-assign]
    provider.on_alias_moved = boom  # type: ignore[method-assign]
    with ap.init() as run:
        v = run.log_artifact(new_draft(tmp_path, "robust", "x"))
    assert api.artifact("robust:latest") == v
