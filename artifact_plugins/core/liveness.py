"""Whether the process that holds a run is still alive: who owns a run, and a lease it renews.

A run row says ``running`` from the moment a process opens it until that process finishes it.
A process that is killed (SIGKILL, the OOM killer, a lost machine) never gets to finish it, so
the row alone would say ``running`` forever. Two facts tell such a run apart:

* its **owner**: host name, boot id, PID namespace, PID and the process's start time. On the
  same host (and the same PID namespace), a reader can look the process up: gone, or a new
  process under a recycled PID, means the run crashed. Certain and immediate.
* its **lease**: a time the owner keeps pushing forward from a background thread while the run
  is open (:class:`Heartbeat`). Past it, a run whose owner cannot be looked up (another host or
  container) counts as crashed. A suspended laptop's runs look crashed until it wakes; a
  process that is alive on this host never does.

Nothing is written when a run is found dead: the status a reader sees is computed from the row,
so a run whose owner comes back (or finishes it) is right again at once.
"""

from __future__ import annotations

import atexit
import logging
import os
import socket
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Protocol

from .env import env_seconds

logger = logging.getLogger("artifact_plugins")

#: Renewals a lease outlasts: a run is declared dead only after this many missed beats
#: (generous, as the lease is compared with the reader's clock, not the writer's).
LEASE_BEATS = 5
CRASHED = "crashed"
RUNNING = "running"


def heartbeat_seconds() -> float:
    """Seconds between lease renewals: ``ARTIFACT_PLUGINS_HEARTBEAT_SECONDS``, default 60."""
    return env_seconds("HEARTBEAT_SECONDS", 60.0)


def lease_length() -> timedelta:
    """How far ahead each renewal pushes a run's lease."""
    return timedelta(seconds=heartbeat_seconds() * LEASE_BEATS)


@dataclass(frozen=True)
class Owner:
    """The identity of a process, precise enough to tell it from a later one with the same PID."""

    host: str
    boot_id: str
    pid_namespace: str
    pid: int
    started: str

    def to_text(self) -> str:
        """The form stored in the run row (``|``-separated; no field can contain ``|``)."""
        return "|".join((self.host, self.boot_id, self.pid_namespace, str(self.pid), self.started))

    @classmethod
    def from_text(cls, text: str) -> Owner | None:
        """The owner stored as ``text``; ``None`` for anything malformed (treated as unknown)."""
        parts = text.split("|")
        if len(parts) != 5 or not parts[3].isdigit():
            return None
        return cls(parts[0], parts[1], parts[2], int(parts[3]), parts[4])


def _read(path: str) -> str:
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            return f.read().strip()
    except OSError:
        return ""


def _start_time(pid: int) -> str | None:
    """The start time of process ``pid`` in clock ticks since boot (``None`` if there is no such
    process, or no ``/proc`` to ask)."""
    stat = _read(f"/proc/{pid}/stat")
    if not stat:
        return None
    # Field 22; the command name (field 2, in parentheses) may itself hold spaces and ')'.
    fields = stat.rpartition(")")[2].split()
    return fields[19] if len(fields) > 19 else None


def _pid_namespace() -> str:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""


@cache
def _owner_for(pid: int) -> Owner:
    return Owner(
        host=socket.gethostname().replace("|", "_")[:200],
        boot_id=_read("/proc/sys/kernel/random/boot_id"),
        pid_namespace=_pid_namespace(),
        pid=pid,
        started=_start_time(pid) or "",
    )


def current_owner() -> Owner:
    """This process (computed once per process; a forked child gets its own)."""
    return _owner_for(os.getpid())


def owner_gone(text: str | None) -> bool | None:
    """True if the process stored as ``text`` has certainly ended, False if it is certainly alive,
    ``None`` if this process cannot tell (another host, container or PID namespace, or no
    ``/proc``)."""
    owner = Owner.from_text(text) if text else None
    if owner is None or not owner.boot_id or not owner.started:
        return None
    me = current_owner()
    if (owner.host, owner.boot_id, owner.pid_namespace) != (me.host, me.boot_id, me.pid_namespace):
        return None
    return _start_time(owner.pid) != owner.started


