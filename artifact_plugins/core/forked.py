"""Sharing a batch of small-file work with a forked copy of the process, on a second core.

Hashing and storing a small file is mostly system calls and a little hashing, one file after
another: Python threads only hand the interpreter lock back and forth there (``pacing.py``),
but a second *process* runs them on a second core. A forked copy starts in about a millisecond
(no interpreter start-up, no imports) with everything the work needs already in memory,
shares the items with the parent chunk by chunk (whoever is free takes the next) and leaves
what the parent needs of each item it did in a shared memory map. The parent adopts those
results; items the child did not finish (it failed on one, or was killed) the parent does
itself, so errors surface in the parent exactly as without the child.
``benchmarks/bench_first_log.py`` measures what it buys.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import select
import signal
import struct
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TypeVar

T = TypeVar("T")

#: Fewer items than this are not worth a fork (about a millisecond for a small process) where
#: each saves what hashing and storing a small file does (13-31 µs, see below).
FORK_MIN_ITEMS = 2_000
#: The same for work of a few microseconds an item: a ``stat`` (:func:`~.hashing.stat_files`).
#: The scan of 10,000 files in a fresh first-log process gained nothing from a child
#: (``bench_first_log.py``, tmpfs, taking turns); in one warm process (``bench_relog.py
#: --scan-only``, tmpfs) a child saved 6% of the scan at 10,000 files, 4% at 30,000, 18% at
#: 50,000 and 16% at 100,000.
STAT_FORK_MIN_ITEMS = 30_000
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


def fork_pays(items: int, min_items: int | None = None) -> bool:
    """Whether :func:`run_forked` shares ``items`` items with a child: on Linux, with a second core
    for this process, at least ``min_items`` items (default :data:`FORK_MIN_ITEMS`), and a
    parent small enough for them."""
    if min_items is None:
        min_items = FORK_MIN_ITEMS
    if sys.platform != "linux" or items < min_items or len(os.sched_getaffinity(0)) < 2:
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
    min_items: int | None = None,
) -> None:
    """Call ``fn`` on every item, sharing them with a forked child where :func:`fork_pays`.

    The items go in chunks of :data:`CHUNK_ITEMS`: the first half's queued for the parent, the
    second half's for the child, and each process, its own queue done, takes chunks from the
    other's: neither waits while the other has work left (a child that starts late or runs
    slower, as a forked copy touching the parent's pages does, is not waited for). The queues
    are pipes filled before the fork: the kernel hands each chunk to exactly one reader.

    The child calls ``child_fn`` (default ``fn``) instead: what reports progress or logs must
    stay in the parent, whose logging threads and handlers a child does not have. Effects on
    memory stay in the process that made them, so the child hands back ``export(item)``
    (exactly ``width`` bytes) for each item it did, and the parent calls ``adopt(item,
    those_bytes)``, which does what ``fn`` does beyond ``child_fn``. ``run(fn, chunk)`` is how
    each process goes over a chunk: serially, or on threads while the disk is slow. An item the
    child was doing when it failed or was killed is done again by the parent, after
    ``undo(item)`` clears what the child may have left of it (a partly written file); so are the
    items of the chunk it had not reached. Interrupted in the parent, the child is killed and
    waited for before the exception goes on. ``min_items`` is :func:`fork_pays`'.
    """
    n = len(items)
    if not fork_pays(n, min_items):
        run(fn, items)
        return
    step = max(CHUNK_ITEMS, -(-n // _MAX_CHUNKS))
    half = n // 2
    chunks = [range(s, min(s + step, half)) for s in range(0, half, step)]
    first = len(chunks)
    chunks += [range(s, min(s + step, n)) for s in range(half, n, step)]
    # One flag byte per item (set once the child's result is in place), then the results. The
    # map is only touched where the child writes: what it does not do costs no memory.
    shared = mmap.mmap(-1, n * (1 + width))
    queues: list[int] = []
    try:
        for queued in (range(first), range(first, len(chunks))):
            queues.append(_queue(queued))
        pid = _fork()
    except OSError:  # out of memory, processes or file descriptors: no help to be had
        for queue in queues:
            os.close(queue)
        shared.close()
        run(fn, items)
        return
    mine, theirs = queues
    if pid == 0:  # the child: chunks until none is left, then out, never back into the caller's code
        try:
            # The parent's handlers (an orchestrator's, say) are not the child's to run: a signal
            # just ends it, and the parent does what it left.
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, signal.SIG_DFL)
            call = child_fn or fn

            def do(k: int) -> None:
                call(items[k])
                shared[n + k * width : n + (k + 1) * width] = export(items[k])
                shared[k] = 1

            for c in _drain(theirs, mine):
                run(do, chunks[c])  # type: ignore[arg-type]  # T is the item type, here the index
        finally:
            os._exit(0)
    taken: list[int] = []
    try:
        try:
            for c in _drain(mine, theirs):
                taken.append(c)
                run(fn, [items[k] for k in chunks[c]])
        except BaseException:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
            raise
        finally:
            for queue in queues:
                os.close(queue)
            _wait(pid, lambda: shared[:n].count(1))
        done_here = set(taken)
        left = []
        for c, chunk in enumerate(chunks):
            if c in done_here:
                continue
            for k in chunk:
                if shared[k]:
                    adopt(items[k], shared[n + k * width : n + (k + 1) * width])
                else:
                    left.append(items[k])
    finally:
        shared.close()
    if left:
        if undo is not None:
            for item in left:
                undo(item)
        run(fn, left)


#: Items per chunk the parent and the child take from the queues (more for very many items):
#: about 3 ms of small files, the most either may be left working alone at the end.
CHUNK_ITEMS = 256
#: At most this many chunks (4 bytes each): a queue is written whole before anyone reads it, and
#: a pipe holds at least one page (4 KiB) even where the user's pipe buffers are capped.
_MAX_CHUNKS = 1_000
_CHUNK = struct.Struct("i")


def _queue(chunks: Iterable[int]) -> int:
    """A pipe holding ``chunks`` (indices) to be taken one by one; returns its read end."""
    read, write = os.pipe()
    try:
        os.write(write, b"".join(_CHUNK.pack(c) for c in chunks))
    except BaseException:
        os.close(read)
        raise
    finally:
        os.close(write)  # so a reader of an emptied queue sees its end
    return read


def _drain(*queues: int) -> Iterator[int]:
    """The chunk indices taken from ``queues``, each emptied in turn, as this process gets them."""
    for queue in queues:
        while len(got := os.read(queue, _CHUNK.size)) == _CHUNK.size:
            yield _CHUNK.unpack(got)[0]


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
