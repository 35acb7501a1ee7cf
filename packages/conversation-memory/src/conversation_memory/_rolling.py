"""Folding aged-out turns into the stored rolling summary, and the export document."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from conversation_memory._errors import InvalidMessageError, SummarizationError
from conversation_memory._models import StoredMessage, Summary, check_text
from conversation_memory._stores._protocol import MessageStore
from conversation_memory._summarizer import Summarizer

__all__ = ["export_document", "fold_turns", "reach_newest_user_turn"]

logger = logging.getLogger("conversation_memory._memory")


async def fold_turns(
    store: MessageStore,
    summarizer: Summarizer,
    user_id: str,
    conversation_id: str,
    summary: Summary | None,
    *,
    before_seq: int,
    batch: int,
    min_turns: int,
) -> Summary | None:
    """Write the next summary version from the previous one and the newly aged-out turns.

    Args:
        store: Where the conversation lives.
        summarizer: Writes the new text.
        user_id: Owner of the conversation.
        conversation_id: The conversation.
        summary: The current summary (None before the first).
        before_seq: Turns from this sequence number on are still in the context window.
        batch: Most turns folded in one update.
        min_turns: Fewer aged-out turns than this: do nothing.

    Returns:
        The stored summary, or None when there was too little to fold or a concurrent writer
        stored this version first.

    Raises:
        SummarizationError: The summariser failed or returned nothing; nothing was stored.
    """
    after = summary.covers_up_to_seq if summary is not None else 0
    turns = await store.messages_between(user_id, conversation_id, after, before_seq, batch)
    if not turns or len(turns) < min_turns:
        return None
    try:
        text = await summarizer.summarize(summary.summary if summary else None, turns)
    except Exception as exc:
        raise SummarizationError(
            f"summariser {type(summarizer).__name__} failed: {type(exc).__name__}"
        ) from exc
    if not isinstance(text, str) or not text.strip():
        raise SummarizationError("summariser returned an empty summary")
    try:
        check_text("summary", text)
    except InvalidMessageError as exc:
        raise SummarizationError(f"summariser returned text that cannot be stored: {exc}") from None
    # The oldest creation time of anything folded in: retention deletes the summary as soon as
    # any message it was derived from is deleted.
    oldest = min(m.created_at for m in turns)
    if summary is not None:
        oldest = min(oldest, summary.covers_from_created_at)
    saved = await store.save_summary(
        user_id,
        conversation_id,
        base_version=summary.version if summary is not None else 0,
        summary=text.strip(),
        covers_up_to_seq=turns[-1].seq,
        covers_from_created_at=oldest,
        covers_to_created_at=max(m.created_at for m in turns),
        model=summarizer.model_name,
    )
    if saved is None:
        logger.info(
            "summary of conversation %r was updated concurrently; kept theirs", conversation_id
        )
    return saved


def export_document(
    user_id: str, messages: Sequence[StoredMessage], summaries: Sequence[Summary]
) -> dict[str, Any]:
    """All of a user's data as one JSON-able dict, grouped by conversation.

    Returns:
        ``{"user_id", "exported_at", "conversations": [{"conversation_id", "messages",
        "summaries"}]}`` with timestamps in ISO 8601.
    """
    conversations: dict[str, dict[str, Any]] = {}

    def entry(conversation_id: str) -> dict[str, Any]:
        return conversations.setdefault(
            conversation_id,
            {"conversation_id": conversation_id, "messages": [], "summaries": []},
        )

    for message in messages:
        entry(message.conversation_id)["messages"].append(message.to_dict())
    for summary in summaries:
        entry(summary.conversation_id)["summaries"].append(summary.to_dict())
    return {
        "user_id": user_id,
        "exported_at": datetime.now(UTC).isoformat(),
        "conversations": [conversations[key] for key in sorted(conversations)],
    }


async def reach_newest_user_turn(
    store: MessageStore,
    user_id: str,
    conversation_id: str,
    recent: list[StoredMessage],
    max_messages: int,
) -> list[StoredMessage]:
    """Extend ``recent`` back to the newest user turn when the window holds none.

    Rare: more than ``max_messages`` non-user turns since the user last spoke. Up to 200 older
    messages are read so the question can still be part of the context.
    """
    if len(recent) < max_messages or any(m.role == "user" for m in recent):
        return recent
    older = await store.history(user_id, conversation_id, 200, before_seq=recent[0].seq)
    for index in range(len(older) - 1, -1, -1):
        if older[index].role == "user":
            return [*older[index:], *recent]
    return recent
