"""A real team starts: the organization made, its people invited and let go, its teams, pipeline,
settings and quotas; on both back ends for the services, through the pages for the routes."""

from __future__ import annotations

import io
import re
import zipfile
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from services.deals import move_stage, recompute_stage_facts
from services.errors import DomainError, Forbidden, NotFound
from services.integration import api_tokens
from services.mail.activities import log_activity
from services.models import (
    Account,
    Activity,
    AuditEvent,
    Contact,
    FollowUp,
    Invitation,
    Lead,
    Opportunity,
    Organization,
    Quota,
    Stage,
    Team,
    TeamMove,
    User,
)
from services.periods import Period
from services.reports import activity_summary, pipeline as pipeline_figure, report_scope, stage_conversion
from services.setup import organizations, people, pipeline, quotas, teams
from services.setup.organizations import change_settings, create_organization, rebuild_figures
from services.setup.tables import is_formula, safe_cell, write_csv
from tests.factories import NOW, World, make_deal
from tests.helpers import Client, rollup_snapshot, token

ORG = {"name": "Fjord Logistics", "domains": "fjord.example, fjord.no", "time_zone": "Europe/Oslo", "currency": "nok"}


# -- the organization -----------------------------------------------------------------------------------


def test_an_organization_is_made_with_its_pipeline_and_its_admin_invited(session, world: World):
    founded = create_organization(session, ORG | {"fiscal_year_start_month": 7}, "Ola@Fjord.example", "Ola Nordmann")
    session.commit()
    org = founded.organization
    assert (org.domains, org.currency, org.time_zone, org.fiscal_year_start_month) == (
        ["fjord.example", "fjord.no"],
        "NOK",
        "Europe/Oslo",
        7,
    )
    stages = session.scalars(select(Stage).where(Stage.organization_id == org.id).order_by(Stage.position)).all()
    assert [s.name for s in stages] == [name for name, _, _ in organizations.DEFAULT_STAGES]
    assert founded.admin is None and founded.invitation_token
    # The store keeps the token's hash, never the token.
    invitation = session.scalar(select(Invitation).where(Invitation.organization_id == org.id))
    assert invitation.token_hash != founded.invitation_token and invitation.role == "admin"
    admin = people.accept(session, founded.invitation_token, "Ola Nordmann", "a long enough password")
    session.commit()
    assert (admin.role, admin.organization_id, admin.email) == ("admin", org.id, "ola@fjord.example")
    with pytest.raises(NotFound):  # single-use
        people.accept(session, founded.invitation_token, "Someone Else", "another long password")
    session.rollback()
    # Sealed as every organization is: its admin sees none of the world's people.
    assert {p.email for p in people.people(session, admin)} == {"ola@fjord.example"}
    assert session.scalar(
        select(func.count())
        .select_from(AuditEvent)
        .where(AuditEvent.organization_id == org.id, AuditEvent.action == "create")
    )


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"domains": "gmail.com"}, "domains"),
        ({"domains": "northwind.test"}, "domains"),  # the world's organization owns it
        ({"domains": "not a domain"}, "domains"),
        ({"time_zone": "Mars/Olympus"}, "time_zone"),
        ({"currency": "XYZ"}, "currency"),
        ({"locale": "xx_YY"}, "locale"),
        ({"fiscal_year_start_month": 13}, "fiscal_year_start_month"),
        ({"name": "   "}, "name"),
    ],
)
def test_a_bad_organization_is_refused_and_nothing_is_written(session, world: World, change, field):
    before = session.scalar(select(func.count()).select_from(Organization))
    with pytest.raises(DomainError) as refused:
        create_organization(session, ORG | change, "ola@fjord.example")
    session.rollback()
    assert field in refused.value.errors
    assert session.scalar(select(func.count()).select_from(Organization)) == before


