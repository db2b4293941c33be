"""Registry faults: PostgreSQL connections killed mid-commit, SQLite held locked by other processes.

PostgreSQL: while a log's commit transaction sits at a chosen statement, another connection
terminates its backend (``pg_terminate_backend``, what a server restart or failover does to a
session). The registry must retry on a new connection and commit exactly one version, or give
up with a clear :class:`RegistryError` when every attempt dies — never lose or duplicate one.

SQLite: another process holds the database (``BEGIN EXCLUSIVE``) or is frozen (SIGSTOP) in the
middle of its own commit. Writers wait a bounded time (``SQLITE_BUSY_TIMEOUT_S``, shortened here)
and then fail clearly with nothing committed; once the lock is released everything completes.
"""

from __future__ import annotations

import os
import queue
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from rel_helpers import check_registry, download_and_compare, report, sqlite_integrity, write_tree
from sqlalchemy import event
from sqlalchemy.exc import OperationalError

import artifact_plugins as ap
from artifact_plugins.core import api as api_mod
from artifact_plugins.core.client import close_clients, get_client
from artifact_plugins.core.errors import AliasConflictError, RegistryError
from artifact_plugins.core.registry import Registry
from artifact_plugins.core.registry import db as db_mod
from artifact_plugins.core.registry import registry as registry_mod

#: Where in the commit transaction the backend dies (SQL prefixes; COMMIT is the commit itself).
KILL_POINTS = [
    "SELECT collections",  # the collection row lock (SELECT ... FOR UPDATE)
    "UPDATE collections",  # allocating the next index
    "INSERT INTO versions",
    "INSERT INTO aliases",
    "INSERT INTO alias_events",
    "INSERT INTO edges",
    "COMMIT",
    "ACK-LOST",  # the COMMIT went through, then the connection died before the client heard back
]
PG_TRIALS = 24


class BackendKiller:
    """Terminates the registry's PostgreSQL session from another connection at a chosen statement."""

    def __init__(self, admin_dsn: str, engine: Any) -> None:
        self.admin_dsn = admin_dsn
        self.target: str | None = None
        self.every_attempt = False
        self.kills = 0
        self.armed = False
        self._pids: queue.Queue[int | None] = queue.Queue()
        self._done: queue.Queue[int] = queue.Queue()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        event.listen(engine, "before_cursor_execute", self._before_execute)
        event.listen(engine, "commit", self._on_commit)
        self.engine = engine

    def _watch(self) -> None:
        with psycopg.connect(self.admin_dsn, autocommit=True) as admin:
            while (pid := self._pids.get()) is not None:
                admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
                for _ in range(200):  # until the server has really ended that session
                    row = admin.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()
                    if row is not None and row[0] == 0:
                        break
                    time.sleep(0.005)
                self._done.put(pid)

    def _kill(self, dbapi_conn: Any) -> None:
        self._pids.put(dbapi_conn.info.backend_pid)
        self._done.get(timeout=10)
        self.kills += 1
        if not self.every_attempt:
            self.armed = False

    def _before_execute(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if not self.armed or self.target in ("COMMIT", "ACK-LOST") or self.target is None:
            return
        sql = " ".join(statement.split())
        if sql.startswith("SELECT collections") and self.target == "SELECT collections":
            if "FOR UPDATE" not in sql:
                return
        elif not sql.startswith(self.target):
            return
        self._kill(conn.connection.dbapi_connection)

    def _on_commit(self, conn: Any) -> None:
        if self.armed and self.target == "COMMIT":
            self._kill(conn.connection.dbapi_connection)

    def close(self) -> None:
        self._pids.put(None)
        self._thread.join(5)
        event.remove(self.engine, "before_cursor_execute", self._before_execute)
        event.remove(self.engine, "commit", self._on_commit)


@pytest.fixture
def pg_registry(pg_db: tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, str]]:
    admin, url = pg_db
    # A password the trust-auth server ignores: it must never show up in an error.
    url = url.replace("postgres@", "postgres:planted-pg-password@")
    monkeypatch.setenv("ARTIFACT_PLUGINS_REGISTRY", url)
    close_clients()
    yield admin, url


