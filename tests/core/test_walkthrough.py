"""The W&B artifacts walkthrough, read as a to-do list, on the embedded default (local files)."""

from __future__ import annotations

from pathlib import Path

import pytest
from core_helpers import store_files, tree_bytes

import artifact_plugins as ap
from artifact_plugins.core.client import get_client
from artifact_plugins.core.errors import (
    AliasedVersionError,
    ArtifactFinalizedError,
    ArtifactNotFoundError,
    EntryNotFoundError,
)
from artifact_plugins.core.hashing import digest_bytes
from artifact_plugins.core.references import ReferenceChangedError
from artifact_plugins.core.storage import blob_key

PROJECT_FILES: dict[str, str | bytes] = {
    "model.h5": b"model-weights",
    "images/cat.png": b"\x89PNG cat",
    "images/dog.png": b"\x89PNG dog",
    "images/more/bird.png": b"\x89PNG bird",
    "checkpoints/model.h5": b"checkpoint",
}


def simple_artifact(
    tmp_path: Path, name: str, content: str, type: str = "dataset", fname: str = "a.txt"
) -> ap.Artifact:
    src = tmp_path / "src" / f"{name}-{digest_bytes(content.encode())[7:19]}" / fname
    src.parent.mkdir(parents=True, exist_ok=True)
    src.write_text(content)
    art = ap.Artifact(name, type=type)
    art.add_file(src, name=fname)
    return art


# -- constructing ---------------------------------------------------------------------------------


def test_add_file_with_name_and_add_dir_recursive_with_prefix(make_tree, tmp_path):
    src = make_tree("project", PROJECT_FILES)
    art = ap.Artifact("bike-dataset", type="dataset", description="bikes", metadata={"rows": 10})

    entry = art.add_file(src / "model.h5", name="models/mymodel.h5")
    assert isinstance(entry, ap.ManifestEntry)
    assert (entry.path, entry.digest, entry.size) == ("models/mymodel.h5", digest_bytes(b"model-weights"), 13)
    added = art.add_dir(src / "images", name="images")
    assert sorted(e.path for e in added) == ["images/cat.png", "images/dog.png", "images/more/bird.png"]
    default_named = art.add_file(src / "checkpoints" / "model.h5")
    assert default_named.path == "model.h5"

    with ap.init(job_type="upload", project="bikes") as run:
        v = run.log_artifact(art)
    assert (v.name, v.version, v.version_index, v.type) == ("bike-dataset", "v0", 0, "dataset")
    assert v.qualified_name == "default/bikes/bike-dataset:v0"
    assert v.file_count == 5
    assert v.size == sum(len(c) for c in PROJECT_FILES.values())
    assert v.description == "bikes" and v.metadata == {"rows": 10}
    assert v.digest == art.digest

    out = v.download(tmp_path / "out")
    assert tree_bytes(out) == {
        "models/mymodel.h5": b"model-weights",
        "images/cat.png": b"\x89PNG cat",
        "images/dog.png": b"\x89PNG dog",
        "images/more/bird.png": b"\x89PNG bird",
        "model.h5": b"checkpoint",
    }


def test_add_dir_without_prefix_keeps_relative_paths(make_tree):
    src = make_tree("flat", {"a.txt": "a", "sub/b.txt": "b"})
    art = ap.Artifact("flat", "dataset")
    art.add_dir(src)
    assert sorted(art.entries) == ["a.txt", "sub/b.txt"]


def test_new_file_text_and_binary(tmp_path):
    art = ap.Artifact("notes", "dataset")
    with art.new_file("notes/readme.txt") as f:
        f.write("hello notes")
    with art.new_file("bin/data.bin", mode="wb") as f:
        f.write(b"\x00\x01\x02")
    assert sorted(art.entries) == ["bin/data.bin", "notes/readme.txt"]
    assert art.entries["notes/readme.txt"].digest == digest_bytes(b"hello notes")
    with ap.init() as run:
        v = run.log_artifact(art)
    out = v.download(tmp_path / "out")
    assert tree_bytes(out) == {"notes/readme.txt": b"hello notes", "bin/data.bin": b"\x00\x01\x02"}


def test_new_file_sources_do_not_collide_after_remove(tmp_path):
    """Each new_file keeps its own bytes even when an earlier entry was removed in between."""
    art = ap.Artifact("drafty", "dataset")
    with art.new_file("z.txt") as f:
        f.write("zzz")
    with art.new_file("a/r.txt") as f:
        f.write("AAAA")
    art.remove("z.txt")
    with art.new_file("b/r.txt") as f:
        f.write("BBBB")
    with ap.init() as run:
        v = run.log_artifact(art)
    out = v.download(tmp_path / "out")
    assert tree_bytes(out) == {"a/r.txt": b"AAAA", "b/r.txt": b"BBBB"}


