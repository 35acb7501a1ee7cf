"""SQL migrations for the llm-common packages and the command that applies them."""

from importlib.metadata import version as _version

__version__ = _version("llm-common-db")

__all__ = ["__version__"]
