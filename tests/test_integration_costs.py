"""LLMClient reporting to CostTracker: every billed attempt recorded, budgets enforced up front.

Real HTTP to llm-client's loopback ``FakeLLMServer``; cost-tracker on its local store and on real
PostgreSQL (testkit's per-test database). Expected money is computed here from the token counts
the fake server reports and the per-token price ``llm_client.price_for`` gives the model, in
exact Decimal arithmetic, then compared with what the tracker stored.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pydantic import BaseModel

# Never reach a paid provider; LiteLLM's price map stays offline. Set before llm_client runs.
os.environ.setdefault("LLM_CLIENT_BLOCK_REAL_REQUESTS", "1")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import cost_tracker
import llm_client
from cost_tracker import CostMetrics, CostTracker, LocalCostStore
from llm_client import LLMClient, LLMConfig, RetryPolicy
from llm_client.testing import AUTO_TEXT, FakeLLMServer, Reply, approx_tokens
from llm_common_testkit import TcpProxy

MINI = "openai/gpt-4o-mini"  # priced in LiteLLM's bundled map
MINI41 = "openai/gpt-4.1-mini"
NANO = "openai/gpt-4.1-nano"
UNPRICED = "openai/in-house-model-without-a-price"


# Cost-tracker backends (make_tracker comes from tests/conftest.py); Supabase is the real async
# client through testkit's PostgREST-compatible server.
BACKENDS = ["local", pytest.param("postgres", marks=pytest.mark.postgres)]
ALL_BACKENDS = [*BACKENDS, pytest.param("supabase", marks=pytest.mark.postgres)]
MakeTracker = Callable[..., Awaitable[CostTracker]]


class Verdict(BaseModel):
    passed: bool
    score: float
    critique: str


VALID = Verdict(passed=True, score=0.9, critique="Sound.")


async def _no_wait(_: float) -> None:
    return None


def make_llm(sink: Any, *, attempts: int = 3) -> LLMClient:
    """A client on the default config, retrying without real backoff."""
    return LLMClient(
        sink, config=LLMConfig(), retry=RetryPolicy(max_attempts=attempts, sleep=_no_wait)
    )


def expected_cost(
    model: str, prompt: int, completion: int, *, cached: int = 0, reasoning: int = 0
) -> Decimal:
    """Dollars for one attempt from the model's per-token prices (cached/reasoning split out)."""
    price = llm_client.price_for(model)
    assert price is not None, model
    cached_price = price.input if price.cached_input is None else price.cached_input
    reasoning_price = price.output if price.reasoning is None else price.reasoning
    return (
        (prompt - cached) * price.input
        + cached * cached_price
        + (completion - reasoning) * price.output
        + reasoning * reasoning_price
    )


def call_estimate(model: str, messages: list[dict[str, str]], max_tokens: int) -> Decimal:
    """What llm-client reserves for one attempt: the prompt's token bound plus the output cap."""
    bound = llm_client.token_upper_bound(messages)
    assert bound >= llm_client.count_tokens(messages, model)  # never below the real count
    amount = llm_client.estimate_cost(bound, max_tokens, model)
    assert amount is not None
    return amount


async def all_records(tracker: CostTracker) -> list[CostMetrics]:
    now = datetime.now(UTC)
    return await tracker.get_records(now - timedelta(days=2), now + timedelta(days=2))


# --- every attempt is a record ------------------------------------------------------------------


