"""The cache tables are server-side: API roles other than service_role get nothing."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest
from llm_common_testkit import pg_as_user
from postgrest.exceptions import APIError
from web_search import StoreError, SupabaseSearchCache

pytestmark = pytest.mark.postgres


@pytest.mark.parametrize("role", ["anon", "authenticated"])
@pytest.mark.parametrize(
    "statement",
    [
        "select count(*) from public.web_search_cache",
        "select count(*) from public.web_search_cache_stats",
        "select public.web_search_cache_hit('k', now())",
        "select public.web_search_cache_cleanup(now())",
    ],
)
async def test_api_roles_are_refused(postgres_db: str, role: str, statement: str) -> None:
    async with pg_as_user(postgres_db, uuid.uuid4(), role=role) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            await conn.execute(statement)


async def test_service_role_works_and_hit_count_is_atomic(postgres_db: str) -> None:
    async with pg_as_user(postgres_db, None, role="service_role") as conn:
        await conn.execute(
            "select public.web_search_cache_put("
            "'k', '{\"v\": 1}'::jsonb, now() + interval '1 hour', 'zai', 'q')"
        )
        for _ in range(3):
            await conn.execute("select public.web_search_cache_hit('k')")
        row = await (await conn.execute("select hit_count from public.web_search_cache")).fetchone()
    assert row is not None
    assert row[0] == 3


async def test_supabase_anon_key_is_refused(supabase_server: Any) -> None:
    from supabase import acreate_client

    client = await acreate_client(supabase_server.url, supabase_server.anon_key)
    try:
        store = SupabaseSearchCache(client)
        with pytest.raises(StoreError, match="42501") as info:
            await store.load_stats("default")
        assert isinstance(info.value.__cause__, APIError)
        with pytest.raises(APIError):
            await client.rpc("web_search_cache_hit", {"p_key": "k"}).execute()
    finally:
        await client.postgrest.aclose()
