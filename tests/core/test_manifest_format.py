"""Property test of the manifest's fast writer: the bytes ``json.dumps`` would give, read back the same."""

from __future__ import annotations

import gzip
import json
import tempfile
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir

from artifact_plugins.core import manifest as manifest_mod
from artifact_plugins.core.errors import InvalidInputError
from artifact_plugins.core.manifest import FORMAT, Manifest, ManifestEntry, make_entry
from artifact_plugins.core.naming import normalize_entry_path

set_hypothesis_home_dir(tempfile.mkdtemp(prefix="ap-hypothesis-"))  # keep .hypothesis out of the checkout

FAST = settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

hexdigits = st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)
digests = hexdigits.map(lambda h: f"blake3:{h}")
segments = st.text(alphabet="abz09_-. ", min_size=1, max_size=8).filter(lambda s: s.strip(".") != "") | st.sampled_from(
    ['q"uote', "back\\slash", "é", "\u65e5\u672c", "tab\tname", "\x7f", "a+b=c,d@e~f"]
)
paths = st.lists(segments, min_size=1, max_size=3).map("/".join)
sizes = st.integers(min_value=0, max_value=2**50)
extras = st.none() | st.fixed_dictionaries({"etag": st.text(max_size=10)})


@st.composite
def entries(draw: Any) -> list[ManifestEntry]:
    out: dict[str, ManifestEntry] = {}
    for path in draw(st.lists(paths, max_size=30, unique=True)):
        if draw(st.booleans()):
            out[path] = make_entry(path, draw(digests), draw(sizes))
        else:  # a reference, or remote identity without one: either leaves the fast route
            ref = draw(st.none() | st.just(f"s3://bucket/{path}"))
            out[path] = make_entry(path, draw(digests), draw(sizes), ref, draw(extras))
    return list(out.values())


@FAST
@given(entries())
def test_written_bytes_are_what_json_would_write(items: list[ManifestEntry]) -> None:
    manifest = Manifest(items)
    doc = {
        "format": FORMAT,
        "version": 1,
        "digest": manifest.digest(),
        "entries": [e.to_json() for e in sorted(items, key=lambda e: e.path)],
    }
    expected = json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()
    assert gzip.decompress(manifest.to_bytes()) == expected
    if all(_canonical(e.path) for e in items):  # others are refused on reading, as they should be
        again = Manifest.from_bytes(manifest.to_bytes(), expected_digest=manifest.digest())
        assert list(again) == sorted(items, key=lambda e: e.path)


def _canonical(path: str) -> bool:
    try:
        return normalize_entry_path(path) == path
    except InvalidInputError:
        return False


# -- reading: plain chunks are checked at once, and refuse exactly what entry-by-entry reading does --

_valid_raw = st.builds(lambda p, d, s: {"path": p, "digest": d, "size": s}, paths.filter(_canonical), digests, sizes)
_hostile_values = st.sampled_from(
    [
        ("digest", "blake3:" + "a" * 64 + "\nblake3:" + "b" * 64),  # two digests' text in one
        ("digest", "blake3:" + "A" * 64),
        ("digest", 7),
        ("size", True),
        ("size", 1.0),
        ("size", -1),
        ("size", 2**50 + 1),
        ("path", "a\nb"),
        ("path", "./a"),
        ("path", "../a"),
        ("path", 7),
        ("ref", 7),
        ("extra", [1]),
    ]
)


@st.composite
def _raw_entries(draw: Any) -> list[dict[str, Any]]:
    items = draw(st.lists(_valid_raw, min_size=1, max_size=20))
    for _ in range(draw(st.integers(min_value=0, max_value=2))):
        key, value = draw(_hostile_values)
        items[draw(st.integers(min_value=0, max_value=len(items) - 1))][key] = value
    return items


def _read(route: Any, items: list[dict[str, Any]]) -> list[dict[str, Any]] | str:
    try:
        return [e.to_json() for e in route(json.loads(json.dumps(items)))]
    except InvalidInputError as exc:
        return f"refused: {exc}"


@FAST
@given(_raw_entries())
@example(  # a bad digest before a bad path: the first bad entry is the one named
    [
        {"path": "a", "digest": "blake3:" + "0" * 63, "size": 0},
        {"path": "a\nb", "digest": "blake3:" + "0" * 64, "size": 0},
    ]
)
def test_chunked_reading_accepts_and_refuses_exactly_as_entry_by_entry(items: list[dict[str, Any]]) -> None:
    one_by_one = _read(lambda raw: [manifest_mod.entry_from_json(r) for r in raw], items)
    assert _read(manifest_mod._entries_from_json, items) == one_by_one


def test_a_bad_entry_in_a_later_chunk_is_refused_by_name() -> None:
    items = [
        make_entry(f"d{i // 1000}/f{i:06d}.bin", "blake3:" + f"{i:064x}", i)
        for i in range(2 * manifest_mod._CHUNK + 10)
    ]
    doc = json.loads(gzip.decompress(Manifest(items).to_bytes()))
    assert len(Manifest.from_bytes(gzip.compress(json.dumps(doc).encode()))) == len(items)
    victim = doc["entries"][manifest_mod._CHUNK + 3]
    victim["size"] = -5
    with pytest.raises(InvalidInputError, match=rf"{victim['path']}.*invalid size -5"):
        Manifest.from_bytes(gzip.compress(json.dumps(doc).encode()))


def test_the_client_memo_is_bounded_and_remembering_again_does_not_evict_the_rest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from artifact_plugins.core import client as client_mod
    from artifact_plugins.core.config import Settings

    def manifest_of(name: str, n: int) -> Manifest:
        return Manifest(make_entry(f"{name}/{i}", f"blake3:{i:064x}", i) for i in range(n))

    monkeypatch.setattr(client_mod, "MAX_MEMO_ENTRIES", 5)
    client = client_mod.Client(Settings.resolve())
    a, b, c = manifest_of("a", 3), manifest_of("b", 2), manifest_of("c", 1)
    client.remember_manifest(a.digest(), a)
    client.remember_manifest(b.digest(), b)
    client.remember_manifest(a.digest(), a)  # 3 + 2 entries held, not 3 + 2 + 3
    assert set(client._manifests) == {a.digest(), b.digest()}
    client.remember_manifest(c.digest(), c)  # 6 > 5: the memo starts over
    assert set(client._manifests) == {c.digest()}
