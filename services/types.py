"""Column types that keep the store honest on SQLite and PostgreSQL alike."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import BigInteger, DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always handed back time-zone aware.

    SQLite has no time zones, so a naive value read back is UTC by construction; a naive
    value written is refused, because guessing its zone is how a 9 am call lands on the
    wrong day in a report.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given for a UTC column")
        value = value.astimezone(timezone.utc)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def as_utc(value: datetime | None) -> datetime | None:
    """Aggregates such as ``max()`` can bypass the column type on SQLite and come back naive."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=timezone.utc)


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


def localised(value: datetime, zone_name: str) -> datetime:
    """A naive time typed into a form is the organization's wall-clock time."""
    if value.tzinfo is not None and value.utcoffset() is not None:
        return value.astimezone(timezone.utc)
    return value.replace(tzinfo=ZoneInfo(zone_name)).astimezone(timezone.utc)


class elapsed_ms(FunctionElement[int]):  # noqa: N801 - a SQL function, named as SQL names them
    """Whole milliseconds from a stored timestamp to a later one, in SQL, exact on both back
    ends (SQLite's date functions keep milliseconds): ``elapsed_ms(since, until)``. Lets a
    report bring back a number per row rather than a timestamp to convert."""

    type = BigInteger()
    name = "elapsed_ms"
    inherit_cache = True


@compiles(elapsed_ms, "sqlite")
def _elapsed_ms_sqlite(element: elapsed_ms, compiler: SQLCompiler, **kw: Any) -> str:
    since, until = (compiler.process(clause, **kw) for clause in element.clauses)
    # julianday() is SQLite's integer count of milliseconds over 86,400,000: rounding the
    # scaled difference gives that integer difference back exactly.
    return f"CAST(round((julianday({until}) - julianday({since})) * 86400000.0) AS INTEGER)"


@compiles(elapsed_ms, "postgresql")
def _elapsed_ms_postgresql(element: elapsed_ms, compiler: SQLCompiler, **kw: Any) -> str:
    since, until = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"CAST(FLOOR(EXTRACT(EPOCH FROM ({until}) - ({since})) * 1000) AS BIGINT)"


class greatest(FunctionElement[Any]):  # noqa: N801 - a SQL function, named as SQL names them
    """The largest of its integer arguments (none of them NULL), on both back ends."""

    type = BigInteger()
    name = "greatest"
    inherit_cache = True


@compiles(greatest, "sqlite")
def _greatest_sqlite(element: greatest, compiler: SQLCompiler, **kw: Any) -> str:
    return f"max({compiler.process(element.clauses, **kw)})"


@compiles(greatest, "postgresql")
def _greatest_postgresql(element: greatest, compiler: SQLCompiler, **kw: Any) -> str:
    return f"GREATEST({compiler.process(element.clauses, **kw)})"
