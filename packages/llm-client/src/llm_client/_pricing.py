"""Prices and context windows per model, and exact Decimal cost of a call.

Where a price comes from, first match wins (``llm-client price MODEL`` names it):

1. ``registered``: prices registered at runtime with :func:`register_model`;
2. ``config``: the ``[prices]`` table of the llm-client configuration file, or the
   ``LLM_CLIENT_PRICES`` environment variable (see :mod:`llm_client._config`);
3. ``bundled``: llm-client's own dated table ``_prices.toml``, only for what neither library
   below prices (and the offline test model);
4. ``genai-prices``: Pydantic's maintained price library (Decimal prices, OpenRouter, z.ai,
   OpenAI, Anthropic, Google and ~40 more providers), always installed;
5. ``litellm``: LiteLLM's bundled price map, when the ``[litellm]`` extra is installed, read as
   JSON straight from the installed package **without importing litellm** (its import costs
   ~2 s) and with every number parsed as Decimal.

A provider-reported cost (OpenRouter's ``usage.cost``) still wins over all of them when it is
plausible (see :func:`plausible_cost`). Model strings are resolved like LiteLLM does, plus
what it cannot do: OpenRouter slugs (``openrouter/anthropic/claude-sonnet-4.5``) map to the
underlying model's entry (``claude-sonnet-4-5``), and bare GLM names (``glm-4.6``) map to
z.ai's (``zai/glm-4.6``). A model without a known price resolves to None: callers record it
as *unpriced*, never as $0.
"""

from __future__ import annotations

import importlib.util
import logging
import re
import threading
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import cache, lru_cache
from pathlib import Path
from typing import Any, Final

from llm_client._errors import ConfigurationError
from llm_client._usage import ModelPrice, PriceSource, Usage, cost_of

__all__ = [
    "ModelInfo", "ModelPrice", "PriceSource", "cost_for", "cost_of", "describe_price",
    "estimate_cost", "model_info", "plausible_cost", "price_for", "register_model",
    "use_config_prices",
]  # fmt: skip

logger = logging.getLogger(__name__)

_MAP_FILE: Final = "model_prices_and_context_window_backup.json"
_MILLION: Final = Decimal(1_000_000)

# OpenRouter vendor slug -> key prefixes the same model has in LiteLLM's map ("" = bare name).
_VENDOR_PREFIXES: Final[dict[str, tuple[str, ...]]] = {
    "openai": ("", "openai/"), "anthropic": ("", "anthropic/"),
    "z-ai": ("zai/",), "zai": ("zai/",), "zhipu": ("zai/",),
    "google": ("gemini/", ""), "gemini": ("gemini/", ""), "x-ai": ("xai/",), "xai": ("xai/",),
    "deepseek": ("deepseek/",), "mistralai": ("mistral/",), "mistral": ("mistral/",),
    "moonshotai": ("moonshot/",), "moonshot": ("moonshot/",), "qwen": ("dashscope/",),
    "cohere": ("cohere_chat/", ""),
}  # fmt: skip
# OpenRouter routing variants that do not change which model answers (":free" does: see below).
_OPENROUTER_VARIANTS: Final = frozenset({"nitro", "floor", "online", "exacto", "thinking"})


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """What llm-client knows about a model: context window and price.

    Attributes:
        model: The model string as asked for.
        provider: Provider name (``openai``, ``anthropic``, ``zai``, ...), or None if unknown.
        max_input_tokens: Context window for the prompt, or None if unknown.
        max_output_tokens: Largest completion the model produces, or None if unknown.
        price: Per-token prices, or None when the model is unpriced.
    """

    model: str
    provider: str | None
    max_input_tokens: int | None
    max_output_tokens: int | None
    price: ModelPrice | None

    @property
    def input_cost_per_token(self) -> Decimal | None:
        """Uncached input price per token, or None when unpriced."""
        return None if self.price is None else self.price.input

    @property
    def output_cost_per_token(self) -> Decimal | None:
        """Output price per token, or None when unpriced."""
        return None if self.price is None else self.price.output

    @property
    def source(self) -> PriceSource | None:
        """Where the price comes from, or None when unpriced."""
        return None if self.price is None else self.price.source


