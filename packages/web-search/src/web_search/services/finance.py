"""Finance research: tax rules by state and year, retirement account rules, fund prospectuses."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._research import DEFAULT_CONCURRENCY, PlannedQuery, ResearchPackage, run_research

if TYPE_CHECKING:
    from web_search._client import WebSearchClient

__all__ = ["STATE_TAX_SITES", "FinanceSearchService"]

STATE_TAX_SITES: dict[str, tuple[str, str]] = {
    "AZ": ("Arizona", "azdor.gov"),
    "CA": ("California", "ftb.ca.gov"),
    "CO": ("Colorado", "tax.colorado.gov"),
    "FL": ("Florida", "floridarevenue.com"),
    "GA": ("Georgia", "dor.georgia.gov"),
    "IL": ("Illinois", "tax.illinois.gov"),
    "IN": ("Indiana", "in.gov"),
    "MA": ("Massachusetts", "mass.gov"),
    "MI": ("Michigan", "michigan.gov"),
    "NC": ("North Carolina", "ncdor.gov"),
    "NJ": ("New Jersey", "nj.gov"),
    "NY": ("New York", "tax.ny.gov"),
    "OH": ("Ohio", "tax.ohio.gov"),
    "OR": ("Oregon", "oregon.gov"),
    "PA": ("Pennsylvania", "revenue.pa.gov"),
    "TX": ("Texas", "comptroller.texas.gov"),
    "VA": ("Virginia", "tax.virginia.gov"),
    "WA": ("Washington", "dor.wa.gov"),
}
"""State code → (name, revenue department site). Other states search ``*.gov`` instead."""

_TAX_TOPICS = (
    "income tax brackets rates",
    "standard deduction exemptions",
    "capital gains tax",
    "retirement income tax",
    "property tax rules",
)
_ACCOUNT_QUERIES = (
    "contribution limits",
    "income limits eligibility",
    "required minimum distributions",
    "early withdrawal penalty exceptions",
    "rollover rules",
    "catch-up contributions",
)


def _state(state: str) -> tuple[str, str]:
    code = state.strip().upper()
    if code in STATE_TAX_SITES:
        return STATE_TAX_SITES[code]
    for name, site in STATE_TAX_SITES.values():
        if name.lower() == state.strip().lower():
            return name, site
    return state.strip(), "*.gov"


class FinanceSearchService:
    """Finance research query sets, each restricted to authoritative sources.

    Args:
        client: The ``WebSearchClient`` to search with.
        count: Results per query.
    """

    def __init__(self, client: WebSearchClient, *, count: int = 8) -> None:
        self.client = client
        self.count = count

    def _q(self, kind: str, text: str, *domains: str) -> PlannedQuery:
        return PlannedQuery(kind, text, tuple(dict.fromkeys(domains)), self.count)

    def tax_rules_plan(self, state: str, year: int) -> list[PlannedQuery]:
        """Queries for a state's tax rules in a year (state revenue site + IRS + Tax Foundation)."""
        name, site = _state(state)
        plan = [
            self._q("state_tax", f"{name} {year} {topic}", site, "taxfoundation.org")
            for topic in _TAX_TOPICS
        ]
        plan += [
            self._q(
                "federal_tax", f"{year} federal income tax brackets standard deduction", "irs.gov"
            ),
            self._q(
                "federal_tax", f"{year} capital gains tax rates", "irs.gov", "taxfoundation.org"
            ),
        ]
        return plan

    async def tax_rules(
        self, state: str, year: int, *, concurrency: int = DEFAULT_CONCURRENCY
    ) -> ResearchPackage:
        """Tax rules for ``state`` (code or name) in ``year``."""
        name, _ = _state(state)
        return await run_research(
            self.client,
            f"{name} tax rules {year}",
            name,
            self.tax_rules_plan(state, year),
            concurrency=concurrency,
        )

    def retirement_rules_plan(self, account: str, year: int) -> list[PlannedQuery]:
        """Queries for one retirement account type (401(k), IRA, Roth IRA, 403(b), HSA...)."""
        domains = ("irs.gov", "investor.gov", "dol.gov")
        return [
            self._q("retirement", f"{year} {account} {topic}", *domains)
            for topic in _ACCOUNT_QUERIES
        ]

    async def retirement_account_rules(
        self, account: str, year: int, *, concurrency: int = DEFAULT_CONCURRENCY
    ) -> ResearchPackage:
        """Rules for a retirement account type in ``year``."""
        return await run_research(
            self.client,
            f"{account} rules {year}",
            "United States",
            self.retirement_rules_plan(account, year),
            concurrency=concurrency,
        )

    def prospectus_plan(self, ticker: str) -> list[PlannedQuery]:
        """Queries for a fund's prospectus and filings by ticker."""
        symbol = ticker.strip().upper()
        return [
            self._q("prospectus", f"{symbol} fund prospectus", "sec.gov"),
            self._q(
                "prospectus",
                f"{symbol} summary prospectus expense ratio fees",
                "sec.gov",
                "investor.gov",
            ),
            self._q("filings", f"{symbol} annual report holdings N-CSR", "sec.gov"),
            self._q(
                "risk",
                f"{symbol} fund investment objective principal risks",
                "sec.gov",
                "finra.org",
            ),
        ]

    async def fund_prospectus(
        self, ticker: str, *, concurrency: int = DEFAULT_CONCURRENCY
    ) -> ResearchPackage:
        """Prospectus, fees, holdings and risks of the fund with ``ticker``."""
        return await run_research(
            self.client,
            ticker.strip().upper(),
            "United States",
            self.prospectus_plan(ticker),
            concurrency=concurrency,
        )
