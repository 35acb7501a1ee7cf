"""Prompt-caching markers for Anthropic models, sent directly or through OpenRouter.

Anthropic caches a prompt prefix only where a content block carries
``cache_control: {"type": "ephemeral"}`` (up to four such breakpoints); OpenRouter forwards the
marker to Anthropic as is, and LiteLLM's Anthropic route puts it on the matching block (a system
message's marker lands on Anthropic's ``system`` field). OpenAI, z.ai and most others cache
automatically and need no marker. Cache writes and reads come back in the usage
(``cache_creation_input_tokens``/``cache_read_input_tokens``, or OpenRouter's
``prompt_tokens_details``) and are priced at their own rates.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from llm_client._errors import InvalidMessagesError

__all__ = ["cache_breakpoint"]


def cache_breakpoint(
    message: Mapping[str, Any], *, ttl: Literal["5m", "1h"] | None = None
) -> dict[str, Any]:
    """A copy of ``message`` whose last content block is marked as a cache breakpoint.

    Example:
        >>> system = cache_breakpoint({"role": "system", "content": long_instructions})
        >>> await llm.chat([system, {"role": "user", "content": q}], "anthropic/claude-haiku-4-5")

    Args:
        message: An OpenAI-style message whose content is text or a list of parts.
        ttl: Anthropic's cache lifetime (``5m`` by default; ``1h`` costs more to write).

    Returns:
        The message with its content as a list of parts, the last one carrying
        ``cache_control``; the caller's message is not changed.

    Raises:
        InvalidMessagesError: The message has no content to mark.
    """
    content = message.get("content")
    if isinstance(content, str):
        parts: list[Any] = [{"type": "text", "text": content}]
    elif isinstance(content, list) and content and isinstance(content[-1], Mapping):
        parts = [dict(part) if isinstance(part, Mapping) else part for part in content]
    else:
        raise InvalidMessagesError("cache_breakpoint needs a message with text or content parts")
    marker: dict[str, Any] = {"type": "ephemeral"}
    if ttl is not None:
        marker["ttl"] = ttl
    parts[-1] = {**parts[-1], "cache_control": marker}
    return {**message, "content": parts}
