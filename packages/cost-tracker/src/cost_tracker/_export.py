"""CSV and JSON rendering of cost records (money as exact decimal strings)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from decimal import Decimal
from typing import Literal

from cost_tracker._errors import InvalidRecordError
from cost_tracker._models import CostMetrics

__all__ = ["EXPORT_FIELDS", "render_records"]

EXPORT_FIELDS = (
    "idempotency_id",
    "timestamp",
    "project",
    "provider",
    "model",
    "step",
    "cost",
    "prompt_tokens",
    "completion_tokens",
    "cached_prompt_tokens",
    "reasoning_tokens",
    "success",
    "error",
    "latency_ms",
    "user_id",
    "metadata",
)


def render_records(records: Sequence[CostMetrics], fmt: Literal["csv", "json"]) -> str:
    """Render records as CSV (one row each, metadata as JSON) or as a JSON array.

    Args:
        records: Records to render.
        fmt: ``"csv"`` or ``"json"``.

    Returns:
        The text.

    Raises:
        InvalidRecordError: Unknown format.
    """
    rows = [record.to_row() for record in records]
    if fmt == "json":
        return json.dumps(rows, indent=2, sort_keys=False)
    if fmt != "csv":
        raise InvalidRecordError(f"format must be 'csv' or 'json', not {fmt!r}")
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=EXPORT_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        row["metadata"] = json.dumps(row["metadata"], sort_keys=True)
        if row["cost"] is not None:
            row["cost"] = format(Decimal(row["cost"]), "f")
        writer.writerow({key: "" if row[key] is None else row[key] for key in EXPORT_FIELDS})
    return buffer.getvalue()
