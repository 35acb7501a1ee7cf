"""Tavily Search API (``POST https://api.tavily.com/search``).

Documented request fields used: ``query``, ``max_results`` (0-20), ``include_domains`` (a list,
so no fan-out is needed for exact domains), ``time_range`` (``day|week|month|year``),
``search_depth`` (``basic`` = 1 credit), ``topic``. The response carries ``query``, ``answer``,
``images``, ``results[]`` of ``title, url, content, score, raw_content`` (``published_date``
for the news topic), ``response_time`` and ``request_id``. Errors: 400, 401, 429, 432 (plan
limit), 433 (pay-as-you-go limit), 5xx; bodies ``{"detail": {"error": "..."}}``.
"""

from __future__ import annotations

import os
from decimal import Decimal
from typing import Any, Literal

from pydantic import SecretStr

from ._provider import HttpRequest, ProviderCall, error_from_response, load_json_object
from ._results import ResultFields, read_results
from ._types import Recency, SearchResult
from ._zai import _key_from

__all__ = ["TAVILY_TIME_RANGE", "TavilySearchProvider"]


TAVILY_TIME_RANGE: dict[Recency, str] = {"1d": "day", "1w": "week", "1m": "month", "1y": "year"}
DEFAULT_BASE_URL = "https://api.tavily.com"
_FIELDS = ResultFields(
    items="results", link="url", date="published_date", icon="favicon", score="score"
)


class TavilySearchProvider:
    """The Tavily Search API.

    Args:
        api_key: API key; defaults to ``TAVILY_API_KEY``.
        base_url: API root; defaults to ``WEB_SEARCH_BASE_URL`` or ``https://api.tavily.com``.
        search_depth: ``basic`` (1 credit) or ``advanced`` (2 credits).
        topic: ``general``, ``news`` or ``finance``.
        price_per_call: US dollars per call.
    """

    name = "tavily"
    max_domains_per_call: int | None = None
    max_count = 20

    def __init__(
        self,
        api_key: str | SecretStr | None = None,
        *,
        base_url: str | None = None,
        search_depth: Literal["basic", "advanced"] = "basic",
        topic: Literal["general", "news", "finance"] = "general",
        price_per_call: Decimal = Decimal("0.01"),
    ) -> None:
        self._api_key = _key_from(api_key, "TAVILY_API_KEY", self.name)
        root = base_url or os.environ.get("WEB_SEARCH_BASE_URL") or DEFAULT_BASE_URL
        self.url = root.rstrip("/") + "/search"
        self.engine: str | None = f"tavily-{search_depth}"
        self.search_depth = search_depth
        self.topic = topic
        self.price_per_call = Decimal(price_per_call)
        self.cache_namespace = f"tavily:{search_depth}:{topic}"

    def __repr__(self) -> str:
        return f"TavilySearchProvider(url={self.url!r}, api_key=SecretStr('**********'))"

    def build_request(self, call: ProviderCall) -> HttpRequest:
        """The documented JSON body with every exact domain in ``include_domains``."""
        body: dict[str, Any] = {
            "query": call.query,
            "max_results": max(1, min(call.count, self.max_count)),
            "search_depth": self.search_depth,
            "topic": self.topic,
            "include_answer": False,
            "include_raw_content": False,
            "include_images": False,
        }
        if call.domains:
            body["include_domains"] = list(call.domains)
        if call.recency:
            body["time_range"] = TAVILY_TIME_RANGE[call.recency]
        headers = {
            "Authorization": f"Bearer {self._api_key.get_secret_value()}",
            "Content-Type": "application/json",
        }
        return HttpRequest("POST", self.url, headers, body)

    def parse_response(
        self, call: ProviderCall, status: int, headers: dict[str, str], body: bytes
    ) -> list[SearchResult]:
        """``results[]`` as ``SearchResult``s; an error status raises its typed error."""
        if status >= 400:
            raise error_from_response(
                self.name, status, headers, body, secrets=(self._api_key.get_secret_value(),)
            )
        data = load_json_object(self.name, body)
        return read_results(self.name, call.query, data, _FIELDS)
