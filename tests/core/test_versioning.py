"""Versions, dedup by content digest, aliases (unique, compare-and-swap, history) and types."""

from __future__ import annotations

import contextlib
import itertools
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import artifact_plugins as ap
from artifact_plugins.core.errors import (
    AliasConflictError,
    ArtifactNotFoundError,
    ArtifactPluginsError,
    InvalidInputError,
    TypeMismatchError,
)

_counter = itertools.count()


def draft(tmp_path: Path, name: str, files: dict[str, str], type: str = "dataset", **kw) -> ap.Artifact:
    art = ap.Artifact(name, type=type, **kw)
    base = tmp_path / "src" / f"{name}-{next(_counter)}"
    for rel, content in files.items():
        p = base / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(content)
        art.add_file(p, name=rel)
    return art


def test_versions_count_up_and_latest_is_newest(tmp_path, api):
    with ap.init() as run:
        vs = [run.log_artifact(draft(tmp_path, "ds", {"f.txt": f"content {i}"})) for i in range(4)]
        assert [v.version for v in vs] == ["v0", "v1", "v2", "v3"]
        assert [v.version_index for v in vs] == [0, 1, 2, 3]
    listed = api.artifact_versions("dataset", "ds")
    assert [v.version for v in listed] == ["v0", "v1", "v2", "v3"]
    assert [v.aliases for v in listed] == [[], [], [], ["latest"]]
    assert api.artifact("ds:latest") == vs[-1]
    assert [v.created_at for v in listed] == sorted(v.created_at for v in listed)
    assert len({v.digest for v in listed}) == 4


def test_a_new_version_is_returned_as_a_read_of_it_gives_it(tmp_path, api):
    """The record a commit returns for a version it created (built from what it wrote, not read
    back) is the one the registry gives later: aliases, tags (in code point order, whatever the
    database sorts by), metadata, description, TTL, time and run."""
    from artifact_plugins.core.client import get_client

    with ap.init() as run:
        art = draft(tmp_path, "ds", {"f.txt": "x"})
        art.description = "first"
        art.metadata = {"nested": {"b": [1, 2.5, None], "a": True}, "n": 3}
        logged = run.log_artifact(
            art, aliases=["zeta", "Best", "alpha"], tags=["b-tag", "B_tag", "a.tag"], ttl_seconds=60
        )
    again = get_client().registry.version(logged._record.id)
    assert logged._record == again
    assert again.aliases == ("latest", "Best", "alpha", "zeta") and again.tags == ("B_tag", "a.tag", "b-tag")


def test_a_new_run_is_returned_as_a_read_of_it_gives_it(api):
    """The record ``ensure_run`` returns for a run it created (built from what it wrote, not read
    back) is the one the registry gives later, and not the caller's ``step`` object."""
    from artifact_plugins.core.client import get_client

    registry = get_client().registry
    step = {"task": "train", "attempt": 2, "tags": ("a", "b"), "nested": {"x": None}}
    created = registry.ensure_run(
        run_key="key-1",
        orchestrator="script",
        job_type="train",
        name="run one",
        group="g",
        entity="ent",
        project="proj",
        url="http://ui/run",
        group_url="http://ui/group",
        step=step,
        group_name="the group",
    )
    step["attempt"] = 3
    assert created == registry.run(created.id)
    assert created.step == {"task": "train", "attempt": 2, "tags": ["a", "b"], "nested": {"x": None}}
    assert created.status == "running" and created.finished_at is None and created.started_at.tzinfo is not None


def test_latest_moves_on_every_new_version(tmp_path, api):
    with ap.init() as run:
        for i in range(3):
            v = run.log_artifact(draft(tmp_path, "ds", {"f.txt": str(i)}))
            assert api.artifact("ds:latest") == v
            assert v.aliases == ["latest"]


def test_identical_content_creates_no_new_version_but_adds_aliases(tmp_path, api):
    with ap.init() as run:
        v0 = run.log_artifact(draft(tmp_path, "ds", {"a.txt": "A", "b/c.txt": "C"}), aliases=["first"])
        again = run.log_artifact(
            draft(tmp_path, "ds", {"b/c.txt": "C", "a.txt": "A"}, description="other words", metadata={"k": 1}),
            aliases=["second"],
            tags=["t1"],
        )
    assert again == v0
    assert again.version == "v0"
    assert set(again.aliases) == {"latest", "first", "second"}
    assert again.tags == ["t1"]
    assert [v.version for v in api.artifact_versions("dataset", "ds")] == ["v0"]
    assert api.artifact("ds:second") == v0


