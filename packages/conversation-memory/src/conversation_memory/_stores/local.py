"""The embedded default backend: one SQLite file in WAL mode, safe across processes.

Sequence numbers come from a counter row bumped inside ``BEGIN IMMEDIATE``, which takes
SQLite's write lock up front, so writers in any number of tasks or processes are serialised
and each gets the next number. The connections are aiosqlite's (each runs its blocking calls on
a thread of its own); the store keeps a few of them and lends one to each operation, which is
why a transaction's statements never interleave with another task's.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import sqlite3
import threading
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime, timedelta
from os import PathLike
from pathlib import Path
from typing import Any, Final, cast

import aiosqlite

from conversation_memory._errors import (
    ConfigurationError,
    StoreCorruptError,
    StoreError,
    StoreUnavailableError,
)
from conversation_memory._models import (
    CleanupReceipt,
    ContextSnapshot,
    DeletionReceipt,
    Role,
    StoredMessage,
    Summary,
)

__all__ = ["FILE_NAME", "LocalMessageStore", "default_path"]

logger = logging.getLogger(__name__)

FILE_NAME: Final = "conversation-memory.sqlite3"
"""The file this package keeps in the shared state directory."""

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
# SQLite's primary result codes for "this is not (or no longer) a database".
_SQLITE_CORRUPT: Final = 11
_SQLITE_NOTADB: Final = 26

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS conversations (
    id INTEGER PRIMARY KEY,
    user_id TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('user', 'assistant', 'system')),
    content TEXT NOT NULL,
    page TEXT,
    token_count INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (user_id, conversation_id, seq)
);
CREATE INDEX IF NOT EXISTS conversations_created_at_idx ON conversations (created_at);
CREATE TABLE IF NOT EXISTS conversation_counters (
    user_id TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    last_seq INTEGER NOT NULL,
    PRIMARY KEY (user_id, conversation_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS conversation_summaries (
    user_id TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    summary TEXT NOT NULL,
    covers_up_to_seq INTEGER NOT NULL,
    covers_from_created_at INTEGER NOT NULL,
    covers_to_created_at INTEGER NOT NULL,
    model TEXT,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, conversation_id, version)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS conversation_summaries_from_idx
    ON conversation_summaries (covers_from_created_at);
"""
_MESSAGE_COLUMNS: Final = (
    "user_id, conversation_id, seq, role, content, page, token_count, created_at"
)
_SUMMARY_COLUMNS: Final = (
    "user_id, conversation_id, version, summary, covers_up_to_seq, covers_from_created_at, "
    "covers_to_created_at, model, created_at"
)
_CONTEXT: Final = f"""
SELECT * FROM (
    SELECT 'm', {_MESSAGE_COLUMNS}, NULL FROM conversations
    WHERE user_id = ? AND conversation_id = ? ORDER BY seq DESC LIMIT ?
)
UNION ALL
SELECT * FROM (
    SELECT 's', {_SUMMARY_COLUMNS} FROM conversation_summaries
    WHERE user_id = ? AND conversation_id = ? ORDER BY version DESC LIMIT 1
)
"""  # noqa: S608
_SELECT_MESSAGES: Final = f"SELECT {_MESSAGE_COLUMNS} FROM conversations "  # noqa: S608
_SELECT_SUMMARIES: Final = f"SELECT {_SUMMARY_COLUMNS} FROM conversation_summaries "  # noqa: S608


def default_path() -> Path:
    """Where the store lives when no path is given.

    The one rule every llm-common package follows: ``$LLM_COMMON_DIR`` if set, else
    ``./.llm-common`` (relative to the working directory), with this package's file name inside.
    """
    return Path(os.environ.get("LLM_COMMON_DIR") or ".llm-common") / FILE_NAME


def _micros(when: datetime) -> int:
    """Integer microseconds since the epoch: exact, sortable and cheap to compare in SQL."""
    delta = when - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _moment(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=value)


def _message(row: Iterable[Any]) -> StoredMessage:
    user_id, conversation_id, seq, role, content, page, token_count, created_at = row
    return StoredMessage(
        user_id=user_id,
        conversation_id=conversation_id,
        seq=seq,
        role=cast(Role, role),
        content=content,
        page=page,
        token_count=token_count,
        created_at=_moment(created_at),
    )


def _summary(row: Iterable[Any]) -> Summary:
    user_id, conversation_id, version, text, up_to, start, end, model, created_at = row
    return Summary(
        user_id=user_id,
        conversation_id=conversation_id,
        version=version,
        summary=text,
        covers_up_to_seq=up_to,
        covers_from_created_at=_moment(start),
        covers_to_created_at=_moment(end),
        model=model,
        created_at=_moment(created_at),
    )


