"""Supabase persistent tier: the same table and SQL functions, through PostgREST.

Pass the app's async Supabase client created with the service-role key (the table is
server-side only). Needs ``web-search[supabase]``.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from web_search._errors import MissingExtraError
from web_search._types import CacheStats

try:
    from supabase import AsyncClient, acreate_client
except ImportError as exc:
    raise MissingExtraError("SupabaseSearchCache", "supabase") from exc

__all__ = ["SupabaseSearchCache"]


class SupabaseSearchCache:
    """Persistent tier in Supabase.

    Args:
        client: A ``supabase.AsyncClient`` authenticated with the service-role key.
        owns_client: Close the client's HTTP session in ``aclose`` (False: the app owns it).

    Use ``await SupabaseSearchCache.connect(url, service_key)`` to have one created (and owned).
    """

    def __init__(self, client: AsyncClient, *, owns_client: bool = False) -> None:
        self._client = client
        self._owns_client = owns_client

    def __repr__(self) -> str:
        return "SupabaseSearchCache(<client>)"

    @classmethod
    async def connect(cls, url: str, service_key: str) -> SupabaseSearchCache:
        """Create the async client for ``url`` with ``service_key``."""
        return cls(await acreate_client(url, service_key), owns_client=True)

    async def _rpc(self, name: str, params: dict[str, Any]) -> Any:
        response = await self._client.rpc(name, params).execute()
        return response.data

    async def get(self, key: str, now: datetime) -> object | None:
        """The unexpired payload, counting the hit (``rpc/web_search_cache_hit``)."""
        data = await self._rpc("web_search_cache_hit", {"p_key": key, "p_now": now.isoformat()})
        if isinstance(data, list):  # set-returning shape of some PostgREST versions
            data = data[0] if data else None
        if isinstance(data, dict) and set(data) == {"web_search_cache_hit"}:
            data = data["web_search_cache_hit"]
        return data  # type: ignore[no-any-return]

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
        """Upsert the entry (``rpc/web_search_cache_put``)."""
        await self._rpc(
            "web_search_cache_put",
            {
                "p_key": key,
                "p_payload": payload,
                "p_expires_at": expires_at.isoformat(),
                "p_provider": provider,
                "p_query": query,
                "p_now": now.isoformat(),
            },
        )

    async def delete(self, key: str) -> None:
        """Remove the entry."""
        await self._client.table("web_search_cache").delete().eq("key", key).execute()

    async def cleanup(self, now: datetime) -> int:
        """Delete expired entries (``rpc/web_search_cache_cleanup``)."""
        return int(await self._rpc("web_search_cache_cleanup", {"p_now": now.isoformat()}) or 0)

    async def add_stats(self, namespace: str, delta: CacheStats) -> None:
        """Add ``delta`` atomically (``rpc/web_search_cache_stats_add``); money sent as text."""
        await self._rpc(
            "web_search_cache_stats_add",
            {
                "p_namespace": namespace,
                "p_l1_hits": delta.l1_hits,
                "p_l2_hits": delta.l2_hits,
                "p_coalesced": delta.coalesced,
                "p_misses": delta.misses,
                "p_upstream_calls": delta.upstream_calls,
                # Text keeps Decimal exact; PostgreSQL casts it to numeric.
                "p_dollars_spent": str(delta.dollars_spent),
                "p_dollars_saved": str(delta.dollars_saved),
            },
        )

    async def load_stats(self, namespace: str) -> CacheStats:
        """The persisted counters of ``namespace``."""
        response = (
            await self._client.table("web_search_cache_stats")
            .select("*")
            .eq("namespace", namespace)
            .limit(1)
            .execute()
        )
        rows = response.data or []
        if not rows:
            return CacheStats()
        row = rows[0]
        if not isinstance(row, dict):
            raise TypeError("web_search_cache_stats row is not an object")
        return CacheStats(
            l1_hits=int(row["l1_hits"]),
            l2_hits=int(row["l2_hits"]),
            coalesced=int(row["coalesced"]),
            misses=int(row["misses"]),
            upstream_calls=int(row["upstream_calls"]),
            dollars_spent=Decimal(str(row["dollars_spent"])),
            dollars_saved=Decimal(str(row["dollars_saved"])),
        )

    async def aclose(self) -> None:
        """Close the client's HTTP session if this object created the client."""
        if self._owns_client:
            await self._client.postgrest.aclose()
