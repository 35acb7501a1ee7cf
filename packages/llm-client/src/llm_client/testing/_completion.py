"""Turn a request body and a :class:`Reply` into OpenAI ``chat.completion`` JSON or SSE chunks."""

from __future__ import annotations

import json
import math
import time
from typing import Any

from ._reply import Reply
from ._schema import instance_from_schema

__all__ = [
    "AUTO_TEXT", "approx_tokens", "completion_body", "resolve_auto", "stream_chunks",
    "tool_calls_of",
]  # fmt: skip

AUTO_TEXT = "This is a reply from the llm_client offline test model."
"""The content :meth:`Reply.auto` answers when the request asks for no structured output."""

_decoder = json.JSONDecoder()


def approx_tokens(text: str) -> int:
    """Count tokens the way the fake provider does: one per four characters, rounded up.

    Default usage is ``prompt_tokens = approx_tokens(<message texts joined by "\\n">)`` and
    ``completion_tokens = approx_tokens(<content or tool-call arguments>)``, so tests can
    predict it.

    Args:
        text: Any text.

    Returns:
        ``ceil(len(text) / 4)``.
    """
    return math.ceil(len(text) / 4)


def message_text(messages: Any) -> str:
    """Join the text of chat messages (string contents, text parts and tool-call arguments)."""
    parts: list[str] = []
    if not isinstance(messages, list):
        return ""
    for message in messages:
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts.extend(
                str(p.get("text", "")) for p in content if isinstance(p, dict) and "text" in p
            )
        for call in message.get("tool_calls") or []:
            if isinstance(call, dict):
                parts.append(str(call.get("function", {}).get("arguments", "")))
    return "\n".join(parts)


def resolve_auto(body: dict[str, Any]) -> Reply:
    """Pick the schema-valid concrete reply :meth:`Reply.auto` stands for, given a request body."""
    tools = body.get("tools")
    if isinstance(tools, list) and tools:
        tool = _chosen_tool(tools, body.get("tool_choice"))
        function = tool.get("function", {}) if isinstance(tool, dict) else {}
        schema = function.get("parameters") or {"type": "object", "properties": {}}
        return Reply.tool_call(str(function.get("name", "tool")), instance_from_schema(schema))
    response_format = body.get("response_format")
    if isinstance(response_format, dict):
        kind = response_format.get("type")
        if kind == "json_schema":
            spec = response_format.get("json_schema") or {}
            schema = spec.get("schema") if isinstance(spec, dict) else None
            return Reply.json(instance_from_schema(schema or {"type": "object"}))
        if kind == "json_object":
            schema = _schema_in_messages(body.get("messages"))
            return Reply.json(instance_from_schema(schema) if schema else {})
    return Reply.text(AUTO_TEXT)


def _chosen_tool(tools: list[Any], choice: Any) -> Any:
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name")
        for tool in tools:
            if isinstance(tool, dict) and tool.get("function", {}).get("name") == name:
                return tool
    return tools[0]


def _schema_in_messages(messages: Any) -> dict[str, Any] | None:
    # instructor's JSON modes paste the schema into a message; take the first JSON object that
    # looks like a schema (has properties or $defs).
    text = message_text(messages)
    start = text.find("{")
    while start != -1:
        try:
            value, _ = _decoder.raw_decode(text, start)
        except ValueError:
            value = None
        if isinstance(value, dict) and ("properties" in value or "$defs" in value):
            return value
        start = text.find("{", start + 1)
    return None


def _usage(body: dict[str, Any], reply: Reply, output: str) -> dict[str, Any]:
    o = reply.usage
    reasoning = o.reasoning_tokens or 0
    cached = o.cached_tokens or 0
    prompt = o.prompt_tokens
    if prompt is None:
        prompt = max(approx_tokens(message_text(body.get("messages"))), cached)
    completion = o.completion_tokens
    if completion is None:
        completion = approx_tokens(output) + reasoning
    usage: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0}
        | ({"cache_write_tokens": o.cache_write_tokens} if o.cache_write_tokens else {}),
        "completion_tokens_details": {"reasoning_tokens": reasoning, "audio_tokens": 0},
    }
    if o.cost is not None:
        # JSON has no decimal type; OpenRouter sends a float and so do we.
        usage["cost"] = float(o.cost)
    return usage


