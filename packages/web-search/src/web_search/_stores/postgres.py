"""PostgreSQL persistent tier (``web_search_cache`` from db/ migrations) on llm-common-db's pool.

Every operation is one SQL function call, so a hit (read + ``hit_count`` bump) is one round
trip and atomic. Needs ``web-search[postgres]``.

Connections come from ``llm_common_db.PostgresPool``: the wait for one is bounded by
``connect_timeout``, and after a connect failure a circuit breaker fails every operation at
once for ``breaker_interval`` seconds (then one probe), so an unreachable database costs one
short wait per interval, not one per search. The password never reaches a log line, a repr or
an error message.
"""

from __future__ import annotations

import weakref
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from decimal import Decimal
from typing import Any

from web_search._errors import (
    ConfigurationError,
    MissingExtraError,
    StoreError,
    StoreUnavailableError,
)
from web_search._types import CacheStats

from ._protocol import CacheWrite

try:
    import psycopg
    from llm_common_db import (
        DatabaseUnavailableError,
        InvalidConnectionStringError,
        MissingTablesError,
        PostgresPool,
    )
    from psycopg.types.json import Jsonb
    from psycopg_pool import AsyncConnectionPool
except ImportError as exc:
    raise MissingExtraError("PostgresSearchCache", "postgres") from exc

__all__ = ["DEFAULT_CONNECT_TIMEOUT", "PostgresSearchCache"]

DEFAULT_CONNECT_TIMEOUT = 2.0
"""Seconds to wait for a connection: a cache that cannot answer quickly is worth less than the
upstream call it would save, so the wait is shorter than a store of record would allow."""


