"""Manager figures, each checked against an independent computation over the same raw rows
(plain Python written apart from the service: local dates through zoneinfo, no SQL grouping),
and the edges: period borders, a daylight-saving day, fiscal years, soft deletes, reps with
nothing, who may see what."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from services import reports
from services.setup import people
from services.setup.demo import build_demo
from services.errors import DomainError, Forbidden
from services.models import Activity, Opportunity, Stage, User
from services.periods import Period, comparison_for, period_for
from tests.factories import World

TODAY = date(2026, 11, 20)


# -- periods ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kind, today, fiscal, start, end",
    [
        ("this_week", date(2026, 11, 25), 1, date(2026, 11, 23), date(2026, 11, 30)),
        ("last_week", date(2026, 11, 23), 1, date(2026, 11, 16), date(2026, 11, 23)),
        ("this_quarter", date(2026, 11, 25), 4, date(2026, 10, 1), date(2027, 1, 1)),
        ("this_quarter", date(2027, 1, 15), 2, date(2026, 11, 1), date(2027, 2, 1)),
        ("this_year", date(2026, 3, 31), 4, date(2025, 4, 1), date(2026, 4, 1)),
        ("this_year", date(2026, 4, 1), 4, date(2026, 4, 1), date(2027, 4, 1)),
        ("last_month", date(2026, 3, 31), 1, date(2026, 2, 1), date(2026, 3, 1)),
        ("ytd", date(2026, 11, 25), 4, date(2026, 4, 1), date(2026, 11, 26)),
    ],
)
def test_periods_follow_weeks_and_the_fiscal_year(kind, today, fiscal, start, end):
    period = period_for(kind, today, fiscal)
    assert (period.start, period.end) == (start, end)


@pytest.mark.parametrize(
    "kind, today, start, end",
    [
        ("mtd", date(2026, 3, 31), date(2026, 2, 1), date(2026, 3, 1)),  # 31 days of March: all of February, clamped
        ("mtd", date(2026, 11, 25), date(2026, 10, 1), date(2026, 10, 26)),
        ("qtd", date(2026, 11, 25), date(2026, 7, 1), date(2026, 8, 26)),
        ("this_week", date(2026, 11, 25), date(2026, 11, 16), date(2026, 11, 23)),
        ("this_month", date(2026, 3, 5), date(2026, 2, 1), date(2026, 3, 1)),
    ],
)
def test_comparison_periods(kind, today, start, end):
    comparison = comparison_for(period_for(kind, today, 4))
    assert (comparison.start, comparison.end) == (start, end)


@pytest.mark.parametrize(
    "kind, now, until, comparison",
    [
        # Asked at 10:00 on 26 November: up to now, against 1 October to 26 October 10:00.
        (
            "mtd",
            datetime(2026, 11, 26, 10),
            datetime(2026, 11, 26, 10),
            (date(2026, 10, 1), datetime(2026, 10, 26, 10)),
        ),
        # On 31 March the same elapsed span overruns February: all of February, no more.
        ("mtd", datetime(2026, 3, 31, 10), datetime(2026, 3, 31, 10), (date(2026, 2, 1), datetime(2026, 3, 1))),
        (
            "qtd",
            datetime(2026, 11, 25, 16, 30),
            datetime(2026, 11, 25, 16, 30),
            (date(2026, 7, 1), datetime(2026, 8, 25, 16, 30)),
        ),
        ("ytd", datetime(2026, 5, 2, 8), datetime(2026, 5, 2, 8), (date(2025, 4, 1), datetime(2025, 5, 2, 8))),
    ],
)
def test_to_date_periods_end_now_and_compare_with_the_same_moment(kind, now, until, comparison):
    period = period_for(kind, now.date(), 4, now)
    assert period.end_point == until
    before = comparison_for(period)
    assert (before.start, before.end_point) == comparison


def test_a_to_date_period_counts_up_to_now_and_its_comparison_up_to_the_same_time(session, world: World):
    """Activities at 09:00 and 11:00 on the 26th of both months; asked at 10:00 on 26 November,
    month-to-date counts the 09:00 ones only, in both periods, on every figure that counts."""
    berlin = ZoneInfo("Europe/Berlin")
    for month in (10, 11):
        for hour in (9, 11):
            add(
                session,
                world,
                world.rep,
                datetime(2026, month, 26, hour, tzinfo=berlin),
                type="call",
                direction="outbound",
                outcome="connected",
                duration_minutes=10,
            )
    commit_and_roll_up(session, world.org)
    manager = session.get(User, world.manager.id)
    period = period_for("mtd", date(2026, 11, 26), 1, datetime(2026, 11, 26, 10))
    now = datetime(2026, 11, 26, 10, tzinfo=berlin).astimezone(timezone.utc)
    report = reports.team_report(reports.report_scope(session, manager, period, today=date(2026, 11, 26), now=now))
    rita = next(row for row in report.activity if row.owner_id == world.rep.id)
    assert (rita.total, rita.minutes["call"], rita.contacts) == (1, 10, 1)
    assert report.activity_before[world.rep.id] == 1
    assert report.weekdays[world.rep.id][date(2026, 11, 26).weekday()] == 1
    # Both calls' notes are empty against the call checklist: the one before 10:00 is flagged.
    assert report.note_totals == reports.NoteQualityTotals(1, 1)


def test_year_over_year_and_custom_ranges():
    custom = Period(date(2026, 2, 10), date(2026, 2, 20))
    assert (comparison_for(custom).start, comparison_for(custom).end) == (date(2026, 1, 31), date(2026, 2, 10))
    yoy = comparison_for(custom, year_over_year=True)
    assert (yoy.start, yoy.end) == (date(2025, 2, 10), date(2025, 2, 20))
    with pytest.raises(DomainError):
        Period(date(2026, 2, 10), date(2026, 2, 10))
    with pytest.raises(DomainError):
        period_for("fortnight", TODAY)


def test_a_daylight_saving_day_is_one_local_day():
    # Berlin springs forward on 29 March 2026: that day has 23 hours.
    start, end = Period(date(2026, 3, 29), date(2026, 3, 30)).utc_bounds("Europe/Berlin")
    assert end - start == timedelta(hours=23)
    start, end = Period(date(2026, 10, 25), date(2026, 10, 26)).utc_bounds("Europe/Berlin")
    assert end - start == timedelta(hours=25)


# -- figures against an independent computation ---------------------------------------------------


def independent_activity(session, org, people, period):
    """Per owner: counts and minutes by type, attempts, contacts, from raw rows."""
    zone = ZoneInfo(org.time_zone)
    counts, minutes = defaultdict(Counter), defaultdict(Counter)
    attempts, contacts = Counter(), Counter()
    for a in session.scalars(select(Activity).where(Activity.organization_id == org.id)):
        local_day = a.occurred_at.astimezone(zone).date()
        if a.deleted_at is not None or a.owner_id not in people or not (period.start <= local_day < period.end):
            continue
        counts[a.owner_id][a.type] += 1
        minutes[a.owner_id][a.type] += a.duration_minutes or 0
        if a.type in ("call", "email") and a.direction == "outbound":
            attempts[a.owner_id] += 1
        if (
            (a.type, a.outcome) == ("call", "connected")
            or (a.type in ("meeting", "visit") and a.outcome == "held")
            or (a.type, a.direction) == ("email", "inbound")
        ):
            contacts[a.owner_id] += 1
    return counts, minutes, attempts, contacts


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def demo_engine(request, tmp_path_factory):
    """One demo organization per back end for the whole module: the figures only read it."""
    from services.db import make_engine, make_session_factory
    from services.models import Base

    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('reports') / 'demo.db'}")
    else:
        engine = make_engine(request.getfixturevalue("postgres_server").fresh_database("inboxcrm_reports"))
    Base.metadata.create_all(engine)

    with make_session_factory(engine)() as session:
        build_demo(session, seed=11, scale=0.05, today=TODAY)
        session.commit()
    yield engine
    engine.dispose()


@pytest.fixture
def demo_session(demo_engine):
    from services.db import make_session_factory

    with make_session_factory(demo_engine)() as session:
        yield session


@pytest.fixture
def demo(demo_session):
    return demo_session.scalars(select(User).where(User.role == "admin")).one()


@pytest.mark.parametrize(
    "kind", ["this_week", "last_month", "this_quarter", "ytd", "last_year", "mid-month to mid-month", "inside a month"]
)
def test_activity_summary_matches_the_raw_rows(demo_session, demo, kind):
    """Whole months come from the monthly rollups, the edges from the daily ones: every shape
    of period agrees with the raw activities."""
    session = demo_session
    custom = {
        "mid-month to mid-month": Period(date(2025, 12, 10), date(2026, 3, 17)),
        "inside a month": Period(date(2026, 2, 3), date(2026, 2, 25)),
    }
    period = custom.get(kind) or period_for(kind, TODAY, demo.organization.fiscal_year_start_month)
    summary = reports.activity_summary(reports.report_scope(session, demo, period))
    people = {row.owner_id for row in summary}
    counts, minutes, attempts, contacts = independent_activity(session, demo.organization, people, period)
    assert sum(row.total for row in summary) > 0
    for row in summary:
        assert row.counts == dict(counts[row.owner_id]), row.name
        assert {k: v for k, v in row.minutes.items()} == {k: minutes[row.owner_id][k] for k in row.minutes}
        assert (row.attempts, row.contacts) == (attempts[row.owner_id], contacts[row.owner_id])
        expected_rate = contacts[row.owner_id] / attempts[row.owner_id] if attempts[row.owner_id] else None
        assert row.connect_rate == expected_rate


def test_a_fiscal_year_to_date_is_its_year_less_the_days_to_come(session, world: World):
    """The year grain serves a fiscal year to date as the year's row less the rest of the year,
    and a whole fiscal year as its row alone: activities logged ahead (a meeting next month,
    still in this fiscal year) and late last night, and one undone, all come out exact, on
    every figure that reads the rollups."""
    from services.models import ActivityRollup, ActivityYearRollup
    from services.reports.activity import _rollup_ranges

    berlin = ZoneInfo("Europe/Berlin")
    world.org.fiscal_year_start_month = 4
    for when, kind in (
        (datetime(2026, 4, 1, 0, 30, tzinfo=berlin), "call"),
        (datetime(2026, 9, 14, 9, tzinfo=berlin), "meeting"),
        (datetime(2026, 11, 25, 23, 50, tzinfo=berlin), "call"),
        (datetime(2026, 11, 26, 9, tzinfo=berlin), "call"),
        (datetime(2026, 11, 26, 11, tzinfo=berlin), "call"),
        (datetime(2026, 12, 3, 10, tzinfo=berlin), "meeting"),
        (datetime(2027, 3, 31, 23, 0, tzinfo=berlin), "call"),
        (datetime(2027, 4, 1, 1, 0, tzinfo=berlin), "call"),
        (datetime(2026, 3, 31, 22, 0, tzinfo=berlin), "call"),
    ):
        add(
            session,
            world,
            world.rep,
            when,
            type=kind,
            direction="outbound",
            outcome="connected" if kind == "call" else "held",
            duration_minutes=10,
        )
    add(
        session,
        world,
        world.rep,
        datetime(2026, 10, 5, 9, tzinfo=berlin),
        outcome="connected",
        duration_minutes=10,
        deleted_at=datetime(2026, 10, 5, 9, 5, tzinfo=berlin),
    )  # logged and undone
    commit_and_roll_up(session, world.org)
    manager = session.get(User, world.manager.id)
    asked = datetime(2026, 11, 26, 10, tzinfo=berlin)
    ytd = period_for("ytd", date(2026, 11, 26), 4, asked.replace(tzinfo=None))
    pieces = _rollup_ranges(ytd, 4)
    assert (pieces[0][0], pieces[0][2]) == (ActivityYearRollup, 1) and all(sign == -1 for _, _, sign in pieces[1:])
    assert ActivityRollup in {model for model, _, _ in pieces[1:]}
    rita = next(
        row
        for row in reports.activity_summary(reports.report_scope(session, manager, ytd))
        if row.owner_id == world.rep.id
    )
    # 1 April 00:30, 14 September, 25 November late, 26 November 09:00 (not 11:00, December, March 2027).
    assert (rita.counts, rita.minutes, rita.contacts) == ({"call": 3, "meeting": 1}, {"call": 30, "meeting": 10}, 4)
    assert sum(reports.weekday_pattern(reports.report_scope(session, manager, ytd))[world.rep.id]) == 4

    whole = period_for("this_year", date(2026, 11, 26), 4)  # the whole fiscal year, April to March
    assert [model for model, _, _ in _rollup_ranges(whole, 4)] == [ActivityYearRollup]
    rita = next(
        row
        for row in reports.activity_summary(reports.report_scope(session, manager, whole))
        if row.owner_id == world.rep.id
    )
    assert rita.counts == {"call": 5, "meeting": 2}
    # A quarter is read directly (fewer rows than a year less three quarters).
    quarter = period_for("this_quarter", date(2026, 11, 26), 4)
    assert all(model is not ActivityYearRollup for model, _, _ in _rollup_ranges(quarter, 4))


def test_periods_split_into_whole_months_and_edge_days():
    from services.reports.activity import _month_split

    assert _month_split(date(2025, 12, 10), date(2026, 3, 17)) == (
        (date(2026, 1, 1), date(2026, 3, 1)),
        [(date(2025, 12, 10), date(2026, 1, 1)), (date(2026, 3, 1), date(2026, 3, 17))],
    )
    assert _month_split(date(2026, 4, 1), date(2026, 11, 1)) == ((date(2026, 4, 1), date(2026, 11, 1)), [])
    assert _month_split(date(2026, 2, 3), date(2026, 2, 25)) == (None, [(date(2026, 2, 3), date(2026, 2, 25))])
    assert _month_split(date(2026, 2, 3), date(2026, 3, 2)) == (None, [(date(2026, 2, 3), date(2026, 3, 2))])


def test_pipeline_matches_the_raw_rows(demo_session, demo):
    session = demo_session
    rows = reports.pipeline(reports.report_scope(session, demo))
    deals = session.scalars(
        select(Opportunity).where(Opportunity.status == "open", Opportunity.deleted_at.is_(None))
    ).all()
    probability = {s.id: s.probability for s in session.scalars(select(Stage))}
    for row in rows:
        mine = [d for d in deals if d.stage_id == row.stage_id]
        assert row.count == len(mine)
        assert row.amount == sum((d.amount for d in mine), Decimal(0))
        assert row.weighted == sum((d.amount * probability[d.stage_id] for d in mine), Decimal(0))
    assert sum(row.count for row in rows) == len(deals) > 0


@pytest.mark.parametrize("kind", ["this_quarter", "last_quarter", "last_year", "ytd"])
def test_deal_outcomes_match_the_raw_rows(demo_session, demo, kind):
    session = demo_session
    period = period_for(kind, TODAY, demo.organization.fiscal_year_start_month)
    outcome = reports.deal_outcomes(reports.report_scope(session, demo, period))
    zone = ZoneInfo(demo.organization.time_zone)
    closed = [
        d
        for d in session.scalars(select(Opportunity))
        if d.closed_at is not None and period.start <= d.closed_at.astimezone(zone).date() < period.end
    ]
    won = [d for d in closed if d.status == "won"]
    lost = [d for d in closed if d.status == "lost"]
    assert (outcome.won, outcome.lost) == (len(won), len(lost))
    assert outcome.won_amount == sum((d.amount for d in won), Decimal(0))
    if won or lost:
        assert outcome.win_rate == len(won) / (len(won) + len(lost))
    if won:
        assert outcome.average_deal_size == sum((d.amount for d in won), Decimal(0)) / len(won)
        cycle = sum((d.closed_at - d.created_at).total_seconds() / 86400 for d in won) / len(won)
        assert outcome.sales_cycle_days == pytest.approx(cycle)
    by_reason = Counter(d.loss_reason for d in lost)
    assert {reason: count for reason, (count, _) in outcome.lost_by_reason.items()} == dict(by_reason)


# -- edges --------------------------------------------------------------------------------------


def add(session, world, owner, when, **values):
    activity = Activity(
        organization_id=world.org.id,
        type=values.pop("type", "call"),
        direction=values.pop("direction", "outbound"),
        occurred_at=when,
        owner_id=owner.id,
        source="web",
        **values,
    )
    session.add(activity)
    return activity


def commit_and_roll_up(session, *organizations) -> None:
    """Rows written straight to the store (as an import does) reach the figures through a
    rollup rebuild."""
    from services.notes import score_notes
    from services.rollups import rebuild_rollups

    session.flush()
    for organization in organizations:
        score_notes(session, session.get(type(organization), organization.id))  # first: the rollups count flagged notes
        rebuild_rollups(session, session.get(type(organization), organization.id))
    session.commit()


def test_borders_dst_and_soft_deletes(session, world: World):
    berlin = ZoneInfo("Europe/Berlin")
    day = Period(date(2026, 3, 29), date(2026, 3, 30))  # the 23-hour day
    add(session, world, world.rep, datetime(2026, 3, 29, 0, 0, tzinfo=berlin))  # first instant: in
    add(
        session, world, world.rep, datetime(2026, 3, 29, 23, 59, tzinfo=berlin), outcome="connected", duration_minutes=7
    )  # in
    add(session, world, world.rep, datetime(2026, 3, 30, 0, 0, tzinfo=berlin))  # the end: out
    add(session, world, world.rep, datetime(2026, 3, 28, 23, 59, tzinfo=berlin))  # before: out
    add(
        session, world, world.rep, datetime(2026, 3, 29, 12, 0, tzinfo=berlin), deleted_at=datetime.now(timezone.utc)
    )  # deleted
    add(session, world, world.rep, datetime(2026, 3, 29, 12, 0, tzinfo=berlin), type="email", direction="inbound")
    commit_and_roll_up(session, world.org)
    manager = session.get(User, world.manager.id)
    rows = {row.name: row for row in reports.activity_summary(reports.report_scope(session, manager, day))}
    rita = rows["Rita Rep"]
    assert rita.counts == {"call": 2, "email": 1} and rita.minutes["call"] == 7
    assert (rita.attempts, rita.contacts, rita.connect_rate) == (2, 2, 1.0)
    # A rep with nothing still has a row, with nothing in it; the other team is not there.
    assert rows["Tom Teammate"].total == 0 and rows["Tom Teammate"].connect_rate is None
    assert "Wendy West" not in rows


def test_who_may_see_figures(session, world: World):
    period = period_for("this_month", TODAY)
    with pytest.raises(Forbidden):
        reports.activity_summary(reports.report_scope(session, session.get(User, world.rep.id), period))
    with pytest.raises(Forbidden):
        reports.activity_summary(
            reports.report_scope(session, session.get(User, world.manager.id), period, team_id=world.west.id)
        )
    admin = session.get(User, world.admin.id)
    everyone = {row.name for row in reports.activity_summary(reports.report_scope(session, admin, period))}
    assert {"Rita Rep", "Wendy West", "Mia Manager"} <= everyone and "Oscar Other" not in everyone
    west = {
        row.name
        for row in reports.activity_summary(reports.report_scope(session, admin, period, team_id=world.west.id))
    }
    assert west == {"Wendy West", "Walt Manager"}


def test_two_organizations_in_two_time_zones(session, world: World):
    # 23:30 UTC on 31 October is 1 November in Berlin but still 31 October in Chicago.
    when = datetime(2026, 10, 31, 23, 30, tzinfo=timezone.utc)
    add(session, world, world.rep, when)
    chicago_rep = User(organization_id=world.other_org.id, email="cara@contoso.test", name="Cara Chicago", role="rep")
    session.add(chicago_rep)
    session.flush()
    session.add(
        Activity(
            organization_id=world.other_org.id,
            type="call",
            direction="outbound",
            occurred_at=when,
            owner_id=chicago_rep.id,
            source="web",
        )
    )
    commit_and_roll_up(session, world.org, world.other_org)
    ours, theirs = session.get(User, world.admin.id), session.get(User, world.other_user.id)
    november, october = Period(date(2026, 11, 1), date(2026, 12, 1)), Period(date(2026, 10, 1), date(2026, 11, 1))
    assert sum(row.total for row in reports.activity_summary(reports.report_scope(session, ours, november))) == 1
    assert sum(row.total for row in reports.activity_summary(reports.report_scope(session, ours, october))) == 0
    assert sum(row.total for row in reports.activity_summary(reports.report_scope(session, theirs, november))) == 0
    assert sum(row.total for row in reports.activity_summary(reports.report_scope(session, theirs, october))) == 1


# -- quotas, leaderboard, drawdown, conversion --------------------------------------------------


def local_day(value, zone):
    return value.astimezone(ZoneInfo(zone)).date()


def test_quota_attainment_is_pro_rata(session, world: World):
    from services.models import Quota

    # A monthly call quota of 30 for November; the report covers 10 to 20 November (10 days).
    session.add(
        Quota(
            organization_id=world.org.id,
            user_id=world.rep.id,
            period="month",
            period_start=date(2026, 11, 1),
            metric="activities",
            activity_type="call",
            target=Decimal(30),
        )
    )
    # A quarterly won-revenue quota that the report period falls inside (92 days in Q4).
    session.add(
        Quota(
            organization_id=world.org.id,
            user_id=world.rep.id,
            period="quarter",
            period_start=date(2026, 10, 1),
            metric="won_revenue",
            target=Decimal(92000),
        )
    )
    for day in (9, 10, 15, 19, 20):
        add(session, world, world.rep, datetime(2026, 11, day, 10, tzinfo=timezone.utc))
    deal = session.get(Opportunity, world.deal.id)
    deal.status, deal.closed_at, deal.amount = "won", datetime(2026, 11, 12, tzinfo=timezone.utc), Decimal(5000)
    commit_and_roll_up(session, world.org)
    rows = reports.quota_attainment(
        reports.report_scope(
            session, session.get(User, world.manager.id), Period(date(2026, 11, 10), date(2026, 11, 20))
        )
    )
    calls = next(r for r in rows if r.metric == "activities")
    revenue = next(r for r in rows if r.metric == "won_revenue")
    assert (calls.target, calls.actual, calls.ratio) == (Decimal("10.00"), Decimal(3), 0.3)
    assert (revenue.target, revenue.actual) == (Decimal("10000.00"), Decimal(5000)) and revenue.ratio == 0.5


def test_leaderboard_matches_the_raw_rows(demo_session, demo):
    session = demo_session
    period = period_for("last_year", TODAY, demo.organization.fiscal_year_start_month)
    rows = reports.leaderboard(reports.report_scope(session, demo, period)).rows
    zone = demo.organization.time_zone
    won = defaultdict(lambda: [0, Decimal(0)])
    for d in session.scalars(select(Opportunity).where(Opportunity.status == "won")):
        if period.start <= local_day(d.closed_at, zone) < period.end:
            won[d.owner_id][0] += 1
            won[d.owner_id][1] += d.amount
    for row in rows:
        assert (row.won_deals, row.won_amount) == (won[row.owner_id][0], won[row.owner_id][1])
    amounts = [row.won_amount for row in rows]
    assert amounts == sorted(amounts, reverse=True) and rows[0].rank == 1 and sum(r.won_deals for r in rows) > 0


def test_drawdown_finds_the_slipping_reps(session, world: World):
    today = date(2026, 11, 20)  # a Friday
    berlin = ZoneInfo("Europe/Berlin")
    for back in range(7, 35):  # the 28 days before the last 7: four a working day each
        day = today - timedelta(days=back)
        if day.weekday() < 5:
            for person in (world.rep, world.teammate):
                for hour in (9, 11, 14, 16):
                    add(session, world, person, datetime(day.year, day.month, day.day, hour, tzinfo=berlin))
    for back in range(0, 7):  # the last 7: Rita keeps her pace, Tom does one a day
        day = today - timedelta(days=back)
        if day.weekday() < 5:
            for hour in (9, 11, 14, 16):
                add(session, world, world.rep, datetime(day.year, day.month, day.day, hour, tzinfo=berlin))
            add(session, world, world.teammate, datetime(day.year, day.month, day.day, 9, tzinfo=berlin))
    commit_and_roll_up(session, world.org)
    evening = datetime(2026, 11, 20, 18, tzinfo=berlin)  # the day's work done
    alerts = reports.drawdown_alerts(
        reports.report_scope(session, session.get(User, world.manager.id), now=evening)
    ).rows
    assert [(a.name, a.recent_per_day, a.baseline_per_day) for a in alerts] == [("Tom Teammate", 1.0, 4.0)]
    # Tom leaves: his work still counts, but a leaver is not slipping.
    people.deactivate(session, session.get(User, world.admin.id), world.teammate.id, str(world.rep.id))
    session.commit()
    scope = reports.report_scope(session, session.get(User, world.manager.id), now=evening)
    assert reports.drawdown_alerts(scope).rows == []
    assert {a.name: a.total for a in reports.activity_summary(scope)}["Tom Teammate"] > 0


def test_drawdown_counts_the_last_7_times_24_hours_not_a_young_today(session, world: World):
    """At 04:00 on a Friday, a rep who kept her pace all week is not slipping: the last 7 days
    are the 168 hours up to now, not seven dates of which today has barely begun."""
    berlin = ZoneInfo("Europe/Berlin")
    now = datetime(2026, 11, 20, 4, tzinfo=berlin)
    org = session.get(type(world.org), world.org.id)
    org.settings = {"drawdown_threshold": 0.9}
    day = date(2026, 10, 12)
    while day < now.date():
        if day.weekday() < 5:
            for hour in (9, 11, 14, 16):
                add(session, world, world.rep, datetime(day.year, day.month, day.day, hour, tzinfo=berlin))
            for hour in (9, 11, 14, 16) if day < date(2026, 11, 13) else (9, 11, 14):
                add(session, world, world.teammate, datetime(day.year, day.month, day.day, hour, tzinfo=berlin))
        day += timedelta(days=1)
    commit_and_roll_up(session, world.org)
    alerts = reports.drawdown_alerts(reports.report_scope(session, session.get(User, world.manager.id), now=now)).rows
    # Rita: 20 in the last 168 hours (Friday the 13th and Monday to Thursday) over 5 working days,
    # 80 over the 20 before. Tom dropped to three a day from the 13th.
    assert [(a.name, a.recent_per_day, a.baseline_per_day) for a in alerts] == [("Tom Teammate", 3.0, 4.0)]


def test_stale_is_exact_not_whole_days(session, world: World):
    from services.signals import deal_warnings

    deal = session.get(Opportunity, world.deal.id)  # in Qualify, whose SLA is 14 days
    now = deal.stage_entered_at + timedelta(days=14, hours=19)  # 14.8 days
    kinds = {w.kind for w in deal_warnings(session, session.get(type(world.org), world.org.id), [deal], now)}
    assert "stale" in kinds
    just_in = {
        w.kind
        for w in deal_warnings(
            session, session.get(type(world.org), world.org.id), [deal], deal.stage_entered_at + timedelta(days=14)
        )
    }
    assert "stale" not in just_in


def test_quota_attainment_divides_by_the_exact_target(session, world: World):
    from services.models import Quota

    # Ten calls for November (30 days); the report covers 10 days: a target of 3⅓, not 3.33.
    session.add(
        Quota(
            organization_id=world.org.id,
            user_id=world.rep.id,
            period="month",
            period_start=date(2026, 11, 1),
            metric="activities",
            activity_type="call",
            target=Decimal(10),
        )
    )
    add(session, world, world.rep, datetime(2026, 11, 12, 10, tzinfo=timezone.utc))
    commit_and_roll_up(session, world.org)
    row = reports.quota_attainment(
        reports.report_scope(
            session, session.get(User, world.manager.id), Period(date(2026, 11, 10), date(2026, 11, 20))
        )
    )[0]
    assert row.ratio == 0.3 and float(row.target) == pytest.approx(10 / 3, abs=1e-12)


def test_leads_follow_the_team_and_rep_filters(session, world: World):
    from services.models import Lead

    when = datetime(2026, 11, 12, 10, tzinfo=timezone.utc)
    for owner, source in ((world.rep, "web_form"), (world.teammate, "referral"), (world.west_rep, "phone")):
        session.add(
            Lead(
                organization_id=world.org.id,
                name=f"Lead of {owner.name}",
                email=f"lead-{owner.id}@x.test",
                source=source,
                owner_id=owner.id,
                status="new",
                created_at=when,
            )
        )
    session.commit()
    period = Period(date(2026, 11, 1), date(2026, 12, 1))
    east = reports.lead_conversion(reports.report_scope(session, session.get(User, world.manager.id), period))
    assert sorted(row.source for row in east) == ["referral", "web_form"]  # not West's phone lead
    admin = session.get(User, world.admin.id)
    assert [
        row.source
        for row in reports.lead_conversion(reports.report_scope(session, admin, period, team_id=world.west.id))
    ] == ["phone"]
    assert [
        row.source
        for row in reports.lead_conversion(reports.report_scope(session, admin, period, rep_id=world.teammate.id))
    ] == ["referral"]
    assert len(reports.lead_conversion(reports.report_scope(session, admin, period))) == 3


def test_stage_conversion_matches_the_stage_changes(demo_session, demo):
    session = demo_session
    from services.models import StageChange

    period = period_for("last_year", TODAY, demo.organization.fiscal_year_start_month)
    rows = reports.stage_conversion(reports.report_scope(session, demo, period))
    zone = demo.organization.time_zone
    cohort = {
        d.id for d in session.scalars(select(Opportunity)) if period.start <= local_day(d.created_at, zone) < period.end
    }
    stages = {s.id: s.position for s in session.scalars(select(Stage))}
    changes = defaultdict(list)
    for c in session.scalars(select(StageChange)):
        if c.opportunity_id in cohort:
            changes[c.opportunity_id].append(c)
    for row in rows:
        reached = {d for d, cs in changes.items() if any(c.to_stage_id == row.stage_id for c in cs)}
        moved = {
            d
            for d in reached
            if any(c.to_status == "won" or stages[c.to_stage_id] > stages[row.stage_id] for c in changes[d])
        }
        assert (row.reached, row.moved_on) == (len(reached), len(moved)), row.name
    assert rows[0].reached == len(cohort) > 0  # every deal enters at the first stage in the demo


def test_lead_conversion_matches_the_raw_rows(demo_session, demo):
    session = demo_session
    from services.models import Lead

    period = period_for("last_year", TODAY, demo.organization.fiscal_year_start_month)
    rows = {row.source: row for row in reports.lead_conversion(reports.report_scope(session, demo, period))}
    zone = demo.organization.time_zone
    expected = defaultdict(lambda: [0, 0])
    for lead in session.scalars(select(Lead)):
        if period.start <= local_day(lead.created_at, zone) < period.end:
            expected[lead.source][0] += 1
            expected[lead.source][1] += lead.converted_at is not None
    assert {s: (r.created, r.converted) for s, r in rows.items()} == {s: tuple(v) for s, v in expected.items()}
    assert sum(r.created for r in rows.values()) > 0


# -- rollups ----------------------------------------------------------------------------------


def test_rollups_kept_in_step_equal_a_rebuild(session, world: World):
    from services.mail import activities
    from services.rollups import rebuild_rollups
    from tests.helpers import rollup_snapshot

    rep = session.get(User, world.rep.id)
    now = datetime(2026, 11, 20, 10, tzinfo=timezone.utc)
    first, _ = activities.log_email(
        session,
        rep,
        {
            "internet_message_id": "<r1@acme.test>",
            "from_address": "ann@acme.test",
            "to": [rep.email],
            "sent_at": "2026-11-20T09:00:00+00:00",
        },
        now=now,
    )
    activities.log_activity(
        session,
        rep,
        {
            "type": "call",
            "outcome": "connected",
            "duration_minutes": 12,
            "occurred_at": "2026-11-19T23:30:00+00:00",
            "contact_id": world.contact.id,
        },
        now=now,
    )
    activities.log_meeting(
        session,
        rep,
        {
            "event_id": "E9",
            "start": "2026-11-18T10:00:00+00:00",
            "end": "2026-11-18T11:00:00+00:00",
            "attendees": ["ann@acme.test"],
        },
        now=now,
    )
    second, _ = activities.log_email(
        session,
        rep,
        {"internet_message_id": "<r2@acme.test>", "from_address": "ann@acme.test", "to": [rep.email]},
        now=now,
    )
    activities.undo_log(session, rep, second.id, now=now)
    activities.undo_log(session, rep, first.id, now=now)
    activities.log_email(
        session,
        rep,
        {"internet_message_id": "<r1@acme.test>", "from_address": "ann@acme.test", "to": [rep.email]},
        now=now,
    )
    session.commit()
    maintained = rollup_snapshot(session, world.org.id)
    # 23:30 UTC on the 19th is the 20th in Berlin: the rollup counts local days.
    # The call's note is empty against a two-question checklist: flagged, in both grains.
    assert ("day", world.rep.id, date(2026, 11, 20), "call", "outbound", "connected", 1, 12, 1) in maintained
    # The month's row also counts it under its local weekday: 20 November 2026 is a Friday.
    assert (
        "month",
        world.rep.id,
        date(2026, 11, 1),
        "call",
        "outbound",
        "connected",
        1,
        12,
        1,
        0,
        0,
        0,
        0,
        1,
        0,
        0,
    ) in maintained
    rebuild_rollups(session, session.get(type(world.org), world.org.id))
    session.commit()
    assert rollup_snapshot(session, world.org.id) == maintained
    assert (
        sum(row[6] for row in maintained if row[0] == "day")
        == sum(row[6] for row in maintained if row[0] == "month")
        == 3
    )


def test_demo_rollups_equal_a_rebuild(demo_session, demo):
    session = demo_session
    from services.rollups import rebuild_rollups
    from tests.helpers import rollup_snapshot

    generated = rollup_snapshot(session, demo.organization_id)
    rebuild_rollups(session, demo.organization)
    session.commit()
    assert rollup_snapshot(session, demo.organization_id) == generated and generated


def test_rollups_rebuild_command(tmp_path, monkeypatch):
    from addin import create_app

    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'r.db'}")
    runner = create_app().test_cli_runner()
    assert runner.invoke(args=["db", "upgrade"]).exit_code == 0
    assert runner.invoke(args=["demo-data", "--scale", "0.02", "--today", "2026-11-20"]).exit_code == 0
    result = runner.invoke(args=["rollups", "rebuild"])
    assert result.exit_code == 0 and "Northwind Freight:" in result.output and " rows" in result.output


# -- patterns, trends, leads, deals that need a look ---------------------------------------------


@pytest.mark.parametrize("kind", ["last_quarter", "mid-month to mid-month"])
def test_weekday_pattern_matches_the_raw_rows(demo_session, demo, kind):
    """Whole months from the monthly rollups' weekday counts, edge days from the daily ones."""
    session = demo_session
    period = (
        Period(date(2025, 12, 10), date(2026, 3, 17))
        if kind != "last_quarter"
        else period_for("last_quarter", TODAY, demo.organization.fiscal_year_start_month)
    )
    pattern = reports.weekday_pattern(reports.report_scope(session, demo, period))
    zone = ZoneInfo(demo.organization.time_zone)
    expected = defaultdict(lambda: [0] * 7)
    for a in session.scalars(select(Activity).where(Activity.deleted_at.is_(None))):
        day = a.occurred_at.astimezone(zone).date()
        if period.start <= day < period.end and a.owner_id in pattern:
            expected[a.owner_id][day.weekday()] += 1
    assert pattern == {owner: expected[owner] for owner in pattern}
    assert sum(map(sum, pattern.values())) > 0


