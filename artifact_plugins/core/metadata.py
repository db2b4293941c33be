"""Validation of user metadata: a JSON object of finite values, within a sane size."""

from __future__ import annotations

import json
import math
from typing import Any

from .errors import InvalidMetadataError

MAX_METADATA_BYTES = 1 * 2**20
MAX_DESCRIPTION_CHARS = 64 * 1024


def _find_bad(value: Any, path: str) -> str | None:
    if isinstance(value, float) and not math.isfinite(value):
        return f"{path} is {value!r}; NaN and infinities are not JSON"
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                return f"{path} has non-string key {k!r}"
            bad = _find_bad(v, f"{path}[{k!r}]")
            if bad:
                return bad
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            bad = _find_bad(v, f"{path}[{i}]")
            if bad:
                return bad
    elif not isinstance(value, str | int | float | bool) and value is not None:
        return f"{path} is a {type(value).__name__} ({value!r:.60}), which is not JSON-serialisable"
    return None


def validate_metadata(value: Any) -> dict[str, Any]:
    """Return a JSON-clean copy of ``value`` or raise :class:`InvalidMetadataError` naming the bad part."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidMetadataError(f"metadata must be a dict (JSON object), got {type(value).__name__}: {value!r:.80}")
    bad = _find_bad(value, "metadata")
    if bad:
        raise InvalidMetadataError(f"invalid metadata: {bad}")
    encoded = json.dumps(value, allow_nan=False)
    if len(encoded) > MAX_METADATA_BYTES:
        raise InvalidMetadataError(
            f"metadata is {len(encoded)} bytes as JSON; the limit is {MAX_METADATA_BYTES} — store large data as a file"
        )
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
    return value