def test_an_invitation_expires_and_can_be_revoked(session, world: World):
    invitation, token = people.invite(session, world.admin, {"email": "new@northwind.test", "role": "rep"}, now=NOW)
    session.commit()
    assert people.invitation_for(session, token, NOW + timedelta(days=people.INVITATION_DAYS, seconds=1)) is None
    assert people.invitation_for(session, token, NOW + timedelta(days=1)) is not None
    people.revoke_invitation(session, world.admin, invitation.id)
    session.commit()
    assert people.invitation_for(session, token) is None
    with pytest.raises(Forbidden):
        people.invite(session, world.manager, {"email": "x@northwind.test"})
    with pytest.raises(DomainError):  # the address is somebody's already
        people.invite(session, world.admin, {"email": world.rep.email})
    with pytest.raises(DomainError):
        people.invite(session, world.admin, {"email": "new@northwind.test", "team_id": world.other_user.id + 999})


def test_an_invited_person_joins_with_the_role_and_team_chosen(session, world: World):
    _, token = people.invite(
        session, world.admin, {"email": "nina@northwind.test", "role": "manager", "team_id": world.west.id}
    )
    session.commit()
    with pytest.raises(DomainError):  # too short
        people.accept(session, token, "Nina", "short")
    session.rollback()
    nina = people.accept(session, token, "Nina Nilsen", "a long enough password")
    session.commit()
    assert (nina.role, nina.team_id, nina.name, nina.is_active) == ("manager", world.west.id, "Nina Nilsen", True)


# -- people leave -------------------------------------------------------------------------------------


def test_a_leaver_hands_over_their_open_work_in_one_step_and_keeps_their_past(session, world: World):
    rep, successor = world.rep, world.teammate
    won = make_deal(session, world.org, world.account, rep, world.stages[1], "Won last spring")
    session.flush()
    won.status, won.closed_at = "won", NOW - timedelta(days=40)
    lead = Lead(organization_id=world.org.id, name="A lead", source="email", owner_id=rep.id, status="working")
    done_lead = Lead(organization_id=world.org.id, name="Old", source="email", owner_id=rep.id, status="qualified")
    follow_up = FollowUp(organization_id=world.org.id, title="Call back", due_at=NOW, owner_id=rep.id)
    done = FollowUp(organization_id=world.org.id, title="Done", due_at=NOW, done_at=NOW, owner_id=rep.id)
    session.add_all([lead, done_lead, follow_up, done])
    token, _ = api_tokens.create_token(session, world.admin, "sync", "read write")
    session.commit()
    activity, _ = log_activity(
        session, rep, {"type": "call", "direction": "outbound", "occurred_at": (NOW - timedelta(days=3)).isoformat()}
    )
    session.commit()
    versions = session.scalar(select(Opportunity.sync_seq).where(Opportunity.id == world.deal.id))
    before_version = rep.token_version

    handover = people.deactivate(session, world.admin, rep.id, str(successor.id))
    session.commit()

    assert (handover.deals, handover.accounts, handover.contacts, handover.leads, handover.follow_ups) == (
        1,
        2,
        1,
        1,
        1,
    )
    session.expire_all()
    rep = session.get(User, rep.id)
    assert not rep.is_active and rep.token_version == before_version + 1
    assert session.get(Opportunity, world.deal.id).owner_id == successor.id
    assert session.get(Opportunity, world.deal.id).sync_seq > versions  # told to every syncing client
    assert session.get(Opportunity, won.id).owner_id == rep.id  # past work stays theirs
    assert session.get(Activity, activity.id).owner_id == rep.id
    assert session.get(Lead, lead.id).owner_id == successor.id and session.get(Lead, done_lead.id).owner_id == rep.id
    assert (
        session.get(FollowUp, follow_up.id).owner_id == successor.id
        and session.get(FollowUp, done.id).owner_id == rep.id
    )
    assert {c.owner_id for c in session.scalars(select(Contact).where(Contact.organization_id == world.org.id))} == {
        successor.id
    }
    audit = session.scalar(select(AuditEvent).where(AuditEvent.action == "deactivate", AuditEvent.record_id == rep.id))
    assert audit.after["successor_id"] == successor.id and audit.after["handed_over"]["deals"] == [world.deal.id]
    # Their past work keeps counting under their name, in the period it was done in.
    scope = report_scope(
        session,
        session.get(User, world.manager.id),
        Period(date(2026, 11, 1), date(2026, 12, 1)),
        today=NOW.date(),
        now=NOW,
    )
    by_name = {row.name: row.total for row in activity_summary(scope)}
    assert by_name[rep.name] == 1
    # The tokens they made open nothing now, and nobody signs in as them.
    session.refresh(token)
    assert token.owner_may_act  # made by the admin, who stays
    assert people.reactivate(session, world.admin, rep.id).is_active


