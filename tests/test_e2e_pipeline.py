"""End to end on the twelve real bills: loopback LLM and search servers, real cost-tracker.

The Must-show list of issue 6: review fail → refine → pass; a reviewer contradiction treated as
a failure; a provider outage mid-run and a resume that pays for nothing twice; a budget refusal;
the 66 KB bill on an 8k-token model, condensed section by section rather than truncated.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from analysis_pipeline import BudgetRefusedError, PipelineConfig, PipelineRunError
from analysis_pipeline._condense import split_sections
from analysis_pipeline.testing import offline_handler, structured_reply, task_of
from llm_client import count_tokens
from llm_client.testing import RecordedRequest, Reply

DATA = Path(__file__).resolve().parent.parent / "../shared/data/bills"  # never copied in
ANALYST = "openai/gpt-4o-mini"  # the stack's generate model (see conftest.make_stack)
REVIEWER = "openai/gpt-4.1-mini"  # its review model
BILLS = [(b["id"], b["jurisdiction"]) for b in json.loads((DATA / "manifest.json").read_text())]
MakeStack = Any


def bill_text(bill_id: str) -> str:
    return (DATA / f"{bill_id}.txt").read_text(encoding="utf-8")


def _reviews_first(*verdicts: dict[str, Any]) -> Any:
    """Handler: the reviewer's first answers are ``verdicts``; everything else is bill-aware."""
    queue = list(verdicts)

    def handle(request: RecordedRequest) -> Reply | None:
        if task_of(request.messages) == "review-analysis" and queue:
            return structured_reply(request.body, queue.pop(0))
        return offline_handler(request)

    return handle


def _failing(passed: bool, errors: list[dict[str, str]]) -> dict[str, Any]:
    return {
        "passed": passed,
        "score": 0.4,
        "critique": "The draft misses the wage impact and misstates the amount.",
        "missing_impacts": ["wages: effect on covered workers' pay"],
        "factual_errors": errors,
    }


@pytest.mark.parametrize(("bill_id", "jurisdiction"), BILLS, ids=[b for b, _ in BILLS])
async def test_every_real_bill_runs_end_to_end(
    make_stack: MakeStack, llm_server: Any, search_server: Any, bill_id: str, jurisdiction: str
) -> None:
    stack = await make_stack()
    text = bill_text(bill_id)
    result = await stack.pipeline.run(bill_id, text, jurisdiction)
    assert result.passed
    assert result.rounds == 1
    assert result.analysis.impacts, "every real bill touches some cost of living"
    known = {s.id for s in result.analysis.sources} | {"BILL"}
    assert all(set(i.cited_source_ids) <= known for i in result.analysis.impacts)
    for impact in result.analysis.impacts:  # magnitudes come from the bill itself
        if impact.magnitude is not None:
            assert format(impact.magnitude.amount.normalize(), "f") in text.replace(",", "")
    assert search_server.calls >= 3
    models = {r.model for r in llm_server.requests}
    assert models == {"gpt-4o-mini", "gpt-4.1-mini"}
    costs = await stack.step_costs()
    assert {"research", "generate", "review"} <= set(costs)
    assert costs["research"].calls == 1 + search_server.calls  # query proposal + each search
    assert result.total_cost == sum(
        (costs[s].total_cost for s in ("research", "generate", "review")), Decimal(0)
    )


async def test_review_fail_then_refine_then_pass(make_stack: MakeStack, llm_server: Any) -> None:
    llm_server.handler = _reviews_first(_failing(False, []))
    stack = await make_stack()
    result = await stack.pipeline.run("CA-AB1228-2023", bill_text("CA-AB1228-2023"), "California")
    assert [s.key for s in result.steps] == [
        "research", "generate", "review:1", "refine:1", "review:2"
    ]  # fmt: skip
    assert result.passed
    assert result.rounds == 2
    refine = [r for r in llm_server.requests if task_of(r.messages) == "refine-analysis"]
    assert len(refine) == 1
    assert "wages: effect on covered workers' pay" in refine[0].messages[-1]["content"]
    steps = await stack.pipeline.store.list_steps(result.run_id)
    assert steps[2].output["passed"] is False
    assert steps[4].output["passed"] is True
    assert (await stack.step_costs())["refine"].calls == 1


async def test_reviewer_contradiction_counts_as_failed(
    make_stack: MakeStack, llm_server: Any
) -> None:
    error = {"claim": "the wage is $25 per hour", "correction": "it is $20 per hour",
             "evidence": "BILL: SEC. 4 ... twenty dollars ($20) per hour"}  # fmt: skip
    llm_server.handler = _reviews_first(_failing(True, [error]))
    stack = await make_stack()
    result = await stack.pipeline.run("CA-AB1228-2023", bill_text("CA-AB1228-2023"), "California")
    first = (await stack.pipeline.store.list_steps(result.run_id))[2]
    assert first.key == "review:1"
    assert first.output["passed"] is True
    assert "refine:1" in [s.key for s in result.steps]  # the "pass" was not trusted
    assert result.passed
    assert result.review.factual_errors == []


