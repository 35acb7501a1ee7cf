"""Token counting for the context budget (llm-client's offline tokenizer)."""

from __future__ import annotations

from functools import lru_cache
from typing import Final

from llm_client import count_tokens

__all__ = ["MESSAGE_OVERHEAD", "REPLY_PRIMING", "content_tokens", "message_tokens"]

# OpenAI's chat framing, as llm_client.count_tokens bills it: 3 tokens around every message
# plus the role (one token for user/assistant/system), and 3 tokens priming the reply.
MESSAGE_OVERHEAD: Final = 4
REPLY_PRIMING: Final = 3


def content_tokens(text: str, model: str | None = None) -> int:
    """Tokens of a message's content with the model's tokenizer (cl100k_base when unknown)."""
    return _cached(text, model) if len(text) <= 4096 else count_tokens(text, model)


@lru_cache(maxsize=4096)
def _cached(text: str, model: str | None) -> int:
    # System prompts, page context and summaries repeat on every turn: count them once.
    return count_tokens(text, model)


def message_tokens(text_tokens: int) -> int:
    """Tokens a message with ``text_tokens`` of content costs in a chat request."""
    return text_tokens + MESSAGE_OVERHEAD
