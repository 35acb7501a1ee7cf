"""OpenTelemetry spans for every call and every attempt, with the GenAI semantic conventions.

One span per call (``chat {model}``, INTERNAL: the whole call with its retries, re-asks and
fallbacks) and, under it, one span per HTTP attempt (``chat {model}``, CLIENT: what the
provider was asked and what it billed). Only attempt spans carry usage and the cost
attributes, one per cost-ledger row, so a trace's cost attributes add up to its ledger rows
exactly. Retries, validation re-asks and fallbacks are events on the call span.

The GenAI conventions are at "development" status and cost attributes are only an open
proposal (``gen_ai.usage.cost.*``); every attribute name lives in this module so a rename is
one edit here. Message content is recorded only with ``Telemetry(capture_content=True)``.
Keys, URLs with credentials and headers never are: the provider's host and port are the only
parts of a base URL that are recorded.

``opentelemetry-api`` is the ``[otel]`` extra. Without it, or with ``Telemetry.off()``, nothing
is imported and each call pays one ``None`` check.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from llm_client._completion import AttemptRecord, Completion
    from llm_client._providers import Route

__all__ = [
    "COST_AMOUNT",
    "COST_CURRENCY",
    "COST_SOURCE",
    "CallTrace",
    "Telemetry",
    "cost_attributes",
    "cost_source",
    "model_name",
    "otel_installed",
]

logger = logging.getLogger("llm_client")

# GenAI semantic conventions (development status).
OPERATION = "gen_ai.operation.name"
PROVIDER = "gen_ai.provider.name"
REQUEST_MODEL = "gen_ai.request.model"
RESPONSE_MODEL = "gen_ai.response.model"
RESPONSE_ID = "gen_ai.response.id"
INPUT_TOKENS = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
CACHE_READ_TOKENS = "gen_ai.usage.cache_read.input_tokens"
CACHE_CREATION_TOKENS = "gen_ai.usage.cache_creation.input_tokens"
REASONING_TOKENS = "gen_ai.usage.reasoning.output_tokens"
INPUT_MESSAGES = "gen_ai.input.messages"
OUTPUT_MESSAGES = "gen_ai.output.messages"
ERROR_TYPE = "error.type"
TOOL_NAME = "gen_ai.tool.name"
TOOL_CALL_ID = "gen_ai.tool.call.id"
SERVER_ADDRESS = "server.address"
SERVER_PORT = "server.port"
_REQUEST_PARAMS = {
    "temperature": "gen_ai.request.temperature",
    "top_p": "gen_ai.request.top_p",
    "max_tokens": "gen_ai.request.max_tokens",
    "seed": "gen_ai.request.seed",
    "presence_penalty": "gen_ai.request.presence_penalty",
    "frequency_penalty": "gen_ai.request.frequency_penalty",
}
# The open proposal for cost attributes.
COST_AMOUNT = "gen_ai.usage.cost.amount"
COST_CURRENCY = "gen_ai.usage.cost.currency"
COST_SOURCE = "gen_ai.usage.cost.source"
# llm-client's own (not conventions).
STEP = "llm_client.step"
ATTEMPT = "llm_client.attempt"
USAGE_SOURCE = "llm_client.usage_source"
CALL_COST = "llm_client.call.cost"
CALL_ATTEMPTS = "llm_client.call.attempts"
RETRY_EVENT = "llm_client.retry"
REASK_EVENT = "llm_client.reask"
FALLBACK_EVENT = "llm_client.fallback"


@functools.cache
def otel_installed() -> bool:
    """Whether ``opentelemetry-api`` is importable (checked without importing it)."""
    try:
        return importlib.util.find_spec("opentelemetry.trace") is not None
    except (ImportError, ValueError):
        return False


def model_name(spec: Any) -> str:
    """A model spec as a span shows it: the string, or a test model's name."""
    return (
        spec if isinstance(spec, str) else str(getattr(spec, "name", None) or type(spec).__name__)
    )


def cost_source(price_source: str, cost: Decimal | None) -> str:
    """``provider`` (the provider's own figure), ``local`` (a price table) or ``unpriced``."""
    if cost is None:
        return "unpriced"
    return "provider" if price_source == "provider" else "local"


def cost_attributes(cost: Decimal | None, source: str) -> dict[str, str]:
    """The cost attributes of one billed row: amount as a decimal string, USD, its source.

    Args:
        cost: Dollars billed, or None when unpriced (no amount is recorded then).
        source: ``provider``, ``local`` or ``unpriced``.
    """
    attributes = {COST_CURRENCY: "USD", COST_SOURCE: source}
    if cost is not None:
        attributes[COST_AMOUNT] = format(cost, "f")
    return attributes


