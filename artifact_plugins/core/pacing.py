"""Running many small file operations one after another while they are quick, on threads while they wait."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextvars import copy_context
from typing import TypeVar

T = TypeVar("T")

#: Items timed one after another to decide how the next group runs.
PROBE_ITEMS = 64
#: Items run the chosen way before the next probe, so a disk that changes its pace is followed.
GROUP_ITEMS = 1024
#: A call slower than this on average is mostly spent outside the interpreter, in the file
#: system, where threads overlap. Storing a 4 KiB file took 45 µs on a settled local disk and
#: 367 µs right after a bulk delete (``benchmarks/bench_pacing.py``); a network file system
#: waits a round trip per create.
SLOW_ITEM_SECONDS = 100e-6


def run_paced(
    fn: Callable[[T], object], items: Sequence[T], workers: int, slow_item_seconds: float = SLOW_ITEM_SECONDS
) -> None:
    """Call ``fn`` on every item: serially while calls are quick, on ``workers`` threads while slow.

    Small local copies are system-call bound. While the disk keeps up, most of a call is the
    interpreter's and threads gain nothing: they hand the GIL back and forth. While each call
    waits on the file system, threads overlap the waits: storing 10,000 files of 4 KiB right
    after a bulk delete on ext4 with ``discard`` took 0.57x the serial time
    (``benchmarks/bench_pacing.py``). Every group of :data:`GROUP_ITEMS` items is preceded by
    :data:`PROBE_ITEMS` items timed serially, which decide how the group runs, so a disk that
    changes its pace is followed. Threads take contiguous slices (neighbouring items share
    directories).

    The first failure stops the work: items not yet started are not run, and the exception is
    raised once the running calls have returned.
    """
    n = len(items)
    if n <= PROBE_ITEMS or workers <= 1:
        for item in items:
            fn(item)
        return
    pool: ThreadPoolExecutor | None = None
    try:
        i = 0
        while i < n:
            probe_end = min(i + PROBE_ITEMS, n)
            started = time.perf_counter()
            for k in range(i, probe_end):
                fn(items[k])
            slow = (time.perf_counter() - started) / (probe_end - i) >= slow_item_seconds
            i, group_end = probe_end, min(probe_end + GROUP_ITEMS, n)
            if not slow:
                for k in range(i, group_end):
                    fn(items[k])
            elif group_end > i:
                if pool is None:
                    pool = ThreadPoolExecutor(workers, thread_name_prefix="artifact-plugins-paced")
                _in_slices(pool, fn, items, i, group_end, workers)
            i = group_end
    finally:
        if pool is not None:
            pool.shutdown(wait=True)


def _in_slices(
    pool: ThreadPoolExecutor, fn: Callable[[T], object], items: Sequence[T], start: int, end: int, workers: int
) -> None:
    """``fn`` over ``items[start:end]`` in ``workers`` contiguous slices, one per thread."""
    failed = threading.Event()

    def run(bounds: tuple[int, int]) -> None:
        for k in range(*bounds):
            if failed.is_set():
                return
            try:
                fn(items[k])
            except BaseException:
                failed.set()
                raise

    step = -(-(end - start) // workers)
    slices = [(a, min(a + step, end)) for a in range(start, end, step)]
    futures = [pool.submit(copy_context().run, run, s) for s in slices]  # the caller's context variables too
    try:
        errors = [f.exception() for f in futures]  # waits for every slice: none is left running
    except BaseException:  # Ctrl-C while waiting: the slices stop at their next item
        failed.set()
        raise
    for exc in errors:
        if exc is not None:
            raise exc
