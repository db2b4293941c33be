"""The registry's tables for Core statements, named as the models name them.

``tables.Version.metadata_`` is the ``versions.metadata`` column, ``select(tables.Run)`` selects
every column of ``runs``, ``insert(tables.Tag)`` inserts into ``tags``: the same spelling as the
ORM models, but the statements are plain Core. On the path every log and download takes, ORM
statements cost a one-time mapper configuration (~3–6 ms per process) and ~0.2 ms more to
compile each statement shape than Core ones (measured), for rows the registry reads as tuples anyway.
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


Project: Any = _view(models.Project)
Collection: Any = _view(models.Collection)
Version: Any = _view(models.Version)
Alias: Any = _view(models.Alias)
AliasEvent: Any = _view(models.AliasEvent)
Tag: Any = _view(models.Tag)
Run: Any = _view(models.Run)
Edge: Any = _view(models.Edge)
Part: Any = _view(models.Part)
ProtectedAlias: Any = _view(models.ProtectedAlias)
RetentionPolicy: Any = _view(models.RetentionPolicy)