class LocalMessageStore:
    """SQLite-backed :class:`~conversation_memory.MessageStore` for one machine.

    Close it when the app stops (``async with`` or :meth:`aclose`, e.g. in a FastAPI lifespan).

    Example:
        >>> async with LocalMessageStore() as store:  # doctest: +SKIP
        ...     memory = ConversationMemory(store, user_id)
    """

    def __init__(
        self,
        path: str | PathLike[str] | None = None,
        *,
        threads: int = 4,
        timeout: float = 30.0,
    ) -> None:
        """Configure the store; the file is opened (and created if needed) on first use.

        Args:
            path: SQLite file; its directory is created when missing. None: the shared state
                directory, ``$LLM_COMMON_DIR`` if set, else ``./.llm-common``
                (``conversation-memory.sqlite3`` inside it).
            threads: Most connections kept open (each runs on a thread of its own).
            timeout: Seconds a writer waits for another process's write lock.

        Raises:
            StoreError: If ``path`` is a directory.
            ConfigurationError: If ``threads`` is not positive.
        """
        if threads < 1:
            raise ConfigurationError(f"threads must be at least 1, got {threads}")
        self.path = Path(path) if path is not None else default_path()
        if self.path.is_dir():
            raise StoreError(
                f"LocalMessageStore needs a database file, not a directory: {self.path} "
                f"(e.g. {self.path / FILE_NAME})"
            )
        self._size = threads
        self._timeout = timeout
        self._connections: list[aiosqlite.Connection] = []
        self._idle: _Lender | None = None
        self._opening: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = None
        self._recycling: set[asyncio.Future[None]] = set()
        self._closed = False

    def __repr__(self) -> str:
        return f"LocalMessageStore({str(self.path)!r})"

    # -- connections --------------------------------------------------------------------

    async def _connect(self) -> aiosqlite.Connection:
        connection = aiosqlite.connect(self.path, timeout=self._timeout, isolation_level=None)
        # aiosqlite >= 0.22 runs each connection on a non-daemon thread, so one store an app
        # forgot to close would keep the interpreter from ever exiting. SQLite's WAL journal
        # survives an abrupt stop, so letting the thread die with the process is safe.
        worker = getattr(connection, "_thread", None)
        if isinstance(worker, threading.Thread):
            worker.daemon = True
        await connection
        try:
            await connection.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode is durable against application crashes (not power loss) and
            # keeps commits off fsync, which is what makes the local backend fast.
            await connection.execute("PRAGMA synchronous=NORMAL")
        except BaseException:
            await connection.close()
            raise
        return connection

    def _open_lock(self) -> asyncio.Lock:
        # One lock per event loop: a store may serve several asyncio.run() calls in turn.
        loop = asyncio.get_running_loop()
        if self._opening is None or self._opening[0] is not loop:
            self._opening = (loop, asyncio.Lock())
        return self._opening[1]

    async def _open(self) -> _Lender:
        async with self._open_lock():
            if self._idle is not None:
                return self._idle
            if self._closed:
                raise StoreUnavailableError(f"the store {self.path} is closed")
            self.path.parent.mkdir(parents=True, exist_ok=True)
            created: list[aiosqlite.Connection] = []
            try:
                with _translated(self.path):
                    for _ in range(self._size):
                        created.append(await self._connect())
                        if len(created) == 1:
                            await created[0].executescript(_SCHEMA)
            except BaseException:
                for connection in created:
                    await connection.close()
                raise
            self._connections = created
            self._idle = _Lender(created)
            return self._idle

    @asynccontextmanager
    async def _lend(self) -> AsyncIterator[aiosqlite.Connection]:
        if self._closed:
            raise StoreUnavailableError(f"the store {self.path} is closed")
        idle = self._idle if self._idle is not None else await self._open()
        connection = await idle.take()
        try:
            with _translated(self.path):
                yield connection
        except BaseException:
            # Also on cancellation, when a statement may still be running on the connection's
            # thread: the connection goes back only once any transaction it holds is undone,
            # so the next borrower neither inherits nor commits half a write.
            recycling = asyncio.ensure_future(_recycle(connection, idle))
            self._recycling.add(recycling)
            recycling.add_done_callback(self._recycling.discard)
            await asyncio.shield(recycling)
            raise
        idle.give(connection)

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._lend() as db:
            # One read transaction so every SELECT sees the same instant.
            await db.execute("BEGIN")
            yield db
            await db.execute("COMMIT")

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._lend() as db:
            # IMMEDIATE takes the write lock now, so the read-modify-write inside cannot
            # interleave with another connection's or process's.
            await db.execute("BEGIN IMMEDIATE")
            yield db
            await db.execute("COMMIT")

    # -- the MessageStore protocol ------------------------------------------------------

    async def append(
        self,
        user_id: str,
        conversation_id: str,
        role: Role,
        content: str,
        page: str | None,
        token_count: int,
    ) -> StoredMessage:
        """See :meth:`MessageStore.append`."""
        async with self._write() as db:
            [(seq,)] = await db.execute_fetchall(
                "INSERT INTO conversation_counters (user_id, conversation_id, last_seq) "
                "VALUES (?, ?, 1) ON CONFLICT (user_id, conversation_id) "
                "DO UPDATE SET last_seq = last_seq + 1 RETURNING last_seq",
                (user_id, conversation_id),
            )
            now = _micros(datetime.now(UTC))
            row = (user_id, conversation_id, seq, role, content, page, token_count, now)
            await db.execute(
                f"INSERT INTO conversations ({_MESSAGE_COLUMNS}) "  # noqa: S608
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )
        return _message(row)

    async def load_context(self, user_id: str, conversation_id: str, limit: int) -> ContextSnapshot:
        """See :meth:`MessageStore.load_context`."""
        # One statement (one trip to the connection's thread), and so one consistent snapshot:
        # the newest messages, then the latest summary as a row of kind 's'.
        async with self._lend() as db:
            rows = await db.execute_fetchall(
                _CONTEXT, (user_id, conversation_id, limit, user_id, conversation_id)
            )
        summary = None
        recent = []
        for kind, *row in rows:
            if kind == "s":
                summary = _summary(row)
            else:
                recent.append(_message(row[:8]))
        recent.reverse()
        return ContextSnapshot(summary=summary, recent=recent)

    async def history(
        self, user_id: str, conversation_id: str, limit: int, before_seq: int | None
    ) -> list[StoredMessage]:
        """See :meth:`MessageStore.history`."""
        bound = before_seq if before_seq is not None else 2**62
        async with self._lend() as db:
            rows = await db.execute_fetchall(
                _SELECT_MESSAGES + "WHERE user_id = ? AND conversation_id = ? AND seq < ? "
                "ORDER BY seq DESC LIMIT ?",
                (user_id, conversation_id, bound, limit),
            )
        return [_message(r) for r in reversed(list(rows))]

    async def messages_between(
        self, user_id: str, conversation_id: str, after_seq: int, before_seq: int, limit: int
    ) -> list[StoredMessage]:
        """See :meth:`MessageStore.messages_between`."""
        async with self._lend() as db:
            rows = await db.execute_fetchall(
                _SELECT_MESSAGES + "WHERE user_id = ? AND conversation_id = ? AND seq > ? "
                "AND seq < ? ORDER BY seq LIMIT ?",
                (user_id, conversation_id, after_seq, before_seq, limit),
            )
        return [_message(r) for r in rows]

    async def save_summary(
        self,
        user_id: str,
        conversation_id: str,
        *,
        base_version: int,
        summary: str,
        covers_up_to_seq: int,
        covers_from_created_at: datetime,
        covers_to_created_at: datetime,
        model: str | None,
    ) -> Summary | None:
        """See :meth:`MessageStore.save_summary`."""
        async with self._write() as db:
            [(latest,)] = await db.execute_fetchall(
                "SELECT coalesce(max(version), 0) FROM conversation_summaries "
                "WHERE user_id = ? AND conversation_id = ?",
                (user_id, conversation_id),
            )
            if latest != base_version:
                return None
            row = (
                user_id,
                conversation_id,
                base_version + 1,
                summary,
                covers_up_to_seq,
                _micros(covers_from_created_at),
                _micros(covers_to_created_at),
                model,
                _micros(datetime.now(UTC)),
            )
            await db.execute(
                f"INSERT INTO conversation_summaries ({_SUMMARY_COLUMNS}) "  # noqa: S608
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )
            await db.execute(
                "DELETE FROM conversation_summaries "
                "WHERE user_id = ? AND conversation_id = ? AND version < ?",
                (user_id, conversation_id, base_version + 1),
            )
        return _summary(row)

    async def export_user(self, user_id: str) -> tuple[list[StoredMessage], list[Summary]]:
        """See :meth:`MessageStore.export_user`."""
        async with self._read() as db:
            messages = await db.execute_fetchall(
                _SELECT_MESSAGES + "WHERE user_id = ? ORDER BY conversation_id, seq", (user_id,)
            )
            summaries = await db.execute_fetchall(
                _SELECT_SUMMARIES + "WHERE user_id = ? ORDER BY conversation_id, version",
                (user_id,),
            )
        return [_message(r) for r in messages], [_summary(r) for r in summaries]

    async def delete_user(self, user_id: str) -> DeletionReceipt:
        """See :meth:`MessageStore.delete_user`."""
        counts = []
        async with self._write() as db:
            for table in ("conversations", "conversation_summaries", "conversation_counters"):
                cursor = await db.execute(f"DELETE FROM {table} WHERE user_id = ?", (user_id,))  # noqa: S608
                counts.append(cursor.rowcount)
                await cursor.close()
        return DeletionReceipt(user_id, counts[0], counts[1], counts[2])

    async def cleanup(self, cutoff: datetime, *, user_id: str | None = None) -> CleanupReceipt:
        """See :meth:`MessageStore.cleanup` (store-wide: SQLite has no per-user security)."""
        bound = _micros(cutoff)
        counts = []
        async with self._write() as db:
            for statement, params in (
                ("DELETE FROM conversations WHERE created_at < ?", (bound,)),
                ("DELETE FROM conversation_summaries WHERE covers_from_created_at < ?", (bound,)),
                # A counter may go only when nothing is left that its numbers order; the write
                # lock held here keeps appends out until this commits.
                (
                    "DELETE FROM conversation_counters AS c WHERE NOT EXISTS ("
                    "SELECT 1 FROM conversations m WHERE m.user_id = c.user_id "
                    "AND m.conversation_id = c.conversation_id) AND NOT EXISTS ("
                    "SELECT 1 FROM conversation_summaries s WHERE s.user_id = c.user_id "
                    "AND s.conversation_id = c.conversation_id)",
                    (),
                ),
            ):
                cursor = await db.execute(statement, params)
                counts.append(cursor.rowcount)
                await cursor.close()
        return CleanupReceipt(cutoff, counts[0], counts[1], counts[2])

    async def open(self) -> None:
        """Open the file now (creating it and its tables if needed), not on first use.

        Raises:
            StoreCorruptError: If the file is not a valid database.
            StoreUnavailableError: If it cannot be opened (or the store is closed).
        """
        await self._open()

    async def aclose(self) -> None:
        """Close every connection (and so end their threads). Idempotent."""
        async with self._open_lock():
            self._closed = True
            connections, self._connections = self._connections, []
            self._idle = None
        for connection in connections:
            await connection.close()

    async def __aenter__(self) -> LocalMessageStore:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


