"""Input checking: OpenAI-style chat messages, refused early with a clear error."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from llm_client._errors import InvalidMessagesError

__all__ = ["Messages", "validate_messages"]

Messages = str | Sequence[Mapping[str, Any]]
"""A prompt string (one user message) or OpenAI-style ``{"role", "content"}`` dicts."""

_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})


def validate_messages(messages: Messages) -> list[dict[str, Any]]:
    """Check ``messages`` and return a fresh list of dicts (the caller's list is never mutated).

    Raises:
        InvalidMessagesError: Empty input, a non-dict, an unknown role, missing or non-text
            content, or nothing but empty strings.
    """
    if isinstance(messages, str):
        if not messages.strip():
            raise InvalidMessagesError("the prompt is empty")
        return [{"role": "user", "content": messages}]
    if not isinstance(messages, Sequence):
        raise InvalidMessagesError(
            f"messages must be a list of dicts, got {type(messages).__name__}"
        )
    if not messages:
        raise InvalidMessagesError("messages is empty")
    out: list[dict[str, Any]] = []
    any_text = False
    for index, message in enumerate(messages):
        if not isinstance(message, Mapping):
            raise InvalidMessagesError(
                f"messages[{index}] must be a dict, got {type(message).__name__}"
            )
        role = message.get("role")
        if role not in _ROLES:
            raise InvalidMessagesError(
                f"messages[{index}] has role {role!r}; expected one of {sorted(_ROLES)}"
            )
        content = message.get("content")
        if content is None:
            if not (role == "assistant" and message.get("tool_calls")):
                raise InvalidMessagesError(f"messages[{index}] ({role}) has no content")
        elif isinstance(content, str):
            any_text = any_text or bool(content.strip())
        elif isinstance(content, list):
            any_text = any_text or bool(content)
        else:
            raise InvalidMessagesError(
                f"messages[{index}].content must be a string or a list of parts, "
                f"got {type(content).__name__}"
            )
        out.append(dict(message))
    if not any_text:
        raise InvalidMessagesError("every message is empty")
    return out
