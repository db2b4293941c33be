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

    def __len__(self) -> int:
        return len(self.data)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Table) and (self.columns, self.data) == (other.columns, other.data)

    __hash__ = None  # type: ignore[assignment]

    def serialize(self) -> bytes:
        """Canonical bytes (sorted keys, so equal tables hash equal)."""
        return json.dumps(self.to_json(), sort_keys=True, separators=(",", ":")).encode()
