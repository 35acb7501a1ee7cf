"""Bad input is refused with a typed error and nothing is stored."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import pytest
from conversation_memory import (
    ContentTooLargeError,
    ConversationMemory,
    ConversationMemoryError,
    EmptyContentError,
    InvalidIdentifierError,
    InvalidMessageError,
    InvalidRoleError,
    LocalMessageStore,
    MissingExtraError,
    PostgresMessageStore,
    StoreError,
    StoreUnavailableError,
    SupabaseMessageStore,
)


@pytest.fixture
async def memory(tmp_path: Path):  # type: ignore[no-untyped-def]
    store = LocalMessageStore(tmp_path / "m.sqlite3")
    yield ConversationMemory(store, uuid.uuid4(), max_content_chars=100)
    await store.aclose()


@pytest.mark.parametrize(
    ("role", "content", "error"),
    [
        ("tool", "hi", InvalidRoleError),
        ("User", "hi", InvalidRoleError),
        ("user", "", EmptyContentError),
        ("user", " \n\t ", EmptyContentError),
        ("user", "x" * 101, ContentTooLargeError),
        ("user", b"bytes", InvalidMessageError),
        ("user", "lone surrogate \ud800 here", InvalidMessageError),
        ("user", "\udcff", InvalidMessageError),
        ("assistant", "a NUL \x00 inside", InvalidMessageError),
    ],
)
async def test_bad_messages_are_rejected_and_nothing_is_stored(
    memory: ConversationMemory, role: str, content: str, error: type[Exception]
) -> None:
    with pytest.raises(error) as raised:
        await memory.save_message(role, content)
    assert isinstance(raised.value, ConversationMemoryError)
    assert isinstance(raised.value, ValueError)
    assert await memory.history() == []


async def test_too_large_says_how_large_and_the_limit(memory: ConversationMemory) -> None:
    with pytest.raises(ContentTooLargeError) as raised:
        await memory.save_message("user", "y" * 250)
    assert (raised.value.length, raised.value.limit) == (250, 100)
    assert "250" in str(raised.value)
    assert "100" in str(raised.value)
    assert (await memory.save_message("user", "y" * 100)).seq == 1  # exactly at the cap is fine


async def test_invalid_unicode_says_where_and_is_refused_on_every_path(
    memory: ConversationMemory,
) -> None:
    with pytest.raises(InvalidMessageError, match=r"not valid Unicode.*position 6"):
        await memory.save_message("user", "abc\u00e9\u20ac\U0001f4b6\ud83d")
    with pytest.raises(InvalidMessageError, match="page name"):
        await memory.save_message("user", "fine", page="tax\udc80")
    assert await memory.history() == []
    # Valid non-ASCII text of every plane round-trips unchanged.
    text = "caf\u00e9 \u20ac \U0001f4b6 \u4e2d\u6587 \u0627\u0644\u0639\u0631\u0628\u064a\u0629"
    assert (await memory.save_message("user", text)).content == text
    assert (await memory.history())[0].content == text


@pytest.mark.parametrize("page", ["", "p" * 101])
async def test_bad_page_names_are_rejected(memory: ConversationMemory, page: str) -> None:
    with pytest.raises(InvalidMessageError):
        await memory.save_message("user", "hi", page=page)


@pytest.mark.parametrize("user_id", ["alice", "", "1234", 42, None])
def test_user_id_must_be_a_uuid(tmp_path: Path, user_id: object) -> None:
    with pytest.raises(InvalidIdentifierError):
        ConversationMemory(LocalMessageStore(tmp_path / "m.sqlite3"), user_id)


@pytest.mark.parametrize("conversation_id", ["", "has space", "-leading", "x" * 201, "a;drop"])
def test_conversation_id_is_checked(tmp_path: Path, conversation_id: str) -> None:
    with pytest.raises(InvalidIdentifierError):
        ConversationMemory(LocalMessageStore(tmp_path / "m.sqlite3"), uuid.uuid4(), conversation_id)


def test_user_id_is_normalised(tmp_path: Path) -> None:
    raw = uuid.uuid4()
    memory = ConversationMemory(LocalMessageStore(tmp_path / "m.sqlite3"), str(raw).upper())
    assert memory.user_id == str(raw)
    assert memory.conversation_id == "default"


@pytest.mark.parametrize(
    ("module", "extra"),
    [
        ("psycopg_pool", "postgres"),
        ("llm_common_db", "postgres"),
        ("supabase", "supabase"),
    ],
)
def test_missing_extra_names_the_install_command(
    monkeypatch: pytest.MonkeyPatch, module: str, extra: str
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # what an environment without the extra sees

    def build() -> object:
        if extra == "postgres":
            return PostgresMessageStore("postgresql://localhost/x")
        return SupabaseMessageStore(object())  # type: ignore[arg-type]

    with pytest.raises(MissingExtraError) as raised:
        build()
    assert isinstance(raised.value, ImportError)
    assert (raised.value.package, raised.value.extra) == ("conversation-memory", extra)
    store = "PostgresMessageStore" if extra == "postgres" else "SupabaseMessageStore"
    assert str(raised.value).startswith(
        f"{store} needs the {extra!r} extra: pip install 'conversation-memory[{extra}]'"
    )


async def test_unreachable_postgres_is_a_typed_error_without_the_password() -> None:
    store = PostgresMessageStore(
        "postgresql://app:s3cret-pw@127.0.0.1:1/nowhere?connect_timeout=1", connect_timeout=1
    )
    assert "s3cret" not in repr(store)
    with pytest.raises(StoreUnavailableError) as raised:
        await store.open()
    assert "s3cret" not in str(raised.value)
    await store.aclose()


def test_a_directory_instead_of_a_database_file_is_a_clear_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="needs a database file, not a directory"):
        LocalMessageStore(tmp_path)


def test_bad_settings_are_configuration_errors(tmp_path: Path) -> None:
    from conversation_memory import ConfigurationError

    cases = [
        lambda: PostgresMessageStore("postgresql://app:pw@127.0.0.1/x", connect_timeout=0),
        lambda: PostgresMessageStore(),
        lambda: LocalMessageStore(tmp_path / "m.sqlite3", threads=0),
        lambda: ConversationMemory(
            LocalMessageStore(tmp_path / "m.sqlite3"), uuid.uuid4(), max_messages=0
        ),
    ]
    for build in cases:
        with pytest.raises(ConfigurationError) as raised:
            build()
        assert isinstance(raised.value, ValueError)
        assert isinstance(raised.value, ConversationMemoryError)
        assert "pw@" not in str(raised.value)
