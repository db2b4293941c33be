"""Registry operations: the only place that reads or writes artifact metadata.

Every write is one short transaction (never held open around blob transfers). Version
allocation, dedup and alias moves are serialised per collection: SQLite writers queue on
``BEGIN IMMEDIATE``; PostgreSQL writers lock the collection row. Unique constraints back both,
and transactions that lose a race on them are retried.
"""

from __future__ import annotations

import itertools
import json
import time
import uuid
from collections.abc import Callable, Collection, Iterable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Select, and_, delete, func, insert, or_, select, text, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import IntegrityError as SAIntegrityError
from tenacity import retry, retry_if_exception, stop_after_attempt, wait_random_exponential
from typing_extensions import Unpack

from ..errors import (
    AliasConflictError,
    AliasedVersionError,
    ArtifactNotFoundError,
    ProtectedAliasError,
    RegistryError,
    RunNotFoundError,
    StoreTurnLostError,
    TypeMismatchError,
)
from ..liveness import RUNNING, current_owner, effective_status, heartbeat_seconds, lease_length, owner_gone
from ..naming import LATEST, Ref
from ..redact import redact_text, redact_uri
from . import tables as tb
from .db import create_registry_engine, ensure_schema, transaction
from .records import (
    AliasEventRecord,
    CollectionRecord,
    CommitFields,
    CommitResult,
    EdgeRecord,
    RunRecord,
    StoreFence,
    VersionRecord,
    as_utc,
    now,
    utc,
)

T = TypeVar("T")
COMMITTED = "committed"
DELETED = "deleted"


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, SAIntegrityError):
        return True  # lost a race creating a project/collection/run: re-read and go again
    if isinstance(exc, OperationalError | DBAPIError):
        if exc.connection_invalidated:
            return True  # the pool has dropped that connection; the next attempt gets a fresh one
        msg = str(exc.orig).lower() if getattr(exc, "orig", None) else str(exc).lower()
        return any(
            s in msg
            for s in (
                "deadlock",
                "could not serialize",
                "connection",
                "server closed",
                "terminat",
                "sending query failed",
                "another command is already in progress",
            )
        )
    return False


_retry = retry(
    retry=retry_if_exception(_retryable),
    stop=stop_after_attempt(8),
    wait=wait_random_exponential(multiplier=0.05, max=2),
    reraise=True,
)


def _retried() -> Callable[[], bool]:
    """Called at the start of each attempt of one transaction: False on the first, True after."""
    attempts = itertools.count()
    return lambda: next(attempts) > 0


