"""z.ai web search (and Tavily) behind a two-tier cache, with request coalescing and costs."""

from importlib.metadata import version as _version

from ._cache import CacheEntry, CachePolicy, SearchCache
from ._client import RetryPolicy, WebSearchClient, make_provider
from ._cost import CostEstimate, CostRecord, CostSink
from ._dates import parse_publish_date
from ._errors import (
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    InsufficientBalanceError,
    InvalidQueryError,
    ProviderError,
    RateLimitError,
    ResponseFormatError,
    SearchTimeoutError,
    ServerError,
    WebSearchError,
)
from ._provider import HttpRequest, ProviderCall, SearchProvider
from ._query import clean_query
from ._stores._protocol import PersistentCache
from ._stores.local import LocalSearchCache
from ._stores.postgres import PostgresSearchCache
from ._stores.supabase import SupabaseSearchCache
from ._tavily import TavilySearchProvider
from ._types import CacheStats, Recency, SearchOutcome, SearchResult
from ._zai import ZaiSearchProvider
from .services import (
    FinanceSearchService,
    LegislationSearchService,
    PlannedQuery,
    ResearchPackage,
    ResearchQuery,
    Source,
    extract_subject_terms,
)

__version__ = _version("web-search")

__all__ = [
    "AuthenticationError",
    "BadRequestError",
    "CacheEntry",
    "CachePolicy",
    "CacheStats",
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
    "PersistentCache",
    "PlannedQuery",
    "PostgresSearchCache",
    "ProviderCall",
    "ProviderError",
    "RateLimitError",
    "Recency",
    "ResearchPackage",
    "ResearchQuery",
    "ResponseFormatError",
    "RetryPolicy",
    "SearchCache",
    "SearchOutcome",
    "SearchProvider",
    "SearchResult",
    "SearchTimeoutError",
    "ServerError",
    "Source",
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
