"""Configuration: explicit arguments > environment > config file > embedded defaults.

The embedded default needs no set-up: a local content-addressed store and a SQLite registry
under the user data directory.
"""

from __future__ import annotations

import os
import re
import tomllib
from fractions import Fraction
from pathlib import Path
from typing import Any

from platformdirs import user_cache_dir, user_config_dir, user_data_dir
from pydantic import BaseModel, ConfigDict, Field, SkipValidation, ValidationError

from .errors import InvalidConfigError, InvalidNameError
from .naming import validate_name
from .redact import redact_uri
from .store_access import StoreAccess

ENV_PREFIX = "ARTIFACT_PLUGINS_"
APP = "artifact_plugins"
_FIELDS = ("store", "registry", "entity", "project", "cache_dir", "cache_max_bytes")
_SIZE_RE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)?\s*", re.IGNORECASE)
_UNITS = {
    "": 1,
    "b": 1,
    "k": 10**3,
    "kb": 10**3,
    "kib": 2**10,
    "m": 10**6,
    "mb": 10**6,
    "mib": 2**20,
    "g": 10**9,
    "gb": 10**9,
    "gib": 2**30,
    "t": 10**12,
    "tb": 10**12,
    "tib": 2**40,
}
_SIZE_RULE = "expected bytes such as 1048576, '500MB' or '10GiB'"


def setting_error(what: str, value: object, rule: str, source: str | None = None) -> InvalidConfigError:
    """An :class:`InvalidConfigError` naming a setting's value, its source (when known) and the rule it breaks.

    With ``source`` (an environment variable, a config file key, an argument), the message reads
    ``<source>=<value>: <what>: <rule>``, else ``<what> <value>: <rule>``. ``value`` is shown as
    given: redact it first when it may hold a secret.
    """
    if source:
        return InvalidConfigError(f"{source}={value!r}: {what}: {rule}")
    return InvalidConfigError(f"{what} {value!r}: {rule}")


def parse_size(value: str | int, source: str | None = None, minimum: int = 0) -> int:
    """``"10GiB"`` -> 10737418240; plain integers are bytes.

    The size must be at least ``minimum`` bytes; ``source`` names where ``value`` came from in errors.
    """
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise setting_error("invalid size", value, _SIZE_RULE, source)
    if isinstance(value, int):
        size = value
    else:
        m = _SIZE_RE.fullmatch(value)
        unit = (m.group(2) or "").lower() if m else ""
        if not m or unit not in _UNITS:
            raise setting_error("invalid size", value, _SIZE_RULE, source)
        size = int(Fraction(m.group(1)) * _UNITS[unit])  # exact, however many digits
    if size < minimum:
        rule = f"must be at least {minimum} bytes" if minimum else "must not be negative"
        raise setting_error("invalid size", value, rule, source)
    return size


def config_file_path() -> Path:
    """Where the optional config file lives (``ARTIFACT_PLUGINS_CONFIG`` overrides it)."""
    return Path(os.environ.get(ENV_PREFIX + "CONFIG") or Path(user_config_dir(APP)) / "config.toml")


class Settings(BaseModel):
    """Resolved configuration: where blobs go, where metadata goes, default entity/project, cache.

    ``store_access`` carries credentials for a bucket store from an orchestrator's own objects
    (an Airflow connection); it is never dumped, described or printed.
    """

    model_config = ConfigDict(frozen=True)

    store: str
    registry: str
    entity: str = "default"
    project: str = "default"
    cache_dir: str
    cache_max_bytes: int = 20 * 2**30
    store_access: SkipValidation[StoreAccess | None] = Field(default=None, exclude=True, repr=False)

    @classmethod
    def resolve(cls, **overrides: Any) -> Settings:
        """Merge explicit ``overrides`` (``None`` means unset) over environment, config file and defaults."""
        data_dir = Path(user_data_dir(APP))
        values: dict[str, Any] = {
            "store": str(data_dir / "store"),
            "registry": f"sqlite:///{data_dir / 'registry.db'}",
            "cache_dir": user_cache_dir(APP),
        }
        sources: dict[str, str] = {}  # field -> where its value came from, for error messages
        path = config_file_path()
        if path.is_file():
            try:
                loaded = tomllib.loads(path.read_text("utf-8"))
            except (tomllib.TOMLDecodeError, OSError) as exc:
                raise InvalidConfigError(f"config file {path} is not valid TOML: {exc}") from None
            unknown = set(loaded) - set(_FIELDS)
            if unknown:
                raise InvalidConfigError(f"config file {path} has unknown keys {sorted(unknown)}; allowed: {_FIELDS}")
            values.update(loaded)
            sources.update({key: f"config file {path}: {key}" for key in loaded})
        for field in _FIELDS:
            env = os.environ.get(ENV_PREFIX + field.upper())
            if env:
                values[field] = env
                sources[field] = ENV_PREFIX + field.upper()
        given = {k: v for k, v in overrides.items() if v is not None}
        values.update(given)
        sources.update({key: f"argument {key}" for key in given})
        values["cache_max_bytes"] = parse_size(
            values.get("cache_max_bytes", 20 * 2**30), source=sources.get("cache_max_bytes")
        )
        for field in ("entity", "project"):
            try:
                validate_name(values.get(field, "default"), field)
            except InvalidNameError as exc:
                if field not in sources:
                    raise
                raise InvalidNameError(f"{sources[field]}: {exc}") from None
        if isinstance(values["store"], str):  # anything else is refused with the other type errors below
            from .storage import parse_store_uri  # the storage package is heavier than this module

            parse_store_uri(values["store"], source=sources.get("store"))
        access = values.get("store_access")
        if access is not None:
            if not isinstance(access, StoreAccess):
                raise InvalidConfigError(f"store_access must be a StoreAccess, not {type(access).__name__}")
            access.check_store(str(values["store"]))
        try:
            return cls(**values)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc']))}: {e['msg']} (got {e['input']!r})" for e in exc.errors()
            )
            raise InvalidConfigError(f"invalid configuration: {problems}") from None

    def describe(self) -> dict[str, Any]:
        """The settings with credentials redacted, safe to print or log."""
        return {**self.model_dump(), "store": redact_uri(self.store), "registry": redact_uri(self.registry)}

    def __repr_args__(self) -> Any:
        # repr() and str() go into logs, tracebacks and events: never with a password in them.
        for key, value in super().__repr_args__():
            yield key, (redact_uri(value) if key in ("store", "registry") and isinstance(value, str) else value)
