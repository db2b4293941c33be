"""Configuration: explicit arguments > environment > config file > embedded defaults.

The embedded default needs no set-up: a local content-addressed store and a SQLite registry
under the user data directory.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any

from platformdirs import user_cache_dir, user_config_dir, user_data_dir
from pydantic import BaseModel, ConfigDict, Field, SkipValidation, ValidationError

from .errors import InvalidConfigError
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


def parse_size(value: str | int) -> int:
    """``"10GiB"`` -> 10737418240; plain integers are bytes."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise InvalidConfigError(f"invalid size {value!r}: expected bytes such as 1048576, '500MB' or '10GiB'")
    if isinstance(value, int):
        if value < 0:
            raise InvalidConfigError(f"invalid size {value!r}: must not be negative")
        return value
    m = _SIZE_RE.fullmatch(value)
    if not m or (m.group(2) or "").lower() not in _UNITS:
        raise InvalidConfigError(f"invalid size {value!r}: expected bytes such as 1048576, '500MB' or '10GiB'")
    return int(float(m.group(1)) * _UNITS[(m.group(2) or "").lower()])


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
        for field in _FIELDS:
            env = os.environ.get(ENV_PREFIX + field.upper())
            if env:
                values[field] = env
        values.update({k: v for k, v in overrides.items() if v is not None})
        values["cache_max_bytes"] = parse_size(values.get("cache_max_bytes", 20 * 2**30))
        validate_name(values.get("entity", "default"), "entity")
        validate_name(values.get("project", "default"), "project")
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
