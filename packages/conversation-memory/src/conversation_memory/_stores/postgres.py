"""PostgreSQL backend (psycopg 3 via llm-common-db's PostgresPool): each atomic step, one statement.

Two modes:

* **owner / service** (default): the connection's role owns or bypasses row-level security;
  use it for server jobs and for apps that authenticate users themselves.
* **per-user** (``store.as_user(user_id)``): a view sharing the pool in which every call runs in
  a transaction that does what PostgREST does — ``set_config('role', 'authenticated')`` and
  ``request.jwt.claims`` with that user's id as ``sub`` — so the RLS policies from ``db/`` decide
  what the call may see and touch, whatever ``user_id`` the caller passes. Connect as a non-owner
  login role (Supabase's ``authenticator``).
"""

from __future__ import annotations

import copy
import json
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from conversation_memory._errors import (
    AccessDeniedError,
    ConfigurationError,
    MissingExtraError,
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
from conversation_memory._stores._rows import message_from_json, summary_from_json

if TYPE_CHECKING:
    from llm_common_db import PostgresPool
    from psycopg import AsyncConnection
    from psycopg_pool import AsyncConnectionPool

__all__ = ["PostgresMessageStore"]

_PACKAGE: Final = "conversation-memory"
_COLUMNS: Final = "user_id, conversation_id, seq, role, content, page, token_count, created_at"
_NAMES: Final = tuple(c.strip() for c in _COLUMNS.split(","))
_SUMMARY_NAMES: Final = (
    "id",
    "user_id",
    "conversation_id",
    "version",
    "summary",
    "covers_up_to_seq",
    "covers_from_created_at",
    "covers_to_created_at",
    "model",
    "created_at",
)


# The body of public.conversation_append() (db/migrations/20261124000300_conversations.sql), sent
# as a prepared statement: its plan is cached per connection, where a SQL function's is planned
# on every call (~20% more saves/s). PostgREST clients call the function; keep the two in step.
_APPEND: Final = f"""
with counter as (
    insert into public.conversation_counters as c (user_id, conversation_id, last_seq)
    values (%(user_id)s, %(conversation_id)s, 1)
    on conflict (user_id, conversation_id) do update set last_seq = c.last_seq + 1
    returning last_seq
)
insert into public.conversations
    (user_id, conversation_id, seq, role, content, page, token_count, created_at)
select %(user_id)s, %(conversation_id)s, counter.last_seq, %(role)s, %(content)s, %(page)s,
       %(token_count)s, clock_timestamp()
from counter
returning {_COLUMNS}
"""  # noqa: S608

# The newest messages and the latest summary in one statement: message rows carry kind 'm' and
# the message columns; the summary row carries kind 's' and the summary columns after them.
_CONTEXT: Final = """
(select 'm' as kind, user_id, conversation_id, seq, role, content, page, token_count, created_at,
        null::integer, null::text, null::bigint, null::timestamptz, null::timestamptz, null::text
 from public.conversations
 where user_id = %(user_id)s and conversation_id = %(conversation_id)s
 order by seq desc limit %(limit)s)
union all
(select 's', user_id, conversation_id, null, null, null, null, null, created_at,
        version, summary, covers_up_to_seq, covers_from_created_at, covers_to_created_at, model
 from public.conversation_summaries
 where user_id = %(user_id)s and conversation_id = %(conversation_id)s
 order by version desc limit 1)
"""
_CONTEXT_SUMMARY: Final = (
    "user_id",
    "conversation_id",
    "_seq",
    "_role",
    "_content",
    "_page",
    "_token_count",
    "created_at",
    "version",
    "summary",
    "covers_up_to_seq",
    "covers_from_created_at",
    "covers_to_created_at",
    "model",
)


def _import_plumbing() -> type[PostgresPool]:
    try:
        import psycopg  # noqa: F401
        import psycopg_pool  # noqa: F401
        from llm_common_db import PostgresPool
    except ImportError as exc:
        raise MissingExtraError(
            "PostgresMessageStore", "postgres", missing=exc.name or "psycopg"
        ) from exc
    return PostgresPool


class PostgresMessageStore:
    """:class:`~conversation_memory.MessageStore` on PostgreSQL (or Supabase's Postgres).

    Pool ownership: a store built from a URL owns its pool and closes it in :meth:`aclose`; a
    store given a pool never closes it. Connections go through ``llm_common_db.PostgresPool``:
    the wait for one is bounded by ``connect_timeout``, an unreachable database makes calls
    fail fast (circuit breaker) for ``breaker_interval`` seconds, and no message, repr or log
    line shows the password.

    Example:
        >>> async with PostgresMessageStore.from_url(url) as store:  # doctest: +SKIP
        ...     memory = ConversationMemory(store, user_id)
    """

    def __init__(
        self,
        conninfo: str | None = None,
        *,
        pool: AsyncConnectionPool[Any] | None = None,
        min_size: int = 1,
        max_size: int = 10,
        user_role: str = "authenticated",
        connect_timeout: float = 5.0,
        breaker_interval: float = 30.0,
        prepare_threshold: int | None = 5,
        timeout: float | None = None,
    ) -> None:
        """Configure the store; nothing connects until the first call (or ``async with``).

        Args:
            conninfo: libpq connection string or URL (the store owns the pool it builds).
            pool: An existing psycopg ``AsyncConnectionPool`` to share instead: the app opens
                and closes it (autocommit connections).
            min_size: Connections kept open.
            max_size: Most connections opened.
            user_role: Database role that :meth:`as_user` views switch to.
            connect_timeout: Longest wait for a connection, in seconds: an unreachable
                database is a :class:`StoreUnavailableError` after about this long.
            breaker_interval: Seconds calls fail at once after the database was unreachable,
                before one call tries again.
            prepare_threshold: psycopg's server-side prepared statement threshold; pass None
                behind a transaction pooler (Supabase's port 6543, PgBouncer in transaction mode).
            timeout: Deprecated alias of ``connect_timeout``.

        Raises:
            MissingExtraError: If the ``postgres`` extra is not installed.
            ConfigurationError: If neither ``conninfo`` nor ``pool`` is given, ``conninfo``
                cannot be parsed (the message never repeats it) or a setting is out of range.
        """
        plumbing = _import_plumbing()
        if timeout is not None:
            warnings.warn(
                "PostgresMessageStore(timeout=) is deprecated; use connect_timeout=",
                DeprecationWarning,
                stacklevel=2,
            )
            connect_timeout = timeout
        if pool is None and not conninfo:
            raise ConfigurationError("PostgresMessageStore needs a conninfo (URL) or a pool")
        try:  # a bad URL or setting is a ValueError there, never repeating the URL
            if pool is not None:
                self._pg = plumbing.from_pool(
                    pool,
                    connect_timeout=connect_timeout,
                    breaker_interval=breaker_interval,
                    package=_PACKAGE,
                )
            else:
                self._pg = plumbing.from_url(
                    conninfo or "",
                    connect_timeout=connect_timeout,
                    min_size=min_size,
                    max_size=max_size,
                    breaker_interval=breaker_interval,
                    package=_PACKAGE,
                    kwargs={"prepare_threshold": prepare_threshold},
                )
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from exc
        self._user_role = user_role
        self._acting_user: str | None = None

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        min_size: int = 1,
        max_size: int = 10,
        user_role: str = "authenticated",
        connect_timeout: float = 5.0,
        breaker_interval: float = 30.0,
        prepare_threshold: int | None = 5,
    ) -> PostgresMessageStore:
        """A store that owns its pool (closed by :meth:`aclose`); same arguments as the class."""
        return cls(
            url,
            min_size=min_size,
            max_size=max_size,
            user_role=user_role,
            connect_timeout=connect_timeout,
            breaker_interval=breaker_interval,
            prepare_threshold=prepare_threshold,
        )

    def as_user(self, user_id: object) -> PostgresMessageStore:
        """A view of this store acting as ``user_id``: row-level security applies to every call.

        The view shares the pool (cheap: make one per request). Whatever ``user_id`` a caller
        then passes, the database sees this user's claims, so another user's rows are out of
        reach.

        Args:
            user_id: The signed-in user's UUID (JWT ``sub``).

        Returns:
            The per-user view; closing it does not close the pool.
        """
        from conversation_memory._models import check_user_id

        view = copy.copy(self)
        view._acting_user = check_user_id(user_id)
        return view

    @property
    def connect_timeout(self) -> float:
        """Longest wait for a connection, in seconds."""
        return self._pg.connect_timeout

    def __repr__(self) -> str:
        mode = f"as_user={self._acting_user!r}" if self._acting_user else "owner"
        return f"PostgresMessageStore({self._pg.display!r}, {mode})"

    async def open(self) -> None:
        """Connect once now, so an unreachable database shows at start-up.

        Raises:
            StoreUnavailableError: If no connection could be made within ``connect_timeout``.
        """
        async with self._conn(None):
            pass

    async def aclose(self) -> None:
        """Close the pool if this store built it (per-user views and given pools stay open)."""
        if self._acting_user is None:
            await self._pg.aclose()

    async def __aenter__(self) -> PostgresMessageStore:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    @asynccontextmanager
    async def _conn(
        self, user_id: str | None, *, write: bool = False
    ) -> AsyncIterator[AsyncConnection[Any]]:
        import psycopg
        from llm_common_db import DatabaseUnavailableError, MissingTablesError

        sent = False  # once a connection is in hand, a write may reach the server
        try:
            async with self._pg.connection() as conn:
                sent = write
                if self._acting_user is None:
                    yield conn
                    return
                async with conn.transaction():
                    claims = json.dumps({"sub": self._acting_user, "role": self._user_role})
                    await conn.execute(
                        "select set_config('role', %s, true), "
                        "set_config('request.jwt.claims', %s, true)",
                        (self._user_role, claims),
                    )
                    yield conn
        except DatabaseUnavailableError as exc:
            raise StoreUnavailableError(str(exc), maybe_stored=sent) from exc
        except MissingTablesError as exc:
            raise StoreError(str(exc)) from exc
        except psycopg.errors.InsufficientPrivilege as exc:
            raise AccessDeniedError(f"PostgreSQL refused the operation: {_line(exc)}") from exc
        except psycopg.OperationalError as exc:
            raise StoreUnavailableError(
                f"PostgreSQL failed: {_line(exc)}", maybe_stored=sent
            ) from exc
        except psycopg.Error as exc:
            raise StoreError(f"PostgreSQL failed: {_line(exc)}") from exc

    async def _one(
        self,
        user_id: str | None,
        query: str,
        params: tuple[Any, ...] | dict[str, Any],
        *,
        write: bool = False,
    ) -> Any:
        async with self._conn(user_id, write=write) as conn:
            cursor = await conn.execute(query, params)
            return await cursor.fetchone()

    async def _all(
        self, user_id: str | None, query: str, params: tuple[Any, ...] | dict[str, Any]
    ) -> list[tuple[Any, ...]]:
        async with self._conn(user_id) as conn:
            cursor = await conn.execute(query, params)
            return await cursor.fetchall()

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
        row = await self._one(
            user_id,
            _APPEND,
            {
                "user_id": user_id,
                "conversation_id": conversation_id,
                "role": role,
                "content": content,
                "page": page,
                "token_count": token_count,
            },
            write=True,
        )
        return message_from_json(dict(zip(_NAMES, row, strict=True)))

    async def load_context(self, user_id: str, conversation_id: str, limit: int) -> ContextSnapshot:
        """See :meth:`MessageStore.load_context`."""
        # One prepared statement, two indexed lookups: cheaper than pipelining two queries and
        # than the jsonb-building conversation_context() that PostgREST clients use.
        rows = await self._all(
            user_id,
            _CONTEXT,
            {"user_id": user_id, "conversation_id": conversation_id, "limit": limit},
        )
        summary = None
        recent = []
        for row in rows:
            if row[0] == "s":
                summary = summary_from_json(dict(zip(_CONTEXT_SUMMARY, row[1:], strict=True)))
            else:
                recent.append(message_from_json(dict(zip(_NAMES, row[1:9], strict=True))))
        recent.reverse()
        return ContextSnapshot(summary=summary, recent=recent)

    async def history(
        self, user_id: str, conversation_id: str, limit: int, before_seq: int | None
    ) -> list[StoredMessage]:
        """See :meth:`MessageStore.history`."""
        rows = await self._all(
            user_id,
            f"select {_COLUMNS} from public.conversations "  # noqa: S608
            "where user_id = %s and conversation_id = %s and seq < %s "
            "order by seq desc limit %s",
            (user_id, conversation_id, before_seq if before_seq is not None else 2**62, limit),
        )
        return [message_from_json(dict(zip(_NAMES, r, strict=True))) for r in reversed(rows)]

    async def messages_between(
        self, user_id: str, conversation_id: str, after_seq: int, before_seq: int, limit: int
    ) -> list[StoredMessage]:
        """See :meth:`MessageStore.messages_between`."""
        rows = await self._all(
            user_id,
            f"select {_COLUMNS} from public.conversations "  # noqa: S608
            "where user_id = %s and conversation_id = %s and seq > %s and seq < %s "
            "order by seq limit %s",
            (user_id, conversation_id, after_seq, before_seq, limit),
        )
        return [message_from_json(dict(zip(_NAMES, r, strict=True))) for r in rows]

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
        row = await self._one(
            user_id,
            "select * from public.conversation_save_summary(%s, %s, %s, %s, %s, %s, %s, %s)",
            (
                user_id,
                conversation_id,
                base_version,
                summary,
                covers_up_to_seq,
                covers_from_created_at,
                covers_to_created_at,
                model,
            ),
            write=True,
        )
        if row is None or row[0] is None:  # a NULL composite comes back as a row of NULLs
            return None
        return summary_from_json(dict(zip(_SUMMARY_NAMES, row, strict=True)))

    async def export_user(self, user_id: str) -> tuple[list[StoredMessage], list[Summary]]:
        """See :meth:`MessageStore.export_user`."""
        row = await self._one(user_id, "select public.conversation_export_user(%s)", (user_id,))
        data = row[0]
        return (
            [message_from_json(m) for m in data["messages"]],
            [summary_from_json(s) for s in data["summaries"]],
        )

    async def delete_user(self, user_id: str) -> DeletionReceipt:
        """See :meth:`MessageStore.delete_user`."""
        row = await self._one(
            user_id, "select public.conversation_delete_user(%s)", (user_id,), write=True
        )
        counts = row[0]
        return DeletionReceipt(
            user_id, counts["messages"], counts["summaries"], counts["conversations"]
        )

    async def cleanup(self, cutoff: datetime, *, user_id: str | None = None) -> CleanupReceipt:
        """See :meth:`MessageStore.cleanup`; a per-user view reaches only its user's rows."""
        row = await self._one(
            user_id, "select public.conversation_cleanup(%s)", (cutoff,), write=True
        )
        counts = row[0]
        return CleanupReceipt(
            cutoff, counts["messages"], counts["summaries"], counts["conversations"]
        )


def _line(exc: BaseException) -> str:
    """The server's one-line message (no query text, no connection details)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
