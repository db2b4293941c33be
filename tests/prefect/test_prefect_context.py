"""The run-context provider: cheap import, and the identity it reports inside Prefect runs."""

from __future__ import annotations

import subprocess
import sys

from prefect import flow, task
from prefect.runtime import flow_run as runtime_flow_run

import artifact_plugins as ap
from artifact_plugins.core.run_context import RunContext, current_run_context
from artifact_plugins.prefect.context import PrefectRunContextProvider


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
