"""The records conversation-memory stores and returns."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal, cast

from conversation_memory._errors import (
    ContentTooLargeError,
    EmptyContentError,
    InvalidIdentifierError,
    InvalidMessageError,
    InvalidRoleError,
)

__all__ = [
    "ROLES",
    "CleanupReceipt",
    "ContextSnapshot",
    "DeletionReceipt",
    "Role",
    "StoredMessage",
    "Summary",
    "check_content",
    "check_conversation_id",
    "check_page",
    "check_role",
    "check_text",
    "check_user_id",
]

Role = Literal["user", "assistant", "system"]
ROLES: Final[frozenset[str]] = frozenset({"user", "assistant", "system"})
_MAX_PAGE_NAME: Final = 100
_CONVERSATION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,199}")


def check_role(role: str) -> Role:
    """Validate a message role.

    Args:
        role: The role to check.

    Returns:
        The role, typed as :data:`Role`.

    Raises:
        InvalidRoleError: If the role is not ``user``, ``assistant`` or ``system``.
    """
    if role not in ROLES:
        raise InvalidRoleError(f"role must be one of user, assistant, system; got {role!r}")
    return cast(Role, role)


def check_content(content: object, max_chars: int) -> str:
    """Validate message content: non-blank text of at most ``max_chars`` characters.

    Raises:
        InvalidMessageError: If it is not a string, or not text every backend can store (a
            lone surrogate such as ``"\\ud800"`` is not valid Unicode; NUL is refused by
            PostgreSQL).
        EmptyContentError: If it is empty or whitespace only.
        ContentTooLargeError: If it is longer than ``max_chars``.
    """
    if not isinstance(content, str):
        raise InvalidMessageError(f"content must be str, got {type(content).__name__}")
    if not content.strip():
        raise EmptyContentError("message content is empty")
    if len(content) > max_chars:
        raise ContentTooLargeError(len(content), max_chars)
    check_text("message content", content)
    return content


def check_page(page: object) -> str | None:
    """Validate a page name (None, or 1-100 characters of valid text).

    Raises:
        InvalidMessageError: If it is malformed.
    """
    if page is not None and (not isinstance(page, str) or not page or len(page) > _MAX_PAGE_NAME):
        raise InvalidMessageError(f"page must be a 1-{_MAX_PAGE_NAME} character string")
    if page is not None:
        check_text("page name", page)
    return page


def check_text(name: str, text: str) -> None:
    """Refuse text no backend can store: lone surrogates (not Unicode) and NUL characters.

    Raises:
        InvalidMessageError: Naming ``name`` and the position of the first bad character.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidMessageError(
            f"{name} is not valid Unicode: {text[exc.start : exc.end]!r} at position "
            f"{exc.start} (a lone surrogate; decode the input with errors='replace' upstream)"
        ) from None
    position = text.find("\x00")
    if position != -1:
        raise InvalidMessageError(f"{name} contains a NUL character at position {position}")


def check_user_id(user_id: object) -> str:
    """Validate and normalise a user id (a UUID, as Supabase's ``auth.uid()`` returns).

    Args:
        user_id: A UUID string or :class:`uuid.UUID`.

    Returns:
        The canonical lower-case hyphenated form.

    Raises:
        InvalidIdentifierError: If it is not a UUID.
    """
    if isinstance(user_id, uuid.UUID):
        return str(user_id)
    if not isinstance(user_id, str):
        raise InvalidIdentifierError(f"user_id must be a UUID string, got {type(user_id).__name__}")
    try:
        return str(uuid.UUID(user_id))
    except ValueError:
        raise InvalidIdentifierError(f"user_id must be a UUID, got {user_id!r}") from None


