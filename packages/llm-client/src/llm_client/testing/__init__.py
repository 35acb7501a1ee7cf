"""Test doubles for code that calls LLMs through ``llm_client``: no network, no keys, no mocks.

Two fakes share one scriptable core (:class:`Responder`), so a test scripts both the same way:

* :class:`TestModel` answers in-process as an ``httpx`` transport. It is what ``model="test"``
  runs on, and what to use for fast unit tests and benchmarks.
* :class:`FakeLLMServer` is a real OpenAI-compatible HTTP/1.1 server on 127.0.0.1 in a background
  thread. Point ``LLMClient`` (``model="openai/<name>"``, ``api_base=server.base_url``), the
  ``openai`` SDK or LiteLLM at it to test retries, timeouts and dropped connections end to end.

Replies are :class:`Reply` objects: ``Reply.text``, ``Reply.json``, ``Reply.fenced_json``,
``Reply.invalid_json``, ``Reply.tool_call``, ``Reply.auto`` (schema-valid output for whatever
the request asks), ``Reply.error`` (429 with ``Retry-After``, 5xx), ``Reply.zai_error`` (z.ai's
1113 / 1214 bodies), ``Reply.hang`` and ``Reply.drop``; ``.with_usage(...)`` sets token counts
and OpenRouter's ``usage.cost``. Each request takes the next scripted reply, else the
``handler``'s answer, else the default (``Reply.auto()``). Every request is recorded as a
:class:`RecordedRequest` (model, messages, body, headers with credentials redacted).

A fixture to copy into an app's ``conftest.py``::

    import pytest
    from llm_client.testing import FakeLLMServer

    @pytest.fixture(scope="session")
    def _llm_server():
        with FakeLLMServer() as server:
            yield server

    @pytest.fixture
    def llm_server(_llm_server):
        _llm_server.reset()
        return _llm_server

To make sure a test suite never calls a paid provider, set ``LLM_CLIENT_BLOCK_REAL_REQUESTS=1``
(or ``llm_client.testing.ALLOW_REAL_REQUESTS = False``, or ``with block_real_requests():``):
requests to non-loopback endpoints then raise :class:`RealRequestsBlockedError`.
"""

from __future__ import annotations

import sys
import types

from llm_client._errors import RealRequestsBlockedError

# The guard lives in the core (llm_client._guard); it is exported here next to the doubles.
from llm_client._guard import (
    BLOCK_ENV_VAR,
    allow_real_requests,
    block_real_requests,
    check_request_allowed,
    is_loopback_url,
    real_requests_allowed,
    set_real_requests_allowed,
)

from ._completion import AUTO_TEXT, approx_tokens
from ._errors import LLMTestingError
from ._reply import Reply, UsageOverride
from ._responder import RecordedRequest, Responder
from ._schema import SchemaGenerationError, instance_from_schema, valid_instance
from ._server import FakeLLMServer
from ._transport import TestModel

__all__ = [
    "ALLOW_REAL_REQUESTS",
    "AUTO_TEXT",
    "BLOCK_ENV_VAR",
    "FakeLLMServer",
    "LLMTestingError",
    "RealRequestsBlockedError",
    "RecordedRequest",
    "Reply",
    "Responder",
    "SchemaGenerationError",
    "TestModel",
    "UsageOverride",
    "allow_real_requests",
    "approx_tokens",
    "block_real_requests",
    "check_request_allowed",
    "instance_from_schema",
    "is_loopback_url",
    "real_requests_allowed",
    "set_real_requests_allowed",
    "valid_instance",
]

ALLOW_REAL_REQUESTS: bool
"""Whether requests to non-loopback providers are allowed (read and assign it like a variable).

Reading it reports :func:`real_requests_allowed`; assigning ``False``/``True`` (or
``monkeypatch.setattr``) calls :func:`set_real_requests_allowed`.
"""


class _TestingModule(types.ModuleType):
    # A module-level flag that the guard actually sees when assigned: plain module globals would
    # be copied by the re-export, and assigning the copy would silently change nothing.
    @property
    def ALLOW_REAL_REQUESTS(self) -> bool:
        return real_requests_allowed()

    @ALLOW_REAL_REQUESTS.setter
    def ALLOW_REAL_REQUESTS(self, value: bool | None) -> None:
        set_real_requests_allowed(value)


sys.modules[__name__].__class__ = _TestingModule
