"""Pure functions: query cleaning, dates, TTL policy, merging (with Hypothesis where it pays)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from web_search import CachePolicy, CacheStats, SearchResult, clean_query, parse_publish_date
from web_search._merge import merge_results, normalise_url, plan_domain_groups
from web_search._query import host_matches, normalise_domain


def test_clean_query() -> None:
    cleaned = clean_query("  Rent  caps\n site:LAO.ca.gov  -site:spam.com  California ")
    assert cleaned.full == "Rent caps California"
    assert cleaned.domains == ("lao.ca.gov",)


@settings(deadline=None)  # a loaded CI box must not turn slowness into failures
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=300))
def test_sent_query_is_a_word_boundary_prefix_of_at_most_70(text: str) -> None:
    try:
        cleaned = clean_query(text)
    except Exception:
        return
    assert len(cleaned.sent) <= 70
    assert cleaned.full.startswith(cleaned.sent)
    rest = cleaned.full[len(cleaned.sent) :]
    assert rest == "" or rest.startswith(" ") or " " not in cleaned.full[:71]


@settings(deadline=None)  # a loaded CI box must not turn slowness into failures
@given(st.dates(min_value=date(1900, 1, 1), max_value=date(2100, 12, 31)))
def test_dates_parse_in_every_style(day: date) -> None:
    for text in (
        day.isoformat(),
        f"{day.year}年{day.month}月{day.day}日",
        f"{day.year}/{day.month:02d}/{day.day:02d}",
        day.strftime("%b %d, %Y").replace(" 0", " "),
        f"{day.day} {day.strftime('%B')} {day.year}",
    ):
        assert parse_publish_date(text) == day, text


@settings(deadline=None)  # a loaded CI box must not turn slowness into failures
@given(
    st.datetimes(
        min_value=datetime(1970, 1, 2), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
    )
)
def test_datetimes_come_back_aware_utc(moment: datetime) -> None:
    moment = moment.replace(microsecond=0)
    parsed = parse_publish_date(moment.isoformat())
    assert parsed == moment
    assert isinstance(parsed, datetime)
    assert parsed.tzinfo is not None
    shifted = parse_publish_date(moment.astimezone().isoformat())
    assert shifted == moment


@pytest.mark.parametrize(
    "text", ["", "   ", "yesterday", "2025-02-30", "13/13/2025", "2025年13月1日"]
)
def test_unparseable_dates_are_none(text: str) -> None:
    assert parse_publish_date(text) is None


@settings(deadline=None)  # a loaded CI box must not turn slowness into failures
@given(
    tier=st.timedeltas(min_value=timedelta(seconds=1), max_value=timedelta(days=30)),
    recency=st.sampled_from(["1d", "1w", "1m", "1y", None]),
    empty=st.booleans(),
)
def test_ttl_never_exceeds_tier_recency_or_empty_caps(
    tier: timedelta, recency: str | None, empty: bool
) -> None:
    policy = CachePolicy()
    ttl = policy.ttl(tier, recency, empty)  # type: ignore[arg-type]
    assert timedelta(0) < ttl <= tier
    if recency == "1d":
        assert ttl <= timedelta(hours=3)
    if empty:
        assert ttl <= policy.empty_ttl


@settings(deadline=None)  # a loaded CI box must not turn slowness into failures
@given(st.lists(st.integers(min_value=0, max_value=10**6), min_size=1, max_size=50))
def test_dollars_saved_add_up_exactly(cents: list[int]) -> None:
    total = CacheStats()
    for c in cents:
        total = total + CacheStats(l1_hits=1, dollars_saved=Decimal(c) / 100)
    assert total.dollars_saved == Decimal(sum(cents)) / 100
    assert total.hit_rate == 1.0


def test_domains_and_wildcards() -> None:
    assert normalise_domain("https://www.IRS.gov/path") == "irs.gov"
    assert normalise_domain("*.CA.gov") == "*.ca.gov"
    assert host_matches("https://www.ftb.ca.gov/x", "*.ca.gov")
    assert not host_matches("https://ca.gov.evil.com/x", "*.ca.gov")
    assert host_matches("https://sub.lao.ca.gov/x", "lao.ca.gov")
    assert not host_matches("https://notlao.ca.gov/x", "lao.ca.gov")
    assert plan_domain_groups(["a.gov", "b.gov", "*.edu"], 1) == [("a.gov",), ("b.gov",), ()]
    assert plan_domain_groups(["a.gov", "b.gov"], None) == [("a.gov", "b.gov")]
    assert plan_domain_groups([], 1) == [()]
    assert normalise_url("HTTP://WWW.Example.com/a/#frag") == normalise_url("https://example.com/a")


def _r(url: str) -> SearchResult:
    return SearchResult(title=url, url=url)


def test_merge_interleaves_filters_and_cuts() -> None:
    answers = [
        (("a.gov",), [_r("https://a.gov/1"), _r("https://evil.com/x"), _r("https://a.gov/2")]),
        (("b.gov",), [_r("https://b.gov/1"), _r("https://a.gov/1")]),
        ((), [_r("https://x.edu/1"), _r("https://y.com/1")]),
    ]
    merged = merge_results(answers, ["a.gov", "b.gov", "*.edu"], 4)
    assert [r.url for r in merged] == [
        "https://a.gov/1",
        "https://b.gov/1",
        "https://x.edu/1",
        "https://a.gov/2",
    ]
    assert [r.rank for r in merged] == [1, 2, 3, 4]


def test_retry_after_parsing() -> None:
    from email.utils import format_datetime

    from web_search._provider import parse_retry_after

    assert parse_retry_after("2") == 2.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 <= (parse_retry_after(later) or 0) <= 30
    assert parse_retry_after("Mon, 01 Jan 2001 00:00:00 GMT") == 0.0
