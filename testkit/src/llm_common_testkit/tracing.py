"""An OpenTelemetry SDK tracer provider whose finished spans stay in memory, for assertions.

Needs ``opentelemetry-sdk`` (a test dependency of the packages that trace); imported only when
a test asks for the ``span_recorder`` fixture.
"""

from __future__ import annotations

from typing import Any

__all__ = ["SpanRecorder"]


class SpanRecorder:
    """A ``TracerProvider`` writing to an ``InMemorySpanExporter`` (no collector, no thread).

    Attributes:
        provider: The SDK tracer provider (pass it as ``llm_client.Telemetry(provider)``).
        exporter: Its in-memory exporter.
    """

    def __init__(self) -> None:
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))

    def tracer(self, scope: str) -> Any:
        """A tracer of :attr:`provider` (so the recorder itself can stand where a package takes
        ``telemetry``: anything with ``tracer(scope)``)."""
        return self.provider.get_tracer(scope)

    def spans(self) -> tuple[Any, ...]:
        """Every finished span so far, in the order they ended."""
        return tuple(self.exporter.get_finished_spans())

    def close(self) -> None:
        """Shut the provider down and forget the spans."""
        self.provider.shutdown()
        self.exporter.clear()