_NO_ENTRY: Final = ModelInfo("", None, None, None, None)
_overrides: dict[str, ModelInfo] = {}  # register_model()
_configured: dict[str, ModelInfo] = {}  # [prices] of the configuration
_overrides_lock = threading.Lock()


def _dec(value: object) -> Decimal | None:
    """A map/table number as Decimal (ints and Decimal-parsed floats; never via float)."""
    if isinstance(value, Decimal | int | str) and not isinstance(value, bool):
        with suppress(ArithmeticError):
            return Decimal(value)
    return None


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@cache
def _litellm_map() -> dict[str, dict[str, Any]]:
    """LiteLLM's bundled price map, read once; empty when litellm is not installed."""
    import json  # deferred: keeps `import llm_client` cheap

    spec = importlib.util.find_spec("litellm")  # finds the package without executing it
    if spec is None or not spec.submodule_search_locations:
        return {}
    for location in spec.submodule_search_locations:
        path = Path(location) / _MAP_FILE
        if path.is_file():
            data = json.loads(path.read_bytes(), parse_float=Decimal)
            rows = ((k.lower(), v) for k, v in data.items() if isinstance(v, dict))
            # Keys lower-cased for case-insensitive lookups; the first spelling wins.
            return {k: v for k, v in reversed(list(rows)) if k != "sample_spec"}
    return {}


@cache
def _own_table() -> dict[str, tuple[ModelInfo, bool]]:
    """llm-client's ``_prices.toml``: model -> (entry, exact-match-only)."""
    import tomllib
    from importlib import resources

    text = resources.files("llm_client").joinpath("_prices.toml").read_text(encoding="utf-8")
    data = tomllib.loads(text, parse_float=Decimal)
    return {
        model.lower(): (_entry_per_million(row, "bundled"), bool(row.get("exact", False)))
        for model, row in data.get("models", {}).items()
    }


def _entry_per_million(row: Mapping[str, Any], source: PriceSource) -> ModelInfo:
    """A ``*_per_million`` row (our table, the configuration) as a per-token entry."""
    # Per million -> per token; scaleb shifts the exponent, so it is exact in any context.
    rates = {f: _dec(row.get(f"{f}_per_million")) for f in _FIELDS.values()}
    as_of = row.get("as_of")
    price = ModelPrice(
        **{f: None if v is None else v.scaleb(-6) for f, v in rates.items()},  # type: ignore[arg-type]
        source=source,
        as_of=as_of if isinstance(as_of, date) else None,
    )
    limits = _int(row.get("max_input_tokens")), _int(row.get("max_output_tokens"))
    return ModelInfo("", row.get("provider"), *limits, price)


def use_config_prices(prices: Mapping[str, Mapping[str, Any]]) -> None:
    """Price models from the configuration's ``[prices]`` table (process-wide).

    Called by :class:`~llm_client.LLMClient` and the CLI with ``LLMConfig.prices``; entries
    are added to (and replace) those of earlier calls. :func:`register_model` still wins.

    Args:
        prices: Model string -> ``{input_per_million, output_per_million, ...}`` (Decimals).
    """
    entries = {
        model.strip().lower(): _entry_per_million(row, "config") for model, row in prices.items()
    }
    with _overrides_lock:
        _configured.update(entries)


# Model-string vendor -> genai-prices provider id (OpenRouter slugs keep their vendor/model).
_GENAI_PROVIDERS: Final[dict[str, str]] = {
    "openai": "openai", "anthropic": "anthropic", "zai": "zai", "z-ai": "zai",
    "gemini": "google", "google": "google", "vertex_ai": "google", "mistral": "mistral",
    "deepseek": "deepseek", "xai": "x-ai", "x-ai": "x-ai", "groq": "groq", "cohere": "cohere",
    "moonshot": "moonshotai", "moonshotai": "moonshotai", "together_ai": "together",
    "fireworks_ai": "fireworks", "cerebras": "cerebras", "perplexity": "perplexity",
}  # fmt: skip
# genai-prices key -> ModelPrice field (per million tokens). Other units (images, audio, web
# searches) are billed apart from a chat call's tokens and are not part of its cost.
_GENAI_FIELDS: Final = {
    "input_mtok": "input",
    "output_mtok": "output",
    "cache_read_mtok": "cached_input",
    "cache_write_mtok": "cache_write",
    "output_reasoning_mtok": "reasoning",
}


