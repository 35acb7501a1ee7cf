"""OpenTelemetry spans of upstream search calls, each with the price it billed.

One CLIENT span per upstream attempt (``web_search {provider}``), a child of whatever span is
current (a pipeline step, an LLM tool execution). A billed attempt — the one a cost record is
written for — carries the cost attributes llm-client's LLM attempts carry, under the same
names (the open proposal's ``gen_ai.usage.cost.*``; llm-client cannot be imported here, so the
three names are repeated from ``llm_client._telemetry``), so a trace's cost attributes add up
to its ledger rows whatever made them. The query text is not recorded (it may quote a user);
nor is the API key or the request URL.

``opentelemetry-api`` is the ``[otel]`` extra; without it nothing is imported.
"""

from __future__ import annotations

import functools
import importlib.util
from decimal import Decimal
from typing import Any

__all__ = ["attempt_span", "end_attempt_span", "resolve_tracer"]

COST_AMOUNT = "gen_ai.usage.cost.amount"
COST_CURRENCY = "gen_ai.usage.cost.currency"
COST_SOURCE = "gen_ai.usage.cost.source"
SCOPE = "web_search"


@functools.cache
def _otel_installed() -> bool:
    try:
        return importlib.util.find_spec("opentelemetry.trace") is not None
    except (ImportError, ValueError):
        return False


def resolve_tracer(telemetry: Any) -> Any | None:
    """The tracer to use: ``telemetry.tracer("web_search")`` (an ``llm_client.Telemetry``, or
    anything with that method), else the global tracer provider's; None when tracing is off or
    ``opentelemetry-api`` is missing."""
    if telemetry is not None:
        return telemetry.tracer(SCOPE)
    if not _otel_installed():
        return None
    from opentelemetry import trace

    return trace.get_tracer(SCOPE)


def attempt_span(tracer: Any, provider: str, engine: str | None, attempt: int, step: str) -> Any:
    """Start the span of one upstream attempt (not made current: nothing nests in it)."""
    from opentelemetry.trace import SpanKind

    attributes: dict[str, Any] = {
        "web_search.provider": provider,
        "web_search.attempt": attempt,
        "web_search.step": step,
    }
    if engine:
        attributes["web_search.engine"] = engine
    return tracer.start_span(f"web_search {provider}", kind=SpanKind.CLIENT, attributes=attributes)


def end_attempt_span(
    span: Any, *, billed: Decimal | None, results: int, error: BaseException | None
) -> None:
    """End an attempt's span: its cost when it was billed, its error class when it failed."""
    attributes: dict[str, Any] = {"web_search.results": results}
    if billed is not None:
        attributes.update(
            {COST_AMOUNT: format(billed, "f"), COST_CURRENCY: "USD", COST_SOURCE: "local"}
        )
    if error is not None:
        from opentelemetry.trace import Status, StatusCode

        attributes["error.type"] = type(error).__name__
        span.set_status(Status(StatusCode.ERROR, type(error).__name__))
    span.set_attributes(attributes)
    span.end()
