"""The offline mode: a bill-aware test model and a bundled search fixture, no network, no keys.

``offline_models()`` returns ``llm_client.testing.TestModel`` instances whose handler reads the
request (task tag, bill, sources, draft) and answers schema-valid, bill-specific JSON built by
the heuristics in ``_heuristics``: the analysis quotes the bill's real dollar figures and dates,
and the review checks citations and figures against the bill. ``OfflineSearch`` answers queries
from a small bundled fixture. The same handler drives the loopback-server end-to-end tests.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

from llm_client.testing import RecordedRequest, Reply, TestModel

from ._heuristics import (
    CATEGORY_KEYWORDS,
    POPULATIONS,
    categories_in,
    find_amounts,
    find_dates,
    first_sentences,
)

__all__ = [
    "offline_answer",
    "offline_handler",
    "offline_models",
    "structured_reply",
    "task_of",
]

_TASK = re.compile(r"Task:\s*([a-z-]+)")
_SOURCE = re.compile(r"^\[(S\d+)\] (.*)$", re.M)


def _tag(text: str, name: str) -> str:
    match = re.search(rf"<{name}>\n?(.*?)\n?</{name}>", text, re.S)
    return match.group(1) if match else ""


def _field(text: str, name: str) -> str:
    match = re.search(rf"^{name}: (.*)$", text, re.M)
    return match.group(1).strip() if match else ""


def task_of(messages: list[dict[str, Any]]) -> str:
    """The ``Task:`` tag of a pipeline request (``generate-analysis``...), or ''."""
    for message in messages:
        match = _TASK.search(str(message.get("content") or ""))
        if match:
            return match.group(1)
    return ""


def _user_text(messages: list[dict[str, Any]]) -> str:
    return "\n".join(str(m.get("content") or "") for m in messages if m.get("role") == "user")


def _source_ids(text: str) -> dict[str, str]:
    return dict(_SOURCE.findall(_tag(text, "sources")))


def _impacts(bill: str, sources: dict[str, str]) -> list[dict[str, Any]]:
    impacts: dict[str, dict[str, Any]] = {}
    for finding in find_amounts(bill):
        if finding.category in impacts or finding.category == "other" or finding.amount <= 0:
            continue
        cited = [sid for sid, title in sources.items() if finding.category in title.lower()]
        impacts[finding.category] = {
            "category": finding.category,
            "direction": finding.direction,
            "description": first_sentences(finding.sentence, 260),
            "magnitude": {
                "amount": str(finding.amount),
                "unit": finding.unit,
                "period": finding.period,
            },
            "affected_population": POPULATIONS[finding.category],
            "cited_source_ids": ["BILL", *cited[:2]],
            "confidence": 0.7,
        }
    for category in categories_in(bill):
        if category not in impacts and len(impacts) < 6:
            cited = [sid for sid, title in sources.items() if category in title.lower()]
            impacts[category] = {
                "category": category,
                "direction": "unclear",
                "description": f"The bill's {category} provisions change costs; the text gives "
                "no figure for households.",
                "magnitude": None,
                "affected_population": POPULATIONS[category],
                "cited_source_ids": ["BILL", *cited[:2]],
                "confidence": 0.45,
            }
    return list(impacts.values())[:6]


def _gist(bill: str) -> str:
    # California digests say what the bill does in "This bill would ..." sentences.
    flat = " ".join(bill.split())
    start = flat.find("This bill would")
    if start == -1:
        start = flat.find("This bill")
    body = flat[start:] if start != -1 else re.sub(r"^\[[^\]]*\]\s*", "", flat)
    return first_sentences(body, 300)


def _analysis(text: str) -> dict[str, Any]:
    bill = _tag(text, "bill")
    sources = _source_ids(text)
    impacts = _impacts(bill, sources)
    dates = find_dates(bill, 2)
    when = f" Key dates: {', '.join(dates)}." if dates else ""
    areas = ", ".join(i["category"] for i in impacts) or "no identifiable cost area"
    summary = (
        f"{_field(text, 'Bill')} ({_field(text, 'Jurisdiction')}): {_gist(bill)} "
        f"Cost areas affected: {areas}.{when}"
    )
    confidence = 0.65 if any(i["magnitude"] for i in impacts) else 0.45
    return {"summary": summary, "impacts": impacts, "overall_confidence": confidence, "sources": []}


def _review(text: str) -> dict[str, Any]:
    bill = _tag(text, "bill")
    known = set(_source_ids(text)) | {"BILL"}
    draft = json.loads(_tag(text, "draft") or "{}")
    flat = bill.replace(",", "")
    errors: list[dict[str, str]] = []
    for impact in draft.get("impacts", []):
        for sid in impact.get("cited_source_ids", []):
            if sid not in known:
                errors.append({"claim": f"{impact['category']} impact cites {sid}",
                               "correction": f"{sid} is not among the research sources",
                               "evidence": "sources list"})  # fmt: skip
        magnitude = impact.get("magnitude")
        if magnitude and Decimal(str(magnitude["amount"])).normalize() != 0:
            figure = format(Decimal(str(magnitude["amount"])).normalize(), "f")
            if figure not in flat:
                errors.append({"claim": f"{impact['category']} magnitude {figure}",
                               "correction": "the bill states no such figure",
                               "evidence": "BILL"})  # fmt: skip
    covered = {i.get("category") for i in draft.get("impacts", [])}
    missing = [f"{c} impact" for c in categories_in(bill, 6) if c not in covered]
    score = max(0.0, min(1.0, 0.9 - 0.25 * len(errors) - 0.15 * len(missing)))
    passed = not errors and not missing
    critique = (
        "Every impact cites the bill or a listed source and each figure appears in the bill."
        if passed
        else f"{len(errors)} factual error(s) and {len(missing)} missing impact(s) to address."
    )
    return {"passed": passed, "score": round(score, 2), "critique": critique,
            "missing_impacts": missing, "factual_errors": errors}  # fmt: skip


def _queries(text: str) -> dict[str, Any]:
    bill_id, place = _field(text, "Bill"), _field(text, "Jurisdiction")
    bill = _tag(text, "bill")
    queries = [f"{bill_id} {place} fiscal analysis", f"{bill_id} cost impact on households"]
    for category in categories_in(bill, 2)[:4]:
        queries.append(f"{place} {CATEGORY_KEYWORDS[category][0]} costs {bill_id}"[:70])
    return {"queries": queries}


def _condense(text: str) -> dict[str, Any]:
    section = _tag(text, "section")
    amounts = [f"{f.text} ({f.category})" for f in find_amounts(section, 6)]
    return {
        "section": _field(text, "Section").split(" (chunk")[0],
        "summary": first_sentences(section, 300),
        "amounts": amounts,
        "dates": list(find_dates(section, 4)),
        "affected_parties": [POPULATIONS[c] for c in categories_in(section, 2)[:3]],
        "cost_relevant": bool(amounts) or bool(categories_in(section, 2)),
    }


_BUILDERS = {
    "propose-queries": _queries,
    "condense-section": _condense,
    "generate-analysis": _analysis,
    "refine-analysis": _analysis,
    "review-analysis": _review,
}


def offline_answer(messages: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The offline model's structured answer to a pipeline request (None for other requests)."""
    builder = _BUILDERS.get(task_of(messages))
    return None if builder is None else builder(_user_text(messages))


def structured_reply(body: dict[str, Any], obj: Any) -> Reply:
    """Wrap ``obj`` the way the request asks: a tool call in tool mode, else JSON content."""
    tools = body.get("tools")
    if isinstance(tools, list) and tools:
        name = str((tools[0].get("function") or {}).get("name", "tool"))
        return Reply.tool_call(name, obj)
    return Reply.json(obj)


def offline_handler(request: RecordedRequest) -> Reply | None:
    """``TestModel``/``FakeLLMServer`` handler answering pipeline requests offline."""
    answer = offline_answer(request.messages)
    return None if answer is None else structured_reply(request.body, answer)


def offline_models() -> dict[str, TestModel]:
    """Offline test models per step; review uses a differently named model than generate."""
    analyst = TestModel(handler=offline_handler, name="offline-analyst")
    return {
        "research": analyst,
        "condense": analyst,
        "generate": analyst,
        "review": TestModel(handler=offline_handler, name="offline-reviewer"),
        "refine": analyst,
    }
