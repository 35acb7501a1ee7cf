"""z.ai web search (and Tavily) behind a two-tier cache, with request coalescing and costs."""

from importlib import import_module as _import_module
from importlib.metadata import version as _version

from ._cache import CacheEntry, CachePolicy, SearchCache
from ._client import RetryPolicy, WebSearchClient, make_provider
from ._cost import CostEstimate, CostRecord, CostSink
from ._dates import parse_publish_date
from ._errors import (
    AuthenticationError,
    BadRequestError,
    BudgetExceededError,
    ConfigurationError,
    InsufficientBalanceError,
    InvalidQueryError,
    MissingExtraError,
    ProviderError,
    RateLimitError,
    ResponseFormatError,
    SearchTimeoutError,
    ServerError,
    StoreCorruptError,
    StoreError,
    StoreUnavailableError,
    WebSearchError,
)
from ._provider import HttpRequest, ProviderCall, SearchProvider
from ._query import clean_query
from ._stores._protocol import CacheWrite, PersistentCache
from ._stores.local import LocalSearchCache
from ._tavily import TavilySearchProvider
from ._types import CacheStats, Recency, SearchOutcome, SearchRequest, SearchResult
from ._zai import ZaiSearchProvider
from .services import (
    FinanceSearchService,
    LegislationSearchService,
    PlannedQuery,
    ResearchBudget,
    ResearchPackage,
    ResearchPlan,
    ResearchQuery,
    Source,
    extract_subject_terms,
)

__version__ = _version("web-search")

# Backends of optional extras load on first access, so ``import web_search`` never needs them;
# a missing extra then raises MissingExtraError naming what to install.
_LAZY = {
    "PostgresSearchCache": "._stores.postgres",
    "SupabaseSearchCache": "._stores.supabase",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'web_search' has no attribute {name!r}")
    return getattr(_import_module(module, __name__), name)


__all__ = [
    "AuthenticationError",
    "BadRequestError",
    "BudgetExceededError",
    "CacheEntry",
    "CachePolicy",
    "CacheStats",
    "CacheWrite",
    "ConfigurationError",
    "CostEstimate",
    "CostRecord",
    "CostSink",
    "FinanceSearchService",
    "HttpRequest",
    "InsufficientBalanceError",
    "InvalidQueryError",
    "LegislationSearchService",
    "LocalSearchCache",
    "MissingExtraError",
    "PersistentCache",
    "PlannedQuery",
    "PostgresSearchCache",
    "ProviderCall",
    "ProviderError",
    "RateLimitError",
    "Recency",
    "ResearchBudget",
    "ResearchPackage",
    "ResearchPlan",
    "ResearchQuery",
    "ResponseFormatError",
    "RetryPolicy",
    "SearchCache",
    "SearchOutcome",
    "SearchProvider",
    "SearchRequest",
    "SearchResult",
    "SearchTimeoutError",
    "ServerError",
    "Source",
    "StoreCorruptError",
    "StoreError",
    "StoreUnavailableError",
    "SupabaseSearchCache",
    "TavilySearchProvider",
    "WebSearchClient",
    "WebSearchError",
    "ZaiSearchProvider",
    "__version__",
    "clean_query",
    "extract_subject_terms",
    "make_provider",
    "parse_publish_date",
]
