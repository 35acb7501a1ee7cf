"""Errors raised by conversation-memory.

The hierarchy::

    ConversationMemoryError
    ├── InvalidMessageError            (also ValueError) bad input to save_message; nothing stored
    │   ├── InvalidRoleError           role is not user / assistant / system
    │   ├── EmptyContentError          content is empty or only whitespace
    │   └── ContentTooLargeError       content is longer than max_content_chars
    ├── InvalidIdentifierError         (also ValueError) user_id / conversation_id malformed
    ├── ConfigurationError             (also ValueError) a store was set up wrongly (bad URL)
    ├── StoreError                     the backend failed; the operation did not happen
    │   ├── StoreUnavailableError      unreachable, timed out, circuit breaker open, closed
    │   ├── StoreCorruptError          the local file is not a valid database (names the file)
    │   └── AccessDeniedError          row-level security refused the operation
    ├── SummarizationError             the summariser failed (history is left intact)
    └── MissingExtraError              (also ImportError) an optional backend is not installed
"""

from __future__ import annotations

__all__ = [
    "AccessDeniedError",
    "ConfigurationError",
    "ContentTooLargeError",
    "ConversationMemoryError",
    "EmptyContentError",
    "InvalidIdentifierError",
    "InvalidMessageError",
    "InvalidRoleError",
    "MissingExtraError",
    "StoreCorruptError",
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


class ConfigurationError(ConversationMemoryError, ValueError):
    """A store or memory was configured wrongly (e.g. a connection string that cannot be parsed).

    Messages never repeat a connection string or key.
    """


class StoreError(ConversationMemoryError):
    """The storage backend failed; the operation did not take effect."""


class StoreUnavailableError(StoreError):
    """The storage backend could not be reached (or the store is closed).

    Attributes:
        maybe_stored: True when a write was already on its way to the database when the
            connection broke: the database may have applied it although no answer came back.
            Check (e.g. ``await memory.history(limit=1)``) before saving the message again.
            False: the write never reached the database, so retrying it is safe.
    """

    def __init__(self, message: str, *, maybe_stored: bool = False) -> None:
        super().__init__(message)
        self.maybe_stored = maybe_stored


class StoreCorruptError(StoreError):
    """The local database file is not a valid SQLite database (or is damaged).

    The message names the file and how to recover: move it aside and a new one is created.

    Attributes:
        path: The file that could not be read.
    """

    def __init__(self, path: str, detail: str) -> None:
        super().__init__(
            f"{path} is not a valid conversation-memory database ({detail}): move it aside "
            "(keep it if you want to try recovering its messages); it will be recreated empty "
            "on the next start"
        )
        self.path = path


class AccessDeniedError(StoreError):
    """Row-level security (or the backend's permissions) refused the operation."""


class SummarizationError(ConversationMemoryError):
    """Summarising older turns failed; the history is unchanged and will be retried."""


class MissingExtraError(ConversationMemoryError, ImportError):
    """An optional backend's dependencies are not installed.

    The message names the exact extra to install, e.g. "PostgresMessageStore needs the
    'postgres' extra: pip install 'conversation-memory[postgres]'".

    Attributes:
        package: The distribution that has the extra (``conversation-memory``).
        extra: The extra to install (``postgres`` or ``supabase``).
    """

    def __init__(self, feature: str, extra: str, *, missing: str | None = None) -> None:
        cause = f" ({missing!r} is not installed)" if missing else ""
        super().__init__(
            f"{feature} needs the {extra!r} extra: pip install '{_PACKAGE}[{extra}]' "
            f"(or uv add '{_PACKAGE}[{extra}]'){cause}",
            name=missing,
        )
        self.package = _PACKAGE
        self.extra = extra


_PACKAGE = "conversation-memory"
