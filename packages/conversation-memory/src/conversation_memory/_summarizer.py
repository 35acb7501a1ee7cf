"""Folding aged-out turns into a rolling summary with a cheap model."""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, Final, Protocol, runtime_checkable

from conversation_memory._models import StoredMessage

__all__ = ["ChatClient", "LLMSummarizer", "Summarizer"]

_INSTRUCTIONS: Final = (
    "You maintain the running summary of a conversation between a user and a financial "
    "assistant. Merge the earlier summary (if any) with the new turns into one updated summary. "
    "Keep facts the assistant will need later: the user's goals, figures they gave (amounts, "
    "dates, accounts), decisions, open questions and preferences. Drop small talk. Write plain "
    "prose in the third person, at most {words} words. Reply with the summary only."
)


@runtime_checkable
class Summarizer(Protocol):
    """Writes the next version of a rolling summary.

    Implementations receive the previous summary and only the turns that aged out since, so
    summaries are updated incrementally instead of re-read from the start.
    """

    @property
    def model_name(self) -> str | None:
        """Name of the model, stored with each summary (None if not a model)."""
        ...

    async def summarize(self, previous: str | None, messages: Sequence[StoredMessage]) -> str:
        """Return the updated summary.

        Args:
            previous: The current summary, or None for the first one.
            messages: The newly aged-out turns, oldest first.

        Returns:
            The new summary text (must not be empty).
        """
        ...


class ChatClient(Protocol):
    """The part of ``llm_client.LLMClient`` the summariser uses."""

    async def chat(
        self,
        messages: list[dict[str, Any]],
        model: Any = None,
        *,
        max_tokens: int | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - mirrors LLMClient.chat
        step: str | None = None,
        api_base: str | None = None,
    ) -> str:
        """Send chat messages and return the reply text."""
        ...


class LLMSummarizer:
    """A :class:`Summarizer` that asks a (cheap) model through ``llm_client.LLMClient``.

    It remembers its most recent replies by prompt: when a summary was paid for but could not
    be stored (the database was down), the retry with the same earlier summary and the same
    turns reuses that reply instead of paying for it again.

    Example:
        >>> async with LLMClient() as llm:  # doctest: +SKIP
        ...     summarizer = LLMSummarizer(llm, model="openrouter/google/gemini-flash-1.5")
    """

    def __init__(
        self,
        client: ChatClient,
        model: Any,
        *,
        max_words: int = 250,
        max_tokens: int | None = 600,
        timeout: float | None = None,
        step: str = "conversation_summary",
        api_base: str | None = None,
        remember: int = 256,
    ) -> None:
        """Create the summariser.

        Args:
            client: An ``LLMClient`` (anything with its ``chat`` method).
            model: Model string (or an ``llm_client.testing.TestModel``) for summaries.
            max_words: Length the model is asked to keep the summary under.
            max_tokens: Output-token cap passed to the model.
            timeout: Seconds per HTTP attempt (None: the client's default).
            step: Step name reported to the cost sink.
            api_base: Base URL of an OpenAI-compatible server, for ``openai/<name>`` models.
            remember: Most recent replies kept (by prompt) so a summary whose save failed is
                not paid for twice; 0 keeps none.
        """
        self._client = client
        self._model = model
        self._max_words = max_words
        self._max_tokens = max_tokens
        self._step = step
        self._timeout = timeout
        self._api_base = api_base
        self._remember = remember
        self._recent: OrderedDict[str, str] = OrderedDict()

    @property
    def model_name(self) -> str | None:
        """The model string (or the test model's name)."""
        if isinstance(self._model, str):
            return self._model
        return str(getattr(self._model, "name", type(self._model).__name__))

    def build_prompt(
        self, previous: str | None, messages: Sequence[StoredMessage]
    ) -> list[dict[str, Any]]:
        """The chat messages sent to the model (exposed so apps can inspect or log them)."""
        turns = "\n".join(f"{m.role}: {m.content}" for m in messages)
        earlier = previous if previous else "(none yet)"
        return [
            {"role": "system", "content": _INSTRUCTIONS.format(words=self._max_words)},
            {
                "role": "user",
                "content": f"Earlier summary:\n{earlier}\n\nNew turns:\n{turns}",
            },
        ]

    async def summarize(self, previous: str | None, messages: Sequence[StoredMessage]) -> str:
        """Ask the model for the updated summary.

        Args:
            previous: The current summary, or None.
            messages: The newly aged-out turns, oldest first.

        Returns:
            The new summary, stripped.

        Raises:
            ValueError: If the model returned no text.
        """
        prompt = self.build_prompt(previous, messages)
        key = hashlib.sha256(
            json.dumps([self.model_name, prompt], ensure_ascii=False).encode("utf-8", "replace")
        ).hexdigest()
        if key in self._recent:
            self._recent.move_to_end(key)
            return self._recent[key]
        reply = await self._client.chat(
            prompt,
            self._model,
            step=self._step,
            max_tokens=self._max_tokens,
            timeout=self._timeout,
            api_base=self._api_base,
        )
        text = str(reply).strip() if reply is not None else ""
        if not text:
            raise ValueError("the summary model returned an empty reply")
        if self._remember > 0:
            self._recent[key] = text
            while len(self._recent) > self._remember:
                self._recent.popitem(last=False)
        return text
