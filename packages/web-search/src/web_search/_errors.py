"""Errors raised by web-search.

The tree::

    WebSearchError                      base of everything this package raises
    ├── ConfigurationError              missing API key, unknown provider
    │   └── MissingExtraError           an optional extra is not installed (also ImportError)
    ├── InvalidQueryError               empty query, count out of range, bad domain, bad text
    ├── BudgetExceededError             the cost sink refused the call (``is_budget_refusal``)
    ├── StoreError                      the persistent tier failed
    │   ├── StoreUnavailableError       unreachable, timed out, circuit breaker open
    │   └── StoreCorruptError           a local cache file that is not a valid database
    └── ProviderError                   the search API answered with an error (or not at all)
        ├── RateLimitError              429 / z.ai 1302: retried with backoff, Retry-After honoured
        ├── InsufficientBalanceError    z.ai 1113, Tavily 432/433: never retried
        ├── AuthenticationError         401 / z.ai 1000-1004: never retried
        ├── BadRequestError             400 / z.ai 1210-1214: never retried
        ├── ServerError                 5xx: retried like a rate limit
        ├── SearchTimeoutError          no answer within the timeout (or connection failure)
        └── ResponseFormatError         a 200 whose body is not the documented shape

Messages carry the provider, the HTTP status, the provider's own error code and message, and
never the API key.
"""

from __future__ import annotations

import warnings
from typing import ClassVar

__all__ = [
    "AuthenticationError",
    "BadRequestError",
    "BudgetExceededError",
    "ConfigurationError",
    "InsufficientBalanceError",
    "InvalidQueryError",
    "MissingExtraError",
    "ProviderError",
    "RateLimitError",
    "ResponseFormatError",
    "SearchTimeoutError",
    "ServerError",
    "StoreCorruptError",
    "StoreError",
    "StoreUnavailableError",
    "WebSearchError",
]


class WebSearchError(Exception):
    """Base class of every error raised by web-search."""


class ConfigurationError(WebSearchError):
    """The client or a provider is misconfigured (no API key, unknown provider name, ...)."""


class MissingExtraError(ConfigurationError, ImportError):
    """An optional extra needed by the requested feature is not installed.

    Attributes:
        package: The distribution to install it for (``web-search``).
        extra: The extra's name (``postgres``, ``supabase``).
    """

    def __init__(self, feature: str, extra: str, *, package: str = "web-search") -> None:
        super().__init__(f"{feature} needs the {extra!r} extra: pip install '{package}[{extra}]'")
        self.package = package
        self.extra = extra


class InvalidQueryError(WebSearchError, ValueError):
    """The caller's arguments cannot form a search (empty query, count out of range, ...)."""


class BudgetExceededError(WebSearchError):
    """The cost sink refused a paid call (a budget would be exceeded); nothing was called.

    Raised ``from`` the sink's own refusal (any exception whose class sets
    ``is_budget_refusal = True``, such as cost-tracker's ``BudgetExceededError``), with its
    message.
    """

    is_budget_refusal: ClassVar[bool] = True


class StoreError(WebSearchError):
    """The persistent cache tier failed."""


class StoreUnavailableError(StoreError):
    """The persistent tier is unreachable, timed out, or its circuit breaker is open."""


class StoreCorruptError(StoreError):
    """A local cache file is not a valid database; the message names it and the recovery."""


class ProviderError(WebSearchError):
    """The search API refused or failed a call.

    Attributes:
        provider: Provider name (``zai``, ``tavily``).
        status_code: HTTP status code, or None when no response arrived.
        code: The provider's own error code (z.ai business code such as ``"1113"``), if any.
        request_id: The provider's request id, if it sent one.
    """

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        status_code: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        if status is not None:
            warnings.warn(
                "ProviderError(status=...) is deprecated; use status_code=",
                DeprecationWarning,
                stacklevel=_caller_level(type(self)),
            )
            status_code = status if status_code is None else status_code
        self.provider = provider
        self.status_code = status_code
        self.code = code
        self.request_id = request_id

    @property
    def status(self) -> int | None:
        """Deprecated alias of ``status_code`` (removed in 0.3)."""
        warnings.warn("ProviderError.status is deprecated; use .status_code", DeprecationWarning, 2)
        return self.status_code

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.args[0]!r}, provider={self.provider!r}, "
            f"status_code={self.status_code!r}, code={self.code!r})"
        )


def _caller_level(cls: type[ProviderError]) -> int:
    # Point the warning at the code constructing the error, past subclass __init__ frames.
    return 1 + sum(
        1 for klass in cls.__mro__ if issubclass(klass, ProviderError) and "__init__" in vars(klass)
    )


class RateLimitError(ProviderError):
    """Too many requests; retried with backoff.

    Attributes:
        retry_after: Seconds the provider asked us to wait (``Retry-After``), if it said.
    """

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        status_code: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(
            message,
            provider=provider,
            status_code=status_code,
            code=code,
            request_id=request_id,
            status=status,
        )
        self.retry_after = retry_after


class InsufficientBalanceError(ProviderError):
    """The account has no balance or resource package left (z.ai 1113); not retried."""


class AuthenticationError(ProviderError):
    """The API key is missing, wrong or expired; not retried."""


class BadRequestError(ProviderError):
    """The provider rejected the request's parameters; not retried."""


class ServerError(ProviderError):
    """The provider failed (5xx); retried."""


class SearchTimeoutError(ProviderError):
    """No answer arrived within the timeout, or the connection failed."""


class ResponseFormatError(ProviderError):
    """A successful status with a body that is not the documented shape."""
