"""Choosing which recent messages fit the context: whole messages only, newest user turn kept."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from conversation_memory._models import StoredMessage, Summary
from conversation_memory._tokens import REPLY_PRIMING, content_tokens, message_tokens

__all__ = [
    "context_head",
    "fit_history",
    "select_window",
    "summary_message",
    "window_boundary",
]

T = TypeVar("T")


def select_window(
    messages: Sequence[T],
    *,
    cost: Callable[[T], int],
    is_user: Callable[[T], bool],
    max_messages: int,
    budget: int,
) -> list[T]:
    """Pick the longest suffix of ``messages`` that fits both limits.

    The suffix always reaches back to the newest user message, even when that alone breaks a
    limit: answering without the question is worse than a context that runs long. Messages are
    never cut; a message that does not fit ends the window.

    Args:
        messages: History, oldest first.
        cost: Tokens a message costs in the request.
        is_user: Whether a message is a user turn.
        max_messages: Most messages to keep (beyond the required suffix).
        budget: Most tokens to spend (beyond the required suffix).

    Returns:
        The chosen suffix, oldest first.
    """
    required_from = len(messages)
    for index in range(len(messages) - 1, -1, -1):
        if is_user(messages[index]):
            required_from = index
            break
    start = len(messages)
    used = 0
    while start > 0:
        candidate = start - 1
        tokens = cost(messages[candidate])
        if candidate < required_from and (
            len(messages) - candidate > max_messages or used + tokens > budget
        ):
            break
        used += tokens
        start = candidate
    return list(messages[start:])


_PAGE_HEADER = "Context from the page the user is viewing ({page}):"
_SUMMARY_HEADER = "Summary of the earlier conversation:"


def context_head(
    system_prompt: str | None, page: str | None, page_texts: Sequence[str]
) -> list[dict[str, str]]:
    """The fixed start of a context: the system prompt, then the page's context."""
    head = []
    if system_prompt:
        head.append({"role": "system", "content": system_prompt})
    if page_texts:
        text = "\n\n".join([_PAGE_HEADER.format(page=page), *page_texts])
        head.append({"role": "system", "content": text})
    return head


def summary_message(summary: Summary) -> dict[str, str]:
    """The rolling summary as a system message."""
    return {"role": "system", "content": f"{_SUMMARY_HEADER}\n{summary.summary}"}


def fit_history(
    recent: Sequence[StoredMessage],
    head: Sequence[dict[str, str]],
    summary: Summary | None,
    *,
    max_messages: int,
    max_context_tokens: int,
    token_model: str | None,
    exact: bool = False,
) -> list[StoredMessage]:
    """The recent messages that fit next to ``head`` and ``summary`` (see :func:`select_window`).

    Messages already folded into the summary are left out (they would be said twice), except
    that the newest user turn is always kept.
    """
    fixed = REPLY_PRIMING + sum(
        message_tokens(content_tokens(m["content"], token_model, exact=exact)) for m in head
    )
    candidates = list(recent)
    if summary is not None:
        candidates = [m for m in recent if m.seq > summary.covers_up_to_seq]
        users = [i for i, m in enumerate(recent) if m.role == "user"]
        if users and recent[users[-1]].seq <= summary.covers_up_to_seq:
            candidates = list(recent[users[-1] :])
        text = summary_message(summary)["content"]
        fixed += message_tokens(content_tokens(text, token_model, exact=exact))
    return select_window(
        candidates,
        cost=lambda m: message_tokens(m.token_count),
        is_user=lambda m: m.role == "user",
        max_messages=max_messages,
        budget=max_context_tokens - fixed,
    )


def window_boundary(window: Sequence[StoredMessage], recent: Sequence[StoredMessage]) -> int:
    """Sequence number of the oldest message still in the window (turns before it aged out)."""
    if window:
        return window[0].seq
    return recent[-1].seq + 1 if recent else 1
