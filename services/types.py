"""Column types that keep the store honest on SQLite and PostgreSQL alike."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Iterable
from zoneinfo import ZoneInfo

from sqlalchemy import BigInteger, BindParameter, Boolean, ColumnElement, DateTime, bindparam
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.sql.visitors import InternalTraversal
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
    # In floating point, not EXTRACT's numeric (twice as slow over a report's thousands of
    # rows), and still exact for spans under 136 years (the store's dates start in 1900): the
    # seconds are then off by under half a microsecond, so rounding their microseconds gives
    # the exact whole number, which divided by 1,000 never rounds across a millisecond.
    return f"CAST(FLOOR(ROUND(date_part('epoch', ({until}) - ({since})) * 1000000) / 1000) AS BIGINT)"


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


class one_of(ColumnElement[bool]):  # noqa: N801 - reads as the SQL it stands for
    """``column`` is one of a list of integer ids: ``one_of(User.id, [1, 2])`` or, for a
    statement built once, ``one_of(User.id, bindparam("ids"))`` with the list bound at execution.

    On SQLite an ``IN`` list, as ``column.in_()`` makes. On PostgreSQL ``column = ANY(:ids)``
    with the list as one array parameter: the statement's text stays the same whatever the
    list's length, so psycopg converts and prepares it once, and a list of hundreds of owners
    costs no planning per element (an ``IN`` of 360 ids spent 3 to 4.5 ms planning each time)."""

    type = Boolean()
    inherit_cache = True
    _is_implicitly_boolean = True  # a comparison: no "= 1" added on SQLite, which would hide it from the index
    _traverse_internals = [("column", InternalTraversal.dp_clauseelement), ("ids", InternalTraversal.dp_clauseelement)]

    def __init__(self, column: ColumnElement[Any], ids: BindParameter[Any] | Iterable[int]) -> None:
        self.column = column
        self.ids = ids if isinstance(ids, BindParameter) else bindparam("ids", list(ids), unique=True)


@compiles(one_of)
def _one_of(element: one_of, compiler: SQLCompiler, **kw: Any) -> str:
    ids = element.ids._clone()
    ids.expanding, ids.type = True, element.column.type  # a clone is still matched to the statement's value
    return compiler.process(element.column.in_(ids), **kw)


@compiles(one_of, "postgresql")
def _one_of_postgresql(element: one_of, compiler: SQLCompiler, **kw: Any) -> str:
    ids = element.ids._clone()
    ids.expanding, ids.type = False, ARRAY(element.column.type)
    return f"{compiler.process(element.column, **kw)} = ANY({compiler.process(ids, **kw)})"


class among(ColumnElement[bool]):  # noqa: N801 - reads as the SQL it stands for
    """``column`` is one of the ids a statement finds: ``among(Contact.id, select(...))``.

    On PostgreSQL ``column = ANY(ARRAY(<statement>))``: the ids are found first, then their rows
    read by ``column``'s index. The planner cannot know how few they are, and as ``IN`` (a
    semi-join) it hashed them and read every row of the organization: 10 ms against 5.5 for
    the search's 2,244 contacts found. Elsewhere ``column IN (<statement>)``."""

    type = Boolean()
    inherit_cache = True
    _is_implicitly_boolean = True
    _traverse_internals = [("column", InternalTraversal.dp_clauseelement), ("ids", InternalTraversal.dp_clauseelement)]

    def __init__(self, column: ColumnElement[Any], ids: Any) -> None:
        self.column = column
        self.ids = ids


@compiles(among)
def _among(element: among, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.column.in_(element.ids), **kw)


@compiles(among, "postgresql")
def _among_postgresql(element: among, compiler: SQLCompiler, **kw: Any) -> str:
    ids = compiler.process(element.ids.scalar_subquery(), **kw)  # "(SELECT …)"
    return f"{compiler.process(element.column, **kw)} = ANY(ARRAY{ids})"


class by_codepoint(ColumnElement[str]):  # noqa: N801 - reads as the SQL it stands for
    """A text column to order by in code point order, as Python sorts strings, whatever the
    database's collation: SQLite's own (BINARY) on SQLite, ``COLLATE "C"`` on PostgreSQL, whose
    default follows the locale. So a list cut in the database (``LIMIT``) is the one Python
    would have cut."""

    inherit_cache = True
    _traverse_internals = [("column", InternalTraversal.dp_clauseelement)]

    def __init__(self, column: ColumnElement[str]) -> None:
        self.column = column
        self.type = column.type


@compiles(by_codepoint)
def _by_codepoint(element: by_codepoint, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.column, **kw)


@compiles(by_codepoint, "postgresql")
def _by_codepoint_postgresql(element: by_codepoint, compiler: SQLCompiler, **kw: Any) -> str:
    return f'{compiler.process(element.column, **kw)} COLLATE "C"'