def test_a_leaver_is_refused_a_bad_successor_and_the_last_admin_stays(session, world: World):
    for successor in ("", str(world.other_user.id), str(world.rep.id), "not a number"):
        with pytest.raises(DomainError):
            people.deactivate(session, world.admin, world.rep.id, successor)
        session.rollback()
    with pytest.raises(DomainError):
        people.deactivate(session, world.admin, world.admin.id, str(world.rep.id))
    session.rollback()
    with pytest.raises(DomainError):  # the only admin stays an admin
        people.change_person(session, world.admin, world.admin.id, {"role": "rep"})
    session.rollback()
    with pytest.raises(NotFound):
        people.deactivate(session, world.admin, world.other_user.id, str(world.rep.id))
    session.rollback()
    assert session.get(User, world.rep.id).is_active


def test_a_role_change_ends_the_persons_sessions(session, world: World):
    version = world.rep.token_version
    person = people.change_person(session, world.admin, world.rep.id, {"role": "manager"})
    session.commit()
    assert person.role == "manager" and person.token_version == version + 1


# -- teams ------------------------------------------------------------------------------------------------


def _calls(session, rep: User, *days: date) -> None:
    for day in days:
        log_activity(
            session,
            rep,
            {
                "type": "call",
                "direction": "outbound",
                "occurred_at": datetime.combine(day, datetime.min.time(), timezone.utc).replace(hour=10).isoformat(),
            },
        )
    session.commit()


def _team_total(session, actor: User, team_id: int, start: date, end: date, today: date) -> dict[str, int]:
    scope = report_scope(session, actor, Period(start, end), today=today, now=NOW, team_id=team_id)
    return {row.name: row.total for row in activity_summary(scope)}


def test_a_rep_who_moves_team_leaves_the_past_periods_work_where_it_was_done(session, world: World):
    """PRODUCT.md's rule: a team's figures for a period count who was its member on the period's
    last day (today, while it runs)."""
    rep = world.rep
    _calls(session, rep, date(2026, 9, 10), date(2026, 9, 20), date(2026, 10, 5), date(2026, 11, 10))
    teams.move_person(session, world.admin, rep.id, str(world.west.id), "2026-10-01")
    session.commit()
    today = date(2026, 11, 20)
    september = (date(2026, 9, 1), date(2026, 10, 1))
    november = (date(2026, 11, 1), date(2026, 12, 1))
    assert _team_total(session, world.admin, world.east.id, *september, today).get(rep.name) == 2
    assert rep.name not in _team_total(session, world.admin, world.west.id, *september, today)
    assert _team_total(session, world.admin, world.west.id, *november, today).get(rep.name) == 1
    assert rep.name not in _team_total(session, world.admin, world.east.id, *november, today)
    # The manager of the team the rep left sees September with the rep, as the old team did it.
    assert _team_total(session, world.manager, world.east.id, *september, today).get(rep.name) == 2
    with pytest.raises(DomainError):  # a move before the last one
        teams.move_person(session, world.admin, rep.id, str(world.east.id), "2026-09-01")


