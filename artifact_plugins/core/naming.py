"""Names, aliases, references and entry paths: parsing and validation.

Every refusal raises a :class:`~artifact_plugins.core.errors.InvalidInputError` subclass whose
message names the offending value and the rule it broke.
"""

from __future__ import annotations

import posixpath
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from .errors import InvalidAliasError, InvalidNameError, InvalidPathError, InvalidRefError

NAME_RULE = "1-128 characters from letters, digits, '_', '-' and '.'"
_NAME_RE = re.compile(r"[A-Za-z0-9_.\-]{1,128}")
_VERSION_RE = re.compile(r"v(\d+)")
_DIGEST_RE = re.compile(r"blake3:[0-9a-f]{64}")
MAX_PATH_BYTES = 1024
LATEST = "latest"


def _show(value: object) -> str:
    """``repr(value)``, cut short for huge values so that an error message stays readable."""
    text = repr(value)
    if len(text) <= 2048:
        return text
    size = f"{len(value)} characters" if isinstance(value, str) else type(value).__name__
    return f"{text[:100]}… ({size})"


def validate_name(value: object, what: str = "artifact name") -> str:
    """Return ``value`` if it is a valid name (also used for types, projects and entities)."""
    if not isinstance(value, str) or not _NAME_RE.fullmatch(value):
        raise InvalidNameError(f"invalid {what} {_show(value)}: must be {NAME_RULE}")
    if value in {".", ".."}:
        raise InvalidNameError(f"invalid {what} {_show(value)}: '.' and '..' are reserved")
    return value


def validate_alias(value: object) -> str:
    """Return ``value`` if it is a valid alias: the name alphabet, and never ``v<digits>``."""
    if not isinstance(value, str) or not _NAME_RE.fullmatch(value):
        raise InvalidAliasError(f"invalid alias {_show(value)}: must be {NAME_RULE}")
    if _VERSION_RE.fullmatch(value):
        raise InvalidAliasError(f"invalid alias {_show(value)}: 'v<digits>' is reserved for version numbers")
    return value


def name_list(values: str | Iterable[str] | None) -> list[str]:
    """Aliases or tags as a list: ``None`` is none, and a single string is one name (``"best"`` is
    the alias ``best``, not the four aliases ``b``, ``e``, ``s``, ``t``)."""
    if values is None:
        return []
    if isinstance(values, str):
        return [values]
    return list(values)


def validate_digest(value: object) -> str:
    """Return ``value`` if it is a ``blake3:<64 lowercase hex>`` digest."""
    if not isinstance(value, str) or not _DIGEST_RE.fullmatch(value):
        raise InvalidRefError(f"invalid digest {_show(value)}: must be 'blake3:' followed by 64 lowercase hex digits")
    return value


def parse_version(value: str) -> int | None:
    """``"v3"`` -> 3; anything else -> ``None``."""
    m = _VERSION_RE.fullmatch(value)
    return int(m.group(1)) if m else None


@dataclass(frozen=True)
class Ref:
    """A parsed reference ``[[entity/]project/]name[:vN|:alias|@blake3:<hex>]``.

    Exactly one of ``version``, ``alias`` or ``digest`` is set; a bare name means ``:latest``.
    """

    name: str
    project: str | None = None
    entity: str | None = None
    version: int | None = None
    alias: str | None = None
    digest: str | None = None

    @property
    def selector(self) -> str:
        """The part after the name, as written in a ref (``:v3``, ``:latest``, ``@blake3:...``)."""
        if self.digest is not None:
            return f"@{self.digest}"
        if self.version is not None:
            return f":v{self.version}"
        return f":{self.alias}"

    def __str__(self) -> str:
        prefix = "/".join(p for p in (self.entity, self.project) if p)
        return f"{prefix + '/' if prefix else ''}{self.name}{self.selector}"


def parse_ref(ref: object) -> Ref:
    """Parse a reference string; raises :class:`InvalidRefError` naming the ref when it does not parse."""
    if not isinstance(ref, str) or not ref:
        raise InvalidRefError(
            f"invalid artifact ref {_show(ref)}: expected '[[entity/]project/]name[:vN|:alias|@blake3:<hex>]'"
        )
    body, digest, selector = ref, None, None
    if "@" in body:
        body, digest = body.split("@", 1)
        if ":" in body:
            raise InvalidRefError(
                f"invalid artifact ref {_show(ref)}: use either ':version/alias' or '@digest', not both"
            )
        try:
            validate_digest(digest)
        except InvalidRefError as exc:
            raise InvalidRefError(f"invalid artifact ref {_show(ref)}: {exc}") from None
    elif ":" in body:
        body, selector = body.split(":", 1)
        if not selector:
            raise InvalidRefError(f"invalid artifact ref {_show(ref)}: nothing after ':'")
    parts = body.split("/")
    if len(parts) > 3:
        raise InvalidRefError(f"invalid artifact ref {_show(ref)}: at most 'entity/project/name' before the version")
    try:
        for p in parts:
            validate_name(p, "name in ref")
    except InvalidNameError as exc:
        raise InvalidRefError(f"invalid artifact ref {_show(ref)}: {exc}") from None
    name = parts[-1]
    project = parts[-2] if len(parts) >= 2 else None
    entity = parts[-3] if len(parts) == 3 else None
    if digest is not None:
        return Ref(name, project, entity, digest=digest)
    if selector is None:
        return Ref(name, project, entity, alias=LATEST)
    version = parse_version(selector)
    if version is not None:
        return Ref(name, project, entity, version=version)
    try:
        validate_alias(selector)
    except InvalidAliasError as exc:
        raise InvalidRefError(f"invalid artifact ref {_show(ref)}: {exc}") from None
    return Ref(name, project, entity, alias=selector)


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # C0, DEL and C1 (e.g. U+009B, a terminal CSI)


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


