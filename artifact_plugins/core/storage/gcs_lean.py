"""Listing pages for the GCS store without google-cloud-storage's per-object ``Blob`` objects.

``Client.list_blobs`` builds a ``Blob`` (with its properties dict and a parsed ``updated``
timestamp) for every object listed, and asking which of thousands of blobs exist lists thousands
of objects: on a 2-core machine that CPU is most of what a listing costs. Here one
``objects.list`` request goes out on the client's own authorized session and its JSON is read
straight into tuples. Anything but a plain 200 with a well-formed body returns ``None``, and the
caller lists with the library instead, which retries and explains.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any
from urllib.parse import quote

from . import TokenPage

logger = logging.getLogger("artifact_plugins.storage")

_FIELDS = "items(name,size,updated),nextPageToken"


class LeanGCS:
    """``objects.list`` pages on an existing ``storage.Client``'s authorized session."""

    def __init__(self, client: Any, bucket: str, timeout: Any) -> None:
        self._bucket, self._timeout = bucket, timeout
        # The library's session and endpoint (the emulator's too). If a future release moves
        # them, the lean path switches itself off and every listing takes the library's route.
        self._http = getattr(client, "_http", None)
        self._base = getattr(getattr(client, "_connection", None), "API_BASE_URL", None)

    @property
    def available(self) -> bool:
        """Whether the lean path can be used with this client."""
        return isinstance(self._base, str) and callable(getattr(self._http, "get", None))

    def list_page(self, prefix: str, max_results: int, start: str | None, token: str | None) -> TokenPage | None:
        """One page of the objects named ``prefix…`` from ``start`` on (inclusive) or from ``token``,
        or ``None`` when the library should list instead."""
        params: dict[str, Any] = {"prefix": prefix, "maxResults": max_results, "fields": _FIELDS}
        if token is not None:
            params["pageToken"] = token
        elif start is not None:
            params["startOffset"] = start
        url = f"{self._base}/storage/v1/b/{quote(self._bucket, safe='')}/o"
        try:
            assert self._http is not None
            response = self._http.get(url, params=params, timeout=self._timeout)
            if response.status_code != 200:
                return None
            return _parse_page(response.json())
        except Exception as exc:  # a malformed body included: the library explains
            logger.debug("lean listing of %s fell back: %s", prefix, type(exc).__name__)
            return None


def _parse_page(doc: Any) -> TokenPage:
    """Objects and next page token of an ``objects.list`` answer."""
    if not isinstance(doc, dict):
        raise ValueError("not a listing")
    items = [
        (str(o["name"]), int(o.get("size", 0)), datetime.fromisoformat(o["updated"]).timestamp())
        for o in doc.get("items", [])
    ]
    token = doc.get("nextPageToken")
    if token is not None and not isinstance(token, str):
        raise ValueError("a page token that is not a string")
    return items, token or None


__all__ = ["LeanGCS"]
