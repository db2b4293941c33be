"""Credentials for a bucket store from somewhere other than the provider's default chain.

An orchestrator keeps credentials in its own objects (an Airflow connection, say). It hands the
core a :class:`StoreAccess`: a name for messages and a function that builds the provider's
session when the store is opened. The secret material lives only inside that session, so it can
never reach a manifest, a registry row, a log line or an error message.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from .errors import InvalidConfigError
from .redact import redact_uri


@dataclass(frozen=True)
class StoreAccess:
    """How to reach a store of ``scheme``: ``session()`` builds the provider's session.

    For ``s3`` the session is a :class:`boto3.session.Session`. ``options`` are non-secret store
    options the source also supplies (``endpoint_url``, ``region``), applied over the
    environment's. Two accesses with the same ``name``, scheme and options are the same access,
    so a process opens one store for them.
    """

    scheme: str
    name: str
    session: Callable[[], Any] = field(compare=False, repr=False)
    options: tuple[tuple[str, str], ...] = ()

    def check_store(self, store_uri: str) -> None:
        """Refuse a store this access cannot be for (credentials for S3 with a ``gs://`` or local store)."""
        if urlsplit(store_uri).scheme != self.scheme:
            raise InvalidConfigError(
                f"{self.name} gives {self.scheme}:// credentials, but the store is {redact_uri(store_uri)!r}; "
                f"set the store to an {self.scheme}:// URI or drop the connection"
            )