def test_monthly_trends_match_the_raw_rows(demo_session, demo):
    session = demo_session
    points = reports.monthly_trends(reports.report_scope(session, demo, today=TODAY, months=12))
    assert len(points) == 12 and points[-1].month == date(2026, 11, 1) and points[0].month == date(2025, 12, 1)
    zone = ZoneInfo(demo.organization.time_zone)
    activities = Counter()
    for a in session.scalars(select(Activity).where(Activity.deleted_at.is_(None))):
        local = a.occurred_at.astimezone(zone).date()
        activities[date(local.year, local.month, 1)] += 1
    won = defaultdict(lambda: [0, Decimal(0)])
    for d in session.scalars(select(Opportunity).where(Opportunity.status == "won")):
        local = d.closed_at.astimezone(zone).date()
        won[date(local.year, local.month, 1)][0] += 1
        won[date(local.year, local.month, 1)][1] += d.amount
    for point in points:
        assert point.activities == activities[point.month]
        assert (point.won_deals, point.won_amount) == (won[point.month][0], won[point.month][1])
    with pytest.raises(DomainError):
        reports.monthly_trends(reports.report_scope(session, demo, today=TODAY, months=7))


def test_lead_response_times_match_the_raw_rows(demo_session, demo):
    import statistics

    from services.models import Lead

    session = demo_session
    period = period_for("last_year", TODAY, demo.organization.fiscal_year_start_month)
    rows = {row.owner_id: row for row in reports.lead_response_times(reports.report_scope(session, demo, period))}
    zone = ZoneInfo(demo.organization.time_zone)
    touches = defaultdict(list)
    for a in session.scalars(select(Activity).where(Activity.lead_id.is_not(None), Activity.direction == "outbound")):
        if a.type in ("call", "email", "meeting") and a.deleted_at is None:
            touches[a.lead_id].append(a.occurred_at)
    waits = defaultdict(list)
    for lead in session.scalars(select(Lead)):
        if period.start <= lead.created_at.astimezone(zone).date() < period.end:
            first = min(touches[lead.id]) if touches[lead.id] else None
            waits[lead.owner_id].append((first - lead.created_at).total_seconds() / 3600 if first else None)
    for owner_id, row in rows.items():
        answered = [w for w in waits[owner_id] if w is not None]
        assert (row.leads, row.answered) == (len(waits[owner_id]), len(answered))
        assert row.median_hours == (pytest.approx(statistics.median(answered)) if answered else None)
        assert row.within_target == sum(1 for w in answered if w <= 24)
    assert sum(row.leads for row in rows.values()) > 0


