"""Budget periods: calendar days and months in a configurable IANA time zone.

All stored times are UTC; a period is a half-open UTC interval ``[start, end)`` computed from
local midnight in the tracker's zone, so days are 23 or 25 hours long across DST changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cost_tracker._errors import ConfigurationError, InvalidRecordError

__all__ = ["Periods", "load_zone"]


def load_zone(name: str) -> ZoneInfo:
    """Return the IANA zone ``name`` or raise ConfigurationError.

    Args:
        name: IANA time zone name such as ``"UTC"`` or ``"America/Los_Angeles"``.

    Returns:
        The zone.

    Raises:
        ConfigurationError: The zone is unknown.
    """
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigurationError(f"unknown time zone {name!r}") from None


@dataclass(frozen=True, slots=True)
class Periods:
    """Period arithmetic for one time zone.

    Attributes:
        zone: The time zone days and months are counted in.
    """

    zone: tzinfo

    @property
    def name(self) -> str:
        """IANA name of the zone (``"UTC"`` for the default)."""
        return str(self.zone)

    def day_of(self, moment: datetime) -> date:
        """Local calendar day containing ``moment`` (which must be timezone-aware)."""
        return aware(moment).astimezone(self.zone).date()

    def month_of(self, moment: datetime) -> date:
        """First day of the local calendar month containing ``moment``."""
        return self.day_of(moment).replace(day=1)

    def local_midnight(self, day: date) -> datetime:
        """UTC instant of local midnight starting ``day``."""
        # zoneinfo resolves a midnight inside a DST gap with the pre-transition offset, which
        # lands on the first instant that exists on that day; PostgreSQL does the same.
        return datetime.combine(day, time(0), tzinfo=self.zone).astimezone(UTC)

    def day_bounds(self, day: date) -> tuple[datetime, datetime]:
        """UTC ``[start, end)`` of the local calendar ``day``."""
        return self.local_midnight(day), self.local_midnight(day + timedelta(days=1))

    def month_bounds(self, month: date) -> tuple[datetime, datetime]:
        """UTC ``[start, end)`` of the local calendar month containing ``month``."""
        first = month.replace(day=1)
        following = date(first.year + (first.month == 12), first.month % 12 + 1, 1)
        return self.local_midnight(first), self.local_midnight(following)

    def to_utc(self, value: date | datetime) -> datetime:
        """A datetime as UTC, or a date as its local midnight in UTC."""
        if isinstance(value, datetime):
            return aware(value).astimezone(UTC)
        return self.local_midnight(value)


def aware(moment: datetime) -> datetime:
    """Return ``moment`` unchanged, or raise InvalidRecordError when it is naive."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InvalidRecordError("datetimes must be timezone-aware")
    return moment
