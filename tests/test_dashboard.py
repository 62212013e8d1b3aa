"""The dashboard and its CSV exports: who may see which team, the period picker's bad input,
and that what the page shows is what the services computed."""

from __future__ import annotations

import csv
import re
import io
from datetime import datetime, timedelta, timezone

import pytest

from services.models import Activity, Opportunity, User
from services.rollups import rebuild_rollups
from tests.factories import World, logged, slipping_team


def part(page: str, start: str, end: str) -> str:
    """The page from ``start`` to the first ``end`` after it: one section or chart."""
    rest = page[page.index(start) :]
    return rest[: rest.index(end)]


def add_activities(app, world: World, count: int) -> None:
    with app.extensions["inboxcrm.db"].sessions() as session:
        deal = session.get(Opportunity, world.deal.id)
        deal.name = '=HYPERLINK("http://evil.test")'
        session.commit()
    logged(
        app, world, *((world.rep, "call", datetime.now(timezone.utc) - timedelta(minutes=n + 1)) for n in range(count))
    )


@pytest.mark.parametrize("who, status", [("rita", 403), ("mia", 200), ("ada", 200)])
def test_dashboard_is_for_managers_and_admins(auth, app_world: World, who, status):
    auth.login(f"{who}@northwind.test")
    response = auth.get("/dashboard", htmx=False)
    assert response.status_code == status
    if status == 403:
        assert "<html" in response.get_data(as_text=True) and "Your role does not allow this." in response.get_data(
            as_text=True
        )


def test_managers_see_their_own_team_only(auth, app_world: World):
    auth.login("mia@northwind.test")
    body = auth.get("/dashboard", htmx=False).get_data(as_text=True)
    assert "Rita Rep" in body and "Tom Teammate" in body and "Wendy West" not in body
    assert auth.get(f"/dashboard?team={app_world.west.id}", htmx=False).status_code == 403
    auth.login("ada@northwind.test")
    west = auth.get(f"/dashboard?team={app_world.west.id}", htmx=False).get_data(as_text=True)
    assert "Wendy West" in west and "Rita Rep" not in west


def test_the_page_shows_what_the_services_computed(auth, app, app_world: World):
    add_activities(app, app_world, 7)
    auth.login("mia@northwind.test")
    body = auth.get("/dashboard?period=this_week").get_data(as_text=True)
    assert "<html" not in body  # htmx gets the report alone
    assert "<h2>7</h2>" in body
    export = auth.get("/dashboard/activity.csv?period=this_week", htmx=False)
    rows = list(csv.reader(io.StringIO(export.get_data(as_text=True))))
    assert rows[0][:6] == ["rep", "rep email", "activities", "before", "attempts", "contacts"]
    # Seven outbound connected calls: seven attempts, seven contacts.
    assert ["Rita Rep", "rita@northwind.test", "7", "0", "7", "7"] == rows[[r[0] for r in rows].index("Rita Rep")][:6]


def test_csv_cells_cannot_become_formulas(auth, app, app_world: World):
    add_activities(app, app_world, 1)
    auth.login("mia@northwind.test")
    with app.extensions["inboxcrm.db"].sessions() as session:
        session.get(Opportunity, app_world.deal.id).stage_entered_at = datetime.now(timezone.utc) - timedelta(days=60)
        session.commit()
    text = auth.get("/dashboard/alerts.csv", htmx=False).get_data(as_text=True)
    assert "'=HYPERLINK" in text and "\n=HYPERLINK" not in text and ",=HYPERLINK" not in text


@pytest.mark.parametrize(
    "query, message",
    [
        ("period=custom&start=2026-01-10&end=2026-01-01", "before the start"),
        ("period=custom&start=soon&end=", "Enter a start"),
        ("period=fortnight", "Unknown period"),
        ("period=custom&start=2010-01-01&end=2026-01-01", "three years"),
    ],
)
def test_bad_periods_get_a_message(auth, app_world: World, query, message):
    auth.login("mia@northwind.test")
    response = auth.get(f"/dashboard?{query}")
    assert response.status_code == 422 and message in response.get_data(as_text=True)


def test_unknown_export_is_404(auth, app_world: World):
    auth.login("ada@northwind.test")
    assert auth.get("/dashboard/passwords.csv", htmx=False).status_code == 404


# -- the pane's team panel and its drill-downs ------------------------------------------------------


