"""Legislation research: the query set an analyst would run for one bill, on trusted sources."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ._keywords import bill_label, extract_subject_terms
from ._plan import ResearchBudget, ResearchPlan, plan_within_budget
from ._research import DEFAULT_CONCURRENCY, PlannedQuery, ResearchPackage, run_research

if TYPE_CHECKING:
    from web_search._client import WebSearchClient

__all__ = ["JURISDICTIONS", "LegislationSearchService", "SourceProfile"]

logger = logging.getLogger(__name__)

_NATIONAL_POLICY = ("ncsl.org", "taxfoundation.org", "urban.org", "pewtrusts.org", "cbpp.org")


@dataclass(frozen=True, slots=True)
class SourceProfile:
    """Where research for one jurisdiction may come from.

    Attributes:
        name: Display name used in queries (``California``).
        legislature: The legislature's own site(s).
        fiscal: Fiscal offices (analyst, budget office).
        government: Wildcard for every government site of the jurisdiction (``*.ca.gov``).
        policy: Policy organisations and newsrooms that cover it (checked before national ones).
    """

    name: str
    legislature: tuple[str, ...]
    fiscal: tuple[str, ...]
    government: str
    policy: tuple[str, ...]


JURISDICTIONS: dict[str, SourceProfile] = {
    "california": SourceProfile(
        "California",
        ("leginfo.legislature.ca.gov",),
        ("lao.ca.gov", "dof.ca.gov"),
        "*.ca.gov",
        ("calmatters.org", "ppic.org", "calbudgetcenter.org"),
    ),
    "indiana": SourceProfile(
        "Indiana",
        ("iga.in.gov",),
        ("iga.in.gov",),
        "*.in.gov",
        ("incontext.indiana.edu", "indianapolicy.org"),
    ),
    "united states": SourceProfile(
        "United States",
        ("congress.gov",),
        ("cbo.gov", "crsreports.congress.gov"),
        "*.gov",
        ("brookings.edu", "taxpolicycenter.org", "crfb.org"),
    ),
}
_ALIASES = {
    "ca": "california",
    "in": "indiana",
    "us": "united states",
    "usa": "united states",
    "federal": "united states",
    "u.s.": "united states",
    "congress": "united states",
}


def profile_for(jurisdiction: str) -> SourceProfile:
    """Source profile of a jurisdiction; unknown ones get government and university sites."""
    key = jurisdiction.strip().lower()
    key = _ALIASES.get(key, key)
    if key in JURISDICTIONS:
        return JURISDICTIONS[key]
    return SourceProfile(jurisdiction.strip() or "United States", (), (), "*.gov", ())


class LegislationSearchService:
    """Exhaustive, source-restricted research for a bill.

    Args:
        client: The ``WebSearchClient`` to search with (its cache and cost sink apply).
        count: Results per query.
        budget: Caps on one bill's research set (``research``); default 12 calls, $0.12.

    Example:
        >>> package = await LegislationSearchService(client).research(
        ...     "CA-AB1482-2019", bill_text, "California", extra_queries=llm_queries)
        >>> package.sources[0].url, package.plan.calls, package.plan.cut
    """

    def __init__(
        self, client: WebSearchClient, *, count: int = 10, budget: ResearchBudget | None = None
    ) -> None:
        self.client = client
        self.count = count
        self.budget = budget if budget is not None else ResearchBudget()

    def plan(
        self, bill_id: str, bill_text: str, jurisdiction: str, extra_queries: Sequence[str] = ()
    ) -> list[PlannedQuery]:
        """The query set for a bill (deterministic: same bill, same queries, same cache keys).

        Kinds: ``intent``, ``fiscal_impact``, ``stakeholders``, ``cost_of_living``, ``housing``,
        ``tax``, ``similar_legislation``, ``evidence``, ``subject`` (one or two per subject term
        of the bill's title and digest) and ``extra``.
        """
        where = profile_for(jurisdiction)
        label = bill_label(bill_id)
        terms = extract_subject_terms(bill_text) or [label]
        topic = terms[1] if len(terms) > 1 and len(terms[0]) > 40 else terms[0]
        place = where.name
        gov, edu = where.government, "*.edu"
        policy = (*where.policy, *_NATIONAL_POLICY)

        def q(kind: str, text: str, *domains: str) -> PlannedQuery:
            return PlannedQuery(kind, text, tuple(dict.fromkeys(domains)), self.count)

        planned = [
            q("intent", f"{label} {place} {topic}", *where.legislature, gov),
            q("intent", f"{label} {topic} bill analysis", *where.legislature, gov),
            q("fiscal_impact", f"{label} fiscal impact {topic}", *where.fiscal, gov),
            q("fiscal_impact", f"{topic} {place} budget cost estimate", *where.fiscal, gov),
            q("stakeholders", f"{label} {topic} support opposition", policy[0], *where.legislature),
            q("stakeholders", f"{topic} {place} stakeholder positions", *policy[:2], edu),
            q("cost_of_living", f"{topic} cost of living impact {place}", policy[0], gov, edu),
            q("housing", f"{topic} housing affordability impact {place}", *policy[1:2], gov, edu),
            q("tax", f"{topic} tax impact {place}", *where.fiscal[:1], "taxfoundation.org", edu),
            q(
                "similar_legislation",
                f"{topic} similar legislation other states",
                "ncsl.org",
                "*.gov",
            ),
            q("evidence", f"{topic} economic effects research", "urban.org", edu),
        ]
        for n, term in enumerate(terms):
            planned.append(q("subject", f"{term} {place}", gov, edu))
            if n < 4:
                planned.append(q("subject", f"{term} economic impact study", edu, policy[0]))
        planned += [q("extra", text, gov, edu) for text in extra_queries]
        unique: dict[str, PlannedQuery] = {}
        for item in planned:
            unique.setdefault(" ".join(item.text.casefold().split()), item)
        return list(unique.values())

    def research_plan(
        self,
        bill_id: str,
        bill_text: str,
        jurisdiction: str,
        extra_queries: Sequence[str] = (),
        *,
        budget: ResearchBudget | None = None,
    ) -> ResearchPlan:
        """The bill's query set fitted to the budget (deterministic, like ``plan``).

        Every domain the full set names is searched once, with the queries aimed at it fused
        into one; near-duplicates of earlier queries among ``extra_queries`` are dropped; the
        calls left go to the most novel wildcard (``*.gov``, ``*.edu``) queries. If the caps
        allow fewer calls than there are domains, ``plan.cut`` is true and ``plan.uncovered``
        names the domains left out.
        """
        provider = self.client.provider
        return plan_within_budget(
            self.plan(bill_id, bill_text, jurisdiction, extra_queries),
            budget if budget is not None else self.budget,
            price_per_call=provider.price_per_call,
            max_domains_per_call=provider.max_domains_per_call,
        )

    async def research(
        self,
        bill_id: str,
        bill_text: str,
        jurisdiction: str,
        *,
        extra_queries: Sequence[str] = (),
        budget: ResearchBudget | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
    ) -> ResearchPackage:
        """Research a bill within the budget: one search set, cache read and written once.

        Args:
            bill_id: Bill id such as ``CA-AB1482-2019``.
            bill_text: Bill text; subject terms come from its title and digest.
            jurisdiction: ``California``, ``Indiana``, ``United States`` (or ``CA``, ``US``...).
            extra_queries: Queries proposed by an LLM (near-duplicates are dropped).
            budget: Caps for this bill (default: the service's).
            concurrency: Most searches in flight at once.

        Returns:
            The package, with ``plan`` telling what was fused, dropped or cut.
        """
        plan = self.research_plan(bill_id, bill_text, jurisdiction, extra_queries, budget=budget)
        if plan.cut:
            logger.warning(
                "research budget cut %s's plan: %d domain(s) left unsearched",
                bill_id,
                len(plan.uncovered),
            )
        return await run_research(
            self.client,
            bill_id,
            profile_for(jurisdiction).name,
            plan.queries,
            concurrency=concurrency,
            plan=plan,
        )

    async def search_exhaustively(
        self,
        bill_id: str,
        bill_text: str,
        jurisdiction: str,
        *,
        extra_queries: Sequence[str] = (),
        concurrency: int = DEFAULT_CONCURRENCY,
    ) -> ResearchPackage:
        """Run the bill's whole query set, with no budget (``research`` keeps to one).

        Args:
            bill_id: Bill id such as ``CA-AB1482-2019`` or ``AB 1482``.
            bill_text: Bill text; subject terms come from its title and digest.
            jurisdiction: ``California``, ``Indiana``, ``United States`` (or ``CA``, ``US``...).
            extra_queries: Further queries (e.g. written by an LLM), searched on government and
                university sites.
            concurrency: Most searches in flight at once (each may fan out per domain).

        Returns:
            Sources de-duplicated by URL and ranked by reciprocal-rank fusion, with the queries
            that found each, every query run, and the cost.
        """
        planned = self.plan(bill_id, bill_text, jurisdiction, extra_queries)
        return await run_research(
            self.client, bill_id, profile_for(jurisdiction).name, planned, concurrency=concurrency
        )
