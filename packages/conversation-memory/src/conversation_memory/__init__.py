"""Per-user chat history with rolling summaries, page context and strict isolation.

Example:
    >>> from conversation_memory import ConversationMemory, LocalMessageStore  # doctest: +SKIP
    >>> memory = ConversationMemory(LocalMessageStore(), user_id)
    >>> await memory.save_message("user", "Should I max out my Roth IRA?")
    >>> messages = await memory.get_context()
"""

from importlib.metadata import version as _version

from conversation_memory._errors import (
    AccessDeniedError,
    ContentTooLargeError,
    ConversationMemoryError,
    EmptyContentError,
    InvalidIdentifierError,
    InvalidMessageError,
    InvalidRoleError,
    MissingExtraError,
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
from conversation_memory._store import MessageStore
from conversation_memory._stores.local import LocalMessageStore
from conversation_memory._stores.postgres import PostgresMessageStore
from conversation_memory._stores.supabase import SupabaseMessageStore
from conversation_memory._summarizer import ChatClient, LLMSummarizer, Summarizer

__version__ = _version("conversation-memory")

__all__ = [
    "DEFAULT_CONVERSATION",
    "AccessDeniedError",
    "ChatClient",
    "CleanupReceipt",
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
