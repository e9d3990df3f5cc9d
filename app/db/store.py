"""The store: one async engine and session factory per process, for SQLite or PostgreSQL.

SQLite gets WAL mode (readers never block the writer), enforced foreign keys, a busy
timeout and memory-mapped reads, so the monitor loop and the API can share one file. It
takes one writer at a time, so this process's writers wait their turn in the event loop
(``WriteTurns``) rather than in SQLite's busy handler, whose ever longer sleeps between
tries left the unlucky writers of a busy moment waiting seconds.

The server bounds every store call by one ``timeout`` (``database_timeout_seconds``):
connecting, each statement (on the server and, should the server or the network freeze, on
the client), waiting for a pooled connection, and SQLite's wait for the write lock. A call
that runs out of time is an outage like any other: callers answer 503 and try again later,
the pool reconnects. A store made without a timeout (migrations, administration, which may
rightly run long) keeps the drivers' own limits.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, event, text
from sqlalchemy.engine import ExecutionContext, make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.util import await_

# Without a timeout: SQLite's wait for the write lock, and PostgreSQL's for a pooled connection.
UNBOUNDED_LOCK_WAIT_SECONDS = 5.0
UNBOUNDED_POOL_WAIT_SECONDS = 10.0
# The share of the bound the server may spend on a statement before it cancels it itself.
_SERVER_SHARE = 0.9
# What the probe waits for SQLite's write lock: long enough for another process's write to
# finish on a busy host (100 ms was not, with two workers starting), short enough that a
# lock held for good is reported within the probe's 2 s.
PROBE_LOCK_WAIT_MS = 1000
# Reads of a large file through the OS page cache instead of a copy per connection: random
# reads (an index's candidates looked up by id) cost a fraction of going through read().
_SQLITE_MMAP_BYTES = 256 * 1024 * 1024
# What a transaction grouping sketches may hold in memory on PostgreSQL (see below).
_GROUPING_MEMORY = "64MB"
# The statements after which SQLite's driver opens a transaction by itself: writes.
_WRITE_STATEMENT = re.compile(r"\s*(INSERT|UPDATE|DELETE|REPLACE)\b", re.IGNORECASE)

# Errors that mean the store went away rather than a bug of ours. TimeoutError (a client-side
# statement or connect timeout) and refused or reset connections are OSErrors.
STORE_OUTAGES = (DisconnectionError, PoolTimeout, OSError)
# What drivers say when the store, not the statement, is the problem.
_OUTAGE_PHRASES = ("connection", "locked", "unable to open database", "disk i/o error")
# PostgreSQL's SQLSTATE classes for "cannot serve now": connection exception, insufficient
# resources (too many connections, disk full), operator intervention (starting up, shutting
# down, admin shutdown, statement timeout) and system errors (I/O).
_OUTAGE_SQLSTATE_CLASSES = ("08", "53", "57", "58")
_READ_ONLY_SQLSTATE = "25006"  # a standby, or a server set read-only: it takes no writes


class StoreNotWritable(Exception):
    """The store answers but cannot take a write now; the message says why."""


def _driver_errors(error: DBAPIError) -> list[BaseException]:
    """The driver's error ``error`` wraps, and what the driver raised that from."""
    found: list[BaseException] = []
    current: BaseException | None = error.orig
    while current is not None and current not in found:
        found.append(current)
        current = current.__cause__
    return found


def _sqlstate_says_outage(error: BaseException) -> bool:
    state = getattr(error, "sqlstate", None)
    return isinstance(state, str) and (
        state.startswith(_OUTAGE_SQLSTATE_CLASSES) or state == _READ_ONLY_SQLSTATE
    )


def is_outage(error: BaseException) -> bool:
    """Whether ``error`` says the store cannot be reached or used right now."""
    if isinstance(error, DBAPIError):
        return error.connection_invalidated or any(
            isinstance(cause, STORE_OUTAGES)
            or _sqlstate_says_outage(cause)
            or any(phrase in str(cause).lower() for phrase in _OUTAGE_PHRASES)
            for cause in _driver_errors(error)
        )
    return isinstance(error, STORE_OUTAGES) or _sqlstate_says_outage(error)


