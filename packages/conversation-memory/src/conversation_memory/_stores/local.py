"""The embedded default backend: one SQLite file in WAL mode, safe across processes.

Sequence numbers come from a counter row bumped inside ``BEGIN IMMEDIATE``, which takes
SQLite's write lock up front, so writers in any number of threads or processes are serialised
and each gets the next number. Blocking sqlite3 calls run on a small thread pool owned by the
store, one connection per thread.
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from os import PathLike
from pathlib import Path
from typing import Final, TypeVar

from conversation_memory._errors import StoreError, StoreUnavailableError
from conversation_memory._models import (
    CleanupReceipt,
    ContextSnapshot,
    DeletionReceipt,
    Role,
    StoredMessage,
    Summary,
)
from conversation_memory._stores import _sqlite
from conversation_memory._stores._sqlite import (
    INSERT_MESSAGE,
    MESSAGE_COLUMNS,
    SCHEMA,
    SUMMARY_COLUMNS,
    micros,
)

__all__ = ["DEFAULT_PATH", "LocalMessageStore"]

DEFAULT_PATH: Final = Path(".llm-common") / "conversation-memory.sqlite3"
"""Where the store lives when no path is given (relative to the working directory)."""

T = TypeVar("T")


class LocalMessageStore:
    """SQLite-backed :class:`~conversation_memory.MessageStore` for one machine.

    Example:
        >>> store = LocalMessageStore(".llm-common/chat.sqlite3")  # doctest: +SKIP
        >>> memory = ConversationMemory(store, user_id)
    """

    def __init__(
        self, path: str | PathLike[str] = DEFAULT_PATH, *, threads: int = 4, timeout: float = 30.0
    ) -> None:
        """Open (and create if needed) the database file.

        Args:
            path: SQLite file; its directory is created when missing.
            threads: Worker threads (each holds one connection).
            timeout: Seconds a writer waits for another process's write lock.
        """
        self.path = Path(path)
        if self.path.is_dir():
            raise StoreError(
                f"LocalMessageStore needs a database file, not a directory: {self.path} "
                f"(e.g. {self.path / 'conversation-memory.sqlite3'})"
            )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._timeout = timeout
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="cm-sqlite")
        self._closed = False
        with self._lock:
            connection = self._open()
            connection.executescript(SCHEMA)

    def __repr__(self) -> str:
        return f"LocalMessageStore({str(self.path)!r})"

    def _open(self) -> sqlite3.Connection:
        connection = sqlite3.connect(
            self.path, timeout=self._timeout, isolation_level=None, check_same_thread=False
        )
        connection.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode is durable against application crashes (not power loss) and keeps
        # commits off fsync, which is what makes the local backend fast.
        connection.execute("PRAGMA synchronous=NORMAL")
        self._connections.append(connection)
        return connection

    def _connection(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            with self._lock:
                connection = self._open()
            self._local.connection = connection
        return connection

    async def _run(self, func: Callable[[sqlite3.Connection], T]) -> T:
        if self._closed:
            raise StoreUnavailableError("the store is closed")

        def call() -> T:
            try:
                return func(self._connection())
            except sqlite3.OperationalError as exc:
                raise StoreUnavailableError(f"SQLite failed: {exc}") from exc
            except sqlite3.Error as exc:
                raise StoreError(f"SQLite failed: {exc}") from exc

        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    @staticmethod
    @contextmanager
    def _write(connection: sqlite3.Connection) -> Iterator[None]:
        # IMMEDIATE takes the write lock now, so the read-modify-write below cannot interleave
        # with another process's.
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")

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

        def work(db: sqlite3.Connection) -> StoredMessage:
            with self._write(db):
                (seq,) = db.execute(
                    "INSERT INTO conversation_counters (user_id, conversation_id, last_seq) "
                    "VALUES (?, ?, 1) ON CONFLICT (user_id, conversation_id) "
                    "DO UPDATE SET last_seq = last_seq + 1 RETURNING last_seq",
                    (user_id, conversation_id),
                ).fetchone()
                now = micros(datetime.now(UTC))
                row = (user_id, conversation_id, seq, role, content, page, token_count, now)
                db.execute(INSERT_MESSAGE, row)
            return _sqlite.message(row)

        return await self._run(work)

    async def load_context(self, user_id: str, conversation_id: str, limit: int) -> ContextSnapshot:
        """See :meth:`MessageStore.load_context`."""

        def work(db: sqlite3.Connection) -> ContextSnapshot:
            # One read transaction so the summary and the messages are from the same instant.
            db.execute("BEGIN")
            try:
                row = db.execute(
                    f"SELECT {SUMMARY_COLUMNS} FROM conversation_summaries "  # noqa: S608
                    "WHERE user_id = ? AND conversation_id = ? ORDER BY version DESC LIMIT 1",
                    (user_id, conversation_id),
                ).fetchone()
                rows = db.execute(
                    f"SELECT {MESSAGE_COLUMNS} FROM conversations "  # noqa: S608
                    "WHERE user_id = ? AND conversation_id = ? ORDER BY seq DESC LIMIT ?",
                    (user_id, conversation_id, limit),
                ).fetchall()
            finally:
                db.execute("COMMIT")
            return ContextSnapshot(
                summary=_sqlite.summary(row) if row else None,
                recent=[_sqlite.message(r) for r in reversed(rows)],
            )

        return await self._run(work)

    async def history(
        self, user_id: str, conversation_id: str, limit: int, before_seq: int | None
    ) -> list[StoredMessage]:
        """See :meth:`MessageStore.history`."""
        bound = before_seq if before_seq is not None else 2**62
        rows = await self._run(
            lambda db: db.execute(
                f"SELECT {MESSAGE_COLUMNS} FROM conversations "  # noqa: S608
                "WHERE user_id = ? AND conversation_id = ? AND seq < ? "
                "ORDER BY seq DESC LIMIT ?",
                (user_id, conversation_id, bound, limit),
            ).fetchall()
        )
        return [_sqlite.message(r) for r in reversed(rows)]

    async def messages_between(
        self, user_id: str, conversation_id: str, after_seq: int, before_seq: int, limit: int
    ) -> list[StoredMessage]:
        """See :meth:`MessageStore.messages_between`."""
        rows = await self._run(
            lambda db: db.execute(
                f"SELECT {MESSAGE_COLUMNS} FROM conversations "  # noqa: S608
                "WHERE user_id = ? AND conversation_id = ? AND seq > ? AND seq < ? "
                "ORDER BY seq LIMIT ?",
                (user_id, conversation_id, after_seq, before_seq, limit),
            ).fetchall()
        )
        return [_sqlite.message(r) for r in rows]

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

        def work(db: sqlite3.Connection) -> Summary | None:
            with self._write(db):
                (latest,) = db.execute(
                    "SELECT coalesce(max(version), 0) FROM conversation_summaries "
                    "WHERE user_id = ? AND conversation_id = ?",
                    (user_id, conversation_id),
                ).fetchone()
                if latest != base_version:
                    return None
                row = (
                    user_id,
                    conversation_id,
                    base_version + 1,
                    summary,
                    covers_up_to_seq,
                    micros(covers_from_created_at),
                    micros(covers_to_created_at),
                    model,
                    micros(datetime.now(UTC)),
                )
                db.execute(
                    f"INSERT INTO conversation_summaries ({SUMMARY_COLUMNS}) "  # noqa: S608
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    row,
                )
                db.execute(
                    "DELETE FROM conversation_summaries "
                    "WHERE user_id = ? AND conversation_id = ? AND version < ?",
                    (user_id, conversation_id, base_version + 1),
                )
            return _sqlite.summary(row)

        return await self._run(work)

    async def export_user(self, user_id: str) -> tuple[list[StoredMessage], list[Summary]]:
        """See :meth:`MessageStore.export_user`."""

        def work(db: sqlite3.Connection) -> tuple[list[StoredMessage], list[Summary]]:
            db.execute("BEGIN")
            try:
                messages = db.execute(
                    f"SELECT {MESSAGE_COLUMNS} FROM conversations WHERE user_id = ? "  # noqa: S608
                    "ORDER BY conversation_id, seq",
                    (user_id,),
                ).fetchall()
                summaries = db.execute(
                    f"SELECT {SUMMARY_COLUMNS} FROM conversation_summaries "  # noqa: S608
                    "WHERE user_id = ? ORDER BY conversation_id, version",
                    (user_id,),
                ).fetchall()
            finally:
                db.execute("COMMIT")
            return [_sqlite.message(r) for r in messages], [_sqlite.summary(r) for r in summaries]

        return await self._run(work)

    async def delete_user(self, user_id: str) -> DeletionReceipt:
        """See :meth:`MessageStore.delete_user`."""

        def work(db: sqlite3.Connection) -> DeletionReceipt:
            with self._write(db):
                counts = [
                    db.execute(f"DELETE FROM {table} WHERE user_id = ?", (user_id,)).rowcount  # noqa: S608
                    for table in (
                        "conversations",
                        "conversation_summaries",
                        "conversation_counters",
                    )
                ]
            return DeletionReceipt(user_id, counts[0], counts[1], counts[2])

        return await self._run(work)

    async def cleanup(self, cutoff: datetime, *, user_id: str | None = None) -> CleanupReceipt:
        """See :meth:`MessageStore.cleanup` (store-wide: SQLite has no per-user security)."""
        bound = micros(cutoff)

        def work(db: sqlite3.Connection) -> CleanupReceipt:
            with self._write(db):
                messages = db.execute(
                    "DELETE FROM conversations WHERE created_at < ?", (bound,)
                ).rowcount
                summaries = db.execute(
                    "DELETE FROM conversation_summaries WHERE covers_from_created_at < ?", (bound,)
                ).rowcount
                # A counter may go only when nothing is left that its numbers order; the write
                # lock held here keeps appends out until this commits.
                counters = db.execute(
                    "DELETE FROM conversation_counters AS c WHERE NOT EXISTS ("
                    "SELECT 1 FROM conversations m WHERE m.user_id = c.user_id "
                    "AND m.conversation_id = c.conversation_id) AND NOT EXISTS ("
                    "SELECT 1 FROM conversation_summaries s WHERE s.user_id = c.user_id "
                    "AND s.conversation_id = c.conversation_id)"
                ).rowcount
            return CleanupReceipt(cutoff, messages, summaries, counters)

        return await self._run(work)

    async def aclose(self) -> None:
        """Close every connection and stop the worker threads."""
        if self._closed:
            return
        self._closed = True
        await asyncio.get_running_loop().run_in_executor(
            None, functools.partial(self._executor.shutdown, wait=True)
        )
        with self._lock:
            for connection in self._connections:
                connection.close()
            self._connections.clear()

    async def __aenter__(self) -> LocalMessageStore:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