def make_artifact(tmp_path: Path, i: int) -> tuple[ap.Artifact, dict[str, bytes]]:
    files = {"data.txt": f"content {i}\n".encode(), "shared.txt": b"the same in every version\n"}
    art = ap.Artifact("pg-victim", "dataset", metadata={"i": i})
    art.add_dir(write_tree(tmp_path / f"src-{i}", files))
    return art, files


def lose_acks(monkeypatch: pytest.MonkeyPatch, killer: BackendKiller) -> dict[str, Any]:
    """ACK-LOST: once ``armed`` is set, the next write transaction commits, then its session dies
    before the caller hears back (the caller sees a dropped connection and retries)."""
    ack_lost: dict[str, Any] = {"armed": False, "kills": 0}
    real_transaction = registry_mod.transaction

    @contextmanager
    def lossy_transaction(engine: Any, write: bool) -> Iterator[Any]:
        with real_transaction(engine, write) as conn:
            pid = conn.connection.dbapi_connection.info.backend_pid
            yield conn
        if write and ack_lost["armed"]:
            ack_lost["armed"] = False
            killer._pids.put(pid)
            killer._done.get(timeout=10)
            ack_lost["kills"] += 1
            lost = psycopg.OperationalError("server closed the connection unexpectedly (after COMMIT)")
            raise OperationalError("COMMIT", None, lost)

    monkeypatch.setattr(registry_mod, "transaction", lossy_transaction)
    return ack_lost


