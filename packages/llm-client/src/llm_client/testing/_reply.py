"""Scripted replies: what the fake provider answers to one chat-completions request."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, Literal

from pydantic_core import to_jsonable_python

__all__ = ["Reply", "ReplyKind", "UsageOverride"]

ReplyKind = Literal["text", "tool_call", "auto", "error", "hang", "drop", "raw"]

# z.ai answers insufficient balance (1113) with HTTP 429 and bad parameters (121x) with 400; see
# https://docs.z.ai/api-reference/api-code. Codes not listed default to 400.
_ZAI_STATUS = {
    "1000": 401, "1001": 401, "1002": 401, "1003": 401, "1004": 401,
    "1110": 429, "1111": 429, "1112": 429, "1113": 429, "1121": 429,
    "1120": 500, "1230": 500, "1234": 500, "500": 500,
    "1220": 403, "1211": 400, "1214": 400,
    "1301": 400, "1302": 429, "1303": 429, "1304": 429, "1305": 429,
}  # fmt: skip
_ZAI_MESSAGE = {
    "1113": "Insufficient balance or no resource package. Please recharge.",
    "1214": "Invalid messages parameter. Please check the documentation.",
    "1302": "High concurrency usage of this API, please reduce concurrency.",
    "1002": "Invalid Authentication Token.",
}
_ERROR_TYPES = {
    400: ("invalid_request_error", "Bad request"),
    401: ("authentication_error", "Invalid API key"),
    403: ("permission_error", "Forbidden"),
    404: ("not_found_error", "Not found"),
    429: ("rate_limit_error", "Rate limit exceeded"),
    500: ("server_error", "Internal server error"),
    502: ("server_error", "Bad gateway"),
    503: ("server_error", "Service unavailable"),
    504: ("server_error", "Gateway timeout"),
}


@dataclass(frozen=True, slots=True)
class UsageOverride:
    """Token counts and cost to report instead of the computed defaults (``None`` = default)."""

    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int | None = None
    reasoning_tokens: int | None = None
    cost: Decimal | None = None
    cache_write_tokens: int | None = None


@dataclass(frozen=True, slots=True)
class Reply:
    """One scripted answer of the fake provider.

    Build replies with the constructors (``Reply.text("hi")``, ``Reply.error(503)``, ...) rather
    than the fields; replies are immutable and can be reused. Successful replies become valid
    ``chat.completion`` JSON (or SSE chunks when the request streams) that echo the requested
    model and carry ``usage``.

    Attributes:
        kind: What happens: ``text``, ``tool_call``, ``auto``, ``error``, ``hang``, ``drop``
            or ``raw``.
        content: Message content of a ``text`` reply, or the exact body of a ``raw`` one.
        tool_name: Function name of a ``tool_call`` reply (``None`` with ``auto``: use the
            request's tool).
        tool_arguments: JSON text of the tool call arguments (sent verbatim, may be invalid).
        status: HTTP status code (200 unless an ``error``).
        error_body: JSON body of an ``error`` reply.
        headers: Extra response headers.
        seconds: How long a ``hang`` lasts (``None``: until released or the client gives up).
        then: What a ``hang`` with ``seconds`` answers afterwards (default: ``Reply.auto()``).
        finish_reason: Overrides ``stop`` / ``tool_calls``.
        usage: Token and cost overrides, see :meth:`with_usage`.
        cut_after: A streamed answer stops after this many SSE events, the connection dropped
            (see :meth:`cut_after_events`).
        calls: ``(name, JSON arguments)`` of every call of a ``tool_call`` reply, in order (more
            than one: parallel tool calls, see :meth:`tool_calls`).
    """

    kind: ReplyKind
    content: str | None = None
    tool_name: str | None = None
    tool_arguments: str | None = None
    status: int = 200
    error_body: Any = None
    headers: tuple[tuple[str, str], ...] = ()
    seconds: float | None = None
    then: Reply | None = None
    finish_reason: str | None = None
    usage: UsageOverride = field(default_factory=UsageOverride)
    cut_after: int | None = None
    calls: tuple[tuple[str, str], ...] = ()

    @classmethod
    def text(cls, content: str) -> Reply:
        """Answer with plain message content.

        Args:
            content: The assistant message text.
        """
        return cls(kind="text", content=content)

    @classmethod
    def json(cls, obj: Any) -> Reply:
        """Answer with message content that is the JSON encoding of ``obj``.

        Args:
            obj: Any JSON-serialisable value, Pydantic model instance or list of them.
        """
        return cls(kind="text", content=_dumps(obj))

    @classmethod
    def fenced_json(cls, obj: Any, *, preamble: str = "") -> Reply:
        """Answer with JSON wrapped in a Markdown ```` ```json ```` fence, as chatty models do.

        Args:
            obj: Any JSON-serialisable value or a Pydantic model instance.
            preamble: Text before the fence (e.g. ``"Here is the result:"``).
        """
        fence = f"```json\n{_dumps(obj, indent=2)}\n```"
        return cls(kind="text", content=f"{preamble}\n{fence}" if preamble else fence)

    @classmethod
    def invalid_json(cls, s: str = '{"answer": "unterminated') -> Reply:
        """Answer with content that is not valid JSON (a structured-output failure).

        Args:
            s: The broken content to send.
        """
        return cls(kind="text", content=s)

    @classmethod
    def tool_call(cls, name: str, arguments: Any) -> Reply:
        """Answer with one function tool call.

        Args:
            name: The function name.
            arguments: A JSON-serialisable value or Pydantic model (encoded to JSON), or a
                ``str`` sent verbatim (use it for malformed arguments).
        """
        args = arguments if isinstance(arguments, str) else _dumps(arguments)
        return cls(kind="tool_call", tool_name=name, tool_arguments=args, calls=((name, args),))

    @classmethod
    def tool_calls(cls, *calls: tuple[str, Any]) -> Reply:
        """Answer with several function tool calls at once (parallel tool calls).

        Args:
            *calls: ``(name, arguments)`` pairs; arguments as for :meth:`tool_call`.
        """
        if not calls:
            raise ValueError("tool_calls needs at least one (name, arguments) pair")
        encoded = tuple(
            (name, args if isinstance(args, str) else _dumps(args)) for name, args in calls
        )
        first_name, first_args = encoded[0]
        return cls(kind="tool_call", tool_name=first_name, tool_arguments=first_args, calls=encoded)

    @classmethod
    def auto(cls) -> Reply:
        """Answer with schema-valid output generated from the request.

        A request with ``tools`` gets a call of the chosen tool (``tool_choice``, else the first)
        whose arguments validate against its parameter schema; a request with ``response_format``
        ``json_schema`` (or ``json_object`` plus a JSON schema inside the messages) gets JSON
        content; anything else gets a fixed text.
        """
        return cls(kind="auto")

    @classmethod
    def error(cls, status: int, body: Any = None, retry_after: float | str | None = None) -> Reply:
        """Answer with an HTTP error.

        Args:
            status: HTTP status, e.g. 429, 500, 502, 503, 400, 401.
            body: JSON body; defaults to OpenAI's ``{"error": {"message", "type", "code"}}``.
            retry_after: Value of the ``Retry-After`` header (seconds), if any.
        """
        if body is None:
            kind, message = _ERROR_TYPES.get(status, ("api_error", f"HTTP {status}"))
            body = {"error": {"message": message, "type": kind, "code": status}}
        headers = () if retry_after is None else (("retry-after", _seconds(retry_after)),)
        return cls(kind="error", status=status, error_body=body, headers=headers)

    @classmethod
    def zai_error(
        cls, code: int | str, message: str | None = None, *, status: int | None = None
    ) -> Reply:
        """Answer with a z.ai (Zhipu GLM) business error ``{"error": {"code", "message"}}``.

        Args:
            code: z.ai business code, e.g. ``1113`` (insufficient balance, HTTP 429, must not be
                retried) or ``1214`` (invalid parameter, HTTP 400).
            message: Error message; a realistic one by default.
            status: HTTP status; by default z.ai's own for the code.
        """
        key = str(code)
        text = message or _ZAI_MESSAGE.get(key, f"z.ai error {key}")
        http_status = status or _ZAI_STATUS.get(key, 400)
        return cls(
            kind="error", status=http_status, error_body={"error": {"code": key, "message": text}}
        )

    @classmethod
    def hang(cls, seconds: float | None = None, *, then: Reply | None = None) -> Reply:
        """Hold the request without answering.

        With ``seconds=None`` the request hangs until the client gives up (its timeout), the
        responder is reset or closed, or :meth:`Responder.release_hangs` is called; a released
        request fails as a dropped connection. With ``seconds`` it answers ``then`` afterwards,
        which simulates a slow provider.

        Args:
            seconds: How long to hold the request, ``None`` for "until released".
            then: The answer after ``seconds`` (default ``Reply.auto()``).
        """
        return cls(kind="hang", seconds=seconds, then=then)

    @classmethod
    def raw(cls, body: Any, *, status: int = 200, content_type: str = "application/json") -> Reply:
        """Answer with exactly this body, as a broken provider or proxy might.

        For responses of unexpected shape: no ``choices``, ``null`` content, no ``usage``,
        a body that is not JSON, or JSON of the wrong type. The body is sent as is, also when
        the request asked for a stream.

        Args:
            body: A ``str`` sent verbatim (UTF-8), or any JSON-serialisable value (encoded).
            status: HTTP status.
            content_type: The ``Content-Type`` header.
        """
        text = body if isinstance(body, str) else _dumps(body)
        return cls(
            kind="raw", content=text, status=status, headers=(("content-type", content_type),)
        )

    @classmethod
    def drop(cls) -> Reply:
        """Close the connection without sending a response (a connection error for the client)."""
        return cls(kind="drop")

    def with_usage(
        self,
        *,
        prompt_tokens: int | None = None,
        completion_tokens: int | None = None,
        cached_tokens: int | None = None,
        reasoning_tokens: int | None = None,
        cost: Decimal | float | str | None = None,
        cache_write_tokens: int | None = None,
    ) -> Reply:
        """Return a copy reporting these usage numbers instead of the computed ones.

        Args:
            prompt_tokens: ``usage.prompt_tokens``.
            completion_tokens: ``usage.completion_tokens`` (includes reasoning tokens, as OpenAI).
            cached_tokens: ``usage.prompt_tokens_details.cached_tokens``.
            reasoning_tokens: ``usage.completion_tokens_details.reasoning_tokens``.
            cost: Provider-reported cost in USD, sent as OpenRouter's ``usage.cost``.
            cache_write_tokens: Prompt tokens written to the provider's cache (Anthropic's
                ``cache_creation_input_tokens``; on the OpenAI route,
                ``prompt_tokens_details.cache_write_tokens`` as OpenRouter sends it).
        """
        override = UsageOverride(
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            cached_tokens=cached_tokens,
            reasoning_tokens=reasoning_tokens,
            cost=None if cost is None else Decimal(str(cost)),
            cache_write_tokens=cache_write_tokens,
        )
        return replace(self, usage=override)

    def with_headers(self, headers: Mapping[str, str]) -> Reply:
        """Return a copy that also sends these response headers.

        Args:
            headers: Header names and values.
        """
        extra = tuple((k.lower(), v) for k, v in headers.items())
        return replace(self, headers=self.headers + extra)

    def cut_after_events(self, events: int) -> Reply:
        """Return a copy whose streamed answer breaks off after ``events`` SSE events.

        The connection is dropped mid-stream (no usage chunk, no ``[DONE]``), as when a
        provider or a proxy fails half-way. A non-streamed answer is sent whole.

        Args:
            events: SSE events to send first (the first carries the role, then text deltas).
        """
        if events < 0:
            raise ValueError("events must be >= 0")
        return replace(self, cut_after=events)

    def with_finish_reason(self, finish_reason: str) -> Reply:
        """Return a copy with another ``finish_reason`` (e.g. ``"length"`` for truncation).

        Args:
            finish_reason: The value of ``choices[0].finish_reason``.
        """
        return replace(self, finish_reason=finish_reason)


def _dumps(obj: Any, indent: int | None = None) -> str:
    # to_jsonable_python handles models, lists of models, dates, Decimals and UUIDs alike.
    return json.dumps(to_jsonable_python(obj), indent=indent, ensure_ascii=False)


def _seconds(value: float | str) -> str:
    if isinstance(value, str):
        return value
    return str(int(value)) if float(value).is_integer() else str(value)
