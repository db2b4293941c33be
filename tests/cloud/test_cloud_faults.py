"""Failures against real servers: injected 503s and resets are retried; a server killed
mid-upload fails the log cleanly with nothing committed, and the same log succeeds after a restart."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError, FlexibleChecksumError, ReadTimeoutError
from cloud_helpers import STORE_BUCKET, Backend, unique, upstream_port
from servers import SECRET_KEY, FaultProxy, SeaweedFS

import artifact_plugins as ap
from artifact_plugins.core.client import close_clients, get_client
from artifact_plugins.core.errors import NotFoundError, StoreError
from artifact_plugins.core.storage.s3 import S3Store, is_transient


def make_files(root: Path, n: int, big: int = 0) -> dict[str, bytes]:
    files = {f"part-{i:04d}.txt": f"row {i}\n".encode() * 50 for i in range(n)}
    if big:
        files["big.bin"] = os.urandom(big)
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return files


def log(src: Path) -> ap.ArtifactVersion:
    art = ap.Artifact("ds", "dataset")
    art.add_dir(src)
    with ap.init(job_type="producer") as run:
        return run.log_artifact(art)


def is_write(method: str, path: str) -> bool:
    return method in ("PUT", "POST")


def test_injected_503s_and_resets_are_retried(
    backend: Backend,
    proxy_for: Callable[[int], FaultProxy],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    proxy = proxy_for(upstream_port(backend))
    backend.use_store(via=proxy.endpoint)
    files = make_files(tmp_path / "src", 40, big=7 * 2**20)
    proxy.fail(6, 503, match=is_write)
    proxy.reset(2, match=is_write)
    v = log(tmp_path / "src")
    assert [k for k, _, _ in proxy.injected].count("503") == 6
    assert [k for k, _, _ in proxy.injected].count("reset") == 2

    monkeypatch.setenv("ARTIFACT_PLUGINS_CACHE_DIR", str(tmp_path / "cache-2"))
    close_clients()
    proxy.clear()

    def blob_reads(method: str, path: str) -> bool:
        return method == "GET" and ("/blobs/" in path or "%2Fblobs%2F" in path)

    proxy.fail(4, 503, match=blob_reads)
    proxy.reset(1, match=blob_reads)
    root = ap.Api().artifact(f"ds:{v.version}").download(tmp_path / "out", verify=True)
    assert len(proxy.injected) == 5
    for rel, data in files.items():
        assert (root / rel).read_bytes() == data


@pytest.fixture
def own_seaweed(tmp_path: Path) -> Any:
    """A SeaweedFS of this test's own (it gets killed)."""
    server = SeaweedFS(tmp_path / "seaweed").start()
    server.make_bucket(STORE_BUCKET)
    yield server
    server.stop()


def test_server_killed_mid_upload(own_seaweed: SeaweedFS, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    prefix = unique("killed")
    monkeypatch.setenv("ARTIFACT_PLUGINS_S3_ENDPOINT_URL", own_seaweed.endpoint)
    monkeypatch.setenv("ARTIFACT_PLUGINS_STORE", f"s3://{STORE_BUCKET}/{prefix}")
    monkeypatch.setenv("ARTIFACT_PLUGINS_S3_MAX_ATTEMPTS", "2")
    monkeypatch.setenv("ARTIFACT_PLUGINS_S3_CONNECT_TIMEOUT", "2")
    monkeypatch.setenv("ARTIFACT_PLUGINS_S3_READ_TIMEOUT", "5")
    close_clients()
    files = make_files(tmp_path / "src", 300, big=12 * 2**20)

    store = get_client().store
    assert isinstance(store, S3Store)
    sent = 0
    lock = threading.Lock()

    # Every request, boto3 call or presigned small-object request, leaves through the client's HTTP session.
    http = store.client._endpoint.http_session
    send = http.send

    def kill_after_some_puts(request: Any) -> Any:
        nonlocal sent
        if request.method == "PUT":
            with lock:
                sent += 1
                if sent == 60:
                    own_seaweed.kill()
        return send(request)

    monkeypatch.setattr(http, "send", kill_after_some_puts)
    with pytest.raises(StoreError) as exc:
        log(tmp_path / "src")
    message = str(exc.value)
    assert f"s3://{STORE_BUCKET}/{prefix}" in message and SECRET_KEY not in message
    assert sent < len(files)  # it stopped early instead of grinding through every file
    with pytest.raises(NotFoundError):
        ap.Api().artifact("ds:latest")

    own_seaweed.start()  # same ports, same data
    admin = own_seaweed.client()
    listed = admin.list_objects_v2(Bucket=STORE_BUCKET, Prefix=f"{prefix}/manifests/")
    assert listed.get("KeyCount", 0) == 0  # no manifest: nothing was committed
    uploaded_before = admin.list_objects_v2(Bucket=STORE_BUCKET, Prefix=f"{prefix}/blobs/").get("KeyCount", 0)
    assert 0 < uploaded_before < len(files)

    close_clients()
    v = log(tmp_path / "src")
    assert v.version == "v0" and v.file_count == len(files)
    monkeypatch.setenv("ARTIFACT_PLUGINS_CACHE_DIR", str(tmp_path / "cache-after"))
    close_clients()
    root = ap.Api().artifact("ds:v0").download(tmp_path / "out", verify=True)
    for rel, data in files.items():
        assert (root / rel).read_bytes() == data


@pytest.mark.parametrize(
    ("exc", "transient"),
    [
        (ReadTimeoutError(endpoint_url="http://s3"), True),  # a body that stalled mid-stream
        (FlexibleChecksumError(error_msg="crc32 mismatch"), True),  # a body damaged in transit
        (ClientError({"Error": {"Code": "BadDigest"}}, "PutObject"), True),  # the server saw damage
        (ClientError({"Error": {"Code": "OperationAborted"}}, "PutObject"), True),  # a racing writer
        (ClientError({"Error": {"Code": "AccessDenied"}, "ResponseMetadata": {"HTTPStatusCode": 403}}, "Get"), False),
        (ClientError({"Error": {"Code": "NoSuchKey"}}, "GetObject"), False),
        (ValueError("a bug"), False),
    ],
)
def test_which_s3_errors_are_retried(exc: BaseException, transient: bool) -> None:
    assert is_transient(exc) is transient
