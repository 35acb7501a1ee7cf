"""Research helpers: merge queries, de-duplicate sources by URL, fit them to a token budget."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from urllib.parse import urlsplit, urlunsplit

from ._schemas import SourceRef

__all__ = ["canonical_url", "dedupe_sources", "fit_sources", "merge_queries"]

_SNIPPET_CHARS = 1_200
_TRACKING = ("utm_", "fbclid", "gclid")


def merge_queries(*groups: Iterable[str], limit: int | None = None) -> list[str]:
    """Merge query lists in order, dropping case/whitespace duplicates and empty queries.

    Args:
        *groups: Query lists, highest priority first.
        limit: Keep at most this many.

    Returns:
        The merged queries.
    """
    seen: set[str] = set()
    out: list[str] = []
    for group in groups:
        for query in group:
            text = " ".join(query.split())
            key = text.lower()
            if text and key not in seen:
                seen.add(key)
                out.append(text)
    return out[:limit] if limit is not None else out


def canonical_url(url: str) -> str:
    """Normalise a URL for de-duplication: lower-case host, no fragment, no tracking params.

    Args:
        url: Any URL.

    Returns:
        The canonical form (``https://example.org/a`` for ``HTTPS://WWW.Example.org/a/#x``).
    """
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower().removeprefix("www.")
    query = "&".join(p for p in parts.query.split("&") if p and not p.lower().startswith(_TRACKING))
    path = parts.path.rstrip("/") or "/"
    scheme = "https" if parts.scheme in {"http", "https"} else parts.scheme
    return urlunsplit((scheme, host, path, query, ""))


def dedupe_sources(sources: Iterable[SourceRef]) -> list[SourceRef]:
    """Keep the first (best-ranked) source per canonical URL, in order.

    Args:
        sources: Sources in rank order.

    Returns:
        Sources with unique canonical URLs.
    """
    seen: set[str] = set()
    out: list[SourceRef] = []
    for source in sources:
        key = canonical_url(source.url)
        if key not in seen:
            seen.add(key)
            out.append(source)
    return out


def fit_sources(
    sources: Sequence[SourceRef],
    budget_tokens: int,
    count: Callable[[str], int],
    *,
    max_sources: int,
) -> list[SourceRef]:
    """Take ranked sources while they fit ``budget_tokens``, numbering them S1..Sn.

    Snippets are cut to a fixed length first so one long page cannot crowd out the rest.

    Args:
        sources: De-duplicated sources in rank order.
        budget_tokens: Tokens available for the rendered source block.
        count: Token counter of the generate model.
        max_sources: Upper bound on sources kept.

    Returns:
        The kept sources with ids ``S1``.. in rank order (provenance fields kept).
    """
    kept: list[SourceRef] = []
    used = 0
    for source in sources:
        if len(kept) >= max_sources:
            break
        snippet = source.snippet
        if len(snippet) > _SNIPPET_CHARS:
            snippet = snippet[:_SNIPPET_CHARS].rsplit(" ", 1)[0] + " …"
        candidate = source.model_copy(update={"id": f"S{len(kept) + 1}", "snippet": snippet})
        cost = count(f"[{candidate.id}] {candidate.title}\nURL: {candidate.url}\n{snippet}") + 2
        if used + cost > budget_tokens:
            continue  # a shorter, lower-ranked source may still fit
        kept.append(candidate)
        used += cost
    return kept
