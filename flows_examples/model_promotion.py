"""Model promotion: move the ``production`` alias, and let an automation deploy what it points at.

1. ``train_candidate`` logs a model version tagged ``candidate`` with its evaluation metric.
2. ``promote_model`` checks the metric and moves ``production`` to the candidate with a
   compare-and-swap (it fails instead of overwriting a concurrent promotion). Inside a task the
   move emits an ``artifact_plugins.alias.moved`` event.
3. ``production_automation`` is a Prefect automation that reacts to that event by running the
   ``deploy-model`` deployment with the promoted version as its parameter.

``python flows_examples/model_promotion.py`` runs 1 and 2. With ``--automation`` it also
registers a deployment of ``deploy_model`` plus the automation, and reports the flow run the
automation creates (start a worker or ``deploy_model.serve()`` to execute it).
"""

from __future__ import annotations

import contextlib
import json
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

from prefect import flow, get_run_logger, task
from prefect.automations import Automation
from prefect.events.actions import RunDeployment
from prefect.events.schemas.automations import EventTrigger, Posture

import artifact_plugins as ap
from artifact_plugins.prefect import ArtifactRef, log_artifact, use_artifact

PROJECT = "bikes"
MODEL = "promo-model"
ALIAS_MOVED = "artifact_plugins.alias.moved"


@flow(name="train-candidate")
def train_candidate(mae: float, workdir: str | None = None) -> ArtifactRef:
    """Log a (toy) model version tagged ``candidate`` with its mean absolute error."""
    out = Path(workdir or tempfile.mkdtemp(prefix="promo-model-")) / "model.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"weights": [mae, 1.0]}))
    return log_artifact(MODEL, "model", out, project=PROJECT, aliases=["candidate"], metadata={"mae": mae})


def _alias_target(api: ap.Api, collection: str, alias: str) -> str | None:
    """The version an alias points at (``"v3"``), or ``None`` if it is not set."""
    try:
        return str(api.artifact(f"{collection}:{alias}").version)
    except ap.errors.ArtifactNotFoundError:
        return None


@task
def promote(candidate: str, alias: str, max_mae: float) -> str | None:
    """Move ``alias`` to ``candidate`` if its ``mae`` metadata is at most ``max_mae``."""
    logger = get_run_logger()
    with ap.init(project=PROJECT, job_type="promotion") as run:
        version = run.use_artifact(candidate)
    mae = version.metadata.get("mae")
    if mae is None or float(mae) > max_mae:
        logger.info("%s not promoted: mae=%s, threshold %s", version.qualified_name, mae, max_mae)
        return None
    api = ap.Api()
    collection = version.qualified_name.rsplit(":", 1)[0]
    current = _alias_target(api, collection, alias)
    if current != version.version:
        api.set_alias(version.qualified_name, alias, expected=current)
        logger.info("%s: %s moved %s -> %s", collection, alias, current, version.version)
    return version.qualified_name


@flow(name="promote-model")
def promote_model(
    candidate: str = f"{PROJECT}/{MODEL}:candidate", alias: str = "production", max_mae: float = 10.0
) -> str | None:
    """Promote the candidate when it is good enough."""
    return promote(candidate, alias, max_mae)


@flow(name="deploy-model")
def deploy_model(model: str) -> str:
    """What the automation runs: fetch the promoted model (recorded as a use) and 'deploy' it."""
    ref = use_artifact(model)
    get_run_logger().info("deploying %s from %s", ref.qualified_name, ref.path)
    return ref.qualified_name


def production_automation(
    deployment_id: UUID, alias: str = "production", collection: str = f"default.{PROJECT}.{MODEL}"
) -> Automation:
    """An automation that runs ``deployment_id`` whenever ``alias`` moves in ``collection``.

    ``collection`` is ``<entity>.<project>.<name>`` as in the event resource id; a trailing
    ``*`` matches every artifact. The promoted version reaches the deployment as ``model``.
    """
    return Automation(
        name=f"deploy-on-{alias}",
        description=f"Run the deployment when the {alias!r} alias of an artifact moves",
        trigger=EventTrigger(
            expect={ALIAS_MOVED},
            match={"prefect.resource.id": f"artifact_plugins.artifact.{collection}"},
            match_related={"prefect.resource.role": "alias", "prefect.resource.id": f"artifact_plugins.alias.{alias}"},
            posture=Posture.Reactive,
            threshold=1,
            within=timedelta(0),
        ),
        actions=[
            RunDeployment(
                source="selected",
                deployment_id=deployment_id,
                parameters={"model": "{{ event.resource['artifact_plugins.qualified_name'] }}"},
            )
        ],
    )


def _wait_for_triggered_run(deployment_id: UUID, since: datetime, timeout: float = 30.0) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            only_this = DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id]))
            runs = [r for r in client.read_flow_runs(deployment_filter=only_this) if r.created and r.created >= since]
            if runs:
                print(f"automation created flow run {runs[0].name} with parameters {runs[0].parameters}")
                return
            time.sleep(1)
    print("no deployment run was triggered (did production move? it may already point at the candidate)")


if __name__ == "__main__":
    with_automation = "--automation" in sys.argv
    deployment_id = None
    if with_automation:
        deployment_id = deploy_model.to_deployment(name="deploy-production").apply()
        automation = production_automation(deployment_id)
        with contextlib.suppress(ValueError):  # re-running the example replaces the automation
            Automation.read(name=automation.name).delete()
        automation.create()
    started = datetime.now(UTC)
    candidate = train_candidate(mae=4.2)
    print("candidate:", candidate.qualified_name)
    print("promoted:", promote_model())
    if deployment_id is not None:
        _wait_for_triggered_run(deployment_id, started)
