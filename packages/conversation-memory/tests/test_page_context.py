"""Page context: providers per page, failures and timeouts skipped, the finance examples."""

from __future__ import annotations

import asyncio
import logging
import uuid
from decimal import Decimal
from pathlib import Path

import pytest
from conversation_memory import (
    ConversationMemory,
    Holding,
    LocalMessageStore,
    PageContextRegistry,
    TaxProfile,
    portfolio_context,
    tax_planning_context,
)


@pytest.fixture
async def store(tmp_path: Path):  # type: ignore[no-untyped-def]
    opened = LocalMessageStore(tmp_path / "m.sqlite3")
    yield opened
    await opened.aclose()


async def test_context_order_system_page_then_history(store: LocalMessageStore) -> None:
    memory = ConversationMemory(store, uuid.uuid4(), system_prompt="Be precise.")

    @memory.page_context("portfolio")
    async def holdings(user_id: str) -> str:
        assert user_id == memory.user_id
        return "Holds 10 VTI."

    await memory.save_message("user", "How am I doing?", page="portfolio")
    context = await memory.get_context(page="portfolio")
    assert context[0] == {"role": "system", "content": "Be precise."}
    assert context[1]["role"] == "system"
    assert "(portfolio)" in context[1]["content"]
    assert "Holds 10 VTI." in context[1]["content"]
    assert context[2] == {"role": "user", "content": "How am I doing?"}
    # Other pages (and no page) get no page context.
    assert len(await memory.get_context(page="tax_planning")) == 2
    assert len(await memory.get_context()) == 2


async def test_failing_and_slow_providers_are_logged_and_skipped(
    store: LocalMessageStore, caplog: pytest.LogCaptureFixture
) -> None:
    memory = ConversationMemory(store, uuid.uuid4(), page_context_timeout=0.05)
    never = asyncio.Event()

    @memory.page_context("portfolio")
    async def broken(user_id: str) -> str:
        raise ConnectionError("brokerage API down")

    @memory.page_context("portfolio")
    async def slow(user_id: str) -> str:
        await never.wait()
        return "never"

    @memory.page_context("portfolio")
    async def fine(user_id: str) -> str:
        return "Cash: $1,000.00"

    await memory.save_message("user", "Hi")
    with caplog.at_level(logging.WARNING, logger="conversation_memory"):
        context = await memory.get_context(page="portfolio")
    assert [m["role"] for m in context] == ["system", "user"]
    assert "Cash: $1,000.00" in context[0]["content"]
    assert "never" not in context[0]["content"]
    assert "broken" in caplog.text
    assert "failed" in caplog.text
    assert "slow" in caplog.text
    assert "timed out" in caplog.text


async def test_every_provider_failing_still_answers(store: LocalMessageStore) -> None:
    memory = ConversationMemory(store, uuid.uuid4())

    @memory.page_context("portfolio")
    async def broken(user_id: str) -> str:
        raise RuntimeError("boom")

    await memory.save_message("user", "Hi")
    assert await memory.get_context(page="portfolio") == [{"role": "user", "content": "Hi"}]


async def test_shared_registry_serves_every_user(store: LocalMessageStore) -> None:
    registry = PageContextRegistry()
    holdings = {
        "a": [Holding("VTI", Decimal("10"), Decimal("2500.00"))],
        "b": [Holding("BND", Decimal("3.5"), Decimal("250.10"), account="Roth IRA")],
    }
    users = {"a": str(uuid.uuid4()), "b": str(uuid.uuid4())}
    by_id = {v: holdings[k] for k, v in users.items()}

    async def load(user_id: str) -> list[Holding]:
        return by_id[user_id]

    registry.register("portfolio", portfolio_context(load))
    assert registry.pages == ["portfolio"]
    for name, user in users.items():
        memory = ConversationMemory(store, user, page_contexts=registry)
        await memory.save_message("user", "Hi")
        page = (await memory.get_context(page="portfolio"))[0]["content"]
        assert holdings[name][0].symbol in page
        other = "BND" if name == "a" else "VTI"
        assert other not in page


async def test_portfolio_context_formats_money_and_weights() -> None:
    async def load(user_id: str) -> list[Holding]:
        return [
            Holding("BND", Decimal("20"), Decimal("1500.00"), cost_basis=Decimal("1600")),
            Holding("VTI", Decimal("10.50"), Decimal("3500.005"), account="Roth IRA"),
            Holding("CASH", Decimal("1"), None),
        ]

    text = await portfolio_context(load, max_positions=2)("u")
    assert text is not None
    lines = text.splitlines()
    assert lines[0] == "The user's portfolio (3 positions, total value $5,000.00):"
    assert lines[1] == "- VTI: 10.5 units, worth $3,500.00, 70.0%, in Roth IRA"
    assert lines[2] == "- BND: 20 units, worth $1,500.00, 30.0%, cost basis $1,600.00"
    assert lines[3] == "- and 1 smaller positions"

    async def empty(user_id: str) -> list[Holding]:
        return []

    assert await portfolio_context(empty)("u") == "The user's portfolio is empty."


async def test_tax_planning_context() -> None:
    profile = TaxProfile(
        tax_year=2026,
        filing_status="married filing jointly",
        state="CA",
        annual_income=Decimal("185000"),
        contributions={"Roth IRA": Decimal("3500"), "401(k)": Decimal("12000.5")},
        notes="Expecting a bonus in Q4.",
    )

    async def load(user_id: str) -> TaxProfile | None:
        return profile if user_id == "known" else None

    text = await tax_planning_context(load)("known")
    assert text == (
        "The user's tax planning for 2026:\n"
        "- filing status: married filing jointly\n"
        "- state: CA\n"
        "- expected income: $185,000.00\n"
        "- 401(k) contributions so far: $12,000.50\n"
        "- Roth IRA contributions so far: $3,500.00\n"
        "- notes: Expecting a bonus in Q4."
    )
    assert await tax_planning_context(load)("unknown") is None