async def test_outage_then_resume_pays_for_nothing_twice(
    make_stack: MakeStack, llm_server: Any, search_server: Any
) -> None:
    def outage(request: RecordedRequest) -> Reply | None:
        if request.model == "gpt-4.1-mini":
            return Reply.error(500)
        return offline_handler(request)

    llm_server.handler = outage
    stack = await make_stack()
    with pytest.raises(PipelineRunError) as failed:
        await stack.pipeline.run("CA-SB1020-2022", bill_text("CA-SB1020-2022"), "California")
    assert failed.value.step == "review"
    assert "ServerError" in failed.value.reason
    run = await stack.pipeline.store.get_run(failed.value.run_id)
    assert run.status == "failed"
    assert run.error
    steps = await stack.pipeline.store.list_steps(run.id)
    assert [(s.key, s.status) for s in steps] == [
        ("research", "completed"), ("generate", "completed"), ("review:1", "failed")
    ]  # fmt: skip
    reviewer_attempts = sum(r.model == "gpt-4.1-mini" for r in llm_server.requests)
    assert reviewer_attempts == 3  # the retry policy's three attempts, then the run failed
    before = await stack.step_costs()
    analyst_calls = sum(r.model == "gpt-4o-mini" for r in llm_server.requests)
    searches = search_server.calls

    llm_server.handler = offline_handler  # the provider is back
    result = await stack.pipeline.resume(run.id)
    after = await stack.step_costs()
    assert sum(r.model == "gpt-4o-mini" for r in llm_server.requests) == analyst_calls
    assert search_server.calls == searches
    for step in ("research", "generate"):
        assert after[step].calls == before[step].calls
        assert after[step].total_cost == before[step].total_cost
    assert [(s.key, s.reused) for s in result.steps] == [
        ("research", True), ("generate", True), ("review:1", False)
    ]  # fmt: skip
    assert result.passed
    assert (await stack.pipeline.store.get_run(run.id)).status == "completed"


async def test_budget_refusal_fails_the_run_with_a_clear_reason(
    make_stack: MakeStack, llm_server: Any
) -> None:
    budget = Decimal("0.004")
    stack = await make_stack(daily_budget=budget)
    with pytest.raises(BudgetRefusedError) as refused:
        await stack.pipeline.run("CA-AB1482-2019", bill_text("CA-AB1482-2019"), "California")
    assert "budget refused" in refused.value.reason
    run = await stack.pipeline.store.get_run(refused.value.run_id)
    assert run.status == "failed"
    assert "budget refused" in (run.error or "")
    spent = sum((r.total_cost for r in (await stack.step_costs()).values()), Decimal(0))
    assert spent <= budget


async def test_long_bill_on_an_8k_model_is_condensed_not_truncated(
    make_stack: MakeStack, llm_server: Any
) -> None:
    small = PipelineConfig(context_tokens={ANALYST: 8192, REVIEWER: 8192})
    stack = await make_stack(config=small)
    text = bill_text("CA-AB2097-2022")
    assert count_tokens(text) > 8192
    result = await stack.pipeline.run("CA-AB2097-2022", text, "California")
    assert result.condensed
    assert result.passed
    condense = next(s for s in await stack.pipeline.store.list_steps(result.run_id)
                    if s.key == "condense")  # fmt: skip
    refs = [c.ref for c in split_sections(text)]
    assert condense.output["chunks"] == refs  # every section, each in one call
    for request in llm_server.requests:
        assert count_tokens(request.messages) <= 8192
    generate = next(r for r in llm_server.requests
                    if task_of(r.messages) == "generate-analysis")  # fmt: skip
    prompt = generate.messages[-1]["content"]
    assert all(f"[{ref}]" in prompt for ref in refs)
    assert (await stack.step_costs())["condense"].calls == len(refs)


async def test_outage_and_resume_on_postgres(
    make_stack: MakeStack, llm_server: Any, postgres_db: str
) -> None:
    from analysis_pipeline import PostgresRunStore

    store = PostgresRunStore(postgres_db)
    llm_server.handler = lambda r: (
        Reply.error(503) if task_of(r.messages) == "generate-analysis" else offline_handler(r)
    )
    stack = await make_stack(store=store)
    try:
        with pytest.raises(PipelineRunError) as failed:
            await stack.pipeline.run("US-HR6312-111", bill_text("US-HR6312-111"), "United States")
        assert failed.value.step == "generate"
        assert (await store.get_run(failed.value.run_id)).status == "failed"
        llm_server.handler = offline_handler
        result = await stack.pipeline.resume(failed.value.run_id)
        assert [(s.key, s.reused) for s in result.steps][:2] == [
            ("research", True), ("generate", False)
        ]  # fmt: skip
        keys = [s.key for s in await store.list_steps(result.run_id)]
        assert keys == ["research", "generate", "review:1"]
        assert (await store.get_run(result.run_id)).status == "completed"
    finally:
        await store.aclose()
