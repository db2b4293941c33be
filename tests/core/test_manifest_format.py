"""Property test of the manifest's fast writer: the bytes ``json.dumps`` would give, read back the same."""

from __future__ import annotations

import gzip
import json
import tempfile
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir

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
