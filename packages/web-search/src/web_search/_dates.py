"""Publication dates as providers send them: ISO or not (``2025年10月1日``, ``Oct 1, 2025``)."""

from __future__ import annotations

import functools
import re
from datetime import UTC, date, datetime, time

__all__ = ["parse_publish_date"]

_MONTHS = {
    name: number
    for number, names in enumerate(
        [
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ],
        start=1,
    )
    for name in names
}

# Year-month-day with any of the separators seen in the wild, an optional time after it.
_YMD = re.compile(
    r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?"
    r"(?:[T\s]+(\d{1,2})[:时](\d{2})(?:[:分](\d{2})(?:\.\d+)?)?秒?\s*(Z|[+-]\d{2}:?\d{2})?)?$"
)
_YM_ONLY = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*月?$")
_MONTH_FIRST = re.compile(r"^([A-Za-z]{3,9})\.?\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4})$")
_DAY_FIRST = re.compile(r"^(\d{1,2})(?:st|nd|rd|th)?\s+([A-Za-z]{3,9})\.?,?\s+(\d{4})$")


def _tz_offset(text: str | None) -> str:
    if not text or text == "Z":
        return "+00:00"
    return text if ":" in text else f"{text[:3]}:{text[3:]}"


@functools.lru_cache(maxsize=8192)  # pure; called for every result of every search
def parse_publish_date(raw: str | None) -> datetime | date | None:
    """Parse a provider's publication date.

    A value with a time becomes a timezone-aware UTC ``datetime`` (a value without a zone is
    taken as UTC); a value with only a day becomes a ``date``. Unparseable or empty values give
    None, so callers keep the raw string for display.

    Args:
        raw: The provider's string, e.g. ``2025-10-01``, ``2025-10-01T08:30:00Z``,
            ``2025年10月1日``, ``2025/10/01 08:30``, ``Oct 1, 2025``, ``1 October 2025``.

    Returns:
        The parsed date or datetime, or None.
    """
    if raw is None:
        return None
    text = raw.strip()
    if not text:
        return None
    try:
        if match := _YMD.match(text):
            year, month, day, hour, minute, second, zone = match.groups()
            day_value = date(int(year), int(month), int(day))
            if hour is None:
                return day_value
            clock = time(int(hour), int(minute), int(second or 0))
            moment = datetime.fromisoformat(f"{day_value.isoformat()}T{clock}{_tz_offset(zone)}")
            return moment.astimezone(UTC)
        if match := _YM_ONLY.match(text):
            return date(int(match.group(1)), int(match.group(2)), 1)
        if match := _MONTH_FIRST.match(text):
            month_name, day_text, year = match.groups()
            return date(int(year), _MONTHS[month_name.lower()], int(day_text))
        if match := _DAY_FIRST.match(text):
            day_text, month_name, year = match.groups()
            return date(int(year), _MONTHS[month_name.lower()], int(day_text))
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, KeyError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
