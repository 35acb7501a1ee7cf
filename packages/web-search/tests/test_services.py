"""Legislation and finance research services against the loopback server, on real bill texts."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from web_search import (
    BudgetExceededError,
    CostEstimate,
    FinanceSearchService,
    InsufficientBalanceError,
    LegislationSearchService,
    extract_subject_terms,
)
from web_search._query import host_matches
from web_search.services import bill_label
from web_search.testing import FakeZaiSearchServer, Reply

from .conftest import MakeClient, RecordingSink

BILLS = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "bills"


def _bill(bill_id: str) -> str:
    path = BILLS / f"{bill_id}.txt"
    if not path.exists():  # pragma: no cover - the shared data sits beside the repository
        pytest.fail(f"missing shared bill text {path}")
    return path.read_text(encoding="utf-8")


def test_subject_terms_come_from_title_and_digest() -> None:
    terms = extract_subject_terms(_bill("CA-AB1482-2019"))
    assert terms[:3] == ["Tenant Protection Act of 2019", "tenancy", "rent caps"]
    assert extract_subject_terms(_bill("CA-AB1482-2019")) == terms  # deterministic
    assert "prescription drugs" in extract_subject_terms(_bill("US-HR1694-108"))
    assert bill_label("CA-AB1482-2019") == "AB 1482"
    assert bill_label("US-HR1694-108") == "H.R. 1694"


async def test_search_exhaustively(server: FakeZaiSearchServer, make_client: MakeClient) -> None:
    text = _bill("CA-AB1482-2019")
    async with make_client() as client:
        service = LegislationSearchService(client)
        plan = service.plan("CA-AB1482-2019", text, "California")
        package = await service.search_exhaustively(
            "CA-AB1482-2019", text, "California", extra_queries=["rent cap eviction data"]
        )
        again = await service.search_exhaustively(
            "CA-AB1482-2019", text, "CA", extra_queries=["rent cap eviction data"]
        )
    assert 20 <= len(plan) <= 30
    kinds = {q.kind for q in package.queries}
    assert {"intent", "fiscal_impact", "stakeholders", "cost_of_living", "housing", "tax"} <= kinds
    assert {"similar_legislation", "subject", "extra"} <= kinds
    assert len(package.queries) == len(plan) + 1
    # Restricted to government, university and policy sources.
    allowed = (
        "*.gov",
        "*.edu",
        "calmatters.org",
        "ppic.org",
        "ncsl.org",
        "taxfoundation.org",
        "urban.org",
    )
    assert package.sources
    assert all(any(host_matches(s.url, d) for d in allowed) for s in package.sources)
    urls = [s.url for s in package.sources]
    assert len(urls) == len(set(urls))
    assert all(s.queries and s.kinds for s in package.sources)
    assert [s.score for s in package.sources] == sorted(
        (s.score for s in package.sources), reverse=True
    )
    assert package.cost == Decimal("0.01") * server.calls
    assert package.saved == 0
    # The second run is served by the cache: same sources, nothing spent.
    assert again.cost == 0
    assert again.saved == package.cost
    assert [s.url for s in again.sources] == urls
    assert package.as_prompt_text(max_sources=3).count("\n[") == 2


async def test_concurrency_is_bounded(server: FakeZaiSearchServer, make_client: MakeClient) -> None:
    server.latency = 0.3
    async with make_client(None) as client:
        # Each retirement query fans out to three domains: two searches at once = six calls.
        await FinanceSearchService(client).retirement_account_rules("401(k)", 2025, concurrency=2)
    assert server.calls == 18
    assert 3 < server.max_in_flight <= 6


async def test_failed_queries_are_recorded_not_fatal(
    server: FakeZaiSearchServer, make_client: MakeClient
) -> None:
    server.on_query("rent caps California", Reply.insufficient_balance())
    async with make_client(None) as client:
        package = await LegislationSearchService(client).search_exhaustively(
            "CA-AB1482-2019", _bill("CA-AB1482-2019"), "California"
        )
    [failed] = [q for q in package.queries if q.error]
    assert failed.text == "rent caps California"
    assert failed.source == "error"
    assert package.errors


async def test_all_queries_failing_raises(
    server: FakeZaiSearchServer, make_client: MakeClient
) -> None:
    server.script(*[Reply.insufficient_balance()] * 200)
    async with make_client(None) as client:
        with pytest.raises(InsufficientBalanceError):
            await FinanceSearchService(client).fund_prospectus("VTSAX")


async def test_finance_query_sets(server: FakeZaiSearchServer, make_client: MakeClient) -> None:
    async with make_client(None) as client:
        finance = FinanceSearchService(client)
        tax = await finance.tax_rules("CA", 2025)
        retirement = await finance.retirement_account_rules("Roth IRA", 2025)
        fund = await finance.fund_prospectus("vtsax")
    assert tax.subject == "California tax rules 2025"
    assert all(host_matches(s.url, d) for s in tax.sources for d in [s.site] if s.site)
    assert {q.domains for q in tax.queries} >= {("ftb.ca.gov", "taxfoundation.org"), ("irs.gov",)}
    assert all(
        any(host_matches(s.url, d) for d in ("irs.gov", "investor.gov", "dol.gov"))
        for s in retirement.sources
    )
    assert fund.subject == "VTSAX"
    assert all(
        any(host_matches(s.url, d) for d in ("sec.gov", "investor.gov", "finra.org"))
        for s in fund.sources
    )
    assert all(q.text.startswith("VTSAX") for q in fund.queries)
    filters = {r.json.get("search_domain_filter") for r in server.requests}
    assert {"ftb.ca.gov", "irs.gov", "sec.gov", "investor.gov"} <= filters


async def test_offline_client_runs_a_bill_end_to_end() -> None:
    from web_search.testing import offline_search_client

    async with offline_search_client() as client:
        package = await LegislationSearchService(client).search_exhaustively(
            "US-HR2139-110", _bill("US-HR2139-110"), "United States"
        )
    assert package.sources
    assert package.cost > 0


async def test_a_budget_refusal_stops_the_research_set(
    server: FakeZaiSearchServer, make_client: MakeClient
) -> None:
    class Refusal(Exception):
        is_budget_refusal = True

    class SmallBudget(RecordingSink):
        """Grants five calls, then refuses (as a tracker at its daily budget would)."""

        async def reserve(self, estimate: CostEstimate) -> CostEstimate:
            if len(self.reserved) >= 5:
                raise Refusal("daily budget of $0.05 reached")
            return await super().reserve(estimate)

    sink = SmallBudget()
    async with make_client(None, cost_sink=sink) as client:
        with pytest.raises(BudgetExceededError, match=r"\$0\.05"):
            await LegislationSearchService(client).search_exhaustively(
                "CA-AB1482-2019", _bill("CA-AB1482-2019"), "California", concurrency=4
            )
        assert client._inflight == {}  # every search finished before the error was raised
    assert len(sink.settled) == 5 == server.calls
    assert sink.released == []
