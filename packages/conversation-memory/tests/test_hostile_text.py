"""Hostile text at save_message: a typed error before anything is stored, or an exact round trip.

Hypothesis feeds every kind of string (lone surrogates, NUL and other control characters,
every plane, right-to-left and combining marks, very long runs) to the local and the
PostgreSQL backend. Whatever is accepted must come back byte for byte; whatever is refused must
be refused with an ``InvalidMessageError`` (a ``ConversationMemoryError``) and leave nothing.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from conversation_memory import (
    ConversationMemory,
    InvalidMessageError,
    LocalMessageStore,
    MessageStore,
    PostgresMessageStore,
)
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

hostile = st.one_of(
    st.text(max_size=300),  # includes surrogates and control characters
    st.text(st.characters(codec="utf-8"), min_size=1, max_size=300),
    st.lists(
        st.sampled_from(
            ["\x00", "\ud800", "\udfff", "\u202e", "\u0301", "\ufeff", "\r\n", "\t", " ", "a"]
        ),
        min_size=1,
        max_size=50,
    ).map("".join),
)
LIMIT = 2_000


async def _round_trip(store: MessageStore, content: str, page: str | None) -> None:
    memory = ConversationMemory(store, uuid.uuid4(), max_content_chars=LIMIT)
    try:
        saved = await memory.save_message("user", content, page=page)
    except InvalidMessageError:
        assert await memory.history() == []
        return
    [stored] = await memory.history()
    assert stored == saved
    assert stored.content == content
    assert stored.page == page
    assert (await memory.get_context())[-1] == {"role": "user", "content": content}


def _settings() -> settings:
    return settings(
        max_examples=60,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


@_settings()
@given(content=hostile, page=st.one_of(st.none(), hostile))
@example(content="a\x00b", page=None)
@example(content="\ud83d", page=None)
@example(content="ok", page="\udc80")
@example(content="\U0010ffff\u202e\u0301", page="p\u0000")
def test_local_backend(tmp_path: Path, content: str, page: str | None) -> None:
    async def run() -> None:
        async with LocalMessageStore(tmp_path / "hostile.sqlite3", threads=1) as store:
            await _round_trip(store, content, page)

    asyncio.run(run())


@pytest.mark.postgres
@_settings()
@given(content=hostile, page=st.one_of(st.none(), hostile))
@example(content="a\x00b", page=None)
@example(content="\U0010ffff\u202e\u0301", page="\u00e9")
def test_postgres_backend(postgres_db: str, content: str, page: str | None) -> None:
    async def run() -> None:
        async with PostgresMessageStore.from_url(postgres_db, min_size=0, max_size=1) as store:
            await _round_trip(store, content, page)

    asyncio.run(run())