def test_logged_draft_is_finalized(tmp_path):
    art = simple_artifact(tmp_path, "frozen", "x")
    with ap.init() as run:
        v = run.log_artifact(art)
    assert art.logged_version == v
    with pytest.raises(ArtifactFinalizedError, match="frozen"):
        art.add_file(art.pending[0].source, "b.txt")


# -- references ------------------------------------------------------------------------------------


def test_add_reference_file_uri_checksum_and_download(make_tree, tmp_path, store_dir):
    ext = make_tree("external", {"data.csv": "a,b\n1,2\n", "dir/x.txt": "x-content", "dir/sub/y.txt": "y-content"})
    csv_uri = (ext / "data.csv").as_uri()
    art = ap.Artifact("refs", "dataset")
    (single,) = art.add_reference(csv_uri, name="refs/data.csv")
    assert single.ref == csv_uri
    assert single.digest == digest_bytes(b"a,b\n1,2\n") and single.size == 8
    many = art.add_reference((ext / "dir").as_uri(), name="refdir")
    assert sorted(e.path for e in many) == ["refdir/sub/y.txt", "refdir/x.txt"]
    (loose,) = art.add_reference(csv_uri, name="refs/unchecked.csv", checksum=False)
    assert loose.ref == csv_uri and loose.size == 0 and loose.digest != single.digest

    with ap.init() as run:
        v = run.log_artifact(art)
    # references are tracked in place: their bytes never enter the store
    assert blob_key(digest_bytes(b"a,b\n1,2\n")) not in store_files(store_dir)
    entry = v.get_entry("refs/data.csv")
    assert entry.ref == csv_uri
    assert v.get_entry("refdir/x.txt").ref == (ext / "dir" / "x.txt").as_uri()

    out = v.download(tmp_path / "out1")
    assert tree_bytes(out) == {
        "refs/data.csv": b"a,b\n1,2\n",
        "refs/unchecked.csv": b"a,b\n1,2\n",
        "refdir/x.txt": b"x-content",
        "refdir/sub/y.txt": b"y-content",
    }

    # The referenced object changes: a checksummed reference refuses to hand out other bytes ...
    (ext / "data.csv").write_text("a,b\n9,9\n")
    with pytest.raises(ReferenceChangedError, match=r"data\.csv"):
        v.get_entry("refs/data.csv").download(tmp_path / "out2")
    assert not (tmp_path / "out2" / "refs" / "data.csv").exists()
    with pytest.raises(ReferenceChangedError):
        v.download(tmp_path / "out3", path_prefix="refs/data.csv")
    # ... while checksum=False records the URI alone and fetches what is there now.
    p = v.get_entry("refs/unchecked.csv").download(tmp_path / "out4")
    assert p.read_bytes() == b"a,b\n9,9\n"


def test_unchecked_directory_reference_downloads_its_files_now(make_tree, tmp_path):
    src = make_tree(tmp_path / "shared", {"a.csv": "1\n", "deep/b.csv": "2\n"})
    art = ap.Artifact("loose-dir", "dataset")
    (entry,) = art.add_reference(src.as_uri(), name="mirror", checksum=False)
    assert entry.size == 0
    with ap.init(job_type="track") as run:
        v = run.log_artifact(art)
    (src / "deep" / "c.csv").write_text("3\n")
    root = v.download(tmp_path / "out")
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()) == [
        "mirror/a.csv",
        "mirror/deep/b.csv",
        "mirror/deep/c.csv",
    ]
    assert ap.Api().verify_references(v.qualified_name) == {"mirror": "unchanged"}
    for p in sorted(src.rglob("*"), reverse=True):
        p.rmdir() if p.is_dir() else p.unlink()
    assert ap.Api().verify_references(v.qualified_name) == {"mirror": "missing"}
    with pytest.raises(ReferenceChangedError, match="names no object"):
        v.download(tmp_path / "again")


def test_reference_with_changed_content_is_a_new_version(make_tree):
    ext = make_tree("external", {"data.csv": "v1"})
    uri = (ext / "data.csv").as_uri()
    with ap.init() as run:
        a = ap.Artifact("tracked", "dataset")
        a.add_reference(uri)
        v0 = run.log_artifact(a)
        (ext / "data.csv").write_text("v2")
        b = ap.Artifact("tracked", "dataset")
        b.add_reference(uri)
        v1 = run.log_artifact(b)
    assert (v0.version, v1.version) == ("v0", "v1")
    assert v0.digest != v1.digest


