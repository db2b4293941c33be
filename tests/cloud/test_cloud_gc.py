"""Garbage collection beside concurrent logs on S3 and GCS, where touching a blob refreshes nothing:
a commit records nothing if a deleting collection went ahead while it stored, and stores again
under a turn at the store, which collections wait for (real processes, real servers)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from cloud_helpers import Backend
from processes import finish, hold_up_a_commit, start_python, wait_for_file

import artifact_plugins as ap
from artifact_plugins.core.storage import blob_key

PAYLOAD = b"payload" * 1000
COLLECT = """
import json
from datetime import timedelta
import artifact_plugins as ap
print(json.dumps(ap.Api().gc(dry_run=False, grace=timedelta(0)).deleted_blobs))
"""


def logged_then_deleted(make_tree: Callable[..., Path]) -> str:
    """Log ``PAYLOAD`` and delete the version: its blob is garbage. Returns the blob's key."""
    art = ap.Artifact("old", "dataset")
    art.add_dir(make_tree("old", {"data.bin": PAYLOAD}))
    with ap.init() as run:
        v0 = run.log_artifact(art)
    v0.delete()
    return blob_key(v0.get_entry("data.bin").digest)


def writer_code(src: Path, pause_after_check: Path | None = None) -> str:
    """A process that logs ``src`` as ``ds``; optionally pausing after it asked the store which
    blobs it has (until ``<pause_after_check>.go`` exists)."""
    pause = ""
    if pause_after_check is not None:
        pause = f"""
from artifact_plugins.core import run as run_mod
original = run_mod.upload_blobs
def paused(*args, **kwargs):
    sent = original(*args, **kwargs)
    Path({str(pause_after_check)!r}).touch()
    while not Path({str(pause_after_check) + ".go"!r}).exists():
        time.sleep(0.01)
    return sent
run_mod.upload_blobs = paused
"""
    return f"""
import time
from pathlib import Path
import artifact_plugins as ap
{pause}
art = ap.Artifact("ds", "dataset")
art.add_dir({str(src)!r})
with ap.init() as run:
    run.log_artifact(art)
"""


def assert_intact(api: ap.Api) -> None:
    v1 = api.artifact("ds:latest")
    assert v1.verify().ok
    assert (v1.download() / "data.bin").read_bytes() == PAYLOAD


def test_a_commit_that_found_a_garbage_blob_present_sends_it_again_if_gc_goes_ahead(
    backend: Backend, make_tree: Callable[..., Path], tmp_path: Path
) -> None:
    backend.use_store()
    garbage = logged_then_deleted(make_tree)
    src = make_tree("new", {"data.bin": PAYLOAD, "more.txt": "more"})
    writer = start_python(writer_code(src, pause_after_check=tmp_path / "checked"))
    wait_for_file(tmp_path / "checked", writer)  # it found data.bin's blob present and sent only more.txt
    assert garbage in json.loads(finish(start_python(COLLECT))[0])  # the writer holds no turn: gc goes ahead
    (tmp_path / "checked.go").touch()
    _out, err = finish(writer)
    assert "storing 'ds' again" in err  # it recorded nothing, then sent the blob again
    assert_intact(ap.Api())


def test_a_commit_waits_while_gc_deletes_and_sends_what_it_deleted(
    backend: Backend, make_tree: Callable[..., Path], tmp_path: Path
) -> None:
    backend.use_store()
    garbage = logged_then_deleted(make_tree)
    collector = start_python(
        f"""
import time
from pathlib import Path
from artifact_plugins.core import gc
original = gc._collect
def paused(*args, **kwargs):
    Path({str(tmp_path / "collecting")!r}).touch()
    while not Path({str(tmp_path / "collecting.go")!r}).exists():
        time.sleep(0.01)
    return original(*args, **kwargs)
gc._collect = paused
{COLLECT}
"""
    )
    wait_for_file(tmp_path / "collecting", collector)  # it holds the store, before reading the roots
    writer = start_python(writer_code(make_tree("new", {"data.bin": PAYLOAD, "more.txt": "more"})))
    time.sleep(2.0)
    assert writer.poll() is None  # waiting for the collection, not yet asking the store
    (tmp_path / "collecting.go").touch()
    assert garbage in json.loads(finish(collector)[0])
    _out, err = finish(writer)  # it then found the blob gone and sent it again
    assert "storing 'ds' waits for garbage collection to end" in err
    assert_intact(ap.Api())


def test_a_commit_held_up_past_its_turn_stores_again_what_gc_deleted(
    backend: Backend, make_tree: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Buckets keep no usable modification time to refresh, so only the turn protects a commit:
    one stopped past its lease loses its turn to the collection, and records nothing under it."""
    monkeypatch.setenv("ARTIFACT_PLUGINS_HEARTBEAT_SECONDS", "0.2")  # a lease of 1 s
    backend.use_store()
    garbage = logged_then_deleted(make_tree)

    def collect() -> None:
        assert garbage in ap.Api().gc(dry_run=False, grace=timedelta(0)).deleted_blobs

    src = make_tree("new", {"data.bin": PAYLOAD, "more.txt": "more"})
    err = hold_up_a_commit(writer_code(src), tmp_path / "checked", collect)
    assert_intact(ap.Api())  # it found data.bin's blob gone and sent it again
    assert "storing 'ds' again" in err
