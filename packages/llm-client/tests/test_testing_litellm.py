"""LiteLLM reaches the loopback server as an OpenAI-compatible provider (model="openai/<name>")."""

from __future__ import annotations

import os

import pytest
from llm_client.testing import FakeLLMServer, Reply

pytestmark = pytest.mark.litellm  # LiteLLM itself, against the loopback server


async def test_litellm_acompletion_reaches_the_server(fake_llm_server: FakeLLMServer) -> None:
    os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"  # before the (slow) import: no download
    import litellm

    fake_llm_server.script(Reply.text("from the fake").with_usage(prompt_tokens=7, cost="0.5"))
    try:
        response = await litellm.acompletion(
            model="openai/foo",
            api_base=fake_llm_server.base_url,
            api_key="sk-litellm-secret",
            messages=[{"role": "user", "content": "ping"}],
            max_retries=0,
        )
    finally:
        await litellm.close_litellm_async_clients()
    assert response.choices[0].message.content == "from the fake"
    assert response.usage.prompt_tokens == 7
    sent = fake_llm_server.last_request
    assert sent.model == "foo"
    assert sent.messages == [{"role": "user", "content": "ping"}]
    assert "sk-litellm-secret" not in repr(sent)
