"""A bill's research within budget: the cap holds, every source domain is still searched, the
persistent tier is read once per set, and each answer is recorded and cached as it arrives."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from web_search import (
    CacheWrite,
    ConfigurationError,
    LegislationSearchService,
    LocalSearchCache,
    ResearchBudget,
    SearchRequest,
)
from web_search._query import host_matches
from web_search.services import PlannedQuery, plan_within_budget
from web_search.testing import FakeZaiSearchServer, Reply

from .conftest import MakeClient, RecordingSink

BILLS = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "bills"
BILL_IDS = sorted(p.stem for p in BILLS.glob("*.txt") if not p.stem.endswith(".summary"))
JURISDICTION = {"CA": "California", "IN": "Indiana", "US": "United States"}

# What an LLM proposes for a bill: some of it restates the service's own queries.
PROPOSED = (
    "{label} fiscal impact analysis",
    "{label} Fiscal impact   analysis",
    "{label} bill analysis {place}",
    "{place} {label} analysis bill",
    "who supports and opposes {label}",
    "{label} effect on renters and landlords",
    "{label} implementation costs for counties",
    "{label} fiscal impact analysis report",
)


def _bill(bill_id: str) -> str:
    return (BILLS / f"{bill_id}.txt").read_text(encoding="utf-8")


def _proposed(bill_id: str) -> list[str]:
    from web_search.services import bill_label

    place = JURISDICTION[bill_id[:2]]
    return [p.format(label=bill_label(bill_id), place=place) for p in PROPOSED]


def test_twelve_real_bills() -> None:
    assert len(BILL_IDS) == 12, BILL_IDS


@pytest.mark.parametrize("bill_id", BILL_IDS)
async def test_the_cap_holds_and_every_service_domain_is_searched(
    bill_id: str, server: FakeZaiSearchServer, make_client: MakeClient, sink: RecordingSink
) -> None:
    jurisdiction = JURISDICTION[bill_id[:2]]
    async with make_client(cost_sink=sink) as client:
        service = LegislationSearchService(client)
        full = service.plan(bill_id, _bill(bill_id), jurisdiction, _proposed(bill_id))
        package = await service.research(
            bill_id, _bill(bill_id), jurisdiction, extra_queries=_proposed(bill_id)
        )
    plan = package.plan
    assert plan is not None
    assert not plan.cut
    assert plan.uncovered == ()
    assert plan.calls <= 12
    assert plan.cost <= Decimal("0.12")
    # What went upstream: within the cap, and every domain of the full set searched.
    assert server.calls == package.calls <= 12
    assert plan.unplanned_calls > 2 * server.calls  # what the full set would have cost
    wanted = {d for q in full for d in q.domains}
    assert wanted == set(plan.domains)
    filters = [r.json.get("search_domain_filter") for r in server.requests]
    exact = {d for d in wanted if not d.startswith("*.")}
    assert exact <= set(filters)
    assert None in filters  # the wildcards' unfiltered call(s)
    wildcards = {d for q in plan.queries for d in q.domains if d.startswith("*.")}
    assert wildcards == {d for d in wanted if d.startswith("*.")}
    # Sources stay within the service's domains, and every kind of query is represented.
    assert package.sources
    assert all(any(host_matches(s.url, d) for d in wanted) for s in package.sources)
    kinds = {k for q in plan.queries for k in q.kind.split("+")}
    assert {"intent", "fiscal_impact", "stakeholders", "similar_legislation", "evidence"} <= kinds
    # The LLM's restatements are dropped; one record per paid call.
    reasons = {d.text: d.reason for d in plan.dropped}
    proposed = _proposed(bill_id)
    assert proposed[1] not in reasons  # the same text: the query set never holds it twice
    assert reasons[proposed[3]] == "duplicate"  # the same words in another order
    assert reasons[proposed[7]] == "near_duplicate"
    assert len(sink.settled) == server.calls == len(sink.reserved)
    assert len({r.idempotency_id for r in sink.settled}) == len(sink.settled)
    assert package.cost == Decimal("0.01") * server.calls


def _query_set() -> list[PlannedQuery]:
    return LegislationSearchService(None).plan(  # type: ignore[arg-type]
        "CA-AB1482-2019", _bill("CA-AB1482-2019"), "California", _proposed("CA-AB1482-2019")
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    max_calls=st.integers(1, 40),
    max_cost=st.decimals(Decimal(0), Decimal("0.50"), places=3),
    price=st.sampled_from([Decimal("0.01"), Decimal("0.005"), Decimal("0.025"), Decimal(0)]),
    per_call=st.sampled_from([1, None]),
)
def test_no_budget_is_ever_overshot(
    max_calls: int, max_cost: Decimal, price: Decimal, per_call: int | None
) -> None:
    full = _query_set()
    budget = ResearchBudget(max_calls, max_cost)
    plan = plan_within_budget(full, budget, price_per_call=price, max_domains_per_call=per_call)
    allowed = budget.calls_allowed(price)
    assert plan.calls <= allowed
    assert plan.calls == len(plan.queries)
    assert plan.cost <= max_cost or price == 0
    searched = {d for q in plan.queries for d in q.domains}
    assert searched | set(plan.uncovered) == set(plan.domains)
    assert plan.cut == bool(plan.uncovered)
    if allowed >= 12:  # enough for the California profile's 11 domains, as fused
        assert not plan.cut
    assert all(len(q.text) <= 70 for q in plan.queries)
    if plan.cut:
        assert any(d.reason == "cap" for d in plan.dropped)


async def test_a_cut_plan_is_recorded_not_raised(
    server: FakeZaiSearchServer, make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("WARNING", logger="web_search")
    async with make_client() as client:
        service = LegislationSearchService(client, budget=ResearchBudget(12, Decimal("0.05")))
        package = await service.research("CA-AB1482-2019", _bill("CA-AB1482-2019"), "California")
    plan = package.plan
    assert plan is not None
    assert plan.cut
    assert plan.calls == 5 == server.calls
    assert plan.queries[0].domains == ("leginfo.legislature.ca.gov",)  # the set's order
    assert "urban.org" in plan.uncovered
    assert package.sources  # what was bought is kept
    assert any("left unsearched" in r.getMessage() for r in caplog.records)


def test_budget_validation() -> None:
    with pytest.raises(ConfigurationError):
        ResearchBudget(0)
    with pytest.raises(ConfigurationError):
        ResearchBudget(12, Decimal(-1))
    with pytest.raises(ConfigurationError):
        ResearchBudget(12, Decimal("NaN"))
    assert ResearchBudget(max_cost="0.2").max_cost == Decimal("0.2")  # type: ignore[arg-type]
    assert ResearchBudget().calls_allowed(Decimal("0.01")) == 12
    assert ResearchBudget(40, Decimal("0.10")).calls_allowed(Decimal("0.01")) == 10


class CountingStore(LocalSearchCache):
    """The local tier, counting the round trips the client makes to it."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory)
        self.ops: list[str] = []

    async def get(self, key: str, now: datetime) -> object | None:
        self.ops.append("get")
        return await super().get(key, now)

    async def get_many(self, keys: Sequence[str], now: datetime) -> dict[str, object]:
        self.ops.append("get_many")
        return await super().get_many(keys, now)

    async def set(self, key: str, payload: dict[str, Any], **kwargs: Any) -> None:
        self.ops.append("set")
        await super().set(key, payload, **kwargs)

    async def set_many(self, entries: Sequence[CacheWrite], *, now: datetime) -> None:
        self.ops.append(f"set_many:{len(entries)}")
        await super().set_many(entries, now=now)


