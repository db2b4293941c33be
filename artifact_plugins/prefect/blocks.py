"""The ``ArtifactStore`` Block: artifact store configuration saved in Prefect.

Registered through the ``prefect.collections`` entry point, so it shows in the Prefect UI's
Block catalog and ``prefect block register -m artifact_plugins.prefect.blocks`` registers it.
A saved block is one more configuration source: its non-empty fields count as explicit
arguments, the unset ones fall through to the environment, the config file and the defaults::

    ArtifactStore(store="s3://bucket/artifacts", registry="postgresql+psycopg://...").save("team")
    settings = ArtifactStore.load("team").settings()
    log_artifact("model", "model", "out/", store_block="team")

An ``s3://`` store may take its keys, region and endpoint from the block (the fields
``prefect-aws``'s ``AwsCredentials`` uses); without them boto3's standard chain applies.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from prefect.blocks.core import Block
from pydantic import Field, SecretStr

from artifact_plugins.core.config import Settings
from artifact_plugins.core.store_access import s3_access

if TYPE_CHECKING:
    from artifact_plugins.core.api import Api


class ArtifactStore(Block):
    """Where artifact_plugins keeps blobs (``store``) and metadata (``registry``), plus defaults.

    ``registry`` is secret because a PostgreSQL URL usually carries a password; it is never shown
    in the UI or logs. Unset fields fall back to ``ARTIFACT_PLUGINS_*`` variables, the config
    file and the embedded defaults.
    """

    _block_type_name: ClassVar[str] = "Artifact Store"
    _block_type_slug: ClassVar[str] = "artifact-store"
    _description: ClassVar[str] = (
        "Versioned, content-addressed artifact store with lineage (artifact_plugins): blob store, "
        "metadata registry and default entity/project."
    )

    store: str | None = Field(
        default=None,
        description="Blob store: a local path, file://, s3://bucket/prefix or gs://bucket/prefix.",
    )
    registry: SecretStr | None = Field(
        default=None,
        description="Metadata registry as an SQLAlchemy URL (sqlite:///... or postgresql+psycopg://...).",
    )
    entity: str | None = Field(default=None, description="Default entity for artifact names.")
    project: str | None = Field(default=None, description="Default project for artifact names.")
    cache_dir: str | None = Field(default=None, description="Local download cache directory.")
    cache_max_bytes: str | None = Field(
        default=None, description="Bound of the local download cache, e.g. '10GiB'."
    )
    aws_access_key_id: str | None = Field(default=None, description="Access key id for an s3:// store.")
    aws_secret_access_key: SecretStr | None = Field(
        default=None, description="Secret access key for an s3:// store."
    )
    aws_session_token: SecretStr | None = Field(default=None, description="Session token, with temporary keys.")
    region_name: str | None = Field(default=None, description="Region of an s3:// store's bucket.")
    endpoint_url: str | None = Field(
        default=None, description="An S3-compatible endpoint (MinIO, SeaweedFS, R2...) for an s3:// store."
    )

    def settings(self, **overrides: Any) -> Settings:
        """Resolve :class:`~artifact_plugins.Settings` with this block's fields as explicit values.

        ``overrides`` (non-``None``) win over the block's fields.
        """
        values: dict[str, Any] = {
            "store": self.store,
            "registry": _secret(self.registry),
            "entity": self.entity,
            "project": self.project,
            "cache_dir": self.cache_dir,
            "cache_max_bytes": self.cache_max_bytes,
        }
        aws = (self.aws_access_key_id, self.aws_secret_access_key, self.aws_session_token)
        if any(aws) or self.region_name or self.endpoint_url:
            name = getattr(self, "_block_document_name", None)
            values["store_access"] = s3_access(
                f"ArtifactStore block {name!r}" if name else "the ArtifactStore block",
                key_id=self.aws_access_key_id,
                secret=_secret(self.aws_secret_access_key),
                token=_secret(self.aws_session_token),
                region=self.region_name,
                endpoint_url=self.endpoint_url,
            )
        values.update({k: v for k, v in overrides.items() if v is not None})
        return Settings.resolve(**values)

    def api(self) -> Api:
        """An :class:`~artifact_plugins.Api` reading the store this block points at."""
        from artifact_plugins.core.api import Api

        return Api(settings=self.settings())


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


__all__ = ["ArtifactStore"]
