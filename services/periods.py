"""Report periods, as PRODUCT.md defines them.

A period is a half-open range of local dates ``[start, end)`` in the organization's time zone;
its UTC bounds are the local midnights, so a day that loses or gains an hour to daylight saving
is still one day. Weeks start on Monday; quarters and years follow the fiscal-year start month.

A to-date period (MTD, QTD, YTD) asked for at a moment ends at that moment, not at midnight:
``until`` holds its end as local wall-clock time, on the last of its days. Its comparison is
the same elapsed span of the previous month, quarter or year, ending at the same local day and
time, clamped to that period's end (on 31 March, month-to-date compares with all of February).

Comparison periods: for a range (and a week), the range of equal length just before it; for
MTD, QTD and YTD, the same elapsed span of the previous month, quarter or year; for a whole
month, quarter or year, the whole one before it; YoY, the same range one year earlier.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo, available_timezones

from tzlocal.windows_tz import win_tz

from services.errors import DomainError
from services.schemas import DATE_RANGE_MESSAGE, in_date_range

TO_DATE = {"mtd": 1, "qtd": 3, "ytd": 12}  # to-date kinds, and the months their comparison steps back
KINDS = (
    "this_week",
    "last_week",
    "this_month",
    "last_month",
    "this_quarter",
    "last_quarter",
    "this_year",
    "last_year",
    "mtd",
    "qtd",
    "ytd",
)


def period_label(kind: str) -> str:
    """A period's kind as a page names it: "This week", "MTD"."""
    words = kind.replace("_", " ")
    return words.upper() if kind in TO_DATE else words.capitalize()


@dataclass(frozen=True)
class Period:
    start: date  # the first local day in the period
    end: date  # the first local day after it
    kind: str = "custom"
    until: datetime | None = None  # a to-date period's end: naive local wall-clock time on its last day

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise DomainError("A period ends after it starts.")
        if self.until is not None and not (self.start <= self.until.date() < self.end):
            raise DomainError("A period's end time falls on its last day.")

    @property
    def end_point(self) -> datetime:
        """Where the period ends, as naive local wall-clock time."""
        return self.until or datetime.combine(self.end, time())

    @property
    def whole_days_end(self) -> date:
        """The first day not wholly inside the period (daily rollups serve the days before it)."""
        return self.until.date() if self.until else self.end

    @property
    def last_day(self) -> date:
        return self.end - timedelta(days=1)

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    def utc_bounds(self, zone: str) -> tuple[datetime, datetime]:
        return local_midnight(self.start, zone), self.end_point.replace(tzinfo=ZoneInfo(zone)).astimezone(timezone.utc)


def local_midnight(day: date, zone: str) -> datetime:
    """The UTC instant ``day`` begins in ``zone``: its local midnight."""
    return datetime.combine(day, time(), tzinfo=ZoneInfo(zone)).astimezone(timezone.utc)


