"""The guard in front of the web app: read-only methods, optional bearer token, host check, security headers.

A pure ASGI middleware (no per-request Starlette objects), so it costs microseconds.

* Only ``GET`` and ``HEAD`` pass; anything else gets ``405`` before reaching a route. There is no
  CORS handling at all, so other origins can neither write (nothing writes) nor read responses.
* With a token, a request must carry ``Authorization: Bearer <token>``, the session cookie, or
  ``?token=<token>``; the latter, on a page, sets the cookie (``HttpOnly``, ``SameSite=Strict``)
  and redirects to the same URL without the token, so it does not linger in history or logs.
* ``allowed_hosts`` refuses other ``Host`` headers (DNS-rebinding protection for a loopback server).
* Every response gets ``nosniff``, ``no-referrer``, same-origin framing and resource policy, and a
  Content-Security-Policy: pages may only load this app's own scripts, styles and data.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Sequence
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.middleware.gzip import GZipMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

COOKIE = "artifacts_token"
ALLOWED_METHODS = ("GET", "HEAD")
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; base-uri 'self'; form-action 'none'; frame-ancestors 'self'"
)
DATA_CSP = "default-src 'none'; frame-ancestors 'none'; sandbox"
COMMON_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"x-frame-options", b"SAMEORIGIN"),
]


def cookie_value(token: str) -> str:
    """What the session cookie holds: a keyed hash of the token, never the token itself."""
    return hmac.new(token.encode(), b"artifact_plugins.web session", hashlib.sha256).hexdigest()


class Guard:
    """ASGI middleware enforcing the rules in the module docstring around ``app``."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        token: str | None = None,
        allowed_hosts: Sequence[str] | None = None,
        base_path: str = "",
    ) -> None:
        self.app = app
        self.gzip = GZipMiddleware(app, minimum_size=1024, compresslevel=5)
        self.token = token or None
        self._cookie = cookie_value(token) if token else ""
        self.allowed_hosts = {h.lower() for h in allowed_hosts} if allowed_hosts else None
        self.base_path = base_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":
            await send({"type": "websocket.close", "code": 1008})
            return
        path = self._route_path(scope)
        is_api = path.startswith(self.base_path + "/api/")
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if scope["method"] not in ALLOWED_METHODS:
            await self._refuse(
                send,
                405,
                f"the artifacts web app is read-only: {scope['method']} is not allowed",
                is_api,
                [(b"allow", b"GET, HEAD")],
            )
            return
        if self.allowed_hosts is not None and not self._host_ok(headers.get("host", "")):
            await self._refuse(send, 400, "invalid Host header", is_api)
            return
        if self.token and not path.startswith(self.base_path + "/static/"):
            query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
            given = next((v for k, v in query if k == "token"), None)
            if given is not None and hmac.compare_digest(given.encode(), self.token.encode()):
                if not is_api:
                    await self._login_redirect(scope, send, query)
                    return
            elif not self._authorised(headers):
                await self._refuse(
                    send,
                    401,
                    "this artifacts viewer needs its access token: open the URL printed by 'artifacts ui' "
                    "or send 'Authorization: Bearer <token>'",
                    is_api,
                    [(b"www-authenticate", b'Bearer realm="artifacts"')],
                )
                return

        head = scope["method"] == "HEAD"
        if head:  # answered like GET, without the body
            scope = {**scope, "method": "GET"}

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = _with_security_headers(list(message.get("headers", [])))
            elif head and message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        downstream = self.gzip if is_api and "/download/" not in path else self.app
        await downstream(scope, receive, send_with_headers)

    @staticmethod
    def _route_path(scope: Scope) -> str:
        path: str = scope.get("path", "")
        root: str = scope.get("root_path", "")
        return path[len(root) :] if root and path.startswith(root) else path

    def _host_ok(self, host: str) -> bool:
        assert self.allowed_hosts is not None
        host = host.lower()
        if host.startswith("[") and "]" in host:
            name = host[: host.index("]") + 1]  # [::1]:8765
        elif host.count(":") == 1:
            name = host.split(":", 1)[0]  # localhost:8765
        else:
            name = host
        return "*" in self.allowed_hosts or host in self.allowed_hosts or name in self.allowed_hosts

    def _authorised(self, headers: dict[str, str]) -> bool:
        assert self.token is not None
        auth = headers.get("authorization", "")
        if auth[:7].lower() == "bearer " and hmac.compare_digest(auth[7:].strip().encode(), self.token.encode()):
            return True
        raw = headers.get("cookie")
        if raw:
            jar: SimpleCookie = SimpleCookie()
            try:
                jar.load(raw)
            except Exception:
                return False
            morsel = jar.get(COOKIE)
            if morsel is not None and hmac.compare_digest(morsel.value.encode(), self._cookie.encode()):
                return True
        return False

    async def _login_redirect(self, scope: Scope, send: Send, query: list[tuple[str, str]]) -> None:
        raw = scope.get("raw_path") or scope.get("path", "").encode()
        last = raw.decode("latin-1").rsplit("/", 1)[-1]
        rest = [(k, v) for k, v in query if k != "token"]
        location = "./" + last + ("?" + urlencode(rest) if rest else "")
        cookie_path = (scope.get("root_path", "") + self.base_path) or "/"
        if not cookie_path.endswith("/"):
            cookie_path += "/"
        secure = "; Secure" if scope.get("scheme") == "https" else ""
        cookie = f"{COOKIE}={self._cookie}; Path={cookie_path}; HttpOnly; SameSite=Strict{secure}"
        await send(
            {
                "type": "http.response.start",
                "status": 303,
                "headers": _with_security_headers(
                    [
                        (b"location", location.encode("latin-1")),
                        (b"set-cookie", cookie.encode("latin-1")),
                        (b"cache-control", b"no-store"),
                        (b"content-length", b"0"),
                    ]
                ),
            }
        )
        await send({"type": "http.response.body", "body": b""})

    @staticmethod
    async def _refuse(
        send: Send, status: int, message: str, as_json: bool, extra: list[tuple[bytes, bytes]] | None = None
    ) -> None:
        if as_json:
            body, ctype = json.dumps({"detail": message}).encode(), b"application/json"
        else:
            body, ctype = (message + "\n").encode(), b"text/plain; charset=utf-8"
        headers: list[tuple[bytes, bytes]] = [
            (b"content-type", ctype),
            (b"content-length", str(len(body)).encode()),
            (b"cache-control", b"no-store"),
            *(extra or []),
        ]
        await send({"type": "http.response.start", "status": status, "headers": _with_security_headers(headers)})
        await send({"type": "http.response.body", "body": body})


def _with_security_headers(headers: list[Any]) -> list[Any]:
    present = {bytes(k).lower() for k, _ in headers}
    ctype = next((bytes(v) for k, v in headers if bytes(k).lower() == b"content-type"), b"")
    out = list(headers)
    out += [(k, v) for k, v in COMMON_HEADERS if k not in present]
    if b"content-security-policy" not in present:
        out.append((b"content-security-policy", (PAGE_CSP if ctype.startswith(b"text/html") else DATA_CSP).encode()))
    return out
