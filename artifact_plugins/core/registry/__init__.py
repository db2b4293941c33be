"""The metadata registry: SQLAlchemy models, Alembic migrations, and the operations on them."""

from .records import (
    AliasEventRecord,
    CollectionRecord,
    CommitFields,
    CommitResult,
    EdgeRecord,
    RunRecord,
    StoreFence,
    VersionRecord,
)
from .registry import Registry

__all__ = [
    "AliasEventRecord",
    "CollectionRecord",
    "CommitFields",
    "CommitResult",
    "EdgeRecord",
    "Registry",
    "RunRecord",
    "StoreFence",
    "VersionRecord",
]