@pytest.mark.parametrize("make_tracker", ALL_BACKENDS, indirect=True)
async def test_every_billed_attempt_of_a_fallback_chain_is_recorded_exactly(
    llm_fake: FakeLLMServer, make_tracker: MakeTracker
) -> None:
    tracker = await make_tracker(daily_budget=Decimal("5"))
    llm_fake.script(
        # MINI: three 5xx, unbilled (released, no record), then the chain moves on.
        Reply.error(500),
        Reply.error(502),
        Reply.error(503),
        # MINI41: three replies that never validate: billed, recorded as failed.
        Reply.invalid_json().with_usage(prompt_tokens=101, completion_tokens=11),
        Reply.json({"passed": "perhaps"}).with_usage(prompt_tokens=102, completion_tokens=12),
        Reply.invalid_json().with_usage(prompt_tokens=103, completion_tokens=13, cached_tokens=40),
        # NANO: one re-ask, then a valid reply.
        Reply.invalid_json().with_usage(prompt_tokens=201, completion_tokens=21),
        Reply.json(VALID).with_usage(prompt_tokens=202, completion_tokens=22, reasoning_tokens=5),
    )
    async with make_llm(tracker) as llm:
        done = await llm.complete(
            [{"role": "user", "content": "Review this analysis."}],
            [MINI, MINI41, NANO],
            Verdict,
            step="review",
            api_base=llm_fake.base_url,
        )
    assert done.output == VALID
    assert done.model == NANO
    assert llm_fake.request_count == 8
    assert [r.model for r in llm_fake.requests] == ["gpt-4o-mini"] * 3 + ["gpt-4.1-mini"] * 3 + [
        "gpt-4.1-nano"
    ] * 2

    expected = [
        (MINI41, 101, 11, 0, 0, False),
        (MINI41, 102, 12, 0, 0, False),
        (MINI41, 103, 13, 40, 0, False),
        (NANO, 201, 21, 0, 0, False),
        (NANO, 202, 22, 0, 5, True),
    ]
    records = sorted(await all_records(tracker), key=lambda r: (r.model or "", r.prompt_tokens))
    got = [
        (
            r.model,
            r.prompt_tokens,
            r.completion_tokens,
            r.cached_prompt_tokens,
            r.reasoning_tokens,
            r.success,
        )
        for r in records
    ]
    assert got == expected
    for record, (model, prompt, completion, cached, reasoning, _) in zip(
        records, expected, strict=True
    ):
        assert record.step == "review"
        assert record.provider == "openai"
        assert record.project == "integration"
        assert record.cost == expected_cost(
            model, prompt, completion, cached=cached, reasoning=reasoning
        )
    # A re-asked reply failed validation; the last reply of a model failed the whole model.
    assert [r.error for r in records] == [
        "ValidationError",
        "ValidationError",
        "StructuredOutputError",
        "ValidationError",
        None,
    ]
    assert len({r.idempotency_id for r in records}) == 5
    # Attempts are numbered per model across retries and re-asks, and survive the round trip.
    assert [r.metadata.get("attempt") for r in records] == [1, 2, 3, 1, 2]

    # The tracker's books and the call's own account agree to the last digit.
    tracked = sum((r.cost for r in records if r.cost is not None), Decimal(0))
    assert done.cost == tracked
    assert sum((a.cost or Decimal(0) for a in done.attempts), Decimal(0)) == tracked
    unbilled = [a for a in done.attempts if a.price_source == "unbilled"]
    assert [(a.model, a.error, a.cost) for a in unbilled] == [(MINI, "ServerError", 0)] * 3
    assert await tracker.get_daily_cost() == tracked
    status = await tracker.budget_status()
    assert (status.spent, status.reserved, status.open_reservations) == (tracked, 0, 0)


async def test_a_text_call_is_recorded_with_the_servers_usage(
    llm_fake: FakeLLMServer, tmp_path: Path
) -> None:
    messages = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Summarise the fiscal note of AB 1482 in one line."},
    ]
    async with CostTracker(LocalCostStore(tmp_path / "c"), outbox_path=tmp_path / "o") as tracker:
        async with make_llm(tracker) as llm:
            done = await llm.complete(messages, MINI, step="generate", api_base=llm_fake.base_url)
        [record] = await all_records(tracker)
    # The fake server's documented usage: ceil(len/4) of the joined message texts and reply.
    [seen] = llm_fake.requests
    prompt = approx_tokens("\n".join(m["content"] for m in seen.messages))
    completion = approx_tokens(AUTO_TEXT)
    assert done.output == AUTO_TEXT
    assert (record.prompt_tokens, record.completion_tokens) == (prompt, completion)
    assert record.cost == expected_cost(MINI, prompt, completion) == done.cost
    assert (record.model, record.step, record.provider, record.success) == (
        MINI,
        "generate",
        "openai",
        True,
    )
    assert record.metadata.get("attempt") == 1
    assert record.timestamp.tzinfo is not None
    assert record.timestamp.utcoffset() == timedelta(0)


