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


async def test_outage_during_summary_update_still_answers(
    postgres_db: str, tcp_proxy: TcpProxy, caplog: pytest.LogCaptureFixture
) -> None:
    def outage_then_answer(request: object) -> Reply:
        tcp_proxy.stop()  # the database goes away while the model is writing the summary
        return Reply.text("A summary that cannot be stored.")

    # breaker_interval=0: the first call after the restart tries the database again at once.
    store = PostgresMessageStore(
        tcp_proxy.url_for(postgres_db), max_size=2, connect_timeout=2, breaker_interval=0
    )
    async with store, LLMClient(retry=RetryPolicy(max_attempts=1)) as llm:
        memory = ConversationMemory(
            store,
            uuid.uuid4(),
            max_messages=2,
            summary_threshold=2,
            summarizer=LLMSummarizer(llm, model=TestModel(handler=outage_then_answer)),
        )
        for i in range(6):
            await memory.save_message("user" if i % 2 == 0 else "assistant", f"t{i}")
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
