"""A run whose process is gone reads ``crashed``, never ``running`` forever; a run whose process
ends normally is finished at exit. Every run here lives in a real process that is really killed,
stopped, forked or moved to another host name (a UTS namespace, ``unshare --uts``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import pytest

import artifact_plugins as ap
from artifact_plugins.core.errors import InvalidConfigError
from artifact_plugins.core.liveness import Owner, current_owner, effective_status, owner_gone
from artifact_plugins.core.registry.records import now

#: Beats of the runs' processes: their leases last 5 of them (2.5 s).
BEAT = 0.5
LEASE = 5 * BEAT

CHILD = r"""
import os, sys, time
import artifact_plugins as ap
mode = sys.argv[1]
runs = [ap.init(job_type="train") for _ in range(2 if mode == "two" else 1)]
print(" ".join(r.id for r in runs), flush=True)
if mode == "wait":
    time.sleep(600)
elif mode == "raise":
    raise RuntimeError("the training diverged")
elif mode == "fork":
    pid = os.fork()
    if pid == 0:
        sys.exit(0)  # a normal exit of the child runs the inherited exit hooks
    os.waitpid(pid, 0)
    print("forked", flush=True)
    time.sleep(600)
elif mode == "finish":
    runs[0].finish("failed")
elif mode == "outcome":  # what an orchestrator adapter does when the step ends
    from artifact_plugins.core.client import get_client
    get_client().registry.finish_run_by_key(runs[0].context.run_key, "failed")
"""

Spawn = Callable[..., tuple[subprocess.Popen[str], list[str]]]


@pytest.fixture
def spawn() -> Iterator[Spawn]:
    """Start a process that opens runs (``CHILD``); returns it and its run ids. Killed at the end."""
    procs: list[subprocess.Popen[str]] = []

    def start(mode: str, host: str | None = None) -> tuple[subprocess.Popen[str], list[str]]:
        argv = [sys.executable, "-c", CHILD, mode]
        if host is not None:  # the same machine under another host name: its PIDs cannot be looked up
            argv = ["unshare", "--uts", "sh", "-c", f'hostname {host} && exec "$0" "$@"', *argv]
        env = {**os.environ, "ARTIFACT_PLUGINS_HEARTBEAT_SECONDS": str(BEAT)}
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        procs.append(proc)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line, proc.stderr.read() if proc.stderr else "no output"
        return proc, line.split()

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGCONT)
            proc.kill()
        proc.wait()


def status(run_id: str) -> str:
    return ap.Api().run(run_id).status


def wait_for(run_id: str, wanted: str, within: float) -> float:
    """Seconds until ``run_id`` reads ``wanted`` (fails after ``within``)."""
    t0 = time.monotonic()
    while status(run_id) != wanted:
        assert time.monotonic() - t0 < within, f"{run_id} still {status(run_id)!r} after {within}s"
        time.sleep(0.05)
    return time.monotonic() - t0


def test_a_killed_process_leaves_a_crashed_run_at_once(spawn: Spawn) -> None:
    proc, (run_id,) = spawn("wait")
    assert status(run_id) == "running"
    proc.kill()
    proc.wait()
    assert status(run_id) == "crashed"  # same host: the process is looked up, no lease to wait out
    assert [r.status for r in ap.Api().runs() if r.id == run_id] == ["crashed"]


def test_a_stopped_process_on_this_host_is_still_running(spawn: Spawn) -> None:
    proc, (run_id,) = spawn("wait")
    proc.send_signal(signal.SIGSTOP)  # no more heartbeats, but the process exists
    time.sleep(LEASE + 1)
    assert status(run_id) == "running"
    proc.send_signal(signal.SIGCONT)


def test_a_run_on_another_host_lives_by_its_lease(spawn: Spawn) -> None:
    proc, (run_id,) = spawn("wait", host="elsewhere")
    time.sleep(2 * LEASE)  # several leases long: the heartbeat keeps renewing it
    assert status(run_id) == "running"
    proc.kill()
    proc.wait()
    assert status(run_id) == "running"  # its process cannot be looked up from this host
    waited = wait_for(run_id, "crashed", within=LEASE + 5)
    assert waited <= LEASE + 1, f"crashed only after {waited:.1f}s with a {LEASE}s lease"


def test_runs_left_open_are_finished_at_exit(spawn: Spawn) -> None:
    proc, ids = spawn("two")
    assert proc.wait() == 0
    assert [status(i) for i in ids] == ["finished", "finished"]

    proc, (failed,) = spawn("raise")
    assert proc.wait() == 1
    assert status(failed) == "failed"  # an unhandled exception ended the program

    proc, (explicit,) = spawn("finish")
    assert proc.wait() == 0
    assert status(explicit) == "failed"  # what the program said stands

    proc, (recorded,) = spawn("outcome")
    assert proc.wait() == 0
    assert status(recorded) == "failed"  # and so does an outcome recorded by someone else


def test_a_forked_child_neither_finishes_nor_renews_its_parents_runs(spawn: Spawn) -> None:
    proc, (run_id,) = spawn("fork")
    assert proc.stdout is not None and proc.stdout.readline().strip() == "forked"
    assert status(run_id) == "running"  # the child's exit hooks left it alone
    proc.kill()
    proc.wait()
    assert status(run_id) == "crashed"


def test_a_recycled_pid_is_not_taken_for_the_owner() -> None:
    me = current_owner()
    assert owner_gone(me.to_text()) is False
    recycled = Owner(me.host, me.boot_id, me.pid_namespace, me.pid, str(int(me.started) + 1))
    assert owner_gone(recycled.to_text()) is True
    elsewhere = Owner("another-host", me.boot_id, me.pid_namespace, me.pid, me.started)
    assert owner_gone(elsewhere.to_text()) is None
    assert owner_gone("not an owner") is None and owner_gone(None) is None


def test_status_rules_for_rows_old_and_new() -> None:
    at = now()
    past, future = at.replace(year=at.year - 1), at.replace(year=at.year + 1)
    elsewhere = Owner("another-host", "b", "ns", 1, "1").to_text()
    assert effective_status("running", None, None, at) == "running"  # written before owners existed
    assert effective_status("running", elsewhere, future, at) == "running"
    assert effective_status("running", elsewhere, past, at) == "crashed"
    assert effective_status("running", current_owner().to_text(), past, at) == "running"  # alive here
    assert effective_status("finished", elsewhere, past, at) == "finished"
    assert effective_status("failed", None, past, at) == "failed"


def test_an_open_run_in_this_process_reads_running() -> None:
    with ap.init(job_type="here") as run:
        assert status(run.id) == "running"
    assert status(run.id) == "finished"


@pytest.mark.parametrize("value", ["soon", "0", "-5", "inf", "nan"])
def test_a_bad_heartbeat_setting_is_refused_by_name(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARTIFACT_PLUGINS_HEARTBEAT_SECONDS", value)
    expected = rf"ARTIFACT_PLUGINS_HEARTBEAT_SECONDS='{value}': invalid duration: expected a positive"
    with pytest.raises(InvalidConfigError, match=expected):
        ap.init(job_type="never")
    assert ap.Api().runs() == []  # nothing half-written
