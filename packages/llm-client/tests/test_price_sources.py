"""Where a price comes from: registered > config > bundled > genai-prices > LiteLLM's map.

Provider-reported cost still wins at call time (see test_usage); an unpriced model is never $0.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from decimal import Decimal
from pathlib import Path

import pytest
from llm_client import (
    ConfigurationError,
    InMemoryBudget,
    LLMClient,
    LLMConfig,
    ModelPrice,
    price_for,
    register_model,
)
from llm_client._cli import app
from llm_client._pricing import _configured, _overrides, _overrides_lock, describe_price
from llm_client.testing import FakeLLMServer, Reply
from typer.testing import CliRunner

from ._helpers import fast_policy

PLAN_REVIEW_MODEL = "openrouter/anthropic/claude-3.5-sonnet"  # the apps' plan's review model
HOUSE = "openai/acme-house-model"  # no price map knows it
CONFIG = f"""
[prices."{HOUSE}"]
input_per_million = 0.50
output_per_million = 1.5
cached_input_per_million = 0.05
as_of = 2026-12-01
"""


@pytest.fixture(autouse=True)
def _forget_configured_prices() -> None:
    with _overrides_lock:
        for key in [k for k in _configured if "acme" in k or "gpt-4o-mini" in k]:
            del _configured[key]
        for key in [k for k in _overrides if "acme" in k]:
            del _overrides[key]


def test_the_plans_review_model_is_priced_without_litellm() -> None:
    price = price_for(PLAN_REVIEW_MODEL)
    assert price is not None
    assert price.source == "genai-prices"
    assert (price.input, price.output) == (Decimal("0.000003"), Decimal("0.000015"))


def test_config_prices_price_a_model_no_map_knows(tmp_path: Path) -> None:
    path = tmp_path / "llm.toml"
    path.write_text(CONFIG)
    assert price_for(HOUSE) is None
    LLMClient(config=LLMConfig.load(path, env={}))  # the client applies its config's prices
    price = price_for(HOUSE)
    assert price is not None
    assert (price.source, price.as_of.isoformat() if price.as_of else None) == (
        "config",
        "2026-12-01",
    )
    assert (price.input, price.output, price.cached_input) == (
        Decimal("5.0E-7"),
        Decimal("0.0000015"),
        Decimal("5E-8"),
    )
    assert type(price.input) is Decimal


def test_config_beats_the_libraries_and_registered_beats_config() -> None:
    rates = {"input_per_million": "9", "output_per_million": "9"}
    env = {"LLM_CLIENT_PRICES": json.dumps({"gpt-4o-mini": rates})}
    LLMClient(config=LLMConfig.load(env=env))
    assert price_for("gpt-4o-mini") == ModelPrice(
        Decimal("0.000009"), Decimal("0.000009"), source="config"
    )
    register_model("gpt-4o-mini", price=ModelPrice(Decimal(1), Decimal(2)))
    try:
        registered = price_for("gpt-4o-mini")
        assert registered is not None
        assert registered.source == "registered"
    finally:
        with _overrides_lock:
            _overrides.pop("gpt-4o-mini", None)
            _configured.pop("gpt-4o-mini", None)
    library = price_for("gpt-4o-mini")
    assert library is not None
    assert library.source == "genai-prices"


def test_config_prices_may_be_keyed_by_alias(tmp_path: Path) -> None:
    path = tmp_path / "llm.toml"
    path.write_text(
        f'[aliases]\nhouse = "{HOUSE}"\n[prices.house]\ninput_per_million = 1\n'
        "output_per_million = 2\n"
    )
    LLMClient(config=LLMConfig.load(path, env={}))
    price = price_for(HOUSE)
    assert price is not None
    assert price.output == Decimal("0.000002")


@pytest.mark.parametrize(
    ("toml", "env"),
    [
        (f'[prices."{HOUSE}"]\ninput_per_million = -1\noutput_per_million = 1\n', {}),
        (f'[prices."{HOUSE}"]\ninput_per_million = 1\n', {}),  # no output price
        (f'[prices."{HOUSE}"]\ninput_per_million = 1\noutput_per_million = 1\nfoo = 1\n', {}),
        ("", {"LLM_CLIENT_PRICES": "{not json"}),
        ("", {"LLM_CLIENT_PRICES": '["a list"]'}),
        ("", {"LLM_CLIENT_PRICES": '{"x": {"input_per_million": "NaN", "output_per_million": 1}}'}),
    ],
)
def test_bad_prices_are_a_configuration_error(
    tmp_path: Path, toml: str, env: dict[str, str]
) -> None:
    path = tmp_path / "llm.toml"
    path.write_text(toml)
    with pytest.raises(ConfigurationError):
        LLMConfig.load(path, env=env)


async def test_a_configured_price_lets_a_budget_admit_the_call(
    tmp_path: Path, fake_llm_server: FakeLLMServer
) -> None:
    path = tmp_path / "llm.toml"
    path.write_text(CONFIG)
    budget = InMemoryBudget(Decimal("0.10"))
    fake_llm_server.script(Reply.text("ok").with_usage(prompt_tokens=1000, completion_tokens=100))
    async with LLMClient(budget, LLMConfig.load(path, env={}), retry=fast_policy()) as llm:
        done = await llm.complete("hi", HOUSE, api_base=fake_llm_server.base_url, max_tokens=100)
    assert done.cost == Decimal("0.00065")  # 1000 x 0.50/M + 100 x 1.5/M
    assert done.attempts[0].price_source == "config"
    assert budget.spent == done.cost


runner = CliRunner()


def test_cli_price_names_the_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LLM_CLIENT_CONFIG", raising=False)
    monkeypatch.delenv("LLM_CLIENT_PRICES", raising=False)
    result = runner.invoke(app, ["price", PLAN_REVIEW_MODEL])
    assert result.exit_code == 0, result.output
    assert "genai-prices" in result.stdout
    assert "provider-reported cost (usage.cost)" in result.stdout  # OpenRouter reports its cost
    path = tmp_path / "llm.toml"
    path.write_text(CONFIG)
    monkeypatch.setenv("LLM_CLIENT_CONFIG", str(path))
    result = runner.invoke(app, ["price", HOUSE])
    assert result.exit_code == 0, result.output
    assert "config" in result.stdout
    assert "2026-12-01" in result.stdout


def test_cli_price_of_an_unpriced_model_is_one_error_line_saying_how_to_supply_one() -> None:
    code = "from llm_client._cli import app; app()"
    done = subprocess.run(
        [sys.executable, "-c", code, "price", "openai/nobody-prices-this"],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "COLUMNS": "80"},
    )
    assert done.returncode == 1
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: no price for 'openai/nobody-prices-this'")
    assert '[prices."openai/nobody-prices-this"]' in lines[0]
    assert "LLM_CLIENT_PRICES" in lines[0]
    assert "register_model" in lines[0]
    assert "Traceback" not in done.stderr


def test_describe_price_unpriced_stays_unpriced_never_zero() -> None:
    described = describe_price("openai/nobody-prices-this")
    assert described["source"] == "unpriced"
    assert described["input_per_million"] is None


def test_pricing_a_call_loads_neither_litellm_nor_its_map() -> None:
    code = textwrap.dedent(
        """
        import sys
        from llm_client._pricing import _litellm_map, price_for, estimate_cost
        assert price_for("openrouter/anthropic/claude-3.5-sonnet").source == "genai-prices"
        assert estimate_cost(1000, 100, "zai/glm-4.6") is not None
        assert _litellm_map.cache_info().currsize == 0, "LiteLLM's map was read"
        assert "litellm" not in sys.modules
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_a_genai_prices_entry_with_a_per_request_fee_is_not_taken_as_a_token_price() -> None:
    from llm_client._pricing import _from_genai

    # Perplexity's Sonar: $1 / $1 per 1M tokens plus $12 per 1,000 requests.
    assert _from_genai("perplexity/sonar") is None
    assert _from_genai("openai/gpt-4o") is not None  # token-priced models still resolve
