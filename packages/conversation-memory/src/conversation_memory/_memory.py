"""ConversationMemory: one user's conversation, ready to hand to ``LLMClient.chat``."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Coroutine, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Concatenate, ParamSpec, TypeVar

from llm_client import Telemetry

from conversation_memory._errors import ConfigurationError, StoreError, SummarizationError
from conversation_memory._models import (
    CleanupReceipt,
    DeletionReceipt,
    StoredMessage,
    Summary,
    check_content,
    check_conversation_id,
    check_page,
    check_role,
    check_user_id,
)
from conversation_memory._page_context import PageContextProvider, PageContextRegistry
from conversation_memory._rolling import export_document, fold_turns, reach_newest_user_turn
from conversation_memory._stores._protocol import MessageStore
from conversation_memory._summarizer import Summarizer
from conversation_memory._tokens import content_tokens
from conversation_memory._tokens import exact_tokens as exact_count
from conversation_memory._window import (
    context_head,
    fit_history,
    summary_message,
    window_boundary,
)

__all__ = ["DEFAULT_CONVERSATION", "ConversationMemory"]

logger = logging.getLogger(__name__)

DEFAULT_CONVERSATION = "default"
"""Conversation id used when none is given: each user then has one continuing conversation."""


P = ParamSpec("P")
R = TypeVar("R")


def _traced(
    name: str,
) -> Callable[
    [Callable[Concatenate[ConversationMemory, P], Coroutine[Any, Any, R]]],
    Callable[Concatenate[ConversationMemory, P], Coroutine[Any, Any, R]],
]:
    """Run the method inside a span ``name`` (a child of the caller's, parent of LLM calls)."""

    def decorate(
        method: Callable[Concatenate[ConversationMemory, P], Coroutine[Any, Any, R]],
    ) -> Callable[Concatenate[ConversationMemory, P], Coroutine[Any, Any, R]]:
        @functools.wraps(method)
        async def traced(memory: ConversationMemory, /, *args: P.args, **kwargs: P.kwargs) -> R:
            with memory._telemetry.span("conversation_memory", name):
                return await method(memory, *args, **kwargs)

        return traced

    return decorate


class ConversationMemory:
    """One user's conversation: save turns, then build the context for the next model call.

    Example:
        >>> memory = ConversationMemory(LocalMessageStore(), user_id)  # doctest: +SKIP
        >>> await memory.save_message("user", "How is my portfolio doing?", page="portfolio")
        >>> reply = await llm.chat(await memory.get_context(page="portfolio"), model="test")
        >>> await memory.save_message("assistant", reply, page="portfolio")
    """

    def __init__(
        self,
        store: MessageStore,
        user_id: object,
        conversation_id: object = None,
        *,
        system_prompt: str | None = None,
        max_messages: int = 20,
        max_context_tokens: int = 8_000,
        summarizer: Summarizer | None = None,
        summary_threshold: int = 20,
        summary_batch: int = 200,
        summary_timeout: float = 10.0,
        summary_retry_interval: float = 60.0,
        auto_summarize: bool = True,
        page_contexts: PageContextRegistry | None = None,
        page_context_timeout: float = 2.0,
        max_content_chars: int = 32_000,
        token_model: str | None = None,
        exact_tokens: bool = False,
        telemetry: Telemetry | None = None,
    ) -> None:
        """Bind a store to one user's conversation.

        Args:
            store: Where messages live (local, PostgreSQL or Supabase backend).
            user_id: The user's UUID (Supabase's ``auth.uid()``).
            conversation_id: Conversation to use; None means the user's default conversation.
            system_prompt: Prepended to every context, if given.
            max_messages: Most recent messages included in a context.
            max_context_tokens: Token budget of the whole context (system prompt, page context,
                summary and messages); the newest user turn is kept even past it.
            summarizer: Writes rolling summaries of aged-out turns (None: no summaries).
            summary_threshold: Aged-out, unsummarised messages that trigger a summary update.
            summary_batch: Most aged-out messages folded into the summary in one update.
            summary_timeout: Seconds a summary update may take inside ``get_context``.
            summary_retry_interval: Seconds to wait after a failed update before trying again.
            auto_summarize: Update the summary inside ``get_context`` when due. Set False to keep
                the model call off the request path and run ``summarize(force=False)`` after
                the reply instead (e.g. in a FastAPI background task).
            page_contexts: A registry of page-context providers shared across users.
            page_context_timeout: Default seconds a provider registered here may take.
            max_content_chars: Longest message content accepted by ``save_message``.
            token_model: Model whose tokenizer counts tokens when ``exact_tokens`` is set
                (None: cl100k_base).
            exact_tokens: Count tokens exactly with llm-client's offline tokenizer (loads
                tiktoken's tables, several MB, on first use). False (default): a cheap count
                that never undercounts (the UTF-8 length), so contexts stay within
                ``max_context_tokens`` and may hold fewer messages than an exact count allows.
            telemetry: Where spans of ``save_message``, ``get_context`` and ``summarize`` go
                (an ``llm_client.Telemetry``; give the LLM client's, ``llm.telemetry``, for one
                setting everywhere). None: the global tracer provider when
                ``opentelemetry-api`` is installed (the ``[otel]`` extra), else none.

        Raises:
            InvalidIdentifierError: If ``user_id`` is not a UUID or ``conversation_id`` is
                malformed.
            ConfigurationError: If a limit is not positive (also a ValueError).
        """
        for name, value in (
            ("max_messages", max_messages),
            ("max_context_tokens", max_context_tokens),
            ("summary_threshold", summary_threshold),
            ("summary_batch", summary_batch),
            ("max_content_chars", max_content_chars),
        ):
            if value < 1:
                raise ConfigurationError(f"{name} must be at least 1, got {value}")
        self.store = store
        self.user_id = check_user_id(user_id)
        self.conversation_id = check_conversation_id(
            DEFAULT_CONVERSATION if conversation_id is None else conversation_id
        )
        self.system_prompt = system_prompt
        self.max_messages = max_messages
        self.max_context_tokens = max_context_tokens
        self.summarizer = summarizer
        self.summary_threshold = summary_threshold
        self.summary_batch = summary_batch
        self.summary_timeout = summary_timeout
        self.summary_retry_interval = summary_retry_interval
        self.auto_summarize = auto_summarize
        self.max_content_chars = max_content_chars
        self.token_model = token_model
        self.exact_tokens = exact_tokens
        self._shared_pages = page_contexts
        self._own_pages = PageContextRegistry(timeout=page_context_timeout)
        self._summary_retry_at = 0.0
        self._telemetry = telemetry if telemetry is not None else Telemetry()

    def __repr__(self) -> str:
        return (
            f"ConversationMemory(store={type(self.store).__name__}, user_id={self.user_id!r}, "
            f"conversation_id={self.conversation_id!r})"
        )

    # -- page context -------------------------------------------------------------------

    def page_context(
        self, page: str, *, timeout: float | None = None
    ) -> Callable[[PageContextProvider], PageContextProvider]:
        """Decorator registering an async provider of context for ``page`` on this memory.

        Args:
            page: Page name passed to :meth:`get_context`, e.g. ``"portfolio"``.
            timeout: Seconds the provider may take (default ``page_context_timeout``).

        Returns:
            A decorator that registers the function and returns it unchanged.

        Example:
            >>> @memory.page_context("portfolio")  # doctest: +SKIP
            ... async def holdings(user_id: str) -> str:
            ...     return "The user holds 10 VTI."
        """
        return self._own_pages.provider(page, timeout=timeout)

    def add_page_context(
        self, page: str, provider: PageContextProvider, *, timeout: float | None = None
    ) -> None:
        """Register ``provider`` for ``page`` (the non-decorator form of :meth:`page_context`)."""
        self._own_pages.register(page, provider, timeout=timeout)

    async def _page_texts(self, page: str | None) -> list[str]:
        if page is None:
            return []
        own, shared = await asyncio.gather(
            self._own_pages.gather(page, self.user_id),
            self._shared_pages.gather(page, self.user_id)
            if self._shared_pages is not None
            else _nothing(),
        )
        return [*shared, *own]

    # -- writing ------------------------------------------------------------------------

    @_traced("conversation_memory.save_message")
    async def save_message(self, role: str, content: str, page: str | None = None) -> StoredMessage:
        """Append a turn to the conversation.

        Args:
            role: ``user``, ``assistant`` or ``system``.
            content: The text (not empty, at most ``max_content_chars`` characters).
            page: The page the user is on, recorded with the message.

        Returns:
            The stored message with the sequence number the store assigned.

        Raises:
            InvalidRoleError: For any other role.
            EmptyContentError: For empty or whitespace-only content.
            ContentTooLargeError: For content longer than ``max_content_chars``.
            InvalidMessageError: For a non-string content or a malformed page name.
            StoreUnavailableError: If the backend could not be reached. Nothing was stored,
                unless its ``maybe_stored`` is True: the connection broke after the write was
                sent, so check the history before saving the message again.
            StoreError: If the backend failed otherwise (nothing was stored).
        """
        checked_role = check_role(role)
        check_content(content, self.max_content_chars)
        check_page(page)
        if self.exact_tokens and len(content) > 2_000:
            # Long texts take milliseconds to encode: keep the event loop free.
            tokens = await asyncio.to_thread(exact_count, content, self.token_model)
        else:
            tokens = content_tokens(content, self.token_model, exact=self.exact_tokens)
        return await self.store.append(
            self.user_id, self.conversation_id, checked_role, content, page, tokens
        )

    # -- reading ------------------------------------------------------------------------

    @_traced("conversation_memory.get_context")
    async def get_context(self, page: str | None = None) -> list[dict[str, str]]:
        """Build the messages for the next model call.

        In order: the system prompt, the page's context, the rolling summary of older turns,
        then the most recent messages that fit ``max_messages`` and ``max_context_tokens``
        (whole messages only; the newest user turn is always kept). When enough turns have aged
        out of the window, the summariser folds them into the summary first; if it fails, the
        failure is logged and the context is built with the previous summary.

        Args:
            page: The page the user is on (selects page-context providers).

        Returns:
            OpenAI-style messages, ready for ``LLMClient.chat``.

        Raises:
            StoreError: If the backend failed.
        """
        snapshot, page_texts = await asyncio.gather(
            self.store.load_context(self.user_id, self.conversation_id, self.max_messages),
            self._page_texts(page),
        )
        recent = await self._ensure_user_turn(snapshot.recent)
        head = context_head(self.system_prompt, page, page_texts)
        summary = snapshot.summary
        window = self._window(recent, head, summary)
        if self._summary_due(summary, window, recent):
            try:
                async with asyncio.timeout(self.summary_timeout):
                    updated = await self._fold(
                        summary, window_boundary(window, recent), automatic=True
                    )
            except (SummarizationError, StoreError, TimeoutError) as exc:
                # The context can be built without the update: never fail the chat turn for it.
                self._summary_retry_at = time.monotonic() + self.summary_retry_interval
                logger.warning(
                    "summary update for conversation %r failed (%s); history kept, will retry",
                    self.conversation_id,
                    "timed out" if isinstance(exc, TimeoutError) else exc,
                )
            else:
                if updated is not None:
                    summary = updated
                    window = self._window(recent, head, summary)
        context = list(head)
        if summary is not None:
            context.append(summary_message(summary))
        context.extend(m.to_chat() for m in window)
        return context

    def _window(
        self,
        recent: Sequence[StoredMessage],
        head: Sequence[dict[str, str]],
        summary: Summary | None,
    ) -> list[StoredMessage]:
        return fit_history(
            recent,
            head,
            summary,
            max_messages=self.max_messages,
            max_context_tokens=self.max_context_tokens,
            token_model=self.token_model,
            exact=self.exact_tokens,
        )

    async def _ensure_user_turn(self, recent: list[StoredMessage]) -> list[StoredMessage]:
        return await reach_newest_user_turn(
            self.store, self.user_id, self.conversation_id, recent, self.max_messages
        )

    async def history(self, limit: int = 50, before: int | None = None) -> list[StoredMessage]:
        """Read stored messages, newest ``limit`` first page, returned oldest first.

        Args:
            limit: Most messages to return (1-1000).
            before: Only messages with ``seq`` below this (pass the first message's ``seq`` of
                the previous page to page backwards).

        Returns:
            Messages oldest first.
        """
        if not 1 <= limit <= 1000:
            raise ValueError(f"limit must be between 1 and 1000, got {limit}")
        return await self.store.history(self.user_id, self.conversation_id, limit, before)

    # -- summaries ----------------------------------------------------------------------

    def _summary_due(
        self,
        summary: Summary | None,
        window: Sequence[StoredMessage],
        recent: Sequence[StoredMessage],
    ) -> bool:
        if (
            self.summarizer is None
            or not self.auto_summarize
            or time.monotonic() < self._summary_retry_at
        ):
            return False
        covered = summary.covers_up_to_seq if summary is not None else 0
        # seq has no gaps except where retention deleted old rows, so this is an upper bound.
        return window_boundary(window, recent) - 1 - covered >= self.summary_threshold

    @_traced("conversation_memory.summarize")
    async def summarize(self, *, force: bool = True) -> Summary | None:
        """Fold the turns older than the current window into the rolling summary now.

        Args:
            force: Fold whatever has aged out; with False, only when at least
                ``summary_threshold`` turns have (what ``get_context`` does automatically).

        Returns:
            The new summary, or None when nothing new has aged out (or a concurrent writer
            stored the same version first).

        Raises:
            SummarizationError: If no summariser is configured or the summariser failed; the
                history is unchanged.
            StoreError: If the backend failed.
        """
        if self.summarizer is None:
            raise SummarizationError("no summarizer configured for this ConversationMemory")
        snapshot = await self.store.load_context(
            self.user_id, self.conversation_id, self.max_messages
        )
        recent = await self._ensure_user_turn(snapshot.recent)
        window = self._window(recent, context_head(self.system_prompt, None, []), snapshot.summary)
        return await self._fold(
            snapshot.summary, window_boundary(window, recent), automatic=not force
        )

    async def _fold(
        self, summary: Summary | None, before_seq: int, *, automatic: bool
    ) -> Summary | None:
        assert self.summarizer is not None
        return await fold_turns(
            self.store,
            self.summarizer,
            self.user_id,
            self.conversation_id,
            summary,
            before_seq=before_seq,
            batch=self.summary_batch,
            min_turns=self.summary_threshold if automatic else 1,
        )

    # -- user data ----------------------------------------------------------------------

    async def export(self) -> dict[str, Any]:
        """Everything stored for this user, in every conversation, as a JSON-able dict.

        Returns:
            ``{"user_id", "exported_at", "conversations": [{"conversation_id", "messages",
            "summaries"}]}`` with timestamps in ISO 8601.
        """
        messages, summaries = await self.store.export_user(self.user_id)
        return export_document(self.user_id, messages, summaries)

    async def delete(self) -> DeletionReceipt:
        """Delete everything stored for this user, in every conversation.

        Returns:
            A receipt with the number of messages, summaries and conversations removed.
        """
        receipt = await self.store.delete_user(self.user_id)
        logger.info(
            "deleted user data: %d messages, %d summaries, %d conversations",
            receipt.messages,
            receipt.summaries,
            receipt.conversations,
        )
        return receipt

    async def cleanup(self, older_than: timedelta = timedelta(days=90)) -> CleanupReceipt:
        """Retention: delete messages older than ``older_than`` and summaries derived from them.

        This is store-wide on owner/service-role stores (run it from a scheduled job); on stores
        that apply row-level security it can only reach this user's rows.

        Args:
            older_than: Age past which messages are deleted (default 90 days).

        Returns:
            Counts of what was deleted.
        """
        if older_than < timedelta(0):
            raise ValueError("older_than must not be negative")
        cutoff = datetime.now(UTC) - older_than
        return await self.store.cleanup(cutoff, user_id=self.user_id)


async def _nothing() -> list[str]:
    return []
