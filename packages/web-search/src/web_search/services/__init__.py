"""Domain research services built on ``WebSearchClient``."""

from ._keywords import bill_label, extract_subject_terms
from ._plan import DroppedQuery, ResearchBudget, ResearchPlan, plan_within_budget
from ._research import (
    DEFAULT_CONCURRENCY,
    PlannedQuery,
    ResearchPackage,
    ResearchQuery,
    Source,
    run_research,
)
from .finance import STATE_TAX_SITES, FinanceSearchService
from .legislation import JURISDICTIONS, LegislationSearchService, SourceProfile, profile_for

__all__ = [
    "DEFAULT_CONCURRENCY",
    "JURISDICTIONS",
    "STATE_TAX_SITES",
    "DroppedQuery",
    "FinanceSearchService",
    "LegislationSearchService",
    "PlannedQuery",
    "ResearchBudget",
    "ResearchPackage",
    "ResearchPlan",
    "ResearchQuery",
    "Source",
    "SourceProfile",
    "bill_label",
    "extract_subject_terms",
    "plan_within_budget",
    "profile_for",
    "run_research",
]
