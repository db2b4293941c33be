"""Engines, transactions and schema migrations for the registry database.

SQLite (embedded default) runs in WAL mode; write transactions start with ``BEGIN IMMEDIATE``
so concurrent writers from many processes queue instead of failing half-way. PostgreSQL
(team mode) gets a pre-pinged pool and row locks taken by the callers.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError
from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_random_exponential

from ..errors import InvalidConfigError, RegistryError

try:
    import fcntl
except ImportError:  # Windows: SQLite's own locking only
    fcntl = None  # type: ignore[assignment]
from ..redact import redact_uri

MIGRATIONS = Path(__file__).with_name("migrations")
#: The newest migration shipped with this package. Kept as a constant so that opening an
#: up-to-date registry never imports Alembic (a test checks it matches the scripts).
HEAD_REVISION = "0005"
SQLITE_BUSY_TIMEOUT_S = 60


def create_registry_engine(url: str) -> Engine:
    """An engine for ``url`` configured for many concurrent processes."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        parsed = None
    if parsed is None or "@" in (parsed.host or ""):
        # An '@' left in the host means a password holding an unencoded '@': the driver would
        # name the rest of the password as the host it cannot resolve.
        raise InvalidConfigError(
            f"invalid registry URL {redact_uri(url)!r}: expected an SQLAlchemy URL such as "
            "'sqlite:///path/registry.db' or 'postgresql+psycopg://user:password@host/db', "
            "with '@', ':', '/', '?' and '#' in the user name or password percent-encoded (e.g. '@' as %40)"
        ) from None
    kwargs: dict[str, Any] = {}
    if parsed.get_backend_name() == "sqlite":
        db = parsed.database
        if db and db != ":memory:":
            Path(db).expanduser().parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False}
    else:
        kwargs.update(pool_pre_ping=True, pool_size=5, max_overflow=5, pool_recycle=1800)
        if parsed.get_backend_name() == "postgresql":
            kwargs["connect_args"] = {"options": "-c statement_timeout=60000 -c lock_timeout=30000"}
    try:
        engine = create_engine(parsed, **kwargs)
    except (NoSuchModuleError, ImportError) as exc:
        raise InvalidConfigError(
            f"registry URL {redact_uri(url)!r} needs a database driver that is not installed ({exc}); "
            "for PostgreSQL install artifact-plugins[postgres]"
        ) from None
    if engine.dialect.name == "sqlite":
        _configure_sqlite(engine)
    return engine


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}")
        _enable_wal(cur)
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")


def _database_locked(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and "database is locked" in str(exc)


def _enable_wal(cur: Any) -> None:
    """Switch the database to WAL, waiting out other processes that hold it.

    Changing the journal mode needs the database to itself, and SQLite answers "database is
    locked" at once instead of calling the busy handler: this happens whenever several processes
    open a new registry together while one of them is creating its tables. Once the file is in
    WAL mode (it stays so) the statement is a no-op that never waits.
    """
    for attempt in Retrying(
        retry=retry_if_exception(_database_locked),
        stop=stop_after_delay(SQLITE_BUSY_TIMEOUT_S),
        wait=wait_random_exponential(multiplier=0.005, max=0.1),
        reraise=True,
    ):
        with attempt:
            cur.execute("PRAGMA journal_mode=WAL")


@contextmanager
def transaction(engine: Engine, write: bool) -> Iterator[Connection]:
    """A connection inside one transaction; ``write=True`` takes SQLite's write lock up front."""
    if write and engine.dialect.name == "sqlite":
        with _sqlite_writer_turn(engine), engine.connect() as conn:
            conn = conn.execution_options(sqlite_begin="IMMEDIATE")
            with conn.begin():
                yield conn
        return
    with engine.connect() as conn, conn.begin():
        yield conn


@contextmanager
def _sqlite_writer_turn(engine: Engine) -> Iterator[None]:
    """Queue SQLite writers on an OS file lock next to the database.

    SQLite's own busy handler sleeps in steps of up to 100 ms, so under contention writers idle
    while the database is free. Waiting on a lock file instead hands the database over within
    about a millisecond. The wait is bounded: past it the caller gets a clear RegistryError.
    """
    db = engine.url.database
    if not db or db == ":memory:" or fcntl is None:
        yield
        return
    fd = os.open(f"{db}.writer-lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_S
        pause = 0.0005
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise RegistryError(
                        f"registry {db} stayed locked by another writer for {SQLITE_BUSY_TIMEOUT_S}s; "
                        "nothing was committed — retry, or look for a stuck process holding it"
                    ) from None
                time.sleep(pause)
                pause = min(pause * 2, 0.005)
        yield
    finally:
        os.close(fd)  # releases the lock


def _alembic_config(conn: Connection) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = conn
    return cfg


def head_revision() -> str:
    """The newest migration revision shipped with this version of the package."""
    from alembic.script import ScriptDirectory

    cfg = _alembic_config(None)  # type: ignore[arg-type]
    head = ScriptDirectory.from_config(cfg).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (``None`` for an empty database)."""
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply migrations up to ``revision``, holding a lock so that concurrent processes take turns."""
    from alembic import command

    with _migration_lock(engine), engine.connect() as conn:
        cfg = _alembic_config(conn)
        command.upgrade(cfg, revision)
        conn.commit()


@contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    if engine.dialect.name == "sqlite":
        from filelock import FileLock

        db = engine.url.database
        lock_path = f"{db}.migrate.lock" if db and db != ":memory:" else os.devnull + ".lock"
        with FileLock(lock_path, timeout=120):
            yield
    elif engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(727274)"))
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(727274)"))
                conn.commit()
    else:
        yield


def ensure_schema(engine: Engine) -> None:
    """Migrate an empty or older database to the head revision; refuse a newer one."""
    current = current_revision(engine)
    if current == HEAD_REVISION:
        return
    from alembic.script import ScriptDirectory

    known = {s.revision for s in ScriptDirectory.from_config(_alembic_config(None)).walk_revisions()}  # type: ignore[arg-type]
    if current is not None and current not in known:
        raise RegistryError(
            f"registry {redact_uri(str(engine.url))} is at schema revision {current}, which this version of "
            "artifact_plugins does not know; upgrade artifact_plugins"
        )
    upgrade(engine)
