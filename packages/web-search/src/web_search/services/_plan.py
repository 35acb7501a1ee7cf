"""A research plan within a budget: every source domain searched once, queries fused and ranked.

z.ai filters on one domain per call, so running each query of a research set once per domain
multiplies calls (a bill's 29 queries made 48 calls, $0.48 before any LLM call). The plan turns
the set around: one call per exact domain, with the queries aimed at that domain fused into one
query text, plus unfiltered calls (post-filtered to ``*.gov``-style wildcards) for the queries
ranked most novel, until the budget's call and dollar caps are reached. Near-duplicates of
earlier queries (typically an LLM restating the service's own queries) are dropped first.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

from web_search._errors import ConfigurationError
from web_search._merge import plan_domain_groups

from ._research import PlannedQuery

__all__ = ["DroppedQuery", "ResearchBudget", "ResearchPlan", "plan_within_budget"]

QUERY_CHARS = 70
"""z.ai's recommended query length: a fused query never exceeds it (nothing is cut unseen)."""

NEAR_DUPLICATE = 0.7
"""Word-set overlap (Jaccard) from which a later query counts as a near-duplicate."""

_WORD = re.compile(r"[\w']+")
_FILLER = frozenset(
    "a an and of the in on for to by with or at as is are its from how what does do".split()  # noqa: SIM905
)


@dataclass(frozen=True, slots=True)
class ResearchBudget:
    """Per-research-set caps on upstream calls and dollars (whichever binds first).

    The default fits a new bill's research in $0.12 of search at z.ai's $0.01 a call, which
    leaves $0.08 for the LLM calls of a bill at the default models' list prices within the
    apps' $0.20 a bill ($300 a month at 50 bills a day).

    Attributes:
        max_calls: Most upstream search calls for one research set.
        max_cost: Most dollars of search for one research set.
    """

    max_calls: int = 12
    max_cost: Decimal = Decimal("0.12")

    def __post_init__(self) -> None:
        if isinstance(self.max_calls, bool) or not isinstance(self.max_calls, int):
            raise ConfigurationError("ResearchBudget.max_calls must be an integer")
        if self.max_calls < 1:
            raise ConfigurationError("ResearchBudget.max_calls must be at least 1")
        cost = Decimal(str(self.max_cost))
        if not cost.is_finite() or cost < 0:
            raise ConfigurationError("ResearchBudget.max_cost must be a non-negative amount")
        object.__setattr__(self, "max_cost", cost)

    def calls_allowed(self, price_per_call: Decimal) -> int:
        """Upstream calls the budget allows at ``price_per_call`` dollars a call."""
        if price_per_call <= 0:
            return self.max_calls
        return min(self.max_calls, math.floor(self.max_cost / price_per_call))


@dataclass(frozen=True, slots=True)
class DroppedQuery:
    """A query of the full set that the plan does not send as written.

    Attributes:
        kind: Its kind (``intent``, ``extra``...).
        text: Its text.
        reason: ``duplicate`` (same words as an earlier query), ``near_duplicate`` (mostly the
            same words), ``ranked_out`` (a wildcard-only query less novel than those that got
            the remaining calls; every domain is still searched) or ``cap`` (the budget left one
            of its domains unsearched).
    """

    kind: str
    text: str
    reason: Literal["duplicate", "near_duplicate", "ranked_out", "cap"]


@dataclass(frozen=True, slots=True)
class ResearchPlan:
    """What a research set will search, and what the budget cut.

    Attributes:
        queries: The searches to run (fused per domain, then the ranked wildcard queries).
        calls: Upstream calls they make at most (cache hits make fewer).
        cost: Dollars they cost at most.
        budget: The caps applied.
        domains: Every domain the full query set names, in order of first use.
        uncovered: Domains the caps left unsearched (empty unless the plan was cut).
        dropped: Queries not sent as written, with the reason.
        unplanned_calls: Upstream calls the full query set would have made, one per query and
            domain filter (what research cost before plans).
    """

    queries: tuple[PlannedQuery, ...]
    calls: int
    cost: Decimal
    budget: ResearchBudget
    domains: tuple[str, ...]
    uncovered: tuple[str, ...] = ()
    dropped: tuple[DroppedQuery, ...] = field(default=())
    unplanned_calls: int = 0

    @property
    def cut(self) -> bool:
        """Whether the caps left a domain of the full query set unsearched."""
        return bool(self.uncovered)


def _stem(word: str) -> str:
    # Enough folding to see "impacts" and "impact" as one word; not a linguistic stemmer.
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


def _words(text: str) -> frozenset[str]:
    return frozenset(_stem(w) for w in _WORD.findall(text.casefold()) if w not in _FILLER)


def fuse_texts(texts: Sequence[str], limit: int = QUERY_CHARS) -> str:
    """One query from several: the first text's words, then each later text's new words.

    Words already present (case-folded) are skipped, and a word that would push the query past
    ``limit`` characters is left out, so the result is never cut by the provider.
    """
    words: list[str] = []
    seen: set[str] = set()
    length = -1
    for text in texts:
        for word in text.split():
            key = word.casefold().strip(".,;:()\"'")
            if not key or key in seen or length + 1 + len(word) > limit:
                continue
            seen.add(key)
            words.append(word)
            length += 1 + len(word)
    return " ".join(words)


