"""The flows in flows_examples/ run end to end; the promotion automation fires on an alias move."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
from prefect_helpers import prefect_artifacts, read_events

import artifact_plugins as ap
from artifact_plugins.prefect.surfacing import artifact_key, collection_resource_id

EXAMPLES = Path(__file__).resolve().parents[2] / "flows_examples"


@pytest.fixture(scope="module")
def examples() -> Any:
    sys.path.insert(0, str(EXAMPLES))
    try:
        import model_promotion
        import parallel_writers
        import walkthrough

        yield walkthrough, parallel_writers, model_promotion
    finally:
        sys.path.remove(str(EXAMPLES))


def test_walkthrough_pipeline(examples: Any, api: ap.Api, tmp_path: Path) -> None:
    walkthrough = examples[0]
    first = walkthrough.walkthrough(workdir=str(tmp_path / "w1"))
    assert first == {
        "raw": "default/bikes/bike-raw:v0",
        "dataset": "default/bikes/bike-dataset:v0",
        "model": "default/bikes/bike-model:v0",
    }
    model = api.artifact("bikes/bike-model:candidate")
    dataset = api.artifact("bikes/bike-dataset:latest")
    assert dataset.metadata["rows"] > 0 and sorted(e.path for e in dataset.files()) == ["test.csv", "train.csv"]
    trainer_group = model.logged_by()
    assert trainer_group is not None
    # train -> evaluate are connected through the flow run: the model's group used the dataset
    assert trainer_group.group in {r.group for r in dataset.used_by()}
    assert api.artifact("bikes/bike-eval:latest").metadata["mae"] >= 0
    graph = api.lineage("bikes/bike-raw:v0", direction="downstream", collapse="group")
    assert {n.label for n in graph.nodes if n.kind == "artifact"} >= {"bike-raw:v0", "bike-dataset:v0", "bike-model:v0"}
    assert prefect_artifacts(artifact_key("default", "bikes", "bike-model"))

    # same inputs again: same content, so no new versions anywhere
    second = walkthrough.walkthrough(workdir=str(tmp_path / "w2"))
    assert second == first


def test_parallel_writers(examples: Any, api: ap.Api, tmp_path: Path) -> None:
    ref = examples[1].parallel_writers(shards=3, rows=5, workdir=str(tmp_path))
    assert ref.qualified_name == "default/bikes/bike-shards:v0" and ref.file_count == 3
    stored = api.artifact("bikes/bike-shards:v0")
    assert sorted(e.path for e in stored.files()) == [f"shards/shard-{i:03d}.jsonl" for i in range(3)]
    assert stored.metadata == {"shards": 3, "rows_per_shard": 5}


def test_promotion_moves_the_alias_and_the_automation_deploys(examples: Any, api: ap.Api, tmp_path: Path) -> None:
    promotion = examples[2]
    deployment_id = promotion.deploy_model.to_deployment(name="deploy-production-test").apply()
    automation = promotion.production_automation(deployment_id).create()
    try:
        candidate = promotion.train_candidate(mae=4.2, workdir=str(tmp_path))
        assert candidate.qualified_name == "default/bikes/promo-model:v0"
        assert promotion.promote_model() == "default/bikes/promo-model:v0"
        assert "production" in api.artifact("bikes/promo-model:v0").aliases

        moved = read_events(
            ["artifact_plugins.alias.moved"],
            resource_id=collection_resource_id("default", "bikes", "promo-model"),
            expect=3,  # latest and candidate at log time, then production
        )
        production = [e for e in moved if e.resource["artifact_plugins.alias"] == "production"]
        assert len(production) == 1
        event = production[0]
        assert event.resource["artifact_plugins.version"] == "v0"
        assert event.resource["artifact_plugins.previous"] == ""
        assert event.resource["artifact_plugins.qualified_name"] == "default/bikes/promo-model:v0"
        assert [r.id for r in event.related if r.role == "alias"] == ["artifact_plugins.alias.production"]

        card = prefect_artifacts(artifact_key("default", "bikes", "promo-model"))[0]
        assert "`production`" in str(card.data)  # the card was refreshed after the move

        runs = _wait_for_runs(deployment_id)
        assert runs and runs[0].parameters == {"model": "default/bikes/promo-model:v0"}

        # a candidate that is not good enough leaves production where it is
        promotion.train_candidate(mae=50.0, workdir=str(tmp_path / "worse"))
        assert promotion.promote_model() is None
        assert api.artifact("bikes/promo-model:production").version == "v0"
    finally:
        automation.delete()


def _wait_for_runs(deployment_id: Any, timeout: float = 30.0) -> list[Any]:
    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while True:
            only_this = DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id]))
            runs = client.read_flow_runs(deployment_filter=only_this)
            if runs or time.monotonic() > deadline:
                return runs
            time.sleep(0.5)