def _genai_ref(model: str) -> tuple[str | None, str] | None:
    """``(provider id, model ref)`` to look a lower-cased model string up in genai-prices."""
    vendor, sep, name = model.partition("/")
    if vendor == "openrouter" and sep:
        base, _, variant = name.partition(":")
        if variant and variant not in _OPENROUTER_VARIANTS and variant != "free":
            return None
        return "openrouter", base
    if sep:
        provider = _GENAI_PROVIDERS.get(vendor)
        return None if provider is None else (provider, name)
    return ("zai", model) if model.startswith("glm-") else (None, model)


def _from_genai(model: str) -> ModelInfo | None:
    """genai-prices' entry of a lower-cased model string (its current price), or None."""
    ref = _genai_ref(model)
    if ref is None:
        return None
    from genai_prices import data_snapshot, types  # deferred: ~10 MB, loaded on first price

    try:
        provider, info = data_snapshot.get_snapshot().find_provider_model(
            ref[1], None, ref[0], None
        )
    except LookupError:
        return None
    prices = info.get_prices(datetime.now(UTC))
    if prices.__dict__.get("requests_kcount") is not None:
        return None  # a fee per request (Perplexity's Sonar) that a per-token price would miss
    base: dict[str, Decimal | None] = dict.fromkeys(_GENAI_FIELDS.values())
    by_threshold: dict[int, dict[str, Decimal]] = {}
    for key, field in _GENAI_FIELDS.items():
        value = prices.__dict__.get(key)
        if isinstance(value, types.TieredPrices):
            base[field] = value.base.scaleb(-6)
            for tier in value.tiers:
                by_threshold.setdefault(tier.start, {})[field] = tier.price.scaleb(-6)
        elif isinstance(value, Decimal):
            base[field] = value.scaleb(-6)
    if base["input"] is None or base["output"] is None:
        return None  # priced per request, image or second: not a chat model's token price
    tiers = tuple(
        (t, ModelPrice(**(base | r), source="genai-prices"))  # type: ignore[arg-type]
        for t, r in sorted(by_threshold.items())
    )
    price = ModelPrice(**base, source="genai-prices", tiers=tiers)  # type: ignore[arg-type]
    return ModelInfo("", provider.id, info.context_window, None, price)


_FIELDS: Final = {  # LiteLLM map key -> ModelPrice field
    "input_cost_per_token": "input",
    "output_cost_per_token": "output",
    "cache_read_input_token_cost": "cached_input",
    "cache_creation_input_token_cost": "cache_write",
    "output_cost_per_reasoning_token": "reasoning",
}
# e.g. input_cost_per_token_above_200k_tokens (not the _priority/_batches/_flex variants).
_ABOVE: Final = re.compile(r"^(?P<key>[a-z_]+?)_above_(?P<n>\d+)(?P<k>k?)_tokens$")


def _map_price(row: dict[str, Any]) -> ModelPrice | None:
    """A LiteLLM map row as ModelPrice, long-context tiers included; None if not per-token."""
    base = {field: _dec(row.get(key)) for key, field in _FIELDS.items()}
    by_threshold: dict[int, dict[str, Decimal | None]] = {}
    for name, value in row.items():
        if (match := _ABOVE.match(name)) and match["key"] in _FIELDS:
            threshold = int(match["n"]) * (1000 if match["k"] else 1)
            by_threshold.setdefault(threshold, {})[_FIELDS[match["key"]]] = _dec(value)
    for tier in row.get("tiered_pricing") or ():  # [{"range": [low, high], <rates>}, ...]
        bounds = tier.get("range") if isinstance(tier, dict) else None
        low = _dec(bounds[0]) if isinstance(bounds, list) and bounds else None
        if low is not None:
            rates = {_FIELDS[k]: _dec(v) for k, v in tier.items() if k in _FIELDS}
            by_threshold.setdefault(int(low), {}).update(rates)
    base.update({k: v for k, v in by_threshold.pop(0, {}).items() if base[k] is None})
    if base["input"] is None or base["output"] is None:
        return None
    tiers = tuple(
        (t, ModelPrice(**(base | {k: v for k, v in r.items() if v is not None}), source="litellm"))  # type: ignore[arg-type]
        for t, r in sorted(by_threshold.items())
    )
    return ModelPrice(**base, source="litellm", tiers=tiers)  # type: ignore[arg-type]