def _deduplicated(
    planned: Sequence[PlannedQuery],
) -> tuple[list[PlannedQuery], list[DroppedQuery]]:
    kept: list[PlannedQuery] = []
    seen: list[frozenset[str]] = []
    every: set[frozenset[str]] = set()
    dropped: list[DroppedQuery] = []
    for query in planned:
        words = _words(query.text)
        if words in every or not words:
            dropped.append(DroppedQuery(query.kind, query.text, "duplicate"))
            continue
        every.add(words)
        near = any(len(words & w) / len(words | w) >= NEAR_DUPLICATE for w in seen)
        if near and query.kind == "extra":
            # Only the proposed (extra) queries are judged: the service's own set is distinct
            # by construction and each of its queries carries domains of its own.
            dropped.append(DroppedQuery(query.kind, query.text, "near_duplicate"))
            continue
        kept.append(query)
        seen.append(words)
    return kept, dropped


def _exact_groups(queries: Sequence[PlannedQuery]) -> dict[str, list[PlannedQuery]]:
    groups: dict[str, list[PlannedQuery]] = {}
    for query in queries:
        for domain in query.domains:
            if not domain.startswith("*."):
                groups.setdefault(domain, []).append(query)
    return groups


def _fused(domain: str, members: Sequence[PlannedQuery]) -> PlannedQuery:
    kinds = "+".join(dict.fromkeys(m.kind for m in members))
    count = min(50, max(m.count for m in members) * len(members))
    text = fuse_texts([m.text for m in members])
    return PlannedQuery(kinds, text, (domain,), count, members[0].recency)


def _rank_wildcards(
    candidates: Sequence[PlannedQuery], slots: int, sent: Sequence[PlannedQuery]
) -> tuple[list[PlannedQuery], list[PlannedQuery]]:
    """Pick ``slots`` wildcard queries: every wildcard covered first, then the most novel.

    Novelty is the number of words not yet searched by any query picked so far (``sent``
    included), so the proposed queries that add meaning beat restatements of the service's.
    """
    wild = {q: tuple(d for d in q.domains if d.startswith("*.")) for q in candidates}
    needed = list(dict.fromkeys(d for ds in wild.values() for d in ds))
    picked: list[PlannedQuery] = []
    covered_words: set[str] = {w for q in sent for w in _words(q.text)}
    rest = list(candidates)
    while rest and len(picked) < slots:
        uncovered = [d for d in needed if not any(d in wild[p] for p in picked)]

        def gain(
            q: PlannedQuery, uncovered: list[str] = uncovered, known: set[str] = covered_words
        ) -> tuple[int, int]:
            return (sum(d in wild[q] for d in uncovered), len(_words(q.text) - known))

        best = max(rest, key=gain)  # max keeps the earliest of equals: the set's own order
        picked.append(best)
        rest.remove(best)
        covered_words |= _words(best.text)
    return [PlannedQuery(q.kind, q.text, wild[q], q.count, q.recency) for q in picked], rest


def plan_within_budget(
    planned: Sequence[PlannedQuery],
    budget: ResearchBudget,
    *,
    price_per_call: Decimal,
    max_domains_per_call: int | None = 1,
) -> ResearchPlan:
    """Turn a full query set into searches that fit ``budget``.

    Args:
        planned: The full query set, most important first (the service's, then proposed ones).
        budget: Caps on calls and dollars.
        price_per_call: The provider's price of one call.
        max_domains_per_call: Exact domains one call can filter on (z.ai 1, None for no limit).

    Returns:
        The plan: one fused search per exact domain (in order of first use), then wildcard
        searches (every wildcard covered, then the most novel queries) while calls remain.
        When the caps allow fewer calls than there are domains, the later domains are left
        out and listed in ``uncovered`` (``plan.cut`` is then true).
    """
    unplanned = sum(len(plan_domain_groups(q.domains, max_domains_per_call)) for q in planned)
    domains = tuple(dict.fromkeys(d for q in planned for d in q.domains))
    kept, dropped = _deduplicated(planned)
    allowed = budget.calls_allowed(price_per_call)
    exact = [_fused(d, members) for d, members in _exact_groups(kept).items()]
    candidates = [q for q in kept if any(d.startswith("*.") for d in q.domains)]
    has_wild = bool(candidates)
    # Coverage first: exact domains in order, keeping one call for the wildcards if any.
    room_for_exact = min(len(exact), max(allowed - (1 if has_wild else 0), 0))
    sent_exact = exact[:room_for_exact]
    wildcard, ranked_out = _rank_wildcards(candidates, allowed - len(sent_exact), sent_exact)
    queries = tuple(sent_exact + wildcard)
    searched = {d for q in queries for d in q.domains}
    uncovered = tuple(d for d in domains if d not in searched)
    for query in ranked_out:
        lost = any(d in uncovered for d in query.domains)
        dropped.append(DroppedQuery(query.kind, query.text, "cap" if lost else "ranked_out"))
    exact_lost = {d for q in exact[room_for_exact:] for d in q.domains}
    for query in kept:
        if query not in candidates and set(query.domains) <= exact_lost:
            dropped.append(DroppedQuery(query.kind, query.text, "cap"))
    calls = sum(len(plan_domain_groups(q.domains, max_domains_per_call)) for q in queries)
    return ResearchPlan(
        queries=queries,
        calls=calls,
        cost=price_per_call * calls,
        budget=budget,
        domains=domains,
        uncovered=uncovered,
        dropped=tuple(dropped),
        unplanned_calls=unplanned,
    )
