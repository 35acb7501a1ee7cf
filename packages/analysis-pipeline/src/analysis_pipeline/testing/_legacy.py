"""A stand-in for an app's legacy analyser, so shadow mode can be tried without the app."""

from __future__ import annotations

from analysis_pipeline._records import ShadowImpact
from analysis_pipeline._shadow import LegacyResult

from ._heuristics import categories_in, find_amounts

__all__ = ["offline_legacy_analyser"]


async def offline_legacy_analyser(bill_text: str, bill_id: str, jurisdiction: str) -> LegacyResult:
    """Analyse a bill the way an older keyword-based implementation might (no model, no cost).

    Impacts are named like the new pipeline's categories but written as an old report would
    (``"Housing"``), one per category with a stated amount, plus the most-mentioned category
    without a figure; so shadow comparisons show real agreement and real differences.

    Args:
        bill_text: The bill.
        bill_id: Its id (unused; part of the legacy signature).
        jurisdiction: Its jurisdiction (unused).

    Returns:
        The legacy result (``cost`` 0: nothing paid), ``payload`` a plain dict report.
    """
    del bill_id, jurisdiction
    impacts: dict[str, ShadowImpact] = {}
    for finding in find_amounts(bill_text):
        if finding.category != "other" and finding.category not in impacts:
            impacts[finding.category] = ShadowImpact(
                name=finding.category.title(), direction=finding.direction
            )
    for category in categories_in(bill_text)[:1]:
        impacts.setdefault(category, ShadowImpact(name=category.title(), direction="unclear"))
    found = list(impacts.values())
    report = {"impacts": [i.model_dump() for i in found]}
    return LegacyResult(impacts=found, cost=None, payload=report)
