"""Reference handlers by URI scheme."""

from __future__ import annotations

from urllib.parse import urlsplit

from ..errors import InvalidInputError
from ..redact import has_credentials, redact_uri
from .base import Drift, ReferenceChangedError, ReferenceHandler, TooManyObjectsError, identity_digest
from .file import FileReferenceHandler

__all__ = [
    "Drift",
    "ReferenceChangedError",
    "ReferenceHandler",
    "TooManyObjectsError",
    "handler_for",
    "identity_digest",
]

_HANDLERS: dict[str, ReferenceHandler] = {}


def handler_for(uri: str) -> ReferenceHandler:
    """The handler for ``uri``'s scheme; refuses URIs that carry credentials."""
    if has_credentials(uri):
        raise InvalidInputError(
            f"reference {redact_uri(uri)!r} carries credentials (user info or a secret query parameter); "
            "references must not embed secrets"
        )
    scheme = urlsplit(uri).scheme
    if scheme not in _HANDLERS:
        if scheme == "file":
            _HANDLERS[scheme] = FileReferenceHandler()
        else:
            raise InvalidInputError(
                f"reference {uri!r}: scheme {scheme + '://' if scheme else '(none)'} is not supported; "
                "use file:// (s3://, gs:// and http(s):// arrive with the cloud-storage extra)"
            )
    return _HANDLERS[scheme]
