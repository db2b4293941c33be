"""Validation of user metadata: a JSON object of finite values, within a sane size and depth, and
without credentials (values under keys that name a secret, URLs with passwords, connection strings)."""

from __future__ import annotations

import json
import math
from typing import Any

from .errors import InvalidMetadataError
from .redact import embedded_secret, secret_key_name

MAX_METADATA_BYTES = 1 * 2**20
MAX_DESCRIPTION_CHARS = 64 * 1024
#: Deeper nesting than this is refused (clearly, instead of a RecursionError).
MAX_METADATA_DEPTH = 100
_NO_SECRETS = "credentials must never be stored in metadata (they would reach the registry, the web app and events)"


def _holds_text(value: Any) -> bool:
    """A non-empty string anywhere in ``value``: what a secret-named key must not hold (numbers and
    flags, as in ``{"max_token": 512}`` or ``{"use_token": true}``, are not credentials)."""
    if isinstance(value, str):
        return bool(value)
    if isinstance(value, dict):
        return any(_holds_text(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_holds_text(v) for v in value)
    return False


def _find_bad(value: Any, path: str, depth: int = 0) -> str | None:
    if depth > MAX_METADATA_DEPTH:
        shown = path if len(path) <= 120 else path[:120] + "…"
        return f"metadata is nested more than {MAX_METADATA_DEPTH} levels deep (at {shown})"
    if isinstance(value, float) and not math.isfinite(value):
        return f"{path} is {value!r}; NaN and infinities are not JSON"
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                return f"{path} has non-string key {k!r:.60}"
            where = f"{path}[{k!r:.80}]"
            secret = embedded_secret(k)
            if secret is not None:
                return f"a key of {path} embeds a credential ({secret}); {_NO_SECRETS}"
            if secret_key_name(k) and _holds_text(v):
                return (
                    f"{where} looks like a credential (its key names a secret); {_NO_SECRETS} — "
                    "remove it, or rename the key if the value is not secret"
                )
            bad = _find_bad(v, where, depth + 1)
            if bad:
                return bad
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            bad = _find_bad(v, f"{path}[{i}]", depth + 1)
            if bad:
                return bad
    elif isinstance(value, str):
        secret = embedded_secret(value)
        if secret is not None:
            return f"{path} embeds a credential ({secret}); {_NO_SECRETS}"
    elif not isinstance(value, int | float | bool) and value is not None:
        return f"{path} is a {type(value).__name__} ({value!r:.60}), which is not JSON-serialisable"
    return None


def validate_metadata(value: Any) -> dict[str, Any]:
    """Return a JSON-clean copy of ``value`` or raise :class:`InvalidMetadataError` naming the bad part."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidMetadataError(f"metadata must be a dict (JSON object), got {type(value).__name__}: {value!r:.80}")
    try:  # the size first (in C): the checks below then read at most MAX_METADATA_BYTES of text
        encoded: str | None = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        encoded = None  # not JSON: the walk below names the part that is not
    if encoded is not None and len(encoded) > MAX_METADATA_BYTES:
        raise InvalidMetadataError(
            f"metadata is {len(encoded)} bytes as JSON; the limit is {MAX_METADATA_BYTES} — store large data as a file"
        )
    bad = _find_bad(value, "metadata")
    if bad:
        raise InvalidMetadataError(f"invalid metadata: {bad}")
    assert encoded is not None  # whatever json.dumps refuses, the walk names
    result: dict[str, Any] = json.loads(encoded)
    return result


def validate_description(value: Any) -> str | None:
    """Return ``value`` if it is ``None`` or a string within the size limit."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidMetadataError(f"description must be a string, got {type(value).__name__}")
    if len(value) > MAX_DESCRIPTION_CHARS:
        raise InvalidMetadataError(f"description is {len(value)} characters; the limit is {MAX_DESCRIPTION_CHARS}")
    secret = embedded_secret(value)
    if secret is not None:
        raise InvalidMetadataError(f"description embeds a credential ({secret}); credentials must never be stored")
    return value
