"""The demo generator: deterministic, believable, and loadable into either back end."""

from __future__ import annotations

import hashlib
from datetime import date

import pytest
from sqlalchemy import Engine, func, select

from services.db import make_engine, make_session_factory
from services.setup.demo import build_demo
from services.errors import DomainError
from services.models import Activity, Base, Opportunity, StageChange, User

TODAY = date(2026, 11, 20)


def digest(engine: Engine) -> str:
    """A fingerprint of every row of every table, in id order. Password hashes are salted at
    random by design, so they are the one column left out."""
    hasher = hashlib.sha256()
    with engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            columns = [c for c in table.c if c.name != "password_hash"]
            for row in connection.execute(select(*columns).order_by(*table.primary_key.columns)):
                hasher.update(repr(tuple(row)).encode())
    return hasher.hexdigest()


def load(path, seed: int, scale: float = 0.05) -> Engine:
    engine = make_engine(f"sqlite:///{path}")
    Base.metadata.create_all(engine)
    with make_session_factory(engine)() as session:
        build_demo(session, seed=seed, scale=scale, today=TODAY)
        session.commit()
    return engine


def test_same_seed_same_rows_other_seed_other_rows(tmp_path):
    first, second, other = load(tmp_path / "a.db", 7), load(tmp_path / "b.db", 7), load(tmp_path / "c.db", 8)
    assert digest(first) == digest(second)
    assert digest(first) != digest(other)


def test_demo_data_tells_a_sales_story(engine):
    with make_session_factory(engine)() as session:
        summary = build_demo(session, seed=7, scale=0.1, today=TODAY)
        session.commit()
        roles = dict(session.execute(select(User.role, func.count()).group_by(User.role)).all())
        assert roles == {"admin": 1, "manager": 2, "rep": 2}
        statuses = dict(session.execute(select(Opportunity.status, func.count()).group_by(Opportunity.status)).all())
        assert statuses.get("won") and statuses.get("lost") and statuses.get("open")
        assert (
            session.scalar(select(func.count()).where(Opportunity.status == "lost", Opportunity.loss_reason.is_(None)))
            == 0
        )
        # Every deal has the stage change that put it into the pipeline.
        entered = session.scalar(
            select(func.count(func.distinct(StageChange.opportunity_id))).where(StageChange.from_status.is_(None))
        )
        assert entered == statuses["won"] + statuses["lost"] + statuses["open"]
        # Weekdays carry the work.
        weekday_counts = [0] * 7
        for occurred in session.scalars(select(Activity.occurred_at)):
            weekday_counts[occurred.weekday()] += 1
        assert min(weekday_counts[:4]) > 5 * max(weekday_counts[5:])
        assert summary.counts["activities"] == session.scalar(select(func.count(Activity.id)))
        # Ids continue cleanly on PostgreSQL: an ordinary insert after the bulk load works.
        session.add(
            User(organization_id=summary.organization_id, email="new.rep@northwind.example", name="New Rep", role="rep")
        )
        session.commit()


def test_base_scale_is_the_size_the_issue_asks_for(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'full.db'}")
    Base.metadata.create_all(engine)
    with make_session_factory(engine)() as session:
        counts = build_demo(session, seed=7, scale=1, today=TODAY).counts
    assert counts["users"] == 15 and counts["accounts"] == 300 and counts["opportunities"] == 600
    assert 1_200 <= counts["contacts"] <= 1_800
    assert 50_000 <= counts["activities"] <= 70_000


@pytest.mark.parametrize("scale", [0, -1, 5000])
def test_bad_scale_is_refused(tmp_path, scale):
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    Base.metadata.create_all(engine)
    with make_session_factory(engine)() as session, pytest.raises(DomainError):
        build_demo(session, scale=scale, today=TODAY)


def test_demo_data_goes_into_an_empty_database_only(tmp_path):
    engine = load(tmp_path / "a.db", 7)
    with make_session_factory(engine)() as session, pytest.raises(DomainError):
        build_demo(session, today=TODAY)


def test_the_demo_never_lies_about_time(tmp_path):
    """Built at 08:00 New York time, nothing in the demo happens after 08:00: no activity, no
    stage change, no closed deal, no lead conversion in the future."""
    from datetime import datetime, timedelta, timezone
    from zoneinfo import ZoneInfo

    from services.models import Lead

    built_at = datetime(2026, 11, 20, 8, tzinfo=ZoneInfo("America/New_York")).astimezone(timezone.utc)
    engine = make_engine(f"sqlite:///{tmp_path / 'morning.db'}")
    Base.metadata.create_all(engine)
    with make_session_factory(engine)() as session:
        build_demo(session, seed=3, scale=0.05, now=built_at)
        session.commit()
        latest = {
            "activity": session.scalar(select(func.max(Activity.occurred_at))),
            "activity created": session.scalar(select(func.max(Activity.created_at))),
            "stage change": session.scalar(select(func.max(StageChange.changed_at))),
            "closed deal": session.scalar(select(func.max(Opportunity.closed_at))),
            "deal": session.scalar(select(func.max(Opportunity.created_at))),
            "lead": session.scalar(select(func.max(Lead.created_at))),
            "lead conversion": session.scalar(select(func.max(Lead.converted_at))),
        }
        for what, when in latest.items():
            assert when is not None and when.replace(tzinfo=timezone.utc) <= built_at, what
        # Yet the demo comes up to the moment: yesterday's work is there.
        assert latest["activity"].replace(tzinfo=timezone.utc) > built_at - timedelta(days=1)
    engine.dispose()
