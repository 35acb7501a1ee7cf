"""Text that is not valid Unicode is refused at the boundary, before any paid call (issue 17)."""

from __future__ import annotations

from typing import Any

import pytest
from llm_client import InvalidMessagesError, LLMClient, LLMConfig
from llm_client.testing import FakeLLMServer

from ._helpers import RecordingSink, fast_policy

MODEL = "openai/gpt-4o-mini"
LONE = "caf\udce9"  # a lone surrogate, as bytes decoded with errors="surrogateescape" leave


@pytest.mark.parametrize(
    "messages",
    [
        LONE,
        [{"role": "user", "content": LONE}],
        [{"role": "system", "content": "ok"}, {"role": "user", "content": f"x {LONE} y"}],
        [{"role": "user", "content": [{"type": "text", "text": LONE}]}],
        [{"role": "user", "content": "ok", "name": LONE}],
    ],
)
async def test_lone_surrogates_in_messages_are_refused_before_anything_is_paid(
    fake_llm_server: FakeLLMServer, messages: Any
) -> None:
    sink = RecordingSink()
    async with LLMClient(sink, config=LLMConfig(), retry=fast_policy()) as llm:
        with pytest.raises(InvalidMessagesError, match="not valid Unicode"):
            await llm.chat(messages, MODEL, api_base=fake_llm_server.base_url)
        with pytest.raises(InvalidMessagesError, match="not valid Unicode"):
            llm.stream(messages, MODEL, api_base=fake_llm_server.base_url)
    assert sink.events == []
    assert fake_llm_server.request_count == 0


@pytest.mark.parametrize(
    "where",
    [{"model": f"openai/{LONE}"}, {"model": ["test", f"openai/{LONE}"]}, {"step": LONE}],
)
async def test_lone_surrogates_in_model_or_step_are_refused(
    fake_llm_server: FakeLLMServer, where: dict[str, Any]
) -> None:
    sink = RecordingSink()
    kwargs: dict[str, Any] = {"model": MODEL, **where}
    async with LLMClient(sink, config=LLMConfig(), retry=fast_policy()) as llm:
        with pytest.raises(InvalidMessagesError, match="not valid Unicode"):
            await llm.chat("hi", api_base=fake_llm_server.base_url, **kwargs)
    assert sink.events == []
    assert fake_llm_server.request_count == 0


async def test_valid_non_ascii_text_is_sent_unchanged(fake_llm_server: FakeLLMServer) -> None:
    text = "café — 東京 🙂"
    async with LLMClient(config=LLMConfig(), retry=fast_policy()) as llm:
        await llm.chat(text, MODEL, api_base=fake_llm_server.base_url)
    assert fake_llm_server.last_request.messages == [{"role": "user", "content": text}]
