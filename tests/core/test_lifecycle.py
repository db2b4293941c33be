"""Lifecycle: incremental drafts, diff, verify, protected aliases, retention, gc, partitioned tables."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from core_helpers import age_store

import artifact_plugins as ap
from artifact_plugins.core.errors import AliasedVersionError, IntegrityError, ProtectedAliasError
from artifact_plugins.core.storage import blob_key

Tree = Callable[[str, dict[str, str | bytes]], Path]


def log_dir(root: Path, name: str = "ds", aliases: list[str] | None = None, **kw: object) -> ap.ArtifactVersion:
    art = ap.Artifact(name, "dataset", **kw)  # type: ignore[arg-type]
    art.add_dir(root)
    with ap.init(job_type="t") as run:
        return run.log_artifact(art, aliases=aliases)


def test_incremental_draft_sends_only_what_changed(make_tree: Tree, store_dir: Path) -> None:
    v0 = log_dir(make_tree("src", {f"f{i}.txt": f"content {i}" for i in range(20)}))
    before = {p for p in store_dir.rglob("*") if p.is_file()}
    draft = v0.new_draft()
    extra = make_tree("extra", {"new.txt": "brand new"})
    draft.add_file(extra / "new.txt", "sub/new.txt")
    assert draft.remove("f3.txt") == 1
    with ap.init(job_type="t") as run:
        v1 = run.log_artifact(draft)
    after = {p for p in store_dir.rglob("*") if p.is_file()}
    added = {p.relative_to(store_dir).as_posix() for p in after - before}
    assert v1.version == "v1" and v1.file_count == 20
    # one new blob and one new manifest: nothing already stored was sent again
    assert sum(1 for a in added if a.startswith("blobs/")) == 1
    assert sum(1 for a in added if a.startswith("manifests/")) == 1
    assert "f3.txt" not in v1.manifest() and "sub/new.txt" in v1.manifest()
    root = v1.download()
    assert (root / "sub/new.txt").read_text() == "brand new" and (root / "f7.txt").read_text() == "content 7"


def test_remove_of_a_prefix_and_of_nothing(make_tree: Tree) -> None:
    art = ap.Artifact("x", "dataset")
    art.add_dir(make_tree("d", {"a/1": "1", "a/2": "2", "b/3": "3"}))
    assert art.remove("a/") == 2 and list(art.entries) == ["b/3"]
    with pytest.raises(ValueError, match="'zzz'"):
        art.remove("zzz")


def test_diff_reports_added_removed_modified_renamed(make_tree: Tree, api: ap.Api) -> None:
    log_dir(make_tree("v0", {"keep.txt": "k", "edit.txt": "old", "gone.txt": "g", "move.txt": "moving bytes"}))
    log_dir(make_tree("v1", {"keep.txt": "k", "edit.txt": "new!!", "new.txt": "n", "moved/here.txt": "moving bytes"}))
    d = api.diff("ds:v0", "ds:v1")
    assert [c.path for c in d.added] == ["new.txt"]
    assert [c.path for c in d.removed] == ["gone.txt"]
    assert [(c.path, c.old_size, c.new_size) for c in d.modified] == [("edit.txt", 3, 5)]
    assert [(c.old_path, c.path) for c in d.renamed] == [("move.txt", "moved/here.txt")]
    assert d.unchanged == 1 and not d.is_empty
    assert api.artifact("ds:v1").diff("ds:v1").is_empty
    assert d.to_dict()["renamed"][0]["old_path"] == "move.txt"


def test_diff_reports_references_whose_remote_object_changed(tmp_path: Path, api: ap.Api) -> None:
    target = tmp_path / "remote.bin"
    target.write_text("first")
    for _ in range(2):
        art = ap.Artifact("refs", "dataset")
        art.add_reference(target.as_uri(), name="remote.bin")
        with ap.init() as run:
            run.log_artifact(art)
        target.write_text("second, longer")
    d = api.diff("refs:v0", "refs:v1")
    assert [c.path for c in d.references_changed] == ["remote.bin"] and not d.modified


def test_verify_catches_a_flipped_byte_in_the_store_and_in_a_download_root(
    make_tree: Tree, store_dir: Path, tmp_path: Path
) -> None:
    v = log_dir(make_tree("src", {"a.bin": b"\x00" * 1000, "b.txt": "bbb"}))
    assert v.verify().ok
    root = v.download(tmp_path / "dl")
    assert v.verify(root).ok
    (root / "a.bin").write_bytes(b"\x00" * 999 + b"\x01")
    (root / "stray.txt").write_text("not in the manifest")
    report = v.verify(root)
    assert {(m.path, m.problem) for m in report.mismatches} == {("a.bin", "modified"), ("stray.txt", "extra")}
    blob = store_dir / blob_key(v.get_entry("b.txt").digest)
    blob.chmod(0o644)
    blob.write_text("bbc")
    report = v.verify()
    assert [(m.path, m.problem) for m in report.mismatches] == [("b.txt", "modified")]
    with pytest.raises(IntegrityError, match=r"b\.txt"):
        v.download(tmp_path / "dl2", verify=True)
    assert not (tmp_path / "dl2" / "b.txt").exists()  # the bad bytes never appear under the final name


def test_protected_alias_needs_expected_or_force(make_tree: Tree, api: ap.Api) -> None:
    log_dir(make_tree("a", {"x": "1"}), aliases=["production"])
    log_dir(make_tree("b", {"x": "2"}))
    api.protect_alias("production")
    assert api.protected_aliases() == ["production"]
    with pytest.raises(ProtectedAliasError, match="'production'"):
        api.set_alias("ds:v1", "production")
    with pytest.raises(ProtectedAliasError):
        log_dir(make_tree("c", {"x": "3"}), aliases=["production"])
    assert api.artifact("ds:production").version == "v0"
    assert [v.version for v in api.artifact_versions(None, "ds")] == ["v0", "v1"]  # the refused log left nothing
    v = api.artifact("ds:v0")
    v.aliases.remove("production")
    with pytest.raises(ProtectedAliasError):
        v.save()
    assert api.set_alias("ds:v1", "production", expected="v0").version == "v1"
    assert api.set_alias("ds:v0", "production", force=True).version == "v0"
    with pytest.raises(ValueError, match="latest"):
        api.protect_alias("latest")


def test_retention_never_removes_an_aliased_version(make_tree: Tree, api: ap.Api) -> None:
    for i in range(6):
        log_dir(make_tree(f"s{i}", {"x": str(i)}), aliases=["best"] if i == 1 else None)
    api.set_retention("ds", keep_last=2)
    plan = api.apply_retention(dry_run=True)
    assert [e.version.version for e in plan] == ["v0", "v2", "v3"]
    assert len(api.artifact_versions(None, "ds")) == 6  # dry run deletes nothing
    api.apply_retention()
    assert [v.version for v in api.artifact_versions(None, "ds")] == ["v1", "v4", "v5"]
    assert api.apply_retention() == []


def test_retention_by_age_and_ttl(make_tree: Tree, api: ap.Api) -> None:
    v0 = log_dir(make_tree("s0", {"x": "0"}))
    log_dir(make_tree("s1", {"x": "1"}))
    api.set_retention("ds", keep_within=timedelta(days=1))
    assert api.retention_plan() == []  # everything is young
    v0.ttl = timedelta(seconds=1)
    v0.save()
    assert api.artifact("ds:v0").ttl == timedelta(seconds=1)
    time.sleep(1.2)
    assert [(e.version.version, e.reason) for e in api.retention_plan()] == [("v0", "TTL of 1s passed")]
    with pytest.raises(ValueError, match="positive"):
        api.set_retention("ds", keep_last=0)


def test_delete_frees_storage_only_through_gc(make_tree: Tree, api: ap.Api, store_dir: Path) -> None:
    shared = "shared bytes"
    log_dir(make_tree("a", {"shared.txt": shared, "only0.txt": "zero"}))
    v1 = log_dir(make_tree("b", {"shared.txt": shared, "only1.txt": "one"}))
    v0 = api.artifact("ds:v0")
    only0 = store_dir / blob_key(v0.get_entry("only0.txt").digest)
    v0.delete()
    assert only0.exists()  # deleting never frees eagerly
    report = api.gc(dry_run=True, grace=timedelta(hours=1))
    # a manifest younger than the grace is a root (a log in flight writes it before committing)
    assert report.deleted_blobs == [] and report.live_manifests == 2
    age_store(store_dir)
    report = api.gc(dry_run=True, grace=timedelta(hours=1))
    assert report.deleted_blobs == [blob_key(v0.get_entry("only0.txt").digest)] and only0.exists()
    assert len(report.deleted_manifests) == 1 and report.freed_bytes > 0
    report = api.gc(dry_run=False, grace=timedelta(hours=1))
    assert not only0.exists()
    assert v1.verify().ok and (v1.download() / "shared.txt").read_text() == shared


@pytest.mark.parametrize("heartbeat", [None, "0.2"], ids=["default-lease", "1s-lease"])
def test_a_log_that_found_a_garbage_blob_present_stores_it_again_if_gc_goes_ahead(
    make_tree: Tree, api: ap.Api, store_dir: Path, heartbeat: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worst moment for gc: a concurrent log has found a garbage blob present (so it will not
    send it) and has not committed yet. A log takes no turn at the store at first, so the
    collection goes ahead and deletes the blob; the log then records nothing, and stores again
    under a turn (sending the blob again). A collection that comes while it holds that turn
    waits for its commit, and keeps the blob even with no grace. With a 1 s lease, the 2 s wait
    holds only because both sides keep renewing their turns."""
    if heartbeat is not None:
        monkeypatch.setenv("ARTIFACT_PLUGINS_HEARTBEAT_SECONDS", heartbeat)
    v0 = log_dir(make_tree("a", {"data.bin": b"payload" * 1000}))
    v0.delete()
    age_store(store_dir)
    blob = store_dir / blob_key(v0.get_entry("data.bin").digest)
    src = make_tree("b", {"data.bin": b"payload" * 1000, "more.txt": "more"})
    work = src.parent
    from processes import finish, start_python, wait_for_file

    writer = start_python(
        f"""
        import time
        from pathlib import Path
        import artifact_plugins as ap
        import artifact_plugins.core.run as run_mod
        original, attempts = run_mod.upload_blobs, []
        def paused_look(*args, **kwargs):  # the blobs were found present (as stored, or on asking)
            sent = original(*args, **kwargs)
            attempts.append(sent)
            Path({str(work)!r}, f"checked{{len(attempts)}}").touch()
            while not Path({str(work)!r}, f"go{{len(attempts)}}").exists():
                time.sleep(0.01)
            return sent
        run_mod.upload_blobs = paused_look
        art = ap.Artifact("ds", "dataset")
        art.add_dir({str(src)!r})
        with ap.init() as run:
            run.log_artifact(art)
        """
    )
    collect = """
        import json
        from datetime import timedelta
        import artifact_plugins as ap
        print(json.dumps(ap.Api().gc(dry_run=False, grace=timedelta(minutes={grace})).deleted_blobs))
        """
    wait_for_file(work / "checked1", writer)
    first = start_python(collect.format(grace=30))  # the log holds no turn: nothing to wait for
    assert blob_key(v0.get_entry("data.bin").digest) in json.loads(finish(first)[0]) and not blob.exists()
    (work / "go1").touch()
    wait_for_file(work / "checked2", writer)  # it found its fence broken, and stored again under a turn
    assert blob.exists()
    second = start_python(collect.format(grace=0))  # would delete the blob just sent, were it not for the turn
    time.sleep(2.0)
    assert second.poll() is None and blob.exists()  # waiting for the writer's turn to end
    (work / "go2").touch()
    _out, err = finish(writer)
    assert "storing 'ds' again" in err  # the user sees why the log took longer
    assert blob_key(v0.get_entry("data.bin").digest) not in json.loads(finish(second)[0])
    v1 = api.artifact("ds:latest")
    assert v1.version == "v1" and v1.verify().ok
    assert (v1.download() / "data.bin").read_bytes() == b"payload" * 1000


