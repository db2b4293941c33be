"""Artifact settings from an Airflow connection.

A connection is a further configuration source (after explicit operator arguments, before the
environment): its ``extra`` may hold ``store``, ``registry``, ``entity``, ``project``, ``cache_dir``
and ``cache_max_bytes``; a ``postgres`` connection without an ``extra["registry"]`` supplies the
registry URL from its host, port, schema, login and password. Whatever the connection holds only
ever reaches the core's :class:`Settings`, which redacts credentials whenever it is described.
"""

from __future__ import annotations

from typing import Any

from artifact_plugins.core.config import Settings

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


def connection_settings(conn_id: str) -> dict[str, Any]:
    """The settings fields supplied by the Airflow connection ``conn_id``."""
    from airflow.sdk import Connection

    conn = Connection.get(conn_id)
    extra = conn.extra_dejson or {}
    unknown = sorted(set(extra) - set(SETTINGS_FIELDS))
    if unknown:
        raise ValueError(
            f"connection {conn_id!r} has unsupported extra keys {unknown}; allowed: {list(SETTINGS_FIELDS)}"
        )
    values = {key: extra[key] for key in SETTINGS_FIELDS if extra.get(key) not in (None, "")}
    if "registry" not in values and (conn.conn_type or "").lower() in _POSTGRES_TYPES:
        registry = _postgres_url(conn)
        if registry:
            values["registry"] = registry
    return values


def resolve_settings(conn_id: str | None, **overrides: Any) -> Settings | None:
    """Settings for an operator: explicit ``overrides`` > connection ``conn_id`` > environment/defaults.

    Returns ``None`` when neither a connection nor an override is given, so the core resolves its
    usual configuration.
    """
    explicit = {k: v for k, v in overrides.items() if v is not None}
    if conn_id is None and not explicit:
        return None
    values = connection_settings(conn_id) if conn_id else {}
    values.update(explicit)
    return Settings.resolve(**values)
