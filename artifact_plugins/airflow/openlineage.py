"""OpenLineage facets for the artifact operators (only used when the OpenLineage provider runs).

Artifact datasets use the namespace ``artifact://<entity>/<project>`` and the artifact name, the
same identity as :func:`~artifact_plugins.airflow.assets.artifact_asset`, and carry the content
digest as their dataset version, so two runs that saw the same bytes report the same version.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from artifact_plugins.core.redact import redact_uri

from .assets import SCHEME


@dataclass(frozen=True)
class LineageDataset:
    """One input or output of an operator run, independent of the OpenLineage client classes."""

    namespace: str
    name: str
    version: str | None = None

    @classmethod
    def for_version(cls, version: Any) -> LineageDataset:
        """The dataset standing for an artifact version (digest as the dataset version)."""
        return cls(f"{SCHEME}://{version.entity}/{version.project}", version.name, version.digest)

    @classmethod
    def for_location(cls, location: str) -> LineageDataset:
        """A file path or an object-store/HTTP URI (credentials removed) as a dataset."""
        if "://" not in location:
            return cls("file", location)
        parts = urlsplit(redact_uri(location))
        if parts.scheme == "file" and parts.netloc in ("", "localhost"):  # the same file as its path
            return cls("file", unquote(parts.path))
        netloc = parts.netloc.rsplit("@", 1)[-1]
        return cls(f"{parts.scheme}://{netloc}", parts.path.lstrip("/") or "/")


def operator_lineage(inputs: list[LineageDataset], outputs: list[LineageDataset]) -> Any | None:
    """An ``OperatorLineage`` for the OpenLineage provider, or ``None`` when it is not installed."""
    try:
        from airflow.providers.common.compat.openlineage.facet import Dataset
        from airflow.providers.openlineage.extractors import OperatorLineage
        from openlineage.client.generated.dataset_version_dataset import DatasetVersionDatasetFacet
    except ImportError:
        return None

    def convert(item: LineageDataset) -> Any:
        facets: dict[str, Any] = {}
        if item.version:
            facets["version"] = DatasetVersionDatasetFacet(datasetVersion=item.version)
        return Dataset(namespace=item.namespace, name=item.name, facets=facets)

    return OperatorLineage(inputs=[convert(i) for i in inputs], outputs=[convert(o) for o in outputs])
