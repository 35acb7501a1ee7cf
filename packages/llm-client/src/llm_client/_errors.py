"""Every error llm-client raises, in one tree.

::

    LLMClientError
    ├── ProviderError                 a provider call failed (status_code, provider, model)
    │   ├── RateLimitError            429; retried, honouring retry_after
    │   ├── ServerError               5xx; retried
    │   ├── ProviderTimeoutError      no answer within the timeout; retried
    │   ├── ProviderConnectionError   refused / dropped connection; retried
    │   ├── ResponseFormatError       a reply of unexpected shape (billed); retried
    │   ├── AuthenticationError       401/403; never retried
    │   ├── BadRequestError           400/404/422 and other 4xx; never retried
    │   └── QuotaExhaustedError       out of credit (z.ai 1113, OpenRouter 402); never retried
    ├── StructuredOutputError         the reply never validated against response_model
    ├── AllModelsFailedError          every model of a fallback chain failed (attempts)
    ├── BudgetExceededError           a budget refused the call before it was made
    │   └── UnpricedModelError        a budget cannot admit a model without a known price
    ├── ConfigurationError            bad configuration: missing key, unknown alias, bad TOML
    │   └── MissingExtraError         the model needs an extra that is not installed ([litellm])
    ├── InvalidMessagesError          bad input messages (empty, unknown role, no content)
    ├── InvalidRequestError           a bad request parameter or tool (top_p="x", a lambda tool)
    ├── ToolLoopLimitError            run_tools hit its round or dollar cap (reason, messages)
    ├── UsageError                    token counts that cannot describe a real call (_usage.py)
    ├── TokenizerUnavailableError     the bundled offline tokenizer files are missing (_tokens.py)
    ├── LLMTestingError               misuse of llm_client.testing (testing/_errors.py)
    └── RealRequestsBlockedError      a real provider request while tests block them

Messages never contain API keys: provider errors carry the provider's own message, which
echoes no credentials, cut to a short snippet.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: keeps ``import llm_client`` from loading typing
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

__all__ = [
    "AllModelsFailedError",
    "AuthenticationError",
    "BadRequestError",
    "BudgetExceededError",
    "ConfigurationError",
    "InvalidMessagesError",
    "InvalidRequestError",
    "LLMClientError",
    "MissingExtraError",
    "ProviderConnectionError",
    "ProviderError",
    "ProviderTimeoutError",
    "QuotaExhaustedError",
    "RateLimitError",
    "RealRequestsBlockedError",
    "ResponseFormatError",
    "ServerError",
    "StructuredOutputError",
    "ToolLoopLimitError",
    "UnpricedModelError",
]


class LLMClientError(Exception):
    """Base class of every error llm-client raises.

    Attributes:
        attempt_records: For errors raised by ``LLMClient.chat``/``complete``: every HTTP
            attempt the failed call made (``AttemptRecord``), with usage and cost; else empty.
    """

    attempt_records: tuple[Any, ...] = ()


class ProviderError(LLMClientError):
    """A provider call failed.

    Attributes:
        status_code: HTTP status, or None for timeouts and connection failures.
        provider: Provider name (``openrouter``, ``zai``, ``openai``, ``litellm``, ``test``...).
        model: Model string that was called.
        retryable: Whether the retry policy may try again.
    """

    retryable = False

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        provider: str = "",
        model: str = "",
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.provider = provider
        self.model = model

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({str(self)!r}, status_code={self.status_code!r}, "
            f"provider={self.provider!r}, model={self.model!r})"
        )


class RateLimitError(ProviderError):
    """HTTP 429: too many requests. Retried after ``retry_after`` seconds when the provider says.

    Attributes:
        retry_after: Seconds the provider asked to wait (``Retry-After``), or None.
    """

    retryable = True

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = 429,
        provider: str = "",
        model: str = "",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status_code=status_code, provider=provider, model=model)
        self.retry_after = retry_after


class ServerError(ProviderError):
    """HTTP 5xx: the provider failed. Retried."""

    retryable = True


class ProviderTimeoutError(ProviderError):
    """The provider did not answer within the timeout. Retried."""

    retryable = True


class ProviderConnectionError(ProviderError):
    """The connection was refused or dropped before a reply arrived. Retried."""

    retryable = True


class ResponseFormatError(ProviderError):
    """A reply arrived but is not a usable chat completion. Retried.

    No ``choices``, empty ``choices``, a choice without ``message``, ``null`` content without
    tool calls, a body that is not JSON or JSON of the wrong type. The provider may have billed
    the attempt, so it is settled with the cost sink (usage as reported, else counted locally)
    rather than released.

    Attributes:
        reason: What was wrong with the reply, in a few words.
    """

    retryable = True

    def __init__(self, message: str, *, reason: str = "", **context: Any) -> None:
        super().__init__(message, **context)
        self.reason = reason


class AuthenticationError(ProviderError):
    """HTTP 401/403: the key is missing, wrong or lacks permission. Never retried."""


class BadRequestError(ProviderError):
    """HTTP 4xx other than 401/403/429: the request itself is wrong. Never retried."""


class QuotaExhaustedError(ProviderError):
    """Out of credit (z.ai code 1113, HTTP 402). Never retried: waiting won't help."""


