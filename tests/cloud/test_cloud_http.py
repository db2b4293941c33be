"""http(s):// references against real HTTP servers: SeaweedFS (ETag), the stdlib file server
(Last-Modified only) and a bare server with no validators at all."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from cloud_helpers import REFS_BUCKET, Backend, unique, upstream_port
from servers import FaultProxy

import artifact_plugins as ap
from artifact_plugins.core.errors import InvalidConfigError, InvalidInputError
from artifact_plugins.core.references import ReferenceChangedError, verify_references


@pytest.fixture
def file_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """The standard library's file server over ``tmp_path/www``: Last-Modified, no ETag."""
    root = tmp_path / "www"
    root.mkdir()

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", root
    server.shutdown()
    server.server_close()


@pytest.fixture
def bare_server() -> Iterator[tuple[str, dict[str, bytes]]]:
    """Serves bytes from a dict with neither ETag nor Last-Modified, and refuses HEAD (405)."""
    content: dict[str, bytes] = {}

    class Bare(BaseHTTPRequestHandler):
        def do_HEAD(self) -> None:
            self.send_response(405)
            self.end_headers()

        def do_GET(self) -> None:
            body = content.get(self.path)
            if body is None:
                self.send_response(404)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Bare)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", content
    server.shutdown()
    server.server_close()


def log_ref(uri: str, name: str, **kwargs: object) -> ap.ArtifactVersion:
    art = ap.Artifact("web", "dataset")
    art.add_reference(uri, name=name, **kwargs)  # type: ignore[arg-type]
    with ap.init(job_type="track") as run:
        return run.log_artifact(art)


def test_etag_identity(s3: Backend, tmp_path: Path) -> None:
    s3.use_store()
    key = f"{unique('web')}/page.json"
    s3.put(REFS_BUCKET, key, b'{"a": 1}')
    url = f"{s3.server.endpoint}/{REFS_BUCKET}/{key}"
    assert httpx.head(url).headers.get("etag")  # the server really sends validators

    v = log_ref(url, "page.json")
    e = v.manifest()["page.json"]
    assert e.ref == url and e.size == 8 and e.extra["etag"]
    assert v.get_entry("page.json").download(tmp_path / "a").read_bytes() == b'{"a": 1}'
    assert verify_references(v) == {"page.json": "unchanged"}

    s3.put(REFS_BUCKET, key, b'{"a": 2}')
    assert verify_references(v) == {"page.json": "changed"}
    with pytest.raises(ReferenceChangedError, match="changed since it was logged"):
        v.get_entry("page.json").download(tmp_path / "b")
    assert not (tmp_path / "b" / "page.json").exists()

    s3.delete(REFS_BUCKET, key)
    assert verify_references(v) == {"page.json": "missing"}


def test_last_modified_identity(s3: Backend, file_server: tuple[str, Path], tmp_path: Path) -> None:
    s3.use_store()
    base, root = file_server
    (root / "table.csv").write_bytes(b"a,b\n1,2\n")
    old = time.time() - 100
    os.utime(root / "table.csv", (old, old))
    v = log_ref(f"{base}/table.csv", "table.csv")
    e = v.manifest()["table.csv"]
    assert "last_modified" in e.extra and "etag" not in e.extra
    assert v.get_entry("table.csv").download(tmp_path / "a").read_bytes() == b"a,b\n1,2\n"

    (root / "table.csv").write_bytes(b"a,b\n1,3\n")
    assert verify_references(v) == {"table.csv": "changed"}
    with pytest.raises(ReferenceChangedError):
        v.get_entry("table.csv").download(tmp_path / "b")


def test_no_validators_means_the_body_digest(
    s3: Backend, bare_server: tuple[str, dict[str, bytes]], tmp_path: Path
) -> None:
    s3.use_store()
    base, content = bare_server
    content["/data.bin"] = b"payload"
    v = log_ref(f"{base}/data.bin", "data.bin")
    e = v.manifest()["data.bin"]
    assert e.extra["blake3"].startswith("blake3:") and e.size == 7
    assert v.get_entry("data.bin").download(tmp_path / "a").read_bytes() == b"payload"
    assert verify_references(v) == {"data.bin": "unchanged"}
    content["/data.bin"] = b"PAYLOAD"
    assert verify_references(v) == {"data.bin": "changed"}
    with pytest.raises(ReferenceChangedError):
        v.get_entry("data.bin").download(tmp_path / "b")
    del content["/data.bin"]
    assert verify_references(v) == {"data.bin": "missing"}
    with pytest.raises(ValueError, match="404"):
        ap.Artifact("x").add_reference(f"{base}/nothing-here", name="n")


