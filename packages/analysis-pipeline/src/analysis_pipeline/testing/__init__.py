"""Offline stand-ins for tests, demos and the CLI's keyless mode (never imported by the core).

- :func:`offline_models` / :func:`offline_handler`: llm-client test models whose handler reads a
  pipeline request (its ``Task:`` tag, bill, sources, draft) and answers schema-valid,
  bill-specific JSON from deterministic text heuristics.
- :class:`OfflineSearch`: a bundled, clearly fictional search fixture.
- :func:`offline_legacy_analyser`: a keyword-based stand-in for an app's legacy analyser, to
  try shadow mode (``analysis-pipeline shadow --legacy``) without the app.
- :func:`structured_reply`, :func:`offline_answer`, :func:`task_of`: building blocks for
  scripted test handlers.

Example:
    >>> from analysis_pipeline.testing import OfflineSearch, offline_models
    >>> result = await AnalysisPipeline(llm, OfflineSearch()).run(
    ...     "EX-AB0042-2026", text, "Exampleland", offline_models())
"""

from ._legacy import offline_legacy_analyser
from ._offline import offline_answer, offline_handler, offline_models, structured_reply, task_of
from ._offline_search import OfflineSearch

__all__ = [
    "OfflineSearch",
    "offline_answer",
    "offline_handler",
    "offline_legacy_analyser",
    "offline_models",
    "structured_reply",
    "task_of",
]
