"""Eight real processes logging to one collection at once on the embedded SQLite registry.

The workers are forked from one fresh interpreter (python -c) that preloaded the package, so the
race is about the registry, not about eight interpreters importing SQLAlchemy on two cores.
"""

from __future__ import annotations

import sqlite3
import time

import pytest
from core_helpers import BARRIER, release_when_ready, start_python, start_workers, wait_all

import artifact_plugins as ap
from artifact_plugins.core.registry import Registry

N = 8

LOGGER = (
    BARRIER
    + """
import json, os
import artifact_plugins as ap
i, same = int(os.environ["AP_WORKER"]), os.environ["AP_SAME"] == "1"
art = ap.Artifact("shared", "dataset")
with art.new_file("data.txt") as f:
    f.write("identical content" if same else f"content of worker {i}")
with art.new_file("common.txt") as f:
    f.write("the same in every worker")
_barrier(i)
with ap.init(job_type=f"worker-{i}") as run:
    v = run.log_artifact(art, aliases=[f"w{i}"])
with open(f"result-{i}.json", "w") as out:
    json.dump({"worker": i, "version": v.version, "digest": v.digest, "run": run.id}, out)
"""
)


def launch(tmp_path, monkeypatch, same: bool) -> list[dict]:
    import json

    monkeypatch.setenv("AP_SAME", "1" if same else "0")
    launcher = start_workers(LOGGER, N, cwd=tmp_path)
    release_when_ready(tmp_path, N, [launcher])
    wait_all([launcher], timeout=150)
    results = [json.loads(p.read_text()) for p in sorted(tmp_path.glob("result-*.json"))]
    assert sorted(r["worker"] for r in results) == list(range(N))
    assert len({r["run"] for r in results}) == N
    return results


def alias_rows(registry_db) -> list[tuple[str, int]]:
    conn = sqlite3.connect(registry_db)
    try:
        return conn.execute(
            'SELECT a.alias, v."index" FROM aliases a JOIN versions v ON v.id = a.version_id ORDER BY a.alias'
        ).fetchall()
    finally:
        conn.close()


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_different_contents_get_unique_gap_free_indices(tmp_path, monkeypatch, registry_db):
    # The registry does not exist yet: the workers also race to create and migrate it.
    assert not registry_db.exists()
    results = launch(tmp_path, monkeypatch, same=False)
    api = ap.Api()
    versions = api.artifact_versions("dataset", "shared")
    assert sorted(v.version_index for v in versions) == list(range(N))
    assert len({v.digest for v in versions}) == N
    # each worker got the version holding its content, and its alias points there
    by_digest = {v.digest: v for v in versions}
    for r in results:
        v = by_digest[r["digest"]]
        assert v.version == r["version"]
        assert api.artifact(f"shared:w{r['worker']}") == v
        assert api.run_logged_artifacts(r["run"]) == [v]
    assert sorted(r["version"] for r in results) == [f"v{i}" for i in range(N)]
    # latest is on the highest index, exactly once
    latest = api.artifact("shared:latest")
    assert latest.version_index == N - 1
    rows = alias_rows(registry_db)
    assert sorted(a for a, _ in rows) == sorted(["latest", *[f"w{i}" for i in range(N)]])
    assert dict(rows)["latest"] == N - 1
    # every alias move is in the history, and the history of latest is monotonic
    history = api.alias_history("shared", "latest")
    assert [e.version for e in history] == [f"v{i}" for i in range(N)]


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_identical_contents_dedupe_to_one_version(tmp_path, monkeypatch, registry_db):
    Registry(ap.Api().settings.registry).engine.dispose()  # registry created before the race this time
    results = launch(tmp_path, monkeypatch, same=True)
    api = ap.Api()
    versions = api.artifact_versions("dataset", "shared")
    assert [v.version for v in versions] == ["v0"]
    assert {r["version"] for r in results} == {"v0"}
    assert {r["digest"] for r in results} == {versions[0].digest}
    assert set(versions[0].aliases) == {"latest", *[f"w{i}" for i in range(N)]}
    rows = alias_rows(registry_db)
    assert all(index == 0 for _, index in rows) and len(rows) == N + 1
    # every worker's run is recorded as having logged that one version
    v = versions[0]
    for r in results:
        assert api.run_logged_artifacts(r["run"]) == [v]


@pytest.mark.timeout(120)
def test_opening_a_new_registry_waits_for_a_process_holding_it(tmp_path):
    # SQLite answers "database is locked" at once, without its busy handler, when a connection
    # switches a database to WAL while another process holds a lock on it: exactly what happens
    # when several processes open a new registry together and one is creating the tables.
    db = tmp_path / "registry.db"
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("CREATE TABLE held (x)")
    # The opener says when it is about to open (imports done), so the lock is surely held when it
    # gets there: without the wait, it fails within milliseconds of saying so.
    opener = start_python(
        "from artifact_plugins.core.registry import Registry\n"
        "print('opening', flush=True)\n"
        f"Registry('sqlite:///{db}')\n"
    )
    assert opener.stdout is not None and opener.stdout.readline().strip() == "opening", opener.communicate()
    time.sleep(1.0)
    assert opener.poll() is None, opener.communicate()  # waiting on the lock, not failed
    holder.execute("COMMIT")
    holder.close()
    _, err = opener.communicate(timeout=60)
    assert opener.returncode == 0, err
    journal = sqlite3.connect(db).execute("PRAGMA journal_mode").fetchone()[0]
    assert journal == "wal"
    assert ap.Api(registry=f"sqlite:///{db}").artifact_exists("nothing:latest") is False