def _entry_from_map(row: dict[str, Any]) -> ModelInfo:
    try:
        price = _map_price(row)
    except ConfigurationError as exc:  # a malformed row must not break every call of the model
        logger.warning("ignoring unusable LiteLLM price row: %s", exc)
        price = None
    limits = _int(row.get("max_input_tokens")), _int(row.get("max_output_tokens"))
    return ModelInfo("", row.get("litellm_provider"), *limits, price)


def _candidates(model: str) -> tuple[list[str], bool]:
    """Keys to try for ``model``, best first; the flag says it is an OpenRouter ``:free`` slug."""
    lowered = model.strip().lower()
    keys = [lowered]
    free = False
    vendor, sep, name = lowered.partition("/")
    if vendor == "openrouter" and sep:
        base, _, variant = name.partition(":")
        free = variant == "free"
        if variant and variant not in _OPENROUTER_VARIANTS and not free:
            return keys, False
        keys.append(f"openrouter/{base}")
        vendor, sep, name = base.removeprefix("~").partition("/")  # "~z-ai/glm-latest": alias
        if not sep:  # "openrouter/gpt-4o" without a vendor
            vendor, name = "", base
    elif not sep:
        vendor, name = "", lowered
    if not vendor:
        vendor = "zai" if name.startswith("glm-") else ""
    prefixes = _VENDOR_PREFIXES.get(vendor, (f"{vendor}/",) if vendor else ("",))
    # "claude-sonnet-4.5" (OpenRouter) is "claude-sonnet-4-5" in LiteLLM's map.
    names = [name, name.replace(".", "-")] if name.startswith("claude") else [name]
    keys.extend(prefix + variant for prefix in prefixes for variant in names)
    return list(dict.fromkeys(keys)), free


def _lookup(model: str) -> ModelInfo | None:
    """Resolve a model string: registered, configured, then the tables (see module doc)."""
    key = model.strip().lower()
    with _overrides_lock:
        override = _overrides.get(key) or _configured.get(key)
    return override if override is not None else _resolve(key)


@lru_cache(maxsize=4096)
def _resolve(model: str) -> ModelInfo | None:
    """Resolve a lower-cased model string: our table, genai-prices, LiteLLM's map (cached)."""
    keys, free = _candidates(model)
    found = _from_own_table(keys) or _from_genai(model) or _from_litellm_map(keys)
    if free and found is not None:
        # OpenRouter's ":free" variants bill nothing; say so explicitly instead of "unpriced".
        zero = ModelPrice(Decimal(0), Decimal(0), Decimal(0), None, "bundled", None)
        found = ModelInfo("", "openrouter", found.max_input_tokens, found.max_output_tokens, zero)
    return found


def _from_own_table(keys: list[str]) -> ModelInfo | None:
    table = _own_table()
    for key in keys:
        own = table.get(key)
        if own is not None and (not own[1] or key == keys[0]):  # exact-only rows: exact key
            return own[0]
    return None


def _from_litellm_map(keys: list[str]) -> ModelInfo | None:
    prices = _litellm_map()
    for key in keys:
        if (row := prices.get(key)) is not None:
            alias = row.get("alias_of")
            if isinstance(alias, str) and alias.lower() in prices:
                row = prices[alias.lower()]
            return _entry_from_map(row)
    return None


