"""A PostgreSQL outage: typed errors while it lasts, no lost or reordered messages after."""

from __future__ import annotations

import logging
import uuid

import pytest
from conversation_memory import (
    ConversationMemory,
    LLMSummarizer,
    PostgresMessageStore,
    StoreUnavailableError,
)
from llm_client import LLMClient, RetryPolicy
from llm_client.testing import Reply, TestModel
from llm_common_testkit import TcpProxy


def _store(tcp_proxy: TcpProxy, postgres_db: str) -> PostgresMessageStore:
    # breaker_interval=0: the first call after the restart tries the database again at once.
    return PostgresMessageStore(
        tcp_proxy.url_for(postgres_db), max_size=2, connect_timeout=2, breaker_interval=0
    )


async def _six_turns(
    store: PostgresMessageStore, llm: LLMClient, model: TestModel
) -> ConversationMemory:
    """A memory whose next get_context folds t0-t3 into a summary (window: t4, t5)."""
    memory = ConversationMemory(
        store,
        uuid.uuid4(),
        max_messages=2,
        summary_threshold=2,
        summary_retry_interval=0,
        summarizer=LLMSummarizer(llm, model=model),
    )
    for i in range(6):
        await memory.save_message("user" if i % 2 == 0 else "assistant", f"t{i}")
    return memory


async def test_outage_during_summary_update_still_answers(
    postgres_db: str, tcp_proxy: TcpProxy, caplog: pytest.LogCaptureFixture
) -> None:
    def outage_then_answer(request: object) -> Reply:
        tcp_proxy.stop()  # the database goes away while the model is writing the summary
        return Reply.text("A summary that cannot be stored.")

    store = _store(tcp_proxy, postgres_db)
    async with store, LLMClient(retry=RetryPolicy(max_attempts=1)) as llm:
        memory = await _six_turns(store, llm, TestModel(handler=outage_then_answer))
        with caplog.at_level(logging.WARNING, logger="conversation_memory"):
            context = await memory.get_context()
        assert [m["content"] for m in context] == ["t4", "t5"]
        assert "will retry" in caplog.text

        with pytest.raises(StoreUnavailableError):
            await memory.save_message("user", "while the database is down")
        tcp_proxy.start()
        saved = await memory.save_message("user", "after the outage")
        assert saved.seq == 7
        history = await memory.history()
        assert [m.seq for m in history] == list(range(1, 8))


async def test_a_summary_paid_for_during_an_outage_is_not_paid_for_again(
    postgres_db: str, tcp_proxy: TcpProxy
) -> None:
    def answer_then_cut(request: object) -> Reply:
        tcp_proxy.stop()  # the summary is paid for, then cannot be stored
        return Reply.text("They compared a Roth and a traditional IRA.")

    model = TestModel(handler=answer_then_cut)
    store = _store(tcp_proxy, postgres_db)
    async with store, LLMClient(retry=RetryPolicy(max_attempts=1)) as llm:
        memory = await _six_turns(store, llm, model)
        assert [m["content"] for m in await memory.get_context()] == ["t4", "t5"]
        assert model.request_count == 1
        tcp_proxy.start()
        context = await memory.get_context()  # the update is retried: stored, not re-paid
        assert model.request_count == 1
        assert context[0]["content"].endswith("They compared a Roth and a traditional IRA.")
        snapshot = await store.load_context(memory.user_id, memory.conversation_id, 2)
        assert snapshot.summary is not None
        assert (snapshot.summary.version, snapshot.summary.covers_up_to_seq) == (1, 4)


async def test_a_save_cut_after_it_was_sent_says_it_may_have_been_stored(
    postgres_db: str, tcp_proxy: TcpProxy
) -> None:
    import asyncio
    import time

    import psycopg

    admin = await psycopg.AsyncConnection.connect(postgres_db, autocommit=True)
    try:
        # One slow insert, so the cut lands while the server is running it.
        await admin.execute(
            "create function slow_insert() returns trigger language plpgsql as $$ begin "
            "if new.content = 'slow' then perform pg_sleep(1); end if; return new; end $$"
        )
        await admin.execute(
            "create trigger slow_insert before insert on conversations "
            "for each row execute function slow_insert()"
        )
        store = _store(tcp_proxy, postgres_db)
        async with store:
            memory = ConversationMemory(store, uuid.uuid4())
            await memory.save_message("user", "first")
            saving = asyncio.create_task(memory.save_message("user", "slow"))
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:  # poll: until the server sleeps in the trigger
                cursor = await admin.execute(
                    "select count(*) from pg_stat_activity where wait_event = 'PgSleep'"
                )
                if (await cursor.fetchone()) != (0,):
                    break
            tcp_proxy.stop()
            with pytest.raises(StoreUnavailableError) as cut:
                await saving
            assert cut.value.maybe_stored  # sent: the server may (and here will) commit it
            with pytest.raises(StoreUnavailableError) as refused:
                await memory.save_message("user", "while the database is down")
            assert not refused.value.maybe_stored  # never sent: safe to retry blindly
            tcp_proxy.start()
            deadline = time.monotonic() + 10
            history = await memory.history()
            while len(history) < 2 and time.monotonic() < deadline:  # the server finishes it
                await asyncio.sleep(0.05)
                history = await memory.history()
        assert [m.content for m in history] == ["first", "slow"]  # it was stored after all
    finally:
        await admin.close()
