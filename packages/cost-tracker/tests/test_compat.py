"""Renamed and moved names keep working for one minor version; missing extras say what to do."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from cost_tracker import (
    ConfigurationError,
    CostTracker,
    CostTrackerError,
    InvalidRecordError,
    LocalCostStore,
    MissingExtraError,
    StoreCorruptError,
    StoreError,
    StoreUnavailableError,
)


def test_error_tree_follows_the_shared_vocabulary() -> None:
    assert issubclass(StoreUnavailableError, StoreError)
    assert issubclass(StoreCorruptError, StoreError)
    assert issubclass(StoreError, CostTrackerError)
    assert issubclass(ConfigurationError, InvalidRecordError)  # old except clauses still catch
    assert issubclass(MissingExtraError, ImportError)
    assert issubclass(MissingExtraError, CostTrackerError)


def test_bad_settings_are_configuration_errors(tmp_path: Any) -> None:
    for kwargs in ({"daily_budget": "-1"}, {"tz": "Mars/Olympus"}, {"alert_threshold": "2"}):
        with pytest.raises(ConfigurationError):
            CostTracker(LocalCostStore(tmp_path), **kwargs)  # type: ignore[arg-type]


@pytest.mark.postgres
async def test_close_client_still_works_with_a_deprecation_warning(supabase_server: Any) -> None:
    from cost_tracker import SupabaseCostStore
    from supabase import acreate_client

    client = await acreate_client(supabase_server.url, supabase_server.service_key)
    with pytest.warns(DeprecationWarning, match="owns_client"):
        store = SupabaseCostStore(client, close_client=True)
    await store.aclose()
    assert store._close_client is False  # closed once


@pytest.mark.parametrize(
    ("name", "module", "extra"),
    [("PostgresCostStore", "psycopg", "postgres"), ("SupabaseCostStore", "supabase", "supabase")],
)
def test_a_missing_extra_names_what_to_install(name: str, module: str, extra: str) -> None:
    # A fresh interpreter where the driver cannot be imported, as without the extra.
    code = (
        f"import sys; sys.modules[{module!r}] = None\n"
        "import cost_tracker\n"
        "try:\n"
        f"    cost_tracker.{name}\n"
        "except cost_tracker.MissingExtraError as exc:\n"
        "    print(type(exc).__name__, exc.package, exc.extra, isinstance(exc, ImportError))\n"
        "    print(exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    first, message = done.stdout.splitlines()
    assert first == f"MissingExtraError cost-tracker {extra} True"
    assert message == f"{name} needs the {extra!r} extra: pip install 'cost-tracker[{extra}]'"


def test_local_files_follow_the_state_directory_rule(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    from cost_tracker._outbox import default_outbox_path

    monkeypatch.delenv("COST_TRACKER_OUTBOX", raising=False)
    monkeypatch.setenv("LLM_COMMON_DIR", str(tmp_path / "state"))
    assert LocalCostStore().path == tmp_path / "state" / "cost-tracker.sqlite"
    assert default_outbox_path() == tmp_path / "state" / "cost-outbox.sqlite"
    monkeypatch.delenv("LLM_COMMON_DIR")
    monkeypatch.chdir(tmp_path)
    assert LocalCostStore().path.resolve() == tmp_path / ".llm-common" / "cost-tracker.sqlite"
    assert default_outbox_path().resolve() == tmp_path / ".llm-common" / "cost-outbox.sqlite"
    # A package-specific path still wins.
    assert LocalCostStore(tmp_path / "mine.sqlite").path == tmp_path / "mine.sqlite"
    monkeypatch.setenv("COST_TRACKER_OUTBOX", str(tmp_path / "box.sqlite"))
    assert default_outbox_path() == tmp_path / "box.sqlite"