# --- cancellation, refusals ----------------------------------------------------------------------


@pytest.mark.parametrize("make_tracker", ALL_BACKENDS, indirect=True)
async def test_a_cancelled_call_leaves_no_reservation_and_no_record(
    llm_fake: FakeLLMServer, make_tracker: MakeTracker
) -> None:
    tracker = await make_tracker(daily_budget=Decimal("1"))
    llm_fake.script(Reply.hang())
    async with make_llm(tracker) as llm:
        task = asyncio.create_task(
            llm.chat("hi", MINI, step="generate", api_base=llm_fake.base_url)
        )
        await asyncio.to_thread(llm_fake.wait_for_hangs, 1, 60)
        held = await tracker.budget_status()
        assert held.reserved > 0  # the attempt really was holding money
        assert held.open_reservations == 1
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        status = await tracker.budget_status()
        assert (status.reserved, status.open_reservations, status.spent) == (0, 0, 0)
        assert await all_records(tracker) == []
        # The budget is whole again: the next call goes through and is billed normally.
        assert await llm.chat("hi", MINI, step="generate", api_base=llm_fake.base_url) == AUTO_TEXT
    assert len(await all_records(tracker)) == 1
    await asyncio.to_thread(llm_fake.wait_until_no_hangs, 60)


@pytest.mark.parametrize("make_tracker", ALL_BACKENDS, indirect=True)
@pytest.mark.parametrize("structured", [False, True], ids=["text", "structured"])
async def test_the_daily_budget_refuses_before_the_request_is_sent(
    llm_fake: FakeLLMServer, make_tracker: MakeTracker, structured: bool
) -> None:
    messages = [{"role": "user", "content": "Estimate the rent impact."}]
    estimate = call_estimate(MINI, messages, max_tokens=50)
    # Fits exactly one estimate; the first call then spends less than it held, never more.
    tracker = await make_tracker(daily_budget=estimate)
    model = Verdict if structured else None
    llm_fake.default = Reply.json(VALID).with_usage(prompt_tokens=10, completion_tokens=10)
    async with make_llm(tracker) as llm:
        if not structured:
            await llm.chat(
                messages, MINI, max_tokens=50, step="generate", api_base=llm_fake.base_url
            )
            assert llm_fake.request_count == 1
        with pytest.raises(llm_client.BudgetExceededError) as refused:
            await llm.chat(
                messages, MINI, model, max_tokens=50, step="generate", api_base=llm_fake.base_url
            )
    # llm-client re-raises the tracker's refusal as its own error, from the tracker's.
    tracker_refusal = refusal_of(refused.value)
    assert llm_fake.request_count == (0 if structured else 1)  # refused before sending
    assert tracker_refusal.kind == "daily"
    if not structured:
        spent = expected_cost(MINI, 10, 10)
        assert tracker_refusal.spent == spent
        assert tracker_refusal.requested == estimate
        assert (await tracker.budget_status()).spent == spent
    status = await tracker.budget_status()
    assert (status.reserved, status.open_reservations) == (0, 0)