def test_relogging_known_content_leaves_the_store_alone(tmp_path, api, store_dir):
    """A re-log of content the collection already holds commits without sending or touching
    anything in the store (the live version keeps its blobs alive)."""
    first = draft(tmp_path, "ds", {"a.txt": "A", "b.txt": "B"})
    with ap.init() as run:
        v0 = run.log_artifact(first)
    before = {p: p.stat().st_mtime_ns for p in store_dir.rglob("*") if p.is_file()}
    time.sleep(0.02)
    with ap.init() as run:
        again = run.log_artifact(draft(tmp_path, "ds", {"a.txt": "A", "b.txt": "B"}), aliases=["again"])
    assert again == v0 and "again" in again.aliases
    assert {p: p.stat().st_mtime_ns for p in store_dir.rglob("*") if p.is_file()} == before


def test_relog_into_another_store_with_the_same_registry_sends_everything(tmp_path, api, monkeypatch):
    """The registry knows the content, the new store does not: the re-log must fill the new store."""
    from artifact_plugins.core.client import close_clients

    monkeypatch.setenv("ARTIFACT_PLUGINS_STORE", str(tmp_path / "store-a"))
    close_clients()
    with ap.init() as run:
        v0 = run.log_artifact(draft(tmp_path, "ds", {"a.txt": "A", "b/c.txt": "C"}))
    monkeypatch.setenv("ARTIFACT_PLUGINS_STORE", str(tmp_path / "store-b"))
    close_clients()
    with ap.init() as run:
        again = run.log_artifact(draft(tmp_path, "ds", {"a.txt": "A", "b/c.txt": "C"}))
    assert again == v0
    root = ap.Api().artifact("ds:v0").download(tmp_path / "out")
    assert (root / "a.txt").read_text() == "A" and (root / "b" / "c.txt").read_text() == "C"
    assert len([p for p in (tmp_path / "store-b").rglob("*") if p.is_file()]) == 3  # two blobs + the manifest


def test_relog_whose_version_vanished_meanwhile_runs_the_full_protocol(tmp_path, api, store_dir, monkeypatch):
    """The race the shortcut must survive: the store said the manifest was there, then that
    version was deleted and its blobs collected before the commit. The commit notices and sends
    everything again."""
    from artifact_plugins.core.client import get_client
    from artifact_plugins.core.storage import manifest_key
    from artifact_plugins.core.storage.local import LocalStore

    with ap.init() as run:
        v0 = run.log_artifact(draft(tmp_path, "ds", {"a.txt": "A"}))
    v0.delete(delete_aliases=True)
    report = api.gc(dry_run=False, grace=timedelta(0))
    assert report.deleted_blobs and not [p for p in store_dir.rglob("*") if p.is_file() and "blobs" in p.parts]
    real_has, asked = LocalStore.has, []

    def stale_has(self: LocalStore, key: str) -> bool:  # the stale answer, the first time it is asked
        asked.append(key)
        return (key == manifest_key(v0.digest) and asked.count(key) == 1) or real_has(self, key)

    monkeypatch.setattr(LocalStore, "has", stale_has)
    with ap.init() as run:
        v1 = run.log_artifact(draft(tmp_path, "ds", {"a.txt": "A"}))
    assert v1.version == "v1" and v1.digest == v0.digest and asked.count(manifest_key(v0.digest)) >= 1
    get_client().close()
    assert (v1.download(tmp_path / "out") / "a.txt").read_text() == "A"


def test_metadata_and_description_are_not_part_of_the_digest(tmp_path):
    a = draft(tmp_path, "ds", {"x.txt": "same"}, description="one", metadata={"rows": 1})
    b = draft(tmp_path, "ds", {"x.txt": "same"}, description="two", metadata={"rows": 2})
    assert a.digest == b.digest
    c = draft(tmp_path, "ds", {"y.txt": "same"})
    assert c.digest != a.digest  # the path is part of the identity
    with ap.init() as run:
        va = run.log_artifact(a)
        vb = run.log_artifact(b)
    assert va.digest == vb.digest == a.digest
    assert va.version == vb.version == "v0"


