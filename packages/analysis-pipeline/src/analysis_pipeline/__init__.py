"""Research, generate, review, refine: a logged, comparable legislation-analysis pipeline."""

from importlib.metadata import version as _version

__version__ = _version("analysis-pipeline")

__all__ = ["__version__"]
