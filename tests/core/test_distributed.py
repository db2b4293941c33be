"""Distributed writers: parts upserted under one distributed_id merge into one version at finish."""

from __future__ import annotations

import pytest
from core_helpers import BARRIER, release_when_ready, start_python, wait_all

import artifact_plugins as ap
from artifact_plugins.core.errors import DistributedConflictError, InvalidInputError
from artifact_plugins.core.hashing import digest_bytes
from artifact_plugins.core.registry import Registry


def part(tmp_path, name: str, files: dict[str, str], tag: str) -> ap.Artifact:
    art = ap.Artifact(name, "dataset")
    for rel, content in files.items():
        p = tmp_path / "parts-src" / tag / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(content)
        art.add_file(p, name=rel)
    return art


def test_parts_merge_into_one_version(tmp_path, api):
    for i in range(3):
        with ap.init(job_type="writer") as run:
            run.upsert_artifact(
                part(tmp_path, "parallel", {f"parts/{i}.txt": f"part {i}", "common/README": "shared"}, f"w{i}"),
                distributed_id="g1",
            )
    assert api.artifact_versions(None, "parallel") == []  # nothing is visible before finish

    finisher = part(tmp_path, "parallel", {"index.json": "{}"}, "fin")
    with ap.init(job_type="finish") as run:
        v = run.finish_artifact(finisher, distributed_id="g1", aliases=["complete"])
    assert v.version == "v0"
    assert set(v.aliases) == {"latest", "complete"}
    assert sorted(v.manifest()) == ["common/README", "index.json", "parts/0.txt", "parts/1.txt", "parts/2.txt"]
    assert [x.version for x in api.artifact_versions("dataset", "parallel")] == ["v0"]
    out = v.download(tmp_path / "out")
    assert (out / "parts" / "2.txt").read_text() == "part 2"
    assert (out / "common" / "README").read_text() == "shared"
    assert finisher.logged_version == v
    assert run.logged_artifacts() == [v]


def test_group_is_the_default_distributed_id(tmp_path, api):
    """The walkthrough pattern: writers and finisher share a group and never name a distributed_id."""
    group = "writer-group-1"
    for i in range(3):
        with ap.init(group=group) as run:
            art = ap.Artifact("parallel-artifact", "dataset")
            art.add(ap.Table(columns=["a", "b", "c"], data=[[i, i * 2, 2**i]]), f"parts/table_{i}")
            run.upsert_artifact(art)
    with ap.init(group=group) as run:
        v = run.finish_artifact(ap.Artifact("parallel-artifact", "dataset"))
    assert sorted(v.manifest()) == [f"parts/table_{i}.table.json" for i in range(3)]
    assert v.get("parts/table_2") == ap.Table(columns=["a", "b", "c"], data=[[2, 4, 4]])


def test_conflicting_parts_name_both_digests(tmp_path, api):
    with ap.init() as run:
        run.upsert_artifact(part(tmp_path, "clash", {"same/path.txt": "from A"}, "a"), distributed_id="g")
        run.upsert_artifact(part(tmp_path, "clash", {"same/path.txt": "from B"}, "b"), distributed_id="g")
        with pytest.raises(DistributedConflictError) as info:
            run.finish_artifact(ap.Artifact("clash", "dataset"), distributed_id="g")
    msg = str(info.value)
    assert "same/path.txt" in msg
    assert digest_bytes(b"from A") in msg and digest_bytes(b"from B") in msg
    assert api.artifact_versions(None, "clash") == []


def test_finishing_artifact_conflicting_with_a_part_is_refused(tmp_path, api):
    with ap.init() as run:
        run.upsert_artifact(part(tmp_path, "clash2", {"x.txt": "part"}, "a"), distributed_id="g")
        with pytest.raises(DistributedConflictError) as info:
            run.finish_artifact(part(tmp_path, "clash2", {"x.txt": "finisher"}, "f"), distributed_id="g")
    msg = str(info.value)
    assert "x.txt" in msg and digest_bytes(b"part") in msg and digest_bytes(b"finisher") in msg
    assert api.artifact_versions(None, "clash2") == []


def test_distributed_ids_are_separate(tmp_path):
    with ap.init() as run:
        run.upsert_artifact(part(tmp_path, "multi", {"a.txt": "a"}, "a"), distributed_id="one")
        run.upsert_artifact(part(tmp_path, "multi", {"b.txt": "b"}, "b"), distributed_id="two")
        v = run.finish_artifact(ap.Artifact("multi", "dataset"), distributed_id="one")
    assert sorted(v.manifest()) == ["a.txt"]


