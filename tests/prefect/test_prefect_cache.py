"""ArtifactDigests: a task re-runs when its input artifact content changes, not when a ref re-resolves."""

from __future__ import annotations

import uuid

from prefect import flow, task
from prefect.cache_policies import TASK_SOURCE
from prefect.states import State

import artifact_plugins as ap
from artifact_plugins.prefect import ArtifactDigests, ArtifactRef, use_artifact

RUNS: list[str] = []


@task(cache_policy=ArtifactDigests() + TASK_SOURCE, persist_result=True)
def count_lines(data: ArtifactRef) -> int:
    RUNS.append(data.version)
    assert data.path is not None
    return len((data.path / "data.txt").read_text().splitlines())


@flow
def by_ref(ref: str) -> State:
    return count_lines(use_artifact(ref), return_state=True)


@task(cache_policy=ArtifactDigests(refs=("ref",)), persist_result=True)
def describe(ref: str) -> str:
    RUNS.append(ref)
    return ref


@flow
def by_string(ref: str) -> State:
    return describe(ref, return_state=True)


def _log(text: str) -> str:
    art = ap.Artifact("cached-input", type="dataset")
    with art.new_file("data.txt") as fh:
        fh.write(text)
    with ap.init() as run:
        return run.log_artifact(art).version


def test_cache_follows_input_digests_not_refs(api: ap.Api) -> None:
    RUNS.clear()
    token = uuid.uuid4().hex  # unique content: no cache record from another test can match
    assert _log(f"{token}\none\n") == "v0"
    assert _log(f"{token}\none\ntwo\n") == "v1"

    states = [by_ref("cached-input:v1"), by_ref("cached-input:latest"), by_ref("cached-input:v0")]
    assert [s.name for s in states] == ["Completed", "Cached", "Completed"]
    assert [s.result() for s in states] == [3, 3, 2]
    assert RUNS == ["v1", "v0"]  # the body ran only when the content differed


def test_ref_string_parameters_are_resolved_to_digests(api: ap.Api) -> None:
    RUNS.clear()
    token = uuid.uuid4().hex
    _log(f"{token}-a")
    _log(f"{token}-b")
    states = [by_string("cached-input:v1"), by_string("cached-input:latest"), by_string("cached-input:v0")]
    assert [s.name for s in states] == ["Completed", "Cached", "Completed"]
    assert RUNS == ["cached-input:v1", "cached-input:v0"]


def test_missing_ref_disables_caching_instead_of_failing() -> None:
    policy = ArtifactDigests(refs=("ref",))
    assert policy.compute_key(None, {"ref": "nothing-here:v1"}, {}) is None  # type: ignore[arg-type]


def test_other_inputs_count_unless_excluded() -> None:
    ref = ArtifactRef("default/default/x:v1", "x", "v1", "blake3:" + "a" * 64, "dataset")
    moved = ArtifactRef("default/default/x:v2", "x", "v2", "blake3:" + "a" * 64, "dataset", path=None)
    policy = ArtifactDigests()
    key = policy.compute_key(None, {"data": ref, "lr": 0.1}, {})  # type: ignore[arg-type]
    assert key == policy.compute_key(None, {"data": moved, "lr": 0.1}, {})  # type: ignore[arg-type]
    assert key != policy.compute_key(None, {"data": ref, "lr": 0.2}, {})  # type: ignore[arg-type]
    only_artifacts = ArtifactDigests(include_other_inputs=False)
    assert only_artifacts.compute_key(None, {"data": [ref], "lr": 0.1}, {}) == only_artifacts.compute_key(  # type: ignore[arg-type]
        None,
        {"data": [moved], "lr": 0.2},
        {},  # type: ignore[arg-type]
    )
    assert only_artifacts.compute_key(None, {"lr": 0.1}, {}) is None  # type: ignore[arg-type]