def test_lost_deals_and_alerts_on_the_demo(demo_session, demo):
    session = demo_session
    period = period_for("last_year", TODAY, demo.organization.fiscal_year_start_month)
    lost = reports.lost_deals(reports.report_scope(session, demo, period)).rows
    outcome = reports.deal_outcomes(reports.report_scope(session, demo, period))
    assert len(lost) == outcome.lost and all(deal.reason for deal in lost)
    by_reason = Counter(deal.reason for deal in lost)
    assert by_reason == Counter({reason: count for reason, (count, _) in outcome.lost_by_reason.items()})
    now = datetime(2026, 11, 20, 17, tzinfo=timezone.utc)
    alerts = reports.deal_alerts(reports.report_scope(session, demo, now=now)).rows
    assert {"going_dark", "stale"} <= {kind for a in alerts for kind in a.kinds}
    open_ids = set(session.scalars(select(Opportunity.id).where(Opportunity.status == "open")))
    assert {a.opportunity_id for a in alerts} <= open_ids
    # One row per deal, with every reason it has.
    assert len({a.opportunity_id for a in alerts}) == len(alerts)
    assert any(len(a.kinds) > 1 for a in alerts)
    assert [a.days for a in alerts] == sorted((a.days for a in alerts), reverse=True)


def test_forecast_adds_won_and_weighted_open_deals(session, world: World):
    from services.models import Quota

    deal = session.get(Opportunity, world.deal.id)
    deal.status, deal.closed_at, deal.amount = "won", datetime(2026, 11, 2, tzinfo=timezone.utc), Decimal(10000)
    expected_in_quarter = Opportunity(
        organization_id=world.org.id,
        name="Open in Q4",
        account_id=world.account.id,
        owner_id=world.teammate.id,
        amount=Decimal(20000),
        currency="EUR",
        stage_id=world.stages[1].id,
        expected_close_date=date(2026, 12, 15),
    )
    next_quarter = Opportunity(
        organization_id=world.org.id,
        name="Open in Q1",
        account_id=world.account.id,
        owner_id=world.rep.id,
        amount=Decimal(99999),
        currency="EUR",
        stage_id=world.stages[2].id,
        expected_close_date=date(2027, 1, 15),
    )
    session.add_all(
        [
            expected_in_quarter,
            next_quarter,
            Quota(
                organization_id=world.org.id,
                team_id=world.east.id,
                period="quarter",
                period_start=date(2026, 10, 1),
                metric="won_revenue",
                target=Decimal(36000),
            ),
        ]
    )
    session.commit()
    forecast = reports.quarter_forecast(reports.report_scope(session, session.get(User, world.manager.id), today=TODAY))
    assert (forecast.quarter.start, forecast.quarter.end) == (date(2026, 10, 1), date(2027, 1, 1))
    assert (forecast.won, forecast.weighted_open, forecast.quota) == (
        Decimal(10000),
        Decimal("8000.00"),
        Decimal(36000),
    )
    assert forecast.total == Decimal(18000) and forecast.attainment == 0.5


