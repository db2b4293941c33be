"""``http(s)://`` references: one URL each, tracked by the server's validators.

The identity of a URL is its ``ETag`` when the server sends one, else its ``Last-Modified``,
else (a server with no validators at all) the BLAKE3 digest of the body, read once when the
reference is added. A download checks the response against the recorded identity and size and
raises :class:`ReferenceChangedError` on any difference. Transient failures (connection resets,
timeouts, 429 and 5xx) are retried with backoff, at most ``ARTIFACT_PLUGINS_HTTP_MAX_ATTEMPTS``
times (default 5); ``ARTIFACT_PLUGINS_HTTP_TIMEOUT`` sets the per-request timeout (default 60 s).
Only the standard library is used, so this handler works without extras.

Private servers: credentials come from ``~/.netrc`` (or ``$NETRC``), matched by host and sent
as Basic auth, or from ``ARTIFACT_PLUGINS_HTTP_AUTH_HEADERS``, a JSON object mapping a host
(``host`` or ``host:port``) to its ``Authorization`` value (``{"data.example.com": "Bearer …"}``).
They are sent only to that host (never along a redirect) and never recorded: the URI is what
the manifest keeps.
"""

from __future__ import annotations

import base64
import http.client
import json
import netrc
import os
import posixpath
import socket
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import IO, Any
from urllib.parse import unquote, urlsplit

from blake3 import blake3

from ..env import env_int, env_seconds
from ..errors import InvalidConfigError, InvalidInputError, StoreError
from ..hashing import PREFIX
from ..manifest import ManifestEntry
from ..naming import normalize_entry_path
from ..redact import redact_uri
from ..storage import with_retries
from .base import Drift, ReferenceChangedError, ReferenceHandler, identity_digest, is_unchecked

USER_AGENT = "artifact-plugins"
_RETRY_STATUS = {408, 425, 429, 500, 502, 503, 504}
_BUFFER = 2**20


class _Transient(Exception):
    """A retryable HTTP status."""

    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status


@dataclass(frozen=True)
class _Info:
    """What the server says about a URL."""

    status: int
    size: int | None
    etag: str | None
    last_modified: str | None

    def identity(self, body_digest: str | None = None) -> tuple[str, str]:
        """The validator the entry digest is derived from (strongest available)."""
        if self.etag:
            return ("etag", self.etag)
        if self.last_modified:
            return ("last_modified", self.last_modified)
        return ("blake3", body_digest or "")


def _auth_headers() -> dict[str, str]:
    """``ARTIFACT_PLUGINS_HTTP_AUTH_HEADERS``: host -> ``Authorization`` value (validated, never echoed)."""
    raw = os.environ.get("ARTIFACT_PLUGINS_HTTP_AUTH_HEADERS")
    if not raw:
        return {}
    try:
        table = json.loads(raw)
    except ValueError:
        table = None
    if not isinstance(table, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in table.items()):
        raise InvalidConfigError(
            "ARTIFACT_PLUGINS_HTTP_AUTH_HEADERS must be a JSON object mapping host names to Authorization "
            'values, e.g. {"data.example.com": "Bearer <token>"} (its value is not shown here)'
        )
    return {k.lower(): v for k, v in table.items()}


def _netrc_auth(host: str) -> str | None:
    """Basic credentials for ``host`` from ``$NETRC`` / ``~/.netrc`` (an unreadable file counts as none)."""
    path = os.environ.get("NETRC") or os.path.expanduser("~/.netrc")
    if not os.path.isfile(path):
        return None
    try:
        found = netrc.netrc(path).authenticators(host)
    except (netrc.NetrcParseError, OSError):
        return None
    if not found:
        return None
    login, _account, password = found
    return "Basic " + base64.b64encode(f"{login}:{password or ''}".encode()).decode()


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, _Transient):
        return True
    if isinstance(exc, urllib.error.HTTPError):
        return exc.code in _RETRY_STATUS
    return isinstance(exc, (urllib.error.URLError, http.client.HTTPException, ConnectionError, socket.timeout))


