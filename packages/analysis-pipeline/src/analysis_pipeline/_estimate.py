"""Projected cost of analysing bills: per bill, per day and per month, before anything is paid.

Offline: prompt tokens are measured by building each step's real prompt from the bill (the same
prompt functions the pipeline sends, with the structured-output schema) and counting it with the
model's tokenizer; answers are sized by ``completion_tokens`` (by default the output reserves the
pipeline itself budgets, so the projection errs high); search is the research budget's plan for
the bill at the provider's price. Prices come from llm-client's price sources; a model no source
prices makes the projection unpriced (never $0).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import llm_client
from web_search.services import (
    LegislationSearchService,
    ResearchBudget,
    plan_within_budget,
    profile_for,
)

from ._config import PipelineConfig
from ._context import ContextPlanner
from ._flow import _opening, plan_condense
from ._registry import STEP_NAMES, spec
from ._research import fit_sources
from ._schemas import SourceRef

__all__ = ["BillEstimate", "CostProjection", "StepEstimate", "estimate_bill", "project_costs"]

SEARCH_PRICE = Decimal("0.01")
"""z.ai's price of one web search call."""

DAYS_PER_MONTH = 30
_SNIPPET = 700  # characters of a typical search snippet (z.ai content), for the sources block


@dataclass(frozen=True, slots=True)
class StepEstimate:
    """One step's projected calls, tokens and dollars for one bill.

    Attributes:
        step: Step name.
        model: The model priced (the first of the step's chain).
        calls: LLM calls the step makes.
        prompt_tokens: Measured prompt tokens over those calls.
        completion_tokens: Assumed answer tokens over those calls.
        cost: Dollars, or None when no price source knows the model.
        price_source: Where the price comes from (``litellm``, ``llm-client``, ``unpriced``...).
    """

    step: str
    model: str
    calls: int
    prompt_tokens: int
    completion_tokens: int
    cost: Decimal | None
    price_source: str


@dataclass(frozen=True, slots=True)
class BillEstimate:
    """The projected cost of analysing one bill.

    Attributes:
        bill_id: Bill identifier.
        jurisdiction: Jurisdiction searched.
        bill_tokens: Tokens of the bill text.
        condensed: Whether the bill would be condensed first.
        steps: LLM steps.
        search_calls: Upstream search calls (the research budget's plan; at most its cap).
        search_cost: Dollars of search.
        total: LLM plus search dollars, or None when a model is unpriced.
    """

    bill_id: str
    jurisdiction: str
    bill_tokens: int
    condensed: bool
    steps: tuple[StepEstimate, ...]
    search_calls: int
    search_cost: Decimal
    total: Decimal | None

    @property
    def llm_cost(self) -> Decimal | None:
        """LLM dollars, or None when a model is unpriced."""
        return None if self.total is None else self.total - self.search_cost


@dataclass(frozen=True, slots=True)
class CostProjection:
    """Projected costs over a set of bills at a daily volume.

    Attributes:
        bills: Per-bill estimates.
        bills_per_day: New bills a day.
        per_bill: Mean dollars per bill (None when unpriced).
        per_day: ``per_bill`` x ``bills_per_day``.
        per_month: ``per_day`` x 30.
        unpriced: Models no price source knows.
    """

    bills: tuple[BillEstimate, ...]
    bills_per_day: int
    per_bill: Decimal | None
    per_day: Decimal | None
    per_month: Decimal | None
    unpriced: tuple[str, ...]


