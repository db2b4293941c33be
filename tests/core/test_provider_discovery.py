"""Finding the run-context providers: what ``importlib.metadata`` would find, without parsing
every installed distribution's entry points."""

from __future__ import annotations

import re
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from artifact_plugins.core.run_context import ENTRY_POINT_GROUP, provider_entry_points


def install(site: Path, dist: str, entry_points_txt: str) -> None:
    """A distribution's metadata, as an installer leaves it in ``site`` (its name escaped in the folder's)."""
    info = site / f"{re.sub(r'[-_.]+', '_', dist)}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(entry_points_txt)


def test_the_installed_providers_are_what_importlib_finds() -> None:
    expected = sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name)
    found = provider_entry_points()
    assert [(ep.name, ep.value) for ep in found] == [(ep.name, ep.value) for ep in expected]
    assert {"prefect", "airflow"} <= {ep.name for ep in found}


def test_another_distribution_s_provider_is_found_and_a_second_copy_of_it_is_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    install(first, "Acme_Runs", f"[console_scripts]\nacme = acme:main\n\n[{ENTRY_POINT_GROUP}]\nacme = acme.ctx:One\n")
    # The same distribution (its name spelt another way) later on sys.path: shadowed.
    install(second, "acme-runs", f"[{ENTRY_POINT_GROUP}]\nacme = acme.ctx:Two\nextra = acme.ctx:Three\n")
    # A distribution that only mentions the group's name outside it registers nothing.
    install(second, "other", f"[console_scripts]\nother = other:main  # not {ENTRY_POINT_GROUP}\n")
    monkeypatch.syspath_prepend(str(second))
    monkeypatch.syspath_prepend(str(first))

    found = {ep.name: ep.value for ep in provider_entry_points()}
    assert found["acme"] == "acme.ctx:One"
    assert "extra" not in found and "other" not in found
    expected = {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}
    assert found == expected
