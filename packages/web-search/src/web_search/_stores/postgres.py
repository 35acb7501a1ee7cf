"""PostgreSQL persistent tier (``web_search_cache`` from db/ migrations) on a psycopg 3 pool.

Every operation is one SQL function call, so a hit (read + ``hit_count`` bump) is one round
trip and atomic. Needs ``web-search[postgres]``.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from decimal import Decimal
from typing import Any

from web_search._errors import ConfigurationError, MissingExtraError
from web_search._types import CacheStats

try:
    from psycopg.types.json import Jsonb
    from psycopg_pool import AsyncConnectionPool
except ImportError as exc:
    raise MissingExtraError("PostgresSearchCache", "postgres") from exc

__all__ = ["PostgresSearchCache"]


async def _configure(conn: Any) -> None:
    # A cache write lost in the last few milliseconds before a crash costs one repeated search;
    # waiting for the WAL flush on every hit (hit_count bump) costs milliseconds each time.
    await conn.execute("set synchronous_commit = off")


class PostgresSearchCache:
    """Persistent tier in PostgreSQL (Supabase's own Postgres or any PostgreSQL 15+).

    Args:
        conninfo: Connection string; ignored when ``pool`` is given.
        pool: An existing ``psycopg_pool.AsyncConnectionPool`` (autocommit connections); it is
            not closed by ``aclose``. A pool created here sets ``synchronous_commit = off`` on
            its connections: hits then skip the WAL flush.
        min_size: Pool size floor when the pool is created here.
        max_size: Pool size ceiling when the pool is created here.
        prepare_threshold: psycopg's; pass None behind a transaction pooler (PgBouncer,
            Supabase's pooler on port 6543), where server-side prepared statements break.
    """

    def __init__(
        self,
        conninfo: str | None = None,
        *,
        pool: AsyncConnectionPool | None = None,
        min_size: int = 1,
        max_size: int = 10,
        prepare_threshold: int | None = 5,
    ) -> None:
        if pool is None and not conninfo:
            raise ConfigurationError("PostgresSearchCache needs a conninfo or a pool")
        self._owns_pool = pool is None
        self._conninfo = conninfo or ""
        self._pool = pool
        self._sizes = (min_size, max_size)
        self._prepare_threshold = prepare_threshold
        self._opening = asyncio.Lock()

    def __repr__(self) -> str:
        return "PostgresSearchCache(<pool>)"

    async def _get_pool(self) -> AsyncConnectionPool:
        if self._pool is not None and not self._owns_pool:
            return self._pool
        async with self._opening:
            if self._pool is None:
                pool = AsyncConnectionPool(
                    self._conninfo,
                    min_size=self._sizes[0],
                    max_size=self._sizes[1],
                    kwargs={"autocommit": True, "prepare_threshold": self._prepare_threshold},
                    configure=_configure,
                    open=False,
                )
                await pool.open(wait=True)
                self._pool = pool
        return self._pool

    async def _fetchone(self, sql: str, params: tuple[Any, ...]) -> tuple[Any, ...] | None:
        pool = await self._get_pool()
        async with pool.connection() as conn:
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

    async def delete(self, key: str) -> None:
        """Remove the entry."""
        pool = await self._get_pool()
        async with pool.connection() as conn:
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
        """Close the pool if this object created it."""
        if self._owns_pool and self._pool is not None:
            await self._pool.close()
            self._pool = None
