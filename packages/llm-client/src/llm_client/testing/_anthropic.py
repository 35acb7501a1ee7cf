"""Anthropic Messages API answers (``POST /v1/messages``) for the fake provider.

Enough of the wire format for LiteLLM's Anthropic route: a ``message`` with text or
``tool_use`` content, its streamed form (``message_start`` ... ``message_stop`` events),
Anthropic's usage split (``input_tokens`` excludes cache reads and cache writes, which have
fields of their own) and Anthropic's error envelope.
"""

from __future__ import annotations

import json
from typing import Any

from ._completion import approx_tokens, message_text, split_deltas, tool_calls_of
from ._reply import Reply

__all__ = ["anthropic_error", "anthropic_events", "anthropic_message"]

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}


def anthropic_error(status: int, body: Any) -> dict[str, Any]:
    """Anthropic's error envelope for an error reply (the OpenAI-style message is kept)."""
    message = body.get("error", {}).get("message") if isinstance(body, dict) else None
    kind = _ERROR_TYPES.get(status, "api_error")
    return {"type": "error", "error": {"type": kind, "message": message or f"HTTP {status}"}}


def _prompt_text(body: dict[str, Any]) -> str:
    system = body.get("system")
    if isinstance(system, list):
        system = "\n".join(str(part.get("text", "")) for part in system if isinstance(part, dict))
    messages = body.get("messages")
    texts: list[dict[str, Any]] = []
    for message in messages if isinstance(messages, list) else []:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list):
            content = "\n".join(
                str(part.get("text", "")) for part in content if isinstance(part, dict)
            )
        texts.append({"role": "user", "content": content or ""})
    return "\n".join(filter(None, [str(system or ""), message_text(texts)]))


def anthropic_message(body: dict[str, Any], reply: Reply, message_id: str) -> dict[str, Any]:
    """The ``message`` object answering ``body`` with a text or tool-call ``reply``."""
    if reply.kind == "tool_call":
        calls = tool_calls_of(reply)
        content: list[dict[str, Any]] = [
            {
                "type": "tool_use",
                "id": f"toolu_{message_id}" if index == 0 else f"toolu_{message_id}_{index}",
                "name": name,
                "input": json.loads(arguments),
            }
            for index, (name, arguments) in enumerate(calls)
        ]
        output, stop = "\n".join(arguments for _, arguments in calls), "tool_use"
    else:
        output = reply.content or ""
        content, stop = [{"type": "text", "text": output}], "end_turn"
    o = reply.usage
    cache_read = o.cached_tokens or 0
    cache_write = o.cache_write_tokens or 0
    prompt = o.prompt_tokens
    if prompt is None:
        prompt = approx_tokens(_prompt_text(body)) + cache_read + cache_write
    completion = o.completion_tokens
    if completion is None:
        completion = approx_tokens(output)
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": str(body.get("model", "")),
        "content": content,
        "stop_reason": reply.finish_reason or stop,
        "stop_sequence": None,
        "usage": {
            "input_tokens": max(prompt - cache_read - cache_write, 0),
            "cache_read_input_tokens": cache_read,
            "cache_creation_input_tokens": cache_write,
            "output_tokens": completion,
        },
    }


def anthropic_events(body: dict[str, Any], reply: Reply, message_id: str) -> list[bytes]:
    """The ``text/event-stream`` events of a streamed text ``reply``, as Anthropic sends them."""
    message = anthropic_message(body, reply, message_id)
    usage = message["usage"]
    text = message["content"][0].get("text", "") if message["content"] else ""

    def event(kind: str, data: dict[str, Any]) -> bytes:
        return f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}\n\n".encode()

    start = {**message, "content": [], "stop_reason": None, "usage": {**usage, "output_tokens": 1}}
    events = [
        event("message_start", {"message": start}),
        event("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}),
    ]
    events.extend(
        event("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": piece}})
        for piece in split_deltas(text)
    )
    events += [
        event("content_block_stop", {"index": 0}),
        event(
            "message_delta",
            {
                "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
                "usage": {"output_tokens": usage["output_tokens"]},
            },
        ),
        event("message_stop", {}),
    ]
    return events