def test_relogging_older_content_reuses_it_and_latest_stays_on_newest(tmp_path, api):
    with ap.init() as run:
        v0 = run.log_artifact(draft(tmp_path, "ds", {"f": "A"}))
        v1 = run.log_artifact(draft(tmp_path, "ds", {"f": "B"}))
        back = run.log_artifact(draft(tmp_path, "ds", {"f": "A"}), aliases=["rollback"])
    assert back == v0
    assert api.artifact("ds:latest") == v1
    assert api.artifact("ds:rollback") == v0
    assert len(api.artifact_versions(None, "ds")) == 2


def test_aliases_are_unique_per_collection(tmp_path, api):
    with ap.init() as run:
        v0 = run.log_artifact(draft(tmp_path, "ds", {"f": "0"}), aliases=["best"])
        v1 = run.log_artifact(draft(tmp_path, "ds", {"f": "1"}), aliases=["best"])
        other = run.log_artifact(draft(tmp_path, "other", {"f": "0"}), aliases=["best"])
    assert api.artifact("ds:best") == v1
    assert "best" not in api.artifact("ds:v0").aliases
    assert api.artifact("other:best") == other  # another collection keeps its own 'best'

    old = api.artifact("ds:v0")
    old.aliases.append("best")
    old.save()
    assert api.artifact("ds:best") == v0
    assert api.artifact("ds:v1").aliases == ["latest"]


def test_set_alias_compare_and_swap(tmp_path, api):
    with ap.init() as run:
        for i in range(3):
            run.log_artifact(draft(tmp_path, "model", {"w": str(i)}, type="model"))

    moved = api.set_alias("model:v1", "production")
    assert moved.version == "v1" and "production" in moved.aliases
    assert api.set_alias("model:v2", "production", expected="v1").version == "v2"

    with pytest.raises(AliasConflictError) as info:
        api.set_alias("model:v0", "production", expected="v1")
    err = info.value
    assert (err.alias, err.current, err.expected) == ("production", "v2", "v1")
    assert "production" in str(err) and "v2" in str(err) and "v1" in str(err)
    assert api.artifact("model:production").version == "v2"  # unchanged by the failed swap

    with pytest.raises(AliasConflictError, match="staging") as info2:
        api.set_alias("model:v0", "staging", expected="v4")
    assert info2.value.current is None
    with pytest.raises(ArtifactNotFoundError):
        api.artifact("model:staging")

    # check=True without expected: "must not exist yet"
    api.set_alias("model:v0", "canary", check=True)
    with pytest.raises(AliasConflictError, match="canary"):
        api.set_alias("model:v1", "canary", check=True)
    assert api.artifact("model:canary").version == "v0"

    api.remove_alias("model:v2", "production", expected="v2")
    with pytest.raises(ArtifactNotFoundError):
        api.artifact("model:production")


def test_alias_history_and_alias_at(tmp_path, api):
    with ap.init() as run:
        for i in range(3):
            run.log_artifact(draft(tmp_path, "model", {"w": str(i)}, type="model"))

    def tick() -> datetime:
        time.sleep(0.02)
        t = datetime.now(UTC)
        time.sleep(0.02)
        return t

    t_before = tick()
    api.set_alias("model:v0", "production")
    t_on_v0 = tick()
    api.set_alias("model:v2", "production", expected="v0")
    t_on_v2 = tick()
    api.set_alias("model:v1", "production", expected="v2")
    t_on_v1 = tick()
    api.remove_alias("model:v1", "production")
    t_removed = tick()

    history = api.alias_history("model", "production")
    assert [(e.version, e.previous) for e in history] == [
        ("v0", None),
        ("v2", "v0"),
        ("v1", "v2"),
        (None, "v1"),
    ]
    assert [e.at for e in history] == sorted(e.at for e in history)

    assert api.alias_at("model", "production", t_before) is None
    at_v0 = api.alias_at("model", "production", t_on_v0)
    assert at_v0 is not None and at_v0.version == "v0"
    at_v2 = api.alias_at("model", "production", t_on_v2)
    assert at_v2 is not None and at_v2.version == "v2"
    at_v1 = api.alias_at("model", "production", t_on_v1)
    assert at_v1 is not None and at_v1.version == "v1"
    assert api.alias_at("model", "production", t_removed) is None
    assert api.alias_at("model", "production", t_removed + timedelta(days=365)) is None

    # latest has its own history: v0, v1, v2 were each latest in turn
    latest = api.alias_history("model", "latest")
    assert [e.version for e in latest] == ["v0", "v1", "v2"]


