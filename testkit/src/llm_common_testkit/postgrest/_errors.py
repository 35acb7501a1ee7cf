"""PostgREST's error bodies and its SQLSTATE → HTTP status mapping."""

from __future__ import annotations

from typing import Any

import psycopg


class ApiError(Exception):
    """An error answered as PostgREST does: ``{code, message, details, hint}`` + a status."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {
            "code": code,
            "message": message,
            "details": details,
            "hint": hint,
        }


# Exact codes first, then two-character classes (PostgREST's documented table).
_EXACT = {
    "23503": 409,
    "23505": 409,
    "25006": 405,
    "42883": 404,
    "42P01": 404,
    "42P17": 500,
    "P0001": 400,
}
_CLASSES = {
    "08": 503,
    "09": 500,
    "0L": 403,
    "0P": 403,
    "25": 500,
    "28": 403,
    "2D": 500,
    "38": 500,
    "39": 500,
    "3B": 500,
    "40": 500,
    "53": 503,
    "54": 500,
    "55": 500,
    "57": 500,
    "58": 500,
    "F0": 500,
    "HV": 500,
    "P0": 500,
    "XX": 500,
}


def status_for(sqlstate: str, role: str) -> int:
    """HTTP status PostgREST answers for ``sqlstate`` raised while acting as ``role``."""
    if sqlstate == "42501":
        # Insufficient privilege: "log in first" for anonymous callers, "forbidden" otherwise.
        return 401 if role == "anon" else 403
    if sqlstate.startswith("PT") and sqlstate[2:].isdigit():
        return int(sqlstate[2:])  # RAISE ... USING ERRCODE = 'PT402' picks the status
    return _EXACT.get(sqlstate) or _CLASSES.get(sqlstate[:2], 400)


def from_database(exc: psycopg.Error, role: str) -> ApiError:
    """Translate a database error the way PostgREST does."""
    if isinstance(exc, psycopg.OperationalError) and exc.sqlstate is None:
        return ApiError(503, "PGRST001", "Database client error. Retrying the connection.")
    diag = exc.diag
    sqlstate = exc.sqlstate or "XX000"
    return ApiError(
        status_for(sqlstate, role),
        sqlstate,
        diag.message_primary or str(exc),
        diag.message_detail,
        diag.message_hint,
    )
