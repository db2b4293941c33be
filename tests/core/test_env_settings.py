"""Numeric ``ARTIFACT_PLUGINS_*`` settings: one parser per kind (size, count, seconds), and every
refusal is an InvalidConfigError naming the variable, the value and the rule."""

from __future__ import annotations

import pytest

from artifact_plugins.core.config import parse_size
from artifact_plugins.core.env import env_int, env_seconds, env_size
from artifact_plugins.core.errors import InvalidConfigError
from artifact_plugins.core.references.http import HttpReferenceHandler

SECONDS_RULE = "positive number of seconds"


def refused(monkeypatch: pytest.MonkeyPatch, name: str, raw: str, parse: object) -> str:
    """The message ``parse()`` refuses ``$ARTIFACT_PLUGINS_<name>=raw`` with (naming the variable and value)."""
    monkeypatch.setenv(f"ARTIFACT_PLUGINS_{name}", raw)
    assert callable(parse)
    with pytest.raises(InvalidConfigError) as info:
        parse()
    message = str(info.value)
    assert f"ARTIFACT_PLUGINS_{name}={raw!r}" in message
    return message


@pytest.mark.parametrize("raw", ["abc", "-1", "0", "-0.5", "nan", "NaN", "inf", "-inf", "1e999", "10s"])
def test_seconds_refuse_what_is_not_a_positive_finite_number(monkeypatch, raw):
    message = refused(monkeypatch, "X_TIMEOUT", raw, lambda: env_seconds("X_TIMEOUT", 60.0))
    assert SECONDS_RULE in message and "such as 60" in message


@pytest.mark.parametrize(("raw", "value"), [("2.5", 2.5), (" 10 ", 10.0), ("1e3", 1000.0), ("", 60.0)])
def test_seconds_accept_positive_numbers(monkeypatch, raw, value):
    monkeypatch.setenv("ARTIFACT_PLUGINS_X_TIMEOUT", raw)
    assert env_seconds("X_TIMEOUT", 60.0) == value


def test_seconds_default_when_unset(monkeypatch):
    monkeypatch.delenv("ARTIFACT_PLUGINS_X_TIMEOUT", raising=False)
    assert env_seconds("X_TIMEOUT", 7.5) == 7.5


@pytest.mark.parametrize("raw", ["abc", "1.5", "1k", "1MiB", "0", "-3", "+2", "1e3", "٣"])
def test_counts_are_whole_numbers_not_sizes(monkeypatch, raw):
    message = refused(monkeypatch, "X_ATTEMPTS", raw, lambda: env_int("X_ATTEMPTS", 8, minimum=1))
    assert "whole number >= 1" in message
    assert "bytes" not in message and "size" not in message


@pytest.mark.parametrize(("raw", "value"), [("3", 3), (" 12 ", 12), ("", 8)])
def test_counts_accept_whole_numbers(monkeypatch, raw, value):
    monkeypatch.setenv("ARTIFACT_PLUGINS_X_ATTEMPTS", raw)
    assert env_int("X_ATTEMPTS", 8, minimum=1) == value


@pytest.mark.parametrize(
    ("raw", "rule"),
    [
        ("abc", "expected bytes such as 1048576"),
        ("-5MB", "expected bytes such as 1048576"),
        ("1MiB", "at least 5242880 bytes"),
    ],
)
def test_sizes_name_the_variable_and_the_rule(monkeypatch, raw, rule):
    message = refused(monkeypatch, "X_CHUNK", raw, lambda: env_size("X_CHUNK", 2**23, minimum=5 * 2**20))
    assert rule in message


def test_sizes_accept_units(monkeypatch):
    monkeypatch.setenv("ARTIFACT_PLUGINS_X_CHUNK", "6MiB")
    assert env_size("X_CHUNK", 2**23, minimum=5 * 2**20) == 6 * 2**20


def test_size_parsing_is_exact_for_huge_values():
    assert parse_size("9" * 40 + "TiB") == int("9" * 40) * 2**40
    assert parse_size("1.5k") == 1500


@pytest.mark.parametrize(
    ("name", "raw", "rule"),
    [
        ("HTTP_MAX_ATTEMPTS", "abc", "whole number >= 1"),
        ("HTTP_MAX_ATTEMPTS", "0", "whole number >= 1"),
        ("HTTP_TIMEOUT", "abc", "positive number of seconds"),
        ("HTTP_TIMEOUT", "0", "positive number of seconds"),
    ],
)
def test_http_reference_settings_name_the_variable(monkeypatch, name, raw, rule):
    assert rule in refused(monkeypatch, name, raw, HttpReferenceHandler)
