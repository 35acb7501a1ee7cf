"""Who may use the dashboard, and proof that a form was sent from one of its pages.

Two ways in: the mounting app's own auth dependency (its return value names the admin in the
audit trail), or, standalone, one shared token (``LLM_COMMON_DASHBOARD_TOKEN``) given as
``Authorization: Bearer ...`` or through the login form, which sets a signed session cookie.
With neither configured every request is refused (fail closed).

Forms carry a CSRF token bound to a random cookie (double submit, signed with a server key):
a page on another site can neither read the cookie nor forge the signature.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from urllib.parse import parse_qsl

from fastapi import HTTPException, Request

__all__ = [
    "CSRF_COOKIE",
    "CSRF_FIELD",
    "SESSION_COOKIE",
    "Csrf",
    "TokenAuth",
    "read_form",
]

CSRF_COOKIE = "llmc_dash_csrf"
CSRF_FIELD = "csrf_token"
SESSION_COOKIE = "llmc_dash_session"
_MAX_FORM_BYTES = 64 * 1024


def _sign(key: bytes, value: str) -> str:
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


def cookie_path(request: Request) -> str:
    """The path cookies are scoped to: where the dashboard is mounted."""
    return str(request.scope.get("root_path") or "") or "/"


@dataclass(frozen=True, slots=True)
class Csrf:
    """Double-submit CSRF tokens signed with ``key``.

    Attributes:
        key: Server-side signing key (never sent to the browser).
    """

    key: bytes

    def token_for(self, request: Request) -> tuple[str, str | None]:
        """The form token for this browser, and a new cookie value when it has none yet."""
        seed = request.cookies.get(CSRF_COOKIE)
        fresh = None
        if not seed or len(seed) != 43:
            seed = fresh = secrets.token_urlsafe(32)
        return f"{seed}.{_sign(self.key, seed)}", fresh

    def check(self, request: Request, form: dict[str, str]) -> None:
        """Raise 403 unless the form's token matches this browser's cookie and our signature."""
        seed = request.cookies.get(CSRF_COOKIE) or ""
        sent = form.get(CSRF_FIELD, "")
        expected = f"{seed}.{_sign(self.key, seed)}"
        if not seed or not hmac.compare_digest(sent.encode(), expected.encode()):
            raise HTTPException(403, "CSRF token missing or invalid: reload the page and retry")


async def read_form(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body as a dict (last value wins), size-capped."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in ("application/x-www-form-urlencoded", ""):  # "": an empty form
        raise HTTPException(415, "forms must be sent as application/x-www-form-urlencoded")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > _MAX_FORM_BYTES:
            raise HTTPException(413, "form too large")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        raise HTTPException(400, "form is not UTF-8") from None
    return dict(pairs)


@dataclass(frozen=True, slots=True)
class TokenAuth:
    """The standalone server's shared token (bearer header or login-form session cookie).

    Attributes:
        token: The configured token; None refuses every request.
        session_seconds: How long a login lasts.
    """

    token: str | None
    session_seconds: int = 8 * 3600

    @property
    def _key(self) -> bytes:
        assert self.token is not None
        return hashlib.sha256(b"llm-common-dashboard-session:" + self.token.encode()).digest()

    def require_configured(self) -> str:
        """The token; 503 when none is configured (the server refuses everything until then)."""
        if not self.token:
            raise HTTPException(
                503, "dashboard token not configured: set LLM_COMMON_DASHBOARD_TOKEN"
            )
        return self.token

    def token_matches(self, given: str) -> bool:
        """Whether ``given`` is the configured token (constant time)."""
        token = self.require_configured()
        return hmac.compare_digest(given.encode(), token.encode())

    def session_cookie(self, name: str) -> str:
        """A signed session for admin ``name`` (a login)."""
        self.require_configured()
        expires = int(time.time()) + self.session_seconds
        body = f"{name}|{expires}"
        return f"{body}|{_sign(self._key, body)}"

    def principal(self, request: Request) -> str | None:
        """Who this request is: ``bearer`` or the session's name; None when not logged in."""
        self.require_configured()
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value and self.token_matches(value.strip()):
            return "bearer-token"
        cookie = request.cookies.get(SESSION_COOKIE, "")
        name, _, rest = cookie.partition("|")
        expires, _, signature = rest.partition("|")
        if not (name and expires.isdigit() and signature):
            return None
        if not hmac.compare_digest(signature, _sign(self._key, f"{name}|{expires}")):
            return None
        return name if int(expires) > time.time() else None
