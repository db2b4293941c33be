"""Keeping credentials out of everything we store, print or log."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

_SECRET_QUERY = re.compile(
    r"(?i)([?&](?:x-amz-signature|x-amz-credential|x-amz-security-token|signature|sig|token|access_token|"
    r"api_key|apikey|password|secret|key)=)[^&#]*"
)
SECRET_KEY_RE = re.compile(r"(?i)(password|passwd|secret|token|api[_-]?key|credential|private[_-]?key)")


def redact_uri(uri: str) -> str:
    """Return ``uri`` with user info and secret-looking query parameters replaced by ``***``."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return uri
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rsplit("@", 1)[1]
    query = _SECRET_QUERY.sub(r"\1***", "?" + parts.query)[1:] if parts.query else parts.query
    if netloc == parts.netloc and query == parts.query:
        return uri
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def has_credentials(uri: str) -> bool:
    """True when ``uri`` carries user info or secret-looking query parameters."""
    return redact_uri(uri) != uri
