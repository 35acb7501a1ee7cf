"""The storage protocol every backend implements (local SQLite, PostgreSQL, Supabase)."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol, runtime_checkable

from conversation_memory._models import (
    CleanupReceipt,
    ContextSnapshot,
    DeletionReceipt,
    Role,
    StoredMessage,
    Summary,
)

__all__ = ["MessageStore"]


@runtime_checkable
class MessageStore(Protocol):
    """Where conversations live.

    Every method is scoped by ``user_id``: backends with row-level security (PostgreSQL in
    per-user mode, Supabase with the user's JWT) additionally let the database refuse rows of
    other users, so a wrong ``user_id`` reads nothing and writes nothing.

    Sequence numbers are assigned by the store, atomically per conversation, so concurrent
    writers (several app replicas, several browser tabs) never reorder or lose messages.
    """

    async def append(
        self,
        user_id: str,
        conversation_id: str,
        role: Role,
        content: str,
        page: str | None,
        token_count: int,
    ) -> StoredMessage:
        """Store one message with the next sequence number of its conversation.

        Returns:
            The stored message, with its ``seq`` and ``created_at``.
        """
        ...

    async def load_context(self, user_id: str, conversation_id: str, limit: int) -> ContextSnapshot:
        """Read the latest summary and the ``limit`` newest messages (oldest first)."""
        ...

    async def history(
        self, user_id: str, conversation_id: str, limit: int, before_seq: int | None
    ) -> list[StoredMessage]:
        """Read up to ``limit`` newest messages with ``seq < before_seq`` (oldest first)."""
        ...

    async def messages_between(
        self, user_id: str, conversation_id: str, after_seq: int, before_seq: int, limit: int
    ) -> list[StoredMessage]:
        """Read up to ``limit`` oldest messages with ``after_seq < seq < before_seq``."""
        ...

    async def save_summary(
        self,
        user_id: str,
        conversation_id: str,
        *,
        base_version: int,
        summary: str,
        covers_up_to_seq: int,
        covers_from_created_at: datetime,
        covers_to_created_at: datetime,
        model: str | None,
    ) -> Summary | None:
        """Store version ``base_version + 1`` if the latest stored version is ``base_version``.

        Older versions are removed. A concurrent summariser that stored first wins.

        Returns:
            The stored summary, or None when the latest version is no longer ``base_version``.
        """
        ...

    async def export_user(self, user_id: str) -> tuple[list[StoredMessage], list[Summary]]:
        """Every message and summary of the user, ordered by conversation then seq/version."""
        ...

    async def delete_user(self, user_id: str) -> DeletionReceipt:
        """Delete every row of the user (messages, summaries, counters)."""
        ...

    async def cleanup(self, cutoff: datetime, *, user_id: str | None = None) -> CleanupReceipt:
        """Delete messages created before ``cutoff`` and the summaries derived from them.

        Args:
            cutoff: Messages created before this instant are deleted.
            user_id: The user to act as when the backend applies row-level security; owner and
                service-role backends ignore it and clean the whole store.
        """
        ...

    async def aclose(self) -> None:
        """Release connections and threads."""
        ...
