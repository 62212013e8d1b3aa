"""The store's constraints hold on SQLite and PostgreSQL alike, whatever writes to it."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError, StatementError

from services.db import make_engine
from services.models import Activity, ContactEmail, Opportunity, Quota
from tests.factories import NOW


def _activity(world, org_id=None, external_id="<m1@acme.test>", owner=None, **extra):
    values = dict(organization_id=org_id or world.org.id, type="email", direction="inbound", occurred_at=NOW,
                  owner_id=(owner or world.rep).id, source="outlook", external_id=external_id)
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
    [("type", "fax"), ("direction", "sideways"), ("rating", 2), ("duration_minutes", -5), ("sentiment", 1.5), ("source", "pigeon")],
)
def test_activity_check_constraints(session, world, field, value):
    session.add(_activity(world, external_id=None, **{field: value}))
    with pytest.raises(IntegrityError):
        session.commit()


def test_quota_belongs_to_a_user_or_a_team_not_both(session, world):
    session.add(Quota(organization_id=world.org.id, user_id=world.rep.id, team_id=world.east.id, period="month",
                      period_start=NOW.date(), metric="won_deals", target=Decimal(3)))
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
