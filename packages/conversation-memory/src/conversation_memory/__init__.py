"""Per-user chat history with rolling summaries, page context and strict isolation.

Example:
    >>> from conversation_memory import ConversationMemory, LocalMessageStore  # doctest: +SKIP
    >>> memory = ConversationMemory(LocalMessageStore(), user_id)
    >>> await memory.save_message("user", "Should I max out my Roth IRA?")
    >>> messages = await memory.get_context()
"""

from importlib.metadata import version as _version
from typing import TYPE_CHECKING

from conversation_memory._errors import (
    AccessDeniedError,
    ConfigurationError,
    ContentTooLargeError,
    ConversationMemoryError,
    EmptyContentError,
    InvalidIdentifierError,
    InvalidMessageError,
    InvalidRoleError,
    MissingExtraError,
    StoreCorruptError,
    StoreError,
    StoreUnavailableError,
    SummarizationError,
)
from conversation_memory._finance import (
    Holding,
    TaxProfile,
    portfolio_context,
    tax_planning_context,
)
from conversation_memory._memory import DEFAULT_CONVERSATION, ConversationMemory
from conversation_memory._models import (
    CleanupReceipt,
    ContextSnapshot,
    DeletionReceipt,
    Role,
    StoredMessage,
    Summary,
)
from conversation_memory._page_context import PageContextProvider, PageContextRegistry
from conversation_memory._stores._protocol import MessageStore
from conversation_memory._stores.local import LocalMessageStore
from conversation_memory._summarizer import ChatClient, LLMSummarizer, Summarizer

if TYPE_CHECKING:
    from conversation_memory._stores.postgres import PostgresMessageStore
    from conversation_memory._stores.supabase import SupabaseMessageStore

__version__ = _version("conversation-memory")


def __getattr__(name: str) -> object:
    # The PostgreSQL and Supabase backends load their drivers (optional extras) on first use.
    if name == "PostgresMessageStore":
        from conversation_memory._stores.postgres import PostgresMessageStore

        return PostgresMessageStore
    if name == "SupabaseMessageStore":
        from conversation_memory._stores.supabase import SupabaseMessageStore

        return SupabaseMessageStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DEFAULT_CONVERSATION",
    "AccessDeniedError",
    "ChatClient",
    "CleanupReceipt",
    "ConfigurationError",
    "ContentTooLargeError",
    "ContextSnapshot",
    "ConversationMemory",
    "ConversationMemoryError",
    "DeletionReceipt",
    "EmptyContentError",
    "Holding",
    "InvalidIdentifierError",
    "InvalidMessageError",
    "InvalidRoleError",
    "LLMSummarizer",
    "LocalMessageStore",
    "MessageStore",
    "MissingExtraError",
    "PageContextProvider",
    "PageContextRegistry",
    "PostgresMessageStore",
    "Role",
    "StoreCorruptError",
    "StoreError",
    "StoreUnavailableError",
    "StoredMessage",
    "SummarizationError",
    "Summarizer",
    "Summary",
    "SupabaseMessageStore",
    "TaxProfile",
    "__version__",
    "portfolio_context",
    "tax_planning_context",
]
