"""Connection secrets never show in reprs or errors."""

from __future__ import annotations

import pytest
from analysis_pipeline import PostgresRunStore, RunStoreError


async def test_postgres_store_hides_its_connection_string() -> None:
    store = PostgresRunStore("postgresql://app:s3cret-pw@127.0.0.1:1/db", timeout=0.5)
    assert "s3cret" not in repr(store)
    with pytest.raises(RunStoreError) as failed:
        await store.list_runs()
    assert "s3cret" not in str(failed.value)
    assert failed.value.__cause__ is None or "s3cret" not in str(failed.value.__cause__)
    await store.aclose()