def test_teams_are_made_renamed_and_merged_with_their_quotas(session, world: World):
    north = teams.create_team(session, world.admin, "North")
    with pytest.raises(DomainError):
        teams.create_team(session, world.admin, "east")  # the same name, in another case
    session.rollback()
    north = teams.create_team(session, world.admin, "North")
    teams.rename_team(session, world.admin, north.id, "Nord")
    month = date(2026, 11, 1)
    for team, target in ((world.west, 100), (world.east, 50)):
        session.add(
            Quota(
                organization_id=world.org.id,
                team_id=team.id,
                period="month",
                period_start=month,
                metric="won_revenue",
                target=Decimal(target),
            )
        )
    session.commit()
    teams.merge_teams(session, world.admin, world.west.id, str(world.east.id))
    session.commit()
    assert session.get(Team, world.west.id) is None
    assert session.get(User, world.west_rep.id).team_id == world.east.id
    assert (
        session.scalar(select(TeamMove.from_team_id).where(TeamMove.user_id == world.west_rep.id)) is None
    )  # the team is gone
    assert session.scalars(select(Quota.target).where(Quota.team_id == world.east.id)).all() == [Decimal(150)]
    assert {t.name for t, _ in teams.teams(session, world.admin)} == {"East", "Nord"}


# -- the pipeline ---------------------------------------------------------------------------------------


def test_stages_are_added_reordered_and_retired_without_breaking_history(session, world: World):
    qualify, proposal, negotiation = world.stages
    deal = world.deal  # in Qualify
    move_stage(session, world.rep, deal.id, {"stage": str(proposal.id)}, now=NOW)
    session.commit()
    commit = pipeline.add_stage(session, world.admin, {"name": "Commit", "probability": "90", "sla_days": "7"})
    session.commit()
    assert commit.probability == Decimal("0.9000") and commit.position == 4
    for bad in (
        {"name": "Won", "probability": "1"},
        {"name": "Proposal", "probability": "5"},
        {"name": "X", "probability": "150"},
        {"name": "Y", "probability": "abc"},
    ):
        with pytest.raises(DomainError):
            pipeline.add_stage(session, world.admin, bad)
        session.rollback()
    scope = lambda: report_scope(
        session, world.admin, Period(date(2026, 11, 1), date(2026, 12, 1)), today=NOW.date(), now=NOW
    )  # noqa: E731
    before = {row.name: (row.reached, row.moved_on) for row in stage_conversion(scope())}
    assert before["Qualify"] == (1, 1) and before["Proposal"] == (1, 0)
    # Proposal put before Qualify: the deal reached both, so by the new order it converted from
    # Proposal (it reached a later stage, Qualify) and not from Qualify (nothing later).
    order = [proposal.id, qualify.id, negotiation.id, commit.id]
    pipeline.reorder_stages(session, world.admin, order)
    session.commit()
    session.expire_all()
    assert [s.id for s, _ in pipeline.stages(session, world.admin)] == order
    after = {row.name: (row.reached, row.moved_on) for row in stage_conversion(scope())}
    assert after["Proposal"] == (1, 1) and after["Qualify"] == (1, 0)
    # The facts kept match a recount from the stage changes.
    kept = session.execute(
        select(Opportunity.stages_reached, Opportunity.furthest_position).where(Opportunity.id == deal.id)
    ).one()
    recompute_stage_facts(session, world.org.id, deal.id)
    assert (
        session.execute(
            select(Opportunity.stages_reached, Opportunity.furthest_position).where(Opportunity.id == deal.id)
        ).one()
        == kept
    )
    with pytest.raises(DomainError):
        pipeline.reorder_stages(session, world.admin, order[:-1])
    session.rollback()
    # Retired: no new deal and no move to it; the deal in it stays, and the pipeline still counts it.
    pipeline.retire_stage(session, world.admin, proposal.id)
    session.commit()
    with pytest.raises(DomainError):
        move_stage(
            session,
            world.rep,
            make_deal(session, world.org, world.account, world.rep, qualify, "Another").id,
            {"stage": str(proposal.id)},
            now=NOW,
        )
    session.rollback()
    rows = {row.name: row.count for row in pipeline_figure(scope())}
    assert rows["Proposal"] == 1
    for stage in (qualify, negotiation):
        pipeline.retire_stage(session, world.admin, stage.id)
    with pytest.raises(DomainError):  # the last stage taking deals
        pipeline.retire_stage(session, world.admin, commit.id)
    session.rollback()


