"""Choosing a provider from configuration (argument or ``WEB_SEARCH_PROVIDER``)."""

from __future__ import annotations

import os

from ._errors import ConfigurationError
from ._provider import SearchProvider
from ._tavily import TavilySearchProvider
from ._zai import ZaiSearchProvider

__all__ = ["make_provider"]


def make_provider(
    provider: str | SearchProvider | None, api_key: str | None = None, base_url: str | None = None
) -> SearchProvider:
    """Build a provider from a name (``zai``, ``tavily``; default ``WEB_SEARCH_PROVIDER`` or zai).

    Raises:
        ConfigurationError: Unknown name or no API key.
    """
    if provider is not None and not isinstance(provider, str):
        return provider
    name = (provider or os.environ.get("WEB_SEARCH_PROVIDER") or "zai").strip().lower()
    if name in ("zai", "z.ai", "zhipu"):
        return ZaiSearchProvider(api_key, base_url=base_url)
    if name == "tavily":
        return TavilySearchProvider(api_key, base_url=base_url)
    raise ConfigurationError(f"unknown web search provider {name!r} (known: zai, tavily)")
