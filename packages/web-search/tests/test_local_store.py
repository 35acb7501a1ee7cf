"""The local tier's files: a damaged cache is recovered with a warning, the state-dir rule."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from web_search import (
    LocalSearchCache,
    SearchCache,
    StoreError,
    WebSearchClient,
    WebSearchError,
    ZaiSearchProvider,
)
from web_search.testing import FakeZaiSearchServer

from .conftest import API_KEY, FAST_RETRY

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
GARBAGE = b"this is not a SQLite database\x00" * 200


async def _search_twice(directory: Path, server: FakeZaiSearchServer) -> tuple[str, str]:
    provider = ZaiSearchProvider(API_KEY, base_url=server.base_url)
    sources = []
    for _ in range(2):  # two "processes": only the directory is shared
        cache = SearchCache(LocalSearchCache(directory), clock=lambda: NOW)
        async with WebSearchClient(provider, cache, retry=FAST_RETRY) as client:
            sources.append((await client.search_detailed("damaged cache")).source)
    return sources[0], sources[1]


async def test_a_damaged_cache_file_is_moved_aside_and_the_cache_rebuilt(
    tmp_path: Path, server: FakeZaiSearchServer, caplog: pytest.LogCaptureFixture
) -> None:
    directory = tmp_path / "cache"
    directory.mkdir()
    (directory / "cache.db").write_bytes(GARBAGE)
    caplog.set_level(logging.WARNING)
    assert await _search_twice(directory, server) == ("upstream", "l2")
    [aside] = [p for p in directory.iterdir() if p.name.startswith("corrupt-")]
    assert (aside / "cache.db").read_bytes() == GARBAGE  # kept for inspection, nothing deleted
    [warning] = [r for r in caplog.records if "not a valid database" in r.getMessage()]
    assert warning.levelno == logging.WARNING
    assert str(directory / "cache.db") in warning.getMessage()
    assert str(aside) in warning.getMessage()
    assert server.calls == 1


async def test_damage_found_while_open_is_recovered_too(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    directory = tmp_path / "cache"
    store = LocalSearchCache(directory)
    payload = {"v": 1}
    later = NOW + timedelta(hours=1)
    await store.set("a" * 64, payload, expires_at=later, now=NOW, provider="zai", query="q")
    (directory / "cache.db").write_bytes(GARBAGE)  # another program overwrites the file
    caplog.set_level(logging.WARNING)
    assert await store.get("b" * 64, NOW) is None
    await store.set("c" * 64, payload, expires_at=later, now=NOW, provider="zai", query="q")
    assert await store.get("c" * 64, NOW) == '{"v":1}'
    await store.aclose()
    assert any("not a valid database" in r.getMessage() for r in caplog.records)
    assert [p.name.startswith("corrupt-") for p in directory.iterdir()].count(True) == 1


def test_an_unopenable_directory_is_a_typed_error(tmp_path: Path) -> None:
    directory = tmp_path / "cache"
    (directory / "cache.db").mkdir(parents=True)  # a directory where the database should be
    with pytest.raises(StoreError, match=str(directory)) as info:
        LocalSearchCache(directory)
    assert isinstance(info.value, WebSearchError)
    assert isinstance(info.value.__cause__, sqlite3.Error)


async def _directory(store: LocalSearchCache) -> Path:
    await store.aclose()
    return store.directory


async def test_state_dir_rule(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WEB_SEARCH_CACHE_DIR", raising=False)
    monkeypatch.setenv("LLM_COMMON_DIR", str(tmp_path / "state"))
    assert await _directory(LocalSearchCache()) == tmp_path / "state" / "web-search-cache"
    monkeypatch.delenv("LLM_COMMON_DIR")
    monkeypatch.chdir(tmp_path)
    assert await _directory(LocalSearchCache()) == tmp_path / ".llm-common" / "web-search-cache"
    assert await _directory(LocalSearchCache(tmp_path / "mine")) == tmp_path / "mine"


async def test_client_default_cache_follows_the_rule(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: FakeZaiSearchServer
) -> None:
    monkeypatch.delenv("WEB_SEARCH_CACHE_DIR", raising=False)
    monkeypatch.setenv("LLM_COMMON_DIR", str(tmp_path))
    provider = ZaiSearchProvider(API_KEY, base_url=server.base_url)
    async with WebSearchClient(provider, retry=FAST_RETRY) as client:
        await client.search("default directory")
        assert isinstance(client.cache.persistent, LocalSearchCache)
        assert client.cache.persistent.directory == tmp_path / "web-search-cache"
    assert (tmp_path / "web-search-cache" / "cache.db").exists()


async def test_legacy_directory_variable_still_works_with_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLM_COMMON_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("WEB_SEARCH_CACHE_DIR", str(tmp_path / "legacy"))
    with pytest.warns(DeprecationWarning, match="WEB_SEARCH_CACHE_DIR"):
        store = LocalSearchCache()
    assert await _directory(store) == tmp_path / "legacy"


@settings(deadline=None, max_examples=15)
@given(st.binary(max_size=8192))
def test_any_bytes_as_the_cache_file_open_to_a_working_cache(content: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp) / "cache"
        directory.mkdir()
        (directory / "cache.db").write_bytes(content)

        async def use() -> object:
            store = LocalSearchCache(directory)
            later = NOW + timedelta(hours=1)
            await store.set("a" * 64, {"v": 1}, expires_at=later, now=NOW, provider="z", query="q")
            got = await store.get("a" * 64, NOW)
            await store.aclose()
            return got

        assert asyncio.run(use()) == '{"v":1}'