class PostgresSearchCache:
    """Persistent tier in PostgreSQL (Supabase's own Postgres or any PostgreSQL 15+).

    Pool ownership: a cache built from a URL (``PostgresSearchCache(url)`` or
    ``PostgresSearchCache.from_url(url)``) owns its pool and closes it in ``aclose``; a cache
    given ``pool=`` never closes it.

    Args:
        conninfo: Connection URL or ``key=value`` string (its password is never shown);
            ignored when ``pool`` is given.
        pool: An existing ``psycopg_pool.AsyncConnectionPool`` (autocommit connections) or
            ``llm_common_db.PostgresPool``, owned by the caller.
        connect_timeout: Longest wait for a connection, in seconds (2).
        breaker_interval: Seconds every operation fails at once after a connect failure,
            before one probe tries again (30).
        min_size: Pool size floor when the pool is created here.
        max_size: Pool size ceiling when the pool is created here.
        prepare_threshold: psycopg's, for a pool created here (5: a prepared hit takes
            ~0.4 ms instead of ~0.7 ms). Pass None behind a transaction pooler (PgBouncer,
            Supabase's pooler on port 6543), where server-side prepared statements break.

    Raises:
        ConfigurationError: Neither ``conninfo`` nor ``pool``, or a connection string that
            cannot be parsed (the message does not repeat it).
    """

    def __init__(
        self,
        conninfo: str | None = None,
        *,
        pool: AsyncConnectionPool[Any] | PostgresPool | None = None,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        breaker_interval: float = 30.0,
        min_size: int = 0,
        max_size: int = 10,
        prepare_threshold: int | None = 5,
    ) -> None:
        if pool is None and not conninfo:
            raise ConfigurationError("PostgresSearchCache needs a conninfo or a pool")
        try:
            self._pg = PostgresPool.of(
                None if pool is not None else conninfo,
                pool,
                connect_timeout=connect_timeout,
                breaker_interval=breaker_interval,
                min_size=min_size,
                max_size=max_size,
                package="web-search",
                kwargs={"prepare_threshold": prepare_threshold},
            )
        except InvalidConnectionStringError as exc:
            raise ConfigurationError(f"PostgresSearchCache: {exc}") from None
        self._owns = pool is None
        self._tuned: weakref.WeakSet[Any] = weakref.WeakSet()

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        breaker_interval: float = 30.0,
        min_size: int = 0,
        max_size: int = 10,
        prepare_threshold: int | None = 5,
    ) -> PostgresSearchCache:
        """A cache that owns a new pool for ``url`` (closed by ``aclose``)."""
        return cls(
            url,
            connect_timeout=connect_timeout,
            breaker_interval=breaker_interval,
            min_size=min_size,
            max_size=max_size,
            prepare_threshold=prepare_threshold,
        )

    @property
    def owns_client(self) -> bool:
        """Whether ``aclose`` closes the pool (True when built from a URL)."""
        return self._owns

    def __repr__(self) -> str:
        return f"PostgresSearchCache({self._pg.display!r})"

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A pooled connection; pool and driver failures become this package's errors."""
        try:
            async with self._pg.connection() as conn:
                if self._owns and conn not in self._tuned:
                    # A cache write lost in the last milliseconds before a crash costs one
                    # repeated search; a WAL flush on every hit (hit_count bump) costs
                    # milliseconds each time. Once per pooled connection.
                    await conn.execute("set synchronous_commit = off")
                    self._tuned.add(conn)
                yield conn
        except DatabaseUnavailableError as exc:
            raise StoreUnavailableError(f"web-search cache: {exc}") from exc
        except MissingTablesError as exc:
            raise StoreError(f"web-search cache: {exc}") from exc
        except psycopg.Error as exc:
            raise StoreError(
                f"web-search cache at {self._pg.where}: {type(exc).__name__}"
                + (f" ({exc.sqlstate})" if exc.sqlstate else "")
            ) from exc

    async def _fetchone(self, sql: str, params: tuple[Any, ...]) -> tuple[Any, ...] | None:
        async with self._connection() as conn:
            cursor = await conn.execute(sql, params)
            row = await cursor.fetchone()
            return tuple(row) if row is not None else None

    async def get(self, key: str, now: datetime) -> object | None:
        """The unexpired payload, counting the hit (``web_search_cache_hit``)."""
        row = await self._fetchone("select public.web_search_cache_hit(%s, %s)", (key, now))
        return row[0] if row else None

    async def set(
        self,
        key: str,
        payload: dict[str, Any],
        *,
        expires_at: datetime,
        now: datetime,
        provider: str,
        query: str,
    ) -> None:
        """Upsert the entry (``web_search_cache_put``)."""
        await self._fetchone(
            "select public.web_search_cache_put(%s, %s, %s, %s, %s, %s)",
            (key, Jsonb(payload), expires_at, provider, query, now),
        )

    async def get_many(self, keys: Sequence[str], now: datetime) -> dict[str, object]:
        """Every unexpired payload among ``keys``, counting the hits (one statement)."""
        if not keys:
            return {}
        async with self._connection() as conn:
            cursor = await conn.execute(
                "select key, payload from public.web_search_cache_hit_many(%s, %s)",
                (list(keys), now),
            )
            return {str(key): payload for key, payload in await cursor.fetchall()}

    async def set_many(self, entries: Sequence[CacheWrite], *, now: datetime) -> None:
        """Upsert every entry (``web_search_cache_put_many``: one statement)."""
        if not entries:
            return
        await self._fetchone(
            "select public.web_search_cache_put_many(%s, %s)",
            (Jsonb([e.as_json() for e in entries]), now),
        )

    async def delete(self, key: str) -> None:
        """Remove the entry."""
        async with self._connection() as conn:
            await conn.execute("delete from public.web_search_cache where key = %s", (key,))

    async def cleanup(self, now: datetime) -> int:
        """Delete expired entries (``web_search_cache_cleanup``)."""
        row = await self._fetchone("select public.web_search_cache_cleanup(%s)", (now,))
        return int(row[0]) if row else 0

    async def add_stats(self, namespace: str, delta: CacheStats) -> None:
        """Add ``delta`` atomically (``web_search_cache_stats_add``)."""
        await self._fetchone(
            "select public.web_search_cache_stats_add(%s, %s, %s, %s, %s, %s, %s, %s)",
            (
                namespace,
                delta.l1_hits,
                delta.l2_hits,
                delta.coalesced,
                delta.misses,
                delta.upstream_calls,
                delta.dollars_spent,
                delta.dollars_saved,
            ),
        )

    async def load_stats(self, namespace: str) -> CacheStats:
        """The persisted counters of ``namespace``."""
        row = await self._fetchone(
            "select l1_hits, l2_hits, coalesced, misses, upstream_calls, dollars_spent,"
            " dollars_saved from public.web_search_cache_stats where namespace = %s",
            (namespace,),
        )
        if row is None:
            return CacheStats()
        l1, l2, coalesced, misses, calls, spent, saved = row
        return CacheStats(
            int(l1),
            int(l2),
            int(coalesced),
            int(misses),
            int(calls),
            Decimal(spent),
            Decimal(saved),
        )

    async def aclose(self) -> None:
        """Close the pool if this object owns it (built from a URL); a given pool stays open."""
        if self._owns:
            await self._pg.aclose()