def seed_branch_activity(app, world: World) -> None:
    from services.mail import activities

    with app.extensions["inboxcrm.db"].sessions() as session:
        rep = session.get(User, world.rep.id)
        activities.add_note(session, rep, {"body": "Denver wants reefers", "account_id": world.branch.id})
        activities.add_note(session, rep, {"body": "HQ signs the contracts", "account_id": world.account.id})
        activities.add_note(
            session, rep, {"body": "my private thought", "account_id": world.account.id, "is_private": "true"}
        )
        west = session.get(User, world.west_rep.id)
        activities.add_note(session, west, {"body": "West team note", "account_id": world.account.id})
        session.commit()


def test_team_panel_for_managers(auth, app, app_world: World):
    seed_branch_activity(app, app_world)
    auth.login("mia@northwind.test")
    body = auth.get("/pane/team").get_data(as_text=True)
    assert "Team this week" in body and "Rita Rep" in body and "Wendy West" not in body
    assert f"/pane/team/reps/{app_world.rep.id}" in body
    auth.login("rita@northwind.test")
    assert auth.get("/pane/team").status_code == 403


def test_drill_down_from_rep_to_account_timeline(auth, app, app_world: World):
    seed_branch_activity(app, app_world)
    auth.login("mia@northwind.test")
    rep = auth.get(f"/pane/team/reps/{app_world.rep.id}").get_data(as_text=True)
    assert "Acme Freight" in rep and f"/pane/accounts/{app_world.account.id}/timeline" in rep
    timeline = auth.get(f"/pane/accounts/{app_world.account.id}/timeline").get_data(as_text=True)
    # The parent's timeline includes its branch; the manager sees the team's notes, not the
    # other team's, and a private note's text stays its owner's.
    assert "Denver wants reefers" in timeline and "HQ signs the contracts" in timeline
    assert "West team note" not in timeline and "my private thought" not in timeline and "Private" in timeline
    assert auth.get(f"/pane/team/reps/{app_world.west_rep.id}").status_code == 403
    assert auth.get(f"/pane/team/reps/{app_world.other_user.id}").status_code == 404


def test_notes_feed_is_searchable_by_account_for_reps_too(auth, app, app_world: World):
    seed_branch_activity(app, app_world)
    auth.login("tom@northwind.test")
    found = auth.get("/notes?account=acme").get_data(as_text=True)
    assert "Denver wants reefers" in found and "HQ signs the contracts" in found
    assert "my private thought" not in found and "West team note" not in found
    assert "Type two or more letters" in auth.get("/notes?account=a").get_data(as_text=True)
    assert "No notes about" in auth.get("/notes?account=zzzz%25").get_data(as_text=True)


def test_rep_filter_narrows_every_table(auth, app, app_world: World):
    add_activities(app, app_world, 3)
    auth.login("mia@northwind.test")
    body = auth.get(f"/dashboard?period=this_week&rep={app_world.teammate.id}").get_data(as_text=True)
    table = body[body.index('aria-label="Activity"') : body.index('aria-label="Quota"')]
    assert "Tom Teammate" in table and "Rita Rep" not in table
    assert "<h2>0</h2>" in body  # Tom logged nothing this week
    # A rep of another team narrows to nobody rather than showing them.
    other = auth.get(f"/dashboard?period=this_week&rep={app_world.west_rep.id}").get_data(as_text=True)
    assert "Wendy West" not in other.split('aria-label="Activity"')[1].split('aria-label="Quota"')[0]


def test_every_deal_to_look_at_is_one_row_and_none_is_cut_silently(auth, app, app_world: World):
    """52 deals need a look: the page lists 40 and says so, the CSV has all 52, one row per
    deal with all its reasons."""
    from tests.factories import make_deal

    with app.extensions["inboxcrm.db"].sessions() as session:
        stage = session.get(type(app_world.stages[0]), app_world.stages[0].id)
        account = session.get(type(app_world.account), app_world.account.id)
        rep = session.get(User, app_world.rep.id)
        for n in range(51):
            make_deal(
                session,
                session.get(type(app_world.org), app_world.org.id),
                account,
                rep,
                stage,
                f"Lane {n:02d}",
                created=datetime.now(timezone.utc) - timedelta(days=30 + n),
            )
        deal = session.get(Opportunity, app_world.deal.id)
        deal.stage_entered_at = deal.created_at = datetime.now(timezone.utc) - timedelta(days=60)
        session.commit()
    auth.login("mia@northwind.test")
    page = auth.get("/dashboard").get_data(as_text=True)
    assert "40 of 52 deals" in page
    rows = list(csv.reader(io.StringIO(auth.get("/dashboard/alerts.csv", htmx=False).get_data(as_text=True))))[1:]
    assert len(rows) == 52 and len({row[0] for row in rows}) == 52
    assert all("stale" in row[5].split() and "going_dark" in row[5].split() for row in rows)
    assert all("days in Qualify" in row[7] and "No word from the customer" in row[7] for row in rows)