def _server(base_url: str | None) -> dict[str, Any]:
    if not base_url:
        return {}
    try:
        parts = urlsplit(base_url)
        host, port = parts.hostname, parts.port
    except ValueError:
        return {}
    attributes: dict[str, Any] = {}
    if host:
        attributes[SERVER_ADDRESS] = host
    if port:
        attributes[SERVER_PORT] = port
    return attributes


def _content(messages: Any) -> str:
    try:
        return json.dumps(messages, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return "[unserialisable]"


class Telemetry:
    """Where a client's spans go, and whether they carry message content.

    Example:
        >>> LLMClient(telemetry=Telemetry(provider, capture_content=True))
        >>> LLMClient(telemetry=Telemetry.off())

    Args:
        tracer_provider: An OpenTelemetry ``TracerProvider``; None uses the global one (what
            the app configured with ``trace.set_tracer_provider``, a no-op until it does).
        capture_content: Record the prompt and reply messages (``gen_ai.input.messages``,
            ``gen_ai.output.messages``). Off by default: they may hold personal data.
        enabled: False: no spans at all (the same as ``Telemetry.off()``).
    """

    def __init__(
        self,
        tracer_provider: Any = None,
        *,
        capture_content: bool = False,
        enabled: bool = True,
    ) -> None:
        self.tracer_provider = tracer_provider
        self.capture_content = capture_content
        self.enabled = enabled
        self._tracers: dict[str, Any] = {}

    def __repr__(self) -> str:
        provider = type(self.tracer_provider).__name__ if self.tracer_provider else "global"
        return (
            f"Telemetry(tracer_provider={provider}, capture_content={self.capture_content}, "
            f"enabled={self.enabled})"
        )

    @classmethod
    def off(cls) -> Telemetry:
        """No spans, and nothing of OpenTelemetry imported."""
        return cls(enabled=False)

    def tracer(self, name: str) -> Any | None:
        """A tracer named ``name`` (an instrumentation scope), or None when tracing is off.

        Other llm-common packages get their tracer here too, so one ``Telemetry`` decides
        for all of them.
        """
        if not self.enabled or not otel_installed():
            return None
        tracer = self._tracers.get(name)
        if tracer is None:
            from opentelemetry import trace

            tracer = trace.get_tracer(name, tracer_provider=self.tracer_provider)
            self._tracers[name] = tracer
        return tracer

    @contextlib.contextmanager
    def span(
        self, scope: str, name: str, attributes: Mapping[str, Any] | None = None
    ) -> Iterator[Any]:
        """A current span named ``name`` from ``scope``'s tracer (yields None when off).

        For other llm-common packages (a pipeline run and its steps, memory operations), so
        the LLM calls made inside become its children. A failure marks it with the exception's
        class only (``error.type``); messages, which may quote inputs, are not recorded.

        Args:
            scope: Instrumentation scope, the package (``analysis_pipeline``).
            name: Span name.
            attributes: Attributes known at the start (more via the yielded span).
        """
        tracer = self.tracer(scope)
        if tracer is None:
            yield None
            return
        with tracer.start_as_current_span(
            name,
            attributes=dict(attributes or {}),
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                yield span
            except BaseException as exc:
                from opentelemetry.trace import Status, StatusCode

                span.set_attribute(ERROR_TYPE, type(exc).__name__)
                span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
                raise

    def tool_span(self, name: str, call_id: str) -> Any:
        """A context manager for the span of one tool execution (yields None when off)."""
        tracer = self.tracer("llm_client")
        if tracer is None:
            return contextlib.nullcontext()
        from opentelemetry.trace import SpanKind

        return tracer.start_as_current_span(
            f"execute_tool {name}",
            kind=SpanKind.INTERNAL,
            attributes={OPERATION: "execute_tool", TOOL_NAME: name, TOOL_CALL_ID: call_id},
            record_exception=False,  # the message may hold anything the tool put in it
        )

    def start_call(
        self,
        operation: str,
        model: str,
        *,
        step: str | None,
        messages: Sequence[Mapping[str, Any]],
    ) -> CallTrace | None:
        """Open the span of one call (None when tracing is off)."""
        tracer = self.tracer("llm_client")
        if tracer is None:
            return None
        from opentelemetry.trace import SpanKind

        attributes: dict[str, Any] = {OPERATION: operation, REQUEST_MODEL: model}
        if step:
            attributes[STEP] = step
        if self.capture_content:
            attributes[INPUT_MESSAGES] = _content(messages)
        span = tracer.start_span(
            f"{operation} {model}", kind=SpanKind.INTERNAL, attributes=attributes
        )
        if not span.is_recording():
            # A no-op provider, or a sampler that dropped this trace: no attempt spans either.
            return None
        return CallTrace(tracer, span, operation, self.capture_content)


class CallTrace:
    """The call span of one call, and the factory of its attempt spans."""

    def __init__(self, tracer: Any, span: Any, operation: str, capture_content: bool) -> None:
        self._tracer = tracer
        self.span = span
        self._operation = operation
        self._capture = capture_content

    def activate(self) -> Any:
        """Make the call span current (spans of nested libraries become its children)."""
        from opentelemetry.trace import use_span

        return use_span(self.span, end_on_exit=False)

    def activate_attempt(self, span: Any) -> Any:
        """Make an attempt span current while its request is sent."""
        from opentelemetry.trace import use_span

        return use_span(span, end_on_exit=False)

    def start_attempt(
        self, route: Route, request: Mapping[str, Any], number: int, previous: str | None
    ) -> Any:
        """Open an attempt span; a retry or re-ask (``previous`` error) is an event first."""
        from opentelemetry.trace import SpanKind, set_span_in_context

        if previous is not None:
            reask = previous in {"ValidationError", "StructuredOutputError"}
            event = REASK_EVENT if reask else RETRY_EVENT
            self.span.add_event(
                event, {ATTEMPT: number, REQUEST_MODEL: route.model, ERROR_TYPE: previous}
            )
        attributes: dict[str, Any] = {
            OPERATION: self._operation,
            PROVIDER: route.provider,
            REQUEST_MODEL: route.model,
            ATTEMPT: number,
            **_server(route.base_url),
        }
        for name, key in _REQUEST_PARAMS.items():
            value = request.get(name)
            if isinstance(value, int | float) and not isinstance(value, bool):
                attributes[key] = value
        if self._capture:
            attributes[INPUT_MESSAGES] = _content(request.get("messages"))
        return self._tracer.start_span(
            f"{self._operation} {route.model}",
            context=set_span_in_context(self.span),
            kind=SpanKind.CLIENT,
            attributes=attributes,
        )

    def end_attempt(
        self,
        span: Any,
        attempt: AttemptRecord,
        *,
        billed: bool,
        response_model: str | None = None,
        response_id: str | None = None,
        usage_source: str | None = None,
        output: str | None = None,
    ) -> None:
        """Close an attempt span with its usage and, when it was billed, its cost."""
        if span is None:
            return
        attributes: dict[str, Any] = {}
        if billed:
            usage = attempt.usage
            source = cost_source(attempt.price_source, attempt.cost)
            attributes.update(
                {
                    INPUT_TOKENS: usage.prompt_tokens,
                    OUTPUT_TOKENS: usage.completion_tokens,
                    CACHE_READ_TOKENS: usage.cached_prompt_tokens,
                    CACHE_CREATION_TOKENS: usage.cache_write_tokens,
                    REASONING_TOKENS: usage.reasoning_tokens,
                    **cost_attributes(attempt.cost, source),
                }
            )
            if usage_source:
                attributes[USAGE_SOURCE] = usage_source
        if response_model:
            attributes[RESPONSE_MODEL] = response_model
        if response_id:
            attributes[RESPONSE_ID] = response_id
        if self._capture and output is not None:
            attributes[OUTPUT_MESSAGES] = _content([{"role": "assistant", "content": output}])
        if attempt.error is not None:
            attributes[ERROR_TYPE] = attempt.error
        span.set_attributes(attributes)
        if attempt.error is not None:
            from opentelemetry.trace import Status, StatusCode

            span.set_status(Status(StatusCode.ERROR, attempt.error))
        span.end()

    def fallback(self, model: str, error: BaseException) -> None:
        """Record that the chain moved on from ``model``."""
        self.span.add_event(
            FALLBACK_EVENT, {REQUEST_MODEL: model, ERROR_TYPE: type(error).__name__}
        )

    def finish(self, completion: Completion[Any] | None, error: str | None) -> None:
        """Close the call span: the model that answered and the call's totals, or the error."""
        attributes: dict[str, Any] = {}
        if completion is not None:
            attributes[RESPONSE_MODEL] = completion.model
            attributes[PROVIDER] = completion.provider
            attributes[CALL_ATTEMPTS] = len(completion.attempts)
            if completion.cost is not None:
                attributes[CALL_COST] = format(completion.cost, "f")
        if error is not None:
            from opentelemetry.trace import Status, StatusCode

            attributes[ERROR_TYPE] = error
            self.span.set_status(Status(StatusCode.ERROR, error))
        self.span.set_attributes(attributes)
        self.span.end()