def register_model(
    model: str,
    *,
    price: ModelPrice | None = None,
    provider: str | None = None,
    max_input_tokens: int | None = None,
    max_output_tokens: int | None = None,
) -> None:
    """Override (or add) a model's price and context window for this process.

    Fields left None keep what the tables say (e.g. override only the context window). A
    registered price wins over every table and the configuration; its source reads
    ``registered``. For a price that lives in configuration rather than code, use the
    ``[prices]`` table of the llm-client config file (see the README).

    Args:
        model: Exact model string (case-insensitive) the override applies to.
        price: Per-token prices; None keeps the table's price.
        provider: Provider name; None keeps the table's.
        max_input_tokens: Context window override.
        max_output_tokens: Output limit override.
    """
    key = model.strip().lower()
    with _overrides_lock:
        _overrides.pop(key, None)
    base = _lookup(model) or _NO_ENTRY
    changes: dict[str, Any] = {
        "provider": provider,
        "max_input_tokens": max_input_tokens,
        "max_output_tokens": max_output_tokens,
        "price": None if price is None else replace(price, source="registered"),
    }
    entry = replace(base, **{k: v for k, v in changes.items() if v is not None})
    with _overrides_lock:
        _overrides[key] = entry


def price_for(model: str) -> ModelPrice | None:
    """Per-token prices of ``model``, or None when no table knows it (record it as unpriced).

    Args:
        model: Any model string llm-client accepts (``gpt-4o-mini``,
            ``openrouter/anthropic/claude-sonnet-4.5``, ``zai/glm-4.6``, ``test``, ...).

    Returns:
        The price, or None for an unknown model (never a silent zero).
    """
    entry = _lookup(model)
    return None if entry is None else entry.price


def model_info(model: str) -> ModelInfo:
    """Context window, output limit and price of ``model``; unknown fields are None.

    Args:
        model: Any model string llm-client accepts.

    Returns:
        A :class:`ModelInfo`; ``price`` is None for an unpriced model.
    """
    info = replace(_lookup(model) or _NO_ENTRY, model=model)
    if info.max_input_tokens is None or info.max_output_tokens is None:
        # genai-prices often lacks the context window (and never has the output limit); LiteLLM's
        # map has them when the extra is installed. Prices never come from here: pricing a call
        # must not load that map (tens of MB) when genai-prices knew the model.
        limits = _from_litellm_map(_candidates(model.strip().lower())[0])
        if limits is not None:
            info = replace(
                info,
                max_input_tokens=info.max_input_tokens or limits.max_input_tokens,
                max_output_tokens=info.max_output_tokens or limits.max_output_tokens,
            )
    return info


def cost_for(
    usage: Usage, model: str, reported_cost: Decimal | None = None
) -> tuple[Decimal | None, str]:
    """Cost of one call and where that number comes from.

    Args:
        usage: Normalised token counts of the call.
        model: Model string the call used.
        reported_cost: What the provider said it charged (OpenRouter ``usage.cost``), if any.

    Returns:
        ``(cost, source)``: the provider's figure with source ``"provider"`` when reported,
        else the computed cost with the price's source (``"registered"``, ``"config"``,
        ``"bundled"``, ``"genai-prices"`` or ``"litellm"``), else ``(None, "unpriced")``.
    """
    if reported_cost is not None:
        return reported_cost, "provider"
    price = price_for(model)
    if price is None:
        return None, "unpriced"
    return cost_of(usage, price), price.source


REPORTED_COST_FACTOR: Final = Decimal(10)
"""A provider-reported cost above this many times the local price (plus the slack) is bogus."""
REPORTED_COST_SLACK: Final = Decimal("0.01")
"""Dollars of slack on top of the factor, so minimum charges on tiny calls pass."""
UNPRICED_REPORTED_COST_CAP: Final = Decimal(100)
"""For a model with no local price, a reported cost above this (per call) is bogus."""


