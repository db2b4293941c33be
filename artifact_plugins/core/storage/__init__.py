"""Content-addressed blob stores behind one interface; :func:`open_store` picks one from a URI."""

from __future__ import annotations

from urllib.parse import urlsplit

from ..errors import InvalidConfigError
from ..redact import has_credentials, redact_uri
from .base import BlobStore, StoredObject, blob_key, manifest_key
from .local import LocalStore

__all__ = ["BlobStore", "LocalStore", "StoredObject", "blob_key", "manifest_key", "open_store"]


def open_store(uri: str) -> BlobStore:
    """A store for ``uri``: a local path, ``file://``, ``s3://bucket/prefix`` or ``gs://bucket/prefix``."""
    if has_credentials(uri):
        raise InvalidConfigError(
            f"store URI {redact_uri(uri)!r} carries credentials; configure them through the provider's "
            "usual chain (environment, profile, workload identity) instead"
        )
    scheme = urlsplit(uri).scheme
    if scheme in ("", "file") or len(scheme) == 1:  # a bare path, or a Windows drive letter
        path = urlsplit(uri).path if scheme == "file" else uri
        return LocalStore(path)
    if scheme in ("s3", "gs"):
        raise InvalidConfigError(
            f"store {uri!r}: {scheme}:// stores are not available in this build yet; use a local path"
        )
    raise InvalidConfigError(f"unsupported store URI {uri!r}: expected a path, file://, s3:// or gs://")
