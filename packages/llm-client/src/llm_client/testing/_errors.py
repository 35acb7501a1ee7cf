"""The errors ``llm_client.testing`` raises itself."""

from __future__ import annotations

from llm_client._errors import LLMClientError

__all__ = ["LLMTestingError"]


class LLMTestingError(LLMClientError):
    """Base class of the errors raised by ``llm_client.testing`` itself."""
