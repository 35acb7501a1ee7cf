"""Deterministic text heuristics behind the offline model: amounts, dates, cost categories.

They make the offline pipeline's output bill-specific (real figures from the bill, cited) so the
README's first command shows something sensible without any API key. They are not a substitute
for a model's reading of a bill.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

__all__ = [
    "CATEGORY_KEYWORDS",
    "Finding",
    "categories_in",
    "find_amounts",
    "find_dates",
    "first_sentences",
    "sentences",
]

CATEGORY_KEYWORDS: dict[str, tuple[str, ...]] = {
    "housing": ("rent", "tenant", "housing", "dwelling", "landlord", "mortgage", "parking"),
    "energy": ("electric", "energy", "utility", "utilities", "gas", "ratepayer", "solar"),
    "health": ("health", "insurance", "premium", "drug", "prescription", "medical", "fertility"),
    "taxes": ("tax", "taxes", "taxpayer", "credit against", "deduction"),
    "wages": ("wage", "wages", "minimum wage", "salary", "employee", "worker", "per hour"),
    "fees": ("fee", "fees", "fine", "surcharge", "penalty", "charge"),
    "transportation": ("transit", "vehicle", "fuel", "toll", "transportation", "automobile"),
    "food": ("food", "grocery", "groceries", "restaurant", "meal", "nutrition"),
    "childcare": ("child care", "childcare", "preschool", "daycare", "child-care"),
}
POPULATIONS: dict[str, str] = {
    "housing": "renters, homebuyers and landlords",
    "energy": "households paying utility bills",
    "health": "insured individuals and families",
    "taxes": "taxpayers",
    "wages": "workers and their employers",
    "fees": "people paying the affected fees",
    "transportation": "commuters and vehicle owners",
    "food": "consumers and food workers",
    "childcare": "families with young children",
    "other": "residents of the jurisdiction",
}
_DECREASE = ("waive", "exempt", "credit", "rebate", "reduce", "lower", "cap", "prohibit",
             "discount", "relief", "refund", "may not exceed", "free of charge")  # fmt: skip
_INCREASE = ("increase", "raise", "impose", "surcharge", "additional", "higher", "shall pay",
             "assess", "minimum wage")  # fmt: skip
_MONEY = re.compile(
    r"\$\s?(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d{1,2}))?(?:\s+(million|billion|thousand))?", re.I
)
_PERCENT = re.compile(r"(\d+(?:\.\d+)?)\s?(?:%|percent\b)", re.I)
_DATE = re.compile(
    r"\b(?:January|February|March|April|May|June|July|August|September|October|November|"
    r"December)\s+\d{1,2},\s+\d{4}\b"
)
_SENT = re.compile(r"(?<=[.;])\s+(?=[A-Z(])")
_SCALE = {"thousand": Decimal(1_000), "million": Decimal(1_000_000), "billion": Decimal(10**9)}


@dataclass(frozen=True, slots=True)
class Finding:
    """A quantified statement found in text.

    Attributes:
        amount: The number (dollars or percent).
        unit: ``USD`` or ``percent``.
        period: ``per hour``, ``per month``, ``per year`` or None.
        text: The figure as written.
        sentence: The sentence it appears in.
        category: Cost category inferred from the sentence.
        direction: ``increase``, ``decrease`` or ``unclear``.
    """

    amount: Decimal
    unit: str
    period: str | None
    text: str
    sentence: str
    category: str
    direction: str


def sentences(text: str) -> list[str]:
    """Split text into sentences (roughly; bills are not prose)."""
    return [s.strip() for s in _SENT.split(" ".join(text.split())) if s.strip()]


def first_sentences(text: str, limit: int = 320) -> str:
    """The opening sentences of ``text``, at most ``limit`` characters, cut on a word."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    return flat[:limit].rsplit(" ", 1)[0] + " …"


def category_of(text: str) -> str:
    """The cost category whose keywords appear most in ``text`` (``other`` if none)."""
    low = text.lower()
    scores = {c: sum(low.count(k) for k in kws) for c, kws in CATEGORY_KEYWORDS.items()}
    best = max(scores, key=lambda c: scores[c])
    return best if scores[best] else "other"


@functools.lru_cache(maxsize=256)
def categories_in(text: str, minimum: int = 3) -> tuple[str, ...]:
    """Categories mentioned at least ``minimum`` times in ``text``, most mentioned first."""
    low = text.lower()
    scores = {c: sum(low.count(k) for k in kws) for c, kws in CATEGORY_KEYWORDS.items()}
    return tuple(c for c in sorted(scores, key=lambda c: -scores[c]) if scores[c] >= minimum)


def direction_of(text: str) -> str:
    """``increase``/``decrease``/``mixed``/``unclear`` from cue words in ``text``."""
    low = text.lower()
    up = any(k in low for k in _INCREASE)
    down = any(k in low for k in _DECREASE)
    if up and down:
        return "mixed"
    return "increase" if up else "decrease" if down else "unclear"


def _period(context: str) -> str | None:
    low = context.lower()
    if "per hour" in low or "an hour" in low or "hourly" in low:
        return "per hour"
    if "per month" in low or "monthly" in low or "a month" in low:
        return "per month"
    if "per year" in low or "annual" in low or "per annum" in low or "each year" in low:
        return "per year"
    return None


@functools.lru_cache(maxsize=256)  # one bill is read by generate, review and refine alike
def find_amounts(text: str, limit: int = 40) -> tuple[Finding, ...]:
    """Dollar amounts and percentages with their sentence, category and direction."""
    found: list[Finding] = []
    for sentence in sentences(text):
        for match in _MONEY.finditer(sentence):
            whole, cents, scale = match.group(1), match.group(2), match.group(3)
            try:
                amount = Decimal(whole.replace(",", "") + (f".{cents}" if cents else ""))
            except InvalidOperation:
                continue
            if scale:
                amount *= _SCALE[scale.lower()]
            tail = sentence[match.end() : match.end() + 40]
            period = _period(tail)
            found.append(
                Finding(
                    amount,
                    "USD",
                    period,
                    match.group(0).strip(),
                    sentence,
                    category_of(sentence),
                    direction_of(sentence),
                )
            )
        for match in _PERCENT.finditer(sentence):
            found.append(
                Finding(
                    Decimal(match.group(1)),
                    "percent",
                    None,
                    match.group(0),
                    sentence,
                    category_of(sentence),
                    direction_of(sentence),
                )
            )
        if len(found) >= limit:
            break
    return tuple(found[:limit])


@functools.lru_cache(maxsize=256)
def find_dates(text: str, limit: int = 8) -> tuple[str, ...]:
    """Calendar dates (``January 1, 2027``) in order of appearance, without repeats."""
    out: list[str] = []
    for match in _DATE.finditer(text):
        if match.group(0) not in out:
            out.append(match.group(0))
        if len(out) >= limit:
            break
    return tuple(out)
