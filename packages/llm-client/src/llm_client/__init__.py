"""One async call to any LLM provider: structured outputs, retries, fallbacks, exact Decimal cost.

``import llm_client`` stays cheap (~5 ms): only the error classes load at once; the cost-sink
protocol, the client (httpx, pydantic), the openai SDK, instructor, LiteLLM and tiktoken load on
first use.
"""

from __future__ import annotations

import importlib

from llm_client._errors import (
    AllModelsFailedError,
    AuthenticationError,
    BadRequestError,
    BudgetExceededError,
    ConfigurationError,
    InvalidMessagesError,
    InvalidRequestError,
    LLMClientError,
    MissingExtraError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeoutError,
    QuotaExhaustedError,
    RateLimitError,
    RealRequestsBlockedError,
    ResponseFormatError,
    ServerError,
    StructuredOutputError,
    ToolLoopLimitError,
    UnpricedModelError,
)

# Not ``from typing import TYPE_CHECKING``: importing typing alone costs ~10-40 ms here, and
# type checkers treat any constant named TYPE_CHECKING as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from llm_client._budget import InMemoryBudget
    from llm_client._caching import cache_breakpoint
    from llm_client._client import LLMClient
    from llm_client._completion import AttemptRecord, Completion, total_cost
    from llm_client._config import LLMConfig, ProviderSettings
    from llm_client._cost_sink import CostEstimate, CostRecord, CostSink
    from llm_client._options import CallParams, RequestParams, StreamParams
    from llm_client._pricing import (
        ModelInfo,
        ModelPrice,
        PriceSource,
        cost_for,
        cost_of,
        describe_price,
        estimate_cost,
        model_info,
        price_for,
        register_model,
    )
    from llm_client._providers import ProviderSpec, register_provider, unregister_provider
    from llm_client._retry import RetryPolicy
    from llm_client._runtime import GcSettings, prepare_for_serving
    from llm_client._streaming import TextStream
    from llm_client._structured_stream import StructuredStream
    from llm_client._telemetry import Telemetry
    from llm_client._tokens import (
        TokenizerUnavailableError,
        count_tokens,
        load_tokenizer,
        token_upper_bound,
    )
    from llm_client._tool_loop import ToolRun
    from llm_client._tools import Tool, ToolCall, ToolReply
    from llm_client._usage import Usage, UsageError, normalize_usage, sum_costs

__version__: str  # read from the installed metadata on first access (importlib.metadata is slow)

# Public name -> private module; resolved on first attribute access (PEP 562).
_LAZY: dict[str, str] = {
    "CostEstimate": "_cost_sink",
    "CostRecord": "_cost_sink",
    "CostSink": "_cost_sink",
    "LLMClient": "_client",
    "Completion": "_completion",
    "AttemptRecord": "_completion",
    "total_cost": "_completion",
    "LLMConfig": "_config",
    "ProviderSettings": "_config",
    "InMemoryBudget": "_budget",
    "RetryPolicy": "_retry",
    "ProviderSpec": "_providers",
    "register_provider": "_providers",
    "unregister_provider": "_providers",
    "GcSettings": "_runtime",
    "TextStream": "_streaming",
    "Telemetry": "_telemetry",
    "cache_breakpoint": "_caching",
    "RequestParams": "_options",
    "CallParams": "_options",
    "StreamParams": "_options",
    "StructuredStream": "_structured_stream",
    "Tool": "_tools",
    "ToolCall": "_tools",
    "ToolReply": "_tools",
    "ToolRun": "_tool_loop",
    "prepare_for_serving": "_runtime",
    "Usage": "_usage",
    "normalize_usage": "_usage",
    "ModelInfo": "_pricing",
    "ModelPrice": "_pricing",
    "cost_for": "_pricing",
    "describe_price": "_pricing",
    "estimate_cost": "_pricing",
    "model_info": "_pricing",
    "price_for": "_pricing",
    "count_tokens": "_tokens",
    "load_tokenizer": "_tokens",
    "token_upper_bound": "_tokens",
    "TokenizerUnavailableError": "_tokens",
    "UsageError": "_usage",
    "sum_costs": "_usage",
    "cost_of": "_pricing",
    "register_model": "_pricing",
    "PriceSource": "_pricing",
}

__all__ = [
    "AllModelsFailedError",
    "AttemptRecord",
    "AuthenticationError",
    "BadRequestError",
    "BudgetExceededError",
    "CallParams",
    "Completion",
    "ConfigurationError",
    "CostEstimate",
    "CostRecord",
    "CostSink",
    "GcSettings",
    "InMemoryBudget",
    "InvalidMessagesError",
    "InvalidRequestError",
    "LLMClient",
    "LLMClientError",
    "LLMConfig",
    "MissingExtraError",
    "ModelInfo",
    "ModelPrice",
    "PriceSource",
    "ProviderConnectionError",
    "ProviderError",
    "ProviderSettings",
    "ProviderSpec",
    "ProviderTimeoutError",
    "QuotaExhaustedError",
    "RateLimitError",
    "RealRequestsBlockedError",
    "RequestParams",
    "ResponseFormatError",
    "RetryPolicy",
    "ServerError",
    "StreamParams",
    "StructuredOutputError",
    "StructuredStream",
    "Telemetry",
    "TextStream",
    "TokenizerUnavailableError",
    "Tool",
    "ToolCall",
    "ToolLoopLimitError",
    "ToolReply",
    "ToolRun",
    "UnpricedModelError",
    "Usage",
    "UsageError",
    "__version__",
    "cache_breakpoint",
    "cost_for",
    "cost_of",
    "count_tokens",
    "describe_price",
    "estimate_cost",
    "load_tokenizer",
    "model_info",
    "normalize_usage",
    "prepare_for_serving",
    "price_for",
    "register_model",
    "register_provider",
    "sum_costs",
    "token_upper_bound",
    "total_cost",
    "unregister_provider",
]


def __getattr__(name: str) -> Any:
    if name == "ConfigError":
        import warnings

        warnings.warn(
            "llm_client.ConfigError is deprecated; use llm_client.ConfigurationError",
            DeprecationWarning,
            stacklevel=2,
        )
        return ConfigurationError
    if name == "__version__":
        from importlib.metadata import version

        globals()[name] = version("llm-client")
        return globals()[name]
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'llm_client' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"llm_client.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