def test_missing_distributed_id_outside_an_orchestrator(tmp_path, api):
    with ap.init() as run:
        with pytest.raises(InvalidInputError, match="distributed_id"):
            run.upsert_artifact(part(tmp_path, "orphan", {"a.txt": "a"}, "a"))
        with pytest.raises(InvalidInputError, match="distributed_id"):
            run.finish_artifact(ap.Artifact("orphan", "dataset"))
    assert api.artifact_versions(None, "orphan") == []


WRITER = (
    BARRIER
    + """
import os
import artifact_plugins as ap
i = int(os.environ["AP_WORKER"])
_barrier(i)
with ap.init(job_type="writer", group="proc-group") as run:
    art = ap.Artifact("shards", "dataset")
    with art.new_file(f"shards/{i:02d}.txt") as f:
        f.write(f"shard {i}\\n" * 100)
    with art.new_file("common/LICENSE") as f:
        f.write("same for everyone")
    run.upsert_artifact(art, distributed_id="d-proc")
print("ok", i)
"""
)


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_parts_from_real_processes(tmp_path, api, monkeypatch):
    Registry(ap.Api().settings.registry).engine.dispose()  # migrated up front: workers race on parts only
    procs = []
    for i in range(4):
        monkeypatch.setenv("AP_WORKER", str(i))
        procs.append(start_python(WRITER, cwd=tmp_path))
    release_when_ready(tmp_path, 4, procs)
    outs = wait_all(procs)
    assert sorted(o.strip() for o in outs) == [f"ok {i}" for i in range(4)]

    with ap.init(job_type="finish", group="proc-group") as run:
        v = run.finish_artifact(ap.Artifact("shards", "dataset"), distributed_id="d-proc")
    assert sorted(v.manifest()) == ["common/LICENSE"] + [f"shards/{i:02d}.txt" for i in range(4)]
    out = v.download(tmp_path / "out")
    assert (out / "shards" / "03.txt").read_text() == "shard 3\n" * 100
    assert [x.version for x in api.artifact_versions("dataset", "shards")] == ["v0"]
    assert {r.job_type for r in api.runs(group="proc-group")} == {"writer", "finish"}
    assert len(api.runs(group="proc-group")) == 5


def test_only_parts_merges_the_named_parts_and_closes_the_rest(tmp_path, api):
    stale = part(tmp_path, "sel", {"a.txt": "old attempt"}, "stale")
    fresh = part(tmp_path, "sel", {"a.txt": "new attempt"}, "fresh")
    for art, job in ((stale, "w1"), (fresh, "w2")):
        with ap.init(job_type=job) as run:
            run.upsert_artifact(art, distributed_id="g")
    with ap.init(job_type="finish") as run, pytest.raises(InvalidInputError, match="has no open part blake3:0"):
        run.finish_artifact(ap.Artifact("sel", "dataset"), distributed_id="g", only_parts=["blake3:" + "0" * 64])
    with ap.init(job_type="finish") as run:
        v = run.finish_artifact(ap.Artifact("sel", "dataset"), distributed_id="g", only_parts=[fresh.digest])
        assert run.open_parts("sel", "g") == 0
    assert (v.download(tmp_path / "out") / "a.txt").read_text() == "new attempt"


def test_part_writers_are_upstream_of_the_finished_version(tmp_path, api):
    """Lineage reaches what each writer used: the runs whose parts were merged logged the version too.

    A writer whose part was left out (``only_parts``: a failed attempt's) is not credited.
    """
    source = part(tmp_path, "raw", {"raw.txt": "raw rows"}, "raw")
    with ap.init(job_type="ingest") as run:
        raw = run.log_artifact(source)
    writers = {}
    for tag in ("w0", "w1", "stale"):
        with ap.init(job_type=tag) as run:
            run.use_artifact("raw:latest")
            shard = part(tmp_path, "shards", {f"{tag}.txt": f"shard {tag}"}, tag)
            run.upsert_artifact(shard, distributed_id="d")
            writers[tag] = (run.id, shard.digest)
    with ap.init(job_type="finish") as finisher:
        v = finisher.finish_artifact(
            ap.Artifact("shards", "dataset"), distributed_id="d", only_parts=[writers["w0"][1], writers["w1"][1]]
        )
    assert v.logged_by().id == finisher.id  # the version's creator is still the finishing run
    graph = v.lineage("upstream", collapse="explode")
    producers = {e.source for e in graph.edges if e.kind == "logged" and e.target == f"v:{v.id}"}
    assert producers == {f"r:{finisher.id}", f"r:{writers['w0'][0]}", f"r:{writers['w1'][0]}"}
    assert f"v:{raw.id}" in {n.id for n in graph.nodes}  # what the writers used is upstream
    assert f"r:{writers['stale'][0]}" not in {n.id for n in graph.nodes}
    for tag in ("w0", "w1"):
        assert [x.version for x in api.run_logged_artifacts(writers[tag][0])] == [v.version]
    assert api.run_logged_artifacts(writers["stale"][0]) == []
