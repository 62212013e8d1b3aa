"""Amounts as people type and read them, in the organization's locale (Babel).

A rep types "95,000", "$95,000", "95 000" or "USD 65,500" (what the pane itself prints); in
a French or Polish organization, "12 500,50". ``parse_amount`` reads them all: currency
symbols and codes are dropped, and so are spaces of every width (a space is never a decimal
mark, and many locales group digits with one); what is left must be a number as the locale
writes it (Babel's strict parse, so that "12500,50" in an American organization is refused
rather than read as 1,250,050). ``format_amount`` writes them back the same way.
"""

from __future__ import annotations

import unicodedata
from decimal import Decimal

from functools import lru_cache

from babel import Locale, UnknownLocaleError
from babel.numbers import NumberFormatError, NumberPattern, parse_decimal, parse_pattern

DEFAULT_LOCALE = "en_US"
_EXAMPLE = Decimal("95000.50")


@lru_cache(maxsize=64)
def known_locale(name: str | None) -> str:
    """``name`` if Babel knows it (an organization's setting), else the default."""
    try:
        Locale.parse(name or DEFAULT_LOCALE)
        return name or DEFAULT_LOCALE
    except (UnknownLocaleError, ValueError, TypeError):
        return DEFAULT_LOCALE


@lru_cache(maxsize=64)
def _locale(name: str | None) -> Locale:
    return Locale.parse(known_locale(name))


@lru_cache(maxsize=8)
def _pattern(places: int) -> NumberPattern:
    """Whole units grouped, and ``places`` decimals: parsed once (a dashboard prints hundreds)."""
    return parse_pattern("#,##0" + ("." + "0" * places if places else ""))


class AmountError(ValueError):
    """An amount that cannot be read; its message says what one looks like."""


def parse_amount(text: str, locale: str = DEFAULT_LOCALE) -> Decimal:
    locale = known_locale(locale)
    kept = "".join(ch for ch in text if not (ch.isspace() or ch.isalpha() or unicodedata.category(ch) == "Sc"))
    if not kept:
        raise AmountError(f"Enter an amount, like {example_amount(locale)}.")
    try:
        return parse_decimal(kept, locale=locale, strict=True)
    except NumberFormatError:
        raise AmountError(f"Enter an amount, like {example_amount(locale)}.") from None


def format_amount(value: Decimal | int | float, locale: str = DEFAULT_LOCALE, places: int = 0) -> str:
    return _pattern(places).apply(Decimal(value), _locale(locale))


def example_amount(locale: str = DEFAULT_LOCALE) -> str:
    return format_amount(_EXAMPLE, locale, places=2)