def _message(reply: Reply, call_id: str) -> tuple[dict[str, Any], str, str]:
    if reply.kind == "tool_call":
        calls = [
            {
                "id": call_id if index == 0 else f"{call_id}_{index}",
                "type": "function",
                "function": {"name": name or "tool", "arguments": arguments or "{}"},
            }
            for index, (name, arguments) in enumerate(tool_calls_of(reply))
        ]
        message = {"role": "assistant", "content": None, "tool_calls": calls}
        output = "\n".join(arguments or "{}" for _, arguments in tool_calls_of(reply))
        return message, output, reply.finish_reason or "tool_calls"
    content = reply.content or ""
    message = {"role": "assistant", "content": content, "refusal": None}
    return message, content, reply.finish_reason or "stop"


def tool_calls_of(reply: Reply) -> tuple[tuple[str, str], ...]:
    """The ``(name, JSON arguments)`` calls of a ``tool_call`` reply."""
    if reply.calls:
        return reply.calls
    return ((reply.tool_name or "tool", reply.tool_arguments or "{}"),)


def completion_body(
    body: dict[str, Any], reply: Reply, completion_id: str, created: int | None = None
) -> dict[str, Any]:
    """Build a ``chat.completion`` object for a concrete ``text``/``tool_call`` reply."""
    message, output, finish = _message(reply, f"call_{completion_id[-12:]}")
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": int(time.time()) if created is None else created,
        "model": str(body.get("model", "")),
        "system_fingerprint": "fp_llm_client_testing",
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
        "usage": _usage(body, reply, output),
    }


def stream_chunks(body: dict[str, Any], reply: Reply, completion_id: str) -> list[bytes]:
    """Build the ``text/event-stream`` events of a streamed answer, ending with ``[DONE]``."""
    created = int(time.time())
    full = completion_body(body, reply, completion_id, created)
    options = body.get("stream_options")
    include_usage = isinstance(options, dict) and bool(options.get("include_usage"))
    base = {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": full["model"],
        "system_fingerprint": full["system_fingerprint"],
    }

    def event(delta: dict[str, Any], finish: str | None = None) -> bytes:
        chunk = {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        if include_usage:
            chunk["usage"] = None
        return b"data: " + json.dumps(chunk).encode() + b"\n\n"

    message = full["choices"][0]["message"]
    events: list[bytes] = []
    if message.get("tool_calls"):
        events.append(event({"role": "assistant", "content": None}))
        for index, call in enumerate(message["tool_calls"]):
            function = {"name": call["function"]["name"], "arguments": ""}
            head = {**call, "index": index, "function": function}
            events.append(event({"tool_calls": [head]}))
            for piece in split_deltas(call["function"]["arguments"]):
                delta = {"index": index, "function": {"arguments": piece}}
                events.append(event({"tool_calls": [delta]}))
    else:
        events.append(event({"role": "assistant", "content": ""}))
        events.extend(event({"content": piece}) for piece in split_deltas(message["content"]))
    events.append(event({}, full["choices"][0]["finish_reason"]))
    if include_usage:
        tail = {**base, "choices": [], "usage": full["usage"]}
        events.append(b"data: " + json.dumps(tail).encode() + b"\n\n")
    events.append(b"data: [DONE]\n\n")
    return events


def split_deltas(text: str) -> list[str]:
    # A handful of deltas per answer: enough to exercise reassembly, cheap for long outputs.
    if not text:
        return []
    size = max(8, math.ceil(len(text) / 8))
    return [text[i : i + size] for i in range(0, len(text), size)]
