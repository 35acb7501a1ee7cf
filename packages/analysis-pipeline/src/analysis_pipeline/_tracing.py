"""Spans of a pipeline run and its steps, through the LLM client's telemetry.

The pipeline takes its tracer from the ``LLMClient`` it is given (``llm.telemetry``), so one
setting decides for every span of a run: the run span holds the step spans, which hold the
LLM call and web-search spans made inside them — one bill, one trace. Only LLM attempts and
paid searches carry cost attributes (``gen_ai.usage.cost.*``), so a trace's cost attributes
add up to its cost-ledger rows; run and step totals use names of their own.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from llm_client import Telemetry

__all__ = ["SCOPE", "cost_attribute", "telemetry_of"]

SCOPE = "analysis_pipeline"


def telemetry_of(llm: Any) -> Telemetry:
    """The telemetry of the pipeline's LLM client (off for a client that has none)."""
    telemetry = getattr(llm, "telemetry", None)
    return telemetry if isinstance(telemetry, Telemetry) else Telemetry.off()


def cost_attribute(name: str, cost: Decimal | None) -> dict[str, str]:
    """``{name: cost as a decimal string}``, or nothing for an unpriced total."""
    return {} if cost is None else {name: format(cost, "f")}
