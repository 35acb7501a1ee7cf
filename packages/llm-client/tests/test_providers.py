"""The provider registry: one module per provider; adding one takes one file and one test."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal

import pytest
from llm_client import (
    ConfigurationError,
    InMemoryBudget,
    LLMClient,
    LLMConfig,
    ProviderSpec,
    QuotaExhaustedError,
    register_provider,
    unregister_provider,
)
from llm_client._providers import providers, resolve_route
from llm_client.testing import FakeLLMServer, Reply

from ._helpers import fast_policy
from .providers import acme

INPUT, OUTPUT = Decimal("1.5E-7"), Decimal("6E-7")  # gpt-4o-mini, dollars per token


@pytest.fixture
def with_acme() -> Iterator[ProviderSpec]:
    register_provider(acme.PROVIDER)
    yield acme.PROVIDER
    unregister_provider("acme")


async def test_a_throwaway_provider_added_in_one_module_is_routed_priced_and_ledgered(
    fake_llm_server: FakeLLMServer, with_acme: ProviderSpec
) -> None:
    # Its key and URL come from the variables the module declares, like a built-in's.
    env = {"ACME_API_KEY": "acme-key-123", "ACME_BASE_URL": fake_llm_server.base_url}
    config = LLMConfig.load(env=env)
    fake_llm_server.script(
        Reply.text("hello from acme").with_usage(prompt_tokens=10, completion_tokens=5)
    )
    budget = InMemoryBudget(Decimal("1"))
    async with LLMClient(budget, config=config, retry=fast_policy()) as llm:
        done = await llm.complete("hi", "acme/gpt-4o-mini", step="chat")
    assert done.output == "hello from acme"
    assert (done.provider, done.model) == ("acme", "acme/gpt-4o-mini")
    sent = fake_llm_server.last_request
    assert sent.model == "gpt-4o-mini"  # prefix stripped
    assert sent.body["usage"] == {"include": True}  # its usage quirk
    assert sent.headers["authorization"] == "Bearer [REDACTED]"  # its key was sent
    assert done.cost == 10 * INPUT + 5 * OUTPUT  # its price alias
    [record] = budget.records
    assert (record.provider, record.step, record.cost) == ("acme", "chat", done.cost)
    assert budget.spent == done.cost


async def test_a_providers_quota_code_is_never_retried(
    fake_llm_server: FakeLLMServer, with_acme: ProviderSpec
) -> None:
    body = {"error": {"code": "acme_out_of_credit", "message": "top up your account"}}
    fake_llm_server.script(Reply.error(429, body), Reply.text("never"))
    async with LLMClient(config=LLMConfig(), retry=fast_policy()) as llm:
        with pytest.raises(QuotaExhaustedError):
            await llm.chat("hi", "acme/gpt-4o-mini", api_base=fake_llm_server.base_url)
    assert fake_llm_server.request_count == 1


def test_a_missing_key_names_the_providers_variable(with_acme: ProviderSpec) -> None:
    with pytest.raises(ConfigurationError, match="ACME_API_KEY"):
        resolve_route("acme/gpt-4o-mini", LLMConfig(), {})


def test_builtin_providers_are_one_module_each() -> None:
    names = {spec.name for spec in providers()}
    assert {"openrouter", "zai", "openai", "anthropic", "litellm"} <= names
    from llm_client._providers import zai

    assert zai.PROVIDER.quota_codes == frozenset({"1113"})
    assert zai.PROVIDER.price_name("glm-4.6") == "zai/glm-4.6"


def test_registering_a_second_provider_under_a_taken_name_is_an_error(
    with_acme: ProviderSpec,
) -> None:
    other = ProviderSpec(name="acme", prefixes=("acme2/",))
    with pytest.raises(ConfigurationError, match="already registered"):
        register_provider(other)


@pytest.mark.parametrize("name", ["", "Acme", "acme-1"])
def test_provider_names_are_checked(name: str) -> None:
    with pytest.raises(ConfigurationError):
        ProviderSpec(name=name, prefixes=("x/",))


_NO_TESTING_IMPORT = """
import asyncio, json, os, sys
from llm_client import LLMClient, LLMConfig, RealRequestsBlockedError

async def main(base):
    async with LLMClient(config=LLMConfig()) as llm:
        text = await llm.chat("hi", "openai/gpt-4o-mini", api_base=base)
        os.environ["LLM_CLIENT_BLOCK_REAL_REQUESTS"] = "1"
        try:  # the guard runs for a non-loopback endpoint, and refuses it
            await llm.chat("hi", "openai/gpt-4o-mini", api_base="https://api.example.invalid/v1")
        except RealRequestsBlockedError:
            blocked = True
    loaded = sorted(m for m in sys.modules if m.startswith("llm_client.testing"))
    print(json.dumps([text, blocked, loaded]))

asyncio.run(main(sys.argv[1]))
"""


def test_the_core_never_imports_its_testing_package(fake_llm_server: FakeLLMServer) -> None:
    """A call and the real-request guard leave ``llm_client.testing`` unimported."""
    fake_llm_server.script(Reply.text("from the loopback server"))
    out = subprocess.run(
        [sys.executable, "-c", _NO_TESTING_IMPORT, fake_llm_server.base_url],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    text, blocked, loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert text == "from the loopback server"
    assert blocked is True
    assert loaded == []
