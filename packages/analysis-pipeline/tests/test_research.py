"""Query merging, URL de-duplication and fitting sources to a token budget."""

from __future__ import annotations

from analysis_pipeline import SourceRef
from analysis_pipeline._research import canonical_url, dedupe_sources, fit_sources, merge_queries
from llm_client import count_tokens


def _src(url: str, snippet: str = "s") -> SourceRef:
    return SourceRef(id="S0", url=url, title=url, snippet=snippet)


def test_merge_queries_drops_duplicates_and_keeps_priority() -> None:
    merged = merge_queries(["AB 1 rent", " ab 1  RENT "], ["other", "AB 1 rent", ""], limit=5)
    assert merged == ["AB 1 rent", "other"]


def test_canonical_url() -> None:
    assert canonical_url("HTTP://WWW.Example.org/a/?utm_source=x&id=2#frag") == (
        "https://example.org/a?id=2"
    )


def test_dedupe_keeps_the_best_ranked() -> None:
    sources = [_src("https://a.org/x", "first"), _src("https://www.a.org/x/", "second"),
               _src("https://b.org")]  # fmt: skip
    kept = dedupe_sources(sources)
    assert [s.snippet for s in kept] == ["first", "s"]


def test_fit_sources_numbers_and_respects_the_budget() -> None:
    sources = [_src(f"https://s{i}.org", "word " * 200) for i in range(10)]
    kept = fit_sources(sources, 900, count_tokens, max_sources=20)
    assert [s.id for s in kept] == [f"S{i}" for i in range(1, len(kept) + 1)]
    assert 2 <= len(kept) < 10
    assert kept[0].url == "https://s0.org"  # rank order kept
    assert fit_sources(sources, 10_000, count_tokens, max_sources=3)[-1].id == "S3"
