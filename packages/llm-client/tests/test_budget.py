"""The cost sink around every attempt: budgets refuse before sending, cancellation releases."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from llm_client import (
    BudgetExceededError,
    CostEstimate,
    CostRecord,
    InMemoryBudget,
    LLMClient,
    LLMClientError,
    LLMConfig,
    UnpricedModelError,
)
from llm_client.testing import FakeLLMServer, Reply

from ._helpers import RecordingSink, fast_policy

MODEL = "openai/gpt-4o-mini"


def client(sink: object) -> LLMClient:
    return LLMClient(sink, config=LLMConfig(), retry=fast_policy())  # type: ignore[arg-type]


async def test_cancellation_releases_the_reservation(fake_llm_server: FakeLLMServer) -> None:
    fake_llm_server.script(Reply.hang())
    sink = RecordingSink()
    async with client(sink) as llm:
        task = asyncio.create_task(llm.chat("hi", MODEL, api_base=fake_llm_server.base_url))
        await asyncio.to_thread(fake_llm_server.wait_for_hangs, 1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert sink.kinds() == ["reserve", "release"]
    reserved: CostEstimate = sink.events[0][1]
    assert sink.events[1][1] == reserved.idempotency_id


async def test_cancellation_gives_the_budget_back(fake_llm_server: FakeLLMServer) -> None:
    fake_llm_server.script(Reply.hang())
    budget = InMemoryBudget(Decimal("1.00"))
    async with client(budget) as llm:
        task = asyncio.create_task(llm.chat("hi", MODEL, api_base=fake_llm_server.base_url))
        await asyncio.to_thread(fake_llm_server.wait_for_hangs, 1)
        assert budget.reserved > 0
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert budget.reserved == 0
    assert budget.spent == 0
    assert len(budget.released) == 1
    assert budget.records == []


async def test_unpriced_model_is_refused_before_any_request(fake_llm_server: FakeLLMServer) -> None:
    budget = InMemoryBudget(Decimal("100"))
    async with client(budget) as llm:
        with pytest.raises(UnpricedModelError):
            await llm.chat("hi", "openai/my-unpriced-model", api_base=fake_llm_server.base_url)
    assert fake_llm_server.request_count == 0


async def test_unpriced_model_without_budget_is_recorded_as_unpriced(
    fake_llm_server: FakeLLMServer,
) -> None:
    sink = RecordingSink()
    async with client(sink) as llm:
        done = await llm.complete(
            "hi", "openai/my-unpriced-model", api_base=fake_llm_server.base_url
        )
    estimate: CostEstimate = sink.events[0][1]
    assert estimate.amount is None
    assert done.cost is None  # never a silent $0
    assert done.attempts[0].price_source == "unpriced"
    record: CostRecord = sink.settled()[0]
    assert record.cost is None
    assert record.prompt_tokens > 0


async def test_budget_refuses_a_call_that_could_overspend(fake_llm_server: FakeLLMServer) -> None:
    budget = InMemoryBudget(Decimal("0.0001"))  # less than 4,096 output tokens of gpt-4o-mini
    async with client(budget) as llm:
        with pytest.raises(BudgetExceededError):
            await llm.chat("hi", MODEL, api_base=fake_llm_server.base_url)
        # A tighter output cap makes the same call fit.
        await llm.chat("hi", MODEL, api_base=fake_llm_server.base_url, max_tokens=20)
    assert fake_llm_server.request_count == 1
    assert budget.reserved == 0
    assert 0 < budget.spent <= Decimal("0.0001")
    assert budget.records[0].success is True


async def test_estimate_uses_counted_prompt_tokens_and_output_cap(
    fake_llm_server: FakeLLMServer,
) -> None:
    sink = RecordingSink()
    async with client(sink) as llm:
        await llm.chat("hello " * 50, MODEL, api_base=fake_llm_server.base_url, max_tokens=100)
    estimate: CostEstimate = sink.events[0][1]
    assert estimate.provider == "openai"
    assert estimate.model == MODEL
    assert estimate.amount is not None
    # >= 50 prompt tokens at 0.15/M plus 100 output tokens at 0.6/M
    assert estimate.amount >= Decimal(50) * Decimal("1.5E-7") + Decimal(100) * Decimal("6E-7")


async def test_step_is_carried_to_estimates_and_records() -> None:
    sink = RecordingSink()
    async with client(sink) as llm:
        await llm.chat("hi", "test", step="generate")
    assert sink.events[0][1].step == "generate"
    assert sink.settled()[0].step == "generate"


def test_budget_rejects_bad_limits() -> None:
    with pytest.raises(ValueError, match="Decimal"):
        InMemoryBudget(10)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="Decimal"):
        InMemoryBudget(Decimal(-1))


async def test_concurrent_calls_never_overspend_the_budget() -> None:
    from llm_client._pricing import estimate_cost
    from llm_client._tokens import token_upper_bound
    from llm_client.testing import TestModel

    messages = [{"role": "user", "content": "hi"}]
    estimate = estimate_cost(token_upper_bound(messages), 100, "gpt-4o-mini")
    assert estimate is not None
    budget = InMemoryBudget(estimate * 3)  # room for three calls in flight at once, no more
    model = TestModel(
        *[Reply.hang(0.05, then=Reply.text("ok").with_usage(prompt_tokens=5, completion_tokens=5))]
        * 20,
        name="gpt-4o-mini",
    )
    async with client(budget) as llm:
        results = await asyncio.gather(
            *(llm.chat(messages, model, max_tokens=100) for _ in range(10)),
            return_exceptions=True,
        )
    refused = [r for r in results if isinstance(r, BudgetExceededError)]
    succeeded = [r for r in results if r == "ok"]
    assert len(succeeded) + len(refused) == 10
    assert 3 <= len(succeeded) < 10  # three fit at once; the rest were refused while in flight
    assert budget.spent <= budget.limit
    assert budget.reserved == 0
    assert len(budget.records) == len(succeeded)


class _ForeignRefusal(Exception):
    """Another package's budget refusal (cost-tracker's, say): known only by the attribute."""

    is_budget_refusal = True


class _RefusingSink:
    """A sink from outside llm-client that refuses every call with its own exception."""

    def __init__(self, error: BaseException) -> None:
        self.error = error
        self.reserved = 0

    async def reserve(self, estimate: CostEstimate) -> str:
        self.reserved += 1
        raise self.error

    async def settle(self, reservation: str, record: CostRecord) -> None:
        raise AssertionError("nothing was sent, nothing to settle")

    async def release(self, reservation: str) -> None:
        raise AssertionError("nothing was reserved, nothing to release")


def _wrapped_refusal() -> BaseException:
    try:
        raise _ForeignRefusal("daily budget of $1 for project X reached")
    except _ForeignRefusal as cause:
        try:
            raise RuntimeError("tracker failed") from cause
        except RuntimeError as outer:
            return outer


@pytest.mark.parametrize("how", ["chat", "structured", "stream", "chain"])
async def test_a_sinks_own_budget_refusal_is_an_llm_client_budget_error(
    fake_llm_server: FakeLLMServer, how: str
) -> None:
    from pydantic import BaseModel

    class Out(BaseModel):
        ok: bool

    refusal = _ForeignRefusal("daily budget of $1 for project X reached")
    sink = _RefusingSink(refusal)
    base = fake_llm_server.base_url

    async def call(llm: LLMClient) -> None:
        if how == "chat":
            await llm.chat("hi", MODEL, api_base=base)
        elif how == "structured":
            await llm.chat("hi", MODEL, Out, api_base=base)
        elif how == "chain":
            await llm.chat_with_fallback("hi", [MODEL, MODEL], api_base=base)
        else:
            async with llm.stream("hi", MODEL, api_base=base):
                pass

    async with client(sink) as llm:
        with pytest.raises(BudgetExceededError) as caught:
            await call(llm)
    assert isinstance(caught.value, LLMClientError)
    assert caught.value.__cause__ is refusal
    assert str(caught.value) == "daily budget of $1 for project X reached"
    assert sink.reserved == 1  # a refusal stops a chain at once
    assert fake_llm_server.request_count == 0


async def test_a_refusal_found_along_the_cause_chain_counts_too(
    fake_llm_server: FakeLLMServer,
) -> None:
    error = _wrapped_refusal()
    async with client(_RefusingSink(error)) as llm:
        with pytest.raises(BudgetExceededError) as caught:
            await llm.chat("hi", MODEL, api_base=fake_llm_server.base_url)
    assert caught.value.__cause__ is error


async def test_other_sink_failures_propagate_unchanged(fake_llm_server: FakeLLMServer) -> None:
    error = RuntimeError("ledger unreachable")
    async with client(_RefusingSink(error)) as llm:
        with pytest.raises(RuntimeError) as caught:
            await llm.chat("hi", MODEL, api_base=fake_llm_server.base_url)
    assert caught.value is error
    assert fake_llm_server.request_count == 0


def test_llm_clients_own_budget_error_declares_the_convention() -> None:
    assert BudgetExceededError.is_budget_refusal is True
    assert UnpricedModelError.is_budget_refusal is True


class _EstimateRecordingBudget(InMemoryBudget):
    """An InMemoryBudget that keeps every estimate it was asked to reserve."""

    def __init__(self, limit: Decimal) -> None:
        super().__init__(limit)
        self.estimates: list[Decimal | None] = []

    async def reserve(self, estimate: CostEstimate) -> Any:
        self.estimates.append(estimate.amount)
        return await super().reserve(estimate)


_TEXT = st.one_of(
    st.text(max_size=400),
    st.sampled_from(
        ["hi", "日本語のテキスト", "SEC. 2. $1,000,000 " * 20, "<|endoftext|>", "\n\n"]
    ),
)


@given(
    texts=st.lists(_TEXT, min_size=1, max_size=4),
    max_tokens=st.integers(1, 2_000),
    room=st.integers(0, 6),
    calls=st.integers(1, 6),
)
@settings(max_examples=40, deadline=None)
def test_the_cheap_estimate_never_lets_a_budget_overshoot(
    texts: list[str], max_tokens: int, room: int, calls: int
) -> None:
    """Reservations use the byte bound; the provider then reports the EXACT prompt count and
    the largest completion allowed. Whatever the text, no call settles above its reservation,
    so the budget is never overshot, with calls in flight at once."""
    from llm_client._pricing import estimate_cost
    from llm_client._tokens import count_tokens, token_upper_bound
    from llm_client.testing import TestModel

    model = "gpt-4o-mini"
    messages = [{"role": "user", "content": f"q: {text}"} for text in texts]  # none empty
    exact = count_tokens(messages, model)
    one_call = estimate_cost(token_upper_bound(messages), max_tokens, model)
    assert one_call is not None
    budget = _EstimateRecordingBudget(one_call * room + Decimal("0.0000001") * room)
    reply = Reply.text("ok").with_usage(prompt_tokens=exact, completion_tokens=max_tokens)

    async def run() -> list[object]:
        async with client(budget) as llm:
            test_model = TestModel(*[reply] * calls, name=model)
            return await asyncio.gather(
                *(llm.chat(messages, test_model, max_tokens=max_tokens) for _ in range(calls)),
                return_exceptions=True,
            )

    results = asyncio.run(run())
    assert all(r == "ok" or isinstance(r, BudgetExceededError) for r in results), results
    assert sum(r == "ok" for r in results) == min(calls, room)  # the bound refuses no more
    assert budget.spent <= budget.limit
    assert budget.reserved == 0
    for record, estimate in zip(budget.records, budget.estimates, strict=False):
        assert record.cost is not None
        assert estimate is not None
        assert record.cost <= estimate
        assert record.prompt_tokens == exact
