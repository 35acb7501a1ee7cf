"""Explicit wiring: nothing given to the pipeline is patched; search cost comes from research."""

from __future__ import annotations

import warnings
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from analysis_pipeline import AnalysisPipeline, LocalRunStore
from analysis_pipeline.testing import offline_models
from llm_client import LLMClient
from web_search import SearchCache, WebSearchClient
from web_search.services import LegislationSearchService
from web_search.testing import FakeZaiSearchServer

EXAMPLE = Path(__file__).resolve().parents[3] / "examples/bills/EX-AB0042-2026.txt"


class RecordingSink:
    """A cost sink that grants everything and keeps every settled record."""

    def __init__(self) -> None:
        self.settled: list[Any] = []

    async def reserve(self, estimate: Any) -> Any:
        return object()

    async def settle(self, reservation: Any, record: Any) -> None:
        self.settled.append(record)

    async def release(self, reservation: Any) -> None:
        return None


@pytest.mark.parametrize("wrap", [True, False], ids=["service", "client"])
async def test_search_cost_per_step_comes_from_research_not_a_patched_sink(
    tmp_path: Path, wrap: bool
) -> None:
    sink = RecordingSink()
    with FakeZaiSearchServer() as server:
        async with (
            LLMClient() as llm,
            WebSearchClient(
                "zai", cache=SearchCache(None), cost_sink=sink, api_key="k",
                base_url=server.base_url,
            ) as client,
            LocalRunStore(tmp_path) as store,
        ):  # fmt: skip
            search: Any = LegislationSearchService(client) if wrap else client
            pipeline = AnalysisPipeline(llm, search, store=store)
            assert client.cost_sink is sink  # not wrapped, not replaced
            result = await pipeline.run(
                "EX-AB0042-2026", EXAMPLE.read_text(), "Exampleland", offline_models()
            )
            assert client.cost_sink is sink
            research = next(s for s in await store.list_steps(result.run_id) if s.key == "research")
        upstream = server.calls
    assert upstream > 0
    search_cost = sum((r.cost for r in sink.settled), Decimal(0))
    assert search_cost == Decimal("0.01") * upstream  # z.ai: $0.01 a call
    assert research.searches > 0
    assert research.cost == search_cost  # the offline model's research call is free


async def test_the_costs_argument_is_deprecated(tmp_path: Path) -> None:
    async with LLMClient() as llm, LocalRunStore(tmp_path) as store:
        with pytest.warns(DeprecationWarning, match="costs"):
            AnalysisPipeline(llm, object(), object(), store)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            AnalysisPipeline(llm, object(), store=store)