def test_slipping_reps_past_the_page_are_counted_and_in_the_csv(auth, app, app_world: World, monkeypatch):
    """The page names the first slipping reps, the steepest fall first, and says how many there
    are; the CSV names them all, at the rates the raw activities give (here one rep is shown)."""
    from services.reports import dashboard

    monkeypatch.setattr(dashboard, "DRAWDOWNS_SHOWN", 1)
    slipping_team(app, app_world)
    auth.login("mia@northwind.test")
    page = auth.get("/dashboard").get_data(as_text=True)
    section = part(page, 'aria-label="Alerts"', "</section>")
    # Tom fell from 3.0 a working day to 0.2 (a fifteenth), Rita from 2.0 to 0.2 (a tenth).
    assert re.findall(r"⚠ ([\w ]+):", section) == ["Tom Teammate"]
    assert (
        "Tom Teammate: 0.2 activities a working day in the last 7 days, against 3.0 in the 28 days before." in section
    )
    assert "1 of 2 slipping reps, the steepest falls first" in section and "/dashboard/slipping.csv" in section
    rows = list(csv.reader(io.StringIO(auth.get("/dashboard/slipping.csv", htmx=False).get_data(as_text=True))))
    assert rows == [
        ["rep", "rep email", "per working day, last 7 days", "per working day, 28 days before"],
        ["Rita Rep", "rita@northwind.test", "0.2", "2.0"],
        ["Tom Teammate", "tom@northwind.test", "0.2", "3.0"],
    ]


def test_the_panes_team_panel_names_the_steepest_falls_and_how_many_slip(auth, app, app_world: World, monkeypatch):
    from services.reports import panel

    monkeypatch.setattr(panel, "PANEL_SLIPPING", 1)
    slipping_team(app, app_world)
    auth.login("mia@northwind.test")
    body = auth.get("/pane/team").get_data(as_text=True)
    assert re.findall(r"⚠ ([\w ]+) is slipping", body) == ["Tom Teammate"]
    assert "1 of 2 slipping reps, the steepest falls first" in body


def test_lost_deals_past_the_page_are_counted_and_in_the_csv(auth, app, app_world: World):
    """55 deals lost this month: the page lists the latest 50 and says how many there are, the
    CSV has all 55, the latest first."""
    from tests.factories import make_deal

    now = datetime.now(timezone.utc)
    with app.extensions["inboxcrm.db"].sessions() as session:
        org = session.get(type(app_world.org), app_world.org.id)
        stage = session.get(type(app_world.stages[0]), app_world.stages[0].id)
        account = session.get(type(app_world.account), app_world.account.id)
        rep = session.get(User, app_world.rep.id)
        for n in range(55):
            deal = make_deal(session, org, account, rep, stage, f"Gone {n:02d}", created=now - timedelta(days=40))
            deal.status, deal.loss_reason, deal.closed_at = "lost", "price", now - timedelta(minutes=n + 1)
        session.commit()
    auth.login("mia@northwind.test")
    span = f"period=custom&start={(now - timedelta(days=3)).date()}&end={(now + timedelta(days=3)).date()}"
    page = auth.get(f"/dashboard?{span}").get_data(as_text=True)
    section = part(page, 'aria-label="Lost deals"', "</section>")
    assert "50 of 55 deals, the latest first" in section
    assert re.findall(r"<td>(Gone \d+)</td>", section) == [f"Gone {n:02d}" for n in range(50)]
    rows = list(csv.reader(io.StringIO(auth.get(f"/dashboard/lost.csv?{span}", htmx=False).get_data(as_text=True))))[1:]
    assert [row[0] for row in rows] == [f"Gone {n:02d}" for n in range(55)]


def test_the_activity_chart_names_every_segment_it_draws(auth, app, app_world: World):
    logged(
        app,
        app_world,
        *(
            (app_world.rep, kind, datetime.now(timezone.utc) - timedelta(minutes=n + 1))
            for n, kind in enumerate(["call", "call", "call", "email", "email", "meeting", "visit", "note", "sms"])
        ),
    )
    auth.login("mia@northwind.test")
    page = auth.get("/dashboard?period=this_year").get_data(as_text=True)
    chart = part(page, 'aria-label="Activities by rep and type', "</svg>")
    drawn = set(re.findall(r'class="chart-bar (part-\d)"><title>', chart))
    legend = re.findall(r'class="chart-bar (part-\d)"></rect>\s*<text[^>]*>([^<]+)</text>', chart)
    assert drawn == {part for part, _ in legend}
    assert [name for _, name in legend] == ["call", "email", "meeting", "other"]