def outage_cause(error: BaseException) -> str:
    """What the store or driver said went wrong ("database is locked"), for the log."""
    cause = error.orig if isinstance(error, DBAPIError) and error.orig is not None else error
    if isinstance(cause, TimeoutError):
        return "no answer within the timeout (TimeoutError)"
    words = str(cause).strip().splitlines()
    return f"{words[0]} ({type(cause).__name__})" if words else type(cause).__name__


def masked_url(url: str) -> str:
    """``url`` with its password hidden, for messages and logs."""
    return make_url(url).render_as_string(hide_password=True)


def _prepare_sqlite_file(url: str) -> None:
    database = make_url(url).database
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).parent.mkdir(parents=True, exist_ok=True)


def _sqlite_pragmas(busy_timeout_ms: int) -> Callable[[Any, ConnectionPoolEntry], None]:
    def on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA mmap_size={_SQLITE_MMAP_BYTES}")
        cursor.close()

    return on_connect


async def group_blobs_in_memory(connection: AsyncConnection) -> None:
    """Lets the rest of this transaction group rows carrying blobs (sketches) in memory.

    At PostgreSQL's default work_mem (4 MB) the planner sorts every row, blob and all,
    through temporary files to group them; hashing the few groups is about twice as fast.
    LOCAL: only until this transaction ends. Other stores need nothing.
    """
    if connection.dialect.name == "postgresql":
        await connection.exec_driver_sql(f"SET LOCAL work_mem = '{_GROUPING_MEMORY}'")


class WriteTurns:
    """One SQLite writer at a time, taking turns in this process's event loop, in order.

    A transaction takes the turn just before its first write and then starts with BEGIN
    IMMEDIATE, so it holds SQLite's write lock from then on and never has to wait for it
    again halfway; it gives the turn back when it commits or rolls back (or, should it end
    otherwise, when its connection goes back to the pool). Reads take no turn. The wait for
    a turn is bounded like every store call: past ``wait_seconds`` it fails as "database is
    locked", an outage. Writers of other processes still meet ours in SQLite's busy handler.
    """

    def __init__(self, wait_seconds: float) -> None:
        self.wait_seconds = wait_seconds
        self.waiting = 0  # writers waiting for their turn now
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = asyncio.Lock()
        self._holder: dict[Any, Any] | None = None  # the pooled connection's ``info``

    def listen(self, engine: AsyncEngine) -> None:
        sync_engine = engine.sync_engine
        # At the driver's execute, after every before_cursor_execute listener has run.
        for execute in ("do_execute", "do_executemany", "do_execute_no_params"):
            event.listen(sync_engine, execute, self._before_execute)
        event.listen(sync_engine, "commit", self._transaction_ends)
        event.listen(sync_engine, "rollback", self._transaction_ends)
        for pool_event in ("checkin", "invalidate", "close"):
            event.listen(sync_engine.pool, pool_event, self._connection_leaves)

    def _current_lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # an asyncio lock serves the loop it first waited in
            self._loop, self._lock, self._holder = loop, asyncio.Lock(), None
        return self._lock

    async def _take(self, dbapi: Any) -> None:
        self.waiting += 1
        try:
            async with asyncio.timeout(self.wait_seconds):
                await self._current_lock().acquire()
        except TimeoutError:
            raise dbapi.OperationalError(
                f"database is locked: no write turn within {self.wait_seconds:g} s "
                "(this process's other writers)"
            ) from None
        finally:
            self.waiting -= 1

    def _before_execute(self, cursor: Any, statement: str, *rest: Any) -> None:
        context: ExecutionContext = rest[-1]
        conn = context.root_connection
        if self._holder is conn.info or not _WRITE_STATEMENT.match(statement):
            return
        await_(self._take(conn.dialect.loaded_dbapi))
        self._holder = conn.info
        try:
            driver = conn.connection.driver_connection
            if driver is not None and not driver.in_transaction:  # a savepoint may have begun
                cursor.execute("BEGIN IMMEDIATE")
        except BaseException:
            self._give_back(conn.info)
            raise

    def _transaction_ends(self, conn: Connection) -> None:
        # Just before the driver's COMMIT: the next writer's BEGIN IMMEDIATE may meet it in
        # the busy handler for the instant it takes. An invalidated connection gives its
        # turn back as the pool lets it go.
        if not (conn.closed or conn.invalidated):
            self._give_back(conn.info)

    def _connection_leaves(
        self, _dbapi_connection: Any, record: ConnectionPoolEntry, *_: Any
    ) -> None:
        self._give_back(record.info)

    def _give_back(self, info: dict[Any, Any]) -> None:
        if self._holder is info:
            self._holder = None
            self._lock.release()


