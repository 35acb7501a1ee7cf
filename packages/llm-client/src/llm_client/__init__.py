"""One async call to any LLM provider, with structured outputs, retries, fallbacks and exact Decimal cost."""

from importlib.metadata import version as _version

__version__ = _version("llm-client")

__all__ = ["__version__"]
