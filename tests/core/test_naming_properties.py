"""Property tests of the naming rules: accepted entry paths never escape, refs round-trip."""

from __future__ import annotations

import os
import re
import tempfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir

from artifact_plugins.core.errors import InvalidAliasError, InvalidPathError
from artifact_plugins.core.naming import Ref, normalize_entry_path, normalize_entry_paths, parse_ref, validate_alias

set_hypothesis_home_dir(tempfile.mkdtemp(prefix="ap-hypothesis-"))  # keep .hypothesis out of the checkout

ROOT = "/srv/download-root"
NAME_CHARS = "abcXYZ019_-."
names = st.text(alphabet=NAME_CHARS, min_size=1, max_size=20).filter(lambda s: s not in {".", ".."})
aliases = names.filter(lambda s: not re.fullmatch(r"v\d+", s))
hexdigits = st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)
path_text = st.lists(
    st.sampled_from(["a", "b", "é", "/", ".", "..", "\\", "\x00", "\n", "\x7f", " ", "C:", "e\u0301"]),
    max_size=30,
).map("".join) | st.text(max_size=40)

FAST = settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(path_text)
def test_accepted_entry_paths_stay_inside_the_root(raw):
    try:
        path = normalize_entry_path(raw)
    except InvalidPathError as exc:
        assert repr(raw) in str(exc)
        return
    segments = path.split("/")
    assert not path.startswith("/")
    assert ".." not in segments and "" not in segments and "." not in segments
    assert not re.search(r"[\x00-\x1f\x7f\\]", path)
    assert len(path.encode()) <= 1024
    assert normalize_entry_path(path) == path  # canonical form is a fixed point
    dest = os.path.abspath(os.path.join(ROOT, path))
    assert os.path.commonpath([dest, ROOT]) == ROOT and dest != ROOT


@FAST
@given(
    name=names,
    project=st.none() | names,
    entity=names,
    selector=st.one_of(
        st.integers(min_value=0, max_value=10**6).map(lambda i: ("version", i)),
        aliases.map(lambda a: ("alias", a)),
        hexdigits.map(lambda h: ("digest", "blake3:" + h)),
    ),
)
def test_refs_round_trip(name, project, entity, selector):
    kind, value = selector
    ref = Ref(name, project, entity if project else None, **{kind: value})
    assert parse_ref(str(ref)) == ref


@FAST
@given(st.integers(min_value=0, max_value=10**9))
def test_version_strings_are_never_aliases(i):
    with pytest.raises(InvalidAliasError):
        validate_alias(f"v{i}")
    assert parse_ref(f"ds:v{i}").version == i


def test_bare_name_means_latest():
    assert parse_ref("ds") == Ref("ds", alias="latest")
    assert parse_ref("p/ds") == Ref("ds", "p", alias="latest")
    assert parse_ref("e/p/ds:prod") == Ref("ds", "p", "e", alias="prod")


PLAIN_SEGMENTS = ["a", "b.txt", ".x", "-", " ", "x y", "...", "z" * 1020]  # the long one: over 1024 with a neighbour
BAD_SEGMENTS = ["", "", "", ".", "..", "\n", "x\ny", "é", "\\", "C:", "e\u0301"]
# Mostly plain segments, so that batches the fast route accepts are common; an empty segment
# makes a leading, trailing or double slash.
batch_paths = st.lists(
    st.lists(st.sampled_from(PLAIN_SEGMENTS * 4 + BAD_SEGMENTS), max_size=4).map("/".join),
    max_size=4,
)


def _outcome(fn, arg):
    try:
        return fn(arg)
    except InvalidPathError as exc:
        return str(exc)


@settings(FAST, max_examples=1500)
@given(batch_paths)
def test_batch_normalisation_gives_the_per_path_verdicts(paths):
    batch = _outcome(normalize_entry_paths, paths)
    one_by_one = _outcome(lambda ps: [normalize_entry_path(p) for p in ps], paths)
    assert batch == one_by_one
    if batch is paths:  # the batch route said "all canonical": each one is
        assert all(normalize_entry_path(p) == p for p in paths)