def add_months(day: date, months: int) -> date:
    """The same day-of-month ``months`` later, clamped to the month's last day."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    last = (date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)).day
    return date(year, month, min(day.day, last))


def _quarter_start(today: date, fiscal_start_month: int) -> date:
    offset = (today.month - fiscal_start_month) % 3
    return add_months(date(today.year, today.month, 1), -offset)


def fiscal_year_start(day: date, fiscal_start_month: int) -> date:
    """The first day of the fiscal year (starting in ``fiscal_start_month``) that ``day`` falls in."""
    year = day.year if day.month >= fiscal_start_month else day.year - 1
    return date(year, fiscal_start_month, 1)


def period_for(kind: str, today: date, fiscal_start_month: int = 1, now: datetime | None = None) -> Period:
    """The named period containing (or, for "last_...", just before) ``today``. Given ``now``
    (naive local wall-clock time on ``today``), a to-date period ends then."""
    week = today - timedelta(days=today.weekday())
    month = date(today.year, today.month, 1)
    quarter = _quarter_start(today, fiscal_start_month)
    year = fiscal_year_start(today, fiscal_start_month)
    tomorrow = today + timedelta(days=1)
    periods = {
        "this_week": (week, week + timedelta(days=7)),
        "last_week": (week - timedelta(days=7), week),
        "this_month": (month, add_months(month, 1)),
        "last_month": (add_months(month, -1), month),
        "this_quarter": (quarter, add_months(quarter, 3)),
        "last_quarter": (add_months(quarter, -3), quarter),
        "this_year": (year, add_months(year, 12)),
        "last_year": (add_months(year, -12), year),
        "mtd": (month, tomorrow),
        "qtd": (quarter, tomorrow),
        "ytd": (year, tomorrow),
    }
    if kind not in periods:
        raise DomainError(f"Unknown period {kind!r}.")
    start, end = periods[kind]
    if kind in TO_DATE and now is not None:
        return Period(start, end, kind, until=now.replace(tzinfo=None))
    return Period(start, end, kind)


def comparison_for(period: Period, year_over_year: bool = False) -> Period:
    if year_over_year:
        until = datetime.combine(add_months(period.until.date(), -12), period.until.time()) if period.until else None
        return Period(add_months(period.start, -12), add_months(period.end, -12), f"{period.kind}_yoy", until)
    to_date = TO_DATE.get(period.kind)
    if to_date and period.until is not None:
        # The same elapsed wall-clock span, from the previous period's start, clamped to its end.
        start = add_months(period.start, -to_date)
        end = datetime.combine(start, time()) + (period.until - datetime.combine(period.start, time()))
        if end >= datetime.combine(period.start, time()):
            return Period(start, period.start, f"{period.kind}_previous")
        return Period(start, end.date() + timedelta(days=1), f"{period.kind}_previous", until=end)
    if to_date:
        # The same elapsed span of the previous month, quarter or year, clamped to its end:
        # on 31 March, month-to-date compares with all of February, not 1 February to 3 March.
        start = add_months(period.start, -to_date)
        return Period(start, min(start + timedelta(days=period.days), period.start), f"{period.kind}_previous")
    calendar = next(
        (months for unit, months in (("month", 1), ("quarter", 3), ("year", 12)) if period.kind.endswith(unit)), None
    )
    if calendar:
        # A whole month, quarter or year compares with the whole one before it.
        return Period(add_months(period.start, -calendar), add_months(period.end, -calendar), f"{period.kind}_previous")
    return Period(period.start - timedelta(days=period.days), period.start, f"{period.kind}_previous")


@cache
def _iana_zones() -> frozenset[str]:
    """The zones the system knows, read from disk once, when first asked (not at every start)."""
    return frozenset(available_timezones())


def zone_named(name: str | None) -> str | None:
    """The IANA name of a time zone a mail client names: an IANA name itself (Gmail's event,
    a browser's ``Intl``), or a Windows one (Outlook's ``userProfile.timeZone``, "Central
    European Standard Time"), mapped by CLDR's table as tzlocal keeps it. None for a name
    nobody knows: the caller keeps the organization's zone."""
    name = (name or "").strip()
    if not name or len(name) > 100:
        return None
    name = win_tz.get(name, name)
    if name not in _iana_zones():
        return None
    return "UTC" if name in ("Etc/UTC", "UCT", "Etc/UCT", "Zulu", "Etc/Zulu", "Universal", "Etc/Universal") else name


def local_today(zone: str, now: datetime | None = None) -> date:
    return local_now(zone, now).date()


def local_now(zone: str, now: datetime | None = None) -> datetime:
    """The organization's wall-clock time now, naive (as periods hold it)."""
    return (now or datetime.now(timezone.utc)).astimezone(ZoneInfo(zone)).replace(tzinfo=None)


def parse_period(
    kind: str | None, start: str | None, end: str | None, now: datetime, fiscal_start_month: int
) -> Period:
    """The period a picker asked for at ``now`` (local wall-clock time): a named one, or
    ``custom`` with ISO start and end dates (the end day included, as people say "from the
    1st to the 15th")."""
    kind = kind or "this_month"
    if kind != "custom":
        return period_for(kind, now.date(), fiscal_start_month, now)
    try:
        first, last = date.fromisoformat(start or ""), date.fromisoformat(end or "")
    except ValueError:
        raise DomainError("Enter a start and an end date.") from None
    if not (in_date_range(first) and in_date_range(last)):
        raise DomainError(DATE_RANGE_MESSAGE)
    if last < first:
        raise DomainError("The end date is before the start date.")
    if (last - first).days > 3 * 366:
        raise DomainError("Choose a range of at most three years.")
    return Period(first, last + timedelta(days=1), "custom")
