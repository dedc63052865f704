"""The database: engine and sessions, the declarative base, and the tenant scope every repository needs.

On PostgreSQL every tenant-owned table has a row-level-security policy keyed on the transaction setting
`vigil.tenant_id` (migration 0004). A session carries its access in `session.info`: a tenant id (what a
repository built with a `TenantScope` binds), `PLATFORM_ACCESS` (the few platform code paths: login, the
superadmin's tenant management, job claiming — see `platform_access`), or nothing, which sees no tenant rows.
The setting is re-applied at the start of every transaction, so a commit never drops it.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

from sqlalchemy import DateTime, Engine, create_engine, event, text
from sqlalchemy.exc import DBAPIError, OperationalError, PendingRollbackError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.pool import NullPool
from sqlalchemy.types import JSON, TypeDecorator

from vigil.config import Settings
from vigil.core.quick_reads import QUICK_READS, QuickReads

log = logging.getLogger("vigil.database")
# SQLite has one writer at a time; the others wait up to its busy timeout (15 s), then answer 503. A write
# transaction held longer than this is logged when it ends, with its first write: the one that made others wait.
SLOW_WRITE_S = 2.0
_WRITE_BEGAN = "vigil_write_began"


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps stored as UTC and always read back timezone-aware (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime")
        return value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON}


@dataclass(frozen=True, slots=True)
class TenantScope:
    """Which tenant a unit of work acts for. Repositories take one and cannot be built without it."""

    tenant_id: str

    def __post_init__(self) -> None:
        if not self.tenant_id:
            raise ValueError("a tenant scope needs a tenant id")


ACCESS_SETTING = "vigil.tenant_id"
PLATFORM_ACCESS = "*"  # admitted by every policy; server-made tenant ids never contain it
_INFO_KEY = "vigil.access"
_SET_ACCESS = text("SELECT set_config('vigil.tenant_id', :access, true)")


def _apply_access(session: Session, access: str | None) -> None:
    session.info[_INFO_KEY] = access
    if session.in_transaction() and session.get_bind().dialect.name == "postgresql":
        session.connection().execute(_SET_ACCESS, {"access": access or ""})


def current_access(session: Session) -> str | None:
    value: str | None = session.info.get(_INFO_KEY)
    return value


def bind_tenant(session: Session, scope: TenantScope) -> None:
    """From now on this session's transactions see only `scope`'s rows (PostgreSQL RLS); repositories call it."""
    if current_access(session) != scope.tenant_id:
        _apply_access(session, scope.tenant_id)


def bind_platform(session: Session) -> None:
    """For sessions that only do platform work (job workers): every tenant's rows, for the whole session."""
    if current_access(session) != PLATFORM_ACCESS:
        _apply_access(session, PLATFORM_ACCESS)


@contextmanager
def platform_access(session: Session) -> Iterator[None]:
    """Every tenant's rows for the duration of the block, then the session's previous access again."""
    previous = current_access(session)
    if previous == PLATFORM_ACCESS:
        yield
        return
    _apply_access(session, PLATFORM_ACCESS)
    try:
        yield
    except BaseException:
        # Restore even so (a caller may catch the error and go on in this transaction), but a block that failed
        # on a lost connection leaves a transaction that takes no statement until it is rolled back: restoring
        # would fail too, and its PendingRollbackError would hide the block's error (a database outage, which the
        # job machinery retries, became a job failed for good). The rollback ends the setting with its transaction,
        # and the next transaction begins with `previous` (`_on_begin`).
        with contextlib.suppress(DBAPIError, PendingRollbackError):
            _apply_access(session, previous)
        raise
    _apply_access(session, previous)


class _HasSession(Protocol):
    session: Session


_R = TypeVar("_R")
_P = ParamSpec("_P")
_S = TypeVar("_S", bound=_HasSession)


