"""Deterministic subject-term extraction from a bill's title and digest (no model, no network)."""

from __future__ import annotations

import re
from collections import Counter
from itertools import pairwise

__all__ = ["bill_label", "extract_subject_terms"]

_STOP = frozenset(
    """
    a about above act acts added adding after all also amend amended amending amendment amends an
    and any apply applies approved are as at be been before being bill bills by can certain chapter
    code commencing committee congress counsel's cited current day days december deemed defined
    department digest division does each effect either enacted enacts except existing february
    filed following for from general governor had has have he her his however if in include
    includes including into is it its january july june law laws legislative legislature made
    make makes march may member members must no not notwithstanding november october of on one
    or other otherwise paragraph part pursuant relating repeal repealing require required requires
    requiring respect revise same secretary section sections september shall she specified
    specifies state states statute such than that the their them then there thereof these this
    those through to under united until upon was were what when where whether which while who
    will with within would year years assembly senate house representatives session regular
    prescribed provide provided provides provision provisions purposes term terms authorize
    authorizes among between prior new person persons entity entities program programs
    style type month period carrying out draft revision date dates
    """.split()  # noqa: SIM905 - a word list reads better as text
)
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]+")
_DIGEST_SUBJECT = re.compile(
    r"(?:DIGEST\s+)?(?:AB|SB|HB|SF|HF|H\.R\.|S\.)\s*\d+,\s*[A-Z][\w.' -]{0,60}?\.\s+"
    r"(?P<subject>[^.]{5,240})\.",
)
_US_LABEL = {"HR": "H.R.", "S": "S.", "HJRES": "H.J.Res.", "SJRES": "S.J.Res."}


def bill_label(bill_id: str) -> str:
    """Search-friendly bill name: ``CA-AB1482-2019`` becomes ``AB 1482``."""
    match = re.match(r"^(?:[A-Z]{2}-)?([A-Z.]+?)\s*-?(\d+)(?:-\d+)?$", bill_id.strip().upper())
    if not match:
        return bill_id.strip()
    chamber, number = match.groups()
    if bill_id.upper().startswith("US-"):
        chamber = _US_LABEL.get(chamber.replace(".", ""), chamber)
    return f"{chamber} {number}"


def _digest_subjects(head: str) -> list[str]:
    """Subject phrases of a California digest line (``AB 1482, Chiu. Tenant ...: rent caps.``)."""
    match = _DIGEST_SUBJECT.search(head)
    if not match:
        return []
    parts = [p.strip(" ,;") for p in match.group("subject").split(":")]
    return [p for p in parts if 3 <= len(p) <= 60]


def _first_line_title(text: str) -> str:
    line = text.strip().split("\n", 1)[0]
    return line if len(line) <= 400 else ""


def extract_subject_terms(bill_text: str, limit: int = 8) -> list[str]:
    """Subject terms of a bill for research queries, most specific first.

    Digest subject phrases come first (they are the Legislative Counsel's own subject line);
    then the most frequent two-word phrases and words of the opening text (title, digest),
    ignoring legal boilerplate. Deterministic: ties break alphabetically.

    Args:
        bill_text: The bill text (title and digest near the top, as published).
        limit: Most terms to return.
    """
    head = bill_text[:6000]
    terms: list[str] = []
    seen: set[str] = set()

    def add(term: str) -> None:
        folded = term.casefold()
        if folded not in seen and not any(folded in s or s in folded for s in seen):
            seen.add(folded)
            terms.append(term)

    for subject in _digest_subjects(head):
        add(subject)
    words = [
        w.lower().strip("'-") for w in _WORD.findall(_first_line_title(bill_text) + " " + head)
    ]
    content = [w for w in words if w not in _STOP and len(w) > 2]
    bigrams = Counter(
        f"{a} {b}"
        for a, b in pairwise(words)
        if a not in _STOP and b not in _STOP and len(a) > 2 and len(b) > 2
    )
    for phrase, n in sorted(bigrams.items(), key=lambda kv: (-kv[1], kv[0])):
        if n < 2 or len(terms) >= limit:
            break
        add(phrase)
    for word, _n in sorted(Counter(content).items(), key=lambda kv: (-kv[1], kv[0])):
        if len(terms) >= limit:
            break
        add(word)
    return terms[:limit]
