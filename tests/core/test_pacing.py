"""Small local copies: serial while the disk keeps up, on threads while every call waits.

A slow file system is the fault injected here (a sleep in the call: a network file system or a
disk busy discarding waits outside the interpreter the same way); the store and the log are real.
"""

from __future__ import annotations

import contextlib
import gc
import signal
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from core_helpers import age_store

import artifact_plugins as ap
from artifact_plugins.core import pacing
from artifact_plugins.core.pacing import GROUP_ITEMS, PROBE_ITEMS, run_paced
from artifact_plugins.core.storage.local import LocalStore

PACED = "artifact-plugins-paced"


def _recording(delay: Callable[[int], float]) -> tuple[Callable[[int], None], dict[int, str]]:
    """A call that waits ``delay(item)`` seconds and records which thread ran each item."""
    ran: dict[int, str] = {}
    lock = threading.Lock()

    def fn(item: int) -> None:
        wait = delay(item)
        if wait:
            time.sleep(wait)
        with lock:
            assert item not in ran, f"item {item} ran twice"
            ran[item] = threading.current_thread().name

    return fn, ran


def test_quick_calls_run_in_order_on_the_calling_thread() -> None:
    fn, ran = _recording(lambda _: 0.0)
    run_paced(fn, range(5000), workers=4, slow_item_seconds=0.0005)  # far above a quick call, even under load
    assert list(ran) == list(range(5000))  # dicts keep insertion order
    assert set(ran.values()) == {threading.current_thread().name}


def test_slow_calls_overlap_on_threads() -> None:
    n = PROBE_ITEMS + GROUP_ITEMS  # one probe, then one group
    fn, ran = _recording(lambda _: 0.002)
    started = time.perf_counter()
    run_paced(fn, range(n), workers=4)
    elapsed = time.perf_counter() - started
    assert sorted(ran) == list(range(n))
    assert all(not ran[i].startswith(PACED) for i in range(PROBE_ITEMS))  # the probe is serial
    threads = {ran[i] for i in range(PROBE_ITEMS, n)}
    assert len(threads) == 4 and all(t.startswith(PACED) for t in threads)
    serial = n * 0.002
    assert elapsed < 0.6 * serial, f"{elapsed:.2f} s: the waits did not overlap (serially {serial:.2f} s)"


def test_threads_see_the_callers_context_variables() -> None:
    """Which credentials references are read with travels in a context variable: paced threads
    and parallel_map's workers must see the caller's value, not the default."""
    from contextvars import ContextVar

    from artifact_plugins.core.storage import parallel_map

    who: ContextVar[str] = ContextVar("who", default="nobody")
    seen: dict[int, tuple[str, str]] = {}

    def fn(item: int) -> None:
        time.sleep(0.002)
        seen[item] = (who.get(), threading.current_thread().name)

    token = who.set("caller")
    try:
        run_paced(fn, range(PROBE_ITEMS + GROUP_ITEMS), workers=4)
        assert any(t.startswith(PACED) for _, t in seen.values())  # the group did go on threads
        assert {v for v, _ in seen.values()} == {"caller"}
        seen.clear()
        parallel_map(fn, list(range(64)), 4)
        assert {v for v, _ in seen.values()} == {"caller"} and len(seen) == 64
    finally:
        who.reset(token)


def test_a_change_of_pace_is_followed_both_ways() -> None:
    group = PROBE_ITEMS + GROUP_ITEMS
    slow_from, fast_from = group, 2 * group

    fn, ran = _recording(lambda i: 0.002 if slow_from <= i < fast_from else 0.0)
    run_paced(fn, range(3 * group), workers=2, slow_item_seconds=0.0005)
    on_threads = {i for i, name in ran.items() if name.startswith(PACED)}
    assert not on_threads & set(range(slow_from))  # quick: all serial
    assert on_threads == set(range(slow_from + PROBE_ITEMS, fast_from))  # slow: all but its probe
    assert not on_threads & set(range(fast_from, 3 * group))  # quick again: serial again


def test_the_first_failure_stops_the_work_and_is_raised() -> None:
    calls: list[int] = []
    lock = threading.Lock()
    fail_at = PROBE_ITEMS + 10

    def fn(item: int) -> None:
        time.sleep(0.001)
        with lock:
            calls.append(item)
        if item == fail_at:
            raise OSError(28, "No space left on device")

    n = PROBE_ITEMS + 4 * GROUP_ITEMS
    with pytest.raises(OSError, match="No space left"):
        run_paced(fn, range(n), workers=4)
    assert fail_at in calls
    assert max(calls) < PROBE_ITEMS + GROUP_ITEMS  # no later group was started
    assert len(calls) < PROBE_ITEMS + GROUP_ITEMS // 2  # the other slices stopped early too
    assert not [t for t in threading.enumerate() if t.name.startswith(PACED)]  # and none is left running