class HttpReferenceHandler(ReferenceHandler):
    """Tracks single URLs by ETag / Last-Modified / body digest; no prefixes."""

    schemes = ("http", "https")

    def __init__(self) -> None:
        self.attempts = env_int("HTTP_MAX_ATTEMPTS", 5, minimum=1)
        self.timeout = env_seconds("HTTP_TIMEOUT", 60.0)
        self.auth_headers = _auth_headers()

    def _authorization(self, uri: str) -> str | None:
        """The ``Authorization`` value configured for ``uri``'s host, if any."""
        parts = urlsplit(uri)
        host = (parts.hostname or "").lower()
        with_port = f"{host}:{parts.port}" if parts.port else host
        return self.auth_headers.get(with_port) or self.auth_headers.get(host) or _netrc_auth(host)

    # -- requests -------------------------------------------------------------------------------

    def _open(self, uri: str, method: str) -> Any:
        """Open ``uri`` (following redirects); 404/410 give ``None``; retryable failures are retried."""
        auth = self._authorization(uri)

        def attempt() -> Any:
            req = urllib.request.Request(uri, method=method, headers={"User-Agent": USER_AGENT})
            if auth is not None:
                req.add_unredirected_header("Authorization", auth)  # never forwarded to another host
            try:
                resp = urllib.request.urlopen(req, timeout=self.timeout)
            except urllib.error.HTTPError as exc:
                exc.close()
                if exc.code in (404, 410):
                    return None
                if exc.code in _RETRY_STATUS:
                    raise _Transient(exc.code) from None
                raise
            return resp

        try:
            return with_retries(attempt, _transient, self.attempts)
        except (urllib.error.URLError, http.client.HTTPException, OSError, _Transient) as exc:
            raise StoreError(f"cannot read reference {redact_uri(uri)}: {_describe(exc)}") from exc

    def _info(self, uri: str) -> _Info | None:
        """Validators and size from a HEAD (a GET whose body is not read, when HEAD is refused)."""
        try:
            resp = self._open(uri, "HEAD")
        except StoreError as exc:
            cause = exc.__cause__
            if not (isinstance(cause, urllib.error.HTTPError) and cause.code in (405, 501)):
                raise
            resp = self._open(uri, "GET")
        if resp is None:
            return None
        with resp:
            return _info_of(resp)

    def _stream(self, uri: str, out: IO[bytes] | None) -> tuple[_Info, str, int] | None:
        """GET the body (into ``out`` when given) and return its info, BLAKE3 digest and length."""
        resp = self._open(uri, "GET")
        if resp is None:
            return None
        h, n = blake3(), 0
        with resp:
            info = _info_of(resp)
            while True:
                try:
                    chunk = resp.read(_BUFFER)
                except (http.client.HTTPException, OSError) as exc:
                    raise StoreError(f"cannot read reference {redact_uri(uri)}: {_describe(exc)}") from exc
                if not chunk:
                    break
                h.update(chunk)
                n += len(chunk)
                if out is not None:
                    out.write(chunk)
        return info, PREFIX + h.hexdigest(), n

    # -- ReferenceHandler -----------------------------------------------------------------------

    def entries(self, uri: str, name: str | None, checksum: bool, max_objects: int | None) -> list[ManifestEntry]:
        parts = urlsplit(uri)
        path = normalize_entry_path(name or posixpath.basename(unquote(parts.path)) or parts.hostname or "index")
        if not checksum:
            return [ManifestEntry(path=path, digest=identity_digest(uri), size=0, ref=uri)]
        info = self._info(uri)
        if info is None:
            raise InvalidInputError(f"reference {redact_uri(uri)!r}: the server answered 404 Not Found")
        body: str | None = None
        size = info.size
        if info.identity()[0] == "blake3" or size is None:
            streamed = self._stream(uri, None)
            if streamed is None:
                raise InvalidInputError(f"reference {redact_uri(uri)!r}: the server answered 404 Not Found")
            info, body, size = streamed[0], streamed[1], streamed[2]
        extra: dict[str, Any] = {k: v for k, v in (("etag", info.etag), ("last_modified", info.last_modified)) if v}
        kind, value = info.identity(body)
        if kind == "blake3":
            extra["blake3"] = value
        return [
            ManifestEntry(path=path, digest=identity_digest(uri, kind, value, size), size=size, ref=uri, extra=extra)
        ]

    def fetch(self, entry: ManifestEntry, dest: str | os.PathLike[str]) -> None:
        assert entry.ref is not None
        uri = entry.ref
        with open(dest, "wb") as out:
            streamed = self._stream(uri, out)
        if streamed is None:
            raise ReferenceChangedError(f"reference {redact_uri(uri)} is missing (404) since it was logged")
        if is_unchecked(entry):  # checksum=False: whatever the URL serves now
            return
        info, body, size = streamed
        if self._digest(uri, info, body, size) != entry.digest:
            raise ReferenceChangedError(
                f"reference {redact_uri(uri)} changed since it was logged (recorded "
                f"{_recorded(entry)}, now {_recorded_info(info, size)}); log a new version to track its current content"
            )

    def check(self, entry: ManifestEntry) -> Drift:
        assert entry.ref is not None
        uri = entry.ref
        if "blake3" in entry.extra:  # no validators: the body is the only identity there is
            streamed = self._stream(uri, None)
            if streamed is None:
                return "missing"
            return "unchanged" if self._digest(uri, *streamed) == entry.digest else "changed"
        info = self._info(uri)
        if info is None:
            return "missing"
        if is_unchecked(entry):
            return "unchanged"
        size = info.size if info.size is not None else entry.size
        return "unchanged" if self._digest(uri, info, None, size) == entry.digest else "changed"

    @staticmethod
    def _digest(uri: str, info: _Info, body: str | None, size: int) -> str:
        kind, value = info.identity(body)
        return identity_digest(uri, kind, value, size)


def _info_of(resp: Any) -> _Info:
    length = resp.headers.get("Content-Length")
    encoding = (resp.headers.get("Content-Encoding") or "identity").lower()
    size = int(length) if length and length.isdigit() and encoding == "identity" else None
    return _Info(resp.status, size, resp.headers.get("ETag"), resp.headers.get("Last-Modified"))


def _recorded(entry: ManifestEntry) -> str:
    shown = [f"{k}={entry.extra[k]}" for k in ("etag", "last_modified") if k in entry.extra]
    return ", ".join([*shown, f"size={entry.size}"])


def _recorded_info(info: _Info, size: int) -> str:
    shown = [f"{k}={v}" for k, v in (("etag", info.etag), ("last_modified", info.last_modified)) if v]
    return ", ".join([*shown, f"size={size}"])


def _describe(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        if exc.code in (401, 403):
            return (
                f"HTTP {exc.code} {exc.reason}; put credentials for this host in ~/.netrc (or $NETRC) or "
                "in ARTIFACT_PLUGINS_HTTP_AUTH_HEADERS"
            )
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return f"{exc.reason}"
    return f"{type(exc).__name__}: {exc}"
