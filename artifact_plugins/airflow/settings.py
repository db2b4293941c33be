"""Artifact settings from Airflow connections.

A connection is a further configuration source (after explicit operator arguments, before the
environment): its ``extra`` may hold ``store``, ``registry``, ``entity``, ``project``, ``cache_dir``
and ``cache_max_bytes``; a ``postgres`` connection without an ``extra["registry"]`` supplies the
registry URL from its host, port, schema, login and password. Whatever the connection holds only
ever reaches the core's :class:`Settings`, which redacts credentials whenever it is described.

An AWS connection (``aws_conn_id``) gives an ``s3://`` store its credentials, the way the Amazon
provider's hooks read one: login and password are the access key id and secret (or
``aws_access_key_id``/``aws_secret_access_key`` in ``extra``), and ``extra`` may add
``aws_session_token``, ``region_name``, ``endpoint_url`` and ``profile_name``. Without keys or a
profile, boto3's own chain applies (a worker's role), as with the provider.

A Google connection (``gcp_conn_id``) does the same for a ``gs://`` store, read as the Google
provider reads one: ``extra`` may hold ``keyfile_dict`` (a service-account key's JSON),
``key_path`` (a key file) and ``project``, with or without the legacy
``extra__google_cloud_platform__`` prefix. Without a key, Application Default Credentials apply.
"""

from __future__ import annotations

import json
from typing import Any

from artifact_plugins.core.config import Settings
from artifact_plugins.core.errors import InvalidConfigError
from artifact_plugins.core.store_access import StoreAccess, gcs_access, s3_access

SETTINGS_FIELDS = ("store", "registry", "entity", "project", "cache_dir", "cache_max_bytes")
_POSTGRES_TYPES = {"postgres", "postgresql"}


def _postgres_url(conn: Any) -> str | None:
    if not conn.host:
        return None
    from sqlalchemy.engine import URL

    url = URL.create(
        "postgresql+psycopg",
        username=conn.login or None,
        password=conn.password or None,
        host=conn.host,
        port=conn.port or None,
        database=conn.schema or None,
    )
    return url.render_as_string(hide_password=False)


def _extra(conn: Any, conn_id: str) -> dict[str, Any]:
    """A connection's ``extra`` as a dict. Airflow reads malformed JSON as ``{}`` (logging an error)
    and the task would run on the environment's settings instead: refuse it, without quoting it
    (it may hold keys)."""
    raw = conn.extra
    if not raw:
        return {}
    try:
        extra = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InvalidConfigError(
            f"connection {conn_id!r}: its extra is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); "
            "fix it in the connection"
        ) from None
    if not isinstance(extra, dict):
        raise InvalidConfigError(f"connection {conn_id!r}: its extra must be a JSON object, not {type(extra).__name__}")
    return extra


def connection_settings(conn_id: str) -> dict[str, Any]:
    """The settings fields supplied by the Airflow connection ``conn_id``."""
    from airflow.sdk import Connection

    conn = Connection.get(conn_id)
    extra = _extra(conn, conn_id)
    unknown = sorted(set(extra) - set(SETTINGS_FIELDS))
    if unknown:
        raise InvalidConfigError(
            f"connection {conn_id!r} has unsupported extra keys {unknown}; allowed: {list(SETTINGS_FIELDS)}"
        )
    values = {key: extra[key] for key in SETTINGS_FIELDS if extra.get(key) not in (None, "")}
    if "registry" not in values and (conn.conn_type or "").lower() in _POSTGRES_TYPES:
        registry = _postgres_url(conn)
        if registry:
            values["registry"] = registry
    return values


#: ``extra`` keys of an AWS connection that :func:`aws_store_access` understands.
AWS_EXTRA_KEYS = (
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
    "region_name",
    "endpoint_url",
    "profile_name",
)