def test_note_quality_flags_empty_and_unanswered_notes(session, world: World):
    berlin = ZoneInfo("Europe/Berlin")
    add(
        session,
        world,
        world.rep,
        datetime(2026, 11, 10, 9, tzinfo=berlin),
        body_text="Truck size: 26 ft\nLanes used: Berlin-Hamburg",
    )
    add(
        session, world, world.rep, datetime(2026, 11, 10, 10, tzinfo=berlin), body_text="Truck size: 40 ft\nLanes used:"
    )
    add(session, world, world.rep, datetime(2026, 11, 10, 11, tzinfo=berlin), body_text="Nice chat.")
    add(session, world, world.rep, datetime(2026, 11, 10, 12, tzinfo=berlin))
    add(session, world, world.rep, datetime(2026, 11, 10, 13, tzinfo=berlin), type="email", body_text="not a call")
    commit_and_roll_up(session, world.org)  # written straight to the store, as an import is: scored by the rebuild
    manager, november = session.get(User, world.manager.id), Period(date(2026, 11, 1), date(2026, 12, 1))
    rows = reports.note_quality(reports.report_scope(session, manager, november))
    assert [(r.answered, r.questions, r.flagged) for r in rows] == [
        (2, 2, False),
        (1, 2, False),
        (0, 2, True),
        (0, 2, True),
    ]
    assert [r.share for r in rows] == [1.0, 0.5, 0.0, 0.0]
    assert reports.note_quality_totals(reports.report_scope(session, manager, november)) == reports.NoteQualityTotals(
        4, 2
    )


