"""The two page-context providers the financial chat app needs: portfolio and tax planning.

They read nothing themselves: the app passes an async loader for its own data (database,
brokerage API, ...), and the provider turns what it returns into a short text for the model.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from conversation_memory._page_context import PageContextProvider

__all__ = ["Holding", "TaxProfile", "portfolio_context", "tax_planning_context"]

_CENT = Decimal("0.01")


def _money(amount: Decimal) -> str:
    return f"${amount.quantize(_CENT):,}"


@dataclass(frozen=True, slots=True)
class Holding:
    """One position in the user's portfolio.

    Attributes:
        symbol: Ticker or fund identifier.
        quantity: Units held.
        market_value: Current value in dollars, if known.
        cost_basis: What the position cost, if known.
        account: Account it sits in (e.g. ``"Roth IRA"``), if known.
    """

    symbol: str
    quantity: Decimal
    market_value: Decimal | None = None
    cost_basis: Decimal | None = None
    account: str | None = None


@dataclass(frozen=True, slots=True)
class TaxProfile:
    """What the tax-planning page knows about the user.

    Attributes:
        tax_year: The year being planned.
        filing_status: E.g. ``"single"``, ``"married filing jointly"``.
        state: State of residence, if relevant.
        annual_income: Expected income in dollars, if known.
        contributions: Year-to-date contributions by account type (``{"401(k)": Decimal(...)}``).
        notes: Anything else the app wants the model to know.
    """

    tax_year: int
    filing_status: str
    state: str | None = None
    annual_income: Decimal | None = None
    contributions: Mapping[str, Decimal] = field(default_factory=dict)
    notes: str | None = None


def portfolio_context(
    load_holdings: Callable[[str], Awaitable[Sequence[Holding]]], *, max_positions: int = 25
) -> PageContextProvider:
    """Build a provider describing the user's holdings for the ``portfolio`` page.

    Args:
        load_holdings: Async ``(user_id) -> holdings`` supplied by the app.
        max_positions: Largest positions listed (by market value); the rest are counted.

    Returns:
        A page-context provider.
    """

    async def provider(user_id: str) -> str | None:
        holdings = list(await load_holdings(user_id))
        if not holdings:
            return "The user's portfolio is empty."
        holdings.sort(key=lambda h: h.market_value or Decimal(0), reverse=True)
        total = sum((h.market_value or Decimal(0) for h in holdings), Decimal(0))
        lines = [f"The user's portfolio ({len(holdings)} positions, total value {_money(total)}):"]
        for h in holdings[:max_positions]:
            parts = [f"{h.symbol}: {h.quantity.normalize():f} units"]
            if h.market_value is not None:
                share = (
                    f", {(h.market_value / total * 100).quantize(Decimal('0.1'))}%" if total else ""
                )
                parts.append(f"worth {_money(h.market_value)}{share}")
            if h.cost_basis is not None:
                parts.append(f"cost basis {_money(h.cost_basis)}")
            if h.account:
                parts.append(f"in {h.account}")
            lines.append("- " + ", ".join(parts))
        if len(holdings) > max_positions:
            lines.append(f"- and {len(holdings) - max_positions} smaller positions")
        return "\n".join(lines)

    provider.__qualname__ = "portfolio_context"
    return provider


def tax_planning_context(
    load_tax_profile: Callable[[str], Awaitable[TaxProfile | None]],
) -> PageContextProvider:
    """Build a provider describing the user's tax situation for the ``tax_planning`` page.

    Args:
        load_tax_profile: Async ``(user_id) -> TaxProfile | None`` supplied by the app.

    Returns:
        A page-context provider (returns nothing when the user has no profile).
    """

    async def provider(user_id: str) -> str | None:
        profile = await load_tax_profile(user_id)
        if profile is None:
            return None
        lines = [f"The user's tax planning for {profile.tax_year}:"]
        lines.append(f"- filing status: {profile.filing_status}")
        if profile.state:
            lines.append(f"- state: {profile.state}")
        if profile.annual_income is not None:
            lines.append(f"- expected income: {_money(profile.annual_income)}")
        for account, amount in sorted(profile.contributions.items()):
            lines.append(f"- {account} contributions so far: {_money(amount)}")
        if profile.notes:
            lines.append(f"- notes: {profile.notes}")
        return "\n".join(lines)

    provider.__qualname__ = "tax_planning_context"
    return provider
