"""Markdown rendering of the collection card and the inputs card."""

from __future__ import annotations

from prefect import flow, task
from prefect.runtime import flow_run as runtime_flow_run
from prefect_helpers import run_artifacts

import artifact_plugins as ap
from artifact_plugins.prefect import cards
from artifact_plugins.prefect.surfacing import artifact_key, asset_uri, collection_resource_id


def _log(name: str, text: str, run_name: str) -> ap.ArtifactVersion:
    art = ap.Artifact(name, type="dataset", description="*bold* | pipe")
    with art.new_file("f.txt") as fh:
        fh.write(text)
    with ap.init(name=run_name, job_type="prep") as run:
        return run.log_artifact(art, aliases=["best"])


def test_keys_and_resource_ids() -> None:
    assert artifact_key("default", "My_Proj", "bike.Data-v2") == "my-proj-bike-data-v2"
    assert artifact_key("acme", "p", "n") == "acme-p-n"
    assert asset_uri("default", "p", "n.v") == "artifact://default/p/n.v"
    assert collection_resource_id("e", "p", "n") == "artifact_plugins.artifact.e.p.n"


def test_collection_card_escapes_names_and_draws_lineage(api: ap.Api) -> None:
    _log("card", "one", "run | [one]")
    v1 = _log("card", "two", "run | [two]")
    with ap.init(name="reader") as run:
        run.use_artifact("card:v0")
    versions = list(reversed(api.artifact_versions(None, "card")))
    md = cards.collection_markdown(
        "default/default/card", "dataset", versions, total=2, lineage=cards.chart_for(v1, 2), artifact_key=artifact_key
    )
    assert md.startswith("## `default/default/card`")
    rows = [line for line in md.splitlines() if line.startswith("| v")]
    assert [r.split(" | ")[0] for r in rows] == ["| v1", "| v0"]  # newest first
    assert "run \\| \\[two\\]" in rows[0]  # a run name cannot break the table or fake a link
    assert "reader" in rows[1] and "reader" not in rows[0]  # consumers per version
    assert "\\*bold\\* \\| pipe" in md
    assert "```mermaid\nflowchart LR" in md and "**Artifacts**" in md
    assert "- default/default/card:v1" in md or "default/default/card:v1](" in md


def test_inputs_card_and_helpers(api: ap.Api) -> None:
    version = _log("inp", "x", "producer")
    md = cards.inputs_markdown(version, artifact_key("default", "default", "inp"))
    assert "### Input `default/default/inp:v0`" in md
    assert f"`{version.digest}`" in md and "`best`" in md and "prep: producer" in md
    assert cards.human_size(999) == "999 B" and cards.human_size(1_500_000) == "1.5 MB"
    assert cards.link("a]b", "http://x/y") == "[a\\]b](http://x/y)" and cards.link("a", None) == "a"
    url = cards.collection_url("inp-key")
    assert url is not None and url.endswith("/artifacts/key/inp-key")  # the test server has a UI URL


@task(name="reads-twice")
def reads_twice() -> None:
    """Uses the same version in two blocks, then another version once."""
    for _ in range(2):
        with ap.init(job_type="reader") as run:
            run.use_artifact("twice:v0")
    with ap.init(job_type="reader") as run:
        run.use_artifact("twice:v1")


@flow(name="reads-twice-flow")
def reads_twice_flow() -> str:
    reads_twice()
    return str(runtime_flow_run.id)


def test_a_task_run_gets_one_inputs_card_per_version_it_used(api: ap.Api) -> None:
    _log("twice", "one", "first")
    _log("twice", "two", "second")
    flow_run_id = reads_twice_flow()
    inputs = [a for a in run_artifacts(flow_run_id) if a.key is None]
    described = sorted(a.description or "" for a in inputs)
    assert len(described) == 2, described
    assert "default/default/twice:v0" in described[0] and "default/default/twice:v1" in described[1]
