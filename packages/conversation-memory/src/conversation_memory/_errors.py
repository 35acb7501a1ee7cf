"""Errors raised by conversation-memory.

The hierarchy::

    ConversationMemoryError
    ├── InvalidMessageError            (also ValueError) bad input to save_message; nothing stored
    │   ├── InvalidRoleError           role is not user / assistant / system
    │   ├── EmptyContentError          content is empty or only whitespace
    │   └── ContentTooLargeError       content is longer than max_content_chars
    ├── InvalidIdentifierError         (also ValueError) user_id / conversation_id malformed
    ├── StoreError                     the backend failed; the operation did not happen
    │   ├── StoreUnavailableError      the backend could not be reached
    │   └── AccessDeniedError          row-level security refused the operation
    ├── SummarizationError             the summariser failed (history is left intact)
    └── MissingExtraError              (also ImportError) an optional backend is not installed
"""

from __future__ import annotations

__all__ = [
    "AccessDeniedError",
    "ContentTooLargeError",
    "ConversationMemoryError",
    "EmptyContentError",
    "InvalidIdentifierError",
    "InvalidMessageError",
    "InvalidRoleError",
    "MissingExtraError",
    "StoreError",
    "StoreUnavailableError",
    "SummarizationError",
]


class ConversationMemoryError(Exception):
    """Base class of every error raised by conversation-memory."""


class InvalidMessageError(ConversationMemoryError, ValueError):
    """A message was rejected before anything was stored."""


class InvalidRoleError(InvalidMessageError):
    """The role is not one of ``user``, ``assistant`` or ``system``."""


class EmptyContentError(InvalidMessageError):
    """The content is empty or whitespace only."""


class ContentTooLargeError(InvalidMessageError):
    """The content is longer than the configured ``max_content_chars``.

    Attributes:
        length: Length of the rejected content in characters.
        limit: The configured maximum.
    """

    def __init__(self, length: int, limit: int) -> None:
        super().__init__(
            f"message content is {length} characters; the limit is {limit} "
            "(raise max_content_chars or split the message)"
        )
        self.length = length
        self.limit = limit


class InvalidIdentifierError(ConversationMemoryError, ValueError):
    """A user or conversation identifier is malformed."""


class StoreError(ConversationMemoryError):
    """The storage backend failed; the operation did not take effect."""


class StoreUnavailableError(StoreError):
    """The storage backend could not be reached."""


class AccessDeniedError(StoreError):
    """Row-level security (or the backend's permissions) refused the operation."""


class SummarizationError(ConversationMemoryError):
    """Summarising older turns failed; the history is unchanged and will be retried."""


class MissingExtraError(ConversationMemoryError, ImportError):
    """An optional backend's dependencies are not installed.

    The message names the exact extra to install, e.g.
    ``uv add 'conversation-memory[postgres]'``.
    """

    def __init__(self, extra: str, missing: str) -> None:
        super().__init__(
            f"the {extra} backend needs the {missing!r} package: "
            f"install it with `uv add 'conversation-memory[{extra}]'` "
            f"(or `pip install 'conversation-memory[{extra}]'`)"
        )
        self.extra = extra