def test_alias_history_of_unknown_collection_names_it(api):
    with pytest.raises(ArtifactNotFoundError, match="ghost"):
        api.alias_history("ghost", "production")


def test_type_mismatch_on_existing_name(tmp_path, api):
    with ap.init() as run:
        run.log_artifact(draft(tmp_path, "thing", {"f": "1"}, type="dataset"))
        with pytest.raises(TypeMismatchError) as info:
            run.log_artifact(draft(tmp_path, "thing", {"f": "2"}, type="model"))
    msg = str(info.value)
    assert "thing" in msg and "'dataset'" in msg and "'model'" in msg
    assert [v.version for v in api.artifact_versions(None, "thing")] == ["v0"]
    assert api.artifact_versions("model", "thing") == []


def test_same_name_in_different_projects_are_independent(tmp_path):
    with ap.init(project="p1") as run:
        a = run.log_artifact(draft(tmp_path, "ds", {"f": "1"}))
    with ap.init(project="p2") as run:
        b = run.log_artifact(draft(tmp_path, "ds", {"f": "1"}, type="model"))
    assert a.version == b.version == "v0"
    assert a != b
    assert (a.qualified_name, b.qualified_name) == ("default/p1/ds:v0", "default/p2/ds:v0")


def test_latest_is_managed_and_cannot_be_moved_or_removed_by_hand(tmp_path, api):
    with ap.init() as run:
        run.log_artifact(draft(tmp_path, "ds", {"f": "0"}))
        v1 = run.log_artifact(draft(tmp_path, "ds", {"f": "1"}))
    with pytest.raises(InvalidInputError, match="latest"):
        api.set_alias("ds:v0", "latest")
    with pytest.raises(InvalidInputError, match="latest"):
        api.remove_alias("ds:v1", "latest")
    assert api.artifact("ds:latest") == v1


def test_saving_a_stale_version_does_not_undo_alias_moves_made_since(tmp_path, api):
    """Only what this caller changed is written: an alias moved by someone else stays moved."""
    with ap.init() as run:
        run.log_artifact(draft(tmp_path, "ds", {"f": "0"}))
        run.log_artifact(draft(tmp_path, "ds", {"f": "1"}), aliases=["best"])
        run.log_artifact(draft(tmp_path, "ds", {"f": "2"}))
    stale = api.artifact("ds:v1")
    assert "best" in stale.aliases
    api.set_alias("ds:v2", "best", expected="v1")  # another writer moves it meanwhile
    stale.description = "only the description changed"
    stale.save()
    assert api.artifact("ds:best").version == "v2"
    assert api.artifact("ds:v1").description == "only the description changed"
    assert [e.version for e in api.alias_history("ds", "best")] == ["v1", "v2"]


def test_a_deleted_version_cannot_get_aliases(tmp_path, api, registry_db):
    with ap.init() as run:
        run.log_artifact(draft(tmp_path, "ds", {"f": "0"}))
        run.log_artifact(draft(tmp_path, "ds", {"f": "1"}))
    v0 = api.artifact("ds:v0")
    v0.delete()
    v0.aliases.append("prod")
    with contextlib.suppress(ArtifactPluginsError):
        v0.save()
    conn = sqlite3.connect(registry_db)
    try:
        dangling = conn.execute(
            "SELECT a.alias FROM aliases a JOIN versions v ON v.id = a.version_id WHERE v.state != 'committed'"
        ).fetchall()
    finally:
        conn.close()
    assert dangling == []
    assert api.set_alias("ds:v1", "prod", check=True).version == "v1"  # 'prod' is free
