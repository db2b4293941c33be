"""Credentials never reach a message, a manifest or metadata: the redaction rules, and the places
that rely on them (registry errors, references, metadata), with the URL shapes that slipped past them."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

import artifact_plugins as ap
from artifact_plugins.cli import app
from artifact_plugins.core.errors import InvalidConfigError, InvalidMetadataError, RegistryError
from artifact_plugins.core.metadata import validate_description, validate_metadata
from artifact_plugins.core.redact import embedded_secret, has_credentials, redact_text, redact_uri
from artifact_plugins.core.registry.registry import Registry

SECRET = "SUPERSECRET"

#: Registry URLs whose password SQLAlchemy reads across '/', '?', '#' (RFC 3986 would not).
AMBIGUOUS_PASSWORDS = [
    f"postgresql+psycopg://u:ab/{SECRET}@127.0.0.1:1/db",
    f"postgresql+psycopg://u:ab?{SECRET}@127.0.0.1:1/db",
    f"postgresql+psycopg://u:ab#{SECRET}@127.0.0.1:1/db",
]

SECRET_PARAMETERS = [
    f"postgresql+psycopg://u@127.0.0.1:1/db?sslpassword={SECRET}",
    f"https://storage.googleapis.com/b/o.csv?X-Goog-Algorithm=GOOG4&X-Goog-Credential={SECRET}&X-Goog-Signature=ab",
    f"https://storage.googleapis.com/b/o.csv?X-Goog-Signature={SECRET}",
    f"https://api.example.com/export?client_secret={SECRET}",
    f"https://api.example.com/export?refresh_token={SECRET}",
    f"https://api.example.com/export?session_token={SECRET}",
    f"https://gitlab.example.com/f?private_token={SECRET}",
    f"https://example.com/f?auth={SECRET}",
    f"https://example.com/callback#access_token={SECRET}&state=1",
    f"http://127.0.0.1:1/upload/storage/v1/b/bkt/o?uploadType=resumable&upload_id={SECRET}",
    f"https://acct.blob.core.windows.net/c/f?sv=2020&sig={SECRET}",
]

HARMLESS = [
    "https://medium.com/@alice/post",
    "https://host:8080/users/@alice",
    "https://example.com/data.csv?version=3&sort_key=a&max_tokens=5",
    "s3://bucket/prefix/key",
    "sqlite:////tmp/registry.db",
]


@pytest.mark.parametrize("uri", AMBIGUOUS_PASSWORDS + SECRET_PARAMETERS)
def test_secrets_in_urls_are_redacted_and_detected(uri: str) -> None:
    assert SECRET not in redact_uri(uri)
    assert has_credentials(uri)
    assert SECRET not in redact_text(f"could not connect to {uri}: refused")


def test_a_password_holding_at_signs_is_masked_up_to_the_last_one() -> None:
    for uri in (f"postgresql://u:pa@{SECRET}@127.0.0.1/db", f"postgresql://u:pa@x:{SECRET}@127.0.0.1:5432/db"):
        assert redact_uri(uri).startswith("postgresql://***@127.0.0.1")


@pytest.mark.parametrize("uri", HARMLESS)
def test_urls_without_credentials_are_left_alone(uri: str) -> None:
    assert not has_credentials(uri)
    if "@" not in uri:
        assert redact_uri(uri) == uri


@pytest.mark.parametrize("uri", SECRET_PARAMETERS)
def test_references_carrying_secrets_are_refused(uri: str) -> None:
    art = ap.Artifact("refs", "dataset")
    with pytest.raises(ValueError) as info:
        art.add_reference(uri, name="f", checksum=False)
    assert SECRET not in str(info.value)
    assert not art.entries


@pytest.mark.parametrize("url", AMBIGUOUS_PASSWORDS)
def test_registry_errors_never_show_a_password_holding_separators(url: str) -> None:
    with pytest.raises(RegistryError) as info:
        Registry(url)
    assert SECRET not in str(info.value)
    assert info.value.__cause__ is None


def test_a_registry_password_holding_an_unencoded_at_is_refused_as_config(tmp_path: Path) -> None:
    for url in (f"postgresql+psycopg://u:pa@{SECRET}@127.0.0.1:1/db", f"postgresql+psycopg://u:pa@x:{SECRET}@h:1/db"):
        with pytest.raises(InvalidConfigError) as info:
            Registry(url)
        assert SECRET not in str(info.value)
        assert "%40" in str(info.value)


def test_the_cli_never_prints_such_a_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARTIFACT_PLUGINS_REGISTRY", AMBIGUOUS_PASSWORDS[0])
    for args in (["ls", "--json"], ["ls"], ["versions", "x"]):
        result = CliRunner().invoke(app, args)
        assert result.exit_code != 0
        assert SECRET not in result.output


@pytest.mark.parametrize(
    "metadata",
    [
        {"password": [SECRET]},
        {"api_token": {"value": SECRET}},
        {"notes": f"-----BEGIN RSA PRIVATE KEY-----\n{SECRET}\n-----END RSA PRIVATE KEY-----"},
        {"service_account": '{"type": "service_account", "private_key": "-----BEGIN PRIVATE KEY-----\\nMII"}'},
        {"env": f"AWS_SECRET_ACCESS_KEY={SECRET}"},
        {"odbc": f"Driver=x;Server=h;PWD={SECRET};"},
        {"header": f"Authorization: Bearer {SECRET}0123456789"},
        {"url": AMBIGUOUS_PASSWORDS[0]},
        {"url": SECRET_PARAMETERS[1]},
    ],
)
def test_metadata_carrying_credentials_is_refused_without_echoing_them(metadata: dict[str, object]) -> None:
    with pytest.raises(InvalidMetadataError) as info:
        validate_metadata(metadata)
    assert SECRET not in str(info.value)


@pytest.mark.parametrize(
    "metadata",
    [
        {"max_token": 512, "use_token": True, "num_tokens": 3},
        {"tokenizer": "bpe", "token_type": "word", "keyboard": "us"},
        {"notes": "sorted by key=date, a basic understanding of bearer bonds"},
        {"link": "https://medium.com/@alice/post"},
    ],
)
def test_ordinary_metadata_is_kept(metadata: dict[str, object]) -> None:
    assert validate_metadata(metadata) == metadata


def test_descriptions_are_held_to_the_same_rules() -> None:
    with pytest.raises(InvalidMetadataError):
        validate_description(f"load from {AMBIGUOUS_PASSWORDS[0]}")
    assert validate_description("password rotation is monthly") == "password rotation is monthly"


def test_scanning_a_megabyte_of_text_stays_linear() -> None:
    # Patterns that restart at every character of a long word are quadratic; these would take minutes.
    for text in ("x" * 2**20, "a=" * 2**19, "https://h/?" + "a" * 2**20):
        start = time.perf_counter()
        assert embedded_secret(text) is None
        assert time.perf_counter() - start < 5
