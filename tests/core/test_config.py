"""Configuration precedence (explicit > env > config file > defaults), bad config, and credentials."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import artifact_plugins as ap
from artifact_plugins.core.config import Settings, parse_size
from artifact_plugins.core.errors import InvalidConfigError, InvalidInputError, RegistryError
from artifact_plugins.core.registry import Registry
from artifact_plugins.core.storage import LocalStore, open_store

SECRET = "hunter2-s3cr3t"


@pytest.fixture
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Write a TOML config file, point ARTIFACT_PLUGINS_CONFIG at it, and drop the env settings."""
    path = tmp_path / "config.toml"
    monkeypatch.setenv("ARTIFACT_PLUGINS_CONFIG", str(path))

    def write(body: str) -> Path:
        path.write_text(body, encoding="utf-8")
        return path

    return write


@pytest.fixture
def no_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No ARTIFACT_PLUGINS_* settings in the environment; platform dirs under tmp_path."""
    for name in ("STORE", "REGISTRY", "CACHE_DIR", "ENTITY", "PROJECT", "CACHE_MAX_BYTES"):
        monkeypatch.delenv(f"ARTIFACT_PLUGINS_{name}", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    return tmp_path


def test_embedded_defaults(no_env):
    s = Settings.resolve()
    data = no_env / "xdg-data" / "artifact_plugins"
    assert Path(s.store) == data / "store"
    assert s.registry == f"sqlite:///{data / 'registry.db'}"
    assert Path(s.cache_dir) == no_env / "xdg-cache" / "artifact_plugins"
    assert (s.entity, s.project, s.cache_max_bytes) == ("default", "default", 20 * 2**30)


def test_default_config_file_location_is_used(no_env, monkeypatch):
    monkeypatch.delenv("ARTIFACT_PLUGINS_CONFIG", raising=False)
    cfg = no_env / "xdg-config" / "artifact_plugins" / "config.toml"
    cfg.parent.mkdir(parents=True)
    cfg.write_text('project = "from-default-file"\n')
    assert Settings.resolve().project == "from-default-file"


def test_zero_setup_default_works_end_to_end(no_env, tmp_path):
    src = tmp_path / "a.txt"
    src.write_text("zero set-up")
    with ap.init() as run:
        art = ap.Artifact("ds", "dataset")
        art.add_file(src)
        run.log_artifact(art)
    assert (no_env / "xdg-data" / "artifact_plugins" / "registry.db").exists()
    assert (no_env / "xdg-data" / "artifact_plugins" / "store" / "blobs").is_dir()
    assert ap.Api().artifact("ds:latest").version == "v0"


def test_precedence_explicit_over_env_over_file_over_defaults(no_env, config_file, monkeypatch):
    config_file(
        'project = "file-project"\nentity = "file-entity"\ncache_max_bytes = "1GiB"\n'
        f'store = "{no_env / "file-store"}"\n'
    )
    s = Settings.resolve()
    assert (s.project, s.entity, s.cache_max_bytes) == ("file-project", "file-entity", 2**30)
    assert Path(s.store) == no_env / "file-store"
    assert s.registry.endswith("registry.db")  # not in the file: default

    monkeypatch.setenv("ARTIFACT_PLUGINS_PROJECT", "env-project")
    monkeypatch.setenv("ARTIFACT_PLUGINS_CACHE_MAX_BYTES", "500MB")
    s = Settings.resolve()
    assert (s.project, s.entity, s.cache_max_bytes) == ("env-project", "file-entity", 500 * 10**6)

    s = Settings.resolve(project="explicit-project", cache_max_bytes=1234)
    assert (s.project, s.entity, s.cache_max_bytes) == ("explicit-project", "file-entity", 1234)
    assert Settings.resolve(project=None).project == "env-project"  # None means "not given"


def test_init_and_api_take_explicit_settings(no_env, tmp_path, monkeypatch):
    monkeypatch.setenv("ARTIFACT_PLUGINS_STORE", str(tmp_path / "env-store"))
    monkeypatch.setenv("ARTIFACT_PLUGINS_REGISTRY", f"sqlite:///{tmp_path / 'env.db'}")
    src = tmp_path / "x.txt"
    src.write_text("explicit")
    explicit = {"store": str(tmp_path / "explicit-store"), "registry": f"sqlite:///{tmp_path / 'explicit.db'}"}
    with ap.init(project="p", **explicit) as run:
        art = ap.Artifact("ds", "dataset")
        art.add_file(src)
        v = run.log_artifact(art)
    assert run.settings.store == explicit["store"]
    assert (tmp_path / "explicit.db").exists() and (tmp_path / "explicit-store" / "blobs").is_dir()
    assert not (tmp_path / "env-store").exists()
    assert ap.Api(project="p", **explicit).artifact("ds:latest") == v
    assert ap.Api(settings=run.settings).artifact("p/ds:v0") == v
    assert ap.Api(project="p").artifact_versions(None, "ds") == []  # the env registry is another one


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ("this is = not [toml", "config.toml"),
        ('colour = "blue"\n', "colour"),
        ('cache_max_bytes = "lots"\n', "lots"),
        ('cache_max_bytes = "-5GB"\n', "-5GB"),
        ("cache_max_bytes = -1\n", "-1"),
        ("store = 5\n", "store"),
        ("cache_max_bytes = 1.5\n", "1.5"),
        ("cache_max_bytes = true\n", "True"),
    ],
)
def test_bad_config_file(body, named, no_env, config_file):
    config_file(body)
    with pytest.raises(InvalidConfigError) as info:
        Settings.resolve()
    assert named in str(info.value)


@pytest.mark.parametrize(
    ("body", "named"), [('project = "has space"\n', "has space"), ('entity = ["a", "b"]\n', "entity")]
)
def test_bad_names_in_config_are_refused(body, named, config_file):
    config_file(body)
    with pytest.raises(InvalidInputError, match=named):
        Settings.resolve()


def test_bad_env_size(monkeypatch):
    monkeypatch.setenv("ARTIFACT_PLUGINS_CACHE_MAX_BYTES", "ten gigs")
    with pytest.raises(InvalidConfigError, match="ten gigs"):
        Settings.resolve()


@pytest.mark.parametrize(
    ("text", "size"),
    [("1048576", 2**20), ("500MB", 5 * 10**8), ("10GiB", 10 * 2**30), ("1.5k", 1500), (0, 0), ("2 TiB", 2 * 2**40)],
)
def test_parse_size(text, size):
    assert parse_size(text) == size


def test_bad_registry_url(tmp_path):
    with pytest.raises(InvalidConfigError, match="not a url"):
        Registry("not a url")
    with pytest.raises(InvalidConfigError, match="nosuchdialect"):
        Registry("nosuchdialect://host/db")


@pytest.mark.parametrize(
    "uri",
    [
        f"s3://AKIAEXAMPLE:{SECRET}@bucket/prefix",
        f"gs://user:{SECRET}@bucket/prefix",
        f"file://admin:{SECRET}@localhost/tmp/store",
        f"s3://bucket/prefix?X-Amz-Signature={SECRET}",
        f"s3://bucket/prefix?token={SECRET}",
    ],
)
def test_store_uri_with_credentials_is_refused_without_echoing_the_secret(uri, tmp_path):
    with pytest.raises(InvalidConfigError) as info:
        open_store(uri)
    assert SECRET not in str(info.value)
    assert "credentials" in str(info.value)
    # the same through the public API: refused when the settings are resolved, the secret not echoed
    with pytest.raises(InvalidConfigError) as info2:
        ap.init(store=uri)
    assert SECRET not in str(info2.value)
    assert "argument store=" in str(info2.value)
    assert not (tmp_path / "store").exists()


def test_describe_redacts_registry_credentials():
    s = Settings.resolve(registry=f"postgresql+psycopg://app:{SECRET}@db.example:5432/artifacts")
    described = s.describe()
    assert SECRET not in repr(described)
    assert "db.example" in described["registry"]


def test_unreachable_registry_error_does_not_leak_the_password():
    with pytest.raises(RegistryError) as info:
        Registry(f"postgresql+psycopg://app:{SECRET}@127.0.0.1:1/artifacts")
    assert SECRET not in str(info.value)
    assert "127.0.0.1" in str(info.value)


def test_reference_with_credentials_is_refused(tmp_path):
    art = ap.Artifact("ds", "dataset")
    with pytest.raises(InvalidInputError) as info:
        art.add_reference(f"file://user:{SECRET}@localhost{tmp_path}/x")
    assert SECRET not in str(info.value)
    assert art.entries == {}


def test_local_store_forms(tmp_path):
    for uri in (str(tmp_path / "a"), (tmp_path / "b").as_uri()):
        store = open_store(uri)
        assert isinstance(store, LocalStore) and store.is_local
    with pytest.raises(InvalidConfigError, match="ftp"):
        open_store("ftp://host/path")


# -- where a bad value came from --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("CACHE_MAX_BYTES", "abc", "ARTIFACT_PLUGINS_CACHE_MAX_BYTES='abc': invalid size: expected bytes such as"),
        ("STORE", "ftp://host/x", "ARTIFACT_PLUGINS_STORE='ftp://host/x': unsupported store URI: expected a path"),
        ("STORE", "file://x/tmp/fsx", "ARTIFACT_PLUGINS_STORE='file://x/tmp/fsx': store URI: names host 'x'"),
        ("PROJECT", "has space", "ARTIFACT_PLUGINS_PROJECT: invalid project 'has space'"),
    ],
)
def test_env_errors_name_the_variable(monkeypatch, field, value, message):
    monkeypatch.setenv(f"ARTIFACT_PLUGINS_{field}", value)
    with pytest.raises(InvalidInputError) as info:
        Settings.resolve()
    assert message in str(info.value)


def test_env_store_with_credentials_names_the_variable_not_the_secret(monkeypatch):
    monkeypatch.setenv("ARTIFACT_PLUGINS_STORE", f"s3://AKIAEXAMPLE:{SECRET}@bucket/prefix")
    with pytest.raises(InvalidConfigError, match=r"ARTIFACT_PLUGINS_STORE='s3://\*\*\*@bucket/prefix'") as info:
        Settings.resolve()
    assert SECRET not in str(info.value) and "credentials" in str(info.value)


def test_config_file_and_argument_errors_name_their_source(no_env, config_file):
    path = config_file('cache_max_bytes = "lots"\nstore = "ftp://host/x"\n')
    cases = [
        ({}, f"config file {path}: cache_max_bytes='lots': invalid size: expected bytes"),
        ({"cache_max_bytes": "1GiB"}, f"config file {path}: store='ftp://host/x': unsupported store URI"),
        ({"cache_max_bytes": "1GiB", "store": "gopher://h/x"}, "argument store='gopher://h/x': unsupported store URI"),
        ({"cache_max_bytes": 1.5, "store": "/tmp/x"}, "argument cache_max_bytes=1.5: invalid size"),
    ]
    for arguments, message in cases:
        with pytest.raises(InvalidConfigError) as info:
            Settings.resolve(**arguments)
        assert message in str(info.value)


# -- file:// store URIs -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "rule"),
    [
        ("file://x/tmp/fsx", "names host 'x'"),
        ("file://tmp/store", "names host 'tmp'"),
        ("file://", "names no absolute path"),
        ("file://localhost", "names no absolute path"),
        ("file:relative/dir", "names no absolute path"),
        ("file:///tmp/a?b", "'?' and '#'"),
        ("file:///tmp/a#b", "'?' and '#'"),
    ],
)
def test_file_store_uris_that_would_lose_part_of_the_path_are_refused(uri, rule, monkeypatch):
    with pytest.raises(InvalidConfigError) as info:
        open_store(uri)
    message = str(info.value)
    assert repr(uri) in message and rule in message
    if rule.startswith("names"):
        assert "three slashes" in message and "file:///tmp/store" in message
    monkeypatch.setenv("ARTIFACT_PLUGINS_STORE", uri)
    with pytest.raises(InvalidConfigError, match=re.escape(f"ARTIFACT_PLUGINS_STORE={uri!r}")):
        Settings.resolve()


def test_file_store_uris_name_local_paths(tmp_path):
    spaced = tmp_path / "a store"
    assert open_store(spaced.as_uri()).root == spaced  # percent-encoded in the URI, decoded for the disk
    assert open_store(f"file://localhost{tmp_path}/b").root == tmp_path / "b"
    store = open_store(str(spaced))
    assert open_store(store.uri).root == store.root  # a store's own URI opens the same store
