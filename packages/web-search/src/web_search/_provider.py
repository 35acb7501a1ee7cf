"""The provider protocol: how one search API is asked and how its answers are read.

A provider is pure translation: it builds an HTTP request from a ``ProviderCall`` and turns the
response into ``SearchResult``s or a typed error. The client owns HTTP, retries, caching and
cost, so a new search API stands in by implementing these few members.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Any, Protocol, runtime_checkable

from ._errors import (
    AuthenticationError,
    BadRequestError,
    InsufficientBalanceError,
    ProviderError,
    RateLimitError,
    ResponseFormatError,
    ServerError,
)
from ._types import Recency, SearchResult

__all__ = [
    "HttpRequest",
    "ProviderCall",
    "SearchProvider",
    "error_from_response",
    "parse_retry_after",
]


@dataclass(frozen=True, slots=True)
class ProviderCall:
    """One upstream call, after query cleaning and domain fan-out.

    Attributes:
        query: Query text to send (already cut to the provider's recommended length).
        count: Results wanted from this call.
        domains: Exact domains for this call's domain filter (empty: no filter).
        recency: Recency window, or None for no limit.
        request_id: Unique id of this call (sent where the API takes one).
    """

    query: str
    count: int
    domains: tuple[str, ...]
    recency: Recency | None
    request_id: str


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """An HTTP request a provider wants made. ``headers`` may hold the API key: never log them."""

    method: str
    url: str
    headers: dict[str, str] = field(repr=False)
    json: dict[str, Any] | None = None


@runtime_checkable
class SearchProvider(Protocol):
    """A search API behind ``WebSearchClient``.

    Attributes:
        name: Short provider name, reported to the cost sink (``zai``).
        engine: Engine or product reported as the cost record's model (``search-prime``).
        cache_namespace: Provider name plus any setting that changes answers; part of the key.
        price_per_call: US dollars per upstream call.
        max_domains_per_call: Exact domains one call can filter on (None: any number).
        max_count: Largest result count one call may ask for.
    """

    name: str
    engine: str | None
    cache_namespace: str
    price_per_call: Decimal
    max_domains_per_call: int | None
    max_count: int

    def build_request(self, call: ProviderCall) -> HttpRequest:
        """Translate one call into the API's documented request."""
        ...

    def parse_response(
        self, call: ProviderCall, status: int, headers: dict[str, str], body: bytes
    ) -> list[SearchResult]:
        """Read the API's response; raise a ``ProviderError`` subclass for error answers."""
        ...


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


_BALANCE_CODES = {"1113"}
_AUTH_CODES = {"1000", "1001", "1002", "1003", "1004"}
_RATE_CODES = {"1302", "1303", "1305"}
_BAD_REQUEST_CODES = {"1210", "1211", "1212", "1213", "1214", "1215"}


def _error_fields(body: bytes) -> tuple[str | None, str, str | None]:
    """(code, message, request_id) from a JSON error body of any provider we know."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None, body[:200].decode("utf-8", "replace").strip(), None
    if not isinstance(data, dict):
        return None, str(data)[:200], None
    error = data.get("error")
    request_id = data.get("request_id")
    if isinstance(error, dict):
        code = error.get("code") or error.get("type")
        message = error.get("message") or ""
    else:
        code = data.get("code")
        message = error if isinstance(error, str) else data.get("detail") or data.get("message")
        if isinstance(message, dict):
            message = message.get("error") or json.dumps(message)
    return (
        str(code) if code is not None else None,
        str(message or "")[:300],
        str(request_id) if request_id else None,
    )


def error_from_response(
    provider: str,
    status: int,
    headers: dict[str, str],
    body: bytes,
    *,
    secrets: tuple[str, ...] = (),
) -> ProviderError:
    """The typed error for a non-2xx response (z.ai business codes win over the status).

    Args:
        provider: Provider name for the message.
        status: HTTP status of the response.
        headers: Response headers (lower-cased names).
        body: Raw response body.
        secrets: Values to redact: providers sometimes echo the API key back in the error text.
    """
    code, message, request_id = _error_fields(body)
    for secret in secrets:
        if secret:
            message = message.replace(secret, "[REDACTED]")
    text = f"{provider}: HTTP {status}" + (f", code {code}" if code else "") + f": {message}"
    common: dict[str, Any] = {
        "provider": provider,
        "status_code": status,
        "code": code,
        "request_id": request_id,
    }
    if code in _BALANCE_CODES or status in (432, 433):
        return InsufficientBalanceError(text, **common)
    if code in _AUTH_CODES or status in (401, 403):
        return AuthenticationError(text, **common)
    if code in _RATE_CODES or status == 429:
        retry_after = parse_retry_after(headers.get("retry-after"))
        return RateLimitError(text, retry_after=retry_after, **common)
    if code in _BAD_REQUEST_CODES or status in (400, 404, 405, 413, 422):
        return BadRequestError(text, **common)
    if status >= 500:
        return ServerError(text, **common)
    return ProviderError(text, **common)


def load_json_object(provider: str, body: bytes) -> dict[str, Any]:
    """Decode a 200 body that must be a JSON object."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ResponseFormatError(
            f"{provider}: response is not JSON", provider=provider, status_code=200
        ) from exc
    if not isinstance(data, dict):
        raise ResponseFormatError(
            f"{provider}: response is not a JSON object", provider=provider, status_code=200
        )
    return data