async def test_an_unpriced_model_under_a_tracker_budget_is_refused_before_any_request(
    llm_fake: FakeLLMServer, tmp_path: Path
) -> None:
    assert llm_client.price_for(UNPRICED) is None
    tracker = CostTracker(
        LocalCostStore(tmp_path / "c"), monthly_budget="100", outbox_path=tmp_path / "o"
    )
    async with tracker, make_llm(tracker) as llm:
        with pytest.raises(llm_client.BudgetExceededError) as unpriced:
            await llm.chat("hi", UNPRICED, api_base=llm_fake.base_url)
        assert isinstance(refusal_of(unpriced.value), cost_tracker.UnpricedCostError)
        with pytest.raises(llm_client.BudgetExceededError) as chained:  # a chain stops there
            await llm.chat("hi", [UNPRICED, MINI], api_base=llm_fake.base_url)
        assert isinstance(refusal_of(chained.value), cost_tracker.UnpricedCostError)
        assert llm_fake.request_count == 0
        status = await tracker.budget_status("monthly")
        assert (status.reserved, status.open_reservations) == (0, 0)
        assert await all_records(tracker) == []
    # Without a budget the same model is allowed and recorded as unpriced, never as $0.
    async with CostTracker(LocalCostStore(tmp_path / "c2"), outbox_path=tmp_path / "o2") as free:
        async with make_llm(free) as llm:
            done = await llm.complete("hi", UNPRICED, api_base=llm_fake.base_url)
        [record] = await all_records(free)
        assert await free.get_daily_cost() == 0
    assert done.cost is None
    assert record.cost is None
    assert record.prompt_tokens > 0


@pytest.mark.postgres
@pytest.mark.parametrize("make_tracker", ["postgres"], indirect=True)
async def test_fifty_concurrent_calls_against_a_budget_of_n_estimates_send_exactly_n(
    llm_fake: FakeLLMServer, make_tracker: MakeTracker
) -> None:
    calls, fits = 50, 17
    messages = [{"role": "user", "content": "Which households pay more under this bill?"}]
    estimate = call_estimate(MINI, messages, max_tokens=64)
    tracker = await make_tracker(daily_budget=estimate * fits, pool=10)
    # Every request that gets through is held until all 50 callers have been decided, so no
    # settled call can free money for a latecomer.
    llm_fake.default = Reply.hang()
    async with make_llm(tracker, attempts=1) as llm:
        tasks = [
            asyncio.create_task(
                llm.chat(messages, MINI, max_tokens=64, step="generate", api_base=llm_fake.base_url)
            )
            for _ in range(calls)
        ]
        pending: set[asyncio.Task[Any]] = set(tasks)
        async with asyncio.timeout(60):  # a granted surplus would never finish: fail, not hang
            while calls - len(pending) < calls - fits:  # wait for the refusals to come back
                _, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        await asyncio.to_thread(llm_fake.wait_for_hangs, fits, 60)
        assert llm_fake.request_count == fits
        assert llm_fake.hanging == fits
        held = await tracker.budget_status()
        assert (held.reserved, held.open_reservations) == (estimate * fits, fits)
        llm_fake.release_hangs()  # the held requests fail as dropped connections
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    kinds = Counter(type(o).__name__ for o in outcomes)
    assert kinds == {"BudgetExceededError": calls - fits, "ProviderConnectionError": fits}
    assert llm_fake.request_count == fits
    status = await tracker.budget_status()
    assert (status.reserved, status.open_reservations, status.spent) == (0, 0, 0)
    assert await all_records(tracker) == []


# --- zero lost records through a database outage -------------------------------------------------