def test_a_logged_call_is_scored_as_it_is_written(session, world: World):
    from services.mail.activities import log_activity

    rep = session.get(User, world.rep.id)
    call, _ = log_activity(
        session,
        rep,
        {
            "type": "call",
            "contact_id": world.contact.id,
            "occurred_at": "2026-11-10T09:00",
            "answers": {"Truck size": "26 ft", "Lanes used": " "},
            "body_text": "Good talk",
        },
    )
    visit, _ = log_activity(
        session, rep, {"type": "visit", "contact_id": world.contact.id, "occurred_at": "2026-11-10T10:00"}
    )
    email, _ = log_activity(
        session, rep, {"type": "email", "contact_id": world.contact.id, "body_text": "Truck size: 3"}
    )
    assert (call.checklist_questions, call.checklist_answered) == (2, 1)
    assert (visit.checklist_questions, visit.checklist_answered) == (0, 0)  # no visit checklist here: nothing to flag
    assert (email.checklist_questions, email.checklist_answered) == (None, None)


def test_note_quality_matches_the_raw_notes(demo_session, demo):
    """Counted in SQL from the kept scores; recounted here from the notes themselves."""
    from services.models import NoteChecklist

    session = demo_session
    period = period_for("last_quarter", TODAY, demo.organization.fiscal_year_start_month)
    start, end = period.utc_bounds(demo.organization.time_zone)
    questions = {c.activity_type: c.questions for c in session.scalars(select(NoteChecklist))}
    notes = flagged = 0
    for activity in session.scalars(
        select(Activity).where(Activity.type.in_(("call", "visit")), Activity.deleted_at.is_(None))
    ):
        if start <= activity.occurred_at < end:
            asked = questions.get(activity.type, [])
            lines = dict(line.split(":", 1) for line in (activity.body_text or "").splitlines() if ":" in line)
            notes += 1
            flagged += bool(asked) and not any(lines.get(q, "").strip() for q in asked)
    totals = reports.note_quality_totals(reports.report_scope(session, demo, period))
    assert (totals.notes, totals.flagged) == (notes, flagged) and 0 < flagged < notes


