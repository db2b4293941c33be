"""The ArtifactStore Block: registered through the collections entry point, a configuration source."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from prefect import flow
from prefect.blocks.core import Block
from prefect.plugins import load_prefect_collections

import artifact_plugins as ap
from artifact_plugins.prefect import ArtifactStore, log_artifact, use_artifact


def test_block_is_registered_through_the_collections_entry_point() -> None:
    assert "artifact_plugins" in load_prefect_collections()
    assert Block.get_block_class_from_key("artifact-store") is ArtifactStore


def test_block_settings_override_the_environment(store: ap.Settings, tmp_path: Path) -> None:
    block = ArtifactStore(
        store=str(tmp_path / "block-store"),
        registry=f"sqlite:///{tmp_path / 'block.db'}",
        project="from-block",
    )
    settings = block.settings()
    assert settings.store == str(tmp_path / "block-store")
    assert settings.registry == f"sqlite:///{tmp_path / 'block.db'}"
    assert settings.project == "from-block"
    assert settings.cache_dir == store.cache_dir  # unset fields fall through to the environment
    assert block.settings(project="override").project == "override"
    assert "block.db" not in repr(block)  # the registry URL is a secret


@flow
def block_flow(path: str, block_name: str, reference: str | None = None) -> str:
    """Log ``path`` (and ``reference``) through the saved block, then use and download it."""
    logged = log_artifact("via-block", "dataset", path, references=reference, store_block=block_name)
    used = use_artifact(logged.qualified_name, store_block=block_name)
    assert used.path is not None and (used.path / Path(path).name).read_bytes() == Path(path).read_bytes()
    if reference is not None:  # the reference's bytes came through the block's credentials too
        assert (used.path / reference.rsplit("/", 1)[1]).read_bytes() == b"trip\n1\n"
    return logged.qualified_name


def test_tasks_read_a_saved_block(api: ap.Api, tmp_path: Path, make_files: Callable[..., Path]) -> None:
    block_settings = {"store": str(tmp_path / "team-store"), "registry": f"sqlite:///{tmp_path / 'team.db'}"}
    ArtifactStore(project="team", **block_settings).save("team-store", overwrite=True)  # type: ignore[arg-type]
    loaded = ArtifactStore.load("team-store")
    assert loaded.registry is not None and loaded.registry.get_secret_value() == block_settings["registry"]

    path = make_files("b", {"b.txt": "b"}) / "b.txt"
    assert block_flow(str(path), "team-store") == "default/team/via-block:v0"
    assert ap.Api(settings=loaded.settings()).artifact("team/via-block:v0").file_count == 1
    assert api.artifact_collections() == []  # nothing went to the environment's store


def test_block_gives_an_s3_store_its_keys_region_and_endpoint(
    api: ap.Api, seaweed: Any, tmp_path: Path, make_files: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from servers import ACCESS_KEY, SECRET_KEY, refuse_chain_credentials

    refuse_chain_credentials(monkeypatch, tmp_path)
    prefix = f"block-{uuid.uuid4().hex[:10]}"
    ArtifactStore(
        store=f"s3://artifacts/{prefix}",
        registry=f"sqlite:///{tmp_path / 'lake.db'}",  # type: ignore[arg-type]
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,  # type: ignore[arg-type]
        region_name="us-east-1",
        endpoint_url=seaweed.endpoint,
    ).save("lake", overwrite=True)
    path = make_files("lake", {"rows.csv": "a,b\n1,2\n"}) / "rows.csv"
    seaweed.client().put_object(Bucket="artifacts", Key=f"{prefix}-refs/trips.csv", Body=b"trip\n1\n")
    assert block_flow(str(path), "lake", f"s3://artifacts/{prefix}-refs/trips.csv") == "default/default/via-block:v0"
    listing = seaweed.client().list_objects_v2(Bucket="artifacts", Prefix=prefix + "/")
    keys = [o["Key"] for o in listing["Contents"]]
    assert sum("/blobs/blake3/" in k for k in keys) == 1 and sum("/manifests/blake3/" in k for k in keys) == 1
    loaded = ArtifactStore.load("lake")
    settings = loaded.settings()
    assert SECRET_KEY not in repr(loaded) + repr(settings) + str(settings.describe())
    assert settings.store_access is not None and settings.store_access.name == "ArtifactStore block 'lake'"
    assert api.artifact_collections() == []  # nothing went to the environment's store

    with pytest.raises(ap.errors.InvalidConfigError, match="access key id without a secret"):
        ArtifactStore(store="s3://artifacts/p", aws_access_key_id=ACCESS_KEY).settings()


def test_block_gives_a_gs_store_and_its_references_a_service_account_key(
    api: ap.Api, fake_gcs: Any, tmp_path: Path, make_files: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """fake-gcs-server accepts any request; the token endpoint is where using the key shows."""
    from servers import TokenServer

    monkeypatch.setenv("STORAGE_EMULATOR_HOST", fake_gcs.endpoint)
    prefix = f"block-{uuid.uuid4().hex[:10]}"
    fake_gcs.client().bucket("artifacts").blob(f"{prefix}-refs/trips.csv").upload_from_string(b"trip\n1\n")
    path = make_files("gs", {"rows.csv": "a,b\n"}) / "rows.csv"
    with TokenServer() as tokens:
        key = tokens.service_account_key()
        ArtifactStore(
            store=f"gs://artifacts/{prefix}",
            registry=f"sqlite:///{tmp_path / 'gs.db'}",  # type: ignore[arg-type]
            gcp_service_account_info=key,  # type: ignore[arg-type]
            gcp_project="test-project",
        ).save("gs-lake", overwrite=True)
        assert block_flow(str(path), "gs-lake", f"gs://artifacts/{prefix}-refs/trips.csv") == (
            "default/default/via-block:v0"
        )
        assert tokens.grants >= 1
    names = [b.name for b in fake_gcs.client().list_blobs("artifacts", prefix=prefix + "/")]
    assert sum("/blobs/blake3/" in n for n in names) == 1 and sum("/manifests/blake3/" in n for n in names) == 1
    loaded = ArtifactStore.load("gs-lake")
    settings = loaded.settings()
    assert key["private_key"] not in repr(loaded) + repr(settings) + str(settings.describe())
    assert settings.store_access is not None and settings.store_access.name == "ArtifactStore block 'gs-lake'"
    assert api.artifact_collections() == []

    with TokenServer(refuse=True) as refusing:
        ArtifactStore(
            store=f"gs://artifacts/{prefix}-refused",
            gcp_service_account_info=refusing.service_account_key(),  # type: ignore[arg-type]
        ).save("gs-refused", overwrite=True)
        with pytest.raises(ap.errors.StoreError, match=r"credentials of ArtifactStore block 'gs-refused'"):
            block_flow(str(path), "gs-refused")


def test_a_block_with_both_aws_and_gcp_fields_is_refused() -> None:
    block = ArtifactStore(store="gs://artifacts/p", region_name="us-east-1", gcp_project="test-project")
    with pytest.raises(ap.errors.InvalidConfigError, match=r"holds both AWS fields and gcp_\* fields"):
        block.settings()