def platform_query(fn: Callable[Concatenate[_S, _P], _R]) -> Callable[Concatenate[_S, _P], _R]:
    """Marks a repository method as a platform query: it runs with `platform_access` on its session."""

    def wrapper(self: _S, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        with platform_access(self.session):
            return fn(self, *args, **kwargs)

    functools.update_wrapper(wrapper, fn)
    return wrapper


def notify(session: Session, channel: str, payload: str = "") -> None:
    """PostgreSQL `NOTIFY`, sent when the session's transaction commits (and never if it rolls back); elsewhere a
    no-op (one SQLite process wakes its own threads directly)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_notify(:channel, :payload)"), {"channel": channel, "payload": payload})


def _on_begin(session: Session, _transaction: Any, connection: Any) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(_SET_ACCESS, {"access": current_access(session) or ""})


def _sqlite_pragmas(dbapi_connection: Any, _: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # FULL: a commit is on disk (the WAL fsynced) before we answer, so an acknowledged write survives a power cut,
    # not only a crash of this process (NORMAL's promise). Measured: ~0.75 ms more per commit on this machine's
    # disk (0.04 → 0.77 ms), small beside a request's own cost (docs/architecture.md, "Durability").
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=15000")
    cursor.close()


def _watch_writes(engine: Engine) -> None:
    """Logs SQLite write transactions that hold the database's one write lock longer than `SLOW_WRITE_S`."""

    @event.listens_for(engine, "before_cursor_execute")
    def began(conn: Any, _cursor: Any, statement: str, _params: Any, _context: Any, _many: bool) -> None:
        if _WRITE_BEGAN not in conn.info and statement.lstrip()[:6].upper() not in ("SELECT", "PRAGMA"):
            conn.info[_WRITE_BEGAN] = (time.monotonic(), statement[:200], threading.current_thread().name)

    def ended(conn: Any) -> None:
        write = conn.info.pop(_WRITE_BEGAN, None)
        if write is not None and (held := time.monotonic() - write[0]) > SLOW_WRITE_S:
            log.warning(
                "a write transaction held the SQLite database for %.1f s; other writers waited (first write in "
                "thread %s: %s)",
                held,
                write[2],
                write[1],
            )

    event.listen(engine, "commit", ended)
    event.listen(engine, "rollback", ended)
    # A connection handed back to the pool mid-transaction is rolled back there, without the events above.
    event.listen(engine.pool, "reset", lambda _dbapi, record, _state: record.info.pop(_WRITE_BEGAN, None))


def build_engine(settings: Settings, *, admin: bool = False) -> Engine:
    """The application's engine, or (`admin=True`) the schema owner's, for migrations."""
    url = settings.database_admin_url_resolved if admin else settings.database_url_resolved
    if admin and url != settings.database_url_resolved and not url.startswith("sqlite"):
        return create_engine(url, poolclass=NullPool)
    if url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 15})
        event.listen(engine, "connect", _sqlite_pragmas)
        _watch_writes(engine)
        return engine
    return create_engine(
        url,
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_max_overflow,
        pool_timeout=settings.database_pool_timeout_s,
        pool_pre_ping=True,
        # A server that is gone or silent fails a connect in seconds (libpq would wait for TCP's own minutes).
        connect_args={"connect_timeout": settings.database_connect_timeout_s},
    )


def is_database_outage(exc: BaseException) -> bool:
    """The database is down, unreachable or saturated (no pooled connection in time): not our bug, and over when
    it returns (a request answers 503; a job's outcome waits to be recorded)."""
    if isinstance(exc, PoolTimeout):
        return True
    return isinstance(exc, DBAPIError) and (exc.connection_invalidated or isinstance(exc, OperationalError))


class DatabaseInUse(RuntimeError):
    """Another process serves this SQLite file: two would each think they own its running jobs."""


_HELD_FILE_LOCKS: dict[str, int] = {}


def claim_sqlite_file(settings: Settings) -> None:
    """Takes an exclusive lock on the SQLite database (a `.lock` file beside it) for the life of this process, or
    raises `DatabaseInUse` if another process holds it. SQLite is the one-process embedded default: a second
    server on the same file would treat the first one's running jobs as orphans. No-op on other databases, and
    when this process already holds the lock."""
    path = settings.sqlite_path
    if path is None:
        return
    lock_path = str(path) + ".lock"
    if lock_path in _HELD_FILE_LOCKS:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise DatabaseInUse(
            f"another Vigil process is already serving the SQLite database {path} (it holds {lock_path}). "
            "SQLite is for one process: stop the other one, use another data directory, or move to PostgreSQL "
            "(VIGIL_DATABASE_URL) to run several API processes."
        ) from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    _HELD_FILE_LOCKS[lock_path] = fd


class Database:
    """The engine and its session factory; one per app."""

    def __init__(self, settings: Settings) -> None:
        self.engine = build_engine(settings)
        # A SQLite file can also be read without waiting, on the event loop (`core/quick_reads.py`).
        self.quick = QuickReads(settings.database_url_resolved) if settings.sqlite_path is not None else None
        info = {QUICK_READS: self.quick} if self.quick is not None else None
        self.sessions = sessionmaker(self.engine, expire_on_commit=False, info=info)
        event.listen(self.sessions, "after_begin", _on_begin)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: committed if the block succeeds, rolled back if it raises."""
        with self.sessions() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    @contextmanager
    def serialized(self, name: str) -> Iterator[None]:
        """PostgreSQL: the block runs in one process at a time across the deployment (a blocking advisory lock),
        e.g. start-up's migrations and bootstrap when many servers start at once. Elsewhere a no-op."""
        if self.engine.dialect.name != "postgresql":
            yield
            return
        with self.engine.connect() as conn:
            key = {"name": f"vigil.serialized:{name}"}
            conn.execute(text("SELECT pg_advisory_lock(hashtext(:name))"), key)
            conn.commit()
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(hashtext(:name))"), key)
                conn.commit()

    @contextmanager
    def exclusive(self, name: str) -> Iterator[bool]:
        """PostgreSQL: yields whether this process got the cluster-wide lock `name` (a session advisory lock held
        for the block), so a chore that every API process schedules runs in one of them at a time. Elsewhere
        (one SQLite process) always True."""
        if self.engine.dialect.name != "postgresql":
            yield True
            return
        with self.engine.connect() as conn:
            key = {"name": f"vigil.exclusive:{name}"}
            got = bool(conn.scalar(text("SELECT pg_try_advisory_lock(hashtext(:name))"), key))
            conn.commit()
            try:
                yield got
            finally:
                if got:
                    conn.execute(text("SELECT pg_advisory_unlock(hashtext(:name))"), key)
                    conn.commit()

    def dispose(self) -> None:
        self.engine.dispose()
        if self.quick is not None:
            self.quick.dispose()
