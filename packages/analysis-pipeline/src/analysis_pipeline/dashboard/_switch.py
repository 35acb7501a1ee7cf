"""The Switch-over page's figures: the flag in force, its audit, and the shadow runs per arm.

What an admin looks at before going from 10% to 50% to 100%: the store's flag (or the
environment's, while no admin has set one), every change of it, and the shadow runs' agreement,
error rate, cost and p95 latency per arm (``shadow_comparison``, the figures of
``analysis-pipeline compare --shadow``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from analysis_pipeline._compare import ShadowComparison, shadow_comparison
from analysis_pipeline._errors import InvalidInputError
from analysis_pipeline._records import FlagChange, FlagState, ShadowRecord
from analysis_pipeline._rollout import resolve_rollout
from analysis_pipeline._stores import RunStore

__all__ = ["SHADOW_CSV_FIELDS", "SwitchView", "load_switch", "shadow_csv_rows"]

SHADOW_CSV_FIELDS = (
    "id", "bill_id", "jurisdiction", "started_at", "served",
    "new_status", "new_cost", "new_latency_ms", "new_error", "new_impacts",
    "legacy_status", "legacy_cost", "legacy_latency_ms", "legacy_error", "legacy_impacts",
    "impacts_both", "impacts_only_new", "impacts_only_legacy", "direction_disagreements",
)  # fmt: skip
"""Columns of the Switch-over CSV: one row per shadow run."""


@dataclass(slots=True)
class SwitchView:
    """Everything the Switch-over page shows.

    Attributes:
        flag: The store's flag row (None while no admin has set it).
        in_force: The flag in words, as ``resolve_rollout`` applies it.
        changes: The flag's audited changes, newest first.
        comparison: Agreement, errors, cost and latency per arm over ``records``.
        records: The latest shadow runs, newest first.
    """

    flag: FlagState | None
    in_force: str
    changes: list[FlagChange]
    comparison: ShadowComparison
    records: list[ShadowRecord]

    def error_rate(self, arm: str) -> float | None:
        """Share of the arm's runs that did not finish ``ok`` (None without runs)."""
        stats = next(a for a in self.comparison.arms if a.arm == arm)
        return None if stats.runs == 0 else (stats.runs - stats.ok) / stats.runs


def _in_force(flag: FlagState | None, percent: float, source: str) -> str:
    if flag is not None and flag.enabled is False:
        return "OFF (kill switch): every request takes the legacy path"
    if flag is not None and flag.enabled is True:
        return "ON for everyone (100%)"
    where = "set by an admin" if source == "store" else "from the environment"
    return f"{percent:g}% of keys on the new framework ({where})"


async def load_switch(store: RunStore, name: str, *, limit: int = 1000) -> SwitchView:
    """Read flag ``name``, its changes and the latest ``limit`` shadow runs from ``store``."""
    flag = await store.get_flag(name)
    try:
        rollout = await resolve_rollout(store, name=name)
        in_force = _in_force(flag, rollout.effective_percent, rollout.source)
    except InvalidInputError as exc:  # no row, and the environment holds garbage
        in_force = f"not set, and the environment is invalid: {exc}"
    changes = await store.flag_changes(name)
    records = await store.shadow_results(limit=limit)
    return SwitchView(flag, in_force, changes, shadow_comparison(records), records)


def shadow_csv_rows(records: list[ShadowRecord]) -> list[dict[str, Any]]:
    """The shadow runs as CSV rows (``SHADOW_CSV_FIELDS``), each with its own agreement."""
    rows = []
    for record in records:
        one = shadow_comparison([record])
        row: dict[str, Any] = {
            "id": record.id,
            "bill_id": record.bill_id,
            "jurisdiction": record.jurisdiction,
            "started_at": record.started_at,
            "served": record.served,
            "impacts_both": one.impacts_both,
            "impacts_only_new": one.impacts_only_new,
            "impacts_only_legacy": one.impacts_only_legacy,
            "direction_disagreements": one.direction_disagreements,
        }
        for arm_name in ("new", "legacy"):
            arm = getattr(record, arm_name)
            row[f"{arm_name}_status"] = arm.status
            row[f"{arm_name}_cost"] = arm.cost
            row[f"{arm_name}_latency_ms"] = arm.latency_ms
            row[f"{arm_name}_error"] = arm.error
            row[f"{arm_name}_impacts"] = "; ".join(f"{i.name}:{i.direction}" for i in arm.impacts)
        rows.append(row)
    return rows