def test_reopened_and_deleted_deals_and_a_team_of_one(session, world: World):
    from services import deals as deal_service

    rep = session.get(User, world.rep.id)
    when = datetime(2026, 11, 10, 12, tzinfo=timezone.utc)
    deal_service.move_stage(session, rep, world.deal.id, {"stage": "won", "final_amount": "5000"}, now=when)
    other = Opportunity(
        organization_id=world.org.id,
        name="Gone",
        account_id=world.account.id,
        owner_id=world.rep.id,
        amount=Decimal(7000),
        currency="EUR",
        stage_id=world.stages[0].id,
        status="lost",
        loss_reason="Price",
        closed_at=when,
        deleted_at=when,
    )
    session.add(other)
    session.commit()
    november = Period(date(2026, 11, 1), date(2026, 12, 1))
    manager = session.get(User, world.manager.id)
    assert reports.deal_outcomes(reports.report_scope(session, manager, november)).won == 1
    assert (
        reports.deal_outcomes(reports.report_scope(session, manager, november)).lost == 0
    )  # the soft-deleted loss never counts
    # Reopened: no longer closed in the period, so no longer won.
    deal_service.move_stage(
        session, rep, world.deal.id, {"stage": str(world.stages[1].id)}, now=when + timedelta(days=1)
    )
    session.commit()
    assert (
        reports.deal_outcomes(reports.report_scope(session, manager, november)).won,
        reports.deal_outcomes(reports.report_scope(session, manager, november)).win_rate,
    ) == (0, None)
    # West is a team of one rep and its manager.
    west = reports.activity_summary(reports.report_scope(session, session.get(User, world.west_manager.id), november))
    assert {row.name for row in west} == {"Wendy West", "Walt Manager"}


def test_neglected_accounts(session, world: World):
    from services.models import FollowUp

    from tests.factories import NOW as now

    manager = session.get(User, world.manager.id)
    # Acme has an open deal and nothing for 100 days (it was created 100 days ago): neglected.
    assert [
        (a.name, a.days) for a in reports.neglected_accounts(reports.report_scope(session, manager, now=now)).rows
    ] == [("Acme Freight", 100)]
    add(session, world, world.teammate, now - timedelta(days=3), account_id=world.account.id)
    commit_and_roll_up(session, world.org)  # written straight to the store: the account learns it on a rebuild
    assert (
        reports.neglected_accounts(reports.report_scope(session, manager, now=now)).rows == []
    )  # anyone's activity counts
    later = now + timedelta(days=20)
    assert [a.days for a in reports.neglected_accounts(reports.report_scope(session, manager, now=later)).rows] == [23]
    # Exactly 14 days quiet is neglected, a millisecond less is not (both back ends).
    quiet = session.get(type(world.account), world.account.id).last_activity_at
    assert [
        a.days
        for a in reports.neglected_accounts(reports.report_scope(session, manager, now=quiet + timedelta(days=14))).rows
    ] == [14]
    assert (
        reports.neglected_accounts(
            reports.report_scope(session, manager, now=quiet + timedelta(days=14) - timedelta(milliseconds=1))
        ).rows
        == []
    )
    session.add(
        FollowUp(
            organization_id=world.org.id,
            title="Call",
            owner_id=world.rep.id,
            account_id=world.account.id,
            due_at=later + timedelta(days=1),
        )
    )
    session.commit()
    assert (
        reports.neglected_accounts(reports.report_scope(session, manager, now=later)).rows == []
    )  # a follow-up is planned


def test_the_pages_first_neglected_accounts_are_the_first_of_them(session, world: World):
    """30 accounts, quiet for a few whole days each (many tied) and named so that a tie is
    broken in code point order, some with a follow-up planned, a deal deleted or only closed
    deals, or another team's owner: the list is the raw rows' and the page's first ``limit``
    are its first, with the full count beside them."""
    from services.models import Account, FollowUp
    from tests.factories import make_account, make_deal

    manager = session.get(User, world.manager.id)
    org = world.org
    now = datetime(2026, 11, 20, 17, tzinfo=timezone.utc)
    stage = session.get(Stage, world.stages[0].id)
    for n in range(30):
        owner = session.get(User, (world.rep, world.teammate, world.west_rep)[n % 3].id)
        account = make_account(session, org, owner, f"{('Acme', 'acme', 'Ålesund')[n % 3]} {(n * 7) % 30:02d}", None)
        account.created_at = now - timedelta(days=60)
        account.last_activity_at = now - timedelta(days=14 + n % 4, hours=n % 5)
        session.flush()
        deal = make_deal(session, org, account, owner, stage, f"Deal {n}")
        if n % 7 == 1:
            deal.deleted_at = now
        if n % 7 == 2:
            deal.status, deal.closed_at = "won", now - timedelta(days=30)
        if n % 7 == 3:
            session.add(
                FollowUp(
                    organization_id=org.id,
                    title="Call",
                    owner_id=owner.id,
                    account_id=account.id,
                    due_at=now + timedelta(days=1),
                )
            )
        if n % 7 == 4:
            session.add(
                FollowUp(
                    organization_id=org.id,
                    title="Call",
                    owner_id=owner.id,
                    account_id=account.id,
                    due_at=now - timedelta(days=1),
                )
            )
    session.commit()
    members = {p.id: p.name for p in reports.team_members(session, manager)}
    expected = []
    for account in session.scalars(
        select(Account).where(Account.organization_id == org.id, Account.deleted_at.is_(None))
    ):
        quiet = now - (account.last_activity_at or account.created_at)
        deals = [
            d
            for d in session.scalars(select(Opportunity).where(Opportunity.account_id == account.id))
            if d.status == "open" and d.deleted_at is None
        ]
        planned = [
            f
            for f in session.scalars(select(FollowUp).where(FollowUp.account_id == account.id))
            if f.done_at is None and f.deleted_at is None and f.due_at > now
        ]
        if account.owner_id in members and deals and not planned and quiet >= timedelta(days=14):
            expected.append((quiet.days, account.name, account.id))
    expected.sort(key=lambda row: (-row[0], row[1], row[2]))
    found = reports.neglected_accounts(reports.report_scope(session, manager, now=now)).rows
    assert [(a.days, a.name, a.id) for a in found] == expected
    assert len(expected) > 8 and len({days for days, *_ in expected}) < len(expected) / 2  # ties, many of them
    for limit in range(1, len(found) + 2):
        first = reports.neglected_accounts(reports.report_scope(session, manager, now=now), limit=limit)
        assert first.total == len(found) and first.rows == found[:limit], limit


def test_team_revenue_attainment_is_pro_rata_and_counts_the_teams_wins(session, world: World):
    from services.models import Quota

    # East: 90,000 for Q4 (92 days); the report covers November (30 days): a target of 29,347.83.
    session.add(
        Quota(
            organization_id=world.org.id,
            team_id=world.east.id,
            period="quarter",
            period_start=date(2026, 10, 1),
            metric="won_revenue",
            target=Decimal(90000),
        )
    )
    deal = session.get(Opportunity, world.deal.id)  # Rita's, East
    deal.status, deal.closed_at, deal.amount = "won", datetime(2026, 11, 12, tzinfo=timezone.utc), Decimal(12000)
    session.commit()
    admin = session.get(User, world.admin.id)
    rows = reports.team_revenue_attainment(
        reports.report_scope(session, admin, Period(date(2026, 11, 1), date(2026, 12, 1)))
    )
    assert [(r.name, r.actual) for r in rows] == [("East", Decimal(12000))]
    assert rows[0].target == Decimal(90000) * 30 / 92 and rows[0].ratio == pytest.approx(12000 / (90000 * 30 / 92))
    # The dashboard's, from the report's own wins by owner, is the same.
    november = Period(date(2026, 11, 1), date(2026, 12, 1))
    now = datetime(2026, 11, 20, 12, tzinfo=timezone.utc)
    assert (
        reports.team_report(reports.report_scope(session, admin, november, today=now.date(), now=now)).team_quota
        == rows
    )
    assert (
        reports.team_report(
            reports.report_scope(session, admin, november, today=now.date(), now=now, team_id=world.east.id)
        ).team_quota
        == rows
    )
    # A West manager sees no East quota.
    assert (
        reports.team_revenue_attainment(
            reports.report_scope(
                session, session.get(User, world.west_manager.id), Period(date(2026, 11, 1), date(2026, 12, 1))
            )
        )
        == []
    )


