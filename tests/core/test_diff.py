"""Property test of the diff: the one-pass comparison gives what its definition gives, in path order."""

from __future__ import annotations

import tempfile
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir

from artifact_plugins.core.diff import Change, VersionDiff, diff_manifests
from artifact_plugins.core.manifest import Manifest, ManifestEntry, make_entry

set_hypothesis_home_dir(tempfile.mkdtemp(prefix="ap-hypothesis-"))  # keep .hypothesis out of the checkout

# Few paths and few contents, so versions share paths, move contents and hold copies.
_paths = st.sampled_from([f"{d}/{f}" for d in ("a", "b", "c/d") for f in ("x.bin", "y.bin", "z.txt")])
_digests = st.sampled_from([f"blake3:{c * 64}" for c in "0123"])


@st.composite
def _manifests(draw: Any) -> Manifest:
    entries = []
    for path in draw(st.lists(_paths, unique=True)):
        ref = draw(st.none() | st.just(f"s3://bucket/{path}"))
        entries.append(make_entry(path, draw(_digests), draw(st.integers(0, 9)), ref))
    return Manifest(draw(st.permutations(entries)))  # in no particular order, as a draft builds them


def _by_definition(old: Manifest, new: Manifest) -> VersionDiff:
    """The diff spelt out with sets and sorts over every path."""

    def change(path: str, a: ManifestEntry | None, b: ManifestEntry | None, old_path: str | None = None) -> Change:
        return Change(
            path,
            a.size if a else None,
            b.size if b else None,
            a.digest if a else None,
            b.digest if b else None,
            old_path,
        )

    out = VersionDiff("old", "new")
    o, n = old.entries, new.entries
    for path in sorted(o.keys() & n.keys()):
        if o[path].digest == n[path].digest:
            out.unchanged += 1
        elif o[path].ref is not None and n[path].ref is not None:
            out.references_changed.append(change(path, o[path], n[path]))
        else:
            out.modified.append(change(path, o[path], n[path]))
    gone = sorted(o.keys() - n.keys())
    for path in sorted(n.keys() - o.keys()):
        src = next((g for g in gone if o[g].digest == n[path].digest), None)
        if src is None:
            out.added.append(change(path, None, n[path]))
        else:
            gone.remove(src)
            out.renamed.append(change(path, o[src], n[path], old_path=src))
    out.removed = [change(p, o[p], None) for p in gone]
    return out


@settings(max_examples=300, deadline=None, database=None)
@given(_manifests(), _manifests())
def test_diff_is_its_definition(old: Manifest, new: Manifest) -> None:
    assert diff_manifests(old, new) == _by_definition(old, new)
