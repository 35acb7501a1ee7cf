"""z.ai Web Search API (``POST https://api.z.ai/api/paas/v4/web_search``).

Documented request fields: ``search_engine`` (``search-prime``), ``search_query`` (at most 70
characters recommended), ``count`` (1-50), ``search_domain_filter`` (ONE domain),
``search_recency_filter`` (``oneDay|oneWeek|oneMonth|oneYear|noLimit``), ``content_size``
(``medium|high``), ``request_id`` (6-64 characters), ``user_id``. The response carries ``id``,
``created``, ``request_id``, ``search_intent[]`` and ``search_result[]`` of ``title, content,
link, media, icon, refer, publish_date``. Errors come as ``{"error": {"code", "message"}}``:
code 1113 (HTTP 429) is an empty balance, not a rate limit.
"""

from __future__ import annotations

import os
from decimal import Decimal
from typing import Any, Literal

from pydantic import SecretStr

from ._errors import ConfigurationError
from ._provider import HttpRequest, ProviderCall, error_from_response, load_json_object
from ._results import ResultFields, read_results
from ._types import Recency, SearchResult

__all__ = ["ZAI_RECENCY", "ZaiSearchProvider"]


ZAI_RECENCY: dict[Recency | None, str] = {
    "1d": "oneDay",
    "1w": "oneWeek",
    "1m": "oneMonth",
    "1y": "oneYear",
    None: "noLimit",
}
DEFAULT_BASE_URL = "https://api.z.ai/api/paas/v4"
_FIELDS = ResultFields(
    items="search_result", link="link", date="publish_date", icon="icon", site="media"
)


def _key_from(api_key: str | SecretStr | None, env: str, provider: str) -> SecretStr:
    if isinstance(api_key, SecretStr):
        api_key = api_key.get_secret_value()
    value = api_key or os.environ.get(env, "")
    if not value:
        raise ConfigurationError(f"{provider}: no API key (pass api_key= or set {env})")
    return SecretStr(value)


class ZaiSearchProvider:
    """The z.ai Web Search API.

    Args:
        api_key: API key; defaults to ``ZAI_API_KEY``.
        base_url: API root; defaults to ``WEB_SEARCH_BASE_URL`` or ``https://api.z.ai/api/paas/v4``.
        search_engine: Engine code (documented: ``search-prime``).
        content_size: ``medium`` or ``high`` summary length; None leaves the API default.
        price_per_call: US dollars per call (z.ai lists $0.01).
        user_id: End-user id to send (6-128 characters), if any.
    """

    name = "zai"
    max_domains_per_call: int | None = 1
    max_count = 50

    def __init__(
        self,
        api_key: str | SecretStr | None = None,
        *,
        base_url: str | None = None,
        search_engine: str = "search-prime",
        content_size: Literal["medium", "high"] | None = None,
        price_per_call: Decimal = Decimal("0.01"),
        user_id: str | None = None,
    ) -> None:
        self._api_key = _key_from(api_key, "ZAI_API_KEY", self.name)
        root = base_url or os.environ.get("WEB_SEARCH_BASE_URL") or DEFAULT_BASE_URL
        self.url = root.rstrip("/") + "/web_search"
        self.engine: str | None = search_engine
        self.content_size = content_size
        self.price_per_call = Decimal(price_per_call)
        self.user_id = user_id
        self.cache_namespace = f"zai:{search_engine}:{content_size or 'default'}"

    def __repr__(self) -> str:
        return (
            f"ZaiSearchProvider(url={self.url!r}, engine={self.engine!r}, "
            "api_key=SecretStr('**********'))"
        )

    def build_request(self, call: ProviderCall) -> HttpRequest:
        """The documented JSON body; one domain at most (the client fans out the rest)."""
        if len(call.domains) > 1:
            raise ValueError("z.ai takes one domain per call; the client fans out")
        body: dict[str, Any] = {
            "search_engine": self.engine,
            "search_query": call.query,
            "count": max(1, min(call.count, self.max_count)),
            "search_recency_filter": ZAI_RECENCY[call.recency],
            "request_id": call.request_id,
        }
        if call.domains:
            body["search_domain_filter"] = call.domains[0]
        if self.content_size:
            body["content_size"] = self.content_size
        if self.user_id:
            body["user_id"] = self.user_id
        headers = {
            "Authorization": f"Bearer {self._api_key.get_secret_value()}",
            "Content-Type": "application/json",
            "Accept-Language": "en-US,en",
        }
        return HttpRequest("POST", self.url, headers, body)

    def parse_response(
        self, call: ProviderCall, status: int, headers: dict[str, str], body: bytes
    ) -> list[SearchResult]:
        """``search_result[]`` as ``SearchResult``s; an error status raises its typed error."""
        if status >= 400:
            raise error_from_response(
                self.name, status, headers, body, secrets=(self._api_key.get_secret_value(),)
            )
        data = load_json_object(self.name, body)
        if isinstance(data.get("error"), dict):
            # Some gateways answer 200 with an error envelope.
            raise error_from_response(
                self.name, 400, headers, body, secrets=(self._api_key.get_secret_value(),)
            )
        return read_results(self.name, call.query, data, _FIELDS)
