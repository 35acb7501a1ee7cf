"""The real-request guard: loopback always passes, everything else is refused when blocked."""

from __future__ import annotations

from collections.abc import Iterator

import llm_client
import llm_client.testing as testing
import pytest
from llm_client.testing import (
    BLOCK_ENV_VAR,
    RealRequestsBlockedError,
    allow_real_requests,
    block_real_requests,
    check_request_allowed,
    is_loopback_url,
    real_requests_allowed,
    set_real_requests_allowed,
)

REMOTE = "https://api.openai.com/v1"


@pytest.fixture(autouse=True)
def _restore_guard() -> Iterator[None]:
    yield
    set_real_requests_allowed(None)


@pytest.mark.parametrize(
    ("url", "loopback"),
    [
        ("http://127.0.0.1:8000/v1", True),
        ("http://127.9.9.9/v1", True),
        ("http://localhost:1234", True),
        ("http://LOCALHOST./v1", True),
        ("http://testmodel.localhost/v1", True),
        ("http://[::1]:8080/v1", True),
        ("127.0.0.1:8000", True),
        ("https://openrouter.ai/api/v1", False),
        ("https://api.z.ai/api/paas/v4", False),
        ("http://localhost.example.com", False),
        ("http://10.0.0.1/v1", False),
        ("http://0.0.0.0:8000", False),
        ("", False),
        (None, False),
        ("http://[not-an-ip", False),
    ],
)
def test_is_loopback_url(url: str | None, loopback: bool) -> None:
    assert is_loopback_url(url) is loopback


def test_this_suite_blocks_real_requests_by_default() -> None:
    # conftest.py sets LLM_CLIENT_BLOCK_REAL_REQUESTS=1, as every repo test run should.
    assert not real_requests_allowed()
    with pytest.raises(RealRequestsBlockedError):
        check_request_allowed(REMOTE)
    with pytest.raises(RealRequestsBlockedError):
        check_request_allowed(None)
    check_request_allowed("http://127.0.0.1:9/v1")


@pytest.mark.parametrize(
    ("value", "allowed"), [("1", False), ("true", False), ("0", True), ("", True)]
)
def test_environment_variable(monkeypatch: pytest.MonkeyPatch, value: str, allowed: bool) -> None:
    monkeypatch.setenv(BLOCK_ENV_VAR, value)
    assert real_requests_allowed() is allowed


def test_context_managers_nest_and_restore(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(BLOCK_ENV_VAR)
    check_request_allowed(REMOTE)
    with block_real_requests():
        with pytest.raises(RealRequestsBlockedError):
            check_request_allowed(REMOTE)
        with allow_real_requests():
            check_request_allowed(REMOTE)
        assert not real_requests_allowed()
    assert real_requests_allowed()


def test_module_flag_is_live(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(BLOCK_ENV_VAR)
    assert testing.ALLOW_REAL_REQUESTS is True
    monkeypatch.setattr(testing, "ALLOW_REAL_REQUESTS", False)
    assert testing.ALLOW_REAL_REQUESTS is False
    with pytest.raises(RealRequestsBlockedError):
        check_request_allowed(REMOTE)
    monkeypatch.undo()
    monkeypatch.delenv(BLOCK_ENV_VAR)
    assert testing.ALLOW_REAL_REQUESTS is True
    check_request_allowed(REMOTE)


def test_error_names_the_host_but_never_credentials() -> None:
    with pytest.raises(RealRequestsBlockedError) as caught:
        check_request_allowed("https://user:sk-live-secret@api.example.com/v1?key=sk-live-secret")
    message = str(caught.value)
    assert "api.example.com" in message
    assert "sk-live-secret" not in message
    assert BLOCK_ENV_VAR in message
    # One class for the guard and the client: callers catch llm_client.RealRequestsBlockedError.
    assert caught.type is llm_client.RealRequestsBlockedError
    assert isinstance(caught.value, llm_client.LLMClientError)


def test_public_names_resolve() -> None:
    for name in testing.__all__:
        assert hasattr(testing, name), name
