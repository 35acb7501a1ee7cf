"""Reading a provider's result list: one shape check, one link check, one text cleaner.

Every provider's answer passes through ``read_results`` at the response boundary, so a body of
unexpected shape becomes a ``ResponseFormatError`` (never a raw ``KeyError`` or ``TypeError``)
and a result whose link is not a usable web address never reaches a caller as a source.
"""

from __future__ import annotations

import functools
import logging
import math
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ._dates import parse_publish_date
from ._errors import ResponseFormatError
from ._types import SearchResult, site_of

__all__ = ["MAX_URL_CHARS", "ResultFields", "clean_text", "link_problem", "read_results"]

logger = logging.getLogger(__name__)

_SURROGATE = re.compile("[\ud800-\udfff]")
_UNSAFE_IN_LINK = re.compile(r"[\s\x00-\x1f\x7f]")

MAX_URL_CHARS = 2048
"""Longest link accepted as a source (what browsers and most servers reliably handle)."""


def clean_text(value: str) -> str:
    """``value`` storable anywhere: lone surrogates become U+FFFD, NUL characters are dropped.

    JSON allows ``"\\ud800"`` and ``"\\u0000"``; UTF-8 files, SQLite text and PostgreSQL
    ``jsonb`` accept neither, so an answer carrying them could never be cached.
    """
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = _SURROGATE.sub("\ufffd", value)
    return value.replace("\x00", "") if "\x00" in value else value


def link_problem(link: object) -> str | None:
    """Why ``link`` cannot be a source, or None when it is an absolute http(s) URL.

    Refused: anything but text, empty or overlong links, whitespace or control characters,
    schemes other than http and https (``javascript:``, ``data:``, ``file:``...), relative
    links, links without a host or with an invalid port, and links carrying credentials
    (``https://user:password@host``), which would hand a secret to whoever follows them.
    """
    if not isinstance(link, str):
        return "not text"
    return _text_link_problem(link)


@functools.lru_cache(maxsize=8192)  # pure; runs for every result parsed or read from L2
def _text_link_problem(link: str) -> str | None:
    if not link:
        return "empty"
    if len(link) > MAX_URL_CHARS:
        return "too long"
    if _UNSAFE_IN_LINK.search(link):
        return "whitespace or control characters"
    try:
        parts = urlsplit(link)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in range
    except ValueError:
        return "malformed"
    scheme = parts.scheme.lower()
    if not scheme:
        return "relative"
    if scheme not in ("http", "https"):
        return f"scheme {scheme[:20]!r}"
    if not parts.hostname:
        return "no host"
    if "@" in parts.netloc:
        return "credentials"
    return None


@dataclass(frozen=True, slots=True)
class ResultFields:
    """Where one API keeps each part of a result.

    Attributes:
        items: Top-level field holding the result list (``search_result``, ``results``).
        link: Field of the page's address (``link``, ``url``).
        title: Field of the page title.
        snippet: Field of the summary (``content``).
        date: Field of the publication date (``publish_date``, ``published_date``).
        icon: Field of the favicon address, if the API sends one.
        site: Field of the site name (z.ai ``media``), if any; else the link's host.
        score: Field of a numeric relevance score (Tavily ``score``), if any.
    """

    items: str
    link: str
    title: str = "title"
    snippet: str = "content"
    date: str | None = None
    icon: str | None = None
    site: str | None = None
    score: str | None = None


def _text(provider: str, where: str, item: dict[str, Any], name: str | None) -> str | None:
    if name is None:
        return None
    value = item.get(name)
    if value is None:
        return None
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise ResponseFormatError(
        f"{provider}: {where}.{name} is {type(value).__name__}, not text",
        provider=provider,
        status_code=200,
    )


def _score(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        score = float(value)
    except OverflowError:  # JSON integers are unbounded
        return None
    return score if math.isfinite(score) else None


def read_results(
    provider: str, query: str, data: dict[str, Any], fields: ResultFields
) -> list[SearchResult]:
    """The results of a decoded 200 answer, checked field by field.

    Args:
        provider: Provider name for messages and results.
        query: The query as sent (stored on each result).
        data: The decoded JSON object.
        fields: Where this API keeps each part of a result.

    Returns:
        Results ranked from 1; results whose link ``link_problem`` refuses are dropped, and
        their number is logged at WARNING (never the links themselves: they may hold
        credentials).

    Raises:
        ResponseFormatError: The result list is missing or not a list, an entry is not an
            object, or a text field holds something other than text.
    """
    items = data.get(fields.items)
    if not isinstance(items, list):
        state = "missing" if items is None else f"a {type(items).__name__}, not a list"
        raise ResponseFormatError(
            f"{provider}: {fields.items} is {state}", provider=provider, status_code=200
        )
    results: list[SearchResult] = []
    dropped: Counter[str] = Counter()
    for index, item in enumerate(items):
        where = f"{fields.items}[{index}]"
        if not isinstance(item, dict):
            raise ResponseFormatError(
                f"{provider}: {where} is {type(item).__name__}, not an object",
                provider=provider,
                status_code=200,
            )
        link = item.get(fields.link)
        problem = link_problem(link)
        if problem is not None:
            dropped[problem] += 1
            continue
        assert isinstance(link, str)  # link_problem refuses anything else
        title = _text(provider, where, item, fields.title) or ""
        snippet = _text(provider, where, item, fields.snippet) or ""
        raw_date = _text(provider, where, item, fields.date) or None
        icon = _text(provider, where, item, fields.icon) or None
        if icon is not None and link_problem(icon) is not None:
            icon = None  # an app may put it in <img src>: the same rule as for links
        site = _text(provider, where, item, fields.site) or site_of(link)
        score = _score(item.get(fields.score)) if fields.score else None
        results.append(
            SearchResult(
                title=title,
                url=link,
                snippet=snippet,
                site=site,
                published=parse_publish_date(raw_date),
                published_raw=raw_date,
                rank=len(results) + 1,
                provider=provider,
                query=query,
                icon=icon,
                score=score,
            )
        )
    if dropped:
        logger.warning(
            "%s: dropped %d of %d results with unusable links (%s)",
            provider,
            sum(dropped.values()),
            len(items),
            ", ".join(f"{reason}: {n}" for reason, n in sorted(dropped.items())),
        )
    return results