@pytest.mark.postgres
async def test_no_cost_record_is_lost_while_the_database_is_down(
    llm_fake: FakeLLMServer, postgres_db: str, tmp_path: Path
) -> None:
    from cost_tracker import PostgresCostStore

    # Each call: one re-ask (two billed attempts) on MINI; every fifth also a 500 first.
    def script(i: int) -> None:
        if i % 5 == 0:
            llm_fake.script(Reply.error(500))
        llm_fake.script(
            Reply.invalid_json().with_usage(prompt_tokens=100 + i, completion_tokens=7),
            Reply.json(VALID).with_usage(prompt_tokens=300 + i, completion_tokens=9),
        )

    completions: list[Any] = []
    with TcpProxy.for_url(postgres_db) as proxy:
        store = PostgresCostStore(
            proxy.url_for(postgres_db), max_size=4, connect_timeout=1.0, breaker_interval=0
        )
        tracker = CostTracker(
            store, project="outage", outbox_path=tmp_path / "outbox.sqlite", retry_interval=None
        )
        async with tracker, make_llm(tracker) as llm:

            async def run(i: int) -> None:
                script(i)
                completions.append(
                    await llm.complete(
                        "grade it", MINI, Verdict, step="review", api_base=llm_fake.base_url
                    )
                )

            for i in range(6):
                await run(i)
            assert await tracker.outbox_size() == 0
            proxy.stop()  # the database vanishes, pooled connections included
            for i in range(6, 14):
                await run(i)  # calls keep working; their settles go to the outbox
            queued = await tracker.outbox_size()
            assert queued == 2 * 8
            proxy.start()
            assert await tracker.flush_outbox() == queued
            assert await tracker.outbox_size() == 0
            for i in range(14, 17):
                await run(i)  # and the live path works again

    billed = [a for c in completions for a in c.attempts if a.price_source != "unbilled"]
    assert len(billed) == 2 * 17
    async with await psycopg.AsyncConnection.connect(postgres_db) as conn:
        cursor = await conn.execute(
            "select idempotency_id, count(*), max(model), max(step), max(prompt_tokens),"
            " max(completion_tokens), max(cost) from cost_tracking where project = 'outage'"
            " group by idempotency_id"
        )
        rows = await cursor.fetchall()
    assert all(count == 1 for _, count, *_ in rows)  # exactly once per idempotency id
    assert len(rows) == len(billed)
    stored = sorted(
        (model, step, prompt, completion, cost)
        for _, _, model, step, prompt, completion, cost in rows
    )
    sent = sorted(
        (a.model, "review", a.usage.prompt_tokens, a.usage.completion_tokens, a.cost)
        for a in billed
    )
    assert stored == sent
    total = sum((c.cost for c in completions), Decimal(0))
    assert sum((cost for *_, cost in stored), Decimal(0)) == total


@pytest.mark.parametrize("make_tracker", BACKENDS, indirect=True)
async def test_llm_spend_fires_the_budget_alert_once_then_refuses_at_the_limit(
    llm_fake: FakeLLMServer, make_tracker: MakeTracker
) -> None:
    messages = [{"role": "user", "content": "Score this bill."}]
    prompt = llm_client.token_upper_bound(messages)  # what the reservation counted
    estimate = call_estimate(MINI, messages, max_tokens=50)
    # Each reply bills exactly what was reserved: the bound as its prompt, the full output cap.
    assert expected_cost(MINI, prompt, 50) == estimate
    llm_fake.default = Reply.text("7/10").with_usage(prompt_tokens=prompt, completion_tokens=50)
    alerts: list[cost_tracker.BudgetAlert] = []
    tracker = await make_tracker(daily_budget=estimate * 10, on_alert=alerts.append)
    async with make_llm(tracker) as llm:
        for call in range(1, 11):
            await llm.chat(messages, MINI, max_tokens=50, step="review", api_base=llm_fake.base_url)
            assert len(alerts) == (1 if call >= 8 else 0), call  # 80% is crossed by call 8
        with pytest.raises(llm_client.BudgetExceededError) as refused:
            await llm.chat(messages, MINI, max_tokens=50, step="review", api_base=llm_fake.base_url)
        refusal_of(refused.value)
    assert llm_fake.request_count == 10
    [alert] = alerts
    assert (alert.kind, alert.spent, alert.budget) == ("daily", estimate * 8, estimate * 10)
    status = await tracker.budget_status()
    assert (status.spent, status.reserved) == (estimate * 10, 0)