def check_conversation_id(conversation_id: object) -> str:
    """Validate a conversation id: 1-200 characters of letters, digits and ``._:@-``.

    Args:
        conversation_id: A string or :class:`uuid.UUID`.

    Returns:
        The id as a string.

    Raises:
        InvalidIdentifierError: If it is malformed.
    """
    if isinstance(conversation_id, uuid.UUID):
        return str(conversation_id)
    if not isinstance(conversation_id, str) or not _CONVERSATION_ID.fullmatch(conversation_id):
        raise InvalidIdentifierError(
            "conversation_id must be 1-200 characters of letters, digits and ._:@- "
            f"starting with a letter or digit; got {conversation_id!r}"
        )
    return conversation_id


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """One message as the store keeps it.

    Attributes:
        user_id: Owner of the message (UUID string).
        conversation_id: Conversation the message belongs to.
        seq: Position in the conversation, assigned by the store (strictly increasing).
        role: ``user``, ``assistant`` or ``system``.
        content: The text.
        page: The app page the user was on when it was written, if any.
        token_count: Tokens of ``content`` counted when it was saved.
        created_at: When the store accepted it (timezone-aware UTC).
    """

    user_id: str
    conversation_id: str
    seq: int
    role: Role
    content: str
    page: str | None
    token_count: int
    created_at: datetime

    def to_chat(self) -> dict[str, str]:
        """The message as an OpenAI-style chat message (``role`` and ``content``)."""
        return {"role": self.role, "content": self.content}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict of every field (``created_at`` in ISO 8601)."""
        return {
            "conversation_id": self.conversation_id,
            "seq": self.seq,
            "role": self.role,
            "content": self.content,
            "page": self.page,
            "token_count": self.token_count,
            "created_at": self.created_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class Summary:
    """A stored rolling summary of the older turns of one conversation.

    Attributes:
        user_id: Owner (UUID string).
        conversation_id: The conversation summarised.
        version: 1 for the first summary, +1 for every incremental update.
        summary: The text.
        covers_up_to_seq: Every message with ``seq`` up to this one is folded in.
        covers_from_created_at: Creation time of the oldest message folded in; retention deletes
            the summary once messages that old are deleted.
        covers_to_created_at: Creation time of the newest message folded in.
        model: The model that wrote it.
        created_at: When it was stored.
    """

    user_id: str
    conversation_id: str
    version: int
    summary: str
    covers_up_to_seq: int
    covers_from_created_at: datetime
    covers_to_created_at: datetime
    model: str | None
    created_at: datetime

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict of every field (timestamps in ISO 8601)."""
        return {
            "conversation_id": self.conversation_id,
            "version": self.version,
            "summary": self.summary,
            "covers_up_to_seq": self.covers_up_to_seq,
            "covers_from_created_at": self.covers_from_created_at.isoformat(),
            "covers_to_created_at": self.covers_to_created_at.isoformat(),
            "model": self.model,
            "created_at": self.created_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class ContextSnapshot:
    """What ``get_context`` reads from the store in one round trip.

    Attributes:
        summary: The latest rolling summary, if any.
        recent: The newest messages, oldest first.
    """

    summary: Summary | None
    recent: list[StoredMessage]


@dataclass(frozen=True, slots=True)
class DeletionReceipt:
    """Counts of the rows removed by ``delete()``.

    Attributes:
        user_id: Whose data was deleted.
        messages: Messages deleted.
        summaries: Summaries deleted.
        conversations: Conversation sequence counters deleted.
    """

    user_id: str
    messages: int
    summaries: int
    conversations: int

    @property
    def total(self) -> int:
        """Every row deleted."""
        return self.messages + self.summaries + self.conversations


@dataclass(frozen=True, slots=True)
class CleanupReceipt:
    """Counts of the rows removed by retention cleanup.

    Attributes:
        cutoff: Messages created before this instant were deleted.
        messages: Messages deleted.
        summaries: Summaries deleted because they were derived from deleted messages.
        conversations: Conversation counters deleted because nothing was left in them.
    """

    cutoff: datetime
    messages: int
    summaries: int
    conversations: int