def test_time_spent_by_rep_and_type_and_the_comparison_choice(auth, app, app_world: World):
    add_activities(app, app_world, 3)
    with app.extensions["inboxcrm.db"].sessions() as session:
        for activity in session.query(Activity).all():
            activity.duration_minutes = 30
        session.flush()
        rebuild_rollups(session, session.get(type(app_world.org), app_world.org.id))
        session.commit()
    auth.login("mia@northwind.test")
    rows = list(
        csv.reader(io.StringIO(auth.get("/dashboard/time.csv?period=this_year", htmx=False).get_data(as_text=True)))
    )
    assert rows == [["rep", "rep email", "type", "minutes"], ["Rita Rep", "rita@northwind.test", "call", "90"]]
    page = auth.get("/dashboard?period=this_month&compare=yoy&months=24", htmx=False).get_data(as_text=True)
    assert "24 months" in page and "Time spent, hours" in page
    assert 'value="yoy" selected' in page


def statements_for(app, auth, url: str) -> int:
    from tests.helpers import statements_of

    response, count = statements_of(app, lambda: auth.get(url, htmx=False))
    assert response.status_code == 200
    return count


def add_reps(app, world: World, how_many: int, first: int = 0) -> None:
    """More reps in East, each with a deal, a stale one, and activity."""
    from tests.factories import make_deal, make_user

    with app.extensions["inboxcrm.db"].sessions() as session:
        org = session.get(type(world.org), world.org.id)
        east = session.get(type(world.east), world.east.id)
        account = session.get(type(world.account), world.account.id)
        stage = session.get(type(world.stages[0]), world.stages[0].id)
        for n in range(first, first + how_many):
            rep = make_user(session, org, east, f"Extra{n} Rep", "rep", "northwind.test")
            session.flush()
            make_deal(
                session,
                org,
                account,
                rep,
                stage,
                f"Deal of extra {n}",
                created=datetime.now(timezone.utc) - timedelta(days=40),
            )
            for minutes in (5, 50, 500):
                session.add(
                    Activity(
                        organization_id=org.id,
                        type="call",
                        direction="outbound",
                        outcome="connected",
                        owner_id=rep.id,
                        occurred_at=datetime.now(timezone.utc) - timedelta(minutes=minutes),
                        source="web",
                    )
                )
        session.flush()
        rebuild_rollups(session, org)
        session.commit()


@pytest.mark.parametrize(
    "url", ["/dashboard?period=this_year", "/dashboard/activity.csv?period=this_year", "/pane/team"]
)
def test_sql_statements_do_not_grow_with_the_team(app, auth, app_world: World, url):
    auth.login("ada@northwind.test")
    add_reps(app, app_world, 2)
    small = statements_for(app, auth, url)
    add_reps(app, app_world, 10, first=2)
    assert statements_for(app, auth, url) == small


def test_a_big_team_lists_its_most_active_reps_and_the_way_to_all(app, auth, app_world: World, monkeypatch):
    """Past ``REPS_SHOWN`` reps the page lists the most active, says how many it leaves out and
    links to all of them; the CSV export always holds everyone."""
    monkeypatch.setattr("services.reports.dashboard.REPS_SHOWN", 3)
    auth.login("ada@northwind.test")
    add_reps(app, app_world, 5)
    add_activities(app, app_world, 6)  # Rita is the most active
    page = auth.get("/dashboard?period=this_year").get_data(as_text=True)
    assert "The 3 most active of" in page and "all=1" in page
    people = [f"Extra{n} Rep" for n in range(5)] + [
        "Rita Rep",
        "Tom Teammate",
        "Wendy West",
        "Mia Manager",
        "Walt Manager",
    ]

    def activity_table(html: str) -> str:
        return html.split('aria-label="Activity"', 1)[1].split("</section>", 1)[0]

    listed = {name for name in people if f"<td>{name}</td>" in activity_table(page)}
    assert "Rita Rep" in listed and len(listed) == 3
    everyone = auth.get("/dashboard?period=this_year&all=1").get_data(as_text=True)
    assert "most active of" not in everyone
    assert all(f"<td>{name}</td>" in activity_table(everyone) for name in people)
    csv_text = auth.get("/dashboard/activity.csv?period=this_year").get_data(as_text=True)
    assert all(name in csv_text for name in people)


