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


#: Last words of a key that names a credential (``hf_token``, ``db_password``, ``client_secret``).
_SECRET_WORDS = {"password", "passwd", "passphrase", "secret", "token", "apikey", "credential", "credentials"}
_SECRET_WORDS |= {"authorization", "cookie"}
#: ``<word>_key`` pairs that name a credential (``api_key``, ``aws_secret_access_key``, ``private_key``).
_KEY_QUALIFIERS = {"api", "access", "private", "secret", "account", "signing", "encryption", "master"}
_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|[0-9]+")
#: ``password=...`` in libpq / ODBC / ADO-style connection strings.
_KV_SECRET = re.compile(r"(?i)(?<![A-Za-z0-9_])(?:password|passwd|pwd|secret|token|api_?key)\s*=\s*[^\s;&'\"]+")
_URL_TAIL = re.compile(r"[^\s\"'<>]*")


def secret_key_name(key: str) -> bool:
    """True when a mapping key names a credential: ``password``, ``hf_token``, ``AWS_SECRET_ACCESS_KEY``,
    ``apiKey``... (but not ``tokenizer``, ``max_tokens`` or ``token_type``: the last word decides)."""
    words = [w.lower() for w in _WORD.findall(key)]
    if not words:
        return False
    if words[-1] in _SECRET_WORDS:
        return True
    return words[-1] == "key" and len(words) > 1 and words[-2] in _KEY_QUALIFIERS


def _urls(text: str) -> list[str]:
    """URLs in ``text`` (found from each ``://``: linear time even on huge strings)."""
    out, start = [], 0
    while (i := text.find("://", start)) != -1:
        j = i
        while j > 0 and i - j < 32 and (text[j - 1].isalnum() or text[j - 1] in "+.-"):
            j -= 1
        tail = _URL_TAIL.match(text, i + 3)
        end = tail.end() if tail else i + 3
        if j < i and text[j].isalpha():
            out.append(text[j:end])
        start = max(end, i + 3)
    return out


def embedded_secret(text: str) -> str | None:
    """A redacted description of a credential embedded in ``text`` (a URL with a password or a
    secret query parameter, or ``password=...`` in a connection string), else ``None``."""
    for url in _urls(text):
        try:
            parts = urlsplit(url)
        except ValueError:
            continue
        userinfo = parts.netloc.rpartition("@")[0]
        if (":" in userinfo and userinfo.split(":", 1)[1]) or (parts.query and _SECRET_QUERY.search("?" + parts.query)):
            return redact_uri(url)
    m = _KV_SECRET.search(text)
    if m:
        return m.group(0).split("=", 1)[0].strip() + "=***"
    return None