def _lock_wait_ms(timeout: float | None) -> int:
    return round((UNBOUNDED_LOCK_WAIT_SECONDS if timeout is None else timeout) * 1000)


def _postgresql_bounds(timeout: float) -> dict[str, Any]:
    return {
        "pool_timeout": timeout,
        "connect_args": {
            "timeout": timeout,  # TCP connect and the start-up handshake
            # The server cancels a slow statement a little before the bound, releasing its
            # locks and keeping the connection usable; the client gives up at the bound on a
            # server or network that does not answer at all.
            "command_timeout": timeout,
            "server_settings": {"statement_timeout": str(round(timeout * _SERVER_SHARE * 1000))},
        },
    }


def create_engine(
    url: str, *, pool_size: int = 10, timeout: float | None = None, **options: Any
) -> AsyncEngine:
    """An async engine for ``url`` whose every call gives up after ``timeout`` seconds
    (None: after the drivers' own limits)."""
    if url.startswith("sqlite"):
        _prepare_sqlite_file(url)
        bounds = {} if timeout is None else {"pool_timeout": timeout}
        engine = create_async_engine(url, **bounds, **options)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas(_lock_wait_ms(timeout)))
        return engine
    if timeout is None:
        bounds = {"pool_timeout": UNBOUNDED_POOL_WAIT_SECONDS}
    else:
        bounds = _postgresql_bounds(timeout)
    return create_async_engine(
        url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True, **bounds, **options
    )


class Store:
    """The engine and session factory shared by the API, the monitor loop and the CLI."""

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 10,
        timeout: float | None = None,
        **options: Any,
    ) -> None:
        self.url = url
        self.timeout = timeout
        self.engine = create_engine(url, pool_size=pool_size, timeout=timeout, **options)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self.write_turns: WriteTurns | None = None
        if self.dialect == "sqlite":
            self.write_turns = WriteTurns(_lock_wait_ms(timeout) / 1000)
            self.write_turns.listen(self.engine)

    @property
    def masked_url(self) -> str:
        return masked_url(self.url)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[AsyncSession]:
        """A session that commits when the block succeeds and rolls back when it raises."""
        async with self.sessions() as session:
            try:
                yield session
                await session.commit()
            except BaseException:
                await session.rollback()
                raise

    async def ping(self) -> None:
        """Raises unless the store answers a trivial query."""
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def check_writable(self) -> None:
        """Raises unless the store could take a write now; cheap, and writes nothing.

        SQLite: takes the write lock, waiting only briefly, and lets it go (another
        connection holding it for long means "database is locked"). PostgreSQL: a standby
        in recovery, or a server set read-only, starts read-only transactions.
        """
        async with self.engine.connect() as connection:
            if self.dialect != "sqlite":
                setting = text("SELECT current_setting('transaction_read_only')")
                if await connection.scalar(setting) == "on":
                    raise StoreNotWritable("the store is read-only")
                return
            await connection.exec_driver_sql(f"PRAGMA busy_timeout={PROBE_LOCK_WAIT_MS}")
            try:
                await connection.exec_driver_sql("BEGIN IMMEDIATE")
            except DBAPIError as error:
                raise StoreNotWritable(str(error.orig)) from error
            finally:
                await connection.rollback()
                restored = _lock_wait_ms(self.timeout)
                await connection.exec_driver_sql(f"PRAGMA busy_timeout={restored}")

    async def dispose(self) -> None:
        await self.engine.dispose()
