"""Turning database rows (psycopg tuples or PostgREST JSON) into records."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, cast

from conversation_memory._models import ContextSnapshot, Role, StoredMessage, Summary

__all__ = ["message_from_json", "snapshot_from_json", "summary_from_json", "utc"]


def utc(value: object) -> datetime:
    """A timezone-aware UTC datetime from a datetime or an ISO 8601 string."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if moment.tzinfo is None:  # timestamptz always carries an offset; be strict anyway
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def message_from_json(row: Mapping[str, Any]) -> StoredMessage:
    """A message from a ``conversations`` row as a mapping."""
    return StoredMessage(
        user_id=str(row["user_id"]),
        conversation_id=str(row["conversation_id"]),
        seq=int(row["seq"]),
        role=cast(Role, row["role"]),
        content=str(row["content"]),
        page=row.get("page"),
        token_count=int(row.get("token_count") or 0),
        created_at=utc(row["created_at"]),
    )


def summary_from_json(row: Mapping[str, Any]) -> Summary:
    """A summary from a ``conversation_summaries`` row as a mapping."""
    return Summary(
        user_id=str(row["user_id"]),
        conversation_id=str(row["conversation_id"]),
        version=int(row["version"]),
        summary=str(row["summary"]),
        covers_up_to_seq=int(row["covers_up_to_seq"]),
        covers_from_created_at=utc(row["covers_from_created_at"]),
        covers_to_created_at=utc(row["covers_to_created_at"]),
        model=row.get("model"),
        created_at=utc(row["created_at"]),
    )


def snapshot_from_json(data: Mapping[str, Any]) -> ContextSnapshot:
    """The result of ``conversation_context()``: ``{"summary": ..., "messages": [...]}``."""
    summary = data.get("summary")
    return ContextSnapshot(
        summary=summary_from_json(summary) if summary else None,
        recent=[message_from_json(m) for m in data.get("messages") or []],
    )