def test_the_report_compares_year_over_year_and_trends_over_24_months(session, world: World):
    berlin = ZoneInfo("Europe/Berlin")
    for year in (2025, 2026):
        add(session, world, world.rep, datetime(year, 11, 12, 10, tzinfo=berlin), duration_minutes=20)
    add(session, world, world.rep, datetime(2026, 10, 12, 10, tzinfo=berlin), type="email", duration_minutes=5)
    commit_and_roll_up(session, world.org)
    manager = session.get(User, world.manager.id)
    november = Period(date(2026, 11, 1), date(2026, 12, 1), "this_month")
    now = datetime(2026, 11, 20, 12, tzinfo=timezone.utc)
    yoy = reports.team_report(
        reports.report_scope(
            session, manager, november, today=date(2026, 11, 20), now=now, year_over_year=True, months=24
        )
    )
    assert (yoy.comparison.start, yoy.comparison.end) == (date(2025, 11, 1), date(2025, 12, 1))
    assert yoy.activity_before[world.rep.id] == 1 and yoy.activity_change.ratio == 0.0
    assert len(yoy.trends) == 24 and yoy.trends[0].month == date(2024, 12, 1)
    previous = reports.team_report(reports.report_scope(session, manager, november, today=date(2026, 11, 20), now=now))
    assert previous.comparison.start == date(2026, 10, 1) and len(previous.trends) == 12
    rita = next(r for r in previous.activity if r.owner_id == world.rep.id)
    assert rita.hours_by_type == {"call": pytest.approx(20 / 60)}


@pytest.mark.parametrize(
    "kind", ["this_week", "mtd", "this_quarter", "qtd", "ytd", "this_year", "last_year", "mid-month to mid-month"]
)
def test_quota_targets_sum_whole_quotas_in_sql_and_the_rest_pro_rata(demo_session, demo, kind):
    """The quotas wholly inside a period are summed by the database, the ones at its edges pro
    rata: together, the same as every quota counted pro rata one by one."""
    from services.models import Quota
    from services.reports.quotas import _pro_rata

    session = demo_session
    custom = {"mid-month to mid-month": Period(date(2025, 12, 10), date(2026, 3, 17))}
    period = custom.get(kind) or period_for(
        kind,
        TODAY,
        demo.organization.fiscal_year_start_month,
        datetime(2026, 11, 20, 15) if kind in ("mtd", "qtd", "ytd") else None,
    )
    owners = [u.id for u in reports.team_members(session, demo)]
    expected: dict = defaultdict(Decimal)
    for quota in session.scalars(select(Quota).where(Quota.user_id.in_(owners))):
        if (share := _pro_rata(quota.period, quota.period_start, quota.target, period)) > 0:
            expected[(quota.user_id, quota.metric, quota.activity_type)] += share
    assert expected
    assert dict(reports.quota_targets(session, demo, period, owners)) == dict(expected)


def _alerts_from_raw_rows(session, actor: User, owners: set[int], now: datetime) -> dict[int, list[tuple[str, int]]]:
    """PRODUCT.md's warnings computed apart from ``services.signals``, from raw rows: each open
    deal's activities and follow-ups read one by one, times compared as Python datetimes."""
    from services.models import Activity, FollowUp, Organization

    org = session.get(Organization, actor.organization_id)
    dark, neglect = int(org.setting("going_dark_days")), int(org.setting("neglected_days"))
    deals = session.scalars(
        select(Opportunity).where(
            Opportunity.organization_id == actor.organization_id,
            Opportunity.status == "open",
            Opportunity.deleted_at.is_(None),
            Opportunity.owner_id.in_(owners),
        )
    ).all()
    inbound = {
        ("email", "inbound", None),
        ("call", None, "connected"),
        ("meeting", None, "held"),
        ("visit", None, "held"),
    }
    result = {}
    for deal in deals:
        live = session.scalars(
            select(Activity).where(Activity.opportunity_id == deal.id, Activity.deleted_at.is_(None))
        ).all()
        heard = [
            a.occurred_at
            for a in live
            if (a.type, a.direction if a.type == "email" else None, None if a.type == "email" else a.outcome) in inbound
        ]
        planned = any(
            f.due_at > now
            for f in session.scalars(
                select(FollowUp).where(
                    FollowUp.opportunity_id == deal.id, FollowUp.done_at.is_(None), FollowUp.deleted_at.is_(None)
                )
            )
        )
        found = []
        if (now - max(heard, default=deal.created_at)) >= timedelta(days=dark):
            found.append(("going_dark", (now - max(heard, default=deal.created_at)).days))
        if deal.stage.sla_days is not None and now - deal.stage_entered_at > timedelta(days=deal.stage.sla_days):
            found.append(("stale", (now - deal.stage_entered_at).days))
        idle = now - max((a.occurred_at for a in live), default=deal.created_at)
        if idle >= timedelta(days=neglect) and not planned:
            found.append(("neglected", idle.days))
        if found:
            result[deal.id] = sorted(found)
    return result


def _report_alerts(alerts) -> dict[int, list[tuple[str, int]]]:
    return {a.opportunity_id: sorted((w.kind, w.days) for w in a.warnings) for a in alerts}


def test_deal_alerts_are_the_raw_rows_warnings(demo_session, demo):
    """The dashboard's alerts (the rule worked out in SQL) are the warnings computed apart from
    raw rows, for every open deal of the demo, in the page's order."""
    session = demo_session
    people = reports.team_members(session, demo)[1:]  # not quite everyone
    now = datetime(2026, 12, 2, 9, 30, tzinfo=timezone.utc)  # a dozen days past the demo: warnings of every kind
    alerts = reports.deal_alerts(reports.report_scope(session, demo, now=now, people=people)).rows
    expected = _alerts_from_raw_rows(session, demo, {p.id for p in people}, now)
    assert {kind for found in expected.values() for kind, _ in found} == {"going_dark", "stale", "neglected"}
    assert _report_alerts(alerts) == expected
    names = {a.opportunity_id: a.name for a in alerts}
    assert [a.opportunity_id for a in alerts] == sorted(
        expected, key=lambda d: (-max(days for _, days in expected[d]), names[d], d)
    )


def test_the_pages_first_alerts_are_the_first_of_them_ties_at_the_cut_included(session, world: World):
    """40 deals, many tied on the days of their longest warning and named so that a tie is
    broken by name (in code point order, as Python sorts: "Deal" < "deal" < "Éclat"): the page's first ``limit`` are exactly the first of the full list, for
    every limit, with the full count beside them; the full list is the raw rows' warnings."""
    from tests.factories import make_deal

    manager = session.get(User, world.manager.id)
    org, account = world.org, session.get(type(world.account), world.account.id)
    now = datetime(2026, 11, 20, 17, tzinfo=timezone.utc)
    for n in range(40):
        owner = session.get(User, (world.rep, world.teammate)[n % 2].id)
        make_deal(
            session,
            org,
            account,
            owner,
            session.get(Stage, world.stages[n % 3].id),
            f"{('Deal', 'deal', 'Éclat')[n % 3]} {(n * 7) % 40:02d}",
            created=now - timedelta(days=10 + 5 * (n % 6), hours=n % 4),
        )
    session.commit()
    members = {p.id for p in reports.team_members(session, manager)}
    alerts = reports.deal_alerts(reports.report_scope(session, manager, now=now)).rows
    assert _report_alerts(alerts) == _alerts_from_raw_rows(session, manager, members, now)
    assert len(alerts) > 30 and len({a.days for a in alerts}) < len(alerts) / 4  # ties, many of them
    for limit in range(1, len(alerts) + 3):
        first = reports.deal_alerts(reports.report_scope(session, manager, now=now), limit=limit)
        assert first.total == len(alerts) and first.rows == alerts[:limit], limit


def test_deal_alerts_at_their_exact_edges(session, world: World):
    """On both back ends, to the second: 21 days without word is dark and a second less is not;
    a second past a stage's SLA is stale and the SLA itself is not; the dashboard, the pane and
    a computation from raw rows agree at every edge."""
    from services.models import Organization
    from services.signals import deal_warnings

    org = session.get(Organization, world.org.id)
    manager = session.get(User, world.manager.id)
    stage = session.get(Stage, world.stages[0].id)
    stage.sla_days = 14
    deal = session.get(Opportunity, world.deal.id)
    session.commit()
    now = datetime(2026, 11, 20, 17, 0, 0, 250000, tzinfo=timezone.utc)
    dark, neglect = int(org.setting("going_dark_days")), int(org.setting("neglected_days"))
    members = {p.id for p in reports.team_members(session, manager)}
    cases = [
        (timedelta(days=dark), timedelta(days=14), {"going_dark", "neglected"}),
        (timedelta(days=dark) - timedelta(seconds=1), timedelta(days=14, seconds=1), {"stale", "neglected"}),
        (timedelta(days=neglect) - timedelta(milliseconds=1), timedelta(days=14) - timedelta(milliseconds=1), set()),
    ]
    for since, in_stage, kinds in cases:
        deal.stage, deal.status = stage, "open"
        deal.created_at = now - since
        deal.stage_entered_at = now - in_stage
        deal.last_inbound_at = deal.last_activity_at = None
        session.commit()
        alerts = [
            a
            for a in reports.deal_alerts(reports.report_scope(session, manager, now=now)).rows
            if a.opportunity_id == deal.id
        ]
        assert {kind for a in alerts for kind in a.kinds} == kinds, (since, in_stage)
        raw = _alerts_from_raw_rows(session, manager, members, now)
        assert _report_alerts(alerts) == {d: w for d, w in raw.items() if d == deal.id}
        # And the pane's reading of the same deal (one ORM object).
        assert {w.kind for w in deal_warnings(session, org, [session.get(Opportunity, deal.id)], now)} == kinds


