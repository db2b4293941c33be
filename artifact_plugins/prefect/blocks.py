"""The ``ArtifactStore`` Block: artifact store configuration saved in Prefect.

Registered through the ``prefect.collections`` entry point, so it shows in the Prefect UI's
Block catalog and ``prefect block register -m artifact_plugins.prefect.blocks`` registers it.
A saved block is one more configuration source: its non-empty fields count as explicit
arguments, the unset ones fall through to the environment, the config file and the defaults::

    ArtifactStore(store="s3://bucket/artifacts", registry="postgresql+psycopg://...").save("team")
    settings = ArtifactStore.load("team").settings()
    log_artifact("model", "model", "out/", store_block="team")

An ``s3://`` store may take its keys, region and endpoint from the block (the fields
``prefect-aws``'s ``AwsCredentials`` uses); without them boto3's standard chain applies. A
``gs://`` store may take a service-account key (its JSON, or a key file) and a project (as
``prefect-gcp``'s ``GcpCredentials``); without them Application Default Credentials apply.
The tasks read ``s3://``/``gs://`` references with the same credentials.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from prefect.blocks.core import Block
from prefect.blocks.fields import SecretDict
from pydantic import Field, SecretStr

from artifact_plugins.core.config import Settings
from artifact_plugins.core.errors import InvalidConfigError
from artifact_plugins.core.store_access import StoreAccess, gcs_access, s3_access

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
    cache_max_bytes: str | None = Field(default=None, description="Bound of the local download cache, e.g. '10GiB'.")
    aws_access_key_id: str | None = Field(default=None, description="Access key id for an s3:// store.")
    aws_secret_access_key: SecretStr | None = Field(default=None, description="Secret access key for an s3:// store.")
    aws_session_token: SecretStr | None = Field(default=None, description="Session token, with temporary keys.")
    region_name: str | None = Field(default=None, description="Region of an s3:// store's bucket.")
    endpoint_url: str | None = Field(
        default=None, description="An S3-compatible endpoint (MinIO, SeaweedFS, R2...) for an s3:// store."
    )
    gcp_service_account_info: SecretDict | None = Field(
        default=None, description="A gs:// store's service-account key: the JSON key file's content."
    )
    gcp_service_account_file: str | None = Field(
        default=None, description="Path of a gs:// store's service-account JSON key file."
    )
    gcp_project: str | None = Field(default=None, description="Google Cloud project of a gs:// store.")

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
        access = self.store_access()
        if access is not None:
            values["store_access"] = access
        values.update({k: v for k, v in overrides.items() if v is not None})
        return Settings.resolve(**values)

    def store_access(self) -> StoreAccess | None:
        """The credentials this block gives an ``s3://`` or a ``gs://`` store (``None``: none).

        Raises :class:`~artifact_plugins.errors.InvalidConfigError` when it holds both kinds.
        """
        name = getattr(self, "_block_document_name", None)
        label = f"ArtifactStore block {name!r}" if name else "the ArtifactStore block"
        aws = (self.aws_access_key_id, self.aws_secret_access_key, self.aws_session_token)
        s3 = any(aws) or bool(self.region_name or self.endpoint_url)
        gcs = bool(self.gcp_service_account_info or self.gcp_service_account_file or self.gcp_project)
        if s3 and gcs:
            raise InvalidConfigError(
                f"{label} holds both AWS fields and gcp_* fields; a store is s3:// or gs://, give the fields of one"
            )
        if s3:
            return s3_access(
                label,
                key_id=self.aws_access_key_id,
                secret=_secret(self.aws_secret_access_key),
                token=_secret(self.aws_session_token),
                region=self.region_name,
                endpoint_url=self.endpoint_url,
            )
        if gcs:
            info = self.gcp_service_account_info
            return gcs_access(
                label,
                key_info=dict(info.get_secret_value()) if info is not None else None,
                key_path=self.gcp_service_account_file,
                project=self.gcp_project,
            )
        return None

    def api(self) -> Api:
        """An :class:`~artifact_plugins.Api` reading the store this block points at."""
        from artifact_plugins.core.api import Api

        return Api(settings=self.settings())


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


__all__ = ["ArtifactStore"]
