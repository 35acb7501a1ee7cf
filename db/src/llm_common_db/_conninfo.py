"""Connection strings: parse once, keep the password out of everything printable.

libpq accepts two forms, ``postgresql://user:password@host:port/dbname?key=value`` and
``key=value key='quoted value'``; a password can sit in the URI's userinfo *and* in its query
(the query wins). libpq's own parse errors quote the offending text, which may be the
password, so nothing here ever repeats a string it could not parse.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from ._errors import InvalidConnectionStringError

__all__ = ["ParsedConninfo", "parse_conninfo", "redact_conninfo"]

MASK = "***"
UNPARSEABLE = "<unparseable connection string>"
_URI_SCHEMES = ("postgresql://", "postgres://")


def redact_conninfo(conninfo: str) -> str:
    """Return ``conninfo`` with every password replaced by ``***``; never raises.

    Both forms keep their shape (a URI stays a URI, ``key=value`` stays ``key=value``). A
    string libpq cannot parse becomes ``"<unparseable connection string>"``: its parse error
    would quote it, so no part of it is shown.

    Example:
        >>> redact_conninfo("postgresql://app:s3cret@db:5432/prod")
        'postgresql://app:***@db:5432/prod'
    """
    try:
        params = conninfo_to_dict(conninfo)
        if conninfo.lstrip().startswith(_URI_SCHEMES):
            redacted = _redact_uri(conninfo.strip())
        elif "password" in params:
            redacted = make_conninfo("", **{**params, "password": MASK})
        else:
            redacted = conninfo
        secret = params.get("password")
        # Belt and braces: a password that still shows up verbatim (libpq accepting an odd
        # spelling we did not rewrite) must not leak through the "redacted" text.
        if secret and str(secret) in redacted and str(secret) != MASK:
            return UNPARSEABLE
        return redacted
    except Exception:  # any failure means "do not show it"; this must never raise
        return UNPARSEABLE


def _redact_uri(uri: str) -> str:
    parts = urlsplit(uri)
    userinfo, at, hosts = parts.netloc.rpartition("@")
    if at:
        user, colon, _ = userinfo.partition(":")
        netloc = f"{user}:{MASK}@{hosts}" if colon else parts.netloc
    else:
        netloc = parts.netloc
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = "&".join(
            f"{quote(k, safe='')}={MASK if k == 'password' else quote(v, safe='')}"
            for k, v in pairs
        )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


@dataclass(frozen=True)
class ParsedConninfo:
    """A validated connection string split into a password-free part and the password.

    Attributes:
        conninfo: ``key=value`` connection string without the password (safe to show to
            psycopg_pool, which logs it in some messages).
        password: The password, or None; passed to libpq as a separate keyword.
        display: The redacted original, for messages and reprs.
        where: ``host:port/dbname``, for short messages.
    """

    conninfo: str
    password: str | None = field(repr=False)
    display: str
    where: str

    def scrub(self, text: str) -> str:
        """``text`` with any verbatim occurrence of the password masked.

        A defence in depth (libpq's connection errors do not quote the password); passwords
        shorter than 4 characters are left alone, or "x" would mangle every word with an x.
        """
        if self.password and len(self.password) >= 4:
            text = text.replace(self.password, MASK)
        return text


def parse_conninfo(conninfo: str) -> ParsedConninfo:
    """Validate ``conninfo`` and split the password out of it.

    Raises:
        InvalidConnectionStringError: libpq cannot parse it (the message never repeats it).
    """
    if not isinstance(conninfo, str):
        raise InvalidConnectionStringError(
            f"a PostgreSQL connection string must be a str, not {type(conninfo).__name__}"
        )
    try:
        params = conninfo_to_dict(conninfo)
        password = params.pop("password", None)
        stripped = make_conninfo("", **params)
    except (psycopg.Error, ValueError, TypeError):
        params = None
    if params is None:
        # Raised outside the except block: libpq's error (which quotes the string) must not
        # ride along as __context__ into a traceback.
        raise InvalidConnectionStringError(
            "invalid PostgreSQL connection string: expected "
            "postgresql://user:password@host:port/dbname or 'key=value ...' pairs "
            "(the string is not shown: it may contain a password)"
        )
    host = str(params.get("host") or params.get("hostaddr") or "localhost")
    port = str(params.get("port") or "5432")
    dbname = str(params.get("dbname") or params.get("user") or "")
    return ParsedConninfo(
        conninfo=stripped,
        password=None if password is None else str(password),
        display=redact_conninfo(conninfo),
        where=f"{host}:{port}/{dbname}",
    )