def test_loss_reasons_and_checklists_are_the_organizations(session, world: World):
    change_settings(session, world.admin, {"loss_reasons": "Price\nTiming\n\nPrice"})
    session.commit()
    assert world.org.setting("loss_reasons") == ["Price", "Timing"]
    with pytest.raises(DomainError):
        move_stage(session, world.rep, world.deal.id, {"stage": "lost", "loss_reason": "Bad weather"}, now=NOW)
    session.rollback()
    move_stage(session, world.rep, world.deal.id, {"stage": "lost", "loss_reason": "Timing"}, now=NOW)
    assert pipeline.set_checklist(session, world.admin, "visit", "Dock doors\n Forklift \n") == [
        "Dock doors",
        "Forklift",
    ]
    for bad in (("email", "Q"), ("call", "Why: because"), ("call", ["x"] * 0 + [123])):
        with pytest.raises(DomainError):
            pipeline.set_checklist(session, world.admin, *bad)
    with pytest.raises(Forbidden):
        pipeline.set_checklist(session, world.manager, "call", "Q")


def test_settings_are_validated_audited_and_a_new_time_zone_recounts_the_rollups(session, world: World):
    _calls(session, world.rep, date(2026, 11, 2))
    log_activity(
        session, world.rep, {"type": "call", "direction": "outbound", "occurred_at": "2026-11-03T23:30:00+00:00"}
    )
    session.commit()
    with pytest.raises(DomainError):
        change_settings(session, world.admin, {"going_dark_days": 100})
    with pytest.raises(Forbidden):
        change_settings(session, world.manager, {"neglected_days": 10})
    session.rollback()
    changed = change_settings(session, world.admin, {"time_zone": "Pacific/Auckland", "neglected_days": "10"})
    session.commit()
    assert set(changed) == {"time_zone", "neglected_days"} and world.org.rebuilding_since is not None
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "settings"))
    assert event.before == {"time_zone": "Europe/Berlin", "neglected_days": 14} and event.after["neglected_days"] == 10
    rebuild_figures(session, world.org.id)
    session.refresh(world.org)
    assert world.org.rebuilding_since is None
    # The rollups now count days in Auckland: as a rebuild from nothing would.
    kept = rollup_snapshot(session, world.org.id)
    rebuild_figures(session, world.org.id)
    assert rollup_snapshot(session, world.org.id) == kept
    days = {row[2] for row in kept if row[0] == "owner_day"}
    assert date(2026, 11, 4) in days  # 23:30 UTC on the 3rd is the 4th in Auckland


# -- quotas ------------------------------------------------------------------------------------------------


def test_a_years_quota_grid_is_saved_whole_or_not_at_all(session, world: World):
    grid = quotas.quota_grid(session, world.admin, 2026, "activities:call")
    assert len(grid.months) == 12 and {row.name for row in grid.rows} >= {"East", "West", world.rep.name}
    saved = quotas.save_grid(
        session,
        world.admin,
        2026,
        "activities:call",
        {f"t-rep-{world.rep.id}-0": "40", f"t-team-{world.east.id}-11": "120"},
    )
    session.commit()
    assert saved == 2
    assert quotas.save_grid(session, world.admin, 2026, "activities:call", {f"t-rep-{world.rep.id}-0": "40"}) == 0
    with pytest.raises(DomainError):  # a count is whole, and one bad cell saves nothing
        quotas.save_grid(
            session,
            world.admin,
            2026,
            "activities:call",
            {f"t-rep-{world.rep.id}-1": "2.5", f"t-rep-{world.rep.id}-2": "10"},
        )
    session.rollback()
    with pytest.raises(DomainError):
        quotas.save_grid(session, world.admin, 2026, "activities:call", {f"t-rep-{world.other_user.id}-1": "5"})
    session.rollback()
    grid = quotas.quota_grid(session, world.admin, 2026, "activities:call")
    rep_row = next(row for row in grid.rows if row.kind == "rep" and row.id == world.rep.id)
    assert rep_row.targets[0] == Decimal(40) and rep_row.targets[2] is None
    quotas.save_grid(session, world.admin, 2026, "activities:call", {f"t-rep-{world.rep.id}-0": ""})
    session.commit()
    assert session.scalar(select(func.count()).select_from(Quota).where(Quota.user_id == world.rep.id)) == 0
    assert session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "quota")) == 3


