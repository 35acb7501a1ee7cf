"""Property: a completion's cost and usage are exactly the sums over its attempts."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st
from llm_client import AttemptRecord, Completion, LLMClient, LLMConfig, Usage
from llm_client._pricing import price_for
from llm_client.testing import Reply, TestModel
from pydantic import BaseModel

from ._helpers import fast_policy

money = st.decimals(min_value=0, max_value=Decimal("1000"), places=12, allow_nan=False)
tokens = st.integers(min_value=0, max_value=2_000_000)


@st.composite
def attempts(draw: st.DrawFn) -> AttemptRecord:
    prompt = draw(tokens)
    completion = draw(tokens)
    return AttemptRecord(
        model="m",
        provider="p",
        attempt=1,
        usage=Usage(prompt_tokens=prompt, completion_tokens=completion),
        cost=draw(st.one_of(st.none(), money)),
        error=None,
        latency_ms=1.0,
    )


@given(st.lists(attempts(), min_size=1, max_size=8))
def test_total_is_the_exact_sum_of_attempts(records: list[AttemptRecord]) -> None:
    done = Completion.from_attempts("x", model="m", provider="p", attempts=records, latency_ms=1.0)
    costs = [a.cost for a in records]
    if any(c is None for c in costs):
        assert done.cost is None  # one unpriced billed attempt makes the total unknown, not 0
    else:
        assert done.cost == sum((c for c in costs if c is not None), Decimal(0))
    assert done.usage.prompt_tokens == sum(a.usage.prompt_tokens for a in records)
    assert done.usage.completion_tokens == sum(a.usage.completion_tokens for a in records)
    assert done.attempts == tuple(records)


class Item(BaseModel):
    name: str
    qty: int


@settings(max_examples=25, deadline=None)
@given(
    usages=st.lists(
        st.tuples(st.integers(1, 100_000), st.integers(0, 50_000)), min_size=1, max_size=3
    ),
    reported=st.one_of(st.none(), st.decimals(min_value=0, max_value=5, places=9)),
)
def test_client_cost_equals_sum_of_attempt_costs(
    usages: list[tuple[int, int]], reported: Decimal | None
) -> None:
    """Re-asks through the real client: every attempt billed, totals exact."""
    replies = [
        Reply.invalid_json().with_usage(prompt_tokens=p, completion_tokens=c)
        for p, c in usages[:-1]
    ]
    last_p, last_c = usages[-1]
    replies.append(
        Reply.json({"name": "a", "qty": 1}).with_usage(
            prompt_tokens=last_p, completion_tokens=last_c, cost=reported
        )
    )
    model = TestModel(*replies, name="gpt-4o-mini")

    async def run() -> Completion[Item]:
        async with LLMClient(config=LLMConfig(), retry=fast_policy()) as llm:
            return await llm.complete("x", model, Item)

    done = asyncio.run(run())
    price = price_for("gpt-4o-mini")
    assert price is not None
    expected = [p * price.input + c * price.output for p, c in usages]
    # A reported cost is taken unless it exceeds 10x the local price + $0.01 (then rejected).
    if reported is not None and reported <= expected[-1] * 10 + Decimal("0.01"):
        expected[-1] = reported
    assert [a.cost for a in done.attempts] == expected
    assert done.cost == sum(expected, Decimal(0))
    assert done.usage.prompt_tokens == sum(p for p, _ in usages)
    assert len(done.attempts) == len(usages)
