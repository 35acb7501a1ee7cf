"""``CallOptions``: one call's arguments, built once by the public method and passed down."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from llm_client._providers import Route

__all__ = ["CallOptions"]


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
    """

    temperature: float | None = None
    max_tokens: int | None = None
    timeout: float | None = None
    step: str | None = None
    api_base: str | None = None
    max_validation_retries: int | None = None

    def request(self, route: Route, messages: list[dict[str, Any]]) -> dict[str, Any]:
        """The chat-completions request for ``route``: model, messages and given options."""
        request: dict[str, Any] = {"model": route.wire_model, "messages": messages}
        if self.temperature is not None:
            request["temperature"] = self.temperature
        if self.max_tokens is not None:
            request["max_tokens"] = self.max_tokens
        if route.extra_body:
            request["extra_body"] = dict(route.extra_body)
        return request
