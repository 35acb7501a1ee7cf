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

_roots: list[MessageStore] = []


async def _store(spec: dict[str, Any], user_id: str) -> MessageStore:
    if spec["kind"] == "local":
        return LocalMessageStore(spec["path"])
    if spec["kind"] == "postgres":
        root = PostgresMessageStore(spec["url"], max_size=10)
        await root.open()
        _roots.append(root)
        return root.as_user(user_id)
    from supabase import acreate_client

    client = await acreate_client(spec["url"], spec["key"])
    client.postgrest.auth(spec["jwt"])
    return SupabaseMessageStore(client)


async def main(job: dict[str, Any]) -> None:
    store = await _store(job["spec"], job["user_id"])
    client = getattr(store, "_client", None)
    try:
        memory = ConversationMemory(store, job["user_id"], job["conversation_id"])
        saved = await asyncio.gather(
            *(memory.save_message(role, content) for role, content in job["messages"])
        )
    finally:
        for opened in [store, *_roots]:
            await opened.aclose()
        if client is not None:
            await client.postgrest.aclose()
    sys.stdout.write(json.dumps([m.seq for m in saved]))


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
