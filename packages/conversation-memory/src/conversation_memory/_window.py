"""Choosing which recent messages fit the context: whole messages only, newest user turn kept."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

__all__ = ["select_window"]

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
