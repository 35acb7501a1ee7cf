"""Structured outputs the pipeline asks models for (validated Pydantic models).

These are the LLM-facing schemas: a model must answer with JSON that validates against them.
Run and step records (what the store keeps) live in ``_records.py``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "BillAnalysis",
    "ChunkExtraction",
    "FactualError",
    "Impact",
    "ImpactCategory",
    "ImpactDirection",
    "Magnitude",
    "ResearchQueries",
    "ReviewCritique",
    "SourceRef",
]

ImpactCategory = Literal[
    "housing",
    "energy",
    "health",
    "taxes",
    "wages",
    "fees",
    "transportation",
    "food",
    "childcare",
    "other",
]
"""Cost-of-living areas an impact can fall into."""

ImpactDirection = Literal["increase", "decrease", "mixed", "unclear"]
"""Which way an impact moves costs for the affected population."""


class SourceRef(BaseModel):
    """A research source the analysis may cite by its id.

    Attributes:
        id: Citation id, ``S1`` .. ``Sn`` in rank order.
        url: Canonical URL (sources are de-duplicated by it).
        title: Page title.
        snippet: The excerpt the models saw.
        published: Publication date as the provider gave it, if any.
        query: The search query that found it (provenance).
    """

    model_config = ConfigDict(extra="ignore")

    id: str = Field(description="Citation id such as S1")
    url: str
    title: str = ""
    snippet: str = ""
    published: str | None = None
    query: str | None = None


class Magnitude(BaseModel):
    """A quantified impact, given only where the bill or a source supports the number.

    Attributes:
        amount: The number (money in US dollars, or the count/percentage named by ``unit``).
        unit: ``USD``, ``percent``, ``USD/hour``, ``USD/month`` ...
        period: What the amount is per (``one-time``, ``per year``, ``per month``), if any.
    """

    amount: Decimal
    unit: str = Field(description="USD, percent, USD/hour, USD/month, ...")
    period: str | None = Field(default=None, description="one-time, per year, per month, ...")


class Impact(BaseModel):
    """One cost-of-living impact of a bill.

    Attributes:
        category: Area of household costs affected.
        direction: Whether costs rise, fall, both, or it is unclear.
        description: What changes and why, in one or two sentences.
        magnitude: How much, only where the bill text or a cited source supports a number.
        affected_population: Who bears or gains from the change.
        cited_source_ids: Ids of the research sources (``S1``...) supporting the impact;
            ``BILL`` refers to the bill text itself.
        confidence: 0..1 confidence in this impact.
    """

    category: ImpactCategory
    direction: ImpactDirection
    description: str
    magnitude: Magnitude | None = Field(
        default=None, description="Only where the bill or a cited source supports a number"
    )
    affected_population: str
    cited_source_ids: list[str] = Field(default_factory=list)
    confidence: float = Field(ge=0, le=1)


class BillAnalysis(BaseModel):
    """A structured cost-of-living analysis of one bill.

    Attributes:
        summary: What the bill does, in plain language.
        impacts: The cost-of-living impacts found.
        overall_confidence: 0..1 confidence in the analysis as a whole.
        sources: The sources the analysis rests on (ids match ``Impact.cited_source_ids``).
    """

    summary: str
    impacts: list[Impact] = Field(default_factory=list)
    overall_confidence: float = Field(ge=0, le=1)
    sources: list[SourceRef] = Field(default_factory=list)


class FactualError(BaseModel):
    """A claim the reviewer found wrong, with the evidence it rests on.

    Attributes:
        claim: The claim as the analysis made it.
        correction: What is actually true.
        evidence: A source id (``S3``) or a bill passage (``BILL: SEC. 2 ...``) proving it.
    """

    claim: str
    correction: str
    evidence: str = Field(description="A source id such as S3, or a quoted bill passage")


class ReviewCritique(BaseModel):
    """A reviewer's verdict on a draft analysis.

    ``passed`` is only trusted when ``factual_errors`` is empty: a review that passes a draft
    while listing factual errors counts as failed (see :attr:`effective_pass`).

    Attributes:
        passed: The reviewer's own verdict.
        score: 0..1 quality score.
        critique: What to improve.
        missing_impacts: Impacts the draft missed.
        factual_errors: Wrong claims, each with its evidence.
    """

    passed: bool
    score: float = Field(ge=0, le=1)
    critique: str
    missing_impacts: list[str] = Field(default_factory=list)
    factual_errors: list[FactualError] = Field(default_factory=list)

    @property
    def effective_pass(self) -> bool:
        """Whether the draft really passed: ``passed`` and no factual errors listed."""
        return self.passed and not self.factual_errors


class ResearchQueries(BaseModel):
    """Search queries a model proposes for researching a bill.

    Attributes:
        queries: Web search queries, each under ~70 characters.
    """

    queries: list[str] = Field(default_factory=list)

    @field_validator("queries")
    @classmethod
    def _strip(cls, value: list[str]) -> list[str]:
        return [q.strip() for q in value if q.strip()]


class ChunkExtraction(BaseModel):
    """What a condense call extracts from one section (or window) of a long bill.

    Attributes:
        section: The section reference the chunk came from (``SEC. 2``, ``SECTION 1 (part 2/3)``).
        summary: What the section does.
        amounts: Dollar amounts, rates and percentages stated, with what they apply to.
        dates: Effective dates and deadlines stated.
        affected_parties: Who the section applies to.
        cost_relevant: Whether the section plausibly affects household costs.
    """

    section: str
    summary: str
    amounts: list[str] = Field(default_factory=list)
    dates: list[str] = Field(default_factory=list)
    affected_parties: list[str] = Field(default_factory=list)
    cost_relevant: bool = True
