"""The run-context provider: cheap import, and the identity it reports inside Prefect runs."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

from prefect import flow, task
from prefect.runtime import flow_run as runtime_flow_run

import artifact_plugins as ap
from artifact_plugins.core.run_context import RunContext, current_run_context
from artifact_plugins.prefect.context import PrefectRunContextProvider
from artifact_plugins.prefect.outcome import record_failed_run, record_finished_run


def test_importing_the_provider_does_not_import_prefect() -> None:
    code = (
        "import sys\n"
        "import artifact_plugins.prefect\n"
        "from artifact_plugins.prefect.context import PrefectRunContextProvider\n"
        "from artifact_plugins.core.run_context import providers\n"
        "assert any(isinstance(p, PrefectRunContextProvider) for p in providers()), providers()\n"
        "assert PrefectRunContextProvider().current() is None\n"
        "assert 'prefect' not in sys.modules, 'prefect was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_outside_a_run_there_is_no_context() -> None:
    assert PrefectRunContextProvider().current() is None
    assert current_run_context() is None


@task(name="inspect-context")
def inspect_context() -> RunContext | None:
    return PrefectRunContextProvider().current()


@task(name="log-artifact")
def same_name_as_adapter_task() -> RunContext | None:
    return PrefectRunContextProvider().current()


@flow(name="context-flow")
def context_flow() -> tuple[RunContext | None, RunContext | None, RunContext | None, str]:
    flow_level = PrefectRunContextProvider().current()
    return inspect_context(), same_name_as_adapter_task(), flow_level, str(runtime_flow_run.id)


def test_task_run_and_flow_run_identity() -> None:
    in_task, in_adapter_task, flow_level, flow_run_id = context_flow()
    assert in_task is not None and in_adapter_task is not None and flow_level is not None

    assert in_task.orchestrator == "prefect"
    assert in_task.group == flow_run_id
    assert in_task.default_distributed_id == flow_run_id
    assert in_task.job_type == "inspect-context"  # a user task: its own name
    assert in_task.step["flow_run_id"] == flow_run_id
    assert in_task.step["task_run_id"] == in_task.run_key
    assert in_task.step["task_name"] == "inspect-context"
    assert in_task.step["flow_name"] == "context-flow"
    assert in_task.step["run_count"] == 1
    assert in_task.name.startswith("inspect-context")
    assert in_task.url is not None and in_task.url.endswith(f"/runs/task-run/{in_task.run_key}")
    assert in_task.group_url is not None and in_task.group_url.endswith(f"/runs/flow-run/{flow_run_id}")

    assert in_adapter_task.job_type == "context-flow"  # the adapter's tasks take the flow name
    assert in_adapter_task.run_key != in_task.run_key

    assert flow_level.run_key == flow_run_id
    assert flow_level.group == flow_run_id
    assert flow_level.job_type == "context-flow"
    assert flow_level.step["task_run_id"] is None
    assert flow_level.url is not None and flow_level.url.endswith(f"/runs/flow-run/{flow_run_id}")


@task
def init_twice() -> tuple[str, str, str]:
    with ap.init() as first:
        pass
    with ap.init(job_type="explicit") as second:
        pass
    return first.id, second.id, second.orchestrator


@flow
def init_twice_flow() -> tuple[str, str, str]:
    return init_twice()


def test_ap_init_inside_a_task_binds_to_the_task_run(api: ap.Api) -> None:
    first, second, orchestrator = init_twice_flow()
    assert first == second  # same task run -> same registry run
    assert orchestrator == "prefect"


# --- the task's (or flow's) final state reaches the bound run ---------------------------------


@task(name="fails-after-logging")
def fails_after_logging(src: str) -> None:
    with ap.init() as run:
        art = ap.Artifact("late-failure", type="dataset")
        art.add_dir(src)
        run.log_artifact(art)
    raise RuntimeError("the step fails after its artifact block ended")


@task(name="fails-then-succeeds", retries=1, retry_delay_seconds=0)
def fails_then_succeeds(src: str) -> None:
    with ap.init() as run:
        art = ap.Artifact("retried-output", type="dataset")
        art.add_dir(src)
        run.log_artifact(art)
        if run.context.step["run_count"] == 1:
            raise RuntimeError("the first attempt fails inside the block")


@flow(name="outcome-flow")
def outcome_flow(src: str) -> None:
    fails_then_succeeds(src)
    fails_after_logging(src)


@flow(name="flow-level-failure")
def flow_level_failure(src: str) -> None:
    art = ap.Artifact("flow-level-output", type="dataset")
    art.add_dir(src)
    ap.log_artifact(art)  # at flow level: binds to the flow run and closes again
    raise RuntimeError("the flow fails after logging")


def _logged_by(api: ap.Api, name: str) -> str | None:
    run = api.artifact(f"{name}:latest").logged_by()
    return run.id if run is not None else None


def test_the_final_state_of_the_task_run_is_the_runs_status(api: ap.Api, make_files: Any) -> None:
    src = make_files("src", {"a.txt": "a"})
    state = outcome_flow(str(src), return_state=True)
    assert state.is_failed()

    by_job = {r.job_type: r for r in api.runs(orchestrator="prefect")}
    # The version was committed, the block ended cleanly, then the task failed: the run says so.
    late = by_job["fails-after-logging"]
    assert _logged_by(api, "late-failure") == late.id
    assert late.status == "failed"
    # The first attempt failed inside the block; the retry completed: the task run succeeded.
    retried = by_job["fails-then-succeeds"]
    assert retried.status == "finished" and retried.step["run_count"] == 2
    assert _logged_by(api, "retried-output") == retried.id

    # The hooks are added once per task, however many runs bind to it.
    outcome_flow(str(src), return_state=True)
    assert fails_after_logging.on_failure_hooks.count(record_failed_run) == 1
    assert fails_after_logging.on_completion_hooks.count(record_finished_run) == 1


def test_the_final_state_of_the_flow_run_is_the_flow_level_runs_status(api: ap.Api, make_files: Any) -> None:
    src = make_files("src", {"a.txt": "a"})
    state = flow_level_failure(str(src), return_state=True)
    assert state.is_failed()
    (run,) = api.runs(orchestrator="prefect", job_type="flow-level-failure")
    assert _logged_by(api, "flow-level-output") == run.id
    assert run.status == "failed"
