"""Jinja filters: times in the reader's zone, money, per cent."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from flask import Flask, g
from flask_login import current_user

from addin.views import reader_zone, zone_differs
from services.numbers import DEFAULT_LOCALE, format_amount
from services.periods import period_label
from services.types import in_zone


def local(value: datetime | None, fmt: str = "%d %b %Y, %H:%M") -> str:
    """A stored time in the reader's zone (their mailbox's, else their organization's), the
    zone named ("10:00 CET") when a time of day is shown in a zone not the organization's."""
    if not current_user.is_authenticated:
        return in_zone(value, "UTC", fmt)
    if value is not None and "%H" in fmt and zone_differs():
        fmt += " %Z"
    return in_zone(value, reader_zone(), fmt)


def money(value: Decimal | int | float | None, currency: str = "", locale: str | None = None) -> str:
    """An amount in whole units as the reader's organization writes it ("USD 65,500"; in a
    French one, "EUR 65 500"): the pane reads back what it prints (``services.numbers``)."""
    if value is None:
        return ""
    if locale is None:
        locale = _reader_locale()
    return f"{currency} {format_amount(value, locale)}".strip()


def _reader_locale() -> str:
    """The reader's organization's locale, looked up once per request (a dashboard prints
    hundreds of amounts)."""
    if "amount_locale" not in g:
        g.amount_locale = (
            current_user.organization.setting("locale") if current_user.is_authenticated else DEFAULT_LOCALE
        )
    return g.amount_locale


def percent(value: float | None, signed: bool = False) -> str:
    """A ratio as people read it: 0.4 → "40 %"; nothing to divide by → "–"."""
    if value is None:
        return "–"
    return f"{100 * value:{'+' if signed else ''}.0f} %"


def init_app(app: Flask) -> None:
    app.add_template_filter(local)
    app.add_template_filter(money)
    app.add_template_filter(percent)
    app.add_template_filter(period_label)
