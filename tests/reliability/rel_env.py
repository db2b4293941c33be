"""Environment helpers of the reliability suite (importable; the fixtures live in conftest.py)."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest
from servers import ACCESS_KEY, SECRET_KEY, SeaweedFS  # tests/cloud/servers.py (on sys.path via conftest)

from artifact_plugins.core.client import close_clients

STORE_BUCKET = "reliability"


class S3Env:
    """Points the library at ``s3://reliability/<prefix>`` on SeaweedFS, directly or through a proxy."""

    def __init__(self, server: SeaweedFS, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        self.server, self.monkeypatch = server, monkeypatch
        self.prefix = f"rel-{uuid.uuid4().hex[:10]}"
        self.uri = f"s3://{STORE_BUCKET}/{self.prefix}"
        for k, v in {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
            "ARTIFACT_PLUGINS_STORE": self.uri,
        }.items():
            monkeypatch.setenv(k, v)
        self.via(server.endpoint)

    @property
    def port(self) -> int:
        """SeaweedFS's S3 port (the proxy's upstream)."""
        return int(self.server.endpoint.rsplit(":", 1)[1])

    def via(self, endpoint: str, **options: str) -> None:
        """Use ``endpoint`` (the server or a proxy) and ``ARTIFACT_PLUGINS_S3_<name>`` options; drops cached clients."""
        self.monkeypatch.setenv("ARTIFACT_PLUGINS_S3_ENDPOINT_URL", endpoint)
        for k, v in options.items():
            self.monkeypatch.setenv(f"ARTIFACT_PLUGINS_S3_{k.upper()}", v)
        close_clients()

    def objects(self) -> dict[str, bytes]:
        """Every object under this test's prefix, read straight from the server (store key -> bytes)."""
        admin = self.server.client()
        out: dict[str, bytes] = {}
        for page in admin.get_paginator("list_objects_v2").paginate(Bucket=STORE_BUCKET, Prefix=self.prefix + "/"):
            for o in page.get("Contents", []):
                body = admin.get_object(Bucket=STORE_BUCKET, Key=o["Key"])["Body"].read()
                out[o["Key"][len(self.prefix) + 1 :]] = body
        return out


class Mounts:
    """Small tmpfs mounts and immutable directories, all undone after the test."""

    def __init__(self) -> None:
        self.mounted: list[Path] = []
        self.immutable: list[Path] = []

    def tmpfs(self, path: Path, size: str) -> Path:
        """Mount a tmpfs of ``size`` (e.g. ``"2m"``) at ``path``."""
        path.mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)
        self.mounted.append(path)
        return path

    def remount(self, path: Path, options: str) -> None:
        """``mount -o remount,<options>`` (``ro``, ``rw``, ``size=16m``...)."""
        subprocess.run(["mount", "-o", f"remount,{options}", str(path)], check=True)

    def chattr(self, path: Path, immutable: bool) -> None:
        """Set or clear the immutable attribute (stops root too: EPERM on any change)."""
        subprocess.run(["chattr", "+i" if immutable else "-i", str(path)], check=True)
        if immutable:
            self.immutable.append(path)
        elif path in self.immutable:
            self.immutable.remove(path)

    def cleanup(self) -> None:
        for p in reversed(self.immutable):
            subprocess.run(["chattr", "-i", str(p)], capture_output=True)
        for p in reversed(self.mounted):
            subprocess.run(["umount", "-l", str(p)], capture_output=True)