# -- tables ---------------------------------------------------------------------------------------


def test_add_table_and_get(api):
    table = ap.Table(columns=["a", "b"], data=[[1, 2], [3, "x"]])
    art = ap.Artifact("tabular", "dataset")
    entry = art.add(table, "parts/table_0")
    assert entry.path == "parts/table_0.table.json"
    with ap.init() as run:
        run.log_artifact(art)
    v = api.artifact("tabular:latest")
    loaded = v.get("parts/table_0")
    assert isinstance(loaded, ap.Table)
    assert loaded == table
    assert list(loaded.rows()) == [{"a": 1, "b": 2}, {"a": 3, "b": "x"}]
    assert v.get("parts/table_0.table.json") == table


# -- runs -----------------------------------------------------------------------------------------


def test_init_context_manager_records_the_run(tmp_path, api):
    art = simple_artifact(tmp_path, "bike-model", "weights", type="model")
    with ap.init(job_type="train", project="bikes", entity="acme", name="my-run", group="g1") as run:
        assert ap.current_run() is run
        assert (run.job_type, run.name, run.group, run.orchestrator, run.status) == (
            "train",
            "my-run",
            "g1",
            "script",
            "running",
        )
        v = run.log_artifact(art, aliases=["best-ap50"], tags=["nightly", "gpu"])
    assert v.qualified_name == "acme/bikes/bike-model:v0"
    assert v.aliases == ["latest", "best-ap50"]
    assert sorted(v.tags) == ["gpu", "nightly"]
    assert ap.current_run() is None
    rec = api.run(run.id)
    assert (rec.status, rec.job_type, rec.name, rec.group, rec.entity, rec.project) == (
        "finished",
        "train",
        "my-run",
        "g1",
        "acme",
        "bikes",
    )
    assert rec.finished_at is not None
    assert run.status == "finished"

    with pytest.raises(RuntimeError), ap.init(job_type="boom") as failing:
        raise RuntimeError("step failed")
    assert api.run(failing.id).status == "failed"
    assert failing.status == "failed"

    other = ap.Api(entity="acme", project="bikes")
    assert other.artifact("bike-model:best-ap50") == v
    assert other.artifact("bike-model:latest").tags == v.tags


def test_a_run_reads_its_outcome_as_recorded(tmp_path, api):
    """An ended run's ``status`` is what the registry holds, not what the program last asked for:
    an outcome an orchestrator adapter recorded for the step stands over the end at exit."""
    run = ap.init(job_type="train")
    assert run.status == "running"
    get_client().registry.finish_run_by_key(run.context.run_key, "failed")  # the adapter's outcome
    run._finish_at_exit("finished")
    assert (run.status, api.run(run.id).status) == ("failed", "failed")


def test_use_artifact_ref_forms(tmp_path):
    with ap.init(job_type="prep", project="bikes", entity="acme") as run:
        v0 = run.log_artifact(simple_artifact(tmp_path, "bike-dataset", "zero"), aliases=["best"])
        v1 = run.log_artifact(simple_artifact(tmp_path, "bike-dataset", "one"))
    assert (v0.version, v1.version) == ("v0", "v1")

    with ap.init(job_type="train", project="bikes", entity="acme") as run2:
        assert run2.use_artifact("bike-dataset:latest") == v1
        assert run2.use_artifact("bike-dataset") == v1
        assert run2.use_artifact("bikes/bike-dataset:v0") == v0
        assert run2.use_artifact("acme/bikes/bike-dataset:best") == v0
        assert run2.use_artifact(f"bike-dataset@{v1.digest}") == v1
        assert run2.use_artifact(f"acme/bikes/bike-dataset@{v0.digest}") == v0
        fetched = ap.Api(entity="acme", project="bikes").artifact("bike-dataset:v1")
        assert run2.use_artifact(fetched) == v1  # an ArtifactVersion from the Api works too
    assert run2.used_artifacts() == [v1, v0]  # one edge per version, in order of first use

    # another entity and project, qualified fully
    with ap.init(job_type="eval", project="elsewhere") as run3:
        used = run3.use_artifact("acme/bikes/bike-dataset:v0")
        assert used == v0
        with pytest.raises(ArtifactNotFoundError):
            run3.use_artifact("bike-dataset:v0")  # not in default/elsewhere


def test_use_artifact_of_never_logged_artifact_logs_it_once(tmp_path, api):
    art = simple_artifact(tmp_path, "reference-model", "weights", type="model")
    with ap.init(job_type="eval") as run:
        first = run.use_artifact(art)
        second = run.use_artifact(art)
        again = run.use_artifact(simple_artifact(tmp_path, "reference-model", "weights", type="model"))
    assert first == second == again
    assert first.version == "v0"
    assert [v.version for v in api.artifact_versions("model", "reference-model")] == ["v0"]
    assert run.used_artifacts() == [first]
    assert run.logged_artifacts() == []


