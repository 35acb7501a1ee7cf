"""Per-user chat history with rolling summaries, page context and strict isolation."""

from importlib.metadata import version as _version

__version__ = _version("conversation-memory")

__all__ = ["__version__"]
