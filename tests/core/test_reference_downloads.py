"""Downloading and verifying reference entries, whose digest names the object's identity (ETag,
Last-Modified, size), not its bytes: a file fetched for one is kept while it still holds the
fetched bytes, and verify holds it to them. Served by a real HTTP server on loopback."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import artifact_plugins as ap
from artifact_plugins.core.errors import InvalidInputError


@dataclass
class Served:
    """A directory served over HTTP, counting the GETs of each path."""

    root: Path
    url: str
    gets: dict[str, int] = field(default_factory=dict)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    root = tmp_path / "www"
    root.mkdir()
    (root / "data.csv").write_text("a,b\n1,2\n")
    state = Served(root, "")

    class Counting(SimpleHTTPRequestHandler):
        def do_GET(self) -> None:
            state.gets[self.path] = state.gets.get(self.path, 0) + 1
            super().do_GET()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Counting, directory=str(root)))
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


def log_refs(served: Served, checksum: bool = True) -> ap.ArtifactVersion:
    art = ap.Artifact("web", "dataset")
    art.add_reference(f"{served.url}/data.csv", name="data.csv", checksum=checksum)
    with art.new_file("own.txt") as f:  # and one stored file beside it
        f.write("stored")
    with ap.init(job_type="t") as run:
        return run.log_artifact(art)


def test_a_fetched_reference_is_not_fetched_again_while_its_file_is_unchanged(served: Served, tmp_path: Path) -> None:
    v = log_refs(served)
    gets = served.gets.get("/data.csv", 0)
    root = v.download(tmp_path / "out")
    assert (root / "data.csv").read_text() == "a,b\n1,2\n"
    assert served.gets["/data.csv"] == gets + 1
    inode = os.stat(root / "data.csv").st_ino

    v.download(root)  # right away: the record is within the racy window, so the file is hashed
    time.sleep(1.1)
    v.download(root)  # and recorded again once out of it: then the record alone says the bytes are there
    v.download(root)
    assert served.gets["/data.csv"] == gets + 1
    assert os.stat(root / "data.csv").st_ino == inode


def test_an_edited_reference_file_is_fetched_again(served: Served, tmp_path: Path) -> None:
    v = log_refs(served)
    root = v.download(tmp_path / "out")
    before = served.gets["/data.csv"]
    (root / "data.csv").write_text("a,b\n9,9\n")
    v.download(root)
    assert served.gets["/data.csv"] == before + 1
    assert (root / "data.csv").read_text() == "a,b\n1,2\n"


def test_verify_holds_a_reference_file_to_the_fetched_bytes(served: Served, tmp_path: Path) -> None:
    v = log_refs(served)
    root = v.download(tmp_path / "out")
    report = v.verify(root)
    assert report.ok, report.mismatches
    assert report.checked_files == 2 and report.skipped_references == 0

    (root / "data.csv").write_text("tampered")
    report = v.verify(root)
    assert [(m.path, m.problem) for m in report.mismatches] == [("data.csv", "modified")]


def test_unchecked_references_are_fetched_every_time_and_skipped_by_verify(served: Served, tmp_path: Path) -> None:
    v = log_refs(served, checksum=False)
    root = v.download(tmp_path / "out")
    before = served.gets["/data.csv"]
    v.download(root)
    assert served.gets["/data.csv"] == before + 1  # nothing says what the URL served when logged
    report = v.verify(root)
    assert report.ok, report.mismatches
    assert report.skipped_references == 1 and report.checked_files == 1


def test_a_reference_fetched_elsewhere_is_skipped_not_called_modified(served: Served, tmp_path: Path) -> None:
    v = log_refs(served)
    root = v.download(tmp_path / "out")
    (tmp_path / "copy").mkdir()
    for name in ("data.csv", "own.txt"):
        (tmp_path / "copy" / name).write_bytes((root / name).read_bytes())  # new inodes, no fetch record
    report = v.verify(tmp_path / "copy")
    assert report.ok and report.skipped_references == 1


def test_verify_refuses_a_root_that_is_not_a_directory(served: Served, tmp_path: Path) -> None:
    v = log_refs(served)
    with pytest.raises(InvalidInputError, match="does not exist"):
        v.verify(tmp_path / "nowhere")
    (tmp_path / "file").write_text("x")
    with pytest.raises(InvalidInputError, match="is not a directory"):
        v.verify(tmp_path / "file")
