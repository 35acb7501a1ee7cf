"""Errors raised by web-search.

The tree::

    WebSearchError                      base of everything this package raises
    ├── ConfigurationError              missing API key, unknown provider, missing extra
    ├── InvalidQueryError               empty query, count out of range, bad domain
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

__all__ = [
    "AuthenticationError",
    "BadRequestError",
    "ConfigurationError",
    "InsufficientBalanceError",
    "InvalidQueryError",
    "ProviderError",
    "RateLimitError",
    "ResponseFormatError",
    "SearchTimeoutError",
    "ServerError",
    "WebSearchError",
]


class WebSearchError(Exception):
    """Base class of every error raised by web-search."""


class ConfigurationError(WebSearchError):
    """The client or a provider is misconfigured (no API key, unknown provider name, ...)."""


class InvalidQueryError(WebSearchError, ValueError):
    """The caller's arguments cannot form a search (empty query, count out of range, ...)."""


class ProviderError(WebSearchError):
    """The search API refused or failed a call.

    Attributes:
        provider: Provider name (``zai``, ``tavily``).
        status: HTTP status code, or None when no response arrived.
        code: The provider's own error code (z.ai business code such as ``"1113"``), if any.
        request_id: The provider's request id, if it sent one.
    """

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.provider = provider
        self.status = status
        self.code = code
        self.request_id = request_id

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.args[0]!r}, provider={self.provider!r}, "
            f"status={self.status!r}, code={self.code!r})"
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
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(
            message, provider=provider, status=status, code=code, request_id=request_id
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
