"""The persistent tier is shared by processes: a second process is served from L2."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest
from web_search import (
    LocalSearchCache,
    PersistentCache,
    PostgresSearchCache,
    SearchCache,
    WebSearchClient,
    ZaiSearchProvider,
)
from web_search.testing import FakeZaiSearchServer

from .conftest import API_KEY

CHILD = Path(__file__).with_name("_child_search.py")


async def _run_child(base_url: str, store: str, query: str) -> dict[str, object]:
    env = {**os.environ, "ZAI_API_KEY": API_KEY}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(CHILD),
        base_url,
        store,
        query,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    assert API_KEY not in err.decode() + out.decode()
    return json.loads(out)  # type: ignore[no-any-return]


@pytest.fixture(params=["local", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_spec(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "local":
        return str(tmp_path / "shared")
    return str(request.getfixturevalue("postgres_db"))


def _store(spec: str) -> PersistentCache:
    return PostgresSearchCache(spec) if spec.startswith("postgresql://") else LocalSearchCache(spec)


async def test_second_process_is_served_from_l2(
    server: FakeZaiSearchServer, store_spec: str
) -> None:
    first = await _run_child(server.base_url, store_spec, "cost of living index")
    calls_after_first = server.calls
    assert first["misses"] == 1
    assert calls_after_first == 2
    second = await _run_child(server.base_url, store_spec, "Cost of  living INDEX")
    assert server.calls == calls_after_first  # 0 new upstream calls
    assert second["urls"] == first["urls"]
    assert second["l2_hits"] == 1
    # And this (third) process, with its own client, too.
    provider = ZaiSearchProvider(API_KEY, base_url=server.base_url)
    async with WebSearchClient(provider, SearchCache(_store(store_spec))) as client:
        results = await client.search("cost of living index", domains=["*.edu", "lao.ca.gov"])
    assert [r.url for r in results] == first["urls"]
    assert server.calls == calls_after_first
