"""The MessageStore contract, run against every backend (local, PostgreSQL, Supabase)."""

from __future__ import annotations

import asyncio
import itertools
import json
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from conversation_memory import ConversationMemory, StoredMessage
from llm_common_testkit.contract import GenericStoreContract

CHILD = Path(__file__).with_name("_child.py")


def new_user() -> str:
    return str(uuid.uuid4())


async def _run_child(backend: Any, user_id: str, conversation_id: str, messages: list) -> list[int]:
    job = {
        "spec": backend.child_spec(user_id),
        "user_id": user_id,
        "conversation_id": conversation_id,
        "messages": messages,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(CHILD),
        json.dumps(job),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    return json.loads(out)


async def test_round_trip_keeps_order_roles_pages_and_counts(backend: Any) -> None:
    user = new_user()
    memory = ConversationMemory(await backend.store_for(user), user, "chat-1")
    first = await memory.save_message("user", "What is my allocation?", page="portfolio")
    second = await memory.save_message("assistant", "60% stocks, 40% bonds.")
    third = await memory.save_message("system", "User switched page.", page="tax_planning")

    assert [first.seq, second.seq, third.seq] == [1, 2, 3]
    assert first.token_count > 0
    assert first.created_at.utcoffset() == timedelta(0)
    history = await memory.history()
    assert history == [first, second, third]
    assert [m.page for m in history] == ["portfolio", None, "tax_planning"]
    assert await memory.get_context() == [m.to_chat() for m in history]


async def test_conversations_are_separate_and_history_pages_backwards(backend: Any) -> None:
    user = new_user()
    store = await backend.store_for(user)
    a = ConversationMemory(store, user, "a")
    b = ConversationMemory(store, user, "b")
    for i in range(7):
        await a.save_message("user", f"a{i}")
    await b.save_message("user", "b0")

    newest = await a.history(limit=3)
    assert [m.content for m in newest] == ["a4", "a5", "a6"]
    older = await a.history(limit=3, before=newest[0].seq)
    assert [m.content for m in older] == ["a1", "a2", "a3"]
    assert [m.content for m in await b.history()] == ["b0"]
    assert (await b.history())[0].seq == 1


async def test_written_in_one_process_read_back_whole_in_another(backend: Any) -> None:
    user = new_user()
    messages = [["user" if i % 2 == 0 else "assistant", f"turn {i}: " + "x" * i] for i in range(30)]
    # The first child writes one message, the second the rest concurrently.
    await _run_child(backend, user, "continuity", messages[:1])
    await _run_child(backend, user, "continuity", messages[1:])

    memory = ConversationMemory(await backend.store_for(user), user, "continuity")
    history = await memory.history(limit=100)
    assert [m.seq for m in history] == list(range(1, 31))
    assert [history[0].role, history[0].content] == messages[0]
    assert all(m.token_count > 0 and m.role in ("user", "assistant") for m in history)
    assert sorted(m.content for m in history) == sorted(c for _, c in messages)


async def test_100_concurrent_writers_lose_nothing_and_never_reorder(backend: Any) -> None:
    user = new_user()
    expected = {f"writer {i}" for i in range(100)}
    chunks = [sorted(expected)[i::3] for i in range(3)]
    # Three processes: two children and this one, each with concurrent writers of its own.
    children = [
        _run_child(backend, user, "busy", [["user", c] for c in chunk]) for chunk in chunks[:2]
    ]
    memory = ConversationMemory(await backend.store_for(user), user, "busy")
    local = [memory.save_message("user", c) for c in chunks[2]]
    results = await asyncio.gather(*children, *local)

    seqs = [s for r in results[:2] for s in r] + [m.seq for m in results[2:]]
    assert sorted(seqs) == list(range(1, 101))
    history = await memory.history(limit=1000)
    assert len(history) == 100
    assert {m.content for m in history} == expected
    assert all(a.seq < b.seq for a, b in itertools.pairwise(history))
    assert all(a.created_at <= b.created_at for a, b in itertools.pairwise(history))


async def test_export_holds_everything_and_is_json(backend: Any) -> None:
    user = new_user()
    store = await backend.store_for(user)
    await ConversationMemory(store, user, "one").save_message("user", "hello €uro 💶")
    await ConversationMemory(store, user, "two").save_message("assistant", "hi")
    other = new_user()
    await ConversationMemory(await backend.store_for(other), other).save_message("user", "not mine")

    exported = await ConversationMemory(store, user).export()
    assert json.loads(json.dumps(exported)) == exported
    assert exported["user_id"] == user
    assert [c["conversation_id"] for c in exported["conversations"]] == ["one", "two"]
    assert exported["conversations"][0]["messages"][0]["content"] == "hello €uro 💶"
    assert "not mine" not in json.dumps(exported)


async def test_delete_leaves_no_row_of_the_user_and_spares_others(backend: Any) -> None:
    user, other = new_user(), new_user()
    store = await backend.store_for(user)
    memory = ConversationMemory(
        store, user, summarizer=_Fixed(), summary_threshold=1, max_messages=2
    )
    for i in range(6):
        await memory.save_message("user", f"m{i}")
    assert await memory.summarize() is not None
    await ConversationMemory(store, user, "second").save_message("user", "x")
    await ConversationMemory(await backend.store_for(other), other).save_message("user", "keep")

    receipt = await memory.delete()
    assert (receipt.messages, receipt.summaries, receipt.conversations) == (7, 1, 2)
    assert await backend.rows_of(user) == dict.fromkeys(receipt_tables(), 0)
    assert (await backend.rows_of(other))["conversations"] == 1
    assert (await memory.export())["conversations"] == []


async def test_retention_deletes_old_messages_and_summaries_derived_from_them(
    backend: Any,
) -> None:
    user = new_user()
    store = await backend.store_for(user)
    memory = ConversationMemory(
        store, user, summarizer=_Fixed(), summary_threshold=1, max_messages=2
    )
    old = [await memory.save_message("user", f"old {i}") for i in range(4)]
    summary = await memory.summarize()
    assert summary is not None
    assert summary.covers_up_to_seq == old[1].seq
    new = [await memory.save_message("user", f"new {i}") for i in range(3)]

    service = await backend.service_store()
    receipt = await service.cleanup(new[0].created_at)
    assert receipt.messages >= 4
    assert receipt.summaries >= 1
    assert [m.content for m in await memory.history()] == ["new 0", "new 1", "new 2"]
    counts = await backend.rows_of(user)
    assert counts == {"conversations": 3, "conversation_summaries": 0, "conversation_counters": 1}
    # The sequence continues after retention: order is never reset under remaining messages.
    assert (await memory.save_message("user", "later")).seq == new[-1].seq + 1

    everything = await memory.cleanup(older_than=timedelta(0))
    assert everything.messages == 4
    assert await backend.rows_of(user) == dict.fromkeys(receipt_tables(), 0)


def receipt_tables() -> tuple[str, ...]:
    return ("conversations", "conversation_summaries", "conversation_counters")


class _Fixed:
    """A deterministic summariser (the LLM-backed one is tested in test_summaries.py)."""

    model_name = "fixed"

    async def summarize(self, previous: str | None, messages: list[StoredMessage]) -> str:
        return f"{previous or ''} + {len(messages)} turns".strip()


@pytest.mark.parametrize("version_race", [True])
async def test_summary_versions_are_compare_and_set(backend: Any, version_race: bool) -> None:
    user = new_user()
    store = await backend.store_for(user)
    memory = ConversationMemory(
        store, user, "s", summarizer=_Fixed(), summary_threshold=1, max_messages=1
    )
    messages = [await memory.save_message("user", f"q{i}") for i in range(3)]
    kwargs = {
        "summary": "text",
        "covers_up_to_seq": messages[0].seq,
        "covers_from_created_at": messages[0].created_at,
        "covers_to_created_at": messages[0].created_at,
        "model": "m",
    }
    results = await asyncio.gather(
        *(store.save_summary(user, "s", base_version=0, **kwargs) for _ in range(5))
    )
    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    assert winners[0].version == 1
    assert await store.save_summary(user, "s", base_version=0, **kwargs) is None
    second = await store.save_summary(user, "s", base_version=1, **kwargs)
    assert second is not None
    assert second.version == 2
    snapshot = await store.load_context(user, "s", 10)
    assert snapshot.summary == second


async def test_failing_provider_and_failing_summariser_do_not_fail_get_context(
    backend: Any,
) -> None:
    from conversation_memory import LLMSummarizer
    from llm_client import LLMClient, RetryPolicy
    from llm_client.testing import Reply, TestModel

    user = new_user()
    model = TestModel(default=Reply.error(503))
    async with LLMClient(retry=RetryPolicy(max_attempts=1)) as llm:
        memory = ConversationMemory(
            await backend.store_for(user),
            user,
            max_messages=2,
            summary_threshold=2,
            summarizer=LLMSummarizer(llm, model=model),
            system_prompt="sys",
        )

        @memory.page_context("portfolio")
        async def broken(user_id: str) -> str:
            raise ConnectionError("portfolio service down")

        for i in range(6):
            await memory.save_message("user" if i % 2 == 0 else "assistant", f"t{i}")
        context = await memory.get_context(page="portfolio")
    assert model.request_count == 1
    assert context == [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": "t4"},
        {"role": "assistant", "content": "t5"},
    ]
    assert (await backend.rows_of(user))["conversation_summaries"] == 0
    assert len(await memory.history()) == 6


class TestGenericStoreContract(GenericStoreContract):
    """The testkit's checks every backend of every package passes (see conftest.CONTRACT)."""