def test_quotas_come_from_a_csv_all_rows_or_none(session, world: World):
    good = f'for;who;month;metric;target\nrep;{world.rep.email};2026-12;won_revenue;"50000,5"\nteam;West;2027-01;activities:call;80\n'
    with pytest.raises(DomainError):  # en_US reads "50000,5" as no number
        quotas.import_quotas(session, world.admin, good.encode())
    session.rollback()
    world.org.settings = {"locale": "de_DE"}
    session.commit()
    assert quotas.import_quotas(session, world.admin, good.encode("cp1252")) == 2
    session.commit()
    assert session.scalar(select(Quota.target).where(Quota.user_id == world.rep.id)) == Decimal("50000.5")
    bad = "for,who,month,metric,target\nrep,nobody@northwind.test,2026-12,won_revenue,5\nteam,West,13/2026,won_revenue,5\n"
    with pytest.raises(DomainError) as refused:
        quotas.import_quotas(session, world.admin, bad.encode())
    assert set(refused.value.errors) == {"line 2", "line 3"}


# -- spreadsheets out ------------------------------------------------------------------------------------


def test_no_csv_cell_runs_as_a_formula():
    assert [safe_cell(v) for v in ('=HYPERLINK("x")', "+SUM(A1)", "-2+3", "@cmd", "plain", 5)] == [
        '\'=HYPERLINK("x")',
        "'+SUM(A1)",
        "'-2+3",
        "'@cmd",
        "plain",
        5,
    ]
    assert write_csv(["a"], [["=1+1"]]).splitlines()[1] == "'=1+1"
    assert is_formula('=HYPERLINK("http://x")') and is_formula("+cmd(1)") and not is_formula("+33 1 23 45 67 89")
    assert not is_formula("-12.50")


# -- through the pages --------------------------------------------------------------------------------------


def test_a_store_with_no_organization_opens_its_first_run_page_with_the_servers_code(app, client):
    from addin.routes.setup import setup_code  # noqa: PLC0415 - the app context's secret key

    assert client.get("/").headers["Location"].endswith("/setup")
    page = client.get("/setup").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    form = {
        "csrf_token": token,
        "name": "Fjord Logistics",
        "domains": "fjord.example",
        "time_zone": "Europe/Oslo",
        "fiscal_year_start_month": "1",
        "currency": "NOK",
        "locale": "nb_NO",
        "admin_name": "Ola Nordmann",
        "admin_email": "ola@fjord.example",
        "password": "a long enough password",
        "password_again": "a long enough password",
    }
    assert client.post("/setup", data=form | {"code": "wrong"}).status_code == 403
    with app.app_context():
        code = setup_code()
    assert client.post("/setup", data=form | {"code": code, "password_again": "other"}).status_code == 422
    assert client.post("/setup", data=form | {"code": code, "domains": "gmail.com"}).status_code == 422
    answer = client.post("/setup", data=form | {"code": code})
    assert answer.status_code == 302 and answer.headers["Location"].endswith("/admin/people")
    assert "Fjord Logistics is ready" in client.get("/admin/people").get_data(as_text=True)
    assert client.get("/setup").status_code == 404  # once only


