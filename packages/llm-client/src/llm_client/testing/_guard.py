"""The real-request guard, as ``llm_client.testing`` exports it (it lives in the core).

The core's :mod:`llm_client._guard` owns the switch; this module re-exports it next to the test
doubles, so ``from llm_client.testing import block_real_requests`` keeps working.
"""

from __future__ import annotations

from llm_client._errors import LLMClientError, RealRequestsBlockedError
from llm_client._guard import (
    BLOCK_ENV_VAR,
    allow_real_requests,
    block_real_requests,
    check_request_allowed,
    is_loopback_url,
    real_requests_allowed,
    set_real_requests_allowed,
)

__all__ = [
    "BLOCK_ENV_VAR",
    "LLMTestingError",
    "RealRequestsBlockedError",
    "allow_real_requests",
    "block_real_requests",
    "check_request_allowed",
    "is_loopback_url",
    "real_requests_allowed",
    "set_real_requests_allowed",
]


class LLMTestingError(LLMClientError):
    """Base class of the errors raised by ``llm_client.testing`` itself."""
