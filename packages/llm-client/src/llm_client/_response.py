"""One check of a reply's shape for every provider route (openai SDK, LiteLLM, test models).

A reply that arrived but is not a usable chat completion raises :class:`ResponseFormatError`
(a retryable :class:`ProviderError`) instead of passing ``""`` off as a success or escaping as
``IndexError``/``KeyError``/``JSONDecodeError``. Usage of the wrong type, negative, or all zero
(LiteLLM fills a missing ``usage`` with zeros) is not trusted: the attempt is billed with usage
counted locally and flagged, because failing a good answer over its bookkeeping would make the
caller pay for it twice.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from llm_client._errors import ResponseFormatError

__all__ = [
    "chunk_text",
    "get_field",
    "is_malformed_reply",
    "output_text",
    "reply_text",
    "unusable",
    "usage_problem",
]

# LiteLLM wraps a reply it could not parse into a synthetic HTTP 500; these phrases of its
# messages (and a JSONDecodeError in the chain) tell such a reply from a real server error.
_LITELLM_MALFORMED = (
    "Invalid response object",
    "Empty or invalid response",
    "response with no 'choices'",
)
_TOKEN_FIELDS = (
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
)
_DETAIL_FIELDS = {
    "prompt_tokens_details": ("cached_tokens", "cache_write_tokens"),
    "completion_tokens_details": ("reasoning_tokens",),
}


def get_field(obj: object, key: str) -> Any:
    """``obj[key]`` for a mapping, ``obj.key`` for an object; None when absent."""
    if isinstance(obj, Mapping):
        return obj.get(key)
    try:
        return getattr(obj, key, None)
    except Exception:  # odd SDK objects may raise on unknown attributes
        return None


def unusable(reason: str, *, provider: str, model: str) -> ResponseFormatError:
    """The error for a reply that arrived but cannot be used."""
    return ResponseFormatError(
        f"{provider} {model}: unusable reply: {reason}",
        provider=provider,
        model=model,
        reason=reason,
    )


def reply_text(response: Any, *, provider: str = "", model: str = "") -> str:
    """The reply's text: ``choices[0].message.content`` ("" for a tool-call-only reply).

    Args:
        response: A parsed chat completion (the openai SDK's, LiteLLM's, or a dict).
        provider: Provider name, for the error.
        model: Model string, for the error.

    Raises:
        ResponseFormatError: The reply has no usable choice or content.
    """

    def bad(reason: str) -> ResponseFormatError:
        return unusable(reason, provider=provider, model=model)

    if response is None or isinstance(response, str | bytes | int | float | list | tuple):
        raise bad(f"the body is a JSON {type(response).__name__}, not an object")
    choices = get_field(response, "choices")
    if choices is None:
        raise bad("no choices")
    if not isinstance(choices, Sequence) or isinstance(choices, str | bytes):
        raise bad(f"choices is a {type(choices).__name__}, not a list")
    if not choices:
        raise bad("empty choices")
    message = get_field(choices[0], "message")
    if message is None or isinstance(message, str | bytes | int | float | list):
        raise bad("choices[0] has no message")
    content = get_field(message, "content")
    if content is None or content == "":
        if get_field(message, "tool_calls"):
            return ""
        raise bad("choices[0].message has no content and no tool calls")
    if not isinstance(content, str):
        raise bad(f"choices[0].message.content is a {type(content).__name__}, not text")
    return content


def chunk_text(chunk: Any, *, provider: str = "", model: str = "") -> str:
    """The text delta of one streamed chunk ("" for role, tool-call and usage chunks).

    Raises:
        ResponseFormatError: The chunk is not a chat-completion chunk.
    """
    choices = get_field(chunk, "choices")
    if choices is None or (isinstance(choices, Sequence) and not choices):
        return ""  # the usage chunk at the end has no choices
    if not isinstance(choices, Sequence) or isinstance(choices, str | bytes):
        reason = f"stream chunk choices is a {type(choices).__name__}, not a list"
        raise unusable(reason, provider=provider, model=model)
    piece = get_field(get_field(choices[0], "delta"), "content")
    return piece if isinstance(piece, str) else ""


def output_text(response: Any) -> str:
    """Everything the model generated in ``response`` (content and tool-call arguments).

    Never raises: it is used to count tokens of replies of any shape.
    """
    try:
        message = get_field(get_field(response, "choices")[0], "message")
    except (TypeError, IndexError, KeyError):
        return ""
    parts: list[str] = []
    content = get_field(message, "content")
    if isinstance(content, str):
        parts.append(content)
    calls = get_field(message, "tool_calls")
    if isinstance(calls, Sequence) and not isinstance(calls, str | bytes):
        for call in calls:
            arguments = get_field(get_field(call, "function"), "arguments")
            if isinstance(arguments, str):
                parts.append(arguments)
    return "\n".join(parts)


def _token_problem(field: str, value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal | str):
        return f"{field} is a {type(value).__name__}"
    if isinstance(value, int):
        number = Decimal(value)
    else:
        try:
            number = Decimal(str(value))
        except InvalidOperation:
            return f"{field}={value!r} is not a number"
    if not number.is_finite() or number != number.to_integral_value():
        return f"{field}={value!r} is not a whole number"
    if number < 0:
        return f"{field}={value!r} is negative"
    return None


def usage_problem(raw: object) -> str | None:
    """Why a reply's ``usage`` cannot be billed as reported, or None when it can.

    Args:
        raw: The reply's ``usage`` (dict or SDK object), or None when it had none.

    Returns:
        ``"missing"``, a short description of the first bad field, ``"zero tokens reported"``,
        or None for usable usage.
    """
    if raw is None:
        return "missing"
    if isinstance(raw, str | bytes | int | float | list | tuple):
        return f"usage is a {type(raw).__name__}"
    for field in _TOKEN_FIELDS:
        problem = _token_problem(field, get_field(raw, field))
        if problem is not None:
            return problem
    for parent, fields in _DETAIL_FIELDS.items():
        details = get_field(raw, parent)
        for field in fields if details is not None else ():
            problem = _token_problem(f"{parent}.{field}", get_field(details, field))
            if problem is not None:
                return problem
    tokens = [get_field(raw, f) for f in ("prompt_tokens", "completion_tokens", "input_tokens")]
    tokens.append(get_field(raw, "output_tokens"))
    if not any(tokens):
        # A reply to a non-empty prompt always used some tokens; LiteLLM reports a missing
        # usage as zeros.
        return "zero tokens reported"
    return None


def is_malformed_reply(exc: BaseException) -> bool:
    """Whether ``exc`` (one link of a failure's chain) says a reply arrived but was unusable."""
    # json.loads guesses a bytes body's encoding from its first bytes (NULs read as UTF-16/32),
    # so a body that is not JSON can also fail as a UnicodeDecodeError.
    if isinstance(exc, json.JSONDecodeError | UnicodeDecodeError):
        return True
    text = str(exc)
    return any(marker in text for marker in _LITELLM_MALFORMED)
