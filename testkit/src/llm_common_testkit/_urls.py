"""Small helpers to rewrite PostgreSQL connection strings (URL or key=value form)."""

from __future__ import annotations

import os
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from psycopg.conninfo import conninfo_to_dict, make_conninfo

DEFAULT_TEST_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"

_KEEP = object()


def test_database_url() -> str:
    """The maintenance database tests create their databases on (``$TEST_DATABASE_URL``)."""
    return os.environ.get("TEST_DATABASE_URL") or DEFAULT_TEST_DATABASE_URL


def replace_url(
    url: str,
    *,
    dbname: str | None = None,
    host: str | None = None,
    port: int | None = None,
    user: str | None = None,
    password: object = _KEEP,
) -> str:
    """Return ``url`` with the given parts replaced (``password=None`` removes it).

    Works on ``postgresql://`` URLs (the result stays a URL) and on libpq ``key=value`` strings.
    """
    if not url.startswith(("postgresql://", "postgres://")):
        params: dict[str, object] = dict(conninfo_to_dict(url))
        for key, value in (("dbname", dbname), ("host", host), ("port", port), ("user", user)):
            if value is not None:
                params[key] = value
        if password is None:
            params.pop("password", None)
        elif password is not _KEEP:
            params["password"] = password
        return make_conninfo(**{k: v for k, v in params.items() if v is not None})  # type: ignore[arg-type]

    parts = urlsplit(url)
    cur_user = unquote(parts.username) if parts.username else None
    cur_pw = unquote(parts.password) if parts.password else None
    new_user = user if user is not None else cur_user
    new_pw = cur_pw if password is _KEEP else password
    new_host = host if host is not None else (parts.hostname or "")
    new_port = port if port is not None else parts.port
    netloc = ""
    if new_user:
        netloc = quote(new_user, safe="")
        if new_pw is not None:
            netloc += ":" + quote(str(new_pw), safe="")
        netloc += "@"
    netloc += f"[{new_host}]" if ":" in new_host else new_host
    if new_port is not None:
        netloc += f":{new_port}"
    path = "/" + quote(dbname, safe="") if dbname is not None else parts.path
    return urlunsplit((parts.scheme, netloc, path, parts.query, parts.fragment))


def url_parts(url: str) -> tuple[str, int, str]:
    """Return ``(host, port, dbname)`` of a connection string (defaults: localhost, 5432)."""
    params = conninfo_to_dict(url)
    host = str(params.get("host") or "127.0.0.1")
    port = int(str(params.get("port") or 5432))
    return host, port, str(params.get("dbname") or "")