@contextlib.contextmanager
def ctrl_c_reaches_the_main_thread() -> Iterator[Callable[[], None]]:
    """Yields a function that does to the waiting main thread what Ctrl-C does.

    Python's own Ctrl-C handler is installed meanwhile, whatever an earlier test or library left;
    and no garbage collection runs: a KeyboardInterrupt raised while the main thread runs a
    finalizer is swallowed as unraisable (this failed twice in full runs of the suite).
    """
    main = threading.main_thread().ident
    assert main is not None and main == threading.get_ident()
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    gc.collect()
    gc.disable()
    try:
        yield lambda: signal.pthread_kill(main, signal.SIGINT)
    finally:
        gc.enable()
        signal.signal(signal.SIGINT, previous)


def test_ctrl_c_while_threads_work_stops_them() -> None:
    calls: list[int] = []
    interrupt_at = PROBE_ITEMS + 5
    with ctrl_c_reaches_the_main_thread() as ctrl_c:

        def fn(item: int) -> None:
            time.sleep(0.001)
            calls.append(item)
            if item == interrupt_at:
                ctrl_c()

        with pytest.raises(KeyboardInterrupt):
            run_paced(fn, range(PROBE_ITEMS + GROUP_ITEMS), workers=4)
    done = len(calls)
    assert done < PROBE_ITEMS + GROUP_ITEMS // 2, f"{done} items ran after Ctrl-C"
    time.sleep(0.05)
    assert len(calls) == done  # nothing still running behind the caller's back


def test_ctrl_c_during_parallel_map_lets_the_running_calls_finish_and_starts_no_more() -> None:
    """The caller sees the KeyboardInterrupt only once every call already running has finished
    (it may then clean up what they wrote), and no call starts after it."""
    from artifact_plugins.core.storage import parallel_map

    started: list[int] = []
    finished: list[int] = []
    with ctrl_c_reaches_the_main_thread() as ctrl_c:

        def fn(item: int) -> None:
            started.append(item)
            if item == 20:
                ctrl_c()
            time.sleep(0.01)
            finished.append(item)

        with pytest.raises(KeyboardInterrupt):
            parallel_map(fn, list(range(1000)), 4)
    assert 20 in started and len(started) < 40, f"{len(started)} calls started"
    assert sorted(finished) == sorted(started)  # each call running at the interrupt had finished
    time.sleep(0.05)
    assert len(started) == len(finished)  # and none started behind the caller's back
    assert not [t for t in threading.enumerate() if t.name.startswith("artifact-plugins-") and t.is_alive()]


def test_an_add_a_log_and_a_download_on_a_slow_disk_place_small_files_on_threads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "src"
    for i in range(400):
        (src / f"d{i % 7}").mkdir(parents=True, exist_ok=True)
        (src / f"d{i % 7}" / f"f{i}.txt").write_bytes(f"file {i}\n".encode() * 50)
    placed_on: dict[str, set[str]] = {"put_bytes": set(), "put_file": set(), "get_file": set()}

    def slowed(name: str) -> None:
        real = getattr(LocalStore, name)

        def wrapper(self: LocalStore, *args: object, **kwargs: object) -> object:
            time.sleep(pacing.SLOW_ITEM_SECONDS * 3)
            placed_on[name].add(threading.current_thread().name)
            return real(self, *args, **kwargs)

        monkeypatch.setattr(LocalStore, name, wrapper)

    slowed("put_bytes")  # the blobs add_dir stores as it hashes
    slowed("put_file")
    slowed("get_file")
    art = ap.Artifact("slow-disk", "dataset")
    art.add_dir(src)
    assert len(list((tmp_path / "store" / "blobs").rglob("*.*"))) == 0  # no temp file left
    assert sum(1 for p in (tmp_path / "store" / "blobs").rglob("*") if p.is_file()) == 400
    age_store(tmp_path / "store")
    collected = ap.Api().gc(dry_run=False, grace=timedelta(0)).deleted_blobs
    assert len(collected) == 400  # so that the log has to send them all again
    with ap.init(job_type="producer") as run:
        version = run.log_artifact(art)
    out = version.download(tmp_path / "out")
    for name, threads in placed_on.items():
        assert any(t.startswith(PACED) for t in threads), f"{name} never ran on a paced thread: {threads}"
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*.txt")} == {
        p.relative_to(src): p.read_bytes() for p in src.rglob("*.txt")
    }
    assert ap.Api().artifact("slow-disk:v0").verify().ok


def test_parallel_map_keeps_the_order_and_stops_at_the_first_failure() -> None:
    """Results come back in the items' order; after a failure no new call starts, the calls
    running finish, and then the failure is raised."""
    from artifact_plugins.core.storage import parallel_map

    assert parallel_map(lambda x: x * x, list(range(500)), 8) == [x * x for x in range(500)]
    started: list[int] = []
    finished: list[int] = []

    def fn(item: int) -> None:
        started.append(item)
        if item == 10:
            raise ValueError("item ten")
        time.sleep(0.002)
        finished.append(item)

    with pytest.raises(ValueError, match="item ten"):
        parallel_map(fn, list(range(1000)), 4)
    assert 10 in started and len(started) < 100  # the items not yet started were left alone
    assert sorted(finished) == sorted(set(started) - {10})  # every other call started had finished
