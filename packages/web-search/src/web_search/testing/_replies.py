"""Scripted replies and deterministic synthetic results for the fake search servers."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["RecordedRequest", "Reply", "generate_results", "invalid_request", "normalise_query"]

ReplyKind = Literal[
    "ok", "rate_limit", "insufficient_balance", "unauthorized", "bad_request", "server_error", "raw"
]

_HOST_POOL = (
    "www.example.com",
    "news.example.org",
    "lao.ca.gov",
    "www.ca.gov",
    "leginfo.legislature.ca.gov",
    "data.census.gov",
    "www.brookings.edu",
    "www.berkeley.edu",
    "www.irs.gov",
    "www.sec.gov",
    "calmatters.org",
    "www.ppic.org",
)
_DATE_STYLES = (
    "{y}-{m:02d}-{d:02d}",
    "{y}年{m}月{d}日",
    "{y}-{m:02d}-{d:02d} 08:30:00",
    "",
    "Oct {d}, {y}",
)


def normalise_query(query: str) -> str:
    """Case- and space-folded query, the unit the fake counts calls by."""
    return re.sub(r"\s+", " ", query).strip().casefold()


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request the fake received.

    Attributes:
        method: HTTP method.
        path: Request path.
        headers: Lower-cased headers; ``authorization`` shows only the scheme (``Bearer ***``).
        json: Parsed JSON body, or None when it was not JSON.
        query: Normalised search query of the body, or ''.
        bearer_ok: Whether the bearer token matched the server's ``api_key`` (True when unset).
    """

    method: str
    path: str
    headers: dict[str, str]
    json: Any
    query: str
    bearer_ok: bool = True


@dataclass(frozen=True, slots=True)
class Reply:
    """What the fake answers to one request. Build with the class methods.

    Attributes:
        kind: Which answer: generated results, one of the documented errors, or a raw body.
        results: Explicit ``search_result`` entries (z.ai shape) instead of generated ones.
        latency: Seconds to wait before answering (None: the server default).
        hang: Never answer (until the server stops or ``release_hangs``).
        retry_after: ``Retry-After`` seconds for rate limits.
        status: HTTP status for ``raw`` and ``server_error``.
        body: Raw body for ``raw``.
        headers: Extra response headers.
    """

    kind: ReplyKind = "ok"
    results: list[dict[str, Any]] | None = None
    latency: float | None = None
    hang: bool = False
    retry_after: float | None = None
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def ok(
        cls, results: list[dict[str, Any]] | None = None, *, latency: float | None = None
    ) -> Reply:
        """Generated results (or ``results``, z.ai-shaped dicts) after ``latency`` seconds."""
        return cls("ok", results=results, latency=latency)

    @classmethod
    def empty(cls, *, latency: float | None = None) -> Reply:
        """A valid answer with no results."""
        return cls("ok", results=[], latency=latency)

    @classmethod
    def rate_limited(cls, retry_after: float | None = 0.0) -> Reply:
        """HTTP 429 with z.ai code 1302 and ``Retry-After``."""
        return cls("rate_limit", retry_after=retry_after, status=429)

    @classmethod
    def insufficient_balance(cls) -> Reply:
        """HTTP 429 with z.ai code 1113 (Tavily: 432)."""
        return cls("insufficient_balance", status=429)

    @classmethod
    def unauthorized(cls) -> Reply:
        """HTTP 401."""
        return cls("unauthorized", status=401)

    @classmethod
    def bad_request(cls) -> Reply:
        """HTTP 400 with z.ai code 1214."""
        return cls("bad_request", status=400)

    @classmethod
    def server_error(cls, status: int = 500) -> Reply:
        """HTTP 5xx."""
        return cls("server_error", status=status)

    @classmethod
    def hang_forever(cls) -> Reply:
        """No answer: the client's timeout fires."""
        return cls("ok", hang=True)

    @classmethod
    def raw(cls, status: int, body: bytes, headers: dict[str, str] | None = None) -> Reply:
        """Exactly this status and body."""
        return cls("raw", status=status, body=body, headers=dict(headers or {}))

    def render(
        self, api: Literal["zai", "tavily"], request_id: str
    ) -> tuple[int, dict[str, str], bytes]:
        """Status, headers and body of an error reply in ``api``'s documented shape."""
        headers = dict(self.headers)
        if self.kind == "raw":
            return self.status, headers, self.body
        zai_errors = {
            "rate_limit": ("1302", "High concurrency usage of this API, please reduce concurrency"),
            "insufficient_balance": (
                "1113",
                "Insufficient balance or no resource package. Please recharge.",
            ),
            "unauthorized": ("1002", "Invalid Authentication Token"),
            "bad_request": (
                "1214",
                "Invalid search_query parameter. Please check the documentation",
            ),
            "server_error": ("500", "Internal Error"),
        }
        code, message = zai_errors[self.kind]
        status = self.status
        if self.kind == "rate_limit" and self.retry_after is not None:
            headers["Retry-After"] = f"{self.retry_after:g}"
        if api == "tavily":
            if self.kind == "insufficient_balance":
                status = 432
            body: dict[str, Any] = {"detail": {"error": message}}
        else:
            body = {"error": {"code": code, "message": message}, "request_id": request_id}
        return status, headers, json.dumps(body).encode()


