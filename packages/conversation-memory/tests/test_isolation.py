"""Users cannot touch each other's conversations, enforced by the database itself.

Through PostgreSQL as the non-owner ``authenticator`` role with user A's claims, and through the
Supabase client with user A's JWT, user A can neither read, write nor delete user B's messages or
summaries — neither through ConversationMemory nor through raw SQL / PostgREST calls. Every
assertion about B's data is re-checked with a direct count as the database owner.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from conversation_memory import AccessDeniedError, ConversationMemory, StoredMessage
from llm_common_testkit import pg_as_user


class _Fixed:
    model_name = "fixed"

    async def summarize(self, previous: str | None, messages: list[StoredMessage]) -> str:
        return "B asked about " + ", ".join(m.content for m in messages)


async def _seed_b(backend: Any) -> tuple[str, str, dict[str, int]]:
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    memory_b = ConversationMemory(
        await backend.store_for(b), b, "private", summarizer=_Fixed(), max_messages=2
    )
    for i in range(5):
        await memory_b.save_message("user", f"B secret {i}")
    assert await memory_b.summarize() is not None
    before = await backend.rows_of(b)
    assert before == {"conversations": 5, "conversation_summaries": 1, "conversation_counters": 1}
    return a, b, before


async def test_a_cannot_read_write_or_delete_b_through_the_library(rls_backend: Any) -> None:
    a, b, before = await _seed_b(rls_backend)
    store_a = await rls_backend.store_for(a)
    as_b = ConversationMemory(store_a, b, "private", summarizer=_Fixed(), max_messages=2)

    assert await as_b.history() == []
    assert await as_b.get_context() == []
    assert (await as_b.export())["conversations"] == []
    with pytest.raises(AccessDeniedError):
        await as_b.save_message("user", "forged message in B's name")
    now = datetime.now(UTC)
    forged = await store_a.save_summary(
        b,
        "private",
        base_version=1,
        summary="forged",
        covers_up_to_seq=9,
        covers_from_created_at=now,
        covers_to_created_at=now,
        model="x",
    )
    assert forged is None
    receipt = await as_b.delete()
    assert (receipt.messages, receipt.summaries, receipt.conversations) == (0, 0, 0)
    await ConversationMemory(store_a, a).cleanup(older_than=timedelta(0))

    assert await rls_backend.rows_of(b) == before
    # A's own conversation with the same id is separate from B's.
    mine = ConversationMemory(store_a, a, "private")
    assert (await mine.save_message("user", "A's own")).seq == 1
    assert [m.content for m in await mine.history()] == ["A's own"]


async def test_raw_sql_as_a_cannot_touch_b(postgres_backend: Any) -> None:
    rls_backend = postgres_backend
    a, b, before = await _seed_b(rls_backend)
    url = rls_backend.url
    async with pg_as_user(url, a) as conn:
        for table in ("conversations", "conversation_summaries", "conversation_counters"):
            cur = await conn.execute(f"select count(*) from {table} where user_id = %s", (b,))
            assert (await cur.fetchone())[0] == 0
            cur = await conn.execute(f"delete from {table} where user_id = %s", (b,))
            assert cur.rowcount == 0
        cur = await conn.execute("update conversations set content = 'x' where user_id = %s", (b,))
        assert cur.rowcount == 0
        cur = await conn.execute("select public.conversation_delete_user(%s)", (b,))
        assert (await cur.fetchone())[0] == {"messages": 0, "summaries": 0, "conversations": 0}
    for statement, params in [
        (
            "insert into conversations (user_id, conversation_id, seq, role, content) "
            "values (%s, 'private', 99, 'user', 'forged')",
            (b,),
        ),
        ("select public.conversation_append(%s, 'private', 'user', 'forged', null, 1)", (b,)),
        (
            "insert into conversation_summaries (user_id, conversation_id, version, summary, "
            "covers_up_to_seq, covers_from_created_at, covers_to_created_at) "
            "values (%s, 'private', 7, 'forged', 1, now(), now())",
            (b,),
        ),
    ]:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            async with pg_as_user(url, a) as conn:
                await conn.execute(statement, params)
    assert await rls_backend.rows_of(b) == before


async def test_postgrest_with_a_jwt_cannot_touch_b(supabase_backend: Any) -> None:
    rls_backend = supabase_backend
    from postgrest.exceptions import APIError
    from supabase import acreate_client

    a, b, before = await _seed_b(rls_backend)
    server = rls_backend.server
    client = await acreate_client(server.url, server.anon_key)
    client.postgrest.auth(server.jwt_for(a))
    try:
        for table in ("conversations", "conversation_summaries", "conversation_counters"):
            rows = await client.table(table).select("*").eq("user_id", b).execute()
            assert rows.data == []
            gone = await client.table(table).delete().eq("user_id", b).execute()
            assert gone.data == []
        changed = (
            await client.table("conversations").update({"content": "x"}).eq("user_id", b).execute()
        )
        assert changed.data == []
        with pytest.raises(APIError) as denied:
            await (
                client.table("conversations")
                .insert(
                    {
                        "user_id": b,
                        "conversation_id": "private",
                        "seq": 99,
                        "role": "user",
                        "content": "forged",
                    }
                )
                .execute()
            )
        assert denied.value.code == "42501"
        with pytest.raises(APIError):
            await (
                client.table("conversation_summaries")
                .insert(
                    {
                        "user_id": b,
                        "conversation_id": "private",
                        "version": 9,
                        "summary": "forged",
                        "covers_up_to_seq": 1,
                        "covers_from_created_at": "2026-01-01T00:00:00Z",
                        "covers_to_created_at": "2026-01-01T00:00:00Z",
                    }
                )
                .execute()
            )
        receipt = await client.rpc("conversation_delete_user", {"p_user_id": b}).execute()
        assert receipt.data == {"messages": 0, "summaries": 0, "conversations": 0}
        # Without any JWT (anon key only) nothing is reachable at all.
        anon = await acreate_client(server.url, server.anon_key)
        try:
            with pytest.raises(APIError):
                await anon.rpc("conversation_export_user", {"p_user_id": b}).execute()
        finally:
            await anon.postgrest.aclose()
    finally:
        await client.postgrest.aclose()
    assert await rls_backend.rows_of(b) == before
