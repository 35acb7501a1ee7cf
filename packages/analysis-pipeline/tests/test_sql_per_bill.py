"""SQL statements per bill on PostgreSQL: the run store, the search cache and the cost ledger
all on one real database, every statement the pipeline sends counted at psycopg's cursor."""

from __future__ import annotations

import re
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from analysis_pipeline import AnalysisPipeline, PostgresRunStore
from analysis_pipeline.testing import offline_models
from cost_tracker import CostTracker, PostgresCostStore
from llm_client import LLMClient
from web_search import PostgresSearchCache, SearchCache, WebSearchClient
from web_search.services import LegislationSearchService
from web_search.testing import FakeZaiSearchServer

BILLS = Path(__file__).resolve().parents[3] / "../shared/data/bills"
SQL_PER_BILL = 30
"""86 before issue 14 (58 of them one cache read or write per query). Issue 14 measured 17-18
with a research set's records and answers written once at its end; since issue 16 each answer
is recorded and cached as it arrives (a crash mid-set loses nothing), one settle and one cache
write per wave of answers: 19-23 here against the zero-latency loopback server. The bound is
that, with room for answers spread in time; the per-query statements must never come back."""

_FUNCTION = re.compile(r"\b(?:public\.)?([a-z_]+)\s*\(")


class StatementCounter:
    """Counts what psycopg sends, by the SQL function or table it names."""

    def __init__(self) -> None:
        self.seen: Counter[str] = Counter()
        self.on = False

    def note(self, query: Any) -> None:
        if not self.on:
            return
        text = query if isinstance(query, str) else repr(query)
        match = _FUNCTION.search(text.split("from", 1)[-1] if "select" in text else text)
        first = " ".join(text.split()[:3])
        self.seen[match.group(1) if match else first] += 1

    @property
    def total(self) -> int:
        return sum(self.seen.values())


@pytest.fixture
def statements(monkeypatch: pytest.MonkeyPatch) -> StatementCounter:
    """Every cursor execute of the process, counted (connection.execute goes through it)."""
    counter = StatementCounter()
    execute, executemany = psycopg.AsyncCursor.execute, psycopg.AsyncCursor.executemany

    async def counted_execute(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        counter.note(query)
        return await execute(self, query, *args, **kwargs)

    async def counted_executemany(self: Any, query: Any, params: Any, **kwargs: Any) -> Any:
        params = list(params)
        for _ in params:
            counter.note(query)
        return await executemany(self, query, params, **kwargs)

    monkeypatch.setattr(psycopg.AsyncCursor, "execute", counted_execute)
    monkeypatch.setattr(psycopg.AsyncCursor, "executemany", counted_executemany)
    return counter


@pytest.mark.parametrize("bill_id", ["CA-AB1482-2019", "US-HR1694-108"])
async def test_a_new_bill_makes_no_statement_per_query(
    postgres_db: str, statements: StatementCounter, bill_id: str
) -> None:
    text = (BILLS / f"{bill_id}.txt").read_text(encoding="utf-8")
    jurisdiction = "California" if bill_id.startswith("CA") else "United States"
    with FakeZaiSearchServer() as server:
        async with (
            CostTracker(PostgresCostStore.from_url(postgres_db), monthly_budget="300") as costs,
            LLMClient(cost_sink=costs) as llm,
            WebSearchClient(
                "zai",
                cache=SearchCache(PostgresSearchCache(postgres_db)),
                cost_sink=costs,
                api_key="k",
                base_url=server.base_url,
            ) as search,
        ):
            store = PostgresRunStore(postgres_db)
            pipeline = AnalysisPipeline(llm, LegislationSearchService(search), store=store)
            # Warm-up: pools, the cost holder's registration, first-connection settings.
            warm = (BILLS / "CA-SB729-2024.txt").read_text(encoding="utf-8")
            await pipeline.run("CA-SB729-2024", warm, "California", offline_models())
            before = server.calls
            statements.on = True
            result = await pipeline.run(bill_id, text, jurisdiction, offline_models())
            statements.on = False
            research = next(s for s in await store.list_steps(result.run_id) if s.key == "research")
            await store.aclose()
        paid, total_paid = server.calls - before, server.calls
    counted = dict(statements.seen)
    assert statements.total <= SQL_PER_BILL, counted
    # The search cache: one read for the whole research set, writes grouped by answer wave.
    assert counted.get("web_search_cache_hit_many") == 1, counted
    assert 1 <= counted.get("web_search_cache_put_many", 0) < paid, counted
    assert "web_search_cache_hit" not in counted
    assert "web_search_cache_put" not in counted
    # A new bill: every search paid for (none answered from the warm-up's cache), within the
    # research budget, and every paid search is exactly one ledger row.
    assert 0 < paid <= 12
    assert research.searches == paid
    assert await _search_records(postgres_db) == total_paid


async def test_a_research_set_writes_its_records_in_waves_of_one_row_per_paid_call(
    postgres_db: str, statements: StatementCounter
) -> None:
    text = (BILLS / "CA-AB1228-2023.txt").read_text(encoding="utf-8")
    with FakeZaiSearchServer() as server:
        async with (
            CostTracker(PostgresCostStore.from_url(postgres_db)) as costs,
            WebSearchClient(
                "zai", cache=SearchCache(None), cost_sink=costs, api_key="k",
                base_url=server.base_url,
            ) as search,
        ):  # fmt: skip
            await costs.get_daily_cost()  # the pool's first connection, outside the count
            statements.on = True
            package = await LegislationSearchService(search).research(
                "CA-AB1228-2023", text, "California", extra_queries=["fast food wages"]
            )
            statements.on = False
        paid = server.calls
    assert package.calls == paid == 12
    # No budget, so no reserves: the records as the answers come, grouped, never one
    # statement per call.
    assert set(statements.seen) == {"cost_batch"}
    assert 1 <= statements.seen["cost_batch"] < paid
    assert await _search_records(postgres_db) == paid  # one row per paid call


async def _search_records(url: str) -> int:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        cursor = await conn.execute(
            "select count(*) from cost_tracking where metadata->>'kind' = 'web_search'"
        )
        row = await cursor.fetchone()
    return int(row[0]) if row else 0


def test_counting_is_real() -> None:
    counter = StatementCounter()
    counter.on = True
    counter.note("select public.web_search_cache_hit_many(%s, %s)")
    counter.note("select key, payload from public.web_search_cache_hit_many(%s, %s)")
    counter.note("update pipeline_runs set status = %s")
    assert counter.seen["web_search_cache_hit_many"] == 2
    assert counter.total == 3
    assert Decimal(counter.total) > 0
