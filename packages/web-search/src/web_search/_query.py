"""Query cleaning, domain filters and the cache key of a search."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass

from ._errors import InvalidQueryError
from ._types import Recency, site_of

__all__ = [
    "MAX_QUERY_CHARS",
    "CleanQuery",
    "SearchSpec",
    "check_text",
    "clean_query",
    "cut_on_word_boundary",
    "host_matches",
    "normalise_domain",
]

MAX_QUERY_CHARS = 70
"""z.ai's documented recommendation for ``search_query`` length."""

_SITE = re.compile(r"(?<!\S)(-?)site:(\S+)", re.IGNORECASE)
_DOMAIN = re.compile(r"^(\*\.)?([a-z0-9-]+\.)*[a-z0-9-]+$")
# Control characters count as whitespace: NUL cannot even be stored in PostgreSQL text.
_WS = re.compile(r"[\s\x00-\x1f\x7f]+")


def check_text(text: str, what: str) -> None:
    """Refuse text that cannot be sent or stored as UTF-8 (lone surrogates).

    Raises:
        InvalidQueryError: ``text`` holds a lone surrogate; the message gives its position.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidQueryError(
            f"{what} is not valid Unicode text (lone surrogate at position {exc.start})"
        ) from None


def normalise_domain(domain: str) -> str:
    """Lower-case a domain filter and strip scheme, path and ``www.``; keep a ``*.`` wildcard.

    Raises:
        InvalidQueryError: The value is not a domain (``*.gov`` and ``lao.ca.gov`` are).
    """
    if not isinstance(domain, str):
        raise InvalidQueryError(f"a domain filter must be a string, not {type(domain).__name__}")
    check_text(domain, "domain filter")
    text = domain.strip().lower()
    for prefix in ("https://", "http://"):
        if text.startswith(prefix):
            text = text[len(prefix) :]
    text = text.split("/", 1)[0].rstrip(".")
    if text.startswith("www."):
        text = text[4:]
    if not text or not _DOMAIN.match(text):
        raise InvalidQueryError(f"not a domain filter: {domain!r}")
    return text


def host_matches(url: str, domain: str) -> bool:
    """Whether ``url``'s host is ``domain`` or under it (``*.gov`` matches any ``.gov`` host)."""
    host = site_of(url)
    if domain.startswith("*."):
        suffix = domain[1:]
        return host.endswith(suffix)
    return host == domain or host.endswith("." + domain)


def cut_on_word_boundary(text: str, limit: int = MAX_QUERY_CHARS) -> str:
    """Shorten ``text`` to at most ``limit`` characters, cutting between words when possible."""
    if len(text) <= limit:
        return text
    head = text[: limit + 1]
    cut = head.rfind(" ")
    return (head[:cut] if cut > 0 else text[:limit]).rstrip()


@dataclass(frozen=True, slots=True)
class CleanQuery:
    """A query after cleaning.

    Attributes:
        full: Whitespace-collapsed query without ``site:`` operators (forms the cache key).
        sent: ``full`` cut to the 70-character recommendation on a word boundary.
        domains: Domains taken from ``site:`` operators.
    """

    full: str
    sent: str
    domains: tuple[str, ...]


def clean_query(query: str, limit: int = MAX_QUERY_CHARS) -> CleanQuery:
    """Collapse whitespace, turn ``site:`` operators into domain filters and cut to ``limit``.

    ``-site:`` (exclusion) operators are dropped: neither documented API takes an exclusion in
    the query, and sending them verbatim would search for the literal text.

    Raises:
        InvalidQueryError: Nothing searchable remains.
    """
    if not isinstance(query, str):
        raise InvalidQueryError(f"query must be a string, not {type(query).__name__}")
    check_text(query, "query")
    domains: list[str] = []

    def take(match: re.Match[str]) -> str:
        if not match.group(1):
            domains.append(normalise_domain(match.group(2)))
        return " "

    full = _WS.sub(" ", _SITE.sub(take, query)).strip()
    if not full:
        raise InvalidQueryError("query is empty once cleaned")
    return CleanQuery(full=full, sent=cut_on_word_boundary(full, limit), domains=tuple(domains))


@dataclass(frozen=True, slots=True)
class SearchSpec:
    """Everything that decides a search's answer; its ``key`` addresses the cache.

    Attributes:
        query: Cleaned query (see ``CleanQuery``).
        count: Results wanted.
        domains: Sorted, de-duplicated domain filters (exact and ``*.`` wildcards).
        recency: Recency window, or None.
        provider: The provider's cache namespace (name plus answer-changing settings).
    """

    query: CleanQuery
    count: int
    domains: tuple[str, ...]
    recency: Recency | None
    provider: str

    @property
    def key(self) -> str:
        """SHA-256 of the normalised parameters (query case- and space-folded)."""
        material = json.dumps(
            [
                1,
                self.provider,
                self.query.full.casefold(),
                list(self.domains),
                self.count,
                self.recency,
            ],
            ensure_ascii=False,
            separators=(",", ":"),
        )
        return hashlib.sha256(material.encode()).hexdigest()
