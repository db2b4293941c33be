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

    For ``s3`` the session is a :class:`boto3.session.Session`; for ``gs``, Google credentials
    (:class:`google.auth.credentials.Credentials`). ``options`` are non-secret store
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


def s3_access(
    name: str,
    *,
    key_id: str | None = None,
    secret: str | None = None,
    token: str | None = None,
    region: str | None = None,
    endpoint_url: str | None = None,
    profile: str | None = None,
) -> StoreAccess:
    """An access to ``s3://`` stores with these keys (or, with none, boto3's chain), region and endpoint.

    ``name`` says where they came from (``"Airflow connection 'aws_default'"``); it is all an
    error message ever shows of them.
    """
    if bool(key_id) != bool(secret):
        raise InvalidConfigError(
            f"{name} has an access key id without a secret access key, or a secret without a key id; "
            "give both, or neither for boto3's own chain (environment, profile, instance role)"
        )

    def session() -> Any:
        import boto3

        return boto3.session.Session(
            aws_access_key_id=key_id or None,
            aws_secret_access_key=secret or None,
            aws_session_token=token or None,
            region_name=region or None,
            profile_name=profile or None,
        )

    options = tuple((k, v) for k, v in (("endpoint_url", endpoint_url), ("region", region)) if v)
    return StoreAccess("s3", name, session, options)


#: What service-account credentials for a store may do: read and write objects.
GCS_SCOPES = ("https://www.googleapis.com/auth/devstorage.read_write",)


def gcs_access(
    name: str, *, key_info: dict[str, Any] | None = None, key_path: str | None = None, project: str | None = None
) -> StoreAccess:
    """An access to ``gs://`` stores with a service-account key (its JSON as a dict, or a file),
    or, with neither, Application Default Credentials; ``project`` as given."""
    if key_info is not None and key_path:
        raise InvalidConfigError(f"{name} gives both a key (keyfile_dict) and a key file (key_path); give one")

    def session() -> Any:
        import google.auth
        from google.oauth2 import service_account

        try:
            if key_info is not None:
                return service_account.Credentials.from_service_account_info(key_info, scopes=GCS_SCOPES)
            if key_path:
                return service_account.Credentials.from_service_account_file(key_path, scopes=GCS_SCOPES)
        except OSError as exc:
            # The path is not secret; naming it is what lets a user fix a typo or a mount.
            raise InvalidConfigError(
                f"{name}: the key file {key_path!r} cannot be read ({type(exc).__name__}); "
                "give the path of a JSON service-account key readable by this process"
            ) from None
        except (ValueError, KeyError) as exc:
            # The message may quote the key's fields; say only what is wrong with it.
            raise InvalidConfigError(
                f"{name}: the service-account key cannot be used ({type(exc).__name__}); "
                "give the JSON key file's content as created by Google Cloud"
            ) from None
        return google.auth.default(scopes=GCS_SCOPES)[0]

    return StoreAccess("gs", name, session, (("project", project),) if project else ())
