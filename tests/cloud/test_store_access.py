"""A bucket store reached with credentials handed over by an orchestrator (``StoreAccess``),
against the real SeaweedFS with SigV4 authentication on."""

from __future__ import annotations

import json
import logging
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest
from cloud_helpers import STORE_BUCKET, unique
from servers import ACCESS_KEY, SECRET_KEY, SeaweedFS, refuse_chain_credentials

import artifact_plugins as ap
from artifact_plugins.core.client import close_clients, get_client
from artifact_plugins.core.config import Settings
from artifact_plugins.core.errors import InvalidConfigError, StoreError
from artifact_plugins.core.store_access import StoreAccess


def access(server: SeaweedFS, secret: str = SECRET_KEY, name: str = "connection 'lake'") -> StoreAccess:
    """Keys and endpoint for ``server``, as an orchestrator's connection would hand them over."""

    def session() -> boto3.session.Session:
        return boto3.session.Session(
            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=secret, region_name="us-east-1"
        )

    return StoreAccess("s3", name, session, (("endpoint_url", server.endpoint),))


@pytest.fixture
def no_chain_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The standard chain holds keys the server refuses and no endpoint: only the access can work."""
    refuse_chain_credentials(monkeypatch, tmp_path)
    close_clients()


def settings_for(prefix: str, store_access: StoreAccess) -> Settings:
    return Settings.resolve(store=f"s3://{STORE_BUCKET}/{prefix}", store_access=store_access)


def test_the_access_credentials_and_endpoint_reach_the_store(
    seaweed: SeaweedFS, no_chain_credentials: None, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.txt").write_text("alpha\n")
    (data / "b.bin").write_bytes(uuid.uuid4().bytes * 100)
    prefix = unique("access")
    settings = settings_for(prefix, access(seaweed))

    art = ap.Artifact("lake-dataset", "dataset")
    art.add_dir(data)
    with ap.init(job_type="write", settings=settings) as run:
        version = run.log_artifact(art)
    keys = [o["Key"] for o in seaweed.client().list_objects_v2(Bucket=STORE_BUCKET, Prefix=prefix)["Contents"]]
    assert any("/blobs/blake3/" in k for k in keys) and any("/manifests/blake3/" in k for k in keys)

    close_clients()  # a fresh process: the download opens the store again through the access
    with ap.init(job_type="read", settings=settings) as run:
        root = run.use_artifact("lake-dataset:latest").download(tmp_path / "out")
    assert (Path(root) / "a.txt").read_text() == "alpha\n"
    assert (Path(root) / "b.bin").read_bytes() == (data / "b.bin").read_bytes()
    assert version.version == "v0"


def test_refused_credentials_name_their_source_and_never_the_secret(
    seaweed: SeaweedFS, no_chain_credentials: None, tmp_path: Path, caplog: Any
) -> None:
    secret = "wrong-secret-" + uuid.uuid4().hex
    settings = settings_for(unique("refused"), access(seaweed, secret=secret, name="connection 'lake'"))
    (tmp_path / "f.txt").write_text("x")
    art = ap.Artifact("refused", "dataset")
    art.add_file(tmp_path / "f.txt")
    with (
        caplog.at_level(logging.DEBUG),
        pytest.raises(StoreError) as info,
        ap.init(job_type="write", settings=settings) as run,
    ):
        run.log_artifact(art)
    message = str(info.value)
    assert "connection 'lake'" in message and "403" in message
    assert secret not in message and secret not in caplog.text


def test_the_access_never_shows_and_only_fits_its_kind_of_store(seaweed: SeaweedFS, tmp_path: Path) -> None:
    lake = access(seaweed, secret="s3cr3t-" + uuid.uuid4().hex)
    settings = settings_for("p", lake)
    # The session (which holds the keys) is neither printed nor dumped nor described.
    for text in (repr(settings), str(settings), json.dumps(settings.describe()), json.dumps(settings.model_dump())):
        assert "store_access" not in text and "s3cr3t" not in text
    # Same source, same store: one client; no access: another.
    assert settings == settings_for("p", access(seaweed)) and hash(settings) == hash(settings_for("p", access(seaweed)))
    assert settings != Settings.resolve(store=f"s3://{STORE_BUCKET}/p")

    for store in (str(tmp_path / "local"), f"gs://{STORE_BUCKET}/p"):
        with pytest.raises(InvalidConfigError, match=r"connection 'lake' gives s3:// credentials, but the store is"):
            Settings.resolve(store=store, store_access=lake)
    with pytest.raises(InvalidConfigError, match="store_access must be a StoreAccess"):
        Settings.resolve(store=f"s3://{STORE_BUCKET}/p", store_access={"key": "value"})


def test_references_are_read_with_the_access_in_its_block_and_its_worker_threads(
    seaweed: SeaweedFS, no_chain_credentials: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from artifact_plugins.core.references import references_read_with, verify_references

    refs = unique("refs")
    admin = seaweed.client()
    for k in range(3):
        admin.put_object(Bucket=STORE_BUCKET, Key=f"{refs}/part-{k}.csv", Body=f"part {k}\n".encode())
    uri = f"s3://{STORE_BUCKET}/{refs}/"
    lake = access(seaweed)

    monkeypatch.setenv("ARTIFACT_PLUGINS_S3_ENDPOINT_URL", seaweed.endpoint)
    close_clients()  # and the cached reference handlers
    outside = ap.Artifact("outside", "dataset")
    with pytest.raises(StoreError, match=r"HTTP 403.*AWS standard chain"):  # the chain's keys are refused
        outside.add_reference(uri)

    settings = settings_for(unique("store"), lake)
    with references_read_with(lake), references_read_with(None):  # None keeps the enclosing access
        art = ap.Artifact("parts", "dataset")
        art.add_reference(uri, name="parts")
        with ap.init(job_type="write", settings=settings) as run:
            version = run.log_artifact(art)
        # Three HEADs on worker threads: each sees the access through the copied context.
        assert verify_references(version) == {f"parts/part-{k}.csv": "unchanged" for k in range(3)}
        root = Path(version.download(tmp_path / "out"))
    assert sorted(p.read_text() for p in (root / "parts").iterdir()) == [f"part {k}\n" for k in range(3)]


def test_a_run_block_and_a_committed_version_read_references_with_the_store_access(
    seaweed: SeaweedFS, no_chain_credentials: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No ``references_read_with`` in user code: drafts built inside ``with init(settings=...)``,
    and the committed version's checks and downloads, reach references as the store is reached."""
    refs = unique("run-refs")
    for k in range(2):
        seaweed.client().put_object(Bucket=STORE_BUCKET, Key=f"{refs}/part-{k}.csv", Body=f"part {k}\n".encode())
    uri = f"s3://{STORE_BUCKET}/{refs}/"
    settings = settings_for(unique("store"), access(seaweed))
    with ap.init(job_type="write", settings=settings) as run:
        art = ap.Artifact("parts", "dataset")
        art.add_reference(uri, name="parts")
        run.log_artifact(art)

    close_clients()  # a fresh process, outside any run
    api = ap.Api(settings=settings)
    assert api.verify_references("parts:latest") == {f"parts/part-{k}.csv": "unchanged" for k in range(2)}
    root = Path(api.artifact("parts:latest").download(tmp_path / "out"))
    assert sorted(p.read_text() for p in (root / "parts").iterdir()) == ["part 0\n", "part 1\n"]

    monkeypatch.setenv("ARTIFACT_PLUGINS_S3_ENDPOINT_URL", seaweed.endpoint)
    close_clients()
    with pytest.raises(StoreError, match=r"HTTP 403.*AWS standard chain"):  # after the block: the chain again
        ap.Artifact("outside", "dataset").add_reference(uri)


