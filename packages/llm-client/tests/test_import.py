"""``import llm_client`` is cheap: the heavy dependencies load on first use only."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap


def test_import_does_not_load_heavy_dependencies() -> None:
    code = (
        "import json, sys, llm_client;"
        "print(json.dumps(sorted(m for m in ('litellm', 'openai', 'instructor', 'tiktoken',"
        " 'httpx', 'tenacity') if m in sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert json.loads(out.stdout) == []


def test_public_names_resolve_lazily() -> None:
    code = (
        "import sys, llm_client;"
        "assert 'openai' not in sys.modules;"
        "llm_client.LLMClient; llm_client.Completion; llm_client.count_tokens;"
        "assert 'litellm' not in sys.modules;"
        "print(llm_client.__version__)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip()


def test_a_budgeted_call_on_the_default_path_loads_no_litellm_and_no_tokenizer_table() -> None:
    """OpenAI-compatible routes (OpenAI, OpenRouter, z.ai) need nothing from the [litellm]
    extra, and the cost sink's reservation uses the free bound: no tiktoken table is built."""
    code = textwrap.dedent(
        """
        import asyncio, sys
        from decimal import Decimal
        from llm_client import InMemoryBudget, LLMClient, LLMConfig
        from llm_client.testing import FakeLLMServer, Reply

        async def main(server):
            budget = InMemoryBudget(Decimal("1"))
            async with LLMClient(budget, LLMConfig(), api_keys={"zai": "k"}) as llm:
                server.script(Reply.text("a").with_usage(prompt_tokens=5, completion_tokens=1))
                await llm.chat("hi", "openai/gpt-4o-mini", api_base=server.base_url)
                server.script(Reply.text("b").with_usage(prompt_tokens=5, completion_tokens=1))
                await llm.chat("hi", "zai/glm-4.6", api_base=server.zai_base_url)
            assert budget.spent > 0 and len(budget.records) == 2

        with FakeLLMServer() as server:
            asyncio.run(main(server))
        import llm_client._tokens as tokens
        assert not tokens._encodings, sorted(tokens._encodings)
        leaked = sorted(m for m in sys.modules if m.split(".")[0] in ("litellm", "tiktoken"))
        assert not leaked, leaked
        print("ok")
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
