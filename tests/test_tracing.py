"""One bill, one trace: a pipeline run read back with OpenTelemetry's in-memory exporter.

The stack is production's (LLMClient and WebSearchClient reporting to one CostTracker, every edge
on loopback), with one Telemetry given to both clients. The run's spans all share one trace id
under the run span; the cost attributes of its spans (LLM attempts and paid searches) add up,
to the Decimal, to the cost ledger's rows; a provider's 503 shows as a retry event; the search
API key never appears.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from llm_client import Telemetry
from llm_client.testing import Reply
from llm_common_testkit.tracing import SpanRecorder
from opentelemetry.sdk.trace import ReadableSpan

DATA = Path(__file__).resolve().parent.parent / "../shared/data/bills"  # never copied in
BILL = "CA-AB1228-2023"
COST = "gen_ai.usage.cost.amount"


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


async def test_one_run_is_one_trace_whose_costs_sum_to_the_ledger(
    make_stack: Any,
    llm_server: Any,
    search_server: Any,
    span_recorder: SpanRecorder,
) -> None:
    llm_server.script(Reply.error(503))  # the run's first LLM call is retried once
    stack = await make_stack(telemetry=Telemetry(span_recorder.provider))
    text = (DATA / f"{BILL}.txt").read_text(encoding="utf-8")
    result = await stack.pipeline.run(BILL, text, "California")
    await stack.tracker.wait_for_delivery()
    now = datetime.now(UTC)
    rows = await stack.tracker.get_records(now - timedelta(days=1), now + timedelta(days=1))
    spans = span_recorder.spans()

    assert len({s.context.trace_id for s in spans}) == 1
    [root] = [s for s in spans if s.parent is None]
    assert root.name == "analysis_pipeline.run"
    assert attrs(root)["analysis_pipeline.run_id"] == result.run_id
    steps = {attrs(s)["analysis_pipeline.step.key"] for s in spans if s.name.startswith("analysis")
             and "analysis_pipeline.step.key" in attrs(s)}  # fmt: skip
    assert {"research", "generate", "review:1"} <= steps

    billed = [s for s in spans if COST in attrs(s)]
    assert len(billed) == len(rows)  # one cost attribute per ledger row, none counted twice
    span_total = sum((Decimal(str(attrs(s)[COST])) for s in billed), Decimal(0))
    ledger_total = sum((r.cost for r in rows if r.cost is not None), Decimal(0))
    assert span_total == ledger_total
    assert span_total == result.total_cost
    searches = [s for s in billed if s.name == "web_search zai"]
    assert len(searches) == search_server.calls > 0
    assert {attrs(s)["gen_ai.usage.cost.amount"] for s in searches} == {"0.01"}
    llm_attempts = [s for s in billed if attrs(s).get("gen_ai.operation.name") == "chat"]
    assert {attrs(s)["gen_ai.usage.cost.source"] for s in llm_attempts} == {"local"}

    retries = [e for s in spans for e in s.events if e.name == "llm_client.retry"]
    assert len(retries) == 1
    assert dict(retries[0].attributes or {})["error.type"] == "ServerError"

    recorded = json.dumps([attrs(s) for s in spans], default=str)
    assert "test-key" not in recorded  # the search API key the stack was given
