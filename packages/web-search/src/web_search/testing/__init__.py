"""Test doubles for apps and this repo: a loopback z.ai/Tavily-compatible search server.

Example:
    >>> from web_search.testing import FakeZaiSearchServer, Reply
    >>> with FakeZaiSearchServer() as server:
    ...     server.script(Reply.rate_limited(retry_after=0), Reply.ok())
"""

from ._offline import offline_search_client
from ._replies import RecordedRequest, Reply, generate_results, normalise_query
from ._server import FakeZaiSearchServer

__all__ = [
    "FakeZaiSearchServer",
    "RecordedRequest",
    "Reply",
    "generate_results",
    "normalise_query",
    "offline_search_client",
]