def test_a_gs_store_and_references_use_the_service_account_key_handed_over(
    fake_gcs: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """fake-gcs-server accepts any request; the token endpoint is where using the key shows."""
    from servers import TokenServer

    from artifact_plugins.core.references import references_read_with
    from artifact_plugins.core.store_access import gcs_access

    monkeypatch.setenv("STORAGE_EMULATOR_HOST", fake_gcs.endpoint)
    refs = unique("gs-refs")
    fake_gcs.client().bucket(STORE_BUCKET).blob(f"{refs}/trips.csv").upload_from_string(b"trip\n1\n")
    (tmp_path / "rows.csv").write_text("a,b\n")

    def settings_of(key: dict[str, str]) -> Settings:
        access = gcs_access("connection 'gcs'", key_info=key)
        return Settings.resolve(store=f"gs://{STORE_BUCKET}/{unique('gs-store')}", store_access=access)

    with TokenServer() as tokens:  # the store alone
        art = ap.Artifact("rows", "dataset")
        art.add_file(tmp_path / "rows.csv")
        with ap.init(job_type="write", settings=settings_of(tokens.service_account_key())) as run:
            run.log_artifact(art)
        assert tokens.grants >= 1

    with TokenServer() as tokens:  # references, inside the block only
        outside = ap.Artifact("trips", "dataset")
        outside.add_reference(f"gs://{STORE_BUCKET}/{refs}/")
        assert tokens.grants == 0
        with references_read_with(settings_of(tokens.service_account_key()).store_access):
            ap.Artifact("trips", "dataset").add_reference(f"gs://{STORE_BUCKET}/{refs}/")
        assert tokens.grants >= 1

    with TokenServer(refuse=True) as refusing:
        art = ap.Artifact("refused", "dataset")
        art.add_file(tmp_path / "rows.csv")
        with (
            pytest.raises(StoreError, match=r"no access token for the credentials of connection 'gcs'"),
            ap.init(job_type="write", settings=settings_of(refusing.service_account_key())) as run,
        ):
            run.log_artifact(art)

    with pytest.raises(InvalidConfigError, match=r"connection 'gcs': the service-account key cannot be used"):
        _ = get_client(settings_of({"type": "service_account", "private_key": "not a key"})).store


def test_a_gs_key_file_is_used_and_an_unreadable_one_is_named(
    fake_gcs: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from servers import TokenServer

    from artifact_plugins.core.store_access import gcs_access

    monkeypatch.setenv("STORAGE_EMULATOR_HOST", fake_gcs.endpoint)
    (tmp_path / "rows.csv").write_text("a,b\n")

    def settings_at(key_path: Path) -> Settings:
        access = gcs_access("connection 'gcs'", key_path=str(key_path))
        return Settings.resolve(store=f"gs://{STORE_BUCKET}/{unique('gs-keyfile')}", store_access=access)

    with TokenServer() as tokens:
        key_file = tmp_path / "key.json"
        key_file.write_text(json.dumps(tokens.service_account_key()))
        art = ap.Artifact("rows", "dataset")
        art.add_file(tmp_path / "rows.csv")
        with ap.init(job_type="write", settings=settings_at(key_file)) as run:
            run.log_artifact(art)
        assert tokens.grants >= 1

    missing = tmp_path / "nowhere" / "key.json"
    unreadable = r"the key file '.*nowhere/key.json' cannot be read \(FileNotFoundError\)"
    with pytest.raises(InvalidConfigError, match=unreadable):
        _ = get_client(settings_at(missing)).store
    with pytest.raises(InvalidConfigError, match=r"gives both a key \(keyfile_dict\) and a key file"):
        gcs_access("connection 'gcs'", key_info={"type": "service_account"}, key_path=str(missing))
