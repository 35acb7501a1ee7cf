"""The Switch-over page's figures: the rollout flag, its audit, and the shadow runs per arm.

Reads the store's flag and shadow API (``get_flag``, ``flag_changes``, ``shadow_results``):
what an admin looks at before going from 10% to 50% to 100%. A store without that API shows
the page with the reason instead of figures.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from analysis_pipeline._reports import percentile

__all__ = ["ArmStats", "SwitchView", "impact_keys", "load_switch"]

_ARMS = ("new", "legacy")
_SHADOW_FIELDS = (
    "bill_id", "jurisdiction", "served_arm", "started_at",
    "new_status", "new_cost", "new_latency_ms", "new_error",
    "legacy_status", "legacy_cost", "legacy_latency_ms", "legacy_error",
)  # fmt: skip


def _get(obj: Any, name: str, default: Any = None) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(name, default)
    return getattr(obj, name, default)


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()


def impact_keys(impacts: Sequence[Any]) -> dict[str, str]:
    """Normalised impact name to its direction (name: ``name``, else ``category``)."""
    out: dict[str, str] = {}
    for impact in impacts or ():
        name = _get(impact, "name") or _get(impact, "category") or ""
        if name:
            out[_norm(str(name))] = str(_get(impact, "direction", "") or "")
    return out


@dataclass(slots=True)
class ArmStats:
    """One arm of the shadow runs.

    Attributes:
        arm: ``new`` or ``legacy``.
        runs: Shadow runs recorded.
        errors: Runs whose arm failed or timed out.
        error_rate: ``errors / runs`` (None without runs).
        p50_latency_ms: Median latency.
        p95_latency_ms: 95th-percentile latency.
        cost: Total priced cost.
        unpriced: Runs of the arm without a known cost.
        served: Runs in which this arm's answer was served.
    """

    arm: str
    runs: int = 0
    errors: int = 0
    error_rate: float | None = None
    p50_latency_ms: float = 0.0
    p95_latency_ms: float = 0.0
    cost: Decimal = Decimal(0)
    unpriced: int = 0
    served: int = 0


@dataclass(slots=True)
class SwitchView:
    """Everything the Switch-over page and its CSV show.

    Attributes:
        available: Whether the store keeps a flag and shadow runs.
        reason: Why not, when it does not.
        flag: The flag's state (None when never set).
        effective: The flag in words.
        changes: Its latest changes, newest first.
        arms: Figures per arm.
        compared: Shadow runs in which both arms answered.
        both: Impacts both arms found.
        only_new: Impacts only the new arm found.
        only_legacy: Impacts only the legacy arm found.
        direction_disagreements: Impacts both found with opposite directions.
        rows: The shadow runs (newest first).
    """

    available: bool
    reason: str = ""
    flag: Any = None
    effective: str = "not set: the environment decides"
    changes: list[Any] = field(default_factory=list)
    arms: list[ArmStats] = field(default_factory=list)
    compared: int = 0
    both: int = 0
    only_new: int = 0
    only_legacy: int = 0
    direction_disagreements: int = 0
    rows: list[Any] = field(default_factory=list)

    @property
    def agreement(self) -> float | None:
        """Share of impacts found by both arms with the same direction (None with none)."""
        total = self.both + self.only_new + self.only_legacy
        return None if total == 0 else (self.both - self.direction_disagreements) / total

    @property
    def csv_fields(self) -> list[str]:
        """Columns of the CSV export: one row per shadow run."""
        return [*_SHADOW_FIELDS, "both", "only_new", "only_legacy", "direction_disagreements"]

    @property
    def csv_rows(self) -> list[dict[str, Any]]:
        """The shadow runs as CSV rows, with their per-run agreement counts."""
        out = []
        for row in self.rows:
            data = {name: _get(row, name) for name in _SHADOW_FIELDS}
            data.update(_compare_dict(row))
            out.append(data)
        return out


def _compare_dict(row: Any) -> dict[str, int]:
    new = impact_keys(_get(row, "new_impacts") or [])
    legacy = impact_keys(_get(row, "legacy_impacts") or [])
    shared = new.keys() & legacy.keys()
    return {
        "both": len(shared),
        "only_new": len(new.keys() - legacy.keys()),
        "only_legacy": len(legacy.keys() - new.keys()),
        "direction_disagreements": sum(1 for k in shared if new[k] != legacy[k]),
    }


def _effective(flag: Any) -> str:
    if flag is None:
        return "not set: the environment decides"
    enabled, percent = _get(flag, "enabled"), _get(flag, "percent")
    if enabled is False:
        return "OFF (kill switch): every request uses the legacy path"
    if enabled is True:
        return "ON for everyone (100%)"
    return f"{float(percent or 0):g}% of keys on the new framework"


def _arm(rows: Sequence[Any], arm: str) -> ArmStats:
    stats = ArmStats(arm)
    latencies = []
    for row in rows:
        status = _get(row, f"{arm}_status")
        if status is None:
            continue
        stats.runs += 1
        stats.errors += status != "ok"
        stats.served += _get(row, "served_arm") == arm
        latencies.append(float(_get(row, f"{arm}_latency_ms") or 0))
        cost = _get(row, f"{arm}_cost")
        if cost is None:
            stats.unpriced += 1
        else:
            stats.cost += Decimal(str(cost))
    stats.error_rate = stats.errors / stats.runs if stats.runs else None
    stats.p50_latency_ms = percentile(latencies, 50)
    stats.p95_latency_ms = percentile(latencies, 95)
    return stats


async def load_switch(store: Any, name: str, *, limit: int = 500) -> SwitchView:
    """Read the flag ``name``, its changes and the latest ``limit`` shadow runs from ``store``."""
    missing = [m for m in ("get_flag", "flag_changes", "shadow_results") if not hasattr(store, m)]
    if missing:
        return SwitchView(
            available=False, reason=f"{type(store).__name__} has no {', '.join(missing)}"
        )
    flag = await store.get_flag(name)
    changes = list(await store.flag_changes(name))
    rows = list(await store.shadow_results(limit=limit))
    view = SwitchView(available=True, flag=flag, effective=_effective(flag), changes=changes)
    view.rows = rows
    view.arms = [_arm(rows, arm) for arm in _ARMS]
    for row in rows:
        if _get(row, "new_status") == "ok" and _get(row, "legacy_status") == "ok":
            view.compared += 1
            counts = _compare_dict(row)
            view.both += counts["both"]
            view.only_new += counts["only_new"]
            view.only_legacy += counts["only_legacy"]
            view.direction_disagreements += counts["direction_disagreements"]
    return view
