"""Keeping credentials out of everything we store, print or log."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
#: ``user:`` at the start of an authority (no ``/``, ``?``, ``#`` or ``@`` before the colon).
_USER_COLON = re.compile(r"[^/?#@:\s]*:")
_PORT_THEN_PATH = re.compile(r"[0-9]*(?:[/?#]|$)")
_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|[0-9]+")

#: Last words of a key that names a credential (``hf_token``, ``db_password``, ``client_secret``).
_SECRET_WORDS = {"password", "passwd", "passphrase", "secret", "token", "apikey", "credential", "credentials"}
_SECRET_WORDS |= {"authorization", "cookie"}
#: ``<word>_key`` pairs that name a credential (``api_key``, ``aws_secret_access_key``, ``private_key``).
_KEY_QUALIFIERS = {"api", "access", "private", "secret", "account", "signing", "encryption", "master"}
#: Query or fragment parameters that carry a credential although no word of theirs says so: signed
#: URLs (``sig``), API keys (``key``), resumable upload sessions (``upload_id``: whoever holds it can
#: write to the session). ``X-Amz-Credential``, ``X-Goog-Signature`` ... end like a secret's name.
_SECRET_PARAMS = {"sig", "key", "auth", "upload_id"}
#: A last word ending like this names a credential even when glued to another (``sslpassword``).
_SECRET_ENDINGS = ("password", "passwd", "secret", "token", "signature", "credential", "credentials")
_PARAM = re.compile(r"(?<=[?&;#])(?P<name>[^&;=#?]+)=(?P<value>[^&;#]*)")


def secret_key_name(key: str) -> bool:
    """True when a mapping key names a credential: ``password``, ``hf_token``, ``AWS_SECRET_ACCESS_KEY``,
    ``apiKey``... (but not ``tokenizer``, ``max_tokens`` or ``token_type``: the last word decides)."""
    words = [w.lower() for w in _WORD.findall(key)]
    if not words:
        return False
    if words[-1] in _SECRET_WORDS:
        return True
    return words[-1] == "key" and len(words) > 1 and words[-2] in _KEY_QUALIFIERS


def secret_param_name(name: str) -> bool:
    """True when a URL query or fragment parameter named ``name`` carries a credential
    (``access_token``, ``client_secret``, ``sslpassword``, ``X-Amz-Signature``, ``sig``, ``key`` ...)."""
    if name.lower() in _SECRET_PARAMS or secret_key_name(name):
        return True
    words = [w.lower() for w in _WORD.findall(name)]
    return bool(words) and words[-1].endswith(_SECRET_ENDINGS)


def _secret_assignment(name: str) -> bool:
    """``name`` in ``name=value`` text names a credential (``PWD`` as in ODBC strings too)."""
    words = [w.lower() for w in _WORD.findall(name)]
    return bool(words) and (secret_key_name(name) or words[-1] == "pwd" or words[-1].endswith(_SECRET_ENDINGS))


def _redact_params(text: str) -> str:
    """``text`` (a query or a fragment) with the value of every secret parameter replaced by ``***``."""
    return _PARAM.sub(
        lambda m: f"{m['name']}=***" if m["value"] and secret_param_name(m["name"].strip()) else m.group(0), text
    )


def _userinfo_end(rest: str, strict: bool) -> int:
    """Where the user info of an authority ``rest`` (the text after ``scheme://``) ends: the index
    just past its ``@``, or 0 when there is none.

    RFC 3986 ends the authority at the first ``/``, ``?`` or ``#``; SQLAlchemy and libpq read a
    password up to an ``@`` across them (``u:ab/c@host``), and a password holding an unencoded
    ``@`` splits at the first ``@`` for one reader and the last for another. Both readings are
    masked: everything up to the last ``@`` after a ``user:``. ``strict`` keeps RFC's reading for
    ``host:port/...@...`` (a port, then a path holding ``@``), so such a URL is not taken for one
    with credentials.
    """
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    end = authority.rfind("@") + 1
    colon = _USER_COLON.match(rest)
    if colon is not None:
        last = rest.rfind("@")
        if last > colon.end() - 1 and not (strict and _PORT_THEN_PATH.match(rest, colon.end())):
            end = max(end, last + 1)
    return end


def _redacted(uri: str, strict: bool) -> str:
    scheme = _SCHEME.match(uri)
    if scheme is None:
        return uri
    head, rest = uri[: scheme.end()], uri[scheme.end() :]
    end = _userinfo_end(rest, strict)
    if end:
        rest = "***@" + rest[end:]
    query_at = min((i for i in (rest.find("?"), rest.find("#")) if i != -1), default=-1)
    if query_at != -1:
        rest = rest[:query_at] + _redact_params(rest[query_at:])
    return head + rest


def redact_uri(uri: str) -> str:
    """Return ``uri`` with user info and secret query or fragment parameters replaced by ``***``.

    For showing a URI (messages, logs, ``describe()``): when a URI could be read two ways (a
    password with an unencoded ``/``, ``?``, ``#`` or ``@``), whatever either reading calls user
    info is masked.
    """
    return _redacted(uri, strict=False)


_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s\"'<>]+")


def redact_text(text: str) -> str:
    """``text`` (an error message, say) with every URL in it passed through :func:`redact_uri`."""
    return _URL_IN_TEXT.sub(lambda m: redact_uri(m.group(0)), text)


def has_credentials(uri: str) -> bool:
    """True when ``uri`` carries user info or secret query or fragment parameters (then it is
    refused as a store URI or a reference: whatever is recorded would hold the secret)."""
    return _redacted(uri, strict=True) != uri


#: ``password=...`` in connection strings and environment dumps: an identifier naming a secret
#: (``PWD``, ``AWS_SECRET_ACCESS_KEY``, ``sslpassword``), ``=``, a value. A name starts only where
#: no name character precedes it: tried at every letter of a long word, the scan would be quadratic.
_ASSIGNMENT = re.compile(r"(?<![A-Za-z0-9_.-])(?P<name>[A-Za-z_][A-Za-z0-9_.-]*)[ \t]*=[ \t]*[^\s;&'\",]")
_PEM_PRIVATE_KEY = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----")
#: An ``Authorization`` header's value: the scheme, then a token with a digit in it (not prose).
_AUTH_VALUE = re.compile(r"(?i)\b(?:bearer|basic)[ \t]+(?=[A-Za-z0-9._~+/-]*[0-9])[A-Za-z0-9._~+/-]{12,}")
_URL_TAIL = re.compile(r"[^\s\"'<>]*")


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


def _has_password(url: str) -> bool:
    """A URL whose user info holds a password (``user:pw@``), under either reading of :func:`redact_uri`."""
    rest = url[url.find("://") + 3 :]
    end = _userinfo_end(rest, strict=False)
    userinfo = rest[: end - 1] if end else ""
    return ":" in userinfo and bool(userinfo.split(":", 1)[1])


def embedded_secret(text: str) -> str | None:
    """A redacted description of a credential embedded in ``text`` (a URL with a password or a
    secret query parameter, a private key, an ``Authorization`` value, or ``password=...`` in a
    connection string), else ``None``."""
    for url in _urls(text):
        try:
            urlsplit(url)
        except ValueError:
            return "a URL that cannot be parsed safely"
        if _has_password(url) or _redacted(url, strict=True) != url:
            return redact_uri(url)
    if _PEM_PRIVATE_KEY.search(text):
        return "a PEM private key"
    if _AUTH_VALUE.search(text):
        return "an Authorization header value"
    for m in _ASSIGNMENT.finditer(text):
        if _secret_assignment(m["name"]):
            return f"{m['name']}=***"
    return None
