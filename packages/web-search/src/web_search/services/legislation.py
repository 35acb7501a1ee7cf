"""Legislation research: the query set an analyst would run for one bill, on trusted sources."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ._keywords import bill_label, extract_subject_terms
from ._research import DEFAULT_CONCURRENCY, PlannedQuery, ResearchPackage, run_research

if TYPE_CHECKING:
    from web_search._client import WebSearchClient

__all__ = ["JURISDICTIONS", "LegislationSearchService", "SourceProfile"]

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

    Example:
        >>> package = await LegislationSearchService(client).search_exhaustively(
        ...     "CA-AB1482-2019", bill_text, "California")
        >>> package.sources[0].url, package.sources[0].queries
    """

    def __init__(self, client: WebSearchClient, *, count: int = 10) -> None:
        self.client = client
        self.count = count

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

    async def search_exhaustively(
        self,
        bill_id: str,
        bill_text: str,
        jurisdiction: str,
        *,
        extra_queries: Sequence[str] = (),
        concurrency: int = DEFAULT_CONCURRENCY,
    ) -> ResearchPackage:
        """Run the bill's query set concurrently (at most ``concurrency`` searches at once).

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