def test_checksum_false_and_credentials(s3: Backend, bare_server: tuple[str, dict[str, bytes]], tmp_path: Path) -> None:
    s3.use_store()
    base, content = bare_server
    content["/live.txt"] = b"v1"
    v = log_ref(f"{base}/live.txt", "live.txt", checksum=False)
    assert v.manifest()["live.txt"].size == 0
    content["/live.txt"] = b"v2"
    assert v.get_entry("live.txt").download(tmp_path / "a").read_bytes() == b"v2"
    for bad in ("https://user:hunter2@example.com/x", "https://example.com/x?token=hunter2"):
        with pytest.raises(InvalidInputError) as exc:
            ap.Artifact("x").add_reference(bad, name="x")
        assert "hunter2" not in str(exc.value)


def test_transient_errors_are_retried(s3: Backend, proxy_for: Callable[[int], FaultProxy], tmp_path: Path) -> None:
    s3.use_store()
    proxy = proxy_for(upstream_port(s3))
    key = f"{unique('flaky')}/f.txt"
    s3.put(REFS_BUCKET, key, b"steady")
    url = f"{proxy.endpoint}/{REFS_BUCKET}/{key}"
    proxy.fail(2, 503)
    v = log_ref(url, "f.txt")
    proxy.fail(1, 502)
    proxy.reset(1)
    assert v.get_entry("f.txt").download(tmp_path / "a").read_bytes() == b"steady"
    assert len(proxy.injected) == 4


@pytest.fixture
def private_server() -> Iterator[tuple[str, str, list[dict[str, str]]]]:
    """``(base, other_base, seen)``: ``base`` serves ``/data.bin`` only with ``Authorization`` set to
    one of two secrets and redirects ``/moved`` to ``other_base``, which records the headers it got."""
    seen: list[dict[str, str]] = []
    allowed = {"Bearer tok-7c1d-SECRET", "Basic " + __import__("base64").b64encode(b"reader:pw-93ab-SECRET").decode()}
    servers: list[ThreadingHTTPServer] = []

    class Other(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(dict(self.headers))
            self.send_response(200)
            self.send_header("Content-Length", "5")
            self.send_header("ETag", '"other"')
            self.end_headers()
            self.wfile.write(b"other")

        do_HEAD = do_GET

        def log_message(self, *args: object) -> None:
            pass

    class Private(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/moved":
                self.send_response(302)
                self.send_header("Location", f"http://127.0.0.1:{servers[1].server_address[1]}/x")
                self.end_headers()
                return
            if self.headers.get("Authorization") not in allowed:
                self.send_response(401)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Length", "7")
            self.send_header("ETag", '"v1"')
            self.end_headers()
            if self.command == "GET":
                self.wfile.write(b"private")

        do_HEAD = do_GET

        def log_message(self, *args: object) -> None:
            pass

    for handler in (Private, Other):
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
    yield (
        f"http://127.0.0.1:{servers[0].server_address[1]}",
        f"http://127.0.0.1:{servers[1].server_address[1]}",
        seen,
    )
    for server in servers:
        server.shutdown()
        server.server_close()


def test_private_server_credentials_from_netrc_or_headers(
    s3: Backend,
    private_server: tuple[str, str, list[dict[str, str]]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from artifact_plugins.core.client import close_clients
    from artifact_plugins.core.errors import StoreError

    s3.use_store()
    base, _other, seen = private_server
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    with pytest.raises(StoreError, match=r"401.*netrc"):
        ap.Artifact("x").add_reference(f"{base}/data.bin", name="d")

    # ~/.netrc, matched by host: Basic auth.
    (tmp_path / "netrc").write_text("machine 127.0.0.1 login reader password pw-93ab-SECRET\n")
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))
    close_clients()
    v = log_ref(f"{base}/data.bin", "d")
    assert v.get_entry("d").download(tmp_path / "a").read_bytes() == b"private"

    # An explicit Authorization per host (here with its port), and no netrc.
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    host = base.removeprefix("http://")
    monkeypatch.setenv("ARTIFACT_PLUGINS_HTTP_AUTH_HEADERS", json.dumps({host: "Bearer tok-7c1d-SECRET"}))
    close_clients()
    assert verify_references(v) == {"d": "unchanged"}
    assert v.get_entry("d").download(tmp_path / "b").read_bytes() == b"private"

    # A redirect never carries the credentials to where it points.
    log_ref(f"{base}/moved", "m")
    assert seen and all("Authorization" not in h for h in seen)

    # The secrets are nowhere: not in the manifest, the registry or the log.
    manifest_text = json.dumps([e.model_dump() for e in v.manifest().values()])
    registry_bytes = (tmp_path / "registry.db").read_bytes()
    for secret in ("tok-7c1d-SECRET", "pw-93ab-SECRET"):
        assert secret not in manifest_text and secret.encode() not in registry_bytes and secret not in caplog.text

    monkeypatch.setenv("ARTIFACT_PLUGINS_HTTP_AUTH_HEADERS", "Bearer tok-7c1d-SECRET")
    close_clients()
    with pytest.raises(InvalidConfigError, match="JSON object") as exc:
        v.get_entry("d").download(tmp_path / "c")
    assert "tok-7c1d" not in str(exc.value)