class Registry:
    """Metadata of projects, collections, versions, aliases, runs and lineage edges."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = create_registry_engine(url)
        try:
            ensure_schema(self.engine)
        except DBAPIError as exc:  # never echo the statement, its parameters or the URL unredacted
            raise RegistryError(f"cannot open registry {redact_uri(url)}: {redact_text(str(exc.orig))}") from None

    # -- plumbing ---------------------------------------------------------------------------

    def _run(self, write: bool, fn: Callable[[Connection], T]) -> T:
        @_retry
        def attempt() -> T:
            with transaction(self.engine, write) as conn:
                return fn(conn)

        try:
            return attempt()
        except DBAPIError as exc:  # never echo the statement or its parameters
            raise RegistryError(
                f"registry {redact_uri(self.url)} failed: {type(exc.orig).__name__}: {redact_text(str(exc.orig))}; "
                "nothing was committed, retry the operation"
            ) from None

    def read(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` in a read transaction."""
        return self._run(False, fn)

    def write(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` in a write transaction, retried on races and transient failures."""
        return self._run(True, fn)

    # -- projects, collections ----------------------------------------------------------------

    @staticmethod
    def _project_id(conn: Connection, entity: str, project: str, create: bool) -> int | None:
        pid = conn.execute(
            select(tb.Project.id).where(tb.Project.entity == entity, tb.Project.name == project)
        ).scalar()
        if pid is None and create:
            pid = conn.execute(
                insert(tb.Project).values(entity=entity, name=project, created_at=now())
            ).inserted_primary_key[0]  # type: ignore[index]
        return pid

    @staticmethod
    def _lock_collection(conn: Connection, collection_id: int) -> None:
        """Serialise writers of one collection (SQLite already holds the database write lock)."""
        if conn.dialect.name == "postgresql":
            conn.execute(select(tb.Collection.id).where(tb.Collection.id == collection_id).with_for_update())

    @staticmethod
    def _collection(conn: Connection, project_id: int, name: str, lock: bool = False) -> Any:
        q = select(tb.Collection.__table__).where(tb.Collection.project_id == project_id, tb.Collection.name == name)
        if lock and conn.dialect.name == "postgresql":
            q = q.with_for_update()
        return conn.execute(q).first()

    def _collection_for_write(self, conn: Connection, entity: str, project: str, name: str, type_: str) -> Any:
        pid = self._project_id(conn, entity, project, create=True)
        assert pid is not None
        row = self._collection(conn, pid, name, lock=True)
        if row is None:
            conn.execute(
                insert(tb.Collection).values(project_id=pid, name=name, type=type_, next_index=0, created_at=now())
            )
            row = self._collection(conn, pid, name, lock=True)
        if row.type != type_:
            raise TypeMismatchError(
                f"artifact {entity}/{project}/{name} already exists with type {row.type!r}, not {type_!r}; "
                "use another name or the existing type"
            )
        return row

    # -- versions ------------------------------------------------------------------------------

    def _version_query(self) -> Any:
        v, c, p = tb.Version, tb.Collection, tb.Project
        return (
            select(v, c.name, c.type, p.entity, p.name.label("project"))
            .join(c, c.id == v.collection_id)
            .join(p, p.id == c.project_id)
        )

    def _records(self, conn: Connection, rows: Sequence[Any]) -> list[VersionRecord]:
        if not rows:
            return []
        ids = [r.id for r in rows]
        aliases: dict[int, list[str]] = {}
        tags: dict[int, list[str]] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            for vid, alias in conn.execute(
                select(tb.Alias.version_id, tb.Alias.alias)
                .where(tb.Alias.version_id.in_(chunk))
                .order_by(tb.Alias.alias)
            ):
                aliases.setdefault(vid, []).append(alias)
            for vid, tag in conn.execute(
                select(tb.Tag.version_id, tb.Tag.tag).where(tb.Tag.version_id.in_(chunk)).order_by(tb.Tag.tag)
            ):
                tags.setdefault(vid, []).append(tag)
        return [
            VersionRecord(
                id=r.id,
                entity=r.entity,
                project=r.project,
                name=r.name,
                type=r.type,
                index=r.index,
                digest=r.digest,
                manifest_key=r.manifest_key,
                size=r.size,
                file_count=r.file_count,
                state=r.state,
                description=r.description,
                metadata=dict(r.metadata or {}),
                created_at=as_utc(r.created_at),
                ttl_seconds=r.ttl_seconds,
                created_by=r.created_by,
                collection_id=r.collection_id,
                aliases=_alias_order(aliases.get(r.id, [])),
                tags=tuple(sorted(tags.get(r.id, []))),  # code point order, whatever the database's collation
            )
            for r in rows
        ]

    def _version_by_id(self, conn: Connection, version_id: int) -> VersionRecord:
        rows = conn.execute(self._version_query().where(tb.Version.id == version_id)).all()
        if not rows:
            raise ArtifactNotFoundError(f"version id {version_id} does not exist")
        return self._records(conn, rows)[0]

    def version(self, version_id: int) -> VersionRecord:
        """A version by its registry id."""
        return self.read(lambda conn: self._version_by_id(conn, version_id))

    def _move_alias(
        self,
        conn: Connection,
        collection_id: int,
        alias: str,
        version_id: int | None,
        run_id: str | None,
        guarded: bool = True,
    ) -> tuple[str, int | None, int | None] | None:
        """Point ``alias`` at ``version_id`` (``None`` removes it) and record the move.

        ``guarded`` moves refuse to change a protected alias that already points somewhere;
        compare-and-swap and forced moves pass ``guarded=False``.
        """
        current = conn.execute(
            select(tb.Alias.version_id).where(tb.Alias.collection_id == collection_id, tb.Alias.alias == alias)
        ).scalar()
        if current == version_id:
            return None
        # ``latest`` is never protected (the API refuses to): no look-up on every new version.
        if guarded and current is not None and alias != LATEST and self._is_protected(conn, collection_id, alias):
            raise ProtectedAliasError(
                f"alias {alias!r} is protected in this project and points at v{self._index_of(conn, current)}; "
                "move it with set_alias(..., expected='vN') or force=True"
            )
        at = now()
        where = (tb.Alias.collection_id == collection_id, tb.Alias.alias == alias)
        if current is not None and version_id is not None:
            conn.execute(update(tb.Alias).where(*where).values(version_id=version_id, updated_at=at))
        elif current is not None:
            conn.execute(delete(tb.Alias).where(*where))
        elif version_id is not None:
            conn.execute(
                insert(tb.Alias).values(collection_id=collection_id, alias=alias, version_id=version_id, updated_at=at)
            )
        conn.execute(
            insert(tb.AliasEvent).values(
                collection_id=collection_id,
                alias=alias,
                version_id=version_id,
                previous_version_id=current,
                at=at,
                run_id=run_id,
            )
        )
        return alias, version_id, current

    @staticmethod
    def _is_protected(conn: Connection, collection_id: int, alias: str) -> bool:
        return (
            conn.execute(
                select(tb.ProtectedAlias.alias)
                .join(tb.Collection, tb.Collection.project_id == tb.ProtectedAlias.project_id)
                .where(tb.Collection.id == collection_id, tb.ProtectedAlias.alias == alias)
            ).first()
            is not None
        )

    @staticmethod
    def _index_of(conn: Connection, version_id: int) -> int | None:
        return conn.execute(select(tb.Version.index).where(tb.Version.id == version_id)).scalar()

    def protect_alias(self, entity: str, project: str, alias: str, protected: bool = True) -> None:
        """Mark ``alias`` protected (or not) in every collection of a project."""

        def fn(conn: Connection) -> None:
            pid = self._project_id(conn, entity, project, create=True)
            conn.execute(
                delete(tb.ProtectedAlias).where(tb.ProtectedAlias.project_id == pid, tb.ProtectedAlias.alias == alias)
            )
            if protected:
                conn.execute(insert(tb.ProtectedAlias).values(project_id=pid, alias=alias))

        self.write(fn)

    def protected_aliases(self, entity: str, project: str) -> list[str]:
        """The protected aliases of a project."""

        def fn(conn: Connection) -> list[str]:
            return list(
                conn.execute(
                    select(tb.ProtectedAlias.alias)
                    .join(tb.Project, tb.Project.id == tb.ProtectedAlias.project_id)
                    .where(tb.Project.entity == entity, tb.Project.name == project)
                    .order_by(tb.ProtectedAlias.alias)
                ).scalars()
            )

        return self.read(fn)

    def _newest_committed(self, conn: Connection, collection_id: int) -> int | None:
        return conn.execute(
            select(tb.Version.id)
            .where(tb.Version.collection_id == collection_id, tb.Version.state == COMMITTED)
            .order_by(tb.Version.index.desc())
            .limit(1)
        ).scalar()

    def committed_digests(self, digests: Collection[str]) -> set[str]:
        """Which of ``digests`` some committed version (of any collection) has."""
        return self.read(lambda conn: _committed_digests(conn, digests))

    def store_view(self, held: Collection[str] = ()) -> tuple[StoreFence | None, set[str]]:
        """What a commit may count on, read in one transaction before it asks the store which
        blobs it has: a :class:`StoreFence` on the store's generation, and which of the ``held``
        digests are of committed versions (whose blobs no collection deletes).

        The fence is ``None`` while a deleting collection holds a live turn: the commit must then
        take a turn of its own (:meth:`acquire_store_lock`), which waits for the collection. With
        the fence, the commit takes none: a collection that goes ahead before the commit is
        recorded changes the generation, and the recording transaction, finding it changed,
        records nothing (:meth:`hold_fence`); the commit then stores again under a turn.
        """

        def fn(conn: Connection) -> tuple[StoreFence | None, set[str]]:
            generation = _generation(conn, while_idle=True)
            fence = None if generation is None else StoreFence(generation=generation)
            return fence, _committed_digests(conn, held) if held else set()

        return self.read(fn)

    def commit_version(self, *, fence: StoreFence | None = None, **fields: Unpack[CommitFields]) -> CommitResult:
        """Step (3) of the commit protocol: dedup or allocate the next index, move aliases, record lineage.

        ``fields`` are the :class:`CommitFields` of the version. ``fence``, under which steps (1)
        and (2) ran, must still hold: the transaction checks it first (:meth:`hold_fence`).
        """
        result = self._commit_version(**fields, reuse_only=False, fence=fence)
        assert result is not None
        return result

    def reuse_version(self, **fields: Unpack[CommitFields]) -> CommitResult | None:
        """Like :meth:`commit_version`, but only reuses a committed version with the same digest;
        when there is none (it was deleted meanwhile), writes nothing and returns ``None``."""
        return self._commit_version(**fields, reuse_only=True)

    def _commit_version(
        self,
        *,
        entity: str,
        project: str,
        name: str,
        type: str,
        digest: str,
        manifest_key: str,
        size: int,
        file_count: int,
        description: str | None,
        metadata: dict[str, Any],
        aliases: Iterable[str],
        tags: Iterable[str],
        run_id: str | None,
        ttl_seconds: int | None = None,
        reuse_only: bool,
        fence: StoreFence | None = None,
    ) -> CommitResult | None:
        aliases = [a for a in dict.fromkeys(aliases) if a != LATEST]
        tags = list(dict.fromkeys(tags))

        def fn(conn: Connection) -> CommitResult | None:
            if fence is not None:
                self.hold_fence(conn, fence)
            coll = self._collection_for_write(conn, entity, project, name, type)
            existing = conn.execute(
                select(tb.Version.id)
                .where(tb.Version.collection_id == coll.id, tb.Version.digest == digest, tb.Version.state == COMMITTED)
                .order_by(tb.Version.index.desc())
            ).scalar()
            if existing is None and reuse_only:
                return None
            created = existing is None
            moves = []
            if created:
                index = coll.next_index
                conn.execute(update(tb.Collection).where(tb.Collection.id == coll.id).values(next_index=index + 1))
                row: dict[str, Any] = dict(
                    collection_id=coll.id,
                    index=index,
                    digest=digest,
                    manifest_key=manifest_key,
                    size=size,
                    file_count=file_count,
                    state=COMMITTED,
                    description=description,
                    metadata=metadata,
                    created_at=now(),
                    ttl_seconds=ttl_seconds,
                    created_by=run_id,
                )
                vid = conn.execute(insert(tb.Version).values(**row)).inserted_primary_key[0]  # type: ignore[index]
                moves.append(self._move_alias(conn, coll.id, LATEST, vid, run_id))
            else:
                vid = existing
                if description is not None or metadata:
                    values: dict[str, Any] = {}
                    if description is not None:
                        values["description"] = description
                    if metadata:
                        current_meta = conn.execute(select(tb.Version.metadata_).where(tb.Version.id == vid)).scalar()
                        values["metadata"] = {**(current_meta or {}), **metadata}
                    conn.execute(update(tb.Version).where(tb.Version.id == vid).values(**values))
            for alias in aliases:
                moves.append(self._move_alias(conn, coll.id, alias, vid, run_id))
            self._add_tags(conn, vid, tags)
            if run_id is not None:
                self._edge(conn, run_id, vid, "logged", new_version=created)
            if created:  # everything it holds was just written here: not read back (three queries)
                record = VersionRecord(
                    **{
                        **row,
                        "metadata": json.loads(json.dumps(metadata)),  # a copy, as a read gives
                        "created_at": as_utc(row["created_at"]),
                    },
                    id=vid,
                    entity=entity,
                    project=project,
                    name=name,
                    type=type,
                    aliases=_alias_order([LATEST, *aliases]),
                    tags=tuple(sorted(tags)),
                )
            else:
                record = self._version_by_id(conn, vid)
            return CommitResult(record, created, [mv for mv in moves if mv])

        return self.write(fn)

    @staticmethod
    def _add_tags(conn: Connection, version_id: int, tags: Collection[str]) -> None:
        if not tags:
            return
        have = set(conn.execute(select(tb.Tag.tag).where(tb.Tag.version_id == version_id)).scalars())
        for t in tags:
            if t not in have:
                conn.execute(insert(tb.Tag).values(version_id=version_id, tag=t))

    @staticmethod
    def _edge(conn: Connection, run_id: str, version_id: int, kind: str, new_version: bool = False) -> None:
        """Record that run ``run_id`` used or logged the version, once. ``new_version``: the
        version was inserted in this transaction, so no edge names it yet (no look-up)."""
        if not new_version:
            edge = (tb.Edge.run_id == run_id, tb.Edge.version_id == version_id, tb.Edge.kind == kind)
            if conn.execute(select(tb.Edge.run_id).where(*edge)).first() is not None:
                return
        conn.execute(insert(tb.Edge).values(run_id=run_id, version_id=version_id, kind=kind, at=now()))

    def resolve(self, ref: Ref, entity: str, project: str) -> VersionRecord:
        """The committed version a ref points at; the error names the ref and the nearest versions."""
        ent, proj = ref.entity or entity, ref.project or project

        def fn(conn: Connection) -> VersionRecord:
            q = self._version_query().where(
                tb.Project.entity == ent,
                tb.Project.name == proj,
                tb.Collection.name == ref.name,
                tb.Version.state == COMMITTED,
            )
            if ref.digest is not None:
                q = q.where(tb.Version.digest == ref.digest).order_by(tb.Version.index.desc()).limit(1)
            elif ref.version is not None:
                q = q.where(tb.Version.index == ref.version)
            else:
                q = q.join(tb.Alias, and_(tb.Alias.version_id == tb.Version.id, tb.Alias.alias == ref.alias))
            rows = conn.execute(q).all()
            if not rows:
                raise ArtifactNotFoundError(self._not_found_message(conn, ref, ent, proj))
            return self._records(conn, rows)[0]

        return self.read(fn)

    def _not_found_message(self, conn: Connection, ref: Ref, entity: str, project: str) -> str:
        qualified = f"{entity}/{project}/{ref.name}{ref.selector}"
        rows = conn.execute(
            select(tb.Version.index, tb.Alias.alias)
            .join(tb.Collection, tb.Collection.id == tb.Version.collection_id)
            .join(tb.Project, tb.Project.id == tb.Collection.project_id)
            .outerjoin(tb.Alias, tb.Alias.version_id == tb.Version.id)
            .where(
                tb.Project.entity == entity,
                tb.Project.name == project,
                tb.Collection.name == ref.name,
                tb.Version.state == COMMITTED,
            )
            .order_by(tb.Version.index.desc())
        ).all()
        if not rows:
            names = (
                conn.execute(
                    select(tb.Collection.name)
                    .join(tb.Project, tb.Project.id == tb.Collection.project_id)
                    .where(tb.Project.entity == entity, tb.Project.name == project)
                    .order_by(tb.Collection.name)
                )
                .scalars()
                .all()
            )
            close = sorted(names, key=lambda n: _distance(n, ref.name))[:5]
            hint = (
                f"; artifacts in {entity}/{project}: {', '.join(close)}" if close else f"; {entity}/{project} is empty"
            )
            return f"artifact {qualified} not found: no artifact named {ref.name!r}{hint}"
        versions: dict[int, list[str]] = {}
        for idx, alias in rows:
            versions.setdefault(idx, [])
            if alias:
                versions[idx].append(alias)
        target = ref.version if ref.version is not None else max(versions)
        nearest = sorted(versions, key=lambda i: (abs(i - target), -i))[:5]
        shown = ", ".join(
            f"v{i}" + (f" ({', '.join(sorted(versions[i]))})" if versions[i] else "") for i in sorted(nearest)
        )
        return f"artifact {qualified} not found; nearest existing versions: {shown}"

    def versions(
        self,
        entity: str,
        project: str,
        name: str,
        include_deleted: bool = False,
        *,
        limit: int | None = None,
        offset: int = 0,
        newest_first: bool = False,
    ) -> list[VersionRecord]:
        """Versions of a collection, oldest first (or newest first), optionally one page of them."""

        def fn(conn: Connection) -> list[VersionRecord]:
            q = self._version_query().where(
                tb.Project.entity == entity, tb.Project.name == project, tb.Collection.name == name
            )
            if not include_deleted:
                q = q.where(tb.Version.state == COMMITTED)
            q = q.order_by(tb.Version.index.desc() if newest_first else tb.Version.index)
            if offset:
                q = q.offset(offset)
            if limit is not None:
                q = q.limit(limit)
            return self._records(conn, conn.execute(q).all())

        return self.read(fn)

    def collection(self, entity: str, project: str, name: str) -> CollectionRecord | None:
        """One collection with its version count and newest index, or ``None``."""
        found = self.collections(entity, project, None, name=name)
        return found[0] if found else None

    def collection_aliases(self, collection_id: int) -> dict[str, str]:
        """Every alias of a collection and the version (``vN``) it points at."""

        def fn(conn: Connection) -> dict[str, str]:
            return {
                alias: f"v{index}"
                for alias, index in conn.execute(
                    select(tb.Alias.alias, tb.Version.index)
                    .join(tb.Version, tb.Version.id == tb.Alias.version_id)
                    .where(tb.Alias.collection_id == collection_id)
                    .order_by(tb.Alias.alias)
                )
            }

        return self.read(fn)

    def versions_by_ids(self, ids: Iterable[int]) -> list[VersionRecord]:
        """Versions by registry id (missing ids are skipped)."""
        ids = list(ids)

        def fn(conn: Connection) -> list[VersionRecord]:
            out: list[Any] = []
            for start in range(0, len(ids), 500):
                out += conn.execute(self._version_query().where(tb.Version.id.in_(ids[start : start + 500]))).all()
            return self._records(conn, out)

        return self.read(fn) if ids else []

    def collections(
        self, entity: str, project: str | None, type: str | None, *, name: str | None = None
    ) -> list[CollectionRecord]:
        """Collections of a project (or of every project of the entity), optionally of one type."""

        def fn(conn: Connection) -> list[CollectionRecord]:
            c, p, v = tb.Collection, tb.Project, tb.Version
            counts = (
                select(v.collection_id, func.count().label("n"), func.max(v.index).label("latest"))
                .where(
                    v.state == COMMITTED, *([v.collection_id.in_(select(c.id).where(c.name == name))] if name else [])
                )
                .group_by(v.collection_id)
                .subquery()
            )
            q = (
                select(c, p.entity, p.name.label("project"), counts.c.n, counts.c.latest)
                .join(p, p.id == c.project_id)
                .outerjoin(counts, counts.c.collection_id == c.id)
                .where(p.entity == entity)
                .order_by(p.name, c.type, c.name)
            )
            if project is not None:
                q = q.where(p.name == project)
            if type is not None:
                q = q.where(c.type == type)
            if name is not None:
                q = q.where(c.name == name)
            return [
                CollectionRecord(
                    id=r.id,
                    entity=r.entity,
                    project=r.project,
                    name=r.name,
                    type=r.type,
                    description=r.description,
                    created_at=r.created_at if r.created_at.tzinfo else as_utc(r.created_at),
                    version_count=r.n or 0,
                    latest_index=r.latest,
                )
                for r in conn.execute(q)
            ]

        return self.read(fn)

    def projects(self) -> list[tuple[str, str]]:
        """Every (entity, project)."""
        return self.read(
            lambda conn: [
                (r[0], r[1]) for r in conn.execute(select(tb.Project.entity, tb.Project.name).order_by(tb.Project.id))
            ]
        )

    # -- aliases -------------------------------------------------------------------------------

    def set_alias(
        self,
        version: VersionRecord,
        alias: str,
        *,
        expected: str | None = None,
        check: bool = False,
        force: bool = False,
        run_id: str | None = None,
    ) -> tuple[str, int | None, int | None] | None:
        """Point ``alias`` at ``version``; with ``check``, only if it currently points at ``expected``."""

        retried = _retried()

        def fn(conn: Connection) -> tuple[str, int | None, int | None] | None:
            self._lock_collection(conn, version.collection_id)
            state = conn.execute(select(tb.Version.state).where(tb.Version.id == version.id)).scalar()
            if state != COMMITTED:
                raise ArtifactNotFoundError(f"{version.collection}:{version.version} was deleted")
            if check:
                coll_id, target = version.collection_id, version.id
                own = self._expect(conn, coll_id, version.collection, alias, expected, target, retried())
                if own is not None:
                    return own
            return self._move_alias(
                conn, version.collection_id, alias, version.id, run_id, guarded=not (check or force)
            )

        return self.write(fn)

    def remove_alias(
        self,
        collection_id: int,
        collection: str,
        alias: str,
        *,
        expected: str | None = None,
        check: bool = False,
        force: bool = False,
        run_id: str | None = None,
    ) -> tuple[str, int | None, int | None] | None:
        """Remove ``alias`` from a collection (compare-and-swap with ``check``)."""

        retried = _retried()

        def fn(conn: Connection) -> tuple[str, int | None, int | None] | None:
            self._lock_collection(conn, collection_id)
            if check:
                own = self._expect(conn, collection_id, collection, alias, expected, None, retried())
                if own is not None:
                    return own
            return self._move_alias(conn, collection_id, alias, None, run_id, guarded=not (check or force))

        return self.write(fn)

    def _expect(
        self,
        conn: Connection,
        collection_id: int,
        collection: str,
        alias: str,
        expected: str | None,
        target_id: int | None,
        retry: bool,
    ) -> tuple[str, int | None, int | None] | None:
        """The compare of compare-and-swap: fail unless ``alias`` points at ``expected`` (``None``:
        nowhere). On a ``retry``, a swap to ``target_id`` that an earlier attempt already made is
        returned instead (see :meth:`_own_move`); ``None`` means: go ahead and move."""
        if retry:
            own = self._own_move(conn, collection_id, alias, target_id, expected)
            if own is not None:
                return own
        current = self._alias_target_index(conn, collection_id, alias)
        found = f"v{current}" if current is not None else None
        if found != expected:
            raise AliasConflictError(alias, found, expected, collection)
        return None

    def _own_move(
        self, conn: Connection, collection_id: int, alias: str, target_id: int | None, expected: str | None
    ) -> tuple[str, int | None, int | None] | None:
        """On a retry of a compare-and-swap: the move it asked for (``expected`` -> ``target_id``),
        if that is the alias's last move. The earlier attempt committed it and only the
        acknowledgement was lost; its compare would now fail against its own swap."""
        last = conn.execute(
            select(tb.AliasEvent.version_id, tb.AliasEvent.previous_version_id)
            .where(tb.AliasEvent.collection_id == collection_id, tb.AliasEvent.alias == alias)
            .order_by(tb.AliasEvent.id.desc())
            .limit(1)
        ).first()
        if last is None or last.version_id != target_id:
            return None
        previous = self._index_of(conn, last.previous_version_id) if last.previous_version_id is not None else None
        if (f"v{previous}" if previous is not None else None) != expected:
            return None
        return alias, target_id, last.previous_version_id

    @staticmethod
    def _alias_target_index(conn: Connection, collection_id: int, alias: str) -> int | None:
        return conn.execute(
            select(tb.Version.index)
            .join(tb.Alias, tb.Alias.version_id == tb.Version.id)
            .where(tb.Alias.collection_id == collection_id, tb.Alias.alias == alias)
        ).scalar()

    def alias_history(
        self, collection_id: int, alias: str | None = None, version_id: int | None = None
    ) -> list[AliasEventRecord]:
        """Every move of ``alias`` (or of every alias) in a collection, oldest first; with
        ``version_id`` only the moves onto or away from that version."""

        def fn(conn: Connection) -> list[AliasEventRecord]:
            new, old = tb.Version.aliased(), tb.Version.aliased()
            e = tb.AliasEvent
            q = (
                select(e.alias, new.index, old.index, e.at, e.run_id)
                .outerjoin(new, new.id == e.version_id)
                .outerjoin(old, old.id == e.previous_version_id)
                .where(e.collection_id == collection_id)
            )
            if alias is not None:
                q = q.where(e.alias == alias)
            if version_id is not None:
                q = q.where(or_(e.version_id == version_id, e.previous_version_id == version_id))
            return [
                AliasEventRecord(
                    alias=name,
                    version=f"v{to}" if to is not None else None,
                    previous=f"v{frm}" if frm is not None else None,
                    at=as_utc(at),
                    run_id=run_id,
                )
                for name, to, frm, at, run_id in conn.execute(q.order_by(e.at, e.id))
            ]

        return self.read(fn)

    # -- editing and deleting versions -----------------------------------------------------------

    def update_version(
        self,
        version: VersionRecord,
        *,
        description: str | None,
        metadata: dict[str, Any],
        aliases: Sequence[str],
        tags: Sequence[str],
        run_id: str | None = None,
        ttl_seconds: int | None = None,
    ) -> tuple[VersionRecord, list[tuple[str, int | None, int | None]]]:
        """Persist description, metadata, TTL, aliases and tags of a version.

        ``aliases`` is the full list the caller wants; only its differences from the list the
        caller loaded (``version.aliases``) are applied.
        """

        def fn(conn: Connection) -> tuple[VersionRecord, list[tuple[str, int | None, int | None]]]:
            self._lock_collection(conn, version.collection_id)
            state = conn.execute(select(tb.Version.state).where(tb.Version.id == version.id)).scalar()
            if state != COMMITTED:
                raise ArtifactNotFoundError(f"{version.collection}:{version.version} was deleted; it cannot be edited")
            conn.execute(
                update(tb.Version)
                .where(tb.Version.id == version.id)
                .values(description=description, metadata=metadata, ttl_seconds=ttl_seconds)
            )
            # Apply only the caller's own changes relative to what it loaded, so a stale object
            # never undoes alias moves made by others since.
            loaded, wanted = set(version.aliases), set(aliases)
            current = set(conn.execute(select(tb.Alias.alias).where(tb.Alias.version_id == version.id)).scalars())
            moves = []
            for a in sorted((loaded - wanted) & current - {LATEST}):
                moves.append(self._move_alias(conn, version.collection_id, a, None, run_id))
            for a in sorted(wanted - loaded - {LATEST}):
                moves.append(self._move_alias(conn, version.collection_id, a, version.id, run_id))
            conn.execute(delete(tb.Tag).where(tb.Tag.version_id == version.id))
            self._add_tags(conn, version.id, tags)
            return self._version_by_id(conn, version.id), [mv for mv in moves if mv]

        return self.write(fn)

    def delete_version(self, version: VersionRecord, delete_aliases: bool) -> None:
        """Mark a version deleted (its blobs are reclaimed only by gc). ``latest`` falls back."""

        def fn(conn: Connection) -> None:
            self._lock_collection(conn, version.collection_id)
            aliases = list(conn.execute(select(tb.Alias.alias).where(tb.Alias.version_id == version.id)).scalars())
            user_aliases = [a for a in aliases if a != LATEST]
            if user_aliases and not delete_aliases:
                raise AliasedVersionError(
                    f"{version.collection}:{version.version} still has aliases {sorted(user_aliases)}; "
                    "pass delete_aliases=True to remove them with it"
                )
            for a in aliases:
                self._move_alias(conn, version.collection_id, a, None, None)
            conn.execute(update(tb.Version).where(tb.Version.id == version.id).values(state=DELETED))
            if LATEST in aliases:
                newest = self._newest_committed(conn, version.collection_id)
                if newest is not None:
                    self._move_alias(conn, version.collection_id, LATEST, newest, None)

        self.write(fn)

    # -- runs and lineage -----------------------------------------------------------------------

    def ensure_run(
        self,
        *,
        run_key: str,
        orchestrator: str,
        job_type: str,
        name: str,
        group: str | None,
        entity: str,
        project: str,
        url: str | None,
        group_url: str | None,
        step: dict[str, Any],
        group_name: str | None = None,
        refresh_identity: bool = False,
    ) -> RunRecord:
        """The run with ``run_key``, created on first use (one row per step execution); a
        later bind reopens it and records ``step`` as the step's latest attempt.

        With ``refresh_identity`` an existing run takes the given job type, name and group
        (an explicit ``init(job_type=...)`` inside a step wins over the step's defaults).
        """

        held = {"owner": current_owner().to_text(), "lease_until": now() + lease_length()}

        def fn(conn: Connection) -> RunRecord:
            row = conn.execute(select(tb.Run.id).where(tb.Run.run_key == run_key)).scalar()
            if row is None:
                pid = self._project_id(conn, entity, project, create=True)
                rid, started = str(uuid.uuid4()), now()
                conn.execute(
                    insert(tb.Run).values(
                        id=rid,
                        run_key=run_key,
                        orchestrator=orchestrator,
                        job_type=job_type,
                        name=name,
                        group_key=group,
                        group_name=group_name,
                        project_id=pid,
                        url=url,
                        group_url=group_url,
                        step=step,
                        status=RUNNING,
                        started_at=started,
                        **held,
                    )
                )
                # Everything it holds was just written here: not read back (a joined query).
                return RunRecord(
                    id=rid,
                    run_key=run_key,
                    orchestrator=orchestrator,
                    job_type=job_type,
                    name=name,
                    group=group,
                    group_name=group_name,
                    entity=entity,
                    project=project,
                    url=url,
                    group_url=group_url,
                    step=json.loads(json.dumps(step)),  # a copy, as a read gives
                    status=RUNNING,
                    started_at=as_utc(started),
                    finished_at=None,
                )
            else:
                rid = row
                # The step's latest attempt describes it (a retried Prefect task run keeps its id).
                values: dict[Any, Any] = {tb.Run.status: RUNNING, tb.Run.finished_at: None, tb.Run.step: step, **held}
                if refresh_identity:
                    values.update({tb.Run.job_type: job_type, tb.Run.name: name, tb.Run.group: group})
                conn.execute(update(tb.Run).where(tb.Run.id == rid).values(values))
            return self._run_by_id(conn, rid)

        return self.write(fn)

    def renew_leases(self, run_ids: Sequence[str]) -> None:
        """Push the lease of these open runs, and of the store turns they hold, a
        :func:`~..liveness.lease_length` ahead (this process still holds them)."""
        until = now() + lease_length()

        def fn(conn: Connection) -> None:
            ids = list(run_ids)
            conn.execute(update(tb.Run).where(tb.Run.id.in_(ids), tb.Run.status == RUNNING).values(lease_until=until))
            conn.execute(update(tb.StoreLock).where(tb.StoreLock.run_id.in_(ids)).values(lease_until=until))

        self.write(fn)

    def finish_run_by_key(self, run_key: str, status: str) -> bool:
        """Record the outcome of the step run ``run_key`` if this registry has it; True if it did."""

        def fn(conn: Connection) -> bool:
            done = conn.execute(
                update(tb.Run).where(tb.Run.run_key == run_key).values(status=status, finished_at=now())
            )
            return bool(done.rowcount)

        return self.write(fn)

    def finish_run(self, run_id: str, status: str, *, if_running: bool = False) -> None:
        """Record the end of a run; with ``if_running``, only if nothing else has ended it yet
        (an orchestrator adapter may have recorded the step's outcome)."""
        query = update(tb.Run).where(tb.Run.id == run_id)
        if if_running:
            query = query.where(tb.Run.status == RUNNING)
        self.write(lambda conn: conn.execute(query.values(status=status, finished_at=now())))

    def _run_query(self) -> Any:
        return select(tb.Run, tb.Project.entity, tb.Project.name.label("project")).join(
            tb.Project, tb.Project.id == tb.Run.project_id
        )

    @staticmethod
    def _run_record(r: Any) -> RunRecord:
        return RunRecord(
            id=r.id,
            run_key=r.run_key,
            orchestrator=r.orchestrator,
            job_type=r.job_type,
            name=r.name,
            group=r.group_key,
            group_name=r.group_name,
            entity=r.entity,
            project=r.project,
            url=r.url,
            group_url=r.group_url,
            step=dict(r.step or {}),
            status=effective_status(r.status, r.owner, utc(r.lease_until), now()),
            started_at=as_utc(r.started_at),
            finished_at=utc(r.finished_at),
        )

    def _run_by_id(self, conn: Connection, run_id: str) -> RunRecord:
        r = conn.execute(self._run_query().where(tb.Run.id == run_id)).first()
        if r is None:
            raise RunNotFoundError(f"run {run_id!r} does not exist")
        return self._run_record(r)

    def run(self, run_id: str) -> RunRecord:
        """A run by id."""
        return self.read(lambda conn: self._run_by_id(conn, run_id))

    def runs(
        self,
        *,
        entity: str | None = None,
        project: str | None = None,
        group: str | None = None,
        orchestrator: str | None = None,
        job_type: str | None = None,
        ids: Iterable[str] | None = None,
        limit: int | None = None,
    ) -> list[RunRecord]:
        """Runs matching every given filter, newest first."""

        def fn(conn: Connection) -> list[RunRecord]:
            q = self._run_query()
            if entity is not None:
                q = q.where(tb.Project.entity == entity)
            if project is not None:
                q = q.where(tb.Project.name == project)
            if group is not None:
                q = q.where(tb.Run.group == group)
            if orchestrator is not None:
                q = q.where(tb.Run.orchestrator == orchestrator)
            if job_type is not None:
                q = q.where(tb.Run.job_type == job_type)
            if ids is not None:
                q = q.where(tb.Run.id.in_(list(ids)))
            q = q.order_by(tb.Run.started_at.desc())
            if limit is not None:
                q = q.limit(limit)
            return [self._run_record(r) for r in conn.execute(q)]

        return self.read(fn)

    def record_use(self, run_id: str, version_id: int) -> None:
        """Record that a run used a version."""
        self.write(lambda conn: self._edge(conn, run_id, version_id, "used"))

    def edges(self, *, run_ids: Iterable[str] = (), version_ids: Iterable[int] = ()) -> list[EdgeRecord]:
        """Every edge touching the given runs or versions."""
        run_ids, version_ids = list(run_ids), list(version_ids)

        def fn(conn: Connection) -> list[EdgeRecord]:
            conds = []
            if run_ids:
                conds.append(tb.Edge.run_id.in_(run_ids))
            if version_ids:
                conds.append(tb.Edge.version_id.in_(version_ids))
            if not conds:
                return []
            return [
                EdgeRecord(e.run_id, e.version_id, e.kind, as_utc(e.at))
                for e in conn.execute(select(tb.Edge).where(or_(*conds)).order_by(tb.Edge.at))
            ]

        return self.read(fn)

    def group_run_ids(self, groups: Iterable[str]) -> dict[str, list[str]]:
        """Run ids per group key."""
        groups = [g for g in set(groups) if g]

        def fn(conn: Connection) -> dict[str, list[str]]:
            out: dict[str, list[str]] = {}
            for rid, g in conn.execute(select(tb.Run.id, tb.Run.group).where(tb.Run.group.in_(groups))):
                if g is not None:
                    out.setdefault(g, []).append(rid)
            return out

        return self.read(fn) if groups else {}

    # -- distributed parts ------------------------------------------------------------------------

    def add_part(
        self,
        *,
        entity: str,
        project: str,
        name: str,
        type: str,
        distributed_id: str,
        digest: str,
        manifest_key: str,
        run_id: str | None,
        part_key: str | None = None,
        fence: StoreFence | None = None,
    ) -> None:
        """Record one upserted part: idempotent per content, and with ``part_key`` a retried
        writer's new part replaces the open part its earlier attempt left. ``fence``: as for
        :meth:`commit_version`."""

        def fn(conn: Connection) -> None:
            if fence is not None:
                self.hold_fence(conn, fence)
            coll = self._collection_for_write(conn, entity, project, name, type)
            where = (tb.Part.collection_id == coll.id, tb.Part.distributed_id == distributed_id)
            if part_key is not None:
                conn.execute(
                    delete(tb.Part).where(
                        *where, tb.Part.part_key == part_key, tb.Part.state == "open", tb.Part.digest != digest
                    )
                )
            exists = conn.execute(select(tb.Part.id).where(*where, tb.Part.digest == digest)).first()
            if exists is None:
                conn.execute(
                    insert(tb.Part).values(
                        collection_id=coll.id,
                        distributed_id=distributed_id,
                        digest=digest,
                        manifest_key=manifest_key,
                        run_id=run_id,
                        part_key=part_key,
                        state="open",
                        created_at=now(),
                    )
                )

        self.write(fn)

    def _parts_collection(self, conn: Connection, entity: str, project: str, name: str) -> Any:
        pid = self._project_id(conn, entity, project, create=False)
        return self._collection(conn, pid, name) if pid is not None else None

    def parts(self, entity: str, project: str, name: str, distributed_id: str) -> list[tuple[str, str, str | None]]:
        """(digest, manifest key, run id) of every open part of a distributed artifact."""

        def fn(conn: Connection) -> list[tuple[str, str, str | None]]:
            coll = self._parts_collection(conn, entity, project, name)
            if coll is None:
                return []
            return [
                (r.digest, r.manifest_key, r.run_id)
                for r in conn.execute(
                    select(tb.Part)
                    .where(
                        tb.Part.collection_id == coll.id,
                        tb.Part.distributed_id == distributed_id,
                        tb.Part.state == "open",
                    )
                    .order_by(tb.Part.id)
                )
            ]

        return self.read(fn)

    def close_parts(
        self, entity: str, project: str, name: str, distributed_id: str, version_id: int, writers: Iterable[str] = ()
    ) -> None:
        """Mark a distributed artifact's open parts as merged into ``version_id``; the ``writers``
        (runs whose parts were merged) are recorded as having logged it, so lineage reaches them."""

        def fn(conn: Connection) -> None:
            for run_id in dict.fromkeys(writers):
                self._edge(conn, run_id, version_id, "logged")
            coll = self._parts_collection(conn, entity, project, name)
            if coll is not None:
                conn.execute(
                    update(tb.Part)
                    .where(
                        tb.Part.collection_id == coll.id,
                        tb.Part.distributed_id == distributed_id,
                        tb.Part.state == "open",
                    )
                    .values(state="finished", version_id=version_id)
                )

        self.write(fn)

    def finished_version(self, entity: str, project: str, name: str, distributed_id: str) -> VersionRecord | None:
        """The version an earlier finish of ``distributed_id`` produced, if any (for retried finishes)."""

        def fn(conn: Connection) -> VersionRecord | None:
            coll = self._parts_collection(conn, entity, project, name)
            if coll is None:
                return None
            vid = conn.execute(
                select(tb.Part.version_id)
                .where(
                    tb.Part.collection_id == coll.id,
                    tb.Part.distributed_id == distributed_id,
                    tb.Part.version_id.is_not(None),
                )
                .order_by(tb.Part.id.desc())
                .limit(1)
            ).scalar()
            return self._version_by_id(conn, vid) if vid is not None else None

        return self.read(fn)

    def set_retention(self, collection_id: int, keep_last: int | None, keep_within_seconds: int | None) -> None:
        """Set (or, with both ``None``, clear) a collection's retention policy."""

        def fn(conn: Connection) -> None:
            conn.execute(delete(tb.RetentionPolicy).where(tb.RetentionPolicy.collection_id == collection_id))
            if keep_last is not None or keep_within_seconds is not None:
                conn.execute(
                    insert(tb.RetentionPolicy).values(
                        collection_id=collection_id,
                        keep_last=keep_last,
                        keep_within_seconds=keep_within_seconds,
                        updated_at=now(),
                    )
                )

        self.write(fn)

    def retention_policies(self) -> dict[int, tuple[int | None, int | None]]:
        """(keep_last, keep_within_seconds) per collection id that has a policy."""
        return self.read(
            lambda conn: {
                r.collection_id: (r.keep_last, r.keep_within_seconds) for r in conn.execute(select(tb.RetentionPolicy))
            }
        )

    def referenced_keys(self) -> set[str]:
        """Manifest keys of committed versions and open parts (gc's mark set root)."""

        def fn(conn: Connection) -> set[str]:
            keys = set(conn.execute(select(tb.Version.manifest_key).where(tb.Version.state == COMMITTED)).scalars())
            keys |= set(conn.execute(select(tb.Part.manifest_key).where(tb.Part.state == "open")).scalars())
            return keys

        return self.read(fn)

    # -- store turns: commits share the store, a deleting garbage collection has it alone ---------

    def acquire_store_lock(
        self,
        kind: str,
        run_id: str | None = None,
        *,
        on_wait: Callable[[str], None] | None = None,
        poll_seconds: float = 0.1,
    ) -> int:
        """Take a turn at the store; return its id once every earlier turn it must not overlap
        has ended. A ``"commit"`` turn (from before a log asks the store which blobs it has until
        its version is recorded; taken only where :meth:`store_view`'s fence cannot serve: a
        collection was deleting, or went ahead of the commit) waits for earlier ``"gc"`` turns;
        a ``"gc"`` turn (a collection that deletes) waits for every earlier turn. A turn whose
        process is gone or whose lease ran out no longer counts; a commit's lease is renewed with
        its run's (``run_id``). ``on_wait`` is told once what the turn waits for. End it with
        :meth:`release_store_lock`.
        """
        if kind not in ("commit", "gc"):
            raise ValueError(f"store turn kind {kind!r}: expected 'commit' or 'gc'")
        owner = current_owner().to_text()

        def take(conn: Connection) -> tuple[int, list[str]]:
            if conn.dialect.name == "postgresql":
                # Turns are ordered by id: ids must become visible in the order they are drawn.
                conn.execute(text("LOCK TABLE store_locks IN SHARE ROW EXCLUSIVE MODE"))
            moment = now()
            if kind == "gc":
                # Rows of turns long over (their process died) are cleared here only: commits,
                # many more, skip a statement (a dead commit's row never blocks a commit).
                conn.execute(delete(tb.StoreLock).where(tb.StoreLock.lease_until < moment - lease_length()))
            row = insert(tb.StoreLock).values(
                kind=kind, owner=owner, run_id=run_id, started_at=moment, lease_until=moment + lease_length()
            )
            turn = int(conn.execute(row.returning(tb.StoreLock.id)).scalar_one())
            return turn, _waits_for(conn, turn, kind)

        turn, blocking = self.write(take)  # the common case, nothing to wait for: one transaction
        # A collection ends the turns it goes ahead of in the transaction that decides to: so a
        # commit held up past its lease finds its turn gone when it records (see hold_fence).
        check = self.write if kind == "gc" else self.read
        try:
            told, renew_at = False, time.monotonic() + heartbeat_seconds()
            while blocking:
                if on_wait is not None and not told:
                    on_wait(" and ".join(dict.fromkeys(blocking)))
                    told = True
                if run_id is None and time.monotonic() >= renew_at:
                    self.renew_store_lock(turn)
                    renew_at = time.monotonic() + heartbeat_seconds()
                time.sleep(poll_seconds)
                blocking = check(lambda conn: _waits_for(conn, turn, kind))
        except BaseException:
            self.release_store_lock(turn)
            raise
        return turn

    def store_generation(self, *, while_idle: bool = False) -> int | None:
        """How many deleting garbage collections have gone ahead at the store so far.

        Each adds one in the transaction in which it goes ahead, before deleting anything. So a
        blob seen present while the count was ``n`` is still present when, in a later commit
        turn, the count is still ``n``, provided no collection was under way when ``n`` was
        read: ``while_idle`` returns ``None`` then (a collection holds a live turn).
        """
        return self.read(lambda conn: _generation(conn, while_idle))

    def renew_store_lock(self, turn: int) -> bool:
        """Push store turn ``turn``'s lease ahead; False if it had already run out (others may have
        gone ahead: a collection must then stop deleting)."""
        moment = now()

        def fn(conn: Connection) -> bool:
            held = conn.execute(
                update(tb.StoreLock)
                .where(tb.StoreLock.id == turn, tb.StoreLock.lease_until > moment)
                .values(lease_until=moment + lease_length())
            )
            return bool(held.rowcount)

        return self.write(fn)

    @staticmethod
    def hold_fence(conn: Connection, fence: StoreFence) -> None:
        """In the transaction that records a commit: check that ``fence`` still holds, ending its
        turn if it has one. Raises :class:`StoreTurnLostError` if a collection went ahead
        meanwhile (the blobs the commit found present may be gone, so it must not record
        anything): it ended the turn (the commit was held up past the turn's lease), or changed
        the generation; or a version of ``fence.held`` is no longer committed. Checking in the
        recording transaction leaves no moment for a collection between the two: the row this
        locks makes a collection deciding to go ahead wait for the transaction, and see the
        version as a root after it; a turn ended here saves the commit a transaction (if the
        transaction fails, the turn is still held and the caller ends it with
        :meth:`release_store_lock`)."""
        if fence.turn is not None:
            lost = not conn.execute(delete(tb.StoreLock).where(tb.StoreLock.id == fence.turn)).rowcount
        else:
            read = select(tb.StoreGeneration.value).where(tb.StoreGeneration.id == 1).with_for_update(read=True)
            lost = conn.execute(read).scalar_one() != fence.generation
        if not lost and fence.held:
            lost = len(_committed_digests(conn, fence.held)) < len(fence.held)
        if lost:
            raise StoreTurnLostError(
                "a garbage collection went ahead while this commit was storing its blobs; nothing was recorded, "
                "log the artifact again"
            )

    def release_store_lock(self, turn: int) -> None:
        """End store turn ``turn`` (a no-op if it already ended)."""
        self.write(lambda conn: conn.execute(delete(tb.StoreLock).where(tb.StoreLock.id == turn)))


def _alias_order(aliases: Iterable[str]) -> tuple[str, ...]:
    """A version's aliases as records list them: ``latest`` first, then the others sorted."""
    return tuple(sorted(aliases, key=lambda a: (a != LATEST, a)))


def _select_turns() -> Select[Any]:
    """The store turns' rows, as :func:`_live_turns` reads them."""
    return select(tb.StoreLock.id, tb.StoreLock.kind, tb.StoreLock.owner, tb.StoreLock.lease_until)


def _live_turns(conn: Connection, query: Select[Any]) -> tuple[list[str], list[int]]:
    """The turns ``query`` selects that are live (described), and the ids of those that are over
    (lease run out, process gone)."""
    moment = now()
    live: list[str] = []
    over: list[int] = []
    for id_, other, owner, until in conn.execute(query.order_by(tb.StoreLock.id)).all():
        if _live(owner, until, moment):
            live.append("garbage collection" if other == "gc" else "a commit in progress")
        else:
            over.append(id_)
    return live, over


def _live(owner: str, lease_until: datetime, moment: datetime) -> bool:
    """Whether a store turn still counts: its lease runs and its process is not known to be gone."""
    return as_utc(lease_until) > moment and owner_gone(owner) is not True


def _committed_digests(conn: Connection, digests: Collection[str]) -> set[str]:
    """Which of ``digests`` some committed version has (read in ``conn``)."""
    found: set[str] = set()
    wanted = sorted(digests)
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        found.update(
            conn.execute(
                select(tb.Version.digest).where(tb.Version.digest.in_(chunk), tb.Version.state == COMMITTED)
            ).scalars()
        )
    return found


def _generation(conn: Connection, while_idle: bool) -> int | None:
    """The store's generation (:meth:`Registry.store_generation`), read in ``conn``."""
    generation = select(tb.StoreGeneration.value).where(tb.StoreGeneration.id == 1)
    if not while_idle:
        return int(conn.execute(generation).scalar_one())
    # One statement (each costs a process its compilation): the generation beside each
    # collection's turn (a row of NULLs if there is none).
    rows = conn.execute(
        generation.add_columns(tb.StoreLock.owner, tb.StoreLock.lease_until).outerjoin(
            tb.StoreLock, tb.StoreLock.kind == "gc"
        )
    ).all()
    moment = now()
    if any(until is not None and _live(owner, until, moment) for _, owner, until in rows):
        return None
    return int(rows[0][0])


def _waits_for(conn: Connection, turn: int, kind: str) -> list[str]:
    """The live turns before ``turn`` that ``kind`` must wait for, described; a collection with
    none goes ahead, and counts itself in the store's generation (:meth:`Registry.store_generation`)
    in this transaction.

    For a collection (in a write transaction) the earlier turns that are over are ended here: a
    commit among them can then no longer record (:meth:`Registry.hold_fence`). Their rows
    stay locked until this transaction ends, so a commit recording meanwhile is either seen
    renewed (and waited for) or finds its turn gone.
    """
    query = _select_turns().where(tb.StoreLock.id < turn)
    # A commit waits for collections only; a collection locks the turns it looks at.
    query = query.where(tb.StoreLock.kind == "gc") if kind == "commit" else query.with_for_update()
    live, over = _live_turns(conn, query)
    if kind == "gc":
        if over:
            conn.execute(delete(tb.StoreLock).where(tb.StoreLock.id.in_(over)))
        if not live:
            generation = tb.StoreGeneration
            conn.execute(update(generation).where(generation.id == 1).values(value=generation.value + 1))
    return live


def _distance(a: str, b: str) -> int:
    """Levenshtein distance, for 'did you mean' hints."""
    if a == b:
        return 0
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]