def aws_store_access(conn_id: str) -> StoreAccess:
    """Credentials (and endpoint and region) for an ``s3://`` store from the AWS connection ``conn_id``.

    ``extra`` keys this does not understand (``role_arn``, ``config_kwargs``...) are refused by
    name rather than ignored: a store reached with other credentials than the connection says
    would fail later, or write where nobody looks.
    """
    from airflow.sdk import Connection

    conn = Connection.get(conn_id)
    extra = _extra(conn, conn_id)
    unknown = sorted(set(extra) - set(AWS_EXTRA_KEYS))
    if unknown:
        raise InvalidConfigError(
            f"AWS connection {conn_id!r} has extra keys artifact_plugins cannot apply: {unknown}; "
            f"supported: {list(AWS_EXTRA_KEYS)} (login/password are the access key id and secret)"
        )
    return s3_access(
        f"Airflow connection {conn_id!r}",
        key_id=conn.login or extra.get("aws_access_key_id"),
        secret=conn.password or extra.get("aws_secret_access_key"),
        token=extra.get("aws_session_token"),
        region=extra.get("region_name"),
        endpoint_url=extra.get("endpoint_url"),
        profile=extra.get("profile_name"),
    )


#: ``extra`` keys of a Google connection that :func:`gcp_store_access` understands.
GCP_EXTRA_KEYS = ("keyfile_dict", "key_path", "project")
_GCP_LEGACY_PREFIX = "extra__google_cloud_platform__"


def gcp_store_access(conn_id: str) -> StoreAccess:
    """Credentials (and project) for a ``gs://`` store from the Google connection ``conn_id``.

    Unknown ``extra`` keys (``impersonation_chain``, ``scope``...) are refused by name, as for AWS.
    """
    from airflow.sdk import Connection

    conn = Connection.get(conn_id)
    extra = {k.removeprefix(_GCP_LEGACY_PREFIX): v for k, v in _extra(conn, conn_id).items() if v not in (None, "")}
    unknown = sorted(set(extra) - set(GCP_EXTRA_KEYS))
    if unknown:
        raise InvalidConfigError(
            f"Google connection {conn_id!r} has extra keys artifact_plugins cannot apply: {unknown}; "
            f"supported: {list(GCP_EXTRA_KEYS)}"
        )
    key = extra.get("keyfile_dict")
    if isinstance(key, str):
        try:
            key = json.loads(key)
        except json.JSONDecodeError:
            key = None  # the message below must not quote it: it is a private key
        if not isinstance(key, dict):
            raise InvalidConfigError(
                f"Google connection {conn_id!r}: keyfile_dict is not a service-account key's JSON object"
            )
    return gcs_access(
        f"Airflow connection {conn_id!r}", key_info=key, key_path=extra.get("key_path"), project=extra.get("project")
    )


def resolve_settings(
    conn_id: str | None, aws_conn_id: str | None = None, gcp_conn_id: str | None = None, **overrides: Any
) -> Settings | None:
    """Settings for an operator: explicit ``overrides`` > connection ``conn_id`` > environment/defaults.

    ``aws_conn_id`` / ``gcp_conn_id`` name the connection that gives an ``s3://`` / ``gs://`` store
    (and references of that scheme) its credentials; one store, so one of them. Returns ``None``
    when no connection and no override is given, so the core resolves its usual configuration.
    """
    if aws_conn_id is not None and gcp_conn_id is not None:
        raise InvalidConfigError(
            f"aws_conn_id={aws_conn_id!r} and gcp_conn_id={gcp_conn_id!r}: the store is either s3:// or gs://; "
            "give the connection for the store's kind only"
        )
    explicit = {k: v for k, v in overrides.items() if v is not None}
    if conn_id is None and aws_conn_id is None and gcp_conn_id is None and not explicit:
        return None
    values = connection_settings(conn_id) if conn_id else {}
    values.update(explicit)
    if aws_conn_id is not None:
        values["store_access"] = aws_store_access(aws_conn_id)
    if gcp_conn_id is not None:
        values["store_access"] = gcp_store_access(gcp_conn_id)
    return Settings.resolve(**values)
