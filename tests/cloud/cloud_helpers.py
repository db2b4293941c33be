"""Helpers shared by the cloud-storage tests (importable; the fixtures live in conftest.py)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from artifact_plugins.core.client import close_clients

STORE_BUCKET = "artifacts"
REFS_BUCKET = "refs"
VERSIONED_BUCKET = "refs-versioned"


def unique(label: str) -> str:
    """A fresh key prefix, so tests sharing a bucket never see each other's objects."""
    return f"{label}-{uuid.uuid4().hex[:10]}"


@dataclass
class Backend:
    """One cloud backend as the tests see it."""

    kind: str  # "s3" or "gs"
    server: Any
    monkeypatch: pytest.MonkeyPatch

    def endpoint(self, url: str) -> None:
        """Point the library (stores and reference handlers) at ``url``."""
        if self.kind == "s3":
            self.monkeypatch.setenv("ARTIFACT_PLUGINS_S3_ENDPOINT_URL", url)
        else:
            self.monkeypatch.setenv("STORAGE_EMULATOR_HOST", url)

    def use_store(self, prefix: str | None = None, via: str | None = None) -> str:
        """Make ``<kind>://artifacts/<prefix>`` the store (through ``via`` when given); returns the prefix."""
        prefix = prefix or unique("store")
        self.endpoint(via or self.server.endpoint)
        self.monkeypatch.setenv("ARTIFACT_PLUGINS_STORE", f"{self.kind}://{STORE_BUCKET}/{prefix}")
        close_clients()
        return prefix

    def uri(self, bucket: str, key: str) -> str:
        """``<kind>://bucket/key``."""
        return f"{self.kind}://{bucket}/{key}"

    def put(self, bucket: str, key: str, data: bytes) -> str | None:
        """Write an object directly (bypassing the library); returns its version / generation."""
        if self.kind == "s3":
            resp = self.server.client().put_object(Bucket=bucket, Key=key, Body=data)
            return resp.get("VersionId")
        blob = self.server.client().bucket(bucket).blob(key)
        blob.upload_from_string(data)
        return str(blob.generation)

    def delete(self, bucket: str, key: str) -> None:
        """Delete an object directly."""
        if self.kind == "s3":
            self.server.client().delete_object(Bucket=bucket, Key=key)
        else:
            self.server.client().bucket(bucket).blob(key).delete()

    def keys(self, bucket: str, prefix: str) -> list[str]:
        """Every object name under ``prefix``, straight from the server."""
        if self.kind == "s3":
            pages = self.server.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            return sorted(o["Key"] for page in pages for o in page.get("Contents", []))
        return sorted(b.name for b in self.server.client().list_blobs(bucket, prefix=prefix))


def upstream_port(backend: Backend) -> int:
    """The TCP port of a backend's server."""
    return int(backend.server.endpoint.rsplit(":", 1)[1])
