"""Small-object GETs and PUTs, and listings, for the S3 store without botocore's per-call pipeline.

A ``get_object``/``put_object`` call spends most of its CPU in botocore (parameter validation,
a dozen event hooks, endpoint rules, header and timestamp parsing) around a request that moves
4 KiB; on a 2-core machine talking to a nearby endpoint that CPU, not the network, bounds the
transfer of many small blobs (``benchmarks/bench_cloud.py --only requests`` on a local
SeaweedFS: 500 GETs of 4 KiB cost 0.91 s of CPU through ``get_object``, 0.43 s through this
module). This path keeps what matters
from boto3 — credentials (the standard chain, refreshed), endpoint resolution and SigV4 signing, through
``generate_presigned_url`` — and the client's own connection pool, TLS and proxy settings
(its ``URLLib3Session``), and skips the rest.

Listings are the same story at a larger scale: botocore turns each page of 1,000 keys into
dicts, ``datetime`` objects and decoded strings. Asking a local SeaweedFS which of 10,000 blobs
exist took 183 pages and most of a 1.51 s log after a 1% change; with the pages requested
presigned and parsed with ElementTree here, the same log took 0.72 s
(``benchmarks/bench_cloud.py --only change``).

It answers only the plain cases: a 200 (GET, LIST), a 200 or 412 (create-only PUT). Anything else —
a missing object, a redirect to another region, throttling, an error, an exception — returns
``None`` and the caller makes the ordinary boto3 call, which retries, follows and explains.
Writes with server-side-encryption settings always take the ordinary call (S3 wants those
headers signed).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import xml.etree.ElementTree as ET
from datetime import datetime
from typing import Any
from urllib.parse import unquote_plus

from botocore.awsrequest import AWSRequest

from . import TokenPage

logger = logging.getLogger("artifact_plugins.storage")

#: Lifetime of each presigned URL: it is used at once, so short is enough.
URL_TTL_S = 900
_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


class LeanS3:
    """Presigned single-request GET/PUT on an existing boto3 client's connection pool."""

    def __init__(self, client: Any, bucket: str) -> None:
        self._client, self._bucket = client, bucket
        # The client's own HTTP session (pool, TLS verification, proxies). If a future botocore
        # moves it, the lean path switches itself off and every call takes the ordinary route.
        self._http = getattr(getattr(client, "_endpoint", None), "http_session", None)

    @property
    def available(self) -> bool:
        """Whether the lean path can be used with this client."""
        return self._http is not None and callable(getattr(self._http, "send", None))

    def _send(
        self, method: str, key: str, signed: dict[str, tuple[str, str]] | None = None, data: bytes | None = None
    ) -> Any:
        """One presigned request; ``signed`` maps operation parameters to the headers they become
        (signed into the URL, so the server checks them as the operation's own)."""
        params = {"Bucket": self._bucket, "Key": key}
        headers: dict[str, str] = {}
        for param, (header, value) in (signed or {}).items():
            params[param] = value
            headers[header] = value
        return self._request("get_object" if method == "GET" else "put_object", method, params, headers, data)

    def _request(
        self, operation: str, method: str, params: dict[str, Any], headers: dict[str, str], data: bytes | None = None
    ) -> Any:
        url = self._client.generate_presigned_url(operation, Params=params, ExpiresIn=URL_TTL_S, HttpMethod=method)
        request = AWSRequest(method=method, url=url, headers=headers, data=data).prepare()
        assert self._http is not None
        return self._http.send(request)

    def get(self, key: str) -> bytes | None:
        """The object's bytes, or ``None`` when the ordinary call should answer instead."""
        try:
            response = self._send("GET", key)
        except Exception as exc:  # the ordinary call retries and reports it properly
            logger.debug("lean GET of %s fell back: %s", key, type(exc).__name__)
            return None
        if response.status_code != 200:
            return None
        data: bytes = response.content
        expected = response.headers.get("Content-Length")
        if expected is not None and expected.isdigit() and int(expected) != len(data):
            return None  # cut short: let the ordinary call fetch it again
        return data

    def put_new(self, key: str, data: bytes) -> bool:
        """Create the object unless it exists (``If-None-Match: *``, ``Content-MD5`` checked by the
        server); ``True`` when done (or already there), ``False`` when the ordinary call should do it."""
        md5 = base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()
        signed = {"IfNoneMatch": ("If-None-Match", "*"), "ContentMD5": ("Content-MD5", md5)}
        try:
            response = self._send("PUT", key, signed, data)
        except Exception as exc:
            logger.debug("lean PUT of %s fell back: %s", key, type(exc).__name__)
            return False
        return response.status_code in (200, 412)

    def list_page(self, prefix: str, max_keys: int, start_after: str | None, token: str | None) -> TokenPage | None:
        """One ``ListObjectsV2`` page of ``prefix`` (after ``start_after``, or from ``token``), or
        ``None`` when the ordinary paginator should answer instead."""
        params: dict[str, Any] = {"Bucket": self._bucket, "Prefix": prefix, "MaxKeys": max_keys}
        if token is not None:
            params["ContinuationToken"] = token
        elif start_after is not None:
            params["StartAfter"] = start_after
        try:
            response = self._request("list_objects_v2", "GET", params, {})
            if response.status_code != 200:
                return None
            return _parse_listing(response.content)
        except Exception as exc:  # a malformed body included: the ordinary call explains
            logger.debug("lean LIST of %s fell back: %s", prefix, type(exc).__name__)
            return None


def _parse_listing(body: bytes) -> TokenPage:
    """Objects and next continuation token of a ``ListBucketResult`` (keys URL-decoded when the
    server says it encoded them)."""
    root = ET.fromstring(body)
    if root.tag != f"{_NS}ListBucketResult":
        raise ValueError(f"not a listing: {root.tag}")
    decode = unquote_plus if root.findtext(f"{_NS}EncodingType") == "url" else str
    items = []
    for item in root.iter(f"{_NS}Contents"):
        key, size, modified = (item.findtext(f"{_NS}{tag}") for tag in ("Key", "Size", "LastModified"))
        if key is None or size is None or modified is None:
            raise ValueError("a listed object lacks its key, size or time")
        items.append((decode(key), int(size), datetime.fromisoformat(modified).timestamp()))
    truncated = root.findtext(f"{_NS}IsTruncated") == "true"
    token = root.findtext(f"{_NS}NextContinuationToken") if truncated else None
    if truncated and not token:
        raise ValueError("a truncated listing without a continuation token")
    return items, token


__all__ = ["URL_TTL_S", "LeanS3"]