def effective_status(status: str, owner: str | None, lease_until: datetime | None, at: datetime) -> str:
    """The status to show for a run row: ``crashed`` for a ``running`` run whose process is
    gone, or (when that cannot be looked up) whose lease ran out before ``at``."""
    if status != RUNNING:
        return status
    gone = owner_gone(owner)
    if gone or (gone is None and lease_until is not None and lease_until < at):
        return CRASHED
    return status


class LeaseStore(Protocol):
    """Where run leases are kept (the registry)."""

    def renew_leases(self, run_ids: Sequence[str]) -> None:
        """Push the leases of these open runs ahead."""


class Heartbeat:
    """Keeps the leases of this process's open runs from running out, and settles them at exit.

    One background thread per process, alive while at least one run is open. Each beat renews
    the leases of the open runs, one call per registry; failures are logged and retried at the
    next beat (a missed beat or four cost nothing). At interpreter exit every run still open is
    finished: ``failed`` if the program is dying of an unhandled exception, else ``finished``.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        # holder (a Run: several may hold one run id) -> (run id, its registry, finish)
        self._open: dict[object, tuple[str, LeaseStore, Callable[[str], None]]] = {}
        self._thread: threading.Thread | None = None
        self._every = 60.0
        self._exit_hook = False

    def add(self, holder: object, run_id: str, leases: LeaseStore, finish: Callable[[str], None]) -> None:
        """Track the open run ``run_id`` held by ``holder``, whose lease ``leases`` keeps;
        ``finish(status)`` closes it at exit."""
        with self._lock:
            self._open[holder] = (run_id, leases, finish)
            if not self._exit_hook:
                atexit.register(self._at_exit)
                self._exit_hook = True
            if self._thread is None or not self._thread.is_alive():
                self._every = heartbeat_seconds()
                self._thread = threading.Thread(target=self._beat, name="artifact_plugins-heartbeat", daemon=True)
                self._thread.start()

    def discard(self, holder: object) -> None:
        """Stop tracking the run ``holder`` holds (it was finished)."""
        with self._lock:
            self._open.pop(holder, None)
            if not self._open:
                self._wake.notify_all()

    def forget(self, leases: LeaseStore) -> None:
        """Stop tracking the runs whose leases ``leases`` keeps (that registry is being closed):
        no more renewals, and nothing to finish at exit."""
        with self._lock:
            for holder in [h for h, (_, kept_by, _) in self._open.items() if kept_by is leases]:
                del self._open[holder]
            if not self._open:
                self._wake.notify_all()

    def _beat(self) -> None:
        while True:
            with self._lock:
                self._wake.wait(self._every)
                if not self._open:
                    self._thread = None
                    return
                groups: dict[int, tuple[LeaseStore, set[str]]] = {}
                for run_id, leases, _ in self._open.values():
                    groups.setdefault(id(leases), (leases, set()))[1].add(run_id)
            for leases, ids in groups.values():
                try:
                    leases.renew_leases(sorted(ids))
                except Exception as exc:  # the registry may be briefly away; the lease has slack
                    logger.debug("could not renew the lease of runs %s: %s", ids, exc)

    def _at_exit(self) -> None:
        status = "failed" if getattr(sys, "last_value", None) is not None else "finished"
        with self._lock:
            pending = [finish for _, _, finish in self._open.values()]
        for finish in pending:
            try:
                finish(status)
            except Exception as exc:
                logger.debug("could not finish a run at exit: %s", exc)

    def _after_fork(self) -> None:
        """A forked child holds none of its parent's runs, and has no heartbeat thread (a fresh
        lock too: another thread may have held this one at the fork)."""
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._open = {}
        self._thread = None


HEARTBEAT = Heartbeat()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=HEARTBEAT._after_fork)