def test_an_admin_invites_and_the_invited_person_joins_by_the_link(app, app_world: World, auth, client):
    auth.login(app_world.admin.email)
    page = auth.post(
        "/admin/people/invite",
        {"email": "nina@northwind.test", "name": "Nina", "role": "rep", "team_id": str(app_world.east.id)},
        htmx=False,
    )
    assert page.status_code == 201  # no mail server here: the link is shown once
    link = re.search(r'id="invitation-link">([^<]+)<', page.get_data(as_text=True)).group(1)
    path = link.split("://", 1)[1].split("/", 1)[1]
    assert auth.post("/admin/people/invite", {"email": "not an address"}, htmx=False).status_code == 422
    auth.post("/logout", htmx=False)
    client.cookie_jar.clear() if hasattr(client, "cookie_jar") else None
    join = client.get("/" + path)
    assert join.status_code == 200 and "Join Northwind" in join.get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', join.get_data(as_text=True)).group(1)
    form = {
        "csrf_token": token,
        "name": "Nina Nilsen",
        "password": "a long enough password",
        "password_again": "a long enough password",
    }
    assert client.post("/" + path, data=form | {"password_again": "no"}).status_code == 422
    assert client.post("/" + path, data=form).status_code == 302
    assert client.get("/" + path).status_code == 404  # spent
    with app.extensions["inboxcrm.db"].sessions() as session:
        nina = session.scalar(select(User).where(User.email == "nina@northwind.test"))
        assert (nina.name, nina.role, nina.team_id) == ("Nina Nilsen", "rep", app_world.east.id)


def test_the_admin_pages_show_and_refuse_as_their_services_do(app, app_world: World, auth):
    auth.login(app_world.admin.email)
    for path in (
        "/admin/people",
        "/admin/teams",
        "/admin/pipeline",
        "/admin/settings",
        "/admin/quotas?metric=activities:call",
        "/admin/import",
    ):
        assert auth.get(path, htmx=False).status_code == 200, path
    assert (
        auth.post(
            "/admin/settings",
            {"name": "Northwind", "domains": "northwind.test", "time_zone": "Nowhere", "currency": "EUR"},
            htmx=False,
        ).status_code
        == 422
    )
    assert auth.post("/admin/stages", {"name": "Won", "probability": "1"}, htmx=False).status_code == 422
    assert auth.post("/admin/teams", {"name": ""}, htmx=False).status_code == 422
    assert (
        auth.post(
            "/admin/quotas",
            {"year": "2026", "metric": "won_revenue", f"t-rep-{app_world.rep.id}-0": "lots"},
            htmx=False,
        ).status_code
        == 422
    )
    assert auth.post("/admin/stages", {"name": "Commit", "probability": "90"}, htmx=False).status_code == 303
    assert (
        auth.post(
            "/admin/settings",
            {
                "name": "Northwind",
                "domains": "northwind.test",
                "time_zone": "Europe/Paris",
                "currency": "EUR",
                "locale": "fr_FR",
            },
            htmx=False,
        ).status_code
        == 303
    )
    with app.extensions["inboxcrm.db"].sessions() as session:
        org = session.get(Organization, app_world.org.id)
        assert org.time_zone == "Europe/Paris" and org.rebuilding_since is not None
    dashboard = auth.get("/dashboard", htmx=False).get_data(as_text=True)
    assert 'id="rebuilding"' in dashboard
    # A manager reaches none of it.
    auth.post("/logout", htmx=False)
    auth.login(app_world.manager.email)
    for path in ("/admin/people", "/admin/pipeline", "/admin/settings", "/admin/quotas", "/admin/import"):
        assert auth.get(path, htmx=False).status_code == 403, path
    assert auth.post("/admin/people/invite", {"email": "x@northwind.test"}, htmx=False).status_code == 403


def test_the_export_is_a_zip_of_csv_and_json_that_runs_no_formula(app, app_world: World, auth):
    with app.extensions["inboxcrm.db"].sessions() as session:
        session.get(Account, app_world.account.id).name = '=HYPERLINK("http://evil.example","Acme")'
        session.commit()
    auth.login(app_world.admin.email)
    answer = auth.post("/admin/export", htmx=False)
    assert answer.status_code == 200 and answer.mimetype == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(answer.data))
    names = set(archive.namelist())
    assert {
        "accounts.csv",
        "contacts.csv",
        "deals.csv",
        "activities.csv",
        "leads.csv",
        "json/accounts.json",
        "organization.json",
    } <= names
    accounts = archive.read("accounts.csv").decode()
    assert "'=HYPERLINK" in accounts and "Contoso" not in archive.read("people.csv").decode()
    assert "Their secret deal" not in archive.read("deals.csv").decode()
    with app.extensions["inboxcrm.db"].sessions() as session:
        assert session.scalar(select(AuditEvent).where(AuditEvent.action == "export")).actor_id == app_world.admin.id