def _digest(*parts: object) -> str:
    return hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()


def generate_results(
    query: str, count: int, domains: list[str] | None, seed: str = "fake"
) -> list[dict[str, Any]]:
    """Deterministic z.ai-shaped results: different queries give different links.

    With ``domains`` every link is on one of them (round-robin); without, hosts come from a
    fixed pool of government, university, policy and commercial sites.
    """
    slug = re.sub(r"[^a-z0-9]+", "-", normalise_query(query)).strip("-")[:40] or "q"
    results: list[dict[str, Any]] = []
    for i in range(count):
        digest = _digest(seed, normalise_query(query), ",".join(domains or []), i)
        if domains:
            domain = domains[i % len(domains)].removeprefix("*.")
            host = domain if i % 3 else f"www.{domain}" if domain.count(".") == 1 else domain
        else:
            host = _HOST_POOL[int(digest[:8], 16) % len(_HOST_POOL)]
        month, day = 1 + int(digest[8:10], 16) % 12, 1 + int(digest[10:12], 16) % 28
        style = _DATE_STYLES[int(digest[12:14], 16) % len(_DATE_STYLES)]
        results.append(
            {
                "title": f"{query} — result {i + 1} ({host})",
                "content": f"Synthetic summary {i + 1} about {query!r} from {host}.",
                "link": f"https://{host}/{slug}/{digest[:10]}",
                "media": host.removeprefix("www."),
                "icon": f"https://{host}/favicon.ico",
                "refer": f"ref_{i + 1}",
                "publish_date": style.format(y=2025, m=month, d=day),
            }
        )
    return results


_RECENCY = {"oneDay", "oneWeek", "oneMonth", "oneYear", "noLimit"}


def invalid_request(api: str, data: Any) -> dict[str, Any] | None:
    """The documented validation the real APIs apply (an error body, or None when valid)."""

    def zai_error(message: str) -> dict[str, Any]:
        return {"error": {"code": "1214", "message": message}}

    if not isinstance(data, dict):
        return (
            zai_error("request body is not a JSON object")
            if api == "zai"
            else {"detail": {"error": "invalid body"}}
        )
    if api == "tavily":
        ok = isinstance(data.get("query"), str) and data["query"].strip() != ""
        max_results = data.get("max_results", 5)
        ok = ok and isinstance(max_results, int) and 0 <= max_results <= 20
        ok = ok and data.get("time_range") in (
            None,
            "day",
            "week",
            "month",
            "year",
            "d",
            "w",
            "m",
            "y",
        )
        return None if ok else {"detail": {"error": "invalid request"}}
    if not data.get("search_engine"):
        return zai_error("search_engine parameter not received properly")
    query = data.get("search_query")
    if not isinstance(query, str) or not query.strip():
        return zai_error("search_query parameter not received properly")
    count = data.get("count", 10)
    if not isinstance(count, int) or not 1 <= count <= 50:
        return zai_error("Invalid count parameter")
    if data.get("search_recency_filter", "noLimit") not in _RECENCY:
        return zai_error("Invalid search_recency_filter parameter")
    domain = data.get("search_domain_filter")
    if domain is not None and (not isinstance(domain, str) or "*" in domain or "," in domain):
        return zai_error("Invalid search_domain_filter parameter")
    return None
