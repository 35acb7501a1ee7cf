"""Shared fixtures for llm-client's tests: a loopback OpenAI-compatible server, no real calls."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

# The suite must never reach a paid provider; the guard in llm_client.testing reads this at every
# request. LiteLLM must not fetch its price map from the internet when a test imports it.
os.environ.setdefault("LLM_CLIENT_BLOCK_REAL_REQUESTS", "1")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from llm_client.testing import FakeLLMServer


@pytest.fixture(scope="session")
def _fake_llm_server_session() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as server:
        yield server


@pytest.fixture
def fake_llm_server(_fake_llm_server_session: FakeLLMServer) -> Iterator[FakeLLMServer]:
    """The session's loopback LLM server, with script, handler and recorded requests cleared."""
    _fake_llm_server_session.reset()
    yield _fake_llm_server_session
    _fake_llm_server_session.reset()
