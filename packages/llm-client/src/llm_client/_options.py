"""``CallOptions``: one call's arguments, built once by the public method and passed down."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypedDict

from llm_client._errors import InvalidRequestError

if TYPE_CHECKING:
    from llm_client._providers import Route
    from llm_client._tools import Tool

__all__ = ["CallOptions", "CallParams", "RequestParams", "StreamParams"]


class RequestParams(TypedDict, total=False):
    """Sampling and provider parameters every call takes; each is sent only when given.

    Attributes:
        top_p: Nucleus sampling mass.
        seed: Seed for best-effort deterministic sampling.
        stop: One stop sequence or a list of them.
        presence_penalty: Penalty for tokens already present.
        frequency_penalty: Penalty by how often a token appeared.
        reasoning_effort: Reasoning budget of reasoning models (``low``, ``medium``, ``high``...).
        extra_body: Provider-specific JSON fields, merged into the request body unchanged
            (over a provider's own, e.g. OpenRouter's ``provider`` routing preferences).
    """

    top_p: float | None
    seed: int | None
    stop: str | list[str] | None
    presence_penalty: float | None
    frequency_penalty: float | None
    reasoning_effort: str | None
    extra_body: Mapping[str, Any] | None


class StreamParams(RequestParams, total=False):
    """The keyword options of :meth:`LLMClient.stream`: :class:`RequestParams` plus these.

    Attributes:
        temperature: Sampling temperature.
        max_tokens: Output cap (also bounds the budget estimate).
        timeout: Seconds per HTTP attempt (streams: also between chunks).
        step: Application step, for the step's model chain and cost records.
        api_base: Base URL of an OpenAI-compatible server (``openai/<name>`` models).
    """

    temperature: float | None
    max_tokens: int | None
    timeout: float | None
    step: str | None
    api_base: str | None


class CallParams(StreamParams, total=False):
    """The keyword options of ``chat``, ``complete`` and ``run_tools``: :class:`StreamParams`
    plus these.

    Attributes:
        max_validation_retries: Re-asks after a reply fails validation (default 2).
        tool_choice: ``"auto"``, ``"none"``, ``"required"``, or one tool (its name, function,
            model class or :class:`Tool`) the model must call.
        parallel_tool_calls: Whether the model may call several tools at once.
    """

    max_validation_retries: int | None
    tool_choice: Any
    parallel_tool_calls: bool | None


def _number(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidRequestError(f"{name} must be a finite number, got {value!r}")


def _check(options: CallOptions) -> None:
    for name in ("temperature", "top_p", "presence_penalty", "frequency_penalty"):
        value = getattr(options, name)
        if value is not None:
            _number(name, value)
    seed = options.seed
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise InvalidRequestError(f"seed must be an int, got {options.seed!r}")
    stop = options.stop
    if stop is not None and not (
        isinstance(stop, str)
        or (isinstance(stop, list | tuple) and all(isinstance(s, str) for s in stop))
    ):
        raise InvalidRequestError(f"stop must be a string or a list of strings, got {stop!r}")
    if options.reasoning_effort is not None and not isinstance(options.reasoning_effort, str):
        raise InvalidRequestError("reasoning_effort must be a string such as 'low' or 'high'")
    if options.extra_body is not None and not isinstance(options.extra_body, Mapping):
        raise InvalidRequestError("extra_body must be a mapping of JSON fields")


@dataclass(frozen=True, slots=True)
class CallOptions:
    """The per-call arguments of ``chat``, ``chat_with_fallback``, ``complete`` and ``stream``.

    Attributes:
        temperature: Sampling temperature (sent only when given).
        max_tokens: Output cap (sent only when given; also bounds the budget estimate).
        timeout: Seconds per HTTP attempt (None: the client's default).
        step: Application step, for the step's model chain and cost records.
        api_base: Base URL of an OpenAI-compatible server (``openai/<name>`` models).
        max_validation_retries: Re-asks after a reply fails validation (None: the config's).
        top_p, seed, stop, presence_penalty, frequency_penalty, reasoning_effort, extra_body:
            See :class:`RequestParams`.
        tools: Tools the model may call.
        tool_choice: ``auto``/``none``/``required`` or a tool (see ``tool_choice_param``).
        parallel_tool_calls: Whether the model may call several tools at once (sent when given).
        response_format: The request's ``response_format`` (structured streams).

    Raises:
        InvalidRequestError: A parameter of the wrong type.
    """

    temperature: float | None = None
    max_tokens: int | None = None
    timeout: float | None = None
    step: str | None = None
    api_base: str | None = None
    max_validation_retries: int | None = None
    top_p: float | None = None
    seed: int | None = None
    stop: str | list[str] | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    reasoning_effort: str | None = None
    extra_body: Mapping[str, Any] | None = None
    tools: tuple[Tool, ...] = ()
    tool_choice: Any = None
    parallel_tool_calls: bool | None = None
    response_format: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        _check(self)
        if self.tool_choice is not None:
            from llm_client._tools import tool_choice_param

            tool_choice_param(self.tool_choice, self.tools)

    def request(self, route: Route, messages: list[dict[str, Any]]) -> dict[str, Any]:
        """The chat-completions request for ``route``: model, messages and given options."""
        request: dict[str, Any] = {"model": route.wire_model, "messages": messages}
        for name in _SENT:
            value = getattr(self, name)
            if value is not None:
                request[name] = list(value) if isinstance(value, tuple) else value
        if self.response_format is not None:
            request["response_format"] = dict(self.response_format)
        if self.tools:
            from llm_client._tools import tool_choice_param

            request["tools"] = [tool.definition() for tool in self.tools]
            choice = tool_choice_param(self.tool_choice, self.tools)
            if choice is not None:
                request["tool_choice"] = choice
            if self.parallel_tool_calls is not None:
                request["parallel_tool_calls"] = self.parallel_tool_calls
        extra = {**(route.extra_body or {}), **(self.extra_body or {})}
        if extra:
            request["extra_body"] = extra
        return request


_SENT = (
    "temperature",
    "max_tokens",
    "top_p",
    "seed",
    "stop",
    "presence_penalty",
    "frequency_penalty",
    "reasoning_effort",
)
