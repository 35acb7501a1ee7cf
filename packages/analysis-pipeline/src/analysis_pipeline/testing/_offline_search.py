"""A bundled, clearly fictional search fixture so the pipeline's research step runs offline.

Every URL lives under ``fixtures.llm-common.invalid`` (the ``.invalid`` top-level domain can never
resolve), so nobody mistakes an offline source for a real one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["FixtureResult", "OfflineSearch"]

_BASE = "https://fixtures.llm-common.invalid"
_FIXTURE: tuple[tuple[str, str, str], ...] = (
    (
        "housing",
        "Offline fixture: how rent and housing rules change household housing costs",
        "Rent caps, tenant protections and parking or zoning requirements change what renters "
        "and buyers pay; studies find parking mandates add to the cost of each housing unit.",
    ),
    (
        "energy",
        "Offline fixture: utility rates and energy bills for households",
        "Clean-energy mandates and rate-design changes pass through to residential electric and "
        "gas bills; regulators track affordability as a share of household income.",
    ),
    (
        "health",
        "Offline fixture: insurance mandates and health premiums",
        "Coverage mandates raise premiums modestly across the pool while cutting out-of-pocket "
        "costs sharply for the people who use the covered benefit.",
    ),
    (
        "taxes",
        "Offline fixture: state tax changes and household budgets",
        "Credits and deductions lower the tax owed by eligible households; new taxes are partly "
        "passed on to consumers through prices.",
    ),
    (
        "wages",
        "Offline fixture: minimum wage increases, workers' pay and prices",
        "Higher wage floors raise earnings for covered workers; employers pass part of the cost "
        "to consumers, typically a small rise in menu prices.",
    ),
    (
        "fees",
        "Offline fixture: government fees, fines and waivers",
        "Fee waivers remove a direct cost for eligible people; new or higher fees add one.",
    ),
    (
        "transportation",
        "Offline fixture: transit access, vehicles and transportation costs",
        "Transit-oriented rules and vehicle costs shape household transportation spending, the "
        "second largest budget item after housing.",
    ),
    (
        "food",
        "Offline fixture: food prices and restaurant costs",
        "Labor and input costs in restaurants and groceries pass through to food prices.",
    ),
    (
        "childcare",
        "Offline fixture: childcare costs for families",
        "Subsidies and ratio rules change what families pay for childcare.",
    ),
)
_WORD = re.compile(r"[a-z]+")


@dataclass(frozen=True, slots=True)
class FixtureResult:
    """One offline search result (the fields the pipeline reads from a ``SearchResult``)."""

    title: str
    url: str
    snippet: str
    query: str
    published_raw: str | None = None


class OfflineSearch:
    """Answers searches from the bundled fixture: the fixture pages sharing a word with the query.

    Example:
        >>> results = await OfflineSearch().search("California rent costs")
    """

    name = "offline-fixture"

    async def search(
        self,
        query: str,
        count: int = 10,
        domains: object = None,
        recency: object = None,
        *,
        step: str = "research",
    ) -> list[FixtureResult]:
        """Return fixture pages relevant to ``query`` (free, instant, deterministic)."""
        words = set(_WORD.findall(query.lower()))
        hits = [
            FixtureResult(title, f"{_BASE}/{category}", snippet, query)
            for category, title, snippet in _FIXTURE
            if category in words or words & set(_WORD.findall(title.lower())) - {"offline",
               "fixture", "and", "for", "how", "the", "household", "households", "costs"}
        ]  # fmt: skip
        return hits[:count]
