"""Values the Prefect tasks return: small frozen dataclasses, never dicts.

Prefect links a task's inputs to the upstream task runs that produced them by object identity;
plain dicts share interned keys between unrelated results and over-link the graph, while a
dataclass instance links exactly to the task run that returned it. These types import nothing
from Prefect, so the cache policy and user code can use them anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from artifact_plugins.core.version import ArtifactVersion


@dataclass(frozen=True)
class ArtifactRef:
    """A committed artifact version, as returned by ``log_artifact``/``use_artifact``/``finish_artifact``.

    ``qualified_name`` (``entity/project/name:vN``) pins the version, ``digest`` identifies its
    content and ``path`` is where ``use_artifact`` downloaded it (``None`` when not downloaded).
    ``str(ref)`` is the qualified name, so a ref can be passed wherever a ref string is accepted.
    """

    qualified_name: str
    name: str
    version: str
    digest: str
    type: str
    aliases: tuple[str, ...] = ()
    path: Path | None = None
    size: int = 0
    file_count: int = 0

    @classmethod
    def from_version(cls, version: ArtifactVersion, path: Path | None = None) -> ArtifactRef:
        """Build a ref from a committed core :class:`ArtifactVersion`."""
        return cls(
            qualified_name=version.qualified_name,
            name=version.name,
            version=version.version,
            digest=version.digest,
            type=version.type,
            aliases=tuple(version.aliases),
            path=path,
            size=int(version.size or 0),
            file_count=int(version.file_count or 0),
        )

    @property
    def entity(self) -> str:
        """The entity part of ``qualified_name``."""
        return self.qualified_name.split("/", 2)[0]

    @property
    def project(self) -> str:
        """The project part of ``qualified_name``."""
        return self.qualified_name.split("/", 2)[1]

    @property
    def collection(self) -> str:
        """``entity/project/name`` without the version selector."""
        return self.qualified_name.rsplit(":", 1)[0]

    @property
    def pinned(self) -> str:
        """A ref string pinned to this exact content: ``entity/project/name@blake3:<hex>``."""
        return f"{self.collection}@{self.digest}"

    def __str__(self) -> str:
        return self.qualified_name


@dataclass(frozen=True)
class ArtifactPart:
    """One part upserted by a parallel writer; pass the parts to ``finish_artifact``.

    Parts carry no version: they become one only when ``finish_artifact`` merges every part
    upserted under ``distributed_id``. ``digest`` is the digest of this part's own entries and
    ``entries`` their paths.
    """

    name: str
    type: str
    distributed_id: str
    entity: str
    project: str
    digest: str = ""
    entries: tuple[str, ...] = ()

    @property
    def collection(self) -> str:
        """``entity/project/name`` of the artifact the part belongs to."""
        return f"{self.entity}/{self.project}/{self.name}"


def ref_string(ref: str | ArtifactRef) -> str:
    """The ref string for ``ref``: an :class:`ArtifactRef` resolves to its pinned version."""
    return ref.qualified_name if isinstance(ref, ArtifactRef) else ref
