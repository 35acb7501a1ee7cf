"""Price lookups: genai-prices and LiteLLM's map as Decimal, OpenRouter slugs, z.ai, our table."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import date
from decimal import Decimal

import pytest
from llm_client._errors import ConfigurationError, LLMClientError
from llm_client._pricing import (
    ModelInfo,
    cost_for,
    describe_price,
    estimate_cost,
    model_info,
    price_for,
    register_model,
)
from llm_client._usage import ModelPrice, Usage, cost_of

MILLION = Decimal(1_000_000)


def per_million(value: Decimal | None) -> Decimal | None:
    return None if value is None else value * MILLION


def test_library_priced_model_is_priced_exactly_in_decimal() -> None:
    price = price_for("gpt-4o-mini")
    assert price is not None
    assert price.source == "genai-prices"
    assert price.as_of is None
    for value in (price.input, price.output, price.cached_input):
        assert type(value) is Decimal
    assert per_million(price.input) == Decimal("0.15")
    assert per_million(price.output) == Decimal("0.6")
    assert per_million(price.cached_input) == Decimal("0.075")


@pytest.mark.parametrize(
    ("model", "underlying"),
    [
        ("openrouter/anthropic/claude-sonnet-4.5", "claude-sonnet-4-5"),  # dots vs dashes
        ("openrouter/openai/gpt-4o-mini", "gpt-4o-mini"),
        ("openrouter/z-ai/glm-4.6", "zai/glm-4.6"),
        ("openrouter/openai/gpt-4o-mini:nitro", "gpt-4o-mini"),  # routing variant, same model
        ("OpenRouter/OpenAI/GPT-4o-mini", "gpt-4o-mini"),
        ("anthropic/claude-sonnet-4-5", "claude-sonnet-4-5"),
        ("openai/gpt-4o-mini", "gpt-4o-mini"),
        ("glm-4.6", "zai/glm-4.6"),
        ("GLM-4.6", "zai/glm-4.6"),
    ],
)
def test_model_strings_resolve_to_the_underlying_models_price(model: str, underlying: str) -> None:
    price = price_for(model)
    assert price is not None
    assert price == price_for(underlying)


def test_openrouter_claude_slug_gets_anthropics_prices() -> None:
    price = price_for("openrouter/anthropic/claude-sonnet-4.5")
    assert price is not None
    assert per_million(price.input) == Decimal(3)
    assert per_million(price.output) == Decimal(15)
    assert per_million(price.cached_input) == Decimal("0.3")
    assert per_million(price.cache_write) == Decimal("3.75")


def test_zai_glm_prices_match_zai_list_prices() -> None:
    # docs.z.ai/guides/overview/pricing: GLM-4.6 $0.60 in, $2.20 out, $0.11 cached, per 1M.
    price = price_for("zai/glm-4.6")
    assert price is not None
    assert per_million(price.input) == Decimal("0.6")
    assert per_million(price.output) == Decimal("2.2")
    assert per_million(price.cached_input) == Decimal("0.11")


@pytest.mark.parametrize(
    "model",
    ["no-such-model", "openrouter/nobody/nothing-1", "openai/my-local-model", "", "openai/test"],
)
def test_unknown_models_are_unpriced_never_zero(model: str) -> None:
    assert price_for(model) is None
    assert cost_for(Usage(1000, 1000), model) == (None, "unpriced")
    assert estimate_cost(1000, 1000, model) is None
    info = model_info(model)
    assert info.price is None
    assert info.input_cost_per_token is None
    assert info.source is None


def test_the_test_model_is_explicitly_free_from_our_table() -> None:
    price = price_for("test")
    assert price == ModelPrice(
        Decimal(0), Decimal(0), Decimal(0), None, "bundled", date(2026, 11, 1)
    )
    cost, source = cost_for(Usage(500, 500), "test")
    assert (cost, source) == (Decimal(0), "bundled")
    assert type(cost) is Decimal


def test_openrouter_latest_alias_slug_is_priced_by_genai_prices() -> None:
    # genai-prices lists OpenRouter's own "~z-ai/glm-latest" slug; OpenRouter's reported
    # usage.cost wins at call time anyway.
    price = price_for("openrouter/~z-ai/glm-latest")
    assert price is not None
    assert price.source == "genai-prices"
    assert price.input > 0
    assert price.output > 0


@pytest.mark.litellm
def test_openrouter_latest_alias_follows_litellms_alias_when_only_litellm_has_it() -> None:
    # LiteLLM's zai/glm-latest row is an alias of zai/glm-5.3 ($1.40 in, $4.40 out per 1M).
    price = price_for("zai/glm-latest")
    assert price is not None
    assert price.source == "litellm"
    assert per_million(price.input) == Decimal("1.4")
    assert per_million(price.output) == Decimal("4.4")


def test_openrouter_free_variant_is_explicitly_zero() -> None:
    price = price_for("openrouter/z-ai/glm-4.6:free")
    assert price is not None
    assert (price.input, price.output, price.source) == (Decimal(0), Decimal(0), "bundled")


def test_model_info_has_context_window_and_prices() -> None:
    info = model_info("openrouter/anthropic/claude-sonnet-4.5")
    assert isinstance(info, ModelInfo)
    assert info.model == "openrouter/anthropic/claude-sonnet-4.5"
    assert info.provider == "openrouter"
    assert info.max_input_tokens == 1_000_000  # OpenRouter's listing, from genai-prices
    assert info.input_cost_per_token == Decimal("0.000003")
    assert info.output_cost_per_token == Decimal("0.000015")
    assert info.source == "genai-prices"
    assert model_info("gpt-4o-mini").max_input_tokens == 128_000


@pytest.mark.litellm
def test_model_info_fills_limits_genai_prices_lacks_from_litellms_map() -> None:
    info = model_info("openrouter/z-ai/glm-4.6")
    assert info.source == "genai-prices"  # the price still comes from genai-prices
    assert (info.max_input_tokens, info.max_output_tokens) == (200_000, 128_000)


def test_cost_for_prefers_the_provider_reported_cost() -> None:
    usage = Usage(1_000_000, 1_000_000)
    assert cost_for(usage, "gpt-4o-mini", Decimal("0.42")) == (Decimal("0.42"), "provider")
    # Even for an unpriced model, a provider-reported cost is a real cost.
    assert cost_for(usage, "no-such-model", Decimal("0.01")) == (Decimal("0.01"), "provider")
    assert cost_for(usage, "gpt-4o-mini", Decimal(0)) == (Decimal(0), "provider")


def test_cost_for_computes_from_the_map_with_cached_and_reasoning_tokens() -> None:
    usage = Usage(
        prompt_tokens=10_000, completion_tokens=2_000, cached_prompt_tokens=4_000,
        reasoning_tokens=1_500,
    )  # fmt: skip
    cost, source = cost_for(usage, "gpt-4o-mini")
    # 6000 * 0.15/M + 4000 * 0.075/M + 2000 * 0.6/M (reasoning is inside the 2000).
    assert cost == Decimal("0.0009") + Decimal("0.0003") + Decimal("0.0012")
    assert source == "genai-prices"


def test_estimate_is_full_uncached_input_plus_max_output() -> None:
    assert estimate_cost(10_000, 1_000, "gpt-4o-mini") == Decimal("0.0015") + Decimal("0.0006")
    # Anthropic cache writes cost more than plain input: the bound assumes the dearest rate
    # (here the long-context tier's: $7.50 per 1M above 200k prompt tokens).
    assert estimate_cost(100_000, 0, "claude-sonnet-4-5") == Decimal("0.375")
    assert estimate_cost(1_000_000, 0, "claude-sonnet-4-5") == Decimal("7.5")
    assert estimate_cost(0, 0, "gpt-4o-mini") == Decimal(0)


def test_register_model_overrides_price_and_context_window() -> None:
    price = ModelPrice(input=Decimal("0.000001"), output=Decimal("0.000002"))
    register_model("acme/house-model", price=price, provider="acme", max_input_tokens=32_000)
    info = model_info("ACME/house-model")
    assert (info.provider, info.max_input_tokens, info.price) == ("acme", 32_000, price)
    assert cost_of(Usage(1000, 1000), price) == Decimal("0.003")

    # An override of the context window alone keeps the map's price.
    register_model("openrouter/openai/gpt-4o-mini:floor", max_input_tokens=64_000)
    info = model_info("openrouter/openai/gpt-4o-mini:floor")
    assert info.max_input_tokens == 64_000
    assert info.price == price_for("gpt-4o-mini")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"input": Decimal(-1), "output": Decimal(0)},
        {"input": Decimal("NaN"), "output": Decimal(0)},
        {"input": 0.1, "output": Decimal(0)},  # float is refused: money is Decimal
        {"input": Decimal(0), "output": Decimal(0), "cached_input": Decimal("-0.1")},
    ],
)
def test_invalid_prices_raise_a_typed_error(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError) as caught:
        ModelPrice(**kwargs)  # type: ignore[arg-type]
    assert isinstance(caught.value, LLMClientError)


def test_describe_price_for_the_cli() -> None:
    described = describe_price("openrouter/z-ai/glm-4.6")
    assert {k: v for k, v in described.items() if not k.startswith("max_")} == {
        "model": "openrouter/z-ai/glm-4.6",
        "provider": "openrouter",
        "source": "genai-prices",
        "as_of": None,
        "input_per_million": "0.6",
        "output_per_million": "2.2",
        "cached_input_per_million": "0.11",
        "cache_write_per_million": None,
        "reasoning_per_million": None,
        "long_context": None,
    }
    described = describe_price("test")
    assert (described["source"], described["as_of"]) == ("bundled", "2026-11-01")
    assert described["input_per_million"] == "0"
    unpriced = describe_price("no-such-model")
    assert unpriced["source"] == "unpriced"
    assert unpriced["input_per_million"] is None


def test_long_context_tier_bills_the_whole_call_at_the_higher_rate() -> None:
    # Gemini 2.5 Pro: $1.25/$10 per 1M up to 200k prompt tokens, $2.50/$15 above.
    price = price_for("openrouter/google/gemini-2.5-pro")
    assert price is not None
    assert [threshold for threshold, _ in price.tiers] == [200_000]
    at_limit = cost_of(Usage(200_000, 1_000), price)
    above = cost_of(Usage(200_001, 1_000), price)
    assert at_limit == 200_000 * Decimal("0.00000125") + 1_000 * Decimal("0.00001")
    assert above == 200_001 * Decimal("0.0000025") + 1_000 * Decimal("0.000015")
    assert estimate_cost(300_000, 0, "gemini/gemini-2.5-pro") == Decimal("0.75")
    assert describe_price("gemini/gemini-2.5-pro")["long_context"] == (
        "above 200000 tokens: input 2.5, output 15"
    )


@pytest.mark.litellm
def test_separately_priced_reasoning_tokens_are_billed_once_at_their_rate() -> None:
    price = price_for("dashscope/qwen-turbo")
    assert price is not None
    assert price.reasoning is not None
    assert price.reasoning != price.output
    # 300 completion tokens of which 200 reasoning: 100 at the output rate, 200 at reasoning.
    usage = Usage(prompt_tokens=0, completion_tokens=300, reasoning_tokens=200)
    assert cost_of(usage, price) == 100 * price.output + 200 * price.reasoning


@pytest.mark.litellm
def test_every_litellm_row_parses_without_error() -> None:
    from llm_client._pricing import _litellm_map, _map_price

    rows = _litellm_map()
    assert len(rows) > 1000
    priced = [price for row in rows.values() if (price := _map_price(row)) is not None]
    assert len(priced) > 1000
    for price in priced:
        assert all(type(v) is Decimal for v in (price.input, price.output))


def test_price_lookup_never_imports_litellm() -> None:
    code = textwrap.dedent(
        """
        import sys
        from llm_client._pricing import price_for, model_info
        assert price_for("gpt-4o-mini") is not None
        assert price_for("openrouter/z-ai/glm-4.6") is not None
        assert model_info("gpt-4o-mini").max_input_tokens
        leaked = sorted(m for m in sys.modules if m == "litellm" or m.startswith("litellm."))
        assert not leaked, leaked
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
