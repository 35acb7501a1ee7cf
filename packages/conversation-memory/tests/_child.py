"""Run in a separate process by the tests: write messages through a store, print their seqs.

Usage: ``python _child.py '<json>'`` with ``{"spec", "user_id", "conversation_id", "messages":
[[role, content], ...]}``; every message is saved concurrently; prints a JSON list of seqs.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from conversation_memory import (
    ConversationMemory,
    LocalMessageStore,
    MessageStore,
    PostgresMessageStore,
    SupabaseMessageStore,
)


async def _store(spec: dict[str, Any]) -> MessageStore:
    if spec["kind"] == "local":
        return LocalMessageStore(spec["path"])
    if spec["kind"] == "postgres":
        store = PostgresMessageStore(spec["url"], act_as_user=True, max_size=10)
        await store.open()
        return store
    from supabase import acreate_client

    client = await acreate_client(spec["url"], spec["key"])
    client.postgrest.auth(spec["jwt"])
    return SupabaseMessageStore(client)


async def main(job: dict[str, Any]) -> None:
    store = await _store(job["spec"])
    client = getattr(store, "_client", None)
    try:
        memory = ConversationMemory(store, job["user_id"], job["conversation_id"])
        saved = await asyncio.gather(
            *(memory.save_message(role, content) for role, content in job["messages"])
        )
    finally:
        await store.aclose()
        if client is not None:
            await client.postgrest.aclose()
    sys.stdout.write(json.dumps([m.seq for m in saved]))


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
