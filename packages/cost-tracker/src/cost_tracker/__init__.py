"""Exact Decimal LLM and search cost tracking with race-free daily/monthly budgets."""

from importlib.metadata import version as _version

__version__ = _version("cost-tracker")

__all__ = ["__version__"]
