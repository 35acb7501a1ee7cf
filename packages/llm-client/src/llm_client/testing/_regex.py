"""Generate a string matching a regular expression (for JSON schema ``pattern``)."""

from __future__ import annotations

import importlib
import re
from typing import Any

__all__ = ["string_matching"]

_RE_PARSER: Any = importlib.import_module("re._parser")  # the stdlib has no public regex parser
_RE_CONST: Any = importlib.import_module("re._constants")


def string_matching(pattern: str, min_length: int = 0, max_length: int | None = None) -> str | None:
    """Return a short string that ``re.search(pattern)`` accepts, within the length bounds.

    Renders the regex's parse tree with the first alternative, the first character of each class
    and the minimum repeats (then more repeats until long enough); ``None`` when that fails.
    """
    try:
        compiled = re.compile(pattern)
        parsed = _RE_PARSER.parse(pattern)
    except re.error:
        return None
    for extra in range(max(min_length, 1) + 1):
        text = _render(parsed, extra)
        fits = len(text) >= min_length and (max_length is None or len(text) <= max_length)
        if fits and compiled.search(text):
            return text
    return None


def _render(parsed: Any, extra: int) -> str:
    out: list[str] = []
    c = _RE_CONST
    for op, arg in parsed:
        if op is c.LITERAL:
            out.append(chr(arg))
        elif op is c.NOT_LITERAL:
            out.append("a" if arg != ord("a") else "b")
        elif op is c.ANY:
            out.append("a")
        elif op is c.IN:
            out.append(_render_in(arg))
        elif op in (c.MAX_REPEAT, c.MIN_REPEAT, getattr(c, "POSSESSIVE_REPEAT", None)):
            low, high, sub = arg
            count = low + extra if high is c.MAXREPEAT else min(low + extra, high)
            out.append("".join(_render(sub, extra) for _ in range(count)))
        elif op is c.SUBPATTERN:
            out.append(_render(arg[-1], extra))
        elif op is c.BRANCH:
            out.append(_render(arg[1][0], extra))
        elif op is c.CATEGORY:
            out.append(_render_category(arg))
        elif op is getattr(c, "ATOMIC_GROUP", None):
            out.append(_render(arg, extra))
        # AT (anchors), ASSERT/ASSERT_NOT (lookarounds), GROUPREF: nothing to emit; the final
        # re.search check rejects the rare pattern this naive rendering does not satisfy.
    return "".join(out)


def _render_in(items: list[tuple[Any, Any]]) -> str:
    c = _RE_CONST
    negated = any(op is c.NEGATE for op, _ in items)
    if negated:
        excluded = {chr(a) for op, a in items if op is c.LITERAL}
        return next(ch for ch in "ax0_" if ch not in excluded)
    op, arg = items[0]
    if op is c.LITERAL:
        return chr(arg)
    if op is c.RANGE:
        return chr(arg[0])
    if op is c.CATEGORY:
        return _render_category(arg)
    return "a"


def _render_category(category: Any) -> str:
    name = str(category).lower()
    choices = {"not_digit": "a", "digit": "0", "not_word": "-", "word": "a", "not_space": "a"}
    for key, char in choices.items():
        if key in name:
            return char
    return " "  # CATEGORY_SPACE and anything unforeseen; re.search has the last word
