"""Input checking: OpenAI-style chat messages, refused early with a clear error."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from llm_client._errors import InvalidMessagesError

__all__ = ["Messages", "check_text", "validate_messages"]

Messages = str | Sequence[Mapping[str, Any]]
"""A prompt string (one user message) or OpenAI-style ``{"role", "content"}`` dicts."""

_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})


def check_text(value: object, where: str) -> None:
    """Refuse text that cannot be sent: strings that are not valid Unicode (lone surrogates).

    Walks dicts, lists and tuples; a JSON encoder or the HTTP layer would otherwise fail later
    with ``UnicodeEncodeError``, after the budget was reserved.

    Args:
        value: A string, or a structure holding strings (a message, its parts, tool calls).
        where: What ``value`` is, for the error message (``messages[2]``, ``model``).

    Raises:
        InvalidMessagesError: A string (or a dict key) is not encodable as UTF-8.
    """
    if isinstance(value, str):
        if value.isascii():
            return
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InvalidMessagesError(
                f"{where} is not valid Unicode (a lone surrogate at position {exc.start}); "
                "decode the text with errors='replace' before sending it"
            ) from None
    elif isinstance(value, Mapping):
        for key, item in value.items():
            check_text(key, where)
            check_text(item, f"{where}.{key}" if isinstance(key, str) and key.isascii() else where)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            check_text(item, f"{where}[{index}]")


def validate_messages(messages: Messages) -> list[dict[str, Any]]:
    """Check ``messages`` and return a fresh list of dicts (the caller's list is never mutated).

    Raises:
        InvalidMessagesError: Empty input, a non-dict, an unknown role, missing or non-text
            content, text that is not valid Unicode, or nothing but empty strings.
    """
    if isinstance(messages, str):
        if not messages.strip():
            raise InvalidMessagesError("the prompt is empty")
        check_text(messages, "the prompt")
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
        check_text(message, f"messages[{index}]")
        out.append(dict(message))
    if not any_text:
        raise InvalidMessagesError("every message is empty")
    return out