def test_the_org_create_command_prints_a_working_invitation(app):
    runner = CliRunner()
    result = app.test_cli_runner().invoke(
        args=[
            "org",
            "create",
            "--name",
            "Fjord",
            "--domain",
            "fjord.example",
            "--admin",
            "ola@fjord.example",
            "--time-zone",
            "Europe/Oslo",
            "--fiscal-year-start",
            "4",
            "--currency",
            "NOK",
            "--locale",
            "nb_NO",
        ]
    )
    assert result.exit_code == 0, result.output
    token = re.search(r"/join/([A-Za-z0-9_-]+)", result.output).group(1)
    with app.extensions["inboxcrm.db"].sessions() as session:
        assert people.invitation_for(session, token) is not None
    bad = app.test_cli_runner().invoke(
        args=["org", "create", "--name", "X", "--domain", "fjord.example", "--admin", "x@y.example"]
    )
    assert bad.exit_code != 0 and "another organization" in bad.output
    assert runner is not None


# -- through the API, for scripting ------------------------------------------------------------------


def test_the_set_up_is_scriptable_through_the_api(app, app_world: World, monkeypatch):
    from addin.routes import api_setup  # noqa: PLC0415

    queued: list[int] = []
    monkeypatch.setattr(api_setup, "enqueue_rebuild", queued.append)
    api = Client(app, token(app, app_world))
    read = api.get("/organization").get_json()
    assert read["settings"]["time_zone"] == "Europe/Berlin" and [s["name"] for s in read["stages"]][0] == "Qualify"
    bad = api.write("PATCH", "/organization", {"going_dark_days": 7})
    assert bad.status_code == 422 and bad.get_json()["field"] == "going_dark_days"
    changed = api.write("PATCH", "/organization", {"time_zone": "America/Chicago", "neglected_days": 10})
    assert changed.status_code == 200 and changed.get_json()["settings"]["neglected_days"] == 10
    assert queued == [app_world.org.id]  # the figures recounted on the worker, after the commit
    stage = api.write("POST", "/stages", {"name": "Commit", "probability": 90, "sla_days": 5})
    assert stage.status_code == 201 and stage.get_json()["probability"] == "0.9000"
    stage_id = stage.get_json()["id"]
    assert api.write("PATCH", f"/stages/{stage_id}", {"retired": True}).get_json()["retired"] is True
    ids = [s["id"] for s in read["stages"]]
    assert api.write("PUT", "/stages/order", {"order": [stage_id, *ids[::-1]]}).status_code == 200
    assert api.write("PUT", "/stages/order", {"order": ids}).status_code == 422
    assert api.write("PUT", "/checklists/visit", {"questions": ["Dock doors"]}).get_json()["questions"] == [
        "Dock doors"
    ]
    invited = api.write("POST", "/invitations", {"email": "nina@northwind.test", "role": "manager"})
    assert invited.status_code == 201 and "/join/" in invited.get_json()["link"]
    gone = api.write("POST", f"/users/{app_world.rep.id}/deactivate", {"successor_id": app_world.teammate.id})
    assert gone.status_code == 200 and gone.get_json()["deals"] == 1
    # Another organization's token reaches none of ours.
    theirs = Client(app, token(app, app_world, org="other"))
    assert theirs.write("PATCH", f"/stages/{stage_id}", {"name": "Mine"}).status_code == 404
    assert (
        theirs.write(
            "POST", f"/users/{app_world.teammate.id}/deactivate", {"successor_id": app_world.rep.id}
        ).status_code
        == 404
    )
    # A read-only token changes nothing.
    reader = Client(app, token(app, app_world, scopes="read"))
    assert reader.write("PATCH", "/organization", {"neglected_days": 20}).status_code == 403
