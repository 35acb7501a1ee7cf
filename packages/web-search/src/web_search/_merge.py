"""Planning one search into upstream calls, and merging their answers."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from urllib.parse import urlsplit, urlunsplit

from ._query import host_matches
from ._types import SearchResult

__all__ = ["merge_results", "normalise_url", "plan_domain_groups"]


def plan_domain_groups(domains: Sequence[str], max_per_call: int | None) -> list[tuple[str, ...]]:
    """Domain filters of each upstream call for one search.

    Exact domains go into the API's filter, ``max_per_call`` per call (z.ai: one). A wildcard
    such as ``*.gov`` cannot be expressed in either API's filter, so any wildcard adds one
    unfiltered call whose links are post-filtered. No domains at all: one unfiltered call.
    """
    exact = [d for d in domains if not d.startswith("*.")]
    groups: list[tuple[str, ...]] = []
    if exact:
        step = max_per_call or len(exact)
        groups = [tuple(exact[i : i + step]) for i in range(0, len(exact), step)]
    if not domains or len(exact) < len(domains):
        groups.append(())
    return groups


@functools.lru_cache(maxsize=8192)  # pure; called for every result of every search
def normalise_url(url: str) -> str:
    """URL identity for de-duplication: host case-folded; ``www.``, fragment, end slash dropped."""
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower().removeprefix("www.")
    if parts.port and parts.port not in (80, 443):
        host = f"{host}:{parts.port}"
    path = parts.path.rstrip("/") or "/"
    return urlunsplit(
        (
            "https" if parts.scheme in ("http", "https") else parts.scheme,
            host,
            path,
            parts.query,
            "",
        )
    )


def _allowed(result: SearchResult, group: tuple[str, ...], domains: Sequence[str]) -> bool:
    if group:
        return any(host_matches(result.url, d) for d in group)
    wildcards = [d for d in domains if d.startswith("*.")]
    if not domains:
        return True
    return any(host_matches(result.url, d) for d in wildcards)


def merge_results(
    answers: Sequence[tuple[tuple[str, ...], list[SearchResult]]],
    domains: Sequence[str],
    count: int,
) -> list[SearchResult]:
    """Post-filter each call's results to its domains, interleave calls by rank, de-duplicate.

    Interleaving (first of every call, then second, ...) keeps every requested domain
    represented when the merged list is cut to ``count``. Ranks are renumbered from 1.
    """
    kept = [[r for r in results if _allowed(r, group, domains)] for group, results in answers]
    merged: list[SearchResult] = []
    seen: set[str] = set()
    depth = max((len(k) for k in kept), default=0)
    for position in range(depth):
        for results in kept:
            if position >= len(results):
                continue
            result = results[position]
            identity = normalise_url(result.url)
            if identity in seen:
                continue
            seen.add(identity)
            merged.append(result)
            if len(merged) == count:
                return [r.model_copy(update={"rank": i}) for i, r in enumerate(merged, 1)]
    return [r.model_copy(update={"rank": i}) for i, r in enumerate(merged, 1)]
