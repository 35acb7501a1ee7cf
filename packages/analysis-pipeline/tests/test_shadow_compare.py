"""Shadow agreement figures from hand-built records (the CLI test checks them on real rows)."""

from __future__ import annotations

from decimal import Decimal

from analysis_pipeline import ShadowArm, ShadowImpact, ShadowRecord, shadow_comparison


def _arm(*impacts: tuple[str, str], **fields: object) -> ShadowArm:
    found = [ShadowImpact(name=n, direction=d) for n, d in impacts]  # type: ignore[arg-type]
    return ShadowArm(status="ok", impacts=found, **fields)  # type: ignore[arg-type]


def test_agreement_counts_matched_by_normalised_name() -> None:
    records = [
        ShadowRecord(
            bill_id="A", jurisdiction="CA", served="new",
            new=_arm(("housing", "increase"), ("energy", "decrease"), cost=Decimal("0.01"),
                     latency_ms=100),
            legacy=_arm(("The Housing", "increase"), ("Energy", "increase"), ("Fees", "unclear"),
                        latency_ms=10),
        ),
        ShadowRecord(
            bill_id="B", jurisdiction="CA", served="legacy",
            new=_arm(("taxes", "decrease"), ("wages", "increase"), cost=Decimal("0.03"),
                     latency_ms=300),
            legacy=_arm(("TAXES", "decrease"), ("taxes", "increase"), latency_ms=30),
        ),
        ShadowRecord(  # not compared: the legacy arm failed
            bill_id="C", jurisdiction="CA", served="new",
            new=_arm(("housing", "increase"), cost=Decimal("0.02"), latency_ms=200),
            legacy=ShadowArm(status="timeout", error="t", latency_ms=2000),
        ),
    ]  # fmt: skip
    got = shadow_comparison(records)
    assert (got.runs, got.compared) == (3, 2)
    # A: housing both, energy both (directions differ), fees only legacy.
    # B: taxes both (legacy says both ways: mixed vs decrease), wages only new.
    assert (got.impacts_both, got.impacts_only_new, got.impacts_only_legacy) == (3, 1, 1)
    assert got.direction_disagreements == 2
    assert got.agreement == 3 / 5
    new, legacy = got.arms
    assert (new.arm, new.runs, new.served, new.ok, new.total_cost) == (
        "new", 3, 2, 3, Decimal("0.06"),
    )  # fmt: skip
    assert new.mean_cost == Decimal("0.02")
    assert (new.p50_latency_ms, new.unpriced) == (200, 0)
    assert (legacy.served, legacy.ok, legacy.timeouts, legacy.total_cost, legacy.unpriced) == (
        1, 2, 1, None, 3,
    )  # fmt: skip
    by_name = {r.name: r for r in got.by_impact}
    assert by_name["energy"].direction_disagreements == 1
    assert by_name["fees"].only_legacy == 1


def test_no_records() -> None:
    got = shadow_comparison([])
    assert (got.runs, got.compared, got.agreement) == (0, 0, None)
    assert [a.total_cost for a in got.arms] == [None, None]