def test_download_default_root_and_path_prefix(make_tree, tmp_path, api):
    src = make_tree("project", PROJECT_FILES)
    with ap.init() as run:
        a0 = ap.Artifact("bike-dataset", "dataset")
        a0.add_file(src / "model.h5")
        run.log_artifact(a0)
        art = ap.Artifact("bike-dataset", "dataset")
        art.add_dir(src)
        run.log_artifact(art)
    v = api.artifact("bike-dataset:latest")
    path = v.download()
    assert path.resolve() == (tmp_path / "artifacts" / "bike-dataset-v1").resolve()
    assert tree_bytes(path) == {k: (c if isinstance(c, bytes) else c.encode()) for k, c in PROJECT_FILES.items()}

    only = v.download(tmp_path / "partial", path_prefix="images/")
    assert sorted(tree_bytes(only)) == ["images/cat.png", "images/dog.png", "images/more/bird.png"]

    # a second download over an intact root keeps the files (nothing is rewritten)
    before = {p: p.stat().st_mtime_ns for p in path.rglob("*") if p.is_file()}
    v.download()
    assert {p: p.stat().st_mtime_ns for p in path.rglob("*") if p.is_file()} == before
    # a damaged file is replaced with the right bytes
    (path / "model.h5").write_bytes(b"corrupted!!!!")
    v.download()
    assert (path / "model.h5").read_bytes() == b"model-weights"


def test_get_entry_get_path_entry_download_and_files(make_tree, tmp_path, api):
    src = make_tree("project", PROJECT_FILES)
    with ap.init() as run:
        art = ap.Artifact("bike-dataset", "dataset")
        art.add_dir(src)
        run.log_artifact(art)
    v = api.artifact("bike-dataset:v0")
    e = v.get_path("images/cat.png")
    assert isinstance(e, ap.Entry)
    assert (e.path, e.size, e.digest, e.ref) == ("images/cat.png", 8, digest_bytes(b"\x89PNG cat"), None)
    assert v.get_entry("images/cat.png") == e
    p = e.download()
    assert p.resolve() == (tmp_path / "artifacts" / "bike-dataset-v0" / "images" / "cat.png").resolve()
    assert p.read_bytes() == b"\x89PNG cat"
    assert sorted(tree_bytes(tmp_path / "artifacts" / "bike-dataset-v0")) == ["images/cat.png"]
    assert e.download(tmp_path / "elsewhere").read_bytes() == b"\x89PNG cat"

    assert sorted(f.path for f in v.files()) == sorted(PROJECT_FILES)
    assert sorted(f.path for f in v.files("images/more")) == ["images/more/bird.png"]
    assert all(isinstance(f, ap.Entry) for f in v.files())

    with pytest.raises(EntryNotFoundError, match=r"images/cow\.png"):
        v.get_entry("images/cow.png")


# -- updating ----------------------------------------------------------------------------------------


def test_save_description_metadata_and_aliases(tmp_path, api):
    with ap.init() as run:
        art = simple_artifact(tmp_path, "bike-dataset", "content")
        art.metadata = {"rows": 10, "oldKey": "old"}
        run.log_artifact(art, aliases=["best-ap50", "candidate"])
    digest = api.artifact("bike-dataset:latest").digest

    v = api.artifact("bike-dataset:latest")
    v.description = "My new description"
    v.metadata["oldKey"] = "new value"
    v.save()
    fresh = api.artifact("bike-dataset:latest")
    assert fresh.description == "My new description"
    assert fresh.metadata == {"rows": 10, "oldKey": "new value"}

    v.metadata = {"newKey": "new value"}
    v.save()
    assert api.artifact("bike-dataset:v0").metadata == {"newKey": "new value"}

    v.aliases.append("production")
    v.save()
    assert "production" in api.artifact("bike-dataset:v0").aliases
    assert api.artifact("bike-dataset:production") == v

    v.aliases.remove("candidate")
    v.save()
    assert "candidate" not in api.artifact("bike-dataset:v0").aliases
    with pytest.raises(ArtifactNotFoundError, match="candidate"):
        api.artifact("bike-dataset:candidate")

    v.aliases = ["replaced"]
    v.save()
    after = api.artifact("bike-dataset:v0")
    assert set(after.aliases) == {"latest", "replaced"}  # latest is managed: it stays on the newest version
    assert v.aliases == after.aliases
    # editing never creates a version or changes the content digest
    assert [x.version for x in api.artifact_versions("dataset", "bike-dataset")] == ["v0"]
    assert after.digest == digest