async def test_the_persistent_tier_is_read_once_and_written_in_batches_per_set(
    server: FakeZaiSearchServer, make_client: MakeClient, tmp_path: Path
) -> None:
    text = _bill("CA-AB1228-2023")
    first = CountingStore(tmp_path / "shared")
    async with make_client(first) as client:
        package = await LegislationSearchService(client).research(
            "CA-AB1228-2023", text, "California", extra_queries=["minimum wage fast food"]
        )
    assert first.ops[0] == "get_many"
    writes = first.ops[1:]
    assert writes
    assert all(op.startswith("set_many:") for op in writes)  # never key by key
    assert sum(int(op.split(":")[1]) for op in writes) == len(package.queries)
    paid = server.calls
    # Another process on the same tier: one read answers the whole set, nothing is written.
    second = CountingStore(tmp_path / "shared")
    async with make_client(second) as client:
        again = await LegislationSearchService(client).research(
            "CA-AB1228-2023", text, "California", extra_queries=["minimum wage fast food"]
        )
    assert second.ops == ["get_many"]
    assert server.calls == paid
    assert {q.source for q in again.queries} == {"l2"}
    assert again.cost == 0
    assert again.saved == package.cost


class TierOfVersion02:
    """A persistent tier written against 0.2's protocol: no get_many / set_many."""

    def __init__(self, inner: LocalSearchCache) -> None:
        self.inner = inner
        self.get, self.set, self.delete = inner.get, inner.set, inner.delete
        self.cleanup, self.add_stats, self.load_stats = (
            inner.cleanup,
            inner.add_stats,
            inner.load_stats,
        )
        self.aclose = inner.aclose


