"""Jinja filters: times in the organization's zone, money, per cent."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from flask import Flask
from flask_login import current_user


def local(value: datetime | None, fmt: str = "%d %b %Y, %H:%M") -> str:
    """A stored time in the reader's organization's zone."""
    return in_zone(value, current_user.organization.time_zone if current_user.is_authenticated else "UTC", fmt)


def in_zone(value: datetime | None, zone: str, fmt: str = "%d %b %Y, %H:%M") -> str:
    """A stored time in ``zone``. Display never raises: a value at the edge of the calendar
    (stored before input was range-checked), or a zone nobody knows (a mail client's), shows
    the time as it is, in UTC."""
    if value is None:
        return ""
    try:
        return value.astimezone(ZoneInfo(zone)).strftime(fmt)
    except (OverflowError, ValueError, KeyError):  # ZoneInfoNotFoundError is a KeyError
        return value.strftime(fmt) + " UTC"


def money(value: Decimal | int | float | None, currency: str = "") -> str:
    if value is None:
        return ""
    text = f"{Decimal(value):,.0f}"
    return f"{currency} {text}".strip()


def percent(value: float | None, signed: bool = False) -> str:
    """A ratio as people read it: 0.4 → "40 %"; nothing to divide by → "–"."""
    if value is None:
        return "–"
    return f"{100 * value:{'+' if signed else ''}.0f} %"


def init_app(app: Flask) -> None:
    app.add_template_filter(local)
    app.add_template_filter(money)
    app.add_template_filter(percent)
