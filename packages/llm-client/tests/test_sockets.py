"""No sockets stay open after many ``asyncio.run`` cycles of create → call → close.

LiteLLM caches an HTTP client per provider and event loop and never closes it: without
llm-client's cleanup, 300 cycles strand ~500 sockets here (both ends of each connection, as the
loopback server lives in this process).
"""

from __future__ import annotations

import asyncio
import gc
import os

import pytest
from llm_client import LLMClient, LLMConfig
from llm_client.testing import FakeLLMServer

from ._helpers import needs_litellm

CYCLES = 300


def open_sockets() -> int:
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}").startswith("socket:"):
                count += 1
        except OSError:  # the fd of listdir itself, already closed
            continue
    return count


@pytest.mark.slow
@pytest.mark.parametrize(
    "model",
    [
        "openai/gpt-4o-mini",  # openai SDK path
        needs_litellm("litellm/openai/gpt-4o-mini"),  # LiteLLM, handed our own client
        needs_litellm("litellm/hosted_vllm/gpt-4o-mini"),  # LiteLLM, a client cached per loop
    ],
)
def test_no_sockets_left_after_300_asyncio_run_cycles(
    fake_llm_server: FakeLLMServer, model: str
) -> None:
    async def cycle() -> None:
        async with LLMClient(config=LLMConfig()) as llm:
            assert await llm.chat("hi", model, api_base=fake_llm_server.base_url)

    asyncio.run(cycle())  # warm-up: imports, lazily created module state
    gc.collect()
    before = open_sockets()
    for _ in range(CYCLES):
        asyncio.run(cycle())
    gc.collect()
    after = open_sockets()
    assert fake_llm_server.request_count == CYCLES + 1
    assert after <= before, f"{after - before} sockets leaked over {CYCLES} cycles"