class StructuredOutputError(LLMClientError):
    """The reply never validated against ``response_model``, re-asks included.

    Attributes:
        model: Model string that was called.
        errors: The validation errors of the last attempt (pydantic's ``errors()`` dicts or text).
        raw_text: The start of the last raw reply (at most 500 characters).
        attempts: How many replies were tried.
    """

    def __init__(
        self,
        message: str,
        *,
        model: str = "",
        errors: Sequence[object] = (),
        raw_text: str = "",
        attempts: int = 0,
    ) -> None:
        super().__init__(message)
        self.model = model
        self.errors = list(errors)
        self.raw_text = raw_text[:500]
        self.attempts = attempts


class AllModelsFailedError(LLMClientError):
    """Every model of a fallback chain failed.

    Attributes:
        attempts: ``(model, exception)`` for each model tried, in order.
    """

    def __init__(self, attempts: Sequence[tuple[str, BaseException]]) -> None:
        self.attempts = list(attempts)
        summary = "; ".join(f"{model}: {type(exc).__name__}: {exc}" for model, exc in attempts)
        super().__init__(f"all {len(self.attempts)} model(s) failed: {summary}")


class BudgetExceededError(LLMClientError):
    """A budget refused the call before it was made (nothing was sent).

    A cost sink's own refusal (any exception whose class sets ``is_budget_refusal = True``,
    such as cost-tracker's ``BudgetExceededError``) is re-raised as this class, ``from`` the
    original and with its message, so ``except LLMClientError`` catches every refusal.
    """

    is_budget_refusal = True


class UnpricedModelError(BudgetExceededError):
    """The model has no known price, so a budget cannot admit it (never assumed free)."""


class ConfigurationError(LLMClientError, ValueError):
    """Bad configuration: a missing API key, an unknown alias, unreadable TOML, a bad value.

    Named ``ConfigurationError`` in every llm-common package; ``llm_client.ConfigError`` is the
    same class under its 0.1 name (deprecated, removed in 0.3).
    """


ConfigError = ConfigurationError  # the 0.1 name; ``llm_client.ConfigError`` warns


class MissingExtraError(ConfigurationError, ImportError):
    """A model (or feature) needs an optional extra of llm-client that is not installed.

    Raised before anything is reserved or sent, e.g. for ``anthropic/claude-sonnet-4-5``
    without LiteLLM: "model 'anthropic/claude-sonnet-4-5' is sent through LiteLLM, which needs
    the 'litellm' extra: pip install 'llm-client[litellm]'". Being a ``ConfigurationError``, it
    stops a fallback chain at once instead of moving on to the next model.

    Attributes:
        package: The distribution that has the extra (``llm-client``).
        extra: The extra to install (``litellm``).
    """

    def __init__(self, feature: str, extra: str, *, missing: str | None = None) -> None:
        super().__init__(
            f"{feature} needs the {extra!r} extra: pip install '{_PACKAGE}[{extra}]' "
            f"(or uv add '{_PACKAGE}[{extra}]')"
        )
        self.name = missing  # ImportError's field: the module that is not installed
        self.package = _PACKAGE
        self.extra = extra


_PACKAGE = "llm-client"


class InvalidMessagesError(LLMClientError, ValueError):
    """The messages are not a non-empty list of OpenAI-style ``{"role", "content"}`` dicts."""


class InvalidRequestError(LLMClientError, ValueError):
    """A request parameter or tool that cannot be sent (wrong type, unnamed tool, bad choice)."""


class ToolLoopLimitError(LLMClientError):
    """``run_tools`` stopped at its round cap or dollar cap before the model finished.

    Attributes:
        reason: ``"rounds"``, ``"cost"`` or ``"unpriced"`` (a dollar cap on a model without a
            known price cannot be kept).
        rounds: Model calls made.
        spent: Dollars the rounds cost (None when a round was unpriced).
        messages: The conversation so far, tool calls and results included.
    """

    def __init__(
        self,
        message: str,
        *,
        reason: str,
        rounds: int,
        spent: Any,
        messages: Sequence[Any] = (),
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.rounds = rounds
        self.spent = spent
        self.messages = list(messages)


class RealRequestsBlockedError(LLMClientError):
    """A request to a non-loopback provider was attempted while real requests are blocked."""