def plausible_cost(
    usage: Usage, model: str, reported_cost: Decimal | None, raw_reported: object = None
) -> tuple[Decimal | None, str, str | None]:
    """Like :func:`cost_for`, refusing a provider-reported cost that cannot be right.

    A reported cost is rejected when it is not a finite non-negative number (``raw_reported``
    set but ``reported_cost`` None), when it exceeds ``REPORTED_COST_FACTOR`` times the local
    price of ``usage`` plus ``REPORTED_COST_SLACK``, or, for a model without a local price,
    when it exceeds ``UNPRICED_REPORTED_COST_CAP`` dollars. A rejected figure is replaced by
    the local price (None when unpriced), so a bogus figure never reaches a budget.

    Args:
        usage: Normalised token counts of the call.
        model: Model string the call used.
        reported_cost: The provider's figure, parsed (None when absent or unparseable).
        raw_reported: The figure as the provider sent it (None when absent).

    Returns:
        ``(cost, source, rejected)``: ``rejected`` is the refused figure as text, else None.
    """
    if reported_cost is None:
        cost, source = cost_for(usage, model)
        return cost, source, None if raw_reported is None else str(raw_reported)
    price = price_for(model)
    if price is None:
        if reported_cost > UNPRICED_REPORTED_COST_CAP:
            return None, "unpriced", str(reported_cost)
        return reported_cost, "provider", None
    local = cost_of(usage, price)
    with suppress(ArithmeticError):
        if reported_cost <= local * REPORTED_COST_FACTOR + REPORTED_COST_SLACK:
            return reported_cost, "provider", None
    return local, price.source, str(reported_cost)


def estimate_cost(prompt_tokens: int, max_output_tokens: int, model: str) -> Decimal | None:
    """Upper bound of a call's cost, for reserving budget before the call is made.

    The long-context tier is chosen by ``prompt_tokens``; every input token is priced at the
    dearest input rate (the cache might miss, or be written) and the output at its maximum.

    Args:
        prompt_tokens: Input tokens of the request (e.g. from ``count_tokens``).
        max_output_tokens: The most output tokens the call may produce.
        model: Model string the call will use.

    Returns:
        The bound in US dollars, or None when the model is unpriced.
    """
    price = price_for(model)
    if price is None:
        return None
    price = price.for_prompt(prompt_tokens)
    # Computed by cost_of, so in the same exact arithmetic as the real cost.
    dearest = replace(
        price,
        input=max(price.input, price.cache_write or price.input, price.cached_input or price.input),
        output=max(price.output, price.reasoning or price.output),
        tiers=(),
    )
    return cost_of(Usage(max(prompt_tokens, 0), max(max_output_tokens, 0)), dearest)


def describe_price(model: str) -> dict[str, str | int | None]:
    """A model's prices per million tokens and their origin, for ``llm-client price MODEL``.

    Args:
        model: Any model string llm-client accepts.

    Returns:
        ``model``, ``provider``, ``source`` (``registered``, ``config``, ``bundled``,
        ``genai-prices``, ``litellm`` or ``unpriced``),
        ``as_of`` (ISO date or None), ``{input,output,cached_input,cache_write,reasoning}_
        per_million`` (Decimal strings or None), ``long_context`` (e.g. ``"above 200000
        tokens: input 2.5, output 15"`` or None), ``max_input_tokens``, ``max_output_tokens``.
    """
    info = model_info(model)
    price = info.price
    described: dict[str, str | int | None] = {
        "model": model,
        "provider": info.provider,
        "source": "unpriced" if price is None else price.source,
        "as_of": None if price is None or price.as_of is None else price.as_of.isoformat(),
    }
    for name in _FIELDS.values():
        described[f"{name}_per_million"] = _per_million(getattr(price, name, None))
    tiers = [
        f"above {threshold} tokens: input {_per_million(tier.input)}, "
        f"output {_per_million(tier.output)}"
        for threshold, tier in (price.tiers if price else ())
    ]
    described["long_context"] = "; ".join(tiers) or None
    described["max_input_tokens"] = info.max_input_tokens
    described["max_output_tokens"] = info.max_output_tokens
    return described


def _per_million(value: Decimal | None) -> str | None:
    """Plain notation without exponent or trailing zeros: ``0.15``, ``3``."""
    return None if value is None else format((value * _MILLION).normalize(), "f")