_PLAIN_PATH = re.compile(r"[A-Za-z0-9_.+=,@~ -]+(?:/[A-Za-z0-9_.+=,@~ -]+)*")


def normalize_entry_path(path: object) -> str:
    """Return the canonical form of an entry path, or raise :class:`InvalidPathError`.

    Entry paths are relative POSIX paths in Unicode NFC. Refused: empty, absolute, ``..``
    segments, empty segments (``a//b``), NUL or other control characters, backslashes, over
    1024 bytes in UTF-8. ``./`` segments are dropped.
    """
    if type(path) is str and len(path) <= MAX_PATH_BYTES and _PLAIN_PATH.fullmatch(path):
        # Fast path (the common case, and hot: it runs for every entry added, loaded and
        # downloaded): plain ASCII segments are NFC already and cannot be a drive path.
        framed = f"/{path}/"
        if "/./" not in framed and "/../" not in framed:
            return path
    if not isinstance(path, str):
        raise InvalidPathError(f"invalid entry path {_show(path)}: must be a string")
    rule = None
    if not path:
        rule = "must not be empty"
    elif _CONTROL.search(path):
        rule = "must not contain NUL or control characters"
    elif not _encodable(path):
        rule = "must be valid Unicode (it has lone surrogates, e.g. from a file name that is not UTF-8)"
    elif "\\" in path:
        rule = "must use '/' separators, not backslashes"
    elif path.startswith("/"):
        rule = "must be relative, not absolute"
    elif re.match(r"[A-Za-z]:", path):
        rule = "must be relative, not a drive path"
    if rule is None:
        segments = [s for s in path.split("/") if s != "."]
        if path.endswith("/"):
            rule = "must name a file, not end with '/'"
        elif any(s == "" for s in segments):
            rule = "must not contain empty segments ('//')"
        elif any(s == ".." for s in segments):
            rule = "must not contain '..' segments"
        elif not segments:
            rule = "must name a file"
        else:
            normal = unicodedata.normalize("NFC", "/".join(segments))
            if re.match(r"[A-Za-z]:", normal):
                rule = "must be relative, not a drive path"
            elif len(normal.encode("utf-8")) > MAX_PATH_BYTES:
                rule = f"must be at most {MAX_PATH_BYTES} bytes in UTF-8"
            else:
                return normal
    raise InvalidPathError(f"invalid entry path {_show(path)}: {rule}")


_PLAIN_TEXT = re.compile(r"[A-Za-z0-9_.+=,@~ /\n-]*")
_DOT_SEGMENT = re.compile(r"(?:^|/)\.{1,2}(?:/|$)", re.MULTILINE)


def normalize_entry_paths(paths: list[str]) -> list[str]:
    """:func:`normalize_entry_path` of many paths (the same list back when all are canonical).

    Checks the whole batch at once on the joined text (one line per path): plain characters
    only (one flat character class), then substring tests for an empty or absolute path, a
    trailing slash and an empty segment, and, only when some segment starts with a dot, a
    search for ``.`` and ``..`` segments. Any batch that is not plain takes the per-path route.
    """
    text = "\n" + "\n".join(paths) + "\n"
    if (
        text.count("\n") == len(paths) + 1  # no path holds a newline of its own
        and _PLAIN_TEXT.fullmatch(text)
        and "\n\n" not in text  # an empty path (or none at all)
        and "\n/" not in text  # absolute
        and "/\n" not in text  # a trailing slash
        and "//" not in text  # an empty segment
        and not (("/." in text or "\n." in text) and _DOT_SEGMENT.search(text))
        and max(map(len, paths), default=0) <= MAX_PATH_BYTES
    ):
        return paths
    return [normalize_entry_path(p) for p in paths]


def join_entry_path(prefix: str | None, rest: str) -> str:
    """Join an optional prefix and a relative path into a normalised entry path."""
    return normalize_entry_path(posixpath.join(prefix, rest) if prefix else rest)
