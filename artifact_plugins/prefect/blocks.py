"""The ``ArtifactStore`` Block: artifact store configuration saved in Prefect.

Registered through the ``prefect.collections`` entry point, so it shows in the Prefect UI's
Block catalog and ``prefect block register -m artifact_plugins.prefect.blocks`` registers it.
A saved block is one more configuration source: its non-empty fields count as explicit
arguments, the unset ones fall through to the environment, the config file and the defaults::

    ArtifactStore(store="s3://bucket/artifacts", registry="postgresql+psycopg://...").save("team")
    settings = ArtifactStore.load("team").settings()
    log_artifact("model", "model", "out/", store_block="team")
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from prefect.blocks.core import Block
from pydantic import Field, SecretStr

from artifact_plugins.core.config import Settings

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

    def settings(self, **overrides: Any) -> Settings:
        """Resolve :class:`~artifact_plugins.Settings` with this block's fields as explicit values.

        ``overrides`` (non-``None``) win over the block's fields.
        """
        values: dict[str, Any] = {
            "store": self.store,
            "registry": self.registry.get_secret_value() if self.registry is not None else None,
            "entity": self.entity,
            "project": self.project,
            "cache_dir": self.cache_dir,
            "cache_max_bytes": self.cache_max_bytes,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return Settings.resolve(**values)

    def api(self) -> Api:
        """An :class:`~artifact_plugins.Api` reading the store this block points at."""
        from artifact_plugins.core.api import Api

        return Api(settings=self.settings())


__all__ = ["ArtifactStore"]
