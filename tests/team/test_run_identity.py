"""Run identities from orchestrators fit the registry on every backend, and bad ones fail clearly."""

from __future__ import annotations

from pathlib import Path

import pytest

import artifact_plugins as ap
from artifact_plugins.core.run_context import RunContext, register_provider


class LongIdsProvider:
    """An orchestrator whose step ids are as long as Airflow allows (250-character ids)."""

    def current(self) -> RunContext | None:
        dag, run, task = "d" * 250, "r" * 250, "t" * 250
        return RunContext(
            orchestrator="test",
            run_key=f"test:{dag}/{run}/{task}/-1/1",
            name=f"{task}-{'n' * 600}",
            job_type=task,
            group=f"{dag}/{run}",
            group_name=f"{dag} / {run}" + "x" * 100,
        )

    def on_logged(self, run: object, version: object, *, created: bool) -> None: ...
    def on_used(self, run: object, version: object) -> None: ...
    def on_alias_moved(self, run: object, move: object) -> None: ...


@pytest.fixture(params=["postgresql", "sqlite"])
def registry(
    request: pytest.FixtureRequest, tmp_path: Path, team_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> str:
    url = request.getfixturevalue("pg_url") if request.param == "postgresql" else f"sqlite:///{tmp_path / 'r.db'}"
    monkeypatch.setenv("ARTIFACT_PLUGINS_REGISTRY", url)
    return url


def test_an_overlong_job_type_is_refused_naming_the_limit(registry: str) -> None:
    with pytest.raises(ValueError, match=r"job_type .* 300 characters; the limit is 256"):
        ap.init(job_type="j" * 300)
    assert ap.Api().runs() == []


def test_orchestrator_ids_at_their_maximum_length_fit(registry: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from artifact_plugins.core import run_context

    monkeypatch.setattr(run_context, "_providers", [])
    register_provider(LongIdsProvider())  # type: ignore[arg-type]
    first = ap.init()
    again = ap.init()  # the same step binds to the same run, even with a shortened key
    assert first.id == again.id
    (run,) = ap.Api().runs()
    assert run.job_type == "t" * 250 and len(run.name) <= 512 and len(run.run_key) <= 512
    first.finish()
