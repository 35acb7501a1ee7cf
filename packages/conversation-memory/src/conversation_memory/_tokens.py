"""Token counting for the context budget: a cheap upper bound, or the exact count on request.

The default needs no tokenizer at all. Every byte-level BPE tokenizer (OpenAI's cl100k_base and
o200k_base, and the GPT-2 family most open models build on) splits a text's UTF-8 bytes into
tokens of at least one byte each, so the byte length is a count that never undercounts: a
context built with it never exceeds the budget, it may only keep fewer messages than an exact
count would. Apps that want every message the budget allows pass ``exact_tokens=True`` and get
llm-client's offline tiktoken count (whose tables are loaded on that first count).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Final

__all__ = [
    "MESSAGE_OVERHEAD",
    "REPLY_PRIMING",
    "bound_tokens",
    "content_tokens",
    "exact_tokens",
    "message_tokens",
]

# OpenAI's chat framing, as llm_client.count_tokens bills it: 3 tokens around every message
# plus the role (one token for user/assistant/system), and 3 tokens priming the reply.
MESSAGE_OVERHEAD: Final = 4
REPLY_PRIMING: Final = 3


def bound_tokens(text: str) -> int:
    """An upper bound on the tokens of ``text``: its length in UTF-8 bytes (no tokenizer)."""
    # surrogatepass: a lone surrogate (refused before storing, but possible in page context)
    # still counts, as 3 bytes, instead of raising here.
    return len(text.encode("utf-8", "surrogatepass"))


def exact_tokens(text: str, model: str | None = None) -> int:
    """Tokens of ``text`` with the model's tokenizer (cl100k_base when unknown)."""
    return _cached(text, model) if len(text) <= 4096 else _count(text, model)


def content_tokens(text: str, model: str | None = None, *, exact: bool = False) -> int:
    """Tokens of a message's content: the exact count, or (default) the cheap upper bound."""
    return exact_tokens(text, model) if exact else bound_tokens(text)


def _count(text: str, model: str | None) -> int:
    from llm_client import count_tokens  # loads tiktoken's tables on the first call

    return count_tokens(text, model)


@lru_cache(maxsize=4096)
def _cached(text: str, model: str | None) -> int:
    # System prompts, page context and summaries repeat on every turn: count them once.
    return _count(text, model)


def message_tokens(text_tokens: int) -> int:
    """Tokens a message with ``text_tokens`` of content costs in a chat request."""
    return text_tokens + MESSAGE_OVERHEAD