def test_postgres_backend_terminated_mid_commit(
    tmp_path: Path, pg_registry: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    admin, _url = pg_registry
    client = get_client()
    killer = BackendKiller(admin, client.registry.engine)
    ack_lost = lose_acks(monkeypatch, killer)
    rng = random.Random(77)
    contents: dict[str, dict[str, bytes]] = {}
    outcomes: list[tuple[str, bool]] = []
    try:
        for trial in range(PG_TRIALS):
            target = KILL_POINTS[trial % len(KILL_POINTS)]
            art, files = make_artifact(tmp_path, rng.randrange(10**9))
            contents[art.digest] = files
            with ap.init(job_type="pg-trial") as run:
                before = len(ap.Api().artifact_versions(None, "pg-victim"))
                if target == "ACK-LOST":
                    ack_lost["armed"] = True
                else:
                    killer.target, killer.armed = target, True
                v = run.log_artifact(art, aliases=[f"trial-{trial}"])
                killer.armed = False
                outcomes.append((target, v.version_index == before))
            assert v.digest == art.digest
    finally:
        killer.close()
    api = ap.Api()
    versions = check_registry(api)
    assert len(versions) == PG_TRIALS, "a version was lost or duplicated"
    verified = 0
    for trial, v in enumerate(versions):
        verified += download_and_compare(v, tmp_path / "check" / v.version, contents[v.digest])
        assert len([e for e in api._client.registry.edges(version_ids=[v.id]) if e.kind == "logged"]) == 1
        assert f"trial-{trial}" in v.aliases
        history = v.alias_history(f"trial-{trial}")
        assert len(history) == 1, history  # the alias moved once, even when the commit was retried
    assert all(created for _, created in outcomes)
    assert killer.kills + ack_lost["kills"] >= PG_TRIALS
    report(
        "test_postgres_backend_terminated_mid_commit",
        "PostgreSQL session terminated mid-commit (pg_terminate_backend)",
        trials=PG_TRIALS,
        faults_injected=killer.kills + ack_lost["kills"],
        kill_points=KILL_POINTS,
        versions_committed=len(versions),
        bytes_verified=verified,
    )


def test_compare_and_swap_whose_acknowledgement_was_lost_succeeds(
    tmp_path: Path, pg_registry: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A compare-and-swap commits, the connection dies before the answer arrives, the retry finds
    the alias already moved: that is its own move, reported once, not a conflict."""
    admin, _url = pg_registry
    killer = BackendKiller(admin, get_client().registry.engine)
    ack_lost = lose_acks(monkeypatch, killer)
    moves: list[tuple[str, int | None, int | None]] = []
    real_notify = api_mod.notify_alias_moves
    monkeypatch.setattr(api_mod, "notify_alias_moves", lambda c, v, m, r: (moves.extend(m), real_notify(c, v, m, r)))
    try:
        with ap.init(job_type="promote"):
            for i in range(3):
                ap.log_artifact(make_artifact(tmp_path, i)[0])
        api = ap.Api()
        api.set_alias("pg-victim:v0", "production", check=True)
        ack_lost["armed"] = True
        moved = api.set_alias("pg-victim:v1", "production", expected="v0")
        assert ack_lost["kills"] == 1
        assert moved.version == "v1" and "production" in moved.aliases
        assert [(m[0], m[1] == moved.id) for m in moves[-1:]] == [("production", True)]  # reported once
        history = api.alias_history("pg-victim", "production")
        assert [(h.previous, h.version) for h in history] == [(None, "v0"), ("v0", "v1")], history  # one move

        with pytest.raises(AliasConflictError):  # a real conflict still is one
            api.set_alias("pg-victim:v2", "production", expected="v0")

        ack_lost["armed"] = True
        api.remove_alias("pg-victim:v1", "production", expected="v1")
        assert ack_lost["kills"] == 2
        assert "production" not in api.artifact("pg-victim:v1").aliases
        assert len(api.alias_history("pg-victim", "production")) == 3
    finally:
        killer.close()
    report(
        "test_compare_and_swap_whose_acknowledgement_was_lost_succeeds",
        "alias compare-and-swap whose COMMIT acknowledgement was lost (PostgreSQL)",
        trials=2,
        faults_injected=ack_lost["kills"],
    )


def test_postgres_gone_for_good_fails_clearly(tmp_path: Path, pg_registry: tuple[str, str]) -> None:
    admin, _url = pg_registry
    art0, _ = make_artifact(tmp_path, 0)
    with ap.init(job_type="seed") as run:
        run.log_artifact(art0)
    client = get_client()
    killer = BackendKiller(admin, client.registry.engine)
    killer.target, killer.every_attempt, killer.armed = "INSERT INTO versions", True, True
    art, _ = make_artifact(tmp_path, 1)
    t0 = time.monotonic()
    try:
        with pytest.raises(RegistryError) as info, ap.init(job_type="doomed") as run:
            run.log_artifact(art)
    finally:
        killer.armed = False
        killer.close()
    elapsed = time.monotonic() - t0
    message = str(info.value)
    assert "planted-pg-password" not in message and "nothing was committed" in message, message
    assert elapsed < 60
    assert [v.version for v in ap.Api().artifact_versions(None, "pg-victim")] == ["v0"]
    with ap.init(job_type="after") as run:
        assert run.log_artifact(art).version == "v1"
    report(
        "test_postgres_gone_for_good_fails_clearly",
        "PostgreSQL session killed on every retry",
        trials=1,
        faults_injected=killer.kills,
        gave_up_after_seconds=round(elapsed, 2),
        error=message,
        bytes_verified=0,
    )


# -- SQLite ----------------------------------------------------------------------------------------

HOLDER = """
import sqlite3, sys, time
from pathlib import Path
conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
conn.execute("BEGIN EXCLUSIVE")
Path(sys.argv[2]).touch()
time.sleep(float(sys.argv[3]))
conn.execute("ROLLBACK")
"""

STUCK_WRITER = """
import os, sys, time
from pathlib import Path
import artifact_plugins as ap
from artifact_plugins.core.client import get_client
from sqlalchemy import event
from sqlalchemy.exc import OperationalError

art = ap.Artifact("locked", "dataset")
with art.new_file("data.txt") as f:
    f.write("written by the process that froze")
engine = get_client().registry.engine

@event.listens_for(engine, "before_cursor_execute")
def freeze(conn, cursor, statement, *args):
    if statement.lstrip().startswith("INSERT INTO versions"):
        Path(sys.argv[1]).touch()
        os.kill(os.getpid(), 19)  # SIGSTOP ourselves, holding the writer lock mid-transaction

with ap.init(job_type="stuck") as run:
    print(run.log_artifact(art).version)
"""


def wait_for(path: Path, proc: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"helper exited early: {proc.communicate()}")
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.01)


@pytest.fixture
def short_busy_timeout(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(db_mod, "SQLITE_BUSY_TIMEOUT_S", 2)
    close_clients()
    return 2


def test_sqlite_held_exclusive_by_another_process(tmp_path: Path, short_busy_timeout: int) -> None:
    db = tmp_path / "registry.db"
    art0 = ap.Artifact("locked", "dataset")
    with art0.new_file("a.txt") as f:
        f.write("before the lock")
    with ap.init(job_type="seed") as run:
        run.log_artifact(art0)
    art = ap.Artifact("locked", "dataset")
    with art.new_file("b.txt") as f:
        f.write("during the lock")
    with ap.init(job_type="blocked") as run:
        ready = tmp_path / "holder-ready"
        holder = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(db), str(ready), "30"], stdout=subprocess.PIPE, text=True
        )
        try:
            wait_for(ready, holder)
            t0 = time.monotonic()
            with pytest.raises(RegistryError) as info:
                run.log_artifact(art)  # blobs and manifest go out; the registry commit cannot
            waited = time.monotonic() - t0
        finally:
            holder.kill()
            holder.wait()
    message = str(info.value)
    assert "locked" in message and "nothing was committed" in message, message
    assert short_busy_timeout - 0.5 <= waited < short_busy_timeout + 5, waited
    sqlite_integrity(db)
    assert [v.version for v in ap.Api().artifact_versions(None, "locked")] == ["v0"]
    with ap.init(job_type="after") as run:
        assert run.log_artifact(art).version == "v1"
    assert len(check_registry(ap.Api())) == 2
    report(
        "test_sqlite_held_exclusive_by_another_process",
        "SQLite held by another process (BEGIN EXCLUSIVE) during commit",
        trials=1,
        faults_injected=1,
        waited_seconds=round(waited, 2),
        error=message,
        bytes_verified=0,
    )


def test_sqlite_writer_frozen_mid_commit(tmp_path: Path, short_busy_timeout: int) -> None:
    """A writer SIGSTOPped inside its commit transaction blocks others for a bounded time only;
    when it resumes, its commit completes and nothing is lost or duplicated."""
    Registry(ap.Api().settings.registry).engine.dispose()  # schema
    close_clients()
    frozen = tmp_path / "frozen"
    env = {**os.environ}
    stuck = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(STUCK_WRITER), str(frozen)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(frozen, stuck)
        time.sleep(0.1)
        art = ap.Artifact("locked", "dataset")
        with art.new_file("data.txt") as f:
            f.write("written by the process that waited")
        t0 = time.monotonic()
        with pytest.raises(RegistryError) as info, ap.init(job_type="waiting") as run:
            run.log_artifact(art)
        waited = time.monotonic() - t0
        message = str(info.value)
        assert "nothing was committed" in message, message
        assert waited < short_busy_timeout + 5, waited
    finally:
        stuck.send_signal(signal.SIGCONT)
        out, err = stuck.communicate(timeout=60)
    assert stuck.returncode == 0, err
    assert out.strip() == "v0"
    with ap.init(job_type="after") as run:
        assert run.log_artifact(art).version == "v1"
    versions = check_registry(ap.Api())
    assert [v.version for v in versions] == ["v0", "v1"]
    sqlite_integrity(tmp_path / "registry.db")
    report(
        "test_sqlite_writer_frozen_mid_commit",
        "SQLite writer frozen (SIGSTOP) inside its commit transaction",
        trials=1,
        faults_injected=1,
        waited_seconds=round(waited, 2),
        error=message,
        bytes_verified=0,
    )


def test_sqlite_lock_released_within_the_timeout_is_waited_for(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(db_mod, "SQLITE_BUSY_TIMEOUT_S", 10)
    close_clients()
    db = tmp_path / "registry.db"
    ap.Api()
    ready = tmp_path / "holder-ready"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(db), str(ready), "1.5"], text=True)
    try:
        wait_for(ready, holder)
        art = ap.Artifact("locked", "dataset")
        with art.new_file("c.txt") as f:
            f.write("patient")
        t0 = time.monotonic()
        with ap.init(job_type="patient") as run:
            assert run.log_artifact(art).version == "v0"
        waited = time.monotonic() - t0
    finally:
        holder.wait(30)
    assert 1.0 <= waited < 10
    report(
        "test_sqlite_lock_released_within_the_timeout_is_waited_for",
        "SQLite lock held briefly: the writer waits and succeeds",
        trials=1,
        faults_injected=1,
        waited_seconds=round(waited, 2),
        bytes_verified=0,
    )
