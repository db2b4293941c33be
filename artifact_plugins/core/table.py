"""Tables stored inside artifacts as JSON (``<name>.table.json``), and partitioned tables."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from .errors import InvalidInputError
from .metadata import _find_bad

TABLE_SUFFIX = ".table.json"
PARTITIONED_SUFFIX = ".partitioned-table.json"


class Table:
    """Rows of JSON values under named columns; ``artifact.add(table, "name")`` stores it."""

    suffix = TABLE_SUFFIX

    def __init__(self, columns: Sequence[str], data: Sequence[Sequence[Any]] = ()) -> None:
        if not columns or not all(isinstance(c, str) for c in columns) or len(set(columns)) != len(columns):
            raise InvalidInputError(f"table columns {list(columns)!r} must be distinct strings, at least one")
        self.columns = list(columns)
        self.data: list[list[Any]] = []
        for row in data:
            self.add_data(*row)

    def add_data(self, *values: Any) -> None:
        """Append one row; it must have one JSON value per column."""
        if len(values) != len(self.columns):
            raise InvalidInputError(
                f"table row {list(values)!r} has {len(values)} values for {len(self.columns)} columns"
            )
        bad = _find_bad(list(values), "table row")
        if bad:
            raise InvalidInputError(f"invalid {bad}")
        self.data.append(list(values))

    def to_json(self) -> dict[str, Any]:
        """The stored form."""
        return {"_type": "table", "columns": self.columns, "data": self.data, "nrows": len(self.data)}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Table:
        """Read a stored table back."""
        if doc.get("_type") != "table":
            raise InvalidInputError("not a stored table")
        return cls(doc["columns"], doc["data"])

    @classmethod
    def load(cls, path: str | Path) -> Table:
        """Read a ``.table.json`` file."""
        return cls.from_json(json.loads(Path(path).read_text("utf-8")))

    def rows(self) -> Iterator[dict[str, Any]]:
        """Each row as a column -> value dict."""
        for row in self.data:
            yield dict(zip(self.columns, row, strict=True))

    def to_pandas(self) -> Any:
        """A pandas DataFrame (requires pandas)."""
        import pandas as pd

        return pd.DataFrame(self.data, columns=self.columns)

    def to_arrow(self) -> Any:
        """A pyarrow Table (requires pyarrow)."""
        import pyarrow as pa

        return pa.table({c: [row[i] for row in self.data] for i, c in enumerate(self.columns)})

    def __len__(self) -> int:
        return len(self.data)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Table) and (self.columns, self.data) == (other.columns, other.data)

    __hash__ = None  # type: ignore[assignment]

    def serialize(self) -> bytes:
        """Canonical bytes (sorted keys, so equal tables hash equal)."""
        return json.dumps(self.to_json(), sort_keys=True, separators=(",", ":")).encode()


class PartitionedTable:
    """A table assembled from the ``*.table.json`` parts under ``parts_path`` inside an artifact.

    Stored as ``<name>.partitioned-table.json``; parallel writers each add a part (for example
    with ``upsert_artifact``) and the finishing step adds the partitioned table that joins them.
    """

    suffix = PARTITIONED_SUFFIX

    def __init__(self, parts_path: str) -> None:
        from .naming import normalize_entry_path

        self.parts_path = normalize_entry_path(parts_path.rstrip("/"))
        self._parts: list[Table] | None = None

    def serialize(self) -> bytes:
        """Canonical bytes of the stored reference."""
        return json.dumps({"_type": "partitioned-table", "parts_path": self.parts_path}, sort_keys=True).encode()

    @classmethod
    def load(cls, path: str | Path, parts: Sequence[Table]) -> PartitionedTable:
        """Read a stored partitioned table whose ``parts`` were loaded from the same artifact."""
        doc = json.loads(Path(path).read_text("utf-8"))
        if doc.get("_type") != "partitioned-table":
            raise InvalidInputError(f"{path} is not a stored partitioned table")
        table = cls(doc["parts_path"])
        table._parts = list(parts)
        return table

    @property
    def parts(self) -> list[Table]:
        """The part tables, in path order (only for a table read back from a version)."""
        if self._parts is None:
            raise InvalidInputError("this PartitionedTable was not read from a logged version; use version.get(name)")
        return self._parts

    @property
    def columns(self) -> list[str]:
        """Columns of the parts (they must agree)."""
        cols = self.parts[0].columns if self.parts else []
        for p in self.parts:
            if p.columns != cols:
                raise InvalidInputError(f"parts of {self.parts_path!r} disagree on columns: {cols} vs {p.columns}")
        return cols

    def rows(self) -> Iterator[dict[str, Any]]:
        """Every row of every part."""
        self.columns  # noqa: B018 - validates that the parts agree
        for part in self.parts:
            yield from part.rows()

    def __len__(self) -> int:
        return sum(len(p) for p in self.parts)

    def to_pandas(self) -> Any:
        """One pandas DataFrame of all parts (requires pandas)."""
        import pandas as pd

        return pd.DataFrame([row for p in self.parts for row in p.data], columns=self.columns)

    def to_arrow(self) -> Any:
        """One pyarrow Table of all parts (requires pyarrow)."""
        import pyarrow as pa

        cols = self.columns
        return pa.table({c: [row[i] for p in self.parts for row in p.data] for i, c in enumerate(cols)})