def test_the_pages_per_rep_tables_are_the_full_tables_rows_for_the_reps_it_lists(demo_session, demo, monkeypatch):
    """Past ``REPS_SHOWN`` reps the page's quota, lead response and weekday rows are computed for
    the reps it lists only: each is exactly the full table's row for that rep (the CSV's)."""
    monkeypatch.setattr("services.reports.dashboard.REPS_SHOWN", 2)
    period = period_for("this_year", TODAY, demo.organization.fiscal_year_start_month)
    now = datetime(2026, 11, 20, 17, tzinfo=timezone.utc)
    page = reports.team_report(reports.report_scope(demo_session, demo, period, today=TODAY, now=now))
    full = reports.team_report(reports.report_scope(demo_session, demo, period, today=TODAY, now=now))
    shown = {person.id for person in page.reps.rows}
    assert page.reps.cut and len(shown) == 2 and len(page.scope.people) > 2
    assert page.quota_rows and page.response_rows
    assert page.quota_rows == [row for row in full.quota if row.owner_id in shown]
    assert page.response_rows == [row for row in full.response if row.owner_id in shown]
    every_weekday = reports.weekday_pattern(reports.report_scope(demo_session, demo, period, people=page.scope.people))
    assert {owner: list(days) for owner, days in page.weekdays.items()} == {
        owner: list(every_weekday[owner]) for owner in shown
    }
    assert "quota" not in page.__dict__ and "response" not in page.__dict__  # the page never computed every rep's


def test_the_whole_organization_leaves_out_its_admins_records_either_way(session, world: World):
    """For an admin's whole organization the date-driven figures leave out the few users who
    are not members (``People.others``) instead of naming every member: an admin's own won deal
    and lead count in neither, and each figure equals the one computed from the members' ids."""
    from services.models import Lead
    from tests.factories import make_deal

    admin = session.get(User, world.admin.id)
    now = datetime(2026, 11, 20, 17, tzinfo=timezone.utc)
    deal = make_deal(
        session,
        world.org,
        session.get(type(world.account), world.account.id),
        admin,
        session.get(Stage, world.stages[0].id),
        "The admin's own",
        created=now - timedelta(days=20),
    )
    deal.status, deal.closed_at, deal.amount = "won", now - timedelta(days=2), Decimal(99000)
    session.add(
        Lead(
            organization_id=world.org.id,
            owner_id=admin.id,
            name="Admin's lead",
            email="lead@admin.test",
            source="web_form",
            status="new",
            created_at=now - timedelta(days=1),
        )
    )
    session.commit()
    period = period_for("this_year", now.date(), world.org.fiscal_year_start_month)
    everyone = reports.team_members(session, admin)
    assert everyone.others == [admin.id]
    by_ids = list(everyone)  # the same people, named one by one
    for figure in (
        reports.deal_outcomes,
        reports.stage_conversion,
        reports.lead_conversion,
        reports.note_quality_totals,
    ):
        assert figure(reports.report_scope(session, admin, period, people=everyone)) == figure(
            reports.report_scope(session, admin, period, people=by_ids)
        ), figure.__name__
    assert reports.deal_outcomes(reports.report_scope(session, admin, period, people=everyone)).won_amount < Decimal(
        99000
    )
    assert reports.monthly_trends(
        reports.report_scope(session, admin, today=now.date(), people=everyone)
    ) == reports.monthly_trends(reports.report_scope(session, admin, today=now.date(), people=by_ids))
    assert (
        reports.lost_deals(reports.report_scope(session, admin, period, people=everyone)).rows
        == reports.lost_deals(reports.report_scope(session, admin, period, people=by_ids)).rows
    )
    assert sum(
        row.won_deals for row in reports.leaderboard(reports.report_scope(session, admin, period, people=everyone)).rows
    ) == sum(
        row.won_deals for row in reports.leaderboard(reports.report_scope(session, admin, period, people=by_ids)).rows
    )


@pytest.mark.parametrize(
    "now",
    [
        datetime(2026, 11, 20, 17, 0, tzinfo=timezone.utc),  # a Friday afternoon, the demo's last day
        datetime(2026, 11, 6, 3, 30, tzinfo=timezone.utc),  # the window's split across the November DST change
        datetime(2026, 11, 16, 5, 0, 0, 1, tzinfo=timezone.utc),  # a microsecond past a local midnight (New York)
    ],
)
def test_drawdown_from_day_totals_and_edge_days_matches_the_raw_rows(demo_session, demo, now):
    """The drawdown reads whole local days from the per-owner daily totals and the three edge
    days from the activities: it flags exactly the reps, at exactly the rates, that counting
    the raw activities of the last 7 × 24 hours and the 28 days before gives."""
    from services.models import Organization

    session = demo_session
    org = session.get(Organization, demo.organization_id)
    people = reports.team_members(session, demo)
    names = {p.id: p.name for p in people}
    recent, both = Counter(), Counter()
    for owner_id, occurred_at in session.execute(
        select(Activity.owner_id, Activity.occurred_at).where(
            Activity.organization_id == demo.organization_id, Activity.deleted_at.is_(None)
        )
    ):
        if owner_id in names and now - timedelta(days=35) <= occurred_at < now:
            both[owner_id] += 1
            recent[owner_id] += occurred_at >= now - timedelta(days=7)
    threshold = float(org.setting("drawdown_threshold"))
    expected = sorted(
        (
            (names[o], round(recent[o] / 5, 2), round((both[o] - recent[o]) / 20, 2))
            for o in both
            if (both[o] - recent[o]) / 20 > 0 and recent[o] / 5 < threshold * (both[o] - recent[o]) / 20
        )
    )
    found = sorted(
        (d.name, d.recent_per_day, d.baseline_per_day)
        for d in reports.drawdown_alerts(reports.report_scope(session, demo, now=now, people=people)).rows
    )
    assert found == expected
    assert sum(both.values()) > 100  # the window holds activities to count
    # And the counts themselves, flagged or not, through a threshold no rep stays under.
    org.settings = {**(org.settings or {}), "drawdown_threshold": 10**6}
    everyone = {
        d.name: (d.recent_per_day, d.baseline_per_day)
        for d in reports.drawdown_alerts(reports.report_scope(session, demo, now=now, people=people)).rows
    }
    session.rollback()
    assert everyone == {
        names[o]: (round(recent[o] / 5, 2), round((both[o] - recent[o]) / 20, 2)) for o in both if both[o] - recent[o]
    }


def _figures(report, names) -> dict:
    return {name: getattr(report, name) for name in names}


@pytest.mark.parametrize("scope", ["organization", "team"])
def test_the_page_computed_in_two_sessions_is_the_page_computed_in_one(demo_engine, demo_session, demo, scope):
    """``compute_page`` computes the heaviest figures in a second session, alongside the rest:
    every figure the page shows is what one session computes alone, on both back ends."""
    from services.db import make_session_factory
    from services.reports.alongside import page_names, prefetched_names

    ALONGSIDE, PAGE = prefetched_names(reports.TeamReport), page_names(reports.TeamReport)

    team_id = (
        None
        if scope == "organization"
        else demo_session.scalars(select(User.team_id).where(User.role == "rep")).first()
    )
    now = datetime(2026, 11, 20, 15, tzinfo=timezone.utc)
    period = period_for("this_year", TODAY, demo.organization.fiscal_year_start_month)
    alone = reports.team_report(reports.report_scope(demo_session, demo, period, today=TODAY, now=now, team_id=team_id))
    expected = _figures(alone, ALONGSIDE + PAGE)
    together = reports.team_report(
        reports.report_scope(demo_session, demo, period, today=TODAY, now=now, team_id=team_id)
    )
    together.compute_page(make_session_factory(demo_engine, write=False))
    assert together.alongside is not None and set(PAGE) <= set(
        vars(together)
    )  # started, and the rest computed meanwhile
    assert _figures(together, ALONGSIDE + PAGE) == expected
    assert together.alongside.done()
    assert (
        expected["alerts_shown"].total and expected["trends"] and expected["outcomes_before"].won
    )  # figures with something in them


def test_a_failure_in_the_second_session_is_the_pages(demo_session, demo):
    """An error computing the figures alongside reaches whoever reads one of them, as if it
    had been computed in the page's own session; the rest of the page is unaffected."""

    def broken():
        raise RuntimeError("the second connection failed")

    now = datetime(2026, 11, 20, 15, tzinfo=timezone.utc)
    period = period_for("this_year", TODAY, demo.organization.fiscal_year_start_month)
    report = reports.team_report(reports.report_scope(demo_session, demo, period, today=TODAY, now=now))
    report.compute_page(broken)
    assert report.activity  # computed in the page's session
    with pytest.raises(RuntimeError, match="second connection"):
        report.alerts_shown