def test_two_reps_with_one_name_are_told_apart_on_the_page_and_in_every_csv(auth, app, app_world: World):
    from services.models import Team, User
    from tests.factories import logged

    with app.extensions["inboxcrm.db"].sessions() as session:
        east = session.get(Team, app_world.east.id)
        olgas = [
            User(
                organization_id=app_world.org.id,
                team=east,
                name="Olga Adams",
                role="rep",
                email=email,
                password_hash="x",
            )
            for email in ("olga.adams@northwind.test", "olga.adams2@northwind.test")
        ]
        session.add_all(olgas)
        session.commit()
    now = datetime.now(timezone.utc)
    logged(
        app,
        app_world,
        (olgas[0], "call", now - timedelta(hours=2)),
        (olgas[1], "call", now - timedelta(hours=3)),
        (olgas[1], "email", now - timedelta(hours=4)),
    )
    auth.login("mia@northwind.test")
    page = auth.get("/dashboard?period=this_year", htmx=False).get_data(as_text=True)
    assert "Olga Adams (olga.adams@northwind.test)" in page and "Olga Adams (olga.adams2@northwind.test)" in page
    assert "Rita Rep (" not in page  # a name nobody shares is shown as it is
    rows = list(
        csv.reader(io.StringIO(auth.get("/dashboard/activity.csv?period=this_year", htmx=False).get_data(as_text=True)))
    )
    counted = {row[1]: row[2] for row in rows[1:] if row[0].startswith("Olga Adams")}
    assert counted == {"olga.adams@northwind.test": "1", "olga.adams2@northwind.test": "2"}
    assert all(row[1] for row in rows[1:])  # the e-mail always, names shared or not


@pytest.mark.parametrize("query", ["period=this_year", "period=this_year&all=1"])
def test_the_page_reads_every_figure_computed_for_it_and_nothing_else(app, auth, app_world: World, monkeypatch, query):
    """The dashboard computes its figures before it renders, some in a second session
    (``services.reports.alongside``). Against the same page rendered with every figure computed
    as it is first read: nothing is computed that the page does not read, and rendering runs no
    statement (nothing the page reads was left out of either session)."""
    from sqlalchemy import event

    from services.reports import TeamReport, alongside

    engine = app.extensions["inboxcrm.db"].engine
    reports: list[TeamReport] = []
    computed: set[str] = set()
    rendering: list[str] = []
    compute_page = TeamReport.compute_page

    def count(conn, cursor, statement, *args) -> None:
        rendering.append(statement)

    def lazily(report: TeamReport, sessions) -> None:
        reports.append(report)

    def computed_then_watched(report: TeamReport, sessions) -> None:
        compute_page(report, sessions)
        assert report.alongside is not None  # a store on disk: the second session ran
        report.alongside.result()  # its statements are not the page's
        computed.update(set(vars(report)) | set(alongside.prefetched_names(TeamReport)))
        report.scope.teams  # noqa: B018 - the page's team filter, read by the route beside the report
        event.listen(engine, "before_cursor_execute", count)

    auth.login("ada@northwind.test")
    add_activities(app, app_world, 3)
    monkeypatch.setattr(TeamReport, "compute_page", lazily)
    assert auth.get(f"/dashboard?{query}", htmx=False).status_code == 200
    read = set(vars(reports[0])) - {"scope", "alongside"}
    monkeypatch.setattr(TeamReport, "compute_page", computed_then_watched)
    try:
        response = auth.get(f"/dashboard?{query}", htmx=False)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert response.status_code == 200 and "Activity by rep" in response.get_data(as_text=True)
    assert set(alongside.page_names(TeamReport)) <= computed and computed - {"scope", "alongside"} <= read, (
        "computed for the page, never read by it"
    )
    assert rendering == [], "the page read a figure neither session computed"


def test_a_page_that_answers_htmx_with_a_fragment_varies_on_it_and_restores_whole(auth, app_world: World):
    """The dashboard answers htmx with its fragment and a browser with the page: both say they
    vary on the htmx headers (a cache must not swap one for the other), and a history restore
    (Back, when htmx's own cache has lost the page) gets the whole page."""
    auth.login("mia@northwind.test")
    fragment = auth.client.get("/dashboard?period=this_month", headers={"HX-Request": "true"})
    page = auth.client.get("/dashboard?period=this_month")
    restored = auth.client.get(
        "/dashboard?period=this_month", headers={"HX-Request": "true", "HX-History-Restore-Request": "true"}
    )
    assert "<html" not in fragment.get_data(as_text=True) and 'aria-label="Activity"' in fragment.get_data(as_text=True)
    assert "<html" in page.get_data(as_text=True) and "<html" in restored.get_data(as_text=True)
    for response in (fragment, page, restored):
        assert {"HX-Request", "HX-History-Restore-Request"} <= set(response.vary), response.vary
    # A response that is the same either way does not vary.
    assert "HX-Request" not in auth.client.get("/health").vary
