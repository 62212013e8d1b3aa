"""The store's constraints hold on SQLite and PostgreSQL alike, whatever writes to it."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import bindparam, func, select, text
from sqlalchemy.exc import IntegrityError, StatementError

from services.db import make_engine
from services.models import Activity, ContactEmail, Opportunity, Quota, User
from services.types import one_of
from tests.factories import NOW


def _activity(world, org_id=None, external_id="<m1@acme.test>", owner=None, **extra):
    values = dict(
        organization_id=org_id or world.org.id,
        type="email",
        direction="inbound",
        occurred_at=NOW,
        owner_id=(owner or world.rep).id,
        source="outlook",
        external_id=external_id,
    )
    return Activity(**{**values, **extra})


def test_external_id_is_unique_per_organization(session, world):
    session.add(_activity(world))
    session.commit()
    # The same message id in another organization is another organization's business.
    session.add(_activity(world, org_id=world.other_org.id, owner=world.other_user))
    session.commit()
    session.add(_activity(world))
    with pytest.raises(IntegrityError):
        session.commit()


def test_activities_without_external_id_do_not_collide(session, world):
    session.add_all([_activity(world, external_id=None), _activity(world, external_id=None)])
    session.commit()
    assert session.scalar(select(Activity.id).where(Activity.external_id.is_(None)).limit(1))


def test_foreign_keys_are_enforced(session, world):
    session.add(_activity(world, contact_id=999_999))
    with pytest.raises(IntegrityError):
        session.commit()


@pytest.mark.parametrize("address", ["Ann@Acme.test", " ann2@acme.test", "ANN3@ACME.TEST"])
def test_addresses_must_be_stored_normalised(session, world, address):
    session.add(ContactEmail(organization_id=world.org.id, contact_id=world.contact.id, address=address))
    with pytest.raises(IntegrityError):
        session.commit()


@pytest.mark.parametrize(
    "change",
    [
        {"amount": Decimal("-1")},
        {"status": "lost", "closed_at": NOW},  # lost needs a reason
        {"status": "won"},  # closed needs closed_at
        {"status": "open", "closed_at": NOW},
        {"status": "paused"},
    ],
    ids=["negative amount", "lost without reason", "won without closed_at", "open with closed_at", "unknown status"],
)
def test_deal_constraints(session, world, change):
    deal = session.get(Opportunity, world.deal.id)
    for key, value in change.items():
        setattr(deal, key, value)
    with pytest.raises(IntegrityError):
        session.commit()


@pytest.mark.parametrize(
    "field, value",
    [
        ("type", "fax"),
        ("direction", "sideways"),
        ("rating", 2),
        ("duration_minutes", -5),
        ("sentiment", 1.5),
        ("source", "pigeon"),
    ],
)
def test_activity_check_constraints(session, world, field, value):
    session.add(_activity(world, external_id=None, **{field: value}))
    with pytest.raises(IntegrityError):
        session.commit()


def test_quota_belongs_to_a_user_or_a_team_not_both(session, world):
    session.add(
        Quota(
            organization_id=world.org.id,
            user_id=world.rep.id,
            team_id=world.east.id,
            period="month",
            period_start=NOW.date(),
            metric="won_deals",
            target=Decimal(3),
        )
    )
    with pytest.raises(IntegrityError):
        session.commit()


def test_timestamps_come_back_aware_and_in_utc(sessions, world):
    with sessions() as session:
        session.add(_activity(world, occurred_at=datetime(2026, 3, 29, 1, 30, tzinfo=timezone.utc)))
        session.commit()
    with sessions() as session:
        stored = session.scalar(select(Activity).where(Activity.external_id == "<m1@acme.test>"))
        assert stored.occurred_at == datetime(2026, 3, 29, 1, 30, tzinfo=timezone.utc)
        assert stored.occurred_at.utcoffset().total_seconds() == 0


def test_naive_timestamps_are_refused(session, world):
    session.add(_activity(world, occurred_at=datetime(2026, 3, 29, 1, 30)))
    with pytest.raises(StatementError):
        session.commit()


def test_money_is_exact(sessions, world):
    with sessions() as session:
        deal = session.get(Opportunity, world.deal.id)
        deal.amount = Decimal("1234567.89")
        session.commit()
    with sessions() as session:
        assert session.get(Opportunity, world.deal.id).amount == Decimal("1234567.89")


def test_sqlite_runs_with_wal_and_enforced_foreign_keys(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'pragmas.db'}")
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA busy_timeout")).scalar() >= 1000


def test_one_of_matches_its_list_whatever_its_length_and_each_execution_its_own(session, world):
    """``one_of`` is an IN list on SQLite and ``= ANY(array)`` on PostgreSQL: one compiled
    statement, run again with other lists, must read each run's own list, and a named list
    used twice in one statement is the same list in both places."""
    ids = sorted(session.scalars(select(User.id)))
    assert len(ids) >= 3

    def count(where) -> int:
        return session.scalar(select(func.count()).select_from(User).where(where))

    for chosen in ([], ids[:1], ids[1:3], ids, ids + [10**9]):
        assert count(one_of(User.id, chosen)) == len(set(chosen) & set(ids))
    built = (
        select(func.count())
        .select_from(User)
        .where(one_of(User.id, bindparam("ids")) & ~one_of(User.team_id, bindparam("none")))
    )
    for chosen in (ids[:1], ids, []):
        assert session.scalar(built, {"ids": chosen, "none": []}) == len(chosen)
    owners = sorted(set(session.scalars(select(User.team_id).where(User.team_id.is_not(None)))))
    named = (
        select(func.count())
        .select_from(User)
        .where(one_of(User.id, bindparam("these")) | one_of(User.team_id, bindparam("these")))
    )
    assert session.scalar(named, {"these": owners[:1]}) == session.scalar(
        select(func.count()).select_from(User).where(User.id.in_(owners[:1]) | User.team_id.in_(owners[:1]))
    )
    compiled = str(select(User.id).where(one_of(User.id, ids)).compile(session.get_bind()))
    assert ("= ANY(" in compiled) == (session.get_bind().dialect.name == "postgresql")
    assert "= 1" not in compiled  # a comparison, not a boolean value compared with true


@pytest.mark.parametrize(
    "since, until",
    [
        ("2026-01-01 00:00:00.001", "2026-01-01 00:00:01.005"),
        ("2026-03-08 06:59:59.999", "2026-03-08 07:00:00"),  # across the DST change, in UTC
        ("2026-01-01 00:00:01.006", "2026-01-01 00:00:00"),  # backwards
        ("1900-01-01 00:00:00.001", "2026-11-27 12:34:56.789"),  # the earliest date the store takes, to now
        ("2025-04-01 04:00:00", "2026-03-31 23:59:59.999"),
    ],
)
def test_elapsed_ms_is_exact_whole_milliseconds(session, since, until):
    from services.types import UTCDateTime, elapsed_ms

    start, end = (datetime.fromisoformat(value).replace(tzinfo=timezone.utc) for value in (since, until))
    got = session.scalar(
        select(elapsed_ms(bindparam("a", start, type_=UTCDateTime()), bindparam("b", end, type_=UTCDateTime())))
    )
    assert got == (end - start) // timedelta(milliseconds=1)


@pytest.mark.parametrize(
    "since, until",
    [
        ("2026-01-01 00:00:00.000001", "2026-01-01 00:00:01.005"),
        ("1900-01-01 00:00:00.000001", "2026-11-27 12:34:56.789"),
        ("2026-01-01 00:00:01.0059", "2026-01-01 00:00:00"),
        ("2025-04-01 04:00:00", "2026-03-31 23:59:59.999999"),
    ],
)
def test_elapsed_ms_floors_microseconds_on_postgresql(postgres_engine, since, until):
    """PostgreSQL keeps microseconds (SQLite's date functions keep milliseconds): the
    difference is floored to whole milliseconds, as exactly as EXTRACT's numeric would."""
    from services.types import UTCDateTime, elapsed_ms

    start, end = (datetime.fromisoformat(value).replace(tzinfo=timezone.utc) for value in (since, until))
    with postgres_engine.connect() as connection:
        got = connection.scalar(
            select(elapsed_ms(bindparam("a", start, type_=UTCDateTime()), bindparam("b", end, type_=UTCDateTime())))
        )
        numeric = connection.scalar(
            text(
                "SELECT CAST(FLOOR(EXTRACT(EPOCH FROM CAST(:b AS timestamptz) - CAST(:a AS timestamptz)) * 1000) AS BIGINT)"
            ),
            {"a": start, "b": end},
        )
    assert got == numeric == (end - start) // timedelta(milliseconds=1)


def test_by_codepoint_orders_text_as_python_does_whatever_the_collation(session):
    """A list the database cuts (``LIMIT``) must be the one Python would cut: ordered in code
    point order even where the column's collation is a locale's, as a production PostgreSQL's
    default may be (here ICU's English, which puts "apple" before "Banana")."""
    from sqlalchemy import literal, union_all

    from services.types import by_codepoint

    names = ["apple", "Banana", "Éclair", "zed", "Zed", "Ångström", "ärger", "Z", "z"]
    rows = union_all(*(select(literal(name).label("name")) for name in names)).subquery()
    column = rows.c.name
    if session.get_bind().dialect.name == "postgresql":
        column = column.collate("en-US-x-icu")
        assert session.scalars(select(rows.c.name).order_by(column)).all() != sorted(
            names
        )  # the locale's order differs
    assert session.scalars(select(rows.c.name).order_by(by_codepoint(column))).all() == sorted(names)