async def test_a_tier_without_batched_methods_is_used_key_by_key(
    server: FakeZaiSearchServer, make_client: MakeClient, tmp_path: Path
) -> None:
    requests = [SearchRequest("rent cap", domains=("lao.ca.gov",)), SearchRequest("wage floor")]
    async with make_client(TierOfVersion02(LocalSearchCache(tmp_path / "old"))) as client:
        first = await client.search_many(requests)
    async with make_client(TierOfVersion02(LocalSearchCache(tmp_path / "old"))) as client:
        again = await client.search_many(requests)
    assert [getattr(o, "source", None) for o in first] == ["upstream", "upstream"]
    assert [getattr(o, "source", None) for o in again] == ["l2", "l2"]
    assert server.calls == 2


async def test_identical_searches_in_one_set_are_made_once(
    server: FakeZaiSearchServer, make_client: MakeClient
) -> None:
    async with make_client() as client:
        outcomes = await client.search_many(
            [
                SearchRequest("rent cap", domains=("lao.ca.gov",)),
                SearchRequest("Rent  CAP", domains=("lao.ca.gov",)),
                SearchRequest("", domains=("lao.ca.gov",)),
            ]
        )
    assert [getattr(o, "source", None) for o in outcomes[:2]] == ["upstream", "coalesced"]
    assert type(outcomes[2]).__name__ == "InvalidQueryError"
    assert server.calls == 1


async def test_answers_are_recorded_and_cached_while_the_set_still_runs(
    server: FakeZaiSearchServer, make_client: MakeClient, sink: RecordingSink, tmp_path: Path
) -> None:
    # What a crash mid-set must not lose: a worker SIGKILLed here has already put every answered
    # call on the books and every answer in the shared tier, so a resume pays for none again.
    text = _bill("CA-AB1482-2019")
    tier = CountingStore(tmp_path / "shared")
    async with make_client(tier, cost_sink=sink) as client:
        service = LegislationSearchService(client)
        plan = service.research_plan("CA-AB1482-2019", text, "California")
        stuck = plan.queries[-1].text
        server.on_query(stuck, Reply.hang_forever())
        task = asyncio.create_task(service.research("CA-AB1482-2019", text, "California"))
        await server.wait_for_calls(plan.calls)
        for _ in range(1000):  # the answered calls' writes finish on their own, set unfinished
            written = sum(int(op.split(":")[1]) for op in tier.ops if op.startswith("set_many:"))
            if len(sink.settled) == plan.calls - 1 and written == plan.calls - 1:
                break
            await asyncio.sleep(0.01)
        assert not task.done()
        assert len(sink.settled) == plan.calls - 1
        assert written == plan.calls - 1
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        server.release_hangs()
    paid = server.calls
    answered = [q for q in plan.queries if q.text != stuck]
    async with make_client(CountingStore(tmp_path / "shared")) as again:
        outcomes = await again.search_many(
            [SearchRequest(q.text, q.count, q.domains, q.recency) for q in answered]
        )
    assert {getattr(o, "source", None) for o in outcomes} == {"l2"}
    assert server.calls == paid


async def test_a_cancelled_set_still_settles_every_paid_call(
    server: FakeZaiSearchServer, make_client: MakeClient, sink: RecordingSink
) -> None:
    async with make_client(cost_sink=sink) as client:
        service = LegislationSearchService(client)
        plan = service.research_plan("CA-AB1482-2019", _bill("CA-AB1482-2019"), "California")
        server.on_query(plan.queries[-1].text, Reply.hang_forever())
        task = asyncio.create_task(
            service.research("CA-AB1482-2019", _bill("CA-AB1482-2019"), "California")
        )
        await server.wait_for_calls(plan.calls)
        while client._stats._counts["misses"] < plan.calls - 1:  # every other search answered
            await asyncio.sleep(0.005)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        server.release_hangs()
    # Every answered call is on the books; the one cut off was given back.
    assert len(sink.settled) == plan.calls - 1
    assert len(sink.released) == 1
    assert {r.idempotency_id for r in sink.settled} | {e.idempotency_id for e in sink.released} == {
        e.idempotency_id for e in sink.reserved
    }
