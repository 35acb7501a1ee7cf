"""Throwaway databases: one migrated template per test session, cheap per-test clones."""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor

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


def reap_leftovers(admin_url: str, min_age_hours: float = 2) -> None:
    """Drop ``llmc_<pid>_*`` databases left by crashed runs: creator gone and old enough.

    Only on a loopback server, and only databases older than ``min_age_hours`` (their
    ``PG_VERSION`` file's age, which needs superuser; otherwise nothing is reaped): a pid from
    another pid namespace sharing the server must never cost a live run its databases.
    """
    query = """
        select datname
        from pg_database
        where datname like 'llmc\\_%%'
          and (pg_stat_file('base/' || oid || '/PG_VERSION', true)).modification
              < now() - make_interval(secs => %s)
    """
    try:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            host = conn.info.host
            if host not in ("127.0.0.1", "localhost", "::1") and not host.startswith("/"):
                return
            rows = conn.execute(query, (min_age_hours * 3600,)).fetchall()
    except psycopg.Error as exc:
        logger.debug("not reaping leftover test databases: %s", exc)
        return
    for (name,) in rows:
        pid_text = name[len(PREFIX) :].split("_", 1)[0]
        if not pid_text.isdigit() or int(pid_text) == os.getpid() or _alive(int(pid_text)):
            continue
        with contextlib.suppress(psycopg.Error):
            drop_template(admin_url, name)
            logger.info("dropped leftover test database %s", name)


def drop_role(admin_url: str, name: str) -> None:
    """Drop login role ``name`` (best effort: a role still owning objects stays)."""
    with contextlib.suppress(psycopg.Error), psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("drop role if exists {}").format(sql.Identifier(name)))


def reap_leftover_roles(admin_url: str) -> None:
    """Drop ``llmc_contract_<pid>_*`` roles whose creating process is gone (loopback only)."""
    try:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            host = conn.info.host
            if host not in ("127.0.0.1", "localhost", "::1") and not host.startswith("/"):
                return
            rows = conn.execute(
                "select rolname from pg_roles where rolname like 'llmc\\_contract\\_%%'"
            ).fetchall()
    except psycopg.Error as exc:
        logger.debug("not reaping leftover test roles: %s", exc)
        return
    for (name,) in rows:
        pid_text = name[len("llmc_contract_") :].split("_", 1)[0]
        if pid_text.isdigit() and int(pid_text) != os.getpid() and not _alive(int(pid_text)):
            drop_role(admin_url, name)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class ClonePool:
    """Per-test clones of a template: the next one is created ahead, used ones dropped behind.

    ``DROP DATABASE`` forces a checkpoint (hundreds of ms to seconds on a busy server with fsync
    on), and ``CREATE DATABASE`` costs ~0.1-0.3 s; doing both on worker threads keeps them off
    the tests' critical path, and concurrent drops share their checkpoints.
    """

    def __init__(self, admin_url: str, template: str) -> None:
        self.admin_url = admin_url
        self.template = template
        self._executor = ThreadPoolExecutor(max_workers=3, thread_name_prefix="llmc-db")
        self._ready: deque[Future[str]] = deque()
        self._drops: list[Future[None]] = []

    def _create(self) -> str:
        name = new_database_name("_t")
        create_database(self.admin_url, name, template=self.template)
        return name

    def acquire(self) -> str:
        """Return the name of a fresh clone (and start creating the next one)."""
        if not self._ready:
            self._ready.append(self._executor.submit(self._create))
        name = self._ready.popleft().result()
        self._ready.append(self._executor.submit(self._create))
        return name

    def release(self, name: str) -> None:
        """Drop ``name`` in the background (its connections are terminated)."""
        self._drops = [f for f in self._drops if not f.done() or f.exception() is not None]
        self._drops.append(self._executor.submit(drop_database, self.admin_url, name))

    def close(self) -> None:
        """Drop the prefetched clones and wait for every pending drop."""
        for pending in self._ready:
            with contextlib.suppress(Exception):
                self.release(pending.result())
        self._ready.clear()
        for future in self._drops:
            error = future.exception()
            if error is not None:
                logger.warning("could not drop a test database: %s", error)
        self._executor.shutdown(wait=True)