@pytest.mark.postgres
async def test_with_a_budget_an_unreachable_database_refuses_calls_before_sending(
    llm_fake: FakeLLMServer, postgres_db: str, tmp_path: Path
) -> None:
    from cost_tracker import PostgresCostStore

    with TcpProxy.for_url(postgres_db) as proxy:
        store = PostgresCostStore(
            proxy.url_for(postgres_db), max_size=2, connect_timeout=1.0, breaker_interval=0
        )
        tracker = CostTracker(
            store,
            daily_budget="1",
            project="fail-closed",
            outbox_path=tmp_path / "outbox.sqlite",
            retry_interval=None,
        )
        async with tracker, make_llm(tracker) as llm:
            await llm.chat("hi", MINI, api_base=llm_fake.base_url)
            proxy.stop()
            for model in (None, Verdict, None):  # an unverifiable budget is no budget: fail closed
                with pytest.raises(cost_tracker.StoreUnavailableError):
                    await llm.chat("hi", MINI, model, api_base=llm_fake.base_url)
            assert llm_fake.request_count == 1
            proxy.start()
            await tracker.flush_outbox()
            await llm.chat("hi", MINI, api_base=llm_fake.base_url)
            status = await tracker.budget_status()
    assert llm_fake.request_count == 2
    assert (status.reserved, status.open_reservations) == (0, 0)
    assert status.spent > 0


@pytest.mark.parametrize("make_tracker", BACKENDS, indirect=True)
async def test_a_call_cancelled_during_a_re_ask_keeps_the_billed_reply_and_nothing_else(
    llm_fake: FakeLLMServer, make_tracker: MakeTracker
) -> None:
    tracker = await make_tracker(daily_budget=Decimal("1"))
    llm_fake.script(
        Reply.invalid_json().with_usage(prompt_tokens=400, completion_tokens=30), Reply.hang()
    )
    async with make_llm(tracker) as llm:
        task = asyncio.create_task(
            llm.chat("grade", MINI, Verdict, step="review", api_base=llm_fake.base_url)
        )
        await asyncio.to_thread(llm_fake.wait_for_hangs, 1, 60)  # the re-ask is in flight
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        [record] = await all_records(tracker)  # the first reply was billed: it stays on the books
        status = await tracker.budget_status()
    assert (record.prompt_tokens, record.completion_tokens) == (400, 30)
    assert record.cost == expected_cost(MINI, 400, 30)
    assert (record.success, record.error) == (False, "ValidationError")
    assert (status.spent, status.reserved, status.open_reservations) == (record.cost, 0, 0)
    await asyncio.to_thread(llm_fake.wait_until_no_hangs, 60)


@pytest.mark.parametrize("make_tracker", BACKENDS, indirect=True)
async def test_a_provider_reported_cost_is_stored_to_the_last_digit(
    llm_fake: FakeLLMServer, make_tracker: MakeTracker
) -> None:
    tracker = await make_tracker()
    charged = Decimal("0.0000123456789")
    llm_fake.script(
        Reply.text("ok").with_usage(prompt_tokens=50, completion_tokens=2, cost=charged)
    )
    async with make_llm(tracker) as llm:
        done = await llm.complete(
            "hi",
            "openrouter/openai/gpt-4o-mini",
            step="generate",
            api_base=llm_fake.openrouter_base_url,
        )
    [record] = await all_records(tracker)
    assert done.cost == charged
    assert record.cost == charged  # OpenRouter's own figure wins over the price map
    assert record.cost != expected_cost(MINI, 50, 2)
    assert (record.provider, record.metadata.get("price_source")) == ("openrouter", "provider")
    assert await tracker.get_daily_cost() == charged


