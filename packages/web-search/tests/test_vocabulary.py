"""The cross-package vocabulary (issue 11), and the deprecated 0.1 names still working."""

from __future__ import annotations

import dataclasses
import importlib
import sys

import pytest
import web_search
from web_search import (
    BudgetExceededError,
    ConfigurationError,
    MissingExtraError,
    ProviderError,
    RateLimitError,
    RetryPolicy,
    StoreCorruptError,
    StoreError,
    StoreUnavailableError,
    WebSearchError,
)


def test_retry_policy_fields_are_the_shared_ones() -> None:
    assert {f.name for f in dataclasses.fields(RetryPolicy)} == {
        "max_attempts",
        "initial_wait",
        "max_wait",
        "jitter",
        "max_retry_after",
    }
    policy = RetryPolicy()
    assert (policy.max_attempts, policy.initial_wait, policy.max_wait) == (3, 1.0, 8.0)
    assert (policy.jitter, policy.max_retry_after) == (0.5, 60.0)
    assert dataclasses.replace(policy, max_attempts=5).max_attempts == 5
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)


def test_backoff_doubles_capped_plus_at_most_jitter() -> None:
    policy = RetryPolicy(initial_wait=1.0, max_wait=3.0, jitter=0.25)
    for attempt, base in ((1, 1.0), (2, 2.0), (3, 3.0), (4, 3.0)):
        waits = [policy.backoff(attempt) for _ in range(50)]
        assert all(base <= w <= base + 0.25 for w in waits)
    assert RetryPolicy(jitter=0.0).backoff(2) == 2.0


def test_attempts_still_works_with_a_deprecation_warning() -> None:
    with pytest.warns(DeprecationWarning, match="max_attempts"):
        policy = RetryPolicy(attempts=2, initial_wait=0.0)
    assert policy.max_attempts == 2
    with pytest.warns(DeprecationWarning, match="max_attempts"):
        assert policy.attempts == 2
    assert RetryPolicy(4, 0.5, 2.0, 10.0) == RetryPolicy(
        max_attempts=4, initial_wait=0.5, max_wait=2.0, max_retry_after=10.0
    )


def test_status_code_and_the_deprecated_status() -> None:
    error = RateLimitError("slow down", provider="zai", status_code=429, retry_after=1.0)
    assert error.status_code == 429
    with pytest.warns(DeprecationWarning, match="status_code"):
        assert error.status == 429
    with pytest.warns(DeprecationWarning, match="status_code") as caught:
        old = ProviderError("x", provider="zai", status=502)
    assert old.status_code == 502
    assert caught[0].filename == __file__  # the warning points at the caller
    assert "status_code=429" in repr(error)


def test_error_tree() -> None:
    for cls in (ConfigurationError, StoreError, BudgetExceededError, ProviderError):
        assert issubclass(cls, WebSearchError)
    assert issubclass(StoreUnavailableError, StoreError)
    assert issubclass(StoreCorruptError, StoreError)
    assert issubclass(MissingExtraError, ImportError)
    assert issubclass(MissingExtraError, ConfigurationError)
    assert BudgetExceededError.is_budget_refusal is True


@pytest.mark.parametrize(
    ("name", "module", "dependency", "extra"),
    [
        ("PostgresSearchCache", "web_search._stores.postgres", "psycopg_pool", "postgres"),
        ("SupabaseSearchCache", "web_search._stores.supabase", "supabase", "supabase"),
    ],
)
def test_a_missing_extra_names_what_to_install(
    monkeypatch: pytest.MonkeyPatch, name: str, module: str, dependency: str, extra: str
) -> None:
    monkeypatch.delitem(sys.modules, module, raising=False)
    monkeypatch.setitem(sys.modules, dependency, None)  # what an uninstalled package looks like
    with pytest.raises(MissingExtraError) as info:
        getattr(web_search, name)
    assert (info.value.package, info.value.extra) == ("web-search", extra)
    assert str(info.value) == (
        f"{name} needs the {extra!r} extra: pip install 'web-search[{extra}]'"
    )
    with pytest.raises(ImportError):
        exec(f"from web_search import {name}", {})
    monkeypatch.undo()
    importlib.import_module(module)
    assert getattr(web_search, name).__name__ == name


def test_backends_of_extras_load_lazily() -> None:
    with pytest.raises(AttributeError, match="NoSuchThing"):
        web_search.NoSuchThing  # type: ignore[attr-defined]  # noqa: B018
    assert {"PostgresSearchCache", "SupabaseSearchCache"} <= set(web_search.__all__)