def _chains(models: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    chains: dict[str, list[str]] = {}
    for name in STEP_NAMES:
        borrowed = spec(name).borrows
        chain = models.get(name) or (chains.get(borrowed) if borrowed else None)
        chains[name] = list(chain or ["test"])
    return chains


def _schema_tokens(schema: Any, model: str) -> int:
    # Structured output sends the answer's JSON schema with every call.
    return llm_client.count_tokens(json.dumps(schema.model_json_schema()), model)


def _priced(step: str, model: str, calls: int, prompt: int, completion: int) -> StepEstimate:
    price = llm_client.price_for(model)
    if price is None:
        return StepEstimate(step, model, calls, prompt, completion, None, "unpriced")
    cost = llm_client.cost_of(llm_client.Usage(prompt, completion), price)
    return StepEstimate(step, model, calls, prompt, completion, cost, str(price.source))


def _sources(bill_text: str, n: int) -> list[SourceRef]:
    # Snippets cut from the bill itself: the token density of real policy prose.
    words = bill_text.split() or ["policy"]
    out: list[SourceRef] = []
    for i in range(n):
        start = (i * 97) % max(len(words) - 120, 1)
        snippet = " ".join(words[start : start + 120])[:_SNIPPET]
        out.append(
            SourceRef(
                id="S0",
                url=f"https://www.example.gov/research/{i}/analysis-of-the-bill",
                title=" ".join(words[start : start + 10]),
                snippet=snippet,
                published="2025-01-01",
            )
        )
    return out


def default_completion_tokens(config: PipelineConfig) -> dict[str, int]:
    """Answer sizes assumed per call: the pipeline's own output reserves (errs high)."""
    return {
        "research": 400,
        "condense": config.condense_output_tokens,
        "generate": config.output_reserve_tokens,
        "review": config.output_reserve_tokens // 2,
        "refine": config.output_reserve_tokens,
    }


def estimate_bill(
    bill_id: str,
    bill_text: str,
    jurisdiction: str,
    models: Mapping[str, Sequence[str]],
    *,
    config: PipelineConfig | None = None,
    rounds: int = 1,
    completion_tokens: Mapping[str, int] | None = None,
    budget: ResearchBudget | None = None,
    search_price: Decimal = SEARCH_PRICE,
) -> BillEstimate:
    """Project what analysing one bill costs, offline.

    Args:
        bill_id: Bill identifier.
        bill_text: The bill.
        jurisdiction: Jurisdiction (picks the research sources).
        models: Step to model chain (``research``, ``condense`` and ``refine`` borrow
            ``generate``'s when absent); the first model of each chain is priced.
        config: Pipeline settings (context budgets, output reserves, research budget).
        rounds: Review rounds (1: the first review passes; each further round adds a refine
            and a review).
        completion_tokens: Answer tokens per call by step (default
            :func:`default_completion_tokens`).
        budget: Research budget (default ``config.research_budget`` or ``ResearchBudget()``).
        search_price: Dollars per search call.

    Returns:
        The estimate; ``total`` is None when any model is unpriced.
    """
    cfg = config or PipelineConfig()
    chains = _chains(models)
    answer = {**default_completion_tokens(cfg), **(completion_tokens or {})}
    planner = ContextPlanner(cfg, {k: list(v) for k, v in chains.items()})
    steps: list[StepEstimate] = []

    def add(step: str, calls: int, prompt_tokens: int) -> None:
        model = chains[step][0]
        steps.append(_priced(step, model, calls, prompt_tokens, answer[step] * calls))

    def prompt(step: str, messages: Any) -> int:
        model = chains[step][0]
        return llm_client.count_tokens(messages, model) + _schema_tokens(spec(step).schema, model)

    opening, complete = _opening(bill_text, planner)
    research = spec("research").prompt(
        bill_id, jurisdiction, opening, cfg.max_queries, complete=complete
    )
    add("research", 1, prompt("research", research))
    chunks = plan_condense(bill_text, planner, cfg, chains["condense"], enforce=False)
    bill = bill_text
    if chunks:
        condense = spec("condense").prompt
        condensing = sum(
            prompt("condense", condense(bill_id, jurisdiction, c.ref, i, len(chunks), c.text))
            for i, c in enumerate(chunks, 1)
        )
        add("condense", len(chunks), condensing)
        # The digest is what the extractions say: about one answer's worth per chunk.
        bill = " ".join(bill_text.split()[: answer["condense"] * len(chunks) * 3 // 4])
    used = planner.count(bill)
    sources = fit_sources(
        _sources(bill_text, cfg.max_sources),
        max(planner.analysis_budget - used, 0),
        planner.count,
        max_sources=cfg.max_sources,
    )
    messages = spec("generate").prompt(bill_id, jurisdiction, bill, sources, condensed=bool(chunks))
    generate = prompt("generate", messages)
    add("generate", 1, generate)
    # Review reads the generate prompt plus the draft; refine that plus the critique.
    review_schema = _schema_tokens(spec("review").schema, chains["review"][0])
    review = generate + answer["generate"] + review_schema
    add("review", rounds, review * rounds)
    if rounds > 1:
        add("refine", rounds - 1, (generate + answer["generate"] + answer["review"]) * (rounds - 1))
    calls = _search_plan(bill_id, bill_text, jurisdiction, cfg, budget, search_price)
    search_cost = search_price * calls
    total: Decimal | None = search_cost
    for step in steps:
        total = None if total is None or step.cost is None else total + step.cost
    return BillEstimate(
        bill_id,
        profile_for(jurisdiction).name,
        planner.count(bill_text),
        bool(chunks),
        tuple(steps),
        calls,
        search_cost,
        total,
    )


def _search_plan(
    bill_id: str,
    bill_text: str,
    jurisdiction: str,
    cfg: PipelineConfig,
    budget: ResearchBudget | None,
    price: Decimal,
) -> int:
    """Search calls for a new bill: the plan, with the LLM's queries taking the calls left."""
    chosen = budget or cfg.research_budget or ResearchBudget()
    service = LegislationSearchService(None)  # type: ignore[arg-type]  # planning needs no client
    plan = plan_within_budget(
        service.plan(bill_id, bill_text, jurisdiction), chosen, price_per_call=price
    )
    return min(chosen.calls_allowed(price), plan.calls + cfg.max_queries)


def project_costs(
    bills: Sequence[tuple[str, str, str]],
    models: Mapping[str, Sequence[str]],
    *,
    bills_per_day: int = 50,
    config: PipelineConfig | None = None,
    rounds: int = 1,
    completion_tokens: Mapping[str, int] | None = None,
    budget: ResearchBudget | None = None,
    search_price: Decimal = SEARCH_PRICE,
) -> CostProjection:
    """Project the cost per bill, per day and per 30-day month at ``bills_per_day`` new bills.

    Args:
        bills: ``(bill_id, bill_text, jurisdiction)`` of representative bills; the mean of
            their estimates is the per-bill figure.
        models: Step to model chain.
        bills_per_day: New bills analysed a day.
        config: Pipeline settings.
        rounds: Review rounds per bill.
        completion_tokens: Answer tokens per call by step.
        budget: Research budget.
        search_price: Dollars per search call.

    Returns:
        The projection (money None when a model is unpriced).
    """
    options: dict[str, Any] = {
        "config": config,
        "rounds": rounds,
        "completion_tokens": completion_tokens,
        "budget": budget,
        "search_price": search_price,
    }
    estimates = tuple(
        estimate_bill(bill_id, text, jurisdiction, models, **options)
        for bill_id, text, jurisdiction in bills
    )
    unpriced = tuple(dict.fromkeys(s.model for e in estimates for s in e.steps if s.cost is None))
    totals = [e.total for e in estimates]
    if not estimates or any(t is None for t in totals):
        return CostProjection(estimates, bills_per_day, None, None, None, unpriced)
    per_bill = sum((t for t in totals if t is not None), Decimal(0)) / len(estimates)
    per_day = per_bill * bills_per_day
    return CostProjection(
        estimates, bills_per_day, per_bill, per_day, per_day * DAYS_PER_MONTH, unpriced
    )
