"""Supabase persistent tier: the same table and SQL functions, through PostgREST.

Pass the app's async Supabase client created with the service-role key (the table is
server-side only). Needs ``web-search[supabase]``.

An unreachable Supabase fails an operation with ``StoreUnavailableError`` and opens a circuit
breaker: for ``breaker_interval`` seconds every operation fails at once, then one probes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from web_search._errors import MissingExtraError, StoreError
from web_search._types import CacheStats

from ._breaker import Breaker
from ._protocol import CacheWrite

try:
    import httpx
    from postgrest.exceptions import APIError
    from supabase import AsyncClient, AsyncClientOptions, acreate_client
except ImportError as exc:
    raise MissingExtraError("SupabaseSearchCache", "supabase") from exc

__all__ = ["SupabaseSearchCache"]


class SupabaseSearchCache:
    """Persistent tier in Supabase.

    Args:
        client: A ``supabase.AsyncClient`` authenticated with the service-role key.
        owns_client: Close the client's HTTP session in ``aclose`` (False: the app owns it).
        breaker_interval: Seconds every operation fails at once after Supabase proved
            unreachable, before one probe tries again (30).

    Use ``await SupabaseSearchCache.connect(url, service_key)`` to have one created (and owned).
    """

    def __init__(
        self, client: AsyncClient, *, owns_client: bool = False, breaker_interval: float = 30.0
    ) -> None:
        self._client = client
        self._owns_client = owns_client
        self._breaker = Breaker("Supabase (web-search cache)", breaker_interval)

    @property
    def owns_client(self) -> bool:
        """Whether ``aclose`` closes the client's HTTP session."""
        return self._owns_client

    def __repr__(self) -> str:
        return "SupabaseSearchCache(<client>)"

    @classmethod
    async def connect(
        cls,
        url: str,
        service_key: str,
        *,
        connect_timeout: float = 2.0,
        request_timeout: float = 10.0,
        breaker_interval: float = 30.0,
    ) -> SupabaseSearchCache:
        """Create (and own) an async client for ``url`` with ``service_key``.

        Args:
            url: The project URL.
            service_key: The service-role key (never shown in reprs, logs or errors).
            connect_timeout: Longest wait to connect, in seconds.
            request_timeout: Longest wait for an answer, in seconds.
            breaker_interval: See the class.
        """
        options = AsyncClientOptions(
            postgrest_client_timeout=httpx.Timeout(request_timeout, connect=connect_timeout),
            postgrest_client_retry=False,  # the breaker decides when to try again
        )
        client = await acreate_client(url, service_key, options=options)
        return cls(client, owns_client=True, breaker_interval=breaker_interval)

    async def _call(self, request: Any) -> Any:
        """Execute a PostgREST request under the breaker; failures become store errors."""
        self._breaker.check()
        try:
            response = await request.execute()
        except httpx.TransportError as exc:
            raise self._breaker.failed(type(exc).__name__) from exc
        except APIError as exc:
            self._breaker.succeeded()  # it answered, with an error
            raise StoreError(f"web-search cache (Supabase): {exc.code}: {exc.message}") from exc
        self._breaker.succeeded()
        return response.data

    async def _rpc(self, name: str, params: dict[str, Any]) -> Any:
        return await self._call(self._client.rpc(name, params))

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

    async def get_many(self, keys: Sequence[str], now: datetime) -> dict[str, object]:
        """Every unexpired payload among ``keys``, counting the hits (one RPC)."""
        if not keys:
            return {}
        rows = await self._rpc(
            "web_search_cache_hit_many", {"p_keys": list(keys), "p_now": now.isoformat()}
        )
        if not isinstance(rows, list):
            raise StoreError(f"web_search_cache_hit_many answered {type(rows).__name__}")
        found: dict[str, object] = {}
        for row in rows:
            if not isinstance(row, dict) or not isinstance(row.get("key"), str):
                raise StoreError("web_search_cache_hit_many answered an unexpected row")
            found[row["key"]] = row.get("payload")
        return found

    async def set_many(self, entries: Sequence[CacheWrite], *, now: datetime) -> None:
        """Upsert every entry (``rpc/web_search_cache_put_many``: one RPC)."""
        if not entries:
            return
        await self._rpc(
            "web_search_cache_put_many",
            {
                "p_entries": [e.as_json() for e in entries],
                "p_now": now.isoformat(),
            },
        )

    async def delete(self, key: str) -> None:
        """Remove the entry."""
        await self._call(self._client.table("web_search_cache").delete().eq("key", key))

    async def cleanup(self, now: datetime) -> int:
        """Delete expired entries (``rpc/web_search_cache_cleanup``)."""
        removed = await self._rpc("web_search_cache_cleanup", {"p_now": now.isoformat()})
        if removed is not None and (isinstance(removed, bool) or not isinstance(removed, int)):
            raise StoreError(f"web_search_cache_cleanup answered {type(removed).__name__}")
        return removed or 0

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
        rows = (
            await self._call(
                self._client.table("web_search_cache_stats")
                .select("*")
                .eq("namespace", namespace)
                .limit(1)
            )
            or []
        )
        if not rows:
            return CacheStats()
        row = rows[0]
        try:
            return CacheStats(
                l1_hits=int(row["l1_hits"]),
                l2_hits=int(row["l2_hits"]),
                coalesced=int(row["coalesced"]),
                misses=int(row["misses"]),
                upstream_calls=int(row["upstream_calls"]),
                dollars_spent=Decimal(str(row["dollars_spent"])),
                dollars_saved=Decimal(str(row["dollars_saved"])),
            )
        except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
            raise StoreError(
                f"web_search_cache_stats answered an unexpected row ({type(exc).__name__})"
            ) from exc

    async def aclose(self) -> None:
        """Close the client's HTTP session if this object created the client."""
        if self._owns_client:
            await self._client.postgrest.aclose()
