"""Throwaway databases: one migrated template per test session, cheap per-test clones."""

from __future__ import annotations

import contextlib
import logging
import os
import secrets

import psycopg
from psycopg import sql

from ._urls import replace_url

logger = logging.getLogger(__name__)

PREFIX = "llmc_"


def check_server(admin_url: str, timeout: float = 3) -> str | None:
    """Return None if PostgreSQL answers at ``admin_url``, else a one-line reason."""
    try:
        psycopg.connect(admin_url, connect_timeout=max(1, round(timeout))).close()
    except psycopg.Error as exc:
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return f"PostgreSQL is not reachable ({first_line})"
    return None


def new_database_name(suffix: str = "") -> str:
    """A unique name ``llmc_<pid>_<random>[suffix]`` (the pid lets a later run reap leftovers)."""
    return f"{PREFIX}{os.getpid()}_{secrets.token_hex(4)}{suffix}"


def create_database(admin_url: str, name: str, template: str | None = None) -> str:
    """Create database ``name`` (optionally cloned from ``template``) and return its URL."""
    query = sql.SQL("create database {}").format(sql.Identifier(name))
    if template is not None:
        query = sql.SQL("{} template {}").format(query, sql.Identifier(template))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(query)
    return replace_url(admin_url, dbname=name)


def drop_database(admin_url: str, name: str) -> None:
    """Drop database ``name``, terminating any connection still open to it."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
        )


def mark_template(admin_url: str, name: str) -> None:
    """Flag ``name`` as a template database (documentation for humans browsing the server)."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("alter database {} is_template true").format(sql.Identifier(name)))


def drop_template(admin_url: str, name: str) -> None:
    """Drop a database created as a template (it must lose the flag first)."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("alter database {} is_template false").format(sql.Identifier(name)))
    drop_database(admin_url, name)


def reap_leftovers(admin_url: str) -> None:
    """Drop ``llmc_<pid>_*`` databases whose creating process (on this machine) is gone.

    Only for a server on loopback: a pid means nothing for databases created by other hosts.
    """
    with psycopg.connect(admin_url, autocommit=True) as conn:
        host = conn.info.host
        if host not in ("127.0.0.1", "localhost", "::1") and not host.startswith("/"):
            return
        names = [
            row[0]
            for row in conn.execute(
                "select datname from pg_database where datname like 'llmc\\_%'"
            ).fetchall()
        ]
    for name in names:
        pid_text = name[len(PREFIX) :].split("_", 1)[0]
        if not pid_text.isdigit() or int(pid_text) == os.getpid() or _alive(int(pid_text)):
            continue
        with contextlib.suppress(psycopg.Error):
            drop_template(admin_url, name)
            logger.info("dropped leftover test database %s", name)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
