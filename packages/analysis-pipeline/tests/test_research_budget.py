"""A bill's research within budget, as the pipeline runs it: the cap holds, a cut plan is
recorded on the run (not raised), and the LLM's restatements of the service's queries are
dropped."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from analysis_pipeline import AnalysisPipeline, LocalRunStore, PipelineConfig
from analysis_pipeline.testing import offline_models
from llm_client import LLMClient
from web_search import ResearchBudget, SearchCache, WebSearchClient
from web_search.services import LegislationSearchService
from web_search.testing import FakeZaiSearchServer

BILLS = Path(__file__).resolve().parents[3] / "../shared/data/bills"


async def _research_step(tmp_path: Path, config: PipelineConfig) -> tuple[Any, Any, int]:
    text = (BILLS / "CA-AB1482-2019.txt").read_text(encoding="utf-8")
    with FakeZaiSearchServer() as server:
        async with (
            LLMClient() as llm,
            WebSearchClient(
                "zai", cache=SearchCache(None), api_key="k", base_url=server.base_url
            ) as client,
            LocalRunStore(tmp_path) as store,
        ):
            pipeline = AnalysisPipeline(
                llm, LegislationSearchService(client), store=store, config=config
            )
            result = await pipeline.run("CA-AB1482-2019", text, "California", offline_models())
            steps = await store.list_steps(result.run_id)
        calls = server.calls
    return result, next(s for s in steps if s.key == "research"), calls


async def test_the_default_budget_holds_and_is_recorded(tmp_path: Path) -> None:
    result, research, calls = await _research_step(tmp_path, PipelineConfig())
    plan = research.output["plan"]
    assert calls == plan["calls"] == plan["planned_calls"] <= 12
    assert plan["max_calls"] == 12
    assert Decimal(str(plan["max_cost"])) == Decimal("0.12")
    assert plan["unplanned_calls"] > 3 * calls
    assert plan["cut"] is False
    assert plan["uncovered"] == []
    assert research.searches == calls  # a new bill: every planned search paid for
    assert result.analysis.impacts


async def test_a_cut_plan_is_recorded_on_the_run_not_raised(tmp_path: Path) -> None:
    config = PipelineConfig(research_budget=ResearchBudget(max_calls=4))
    result, research, calls = await _research_step(tmp_path, config)
    plan = research.output["plan"]
    assert calls == 4
    assert plan["cut"] is True
    assert "urban.org" in plan["uncovered"]
    assert any(d.startswith("cap: ") for d in plan["dropped"])
    assert result.analysis is not None  # the run went on with what the budget bought
