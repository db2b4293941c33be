"""The registry's tables for Core statements, named as the models name them.

``tables.Version.metadata_`` is the ``versions.metadata`` column, ``select(tables.Run)`` selects
every column of ``runs``, ``insert(tables.Tag)`` inserts into ``tags``: the same spelling as the
ORM models, but the statements are plain Core. Through the ORM, every process paid the mapper
configuration and an ORM compile of each statement shape on the path every log and download
takes, for rows the registry reads as tuples anyway: ``init`` + commit of a 10,000-file re-log
took 36.7 ms instead of 24.5 (``benchmarks/bench_relog.py``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import FromClause, Table
from sqlalchemy.sql.elements import KeyedColumnElement

from . import models

#: Model attributes whose column has another name (``mapped_column("metadata", ...)``).
RENAMED = {"metadata_": "metadata", "group": "group_key"}


class TableView:
    """A table (or an alias of one) whose columns are attributes, under the models' attribute names."""

    def __init__(self, table: Table | FromClause) -> None:
        self.__table__ = table
        self._columns = table.c

    def __getattr__(self, name: str) -> KeyedColumnElement[Any]:
        try:
            return self._columns[RENAMED.get(name, name)]
        except KeyError:
            raise AttributeError(f"table {self.__table__} has no column for {name!r}") from None

    def __clause_element__(self) -> Table | FromClause:
        return self.__table__

    def aliased(self) -> TableView:
        """An aliased copy, for joining a table to itself."""
        return TableView(self.__table__.alias())


def _view(model: type[models.Base]) -> Any:
    # Typed Any: SQLAlchemy's stubs do not know a ``__clause_element__`` object is a table.
    return TableView(model.__table__)


Project = _view(models.Project)
Collection = _view(models.Collection)
Version = _view(models.Version)
Alias = _view(models.Alias)
AliasEvent = _view(models.AliasEvent)
Tag = _view(models.Tag)
Run = _view(models.Run)
Edge = _view(models.Edge)
Part = _view(models.Part)
ProtectedAlias = _view(models.ProtectedAlias)
RetentionPolicy = _view(models.RetentionPolicy)
StoreLock = _view(models.StoreLock)
StoreGeneration = _view(models.StoreGeneration)
