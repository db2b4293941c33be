"""Concurrency guarantees of the registry with real processes, on PostgreSQL and on SQLite."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from team_helpers import Workers, race

import artifact_plugins as ap
from artifact_plugins.core.registry import Registry
from artifact_plugins.core.storage import blob_key

N = 8


@pytest.fixture(params=["postgresql", "sqlite"])
def registry(
    request: pytest.FixtureRequest, tmp_path: Path, team_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> str:
    """The registry URL under test, also set for this process."""
    url = request.getfixturevalue("pg_url") if request.param == "postgresql" else f"sqlite:///{tmp_path / 'r.db'}"
    monkeypatch.setenv("ARTIFACT_PLUGINS_REGISTRY", url)
    Registry(url).engine.dispose()  # migrate once up front, as `artifacts db upgrade` would
    return url


def test_writers_of_different_content_get_unique_gap_free_indices(registry: str, team_env: dict[str, str]) -> None:
    results = race("log-different", N, team_env, registry)
    indices = sorted(int(str(r["version"])[1:]) for r in results)
    assert indices == list(range(N))
    versions = ap.Api().artifact_versions("dataset", "shared")
    assert [v.version_index for v in versions] == list(range(N))
    assert len({v.digest for v in versions}) == N
    assert ap.Api().artifact("shared:latest").version_index == N - 1
    for r in results:  # each writer's alias sits on the version it got
        i = next(v for v in versions if v.digest == r["digest"])
        assert i.version == r["version"]


def test_writers_of_identical_content_get_one_version(registry: str, team_env: dict[str, str]) -> None:
    results = race("log-identical", N, team_env, registry)
    assert {r["version"] for r in results} == {"v0"}
    versions = ap.Api().artifact_versions("dataset", "shared")
    assert len(versions) == 1
    assert set(versions[0].aliases) == {"latest"} | {f"w{i}" for i in range(N)}


def test_distributed_parts_from_many_processes_merge_at_finish(registry: str, team_env: dict[str, str]) -> None:
    race("upsert-part", N, team_env, registry)
    with ap.init(job_type="finisher", group="g") as run:
        v = run.finish_artifact(ap.Artifact("parts", "dataset"), distributed_id="dist-1")
    assert v.version == "v0" and v.file_count == N
    assert sorted(e.path for e in v.files()) == sorted(f"parts/part-{i}.txt" for i in range(N))
    assert len(ap.Api().artifact_versions(None, "parts")) == 1


def test_compare_and_swap_alias_has_exactly_one_winner(registry: str, team_env: dict[str, str]) -> None:
    race("log-different", N + 1, team_env, registry)  # v0..v8
    ap.Api().set_alias("shared:v0", "production")
    workers = Workers(team_env, registry)
    procs = workers.spawn("move-alias", list(range(1, N + 1)))
    workers.start()
    results = workers.results(procs)
    winners = [r for r in results if r["won"]]
    losers = [r for r in results if not r["won"]]
    assert len(winners) == 1, results
    final = ap.Api().artifact("shared:production").version
    assert final == winners[0]["version"]
    for r in losers:
        msg = str(r["error"])
        assert "'production'" in msg and f"points at {final}" in msg and "expected v0" in msg
    history = ap.Api().alias_history("shared", "production")
    assert [(e.previous, e.version) for e in history] == [(None, "v0"), ("v0", final)]


def test_readers_never_observe_a_partial_version(registry: str, team_env: dict[str, str]) -> None:
    workers = Workers(team_env, registry)
    readers = workers.spawn("read-loop", [100, 101])
    writers = workers.spawn("log-many", range(4), TEAM_COUNT="6")
    workers.start()
    written = workers.results(writers)
    (Path(team_env["TEAM_WORK"]) / "stop").touch()
    seen = workers.results(readers)
    assert sum(len(w["versions"]) for w in written) == 24  # type: ignore[arg-type]
    assert sorted(v.version_index for v in ap.Api().artifact_versions(None, "shared")) == list(range(24))
    for r in seen:
        assert r["bad"] == []
        assert int(r["seen"]) > 0  # type: ignore[call-overload]


def _beside_gc_loops(
    team_env: dict[str, str], registry: str, action: str, rounds: int
) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    """Three writers doing ``action`` ``rounds`` times while two processes run collections with no
    grace in a loop, until the writers are done; what each writer and collector reported."""
    workers = Workers(team_env, registry)
    collectors = workers.spawn("gc-loop", [100, 101])
    writers = workers.spawn(action, range(3), TEAM_COUNT=str(rounds))
    workers.start()
    written = workers.results(writers)
    (Path(team_env["TEAM_WORK"]) / "stop").touch()
    return written, workers.results(collectors)


def test_gc_with_no_grace_beside_writers_that_reuse_garbage_loses_nothing(
    registry: str, team_env: dict[str, str], make_tree: Callable[..., Path]
) -> None:
    """Collections that delete every unreferenced object at once run in a loop while writers log
    versions whose blobs include one that is garbage at the start: commits and collections take
    turns, so every version keeps every blob."""
    seed = ap.Artifact("seed", "dataset")
    seed.add_file(make_tree("seed", {"data.txt": "content every writer logs, once garbage"}) / "data.txt")
    with ap.init() as run:
        run.log_artifact(seed).delete()
    written, collected = _beside_gc_loops(team_env, registry, "log-reusing-garbage", rounds=5)
    assert sum(len(w["versions"]) for w in written) == 15  # type: ignore[arg-type]
    assert sum(int(c["rounds"]) for c in collected) > 2  # type: ignore[call-overload]
    for i in range(3):
        for v in ap.Api().artifact_versions("dataset", f"reuse-{i}"):
            assert v.verify().ok, f"{v.qualified_name} lost a blob"


def test_gc_with_no_grace_beside_writers_of_directories_they_stored_as_hashed_loses_nothing(
    registry: str, team_env: dict[str, str]
) -> None:
    """A draft stores its blobs as it hashes them, long before its version is recorded: they are
    garbage in between, and collections with no grace delete them. A log counts them present
    only if no collection went ahead since the draft began storing; otherwise it asks the store
    and sends what is gone. Every version keeps every blob."""
    written, collected = _beside_gc_loops(team_env, registry, "log-dirs", rounds=4)
    assert sum(len(w["versions"]) for w in written) == 12  # type: ignore[arg-type]
    assert sum(int(c["deleted"]) for c in collected) > 0  # type: ignore[call-overload]
    for i in range(3):
        for v in ap.Api().artifact_versions("dataset", f"dirs-{i}"):
            assert v.file_count == 300 and v.verify().ok, f"{v.qualified_name} lost a blob"


def test_a_commit_held_up_past_its_turn_never_records_a_version_gc_emptied(
    registry: str, make_tree: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The turn check in the commit's own transaction, on each registry: a log stopped past its
    lease loses its turn to a collection (which deletes the garbage blob it had found present),
    so it records nothing under that turn, stores again and records a whole version."""
    from processes import hold_up_a_commit

    monkeypatch.setenv("ARTIFACT_PLUGINS_HEARTBEAT_SECONDS", "0.2")  # a lease of 1 s
    seed = ap.Artifact("ds", "dataset")
    seed.add_dir(make_tree("seed", {"data.txt": "garbage once its version is deleted"}))
    with ap.init() as run:
        garbage = blob_key(run.log_artifact(seed).get_entry("data.txt").digest)
    ap.Api().artifact("ds:v0").delete()
    src = make_tree("src", {"data.txt": "garbage once its version is deleted", "more.txt": "more"})

    def collect() -> None:
        assert garbage in ap.Api().gc(dry_run=False, grace=timedelta(0)).deleted_blobs

    code = f"import artifact_plugins as ap\nart = ap.Artifact('ds', 'dataset')\nart.add_dir({str(src)!r})\n"
    err = hold_up_a_commit(code + "with ap.init() as run:\n    run.log_artifact(art)\n", tmp_path / "held", collect)
    (v1,) = ap.Api().artifact_versions("dataset", "ds")
    assert v1.version == "v1" and v1.verify().ok
    assert "storing 'ds' again" in err