class _Lender:
    """The idle connections, lent one per operation; waiters queue in arrival order.

    Not an asyncio.Queue: that binds to the first event loop it waits on, and a store may serve
    several ``asyncio.run()`` calls in turn (scripts, CLIs). A waiter's future belongs to the
    loop it waits on.
    """

    def __init__(self, connections: Iterable[aiosqlite.Connection]) -> None:
        self._idle = list(connections)
        self._waiters: collections.deque[asyncio.Future[aiosqlite.Connection]] = collections.deque()

    @property
    def idle(self) -> int:
        """Connections not lent out."""
        return len(self._idle)

    async def take(self) -> aiosqlite.Connection:
        while self._waiters and self._waiters[0].done():  # cancelled while waiting
            self._waiters.popleft()
        if self._idle and not self._waiters:
            return self._idle.pop()
        waiter: asyncio.Future[aiosqlite.Connection] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():  # handed one just as it was cancelled
                self.give(waiter.result())
            raise

    def give(self, connection: aiosqlite.Connection) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done() and not waiter.get_loop().is_closed():
                waiter.set_result(connection)
                return
        self._idle.append(connection)


async def _recycle(connection: aiosqlite.Connection, idle: _Lender) -> None:
    try:
        # Statements run in order on the connection's thread: once this one is done, whatever
        # the interrupted operation had sent is done too, and in_transaction is settled.
        await connection.execute("SELECT 1")
        if connection.in_transaction:
            await connection.execute("ROLLBACK")
    except (sqlite3.Error, ValueError):
        logger.debug("could not reset a SQLite connection after a failed operation", exc_info=True)
    finally:
        idle.give(connection)


@contextmanager
def _translated(path: Path) -> Iterator[None]:
    """Turn sqlite3's errors into this package's, naming the file when it is not a database."""
    try:
        yield
    except sqlite3.DatabaseError as exc:
        if (exc.sqlite_errorcode & 0xFF) in (_SQLITE_CORRUPT, _SQLITE_NOTADB):
            raise StoreCorruptError(str(path), str(exc)) from exc
        if isinstance(exc, sqlite3.OperationalError):
            raise StoreUnavailableError(f"SQLite failed on {path}: {exc}") from exc
        raise StoreError(f"SQLite failed on {path}: {exc}") from exc
    except sqlite3.Error as exc:
        raise StoreError(f"SQLite failed on {path}: {exc}") from exc
    except ValueError as exc:
        if str(exc) not in ("Connection closed", "no active connection"):
            raise
        raise StoreUnavailableError(f"the store {path} is closed") from exc
