"""SQLite schema and row conversion for the local backend."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Final, cast

from conversation_memory._models import Role, StoredMessage, Summary

__all__ = [
    "INSERT_MESSAGE",
    "MESSAGE_COLUMNS",
    "SCHEMA",
    "SUMMARY_COLUMNS",
    "message",
    "micros",
    "moment",
    "summary",
]

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)

SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS conversations (
    id INTEGER PRIMARY KEY,
    user_id TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('user', 'assistant', 'system')),
    content TEXT NOT NULL,
    page TEXT,
    token_count INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (user_id, conversation_id, seq)
);
CREATE INDEX IF NOT EXISTS conversations_created_at_idx ON conversations (created_at);
CREATE TABLE IF NOT EXISTS conversation_counters (
    user_id TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    last_seq INTEGER NOT NULL,
    PRIMARY KEY (user_id, conversation_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS conversation_summaries (
    user_id TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    summary TEXT NOT NULL,
    covers_up_to_seq INTEGER NOT NULL,
    covers_from_created_at INTEGER NOT NULL,
    covers_to_created_at INTEGER NOT NULL,
    model TEXT,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, conversation_id, version)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS conversation_summaries_from_idx
    ON conversation_summaries (covers_from_created_at);
"""
MESSAGE_COLUMNS: Final = (
    "user_id, conversation_id, seq, role, content, page, token_count, created_at"
)
INSERT_MESSAGE: Final = (
    f"INSERT INTO conversations ({MESSAGE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"  # noqa: S608
)
SUMMARY_COLUMNS: Final = (
    "user_id, conversation_id, version, summary, covers_up_to_seq, covers_from_created_at, "
    "covers_to_created_at, model, created_at"
)


def micros(when: datetime) -> int:
    """Integer microseconds since the epoch: exact, sortable and cheap to compare in SQL."""
    delta = when - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def moment(value: int) -> datetime:
    """The UTC datetime of a :func:`micros` value."""
    return _EPOCH + timedelta(microseconds=value)


def message(row: tuple[Any, ...]) -> StoredMessage:
    """A message from a ``SELECT MESSAGE_COLUMNS`` row."""
    return StoredMessage(
        user_id=row[0],
        conversation_id=row[1],
        seq=row[2],
        role=cast(Role, row[3]),
        content=row[4],
        page=row[5],
        token_count=row[6],
        created_at=moment(row[7]),
    )


def summary(row: tuple[Any, ...]) -> Summary:
    """A summary from a ``SELECT SUMMARY_COLUMNS`` row."""
    return Summary(
        user_id=row[0],
        conversation_id=row[1],
        version=row[2],
        summary=row[3],
        covers_up_to_seq=row[4],
        covers_from_created_at=moment(row[5]),
        covers_to_created_at=moment(row[6]),
        model=row[7],
        created_at=moment(row[8]),
    )