def test_a_commit_held_up_past_its_turn_records_nothing_then_stores_again(
    make_tree: Tree, api: ap.Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A log stopped (SIGSTOP) after finding a garbage blob present, until its turn's lease ran
    out: the collection goes ahead and deletes the blob. Continued, the log must not record a
    version missing it: its turn is gone, so it stores again and records a whole version."""
    from processes import hold_up_a_commit

    monkeypatch.setenv("ARTIFACT_PLUGINS_HEARTBEAT_SECONDS", "0.2")  # a lease of 1 s
    v0 = log_dir(make_tree("a", {"data.bin": b"payload" * 1000}))
    v0.delete()
    garbage = blob_key(v0.get_entry("data.bin").digest)
    src = make_tree("b", {"data.bin": b"payload" * 1000, "more.txt": "more"})

    def collect() -> None:  # the stopped commit's turn no longer holds it up
        assert garbage in api.gc(dry_run=False, grace=timedelta(0)).deleted_blobs

    err = hold_up_a_commit(
        f"""
        import artifact_plugins as ap
        art = ap.Artifact("ds", "dataset")
        art.add_dir({str(src)!r})
        with ap.init() as run:
            run.log_artifact(art)
        """,
        tmp_path / "checked",
        collect,
    )
    versions = api.artifact_versions(None, "ds")
    assert [v.version for v in versions] == ["v1"]
    assert versions[0].verify().ok
    assert (versions[0].download() / "data.bin").read_bytes() == b"payload" * 1000
    assert "storing 'ds' again" in err  # the user sees why the log took longer


def test_a_collection_that_died_holding_the_store_holds_up_no_one(make_tree: Tree, api: ap.Api, tmp_path: Path) -> None:
    from processes import start_python, wait_for_file

    collector = start_python(
        f"""
        import time
        from pathlib import Path
        import artifact_plugins as ap
        from artifact_plugins.core import gc
        def stuck(*args, **kwargs):
            Path({str(tmp_path / "holding")!r}).touch()
            time.sleep(600)
        gc._collect = stuck
        ap.Api().gc(dry_run=False)
        """
    )
    wait_for_file(tmp_path / "holding", collector)
    collector.kill()
    collector.wait()
    started = time.monotonic()
    v0 = log_dir(make_tree("a", {"x.txt": "x"}))  # its process is gone: its turn no longer counts
    assert time.monotonic() - started < 10 and v0.verify().ok


def test_gc_while_a_log_commits_in_another_process(make_tree: Tree, api: ap.Api, store_dir: Path) -> None:
    trees = [make_tree(f"t{i}", {f"f{j}.txt": f"{i}-{j}" for j in range(30)}) for i in range(6)]
    for i in range(3):
        log_dir(trees[i]).delete()
    age_store(store_dir)
    from core_helpers import start_python

    writer = start_python(
        "import artifact_plugins as ap\n"
        + "".join(
            f"a = ap.Artifact('ds', 'dataset'); a.add_dir({str(t)!r})\nwith ap.init() as r: r.log_artifact(a)\n"
            for t in trees[3:]
        )
    )
    while writer.poll() is None:
        api.gc(dry_run=False, grace=timedelta(minutes=5))
    assert writer.returncode == 0, writer.communicate()
    api.gc(dry_run=False, grace=timedelta(minutes=5))
    for v in api.artifact_versions(None, "ds"):
        assert v.verify().ok


def test_partitioned_table_from_parallel_parts(api: ap.Api) -> None:
    for i in range(3):
        part = ap.Artifact("parallel-artifact", "dataset")
        part.add(ap.Table(columns=["a", "b", "c"], data=[[i, i * 2, 2**i]]), f"parts/table_{i}")
        with ap.init(group="writers") as run:
            run.upsert_artifact(part, distributed_id="g1")
    final = ap.Artifact("parallel-artifact", "dataset")
    final.add(ap.PartitionedTable("parts"), "distributed_table")
    with ap.init(group="writers") as run:
        v = run.finish_artifact(final, distributed_id="g1")
    table = v.get("distributed_table")
    assert isinstance(table, ap.PartitionedTable) and len(table) == 3
    assert sorted(r["c"] for r in table.rows()) == [1, 2, 4]
    assert table.columns == ["a", "b", "c"]


def test_retried_finish_returns_the_version_it_made_and_empty_finish_is_refused(make_tree: Tree) -> None:
    with ap.init() as run, pytest.raises(ValueError, match="no upserted parts"):
        run.finish_artifact(ap.Artifact("nothing", "dataset"), distributed_id="d0")
    src = make_tree("p", {"x.txt": "x"})
    part = ap.Artifact("parts", "dataset")
    part.add_file(src / "x.txt")
    with ap.init() as run:
        run.upsert_artifact(part, distributed_id="d1")
        assert run.open_parts("parts", "d1") == 1
        first = run.finish_artifact(ap.Artifact("parts", "dataset"), distributed_id="d1")
        assert run.open_parts("parts", "d1") == 0
    with ap.init() as run:
        again = run.finish_artifact(ap.Artifact("parts", "dataset"), distributed_id="d1")
    assert again.version == first.version and again.digest == first.digest


def test_retried_writer_replaces_its_open_part(make_tree: Tree) -> None:
    for content in ("attempt 1", "attempt 2"):
        src = make_tree(f"w-{content[-1]}", {"out.txt": content})
        part = ap.Artifact("parts", "dataset")
        part.add_file(src / "out.txt", "shard-0/out.txt")
        with ap.init() as run:
            run.upsert_artifact(part, distributed_id="d", part_key="writer-0")
    with ap.init() as run:
        v = run.finish_artifact(ap.Artifact("parts", "dataset"), distributed_id="d")
    assert (v.download() / "shard-0/out.txt").read_text() == "attempt 2"


def test_alias_at_answers_what_an_alias_was_at_a_time(make_tree: Tree, api: ap.Api) -> None:
    log_dir(make_tree("a", {"x": "1"}), aliases=["production"])
    between = datetime.now(UTC)
    time.sleep(0.05)
    log_dir(make_tree("b", {"x": "2"}))
    api.set_alias("ds:v1", "production")
    then = api.alias_at("ds", "production", between)
    assert then is not None and then.version == "v0"
    assert api.alias_at("ds", "production", datetime.now(UTC)).version == "v1"  # type: ignore[union-attr]
    assert api.alias_at("ds", "production", between - timedelta(days=1)) is None


def test_delete_refuses_protected_and_aliased(make_tree: Tree, api: ap.Api) -> None:
    v = log_dir(make_tree("a", {"x": "1"}), aliases=["best"])
    with pytest.raises(AliasedVersionError, match="best"):
        v.delete()
    v.delete(delete_aliases=True)
    assert api.artifact_versions(None, "ds") == []


def test_a_turn_whose_lease_ran_out_is_over(make_tree: Tree, monkeypatch: pytest.MonkeyPatch) -> None:
    from artifact_plugins.core.client import get_client

    monkeypatch.setenv("ARTIFACT_PLUGINS_HEARTBEAT_SECONDS", "0.2")  # a lease of 1 s
    registry = get_client().registry
    turn = registry.acquire_store_lock("gc")
    assert registry.renew_store_lock(turn)
    time.sleep(1.3)  # held up past its lease (its process still alive: only the lease says it is over)
    started = time.monotonic()
    v0 = log_dir(make_tree("a", {"x.txt": "x"}))
    assert time.monotonic() - started < 5 and v0.verify().ok
    assert not registry.renew_store_lock(turn)  # the collection must stop, not go on deleting
    registry.release_store_lock(turn)


def _turns() -> list[int]:
    from sqlalchemy import select

    from artifact_plugins.core.client import get_client
    from artifact_plugins.core.registry import tables

    return get_client().registry.read(lambda conn: list(conn.execute(select(tables.StoreLock.id)).scalars()))


def test_a_log_takes_no_turn_at_the_store_while_no_collection_deletes(
    make_tree: Tree, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its fence is the store's generation, checked by the transaction that records it."""
    from artifact_plugins.core.registry import Registry

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a log took a store turn with no collection about")

    monkeypatch.setattr(Registry, "acquire_store_lock", refuse)
    v0 = log_dir(make_tree("a", {"x.txt": "x"}))
    v1 = log_dir(make_tree("b", {"x.txt": "x", "y.txt": "y"}))
    assert _turns() == [] and [v0.version, v1.version] == ["v0", "v1"] and v1.verify().ok


def test_the_transaction_that_records_a_version_ends_its_turn(make_tree: Tree, monkeypatch: pytest.MonkeyPatch) -> None:
    """A log that stores under a turn at the store (a collection was deleting when it looked)
    ends it with the transaction that records its version (no turn is left over, and no
    transaction of its own ends it); a log whose recording fails ends it all the same, so a
    collection never waits for it."""
    from artifact_plugins.core.errors import TypeMismatchError
    from artifact_plugins.core.registry import Registry

    monkeypatch.setattr(Registry, "store_view", lambda self, held=(): (None, set()))  # "a collection is deleting"
    taken: list[int] = []
    real_take = Registry.acquire_store_lock
    monkeypatch.setattr(
        Registry, "acquire_store_lock", lambda self, *a, **k: taken.append(real_take(self, *a, **k)) or taken[-1]
    )
    released: list[int] = []
    real = Registry.release_store_lock
    monkeypatch.setattr(Registry, "release_store_lock", lambda self, turn: (released.append(turn), real(self, turn)))
    log_dir(make_tree("a", {"x.txt": "x"}))
    assert len(taken) == 1 and _turns() == [] and released == []
    other = ap.Artifact("ds", "model")  # the name is a dataset's: recording it fails
    other.add_dir(make_tree("b", {"x.txt": "y"}))
    with ap.init(job_type="t") as run, pytest.raises(TypeMismatchError):
        run.log_artifact(other)
    assert len(taken) == 2 and _turns() == [] and released == taken[1:]


def test_a_dry_run_takes_no_turn(make_tree: Tree, api: ap.Api) -> None:
    """A dry run deletes nothing, so it neither waits for commits nor holds them up."""
    import threading

    from artifact_plugins.core.client import get_client
    from artifact_plugins.core.gc import GcReport

    v0 = log_dir(make_tree("a", {"x.txt": "garbage soon"}))
    v0.delete()
    registry = get_client().registry
    commit_in_progress = registry.acquire_store_lock("commit")
    reports: list[GcReport] = []
    try:
        dry = threading.Thread(target=lambda: reports.append(api.gc(dry_run=True, grace=timedelta(0))))
        dry.start()
        dry.join(10)
        assert not dry.is_alive(), "the dry run waited for the commit's turn"
    finally:
        registry.release_store_lock(commit_in_progress)
    dry.join(60)
    assert reports and blob_key(v0.get_entry("x.txt").digest) in reports[0].deleted_blobs
