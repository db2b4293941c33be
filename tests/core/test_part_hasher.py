"""Hashing a large download as its parts land, in any order, from one reused read buffer."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from artifact_plugins.core import storage
from artifact_plugins.core.errors import StoreError
from artifact_plugins.core.hashing import digest_bytes
from artifact_plugins.core.storage import PartHasher


@pytest.mark.parametrize("preadv", [True, False], ids=["preadv", "pread"])
def test_parts_in_any_order_hash_to_the_file_digest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, preadv: bool
) -> None:
    if not preadv:  # as on Windows
        monkeypatch.setattr(storage, "_pread_into", storage._pread_copy)
    monkeypatch.setattr(PartHasher, "READ_BYTES", 7)  # parts larger than the buffer
    data = random.Random(3).randbytes(1000)
    path = tmp_path / "blob"
    path.write_bytes(data)
    parts = [(start, min(start + 64, len(data))) for start in range(0, len(data), 64)]
    random.Random(4).shuffle(parts)
    hasher = PartHasher(str(path))
    for start, end in parts:
        hasher.part_done(start, end)
    assert hasher.digest(len(data)) == digest_bytes(data)


def test_a_file_shorter_than_its_parts_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "blob"
    path.write_bytes(b"x" * 10)
    hasher = PartHasher(str(path))
    with pytest.raises(StoreError, match="shorter than the parts written"):
        hasher.part_done(0, 20)
    hasher.close()


def test_a_gap_in_the_parts_is_refused_at_the_end(tmp_path: Path) -> None:
    path = tmp_path / "blob"
    path.write_bytes(b"y" * 30)
    hasher = PartHasher(str(path))
    hasher.part_done(0, 10)
    hasher.part_done(20, 30)  # [10, 20) never reported
    with pytest.raises(StoreError, match="covered 10 of 30 bytes"):
        hasher.digest(30)
