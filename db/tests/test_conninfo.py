"""redact_conninfo and the up-front parse: no password ever reaches printable text."""

from __future__ import annotations

import traceback

import pytest
from llm_common_db import InvalidConnectionStringError, PostgresPool, redact_conninfo

SECRET = "Sentinel-pw-7f3a"
UNPARSEABLE = "<unparseable connection string>"


@pytest.mark.parametrize(
    ("conninfo", "expected"),
    [
        (
            f"postgresql://app:{SECRET}@db.example.com:5432/prod",
            "postgresql://app:***@db.example.com:5432/prod",
        ),
        (
            f"postgres://app:{SECRET}@h1:5432,h2:5433/prod?sslmode=require",
            "postgres://app:***@h1:5432,h2:5433/prod?sslmode=require",
        ),
        (
            f"postgresql://app@db/prod?password={SECRET}&application_name=x",
            "postgresql://app@db/prod?password=***&application_name=x",
        ),
        (
            f"postgresql://app:{SECRET}@db/prod?password={SECRET}2",
            "postgresql://app:***@db/prod?password=***",
        ),
        ("postgresql://app@db:5432/prod", "postgresql://app@db:5432/prod"),
        ("postgresql://app:@db/prod", "postgresql://app:***@db/prod"),
        (f"host=db user=app password={SECRET} dbname=prod", None),
        ("host=db user=app dbname=prod", "host=db user=app dbname=prod"),
        ("", ""),
    ],
)
def test_redacts_the_password_and_keeps_the_shape(conninfo: str, expected: str | None) -> None:
    redacted = redact_conninfo(conninfo)
    assert SECRET not in redacted
    if expected is not None:
        assert redacted == expected
    else:
        assert "password=***" in redacted
        assert "host=db" in redacted


@pytest.mark.parametrize(
    "conninfo",
    [
        f"host=db password='{SECRET} with spaces' user=app",
        f"host=db password='it\\'s {SECRET}' user=app",
        f"host=db password = {SECRET}",
    ],
)
def test_quoted_keyword_passwords(conninfo: str) -> None:
    redacted = redact_conninfo(conninfo)
    assert SECRET not in redacted
    assert "***" in redacted


def test_percent_encoded_password() -> None:
    raw = f"p@ss:w/rd {SECRET}"
    encoded = "p%40ss%3Aw%2Frd%20" + SECRET
    redacted = redact_conninfo(f"postgresql://app:{encoded}@db/prod")
    assert redacted == "postgresql://app:***@db/prod"
    assert raw not in redacted
    assert "p%40ss" not in redacted


@pytest.mark.parametrize(
    "conninfo",
    [
        f"this is not {SECRET} a connection string",
        f"host=db password='{SECRET}",  # unterminated quote
        f"host=db {SECRET}",  # libpq: missing "=" after "Sentinel..." (echoes it)
        f"postgresql://app:{SECRET}@db/prod?nosuchoption=1",
        f"postgresql://app:{SECRET}@[::1/prod",
    ],
)
def test_malformed_strings_are_never_echoed(conninfo: str) -> None:
    assert redact_conninfo(conninfo) == UNPARSEABLE


def test_never_raises_on_non_strings() -> None:
    assert redact_conninfo(None) == UNPARSEABLE  # type: ignore[arg-type]
    assert redact_conninfo(b"host=x") == UNPARSEABLE  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "url",
    [
        f"host=db {SECRET}",
        f"host=db password='{SECRET}",
        f"postgresql://app:{SECRET}@db/prod?nosuchoption=1",
    ],
)
def test_from_url_rejects_malformed_strings_without_echoing_them(url: str) -> None:
    with pytest.raises(InvalidConnectionStringError) as info:
        PostgresPool.from_url(url)
    assert isinstance(info.value, ValueError)
    assert "invalid PostgreSQL connection string" in str(info.value)
    # Neither the message nor anything chained to it (libpq's own error quotes the string).
    rendered = "".join(traceback.format_exception(info.value))
    assert SECRET not in rendered
    assert info.value.__context__ is None
    assert info.value.__cause__ is None


def test_the_pool_never_sees_the_password() -> None:
    pg = PostgresPool.from_url(f"postgresql://app:{SECRET}@db.example.com:6543/prod")
    assert SECRET not in str(pg.pool.conninfo)
    assert SECRET not in pg.pool.name
    assert SECRET not in repr(pg)
    assert SECRET not in pg.display
    assert pg.display == "postgresql://app:***@db.example.com:6543/prod"
    assert pg.where == "db.example.com:6543/prod"
    assert pg.owns_pool


def test_scrub_masks_the_password_but_not_short_ones() -> None:
    from llm_common_db._conninfo import parse_conninfo

    parsed = parse_conninfo(f"postgresql://app:{SECRET}@db/prod")
    assert parsed.scrub(f"server said {SECRET}!") == "server said ***!"
    assert SECRET not in repr(parsed)
    short = parse_conninfo("postgresql://app:x@db/prod")
    assert short.scrub("connection timeout expired") == "connection timeout expired"
