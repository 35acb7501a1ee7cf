"""``analysis-pipeline estimate``: projected cost per bill and per month, offline, from the
twelve real bills' measured token counts and llm-client's price sources."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import llm_client
import pytest
from analysis_pipeline import PipelineConfig
from analysis_pipeline._cli import app
from analysis_pipeline._estimate import estimate_bill, project_costs
from typer.testing import CliRunner
from web_search import ResearchBudget

BILLS = Path(__file__).resolve().parents[3] / "../shared/data/bills"
MODELS = {"generate": ["gpt-4o-mini"], "review": ["gpt-4.1-mini"]}
runner = CliRunner()


def _bills() -> list[tuple[str, str, str]]:
    files = sorted(p for p in BILLS.glob("*.txt") if not p.name.endswith(".summary.txt"))
    return [(p.stem, p.read_text(encoding="utf-8"), p.stem.split("-")[0]) for p in files]


def test_a_new_bill_fits_the_plan_budget_at_the_default_models_list_prices() -> None:
    projection = project_costs(_bills(), MODELS, bills_per_day=50)
    assert len(projection.bills) == 12
    assert projection.per_bill is not None
    assert projection.per_bill <= Decimal("0.20")  # the apps' plan: $300 a month, 50 bills a day
    assert projection.per_month == projection.per_bill * 50 * 30
    assert projection.per_month is not None
    assert projection.per_month <= Decimal(300)
    for bill in projection.bills:
        assert bill.search_calls <= 12
        assert bill.search_cost == Decimal("0.01") * bill.search_calls
        assert bill.total == bill.search_cost + sum((s.cost or 0 for s in bill.steps), Decimal(0))
        assert {s.step for s in bill.steps} == {"research", "generate", "review"}
        assert all(s.price_source != "unpriced" for s in bill.steps)


def test_prompt_tokens_are_measured_from_the_bill() -> None:
    by_id = {b[0]: b for b in _bills()}
    small = estimate_bill(*by_id["US-S3609-117"], MODELS)
    large = estimate_bill(*by_id["IN-HB1007-2025"], MODELS)
    assert large.bill_tokens > 10 * small.bill_tokens
    generate = {e.bill_id: next(s for s in e.steps if s.step == "generate") for e in (small, large)}
    # The bill is in the prompt: the difference in prompt tokens is the difference in bills.
    grew = generate["IN-HB1007-2025"].prompt_tokens - generate["US-S3609-117"].prompt_tokens
    assert grew >= large.bill_tokens - small.bill_tokens - 200
    price = llm_client.price_for("gpt-4o-mini")
    assert price is not None
    expected = llm_client.cost_of(
        llm_client.Usage(generate["US-S3609-117"].prompt_tokens, 1500), price
    )
    assert generate["US-S3609-117"].cost == expected


def test_rounds_condensing_and_budget_change_the_projection() -> None:
    bill = next(b for b in _bills() if b[0] == "IN-HB1007-2025")
    one = estimate_bill(*bill, MODELS)
    two = estimate_bill(*bill, MODELS, rounds=2)
    assert [s.step for s in two.steps] == ["research", "generate", "review", "refine"]
    assert two.total is not None
    assert one.total is not None
    assert two.total > one.total
    small = estimate_bill(*bill, MODELS, config=PipelineConfig(max_context_tokens=8192))
    assert small.condensed
    condense = next(s for s in small.steps if s.step == "condense")
    assert condense.calls > 1
    capped = estimate_bill(*bill, MODELS, budget=ResearchBudget(max_calls=6))
    assert capped.search_calls == 6


def test_an_unpriced_model_is_never_free() -> None:
    projection = project_costs(_bills()[:2], {"generate": ["no-such-model-xyz"]})
    assert projection.per_bill is None
    assert projection.per_month is None
    assert projection.unpriced == ("no-such-model-xyz",)


def test_cli_estimate_json_over_the_real_bills() -> None:
    result = runner.invoke(
        app,
        [
            "estimate", str(BILLS), "--bills-per-day", "50", "--json",
            "--model", "generate=gpt-4o-mini", "--model", "review=gpt-4.1-mini",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert len(data["bills"]) == 12  # the *.summary.txt files beside them are not bills
    assert data["bills_per_day"] == 50
    assert Decimal(data["per_month"]) == Decimal(data["per_bill"]) * 1500
    assert Decimal(data["per_bill"]) <= Decimal("0.20")


def test_cli_estimate_table_and_errors(tmp_path: Path) -> None:
    one = BILLS / "CA-AB1482-2019.txt"
    shown = runner.invoke(app, ["estimate", str(one), "--model", "generate=gpt-4o-mini",
                                "--model", "review=gpt-4o-mini"])  # fmt: skip
    assert shown.exit_code == 0, shown.output
    assert "per month" in shown.stdout
    assert "CA-AB1482" in shown.stdout
    unpriced = runner.invoke(app, ["estimate", str(one), "--model", "generate=no-such-model"])
    assert unpriced.exit_code == 1
    assert unpriced.stderr.count("error:") == 1
    assert "no-such-model" in unpriced.stderr
    assert "Traceback" not in unpriced.output
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"\xff\xfe not utf-8")
    refused = runner.invoke(app, ["estimate", str(bad)])
    assert refused.exit_code == 1
    assert refused.stderr.startswith("error:")
    empty = tmp_path / "empty"
    empty.mkdir()
    nothing = runner.invoke(app, ["estimate", str(empty)])
    assert nothing.exit_code == 1
    assert "no bill text files" in nothing.stderr


@pytest.mark.parametrize("per_day", ["0", "-3"])
def test_cli_estimate_rejects_a_bad_volume(per_day: str) -> None:
    result = runner.invoke(app, ["estimate", str(BILLS), "--bills-per-day", per_day])
    assert result.exit_code != 0