# -- deleting --------------------------------------------------------------------------------------


def test_delete_refuses_while_aliased_and_latest_falls_back(tmp_path, api):
    with ap.init() as run:
        v0 = run.log_artifact(simple_artifact(tmp_path, "ckpt", "0", "model"), aliases=["keep"])
        run.log_artifact(simple_artifact(tmp_path, "ckpt", "1", "model"))
        v2 = run.log_artifact(simple_artifact(tmp_path, "ckpt", "2", "model"))

    with pytest.raises(AliasedVersionError, match="keep"):
        v0.delete()
    assert [v.version for v in api.artifact_versions("model", "ckpt")] == ["v0", "v1", "v2"]
    assert api.artifact("ckpt:keep") == v0

    v0.delete(delete_aliases=True)
    assert v0.state == "deleted"
    assert [v.version for v in api.artifact_versions("model", "ckpt")] == ["v1", "v2"]
    for ref in ("ckpt:keep", "ckpt:v0", f"ckpt@{v0.digest}"):
        with pytest.raises(ArtifactNotFoundError):
            api.artifact(ref)

    assert api.artifact("ckpt:latest") == v2
    v2.delete()  # only 'latest': allowed, and latest falls back to the newest remaining version
    assert api.artifact("ckpt:latest").version == "v1"
    assert api.artifact("ckpt:latest").aliases == ["latest"]

    with ap.init() as run:
        v3 = run.log_artifact(simple_artifact(tmp_path, "ckpt", "3", "model"))
    assert v3.version == "v3"  # indices are never reused
    assert api.artifact("ckpt:latest") == v3


def test_cleanup_loop_deletes_versions_without_aliases(tmp_path, api):
    with ap.init() as run:
        for i in range(5):
            run.log_artifact(simple_artifact(tmp_path, "ckpt", f"c{i}", "model"), aliases=["best"] if i == 1 else [])
    for version in api.artifact_versions("model", "ckpt"):
        if len(version.aliases) == 0:
            version.delete()
    remaining = api.artifact_versions("model", "ckpt")
    assert [(v.version, v.aliases) for v in remaining] == [("v1", ["best"]), ("v4", ["latest"])]


# -- graph traversal ---------------------------------------------------------------------------------


def test_logged_by_used_by_and_run_edges(tmp_path, api):
    with ap.init(job_type="producer") as producer:
        v = producer.log_artifact(simple_artifact(tmp_path, "data", "d"))
    with ap.init(job_type="consumer") as c1:
        c1.use_artifact("data:v0")
    with ap.init(job_type="consumer") as c2:
        c2.use_artifact("data:latest")

    art = api.artifact("data:v0")
    producer_run = art.logged_by()
    assert producer_run is not None and producer_run.id == producer.id and producer_run.job_type == "producer"
    assert [r.id for r in art.used_by()] == [c1.id, c2.id]
    assert producer.logged_artifacts() == [v] and producer.used_artifacts() == []
    assert c1.used_artifacts() == [v] and c1.logged_artifacts() == []
    assert api.run_logged_artifacts(producer.id) == [v]
    assert api.run_used_artifacts(c2.id) == [v]
    assert {r.id for r in api.runs(job_type="consumer")} == {c1.id, c2.id}


def test_module_level_log_and_use_bind_to_current_run(tmp_path, api):
    with ap.init(job_type="script-step") as run:
        v = ap.log_artifact(simple_artifact(tmp_path, "implicit", "x"))
        used = ap.use_artifact("implicit:latest")
    assert used == v
    assert run.logged_artifacts() == [v] and run.used_artifacts() == [v]


def test_artifact_collections_lists_per_project_and_type(tmp_path, api):
    with ap.init(project="p1") as run:
        run.log_artifact(simple_artifact(tmp_path, "ds", "1"))
        run.log_artifact(simple_artifact(tmp_path, "ds", "2"))
        run.log_artifact(simple_artifact(tmp_path, "m", "3", "model"))
    with ap.init(project="p2") as run:
        run.log_artifact(simple_artifact(tmp_path, "other", "4"))
    cols = api.artifact_collections("p1")
    assert sorted((c.name, c.type, c.version_count, c.latest_index) for c in cols) == [
        ("ds", "dataset", 2, 1),
        ("m", "model", 1, 0),
    ]
    assert [c.name for c in api.artifact_collections("p1", type="model")] == ["m"]
    assert sorted(c.name for c in api.artifact_collections("*")) == ["ds", "m", "other"]