@pytest.mark.postgres
async def test_no_cost_record_is_lost_when_the_database_dies_under_concurrent_calls(
    llm_fake: FakeLLMServer, postgres_db: str, tmp_path: Path
) -> None:
    from cost_tracker import PostgresCostStore
    from llm_client.testing import RecordedRequest

    seen = 0
    asked: set[str] = set()
    proxy = TcpProxy.for_url(postgres_db)

    def handler(request: RecordedRequest) -> Reply | None:
        nonlocal seen
        seen += 1
        if seen == 12:  # the database vanishes while other calls are settling
            proxy.stop()
        bill = next(str(m["content"]) for m in request.messages if m["role"] == "user")
        first = bill not in asked
        asked.add(bill)
        # Every other bill's first reply fails validation (a billed re-ask); the rest are valid.
        return Reply.invalid_json() if first and bill.endswith(("0", "2", "4", "6", "8")) else None

    llm_fake.handler = handler
    try:
        store = PostgresCostStore(
            proxy.url_for(postgres_db), max_size=4, connect_timeout=1.0, breaker_interval=0
        )
        tracker = CostTracker(
            store, project="outage2", outbox_path=tmp_path / "outbox.sqlite", retry_interval=None
        )
        async with tracker, make_llm(tracker) as llm:
            completions = await asyncio.gather(
                *[
                    llm.complete(
                        f"grade bill {i}", MINI, Verdict, step="review", api_base=llm_fake.base_url
                    )
                    for i in range(16)
                ]
            )
            assert not proxy.running
            assert await tracker.outbox_size() > 0
            proxy.start()
            await tracker.flush_outbox()
            assert await tracker.outbox_size() == 0
    finally:
        proxy.close()

    billed = [a for c in completions for a in c.attempts if a.price_source != "unbilled"]
    assert len(billed) == llm_fake.request_count == 16 + 8  # the re-asks were billed too
    async with await psycopg.AsyncConnection.connect(postgres_db) as conn:
        cursor = await conn.execute(
            "select count(*), count(distinct idempotency_id), sum(cost), sum(prompt_tokens)"
            " from cost_tracking where project = 'outage2'"
        )
        rows, distinct, cost, prompt = await cursor.fetchone() or (0, 0, 0, 0)
    assert rows == distinct == len(billed)
    assert cost == sum((c.cost for c in completions), Decimal(0))
    assert prompt == sum(a.usage.prompt_tokens for a in billed)


@pytest.mark.parametrize("make_tracker", BACKENDS, indirect=True)
async def test_a_re_ask_the_budget_cannot_pay_for_is_refused_and_the_first_reply_stays_billed(
    llm_fake: FakeLLMServer, make_tracker: MakeTracker
) -> None:
    tracker = await make_tracker(daily_budget=Decimal("0.02"))
    # The first reply bills far more than its estimate ($0.018 of prompt): the re-ask can't fit.
    llm_fake.script(Reply.invalid_json().with_usage(prompt_tokens=120_000, completion_tokens=10))
    async with make_llm(tracker) as llm:
        with pytest.raises(llm_client.BudgetExceededError) as refused:
            await llm.chat("grade", MINI, Verdict, step="review", api_base=llm_fake.base_url)
    tracker_refusal = refusal_of(refused.value)
    assert llm_fake.request_count == 1  # the re-ask was never sent
    [record] = await all_records(tracker)
    assert record.cost == expected_cost(MINI, 120_000, 10)
    assert (record.success, record.error) == (False, "ValidationError")
    status = await tracker.budget_status()
    assert (status.spent, status.reserved, status.open_reservations) == (record.cost, 0, 0)
    assert tracker_refusal.spent == record.cost


def refusal_of(error: BaseException) -> cost_tracker.BudgetExceededError:
    """The tracker's refusal behind llm-client's BudgetExceededError (its ``__cause__``)."""
    assert isinstance(error, llm_client.BudgetExceededError)
    assert isinstance(error, llm_client.LLMClientError)
    cause = error.__cause__
    assert isinstance(cause, cost_tracker.BudgetExceededError)
    assert str(cause) in str(error)
    return cause
