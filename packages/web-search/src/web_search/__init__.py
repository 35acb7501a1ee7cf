"""z.ai web search (and Tavily) behind a two-tier cache with request coalescing and cost reporting."""

from importlib.metadata import version as _version

__version__ = _version("web-search")

__all__ = ["__version__"]
