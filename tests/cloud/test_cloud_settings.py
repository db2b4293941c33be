"""``ARTIFACT_PLUGINS_S3_*`` / ``ARTIFACT_PLUGINS_GCS_*`` numeric settings: a bad value is an
InvalidConfigError naming the variable, the value and the rule (no server needed)."""

from __future__ import annotations

from typing import Any

import pytest

from artifact_plugins.core.errors import InvalidConfigError
from artifact_plugins.core.storage.gcs import GCSOptions
from artifact_plugins.core.storage.s3 import S3Options

SECONDS = "expected a positive number of seconds"
COUNT = "expected a whole number >= 1"
SIZE = "expected bytes such as 1048576"

#: (options class, variable, the rule its errors state)
NUMERIC: list[tuple[Any, str, str]] = [
    (S3Options, "S3_CONNECT_TIMEOUT", SECONDS),
    (S3Options, "S3_READ_TIMEOUT", SECONDS),
    (S3Options, "S3_MAX_ATTEMPTS", COUNT),
    (S3Options, "S3_MAX_CONCURRENCY", COUNT),
    (S3Options, "TRANSFER_WORKERS", COUNT),
    (S3Options, "S3_MULTIPART_THRESHOLD", SIZE),
    (S3Options, "S3_MULTIPART_CHUNKSIZE", SIZE),
    (GCSOptions, "GCS_CONNECT_TIMEOUT", SECONDS),
    (GCSOptions, "GCS_READ_TIMEOUT", SECONDS),
    (GCSOptions, "GCS_RETRY_TIMEOUT", SECONDS),
    (GCSOptions, "GCS_MAX_CONCURRENCY", COUNT),
    (GCSOptions, "TRANSFER_WORKERS", COUNT),
    (GCSOptions, "GCS_CHUNK_SIZE", SIZE),
    (GCSOptions, "GCS_RESUMABLE_THRESHOLD", SIZE),
]


@pytest.mark.parametrize(("options", "name", "rule"), NUMERIC, ids=[f"{o.__name__}-{n}" for o, n, _ in NUMERIC])
def test_unparsable_numbers_name_the_variable_and_the_rule(monkeypatch, options, name, rule):
    monkeypatch.setenv(f"ARTIFACT_PLUGINS_{name}", "abc")
    with pytest.raises(InvalidConfigError) as info:
        options.from_env()
    message = str(info.value)
    assert f"ARTIFACT_PLUGINS_{name}='abc'" in message and rule in message


@pytest.mark.parametrize("raw", ["-1", "0", "nan", "inf"])
@pytest.mark.parametrize("name", ["S3_CONNECT_TIMEOUT", "S3_READ_TIMEOUT"])
def test_s3_timeouts_must_be_positive_and_finite(monkeypatch, name, raw):
    monkeypatch.setenv(f"ARTIFACT_PLUGINS_{name}", raw)
    with pytest.raises(InvalidConfigError, match=f"ARTIFACT_PLUGINS_{name}='{raw}': invalid duration: {SECONDS}"):
        S3Options.from_env()


@pytest.mark.parametrize("raw", ["-1", "0", "nan", "inf"])
@pytest.mark.parametrize("name", ["GCS_CONNECT_TIMEOUT", "GCS_READ_TIMEOUT", "GCS_RETRY_TIMEOUT"])
def test_gcs_timeouts_must_be_positive_and_finite(monkeypatch, name, raw):
    monkeypatch.setenv(f"ARTIFACT_PLUGINS_{name}", raw)
    with pytest.raises(InvalidConfigError, match=f"ARTIFACT_PLUGINS_{name}='{raw}': invalid duration: {SECONDS}"):
        GCSOptions.from_env()


@pytest.mark.parametrize("raw", ["0", "1.5", "2k"])
def test_s3_max_attempts_is_a_whole_number_not_a_size(monkeypatch, raw):
    monkeypatch.setenv("ARTIFACT_PLUGINS_S3_MAX_ATTEMPTS", raw)
    with pytest.raises(InvalidConfigError) as info:
        S3Options.from_env()
    assert f"ARTIFACT_PLUGINS_S3_MAX_ATTEMPTS='{raw}'" in str(info.value) and COUNT in str(info.value)
    assert "size" not in str(info.value)


def test_good_values_are_read(monkeypatch):
    for name, raw in {
        "S3_CONNECT_TIMEOUT": "2.5",
        "S3_READ_TIMEOUT": "30",
        "S3_MAX_ATTEMPTS": "3",
        "S3_MULTIPART_CHUNKSIZE": "8MiB",
        "GCS_READ_TIMEOUT": "0.5",
        "GCS_RETRY_TIMEOUT": "1e2",
        "GCS_CHUNK_SIZE": "512KiB",
    }.items():
        monkeypatch.setenv(f"ARTIFACT_PLUGINS_{name}", raw)
    s3 = S3Options.from_env()
    assert (s3.connect_timeout, s3.read_timeout, s3.max_attempts, s3.multipart_chunksize) == (2.5, 30.0, 3, 8 * 2**20)
    gcs = GCSOptions.from_env()
    assert (gcs.read_timeout, gcs.retry_timeout, gcs.connect_timeout, gcs.chunk_size) == (0.5, 100.0, 10.0, 2**19)
