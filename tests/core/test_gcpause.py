"""Building a draft pauses the cyclic garbage collector and always restores it."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

import artifact_plugins as ap
from artifact_plugins.core import artifact as artifact_mod
from artifact_plugins.core.errors import InvalidInputError
from artifact_plugins.core.gcpause import gc_paused


@pytest.fixture
def gc_state() -> Iterator[None]:
    was = gc.isenabled()
    yield
    (gc.enable if was else gc.disable)()


def test_add_dir_runs_with_the_collector_off_and_turns_it_back_on(make_tree, monkeypatch, gc_state):
    seen: list[bool] = []
    real = artifact_mod._scan_dir

    def scan(root: str):
        seen.append(gc.isenabled())
        return real(root)

    monkeypatch.setattr(artifact_mod, "_scan_dir", scan)
    gc.enable()
    ap.Artifact("ds").add_dir(make_tree("src", {"a.txt": "a", "d/b.txt": "b"}))
    assert seen == [False] and gc.isenabled()

    gc.disable()  # a caller that turned it off keeps it off
    ap.Artifact("ds").add_dir(make_tree("src", {"a.txt": "a"}))
    assert not gc.isenabled()


def test_the_collector_is_back_on_after_an_error(make_tree, monkeypatch, gc_state):
    def broken(root: str):
        raise InvalidInputError("cannot add directory (injected)")

    monkeypatch.setattr(artifact_mod, "_scan_dir", broken)
    gc.enable()
    with pytest.raises(InvalidInputError, match="injected"):
        ap.Artifact("ds").add_dir(make_tree("src", {"a.txt": "a"}))
    assert gc.isenabled()
    with gc_paused(), gc_paused():  # nests
        assert not gc.isenabled()
    assert gc.isenabled()
