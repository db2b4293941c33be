"""Sharing a batch of small-file work with a forked copy of the process, on a second core.

Hashing and storing a small file is mostly system calls and a little hashing, one file after
another: Python threads only hand the interpreter lock back and forth there (``pacing.py``),
but a second *process* runs them on a second core. A forked copy starts in about a millisecond
(no interpreter start-up, no imports) with everything the work needs already in memory, does
the second half of the items and leaves what the parent needs of each in a shared memory
map. The parent adopts those results; items the child did not finish (it failed on one, or
was killed) the parent does itself, so errors surface in the parent exactly as without the
child. ``benchmarks/bench_first_log.py`` measures what it buys.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import select
import signal
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")

#: Fewer items than this are not worth a fork (about a millisecond for a small process).
FORK_MIN_ITEMS = 2_000
#: A fork copies the parent's page tables: 15-22 ms per GiB resident on this project's benchmark
#: machines (``benchmarks/bench_fork.py``), while each small file handed to the child saved 13-31 µs
#: (``bench_first_log.py``, ``bench_download.py`` on tmpfs). A parent holding more resident memory
#: than this per item does the work alone.
RESIDENT_BYTES_PER_ITEM = 200 * 1024
#: A child that finishes no item for this long is killed, and the parent does what it left.
STALL_SECONDS = 60.0


def _resident_bytes() -> int | None:
    """This process's resident memory, from ``/proc`` (``None`` where it cannot be read)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def fork_pays(items: int) -> bool:
    """Whether :func:`run_forked` shares ``items`` items with a child: on Linux, with a second core
    for this process, at least :data:`FORK_MIN_ITEMS` items, and a parent small enough for them."""
    if sys.platform != "linux" or items < FORK_MIN_ITEMS or len(os.sched_getaffinity(0)) < 2:
        return False
    resident = _resident_bytes()
    return resident is not None and resident <= items * RESIDENT_BYTES_PER_ITEM


def run_forked(
    fn: Callable[[T], object],
    items: Sequence[T],
    *,
    export: Callable[[T], bytes],
    adopt: Callable[[T, bytes], None],
    width: int,
    run: Callable[[Callable[[T], object], Sequence[T]], None],
    child_fn: Callable[[T], object] | None = None,
    undo: Callable[[T], None] | None = None,
) -> None:
    """Call ``fn`` on every item, the second half in a forked child where :func:`fork_pays`.

    The child calls ``child_fn`` (default ``fn``) instead: what reports progress or logs must
    stay in the parent, whose logging threads and handlers a child does not have. Effects on
    memory stay in the process that made them, so the child hands back ``export(item)``
    (exactly ``width`` bytes) for each item it did, and the parent calls ``adopt(item,
    those_bytes)``, which does what ``fn`` does beyond ``child_fn``. ``run(fn, items)`` is how
    each process goes over its share (and the parent over items the child left undone):
    serially, or on threads while the disk is slow. An item the child was doing when it failed
    or was killed is done again by the parent, after ``undo(item)`` clears what the child may
    have left of it (a partly written file). Interrupted in the parent, the child is killed and
    waited for before the exception goes on.
    """
    if not fork_pays(len(items)):
        run(fn, items)
        return
    half = len(items) // 2
    mine, theirs = items[:half], items[half:]
    # One flag byte per item of the child's share (set once its result is in place), then the results.
    shared = mmap.mmap(-1, len(theirs) * (1 + width))
    try:
        pid = _fork()
    except OSError:  # out of memory or processes: no help to be had
        shared.close()
        run(fn, items)
        return
    if pid == 0:  # the child: its share, then out, never back into the caller's code
        try:
            # The parent's handlers (an orchestrator's, say) are not the child's to run: a signal
            # just ends it, and the parent does what it left.
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, signal.SIG_DFL)
            base, call = len(theirs), child_fn or fn

            def do(k: int) -> None:
                item = theirs[k]
                call(item)
                shared[base + k * width : base + (k + 1) * width] = export(item)
                shared[k] = 1

            run(do, range(len(theirs)))  # type: ignore[arg-type]  # T is the item type, here the index
        finally:
            os._exit(0)
    try:
        try:
            run(fn, mine)
        except BaseException:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
            raise
        finally:
            _wait(pid, lambda: shared[: len(theirs)].count(1))
        base, left = len(theirs), []
        for k, item in enumerate(theirs):
            if shared[k]:
                adopt(item, shared[base + k * width : base + (k + 1) * width])
            else:
                left.append(item)
    finally:
        shared.close()
    if left:
        if undo is not None:
            for item in left:
                undo(item)
        run(fn, left)


def _wait(pid: int, finished: Callable[[], int]) -> None:
    """Wait for the child ``pid`` to end; kill it if it finishes no item (``finished()`` does not
    grow) for :data:`STALL_SECONDS`: a child stuck for good (a lock some other thread of the
    parent held when it forked) then costs that long, not the whole run."""
    try:
        exited: int | None = os.pidfd_open(pid)  # readable once the child has exited
    except (AttributeError, OSError):  # before Linux 5.3: polled
        exited = None
    try:
        done, progressed = finished(), time.monotonic()
        while os.waitpid(pid, os.WNOHANG)[0] == 0:
            if exited is not None:
                select.select([exited], [], [], 0.5)
            else:
                time.sleep(0.005)
            if (now := finished()) > done:
                done, progressed = now, time.monotonic()
            elif time.monotonic() - progressed > STALL_SECONDS:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                return
    finally:
        if exited is not None:
            os.close(exited)


def _fork() -> int:
    """``os.fork()``, without Python 3.12's warning about forking a process that has threads: the
    child runs only the caller's ``fn`` (system calls and hashing, no locks other threads may
    hold) and leaves by ``os._exit``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return os.fork()
