"""Reading ``ARTIFACT_PLUGINS_<NAME>`` settings from the environment: one reader per kind of value,
each refusing a bad value with an :class:`InvalidConfigError` that names the variable and its rule."""

from __future__ import annotations

import os

from .config import parse_size, setting_error

PREFIX = "ARTIFACT_PLUGINS_"


def env_str(name: str, default: str | None = None) -> str | None:
    """``$ARTIFACT_PLUGINS_<name>`` if set and non-empty, else ``default``."""
    value = os.environ.get(f"{PREFIX}{name}")
    return value if value else default


def env_flag(name: str, default: bool = True) -> bool:
    """``$ARTIFACT_PLUGINS_<name>`` as a switch: ``0``, ``false``, ``no`` or ``off`` turn it off."""
    value = env_str(name)
    if value is None:
        return default
    return value.lower() not in ("0", "false", "no", "off")


def env_size(name: str, default: int, minimum: int = 0) -> int:
    """``$ARTIFACT_PLUGINS_<name>`` as a number of bytes (units such as ``64MiB`` accepted), at least ``minimum``."""
    raw = env_str(name)
    if raw is None:
        return default
    return parse_size(raw, source=f"{PREFIX}{name}", minimum=minimum)


def env_int(name: str, default: int, minimum: int = 0) -> int:
    """``$ARTIFACT_PLUGINS_<name>`` as a count: a whole number, at least ``minimum``."""
    raw = env_str(name)
    if raw is None:
        return default
    digits = raw.strip()
    if not (digits.isascii() and digits.isdigit()) or int(digits) < minimum:
        rule = f"expected a whole number >= {minimum}, such as {default}"
        raise setting_error("invalid number", raw, rule, f"{PREFIX}{name}")
    return int(digits)


def env_seconds(name: str, default: float) -> float:
    """``$ARTIFACT_PLUGINS_<name>`` as a duration: a positive, finite number of seconds."""
    raw = env_str(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not 0 < value < float("inf"):  # NaN fails both comparisons
        rule = f"expected a positive number of seconds, such as {default:g}"
        raise setting_error("invalid duration", raw, rule, f"{PREFIX}{name}")
    return value
