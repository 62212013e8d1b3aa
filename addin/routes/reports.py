"""The manager's dashboard: every figure for a period and team, and CSV exports of its tables."""

from __future__ import annotations

from flask import Blueprint, Response, abort, request
from flask_login import login_required

from addin.database import database, db
from addin.exports import EXPORTS, as_csv
from addin.views import actor, page_or_fragment
from services.periods import KINDS, local_now, local_today, parse_period
from services.mail.context import account_timeline, notes_feed
from services.reports import rep_accounts, report_scope, team_members, team_panel, team_report
from services.schemas import parse_id
from services.types import utcnow

bp = Blueprint("reports", __name__)


def _report():
    user = actor()
    org = user.organization
    now = utcnow()
    wall_clock = local_now(org.time_zone, now)
    period = parse_period(
        request.args.get("period"),
        request.args.get("start"),
        request.args.get("end"),
        wall_clock,
        org.fiscal_year_start_month,
    )
    scope = report_scope(
        db(),
        user,
        period,
        today=wall_clock.date(),
        now=now,
        team_id=parse_id(request.args.get("team")),
        rep_id=parse_id(request.args.get("rep")),
        year_over_year=request.args.get("compare") == "yoy",
        months=24 if request.args.get("months") == "24" else 12,
        every_rep=request.args.get("all") == "1",
    )
    return team_report(scope)


@bp.get("/dashboard")
@login_required
def dashboard() -> tuple[str, int]:
    report = _report()
    report.compute_page(database().read_sessions)
    return page_or_fragment(
        "reports/dashboard.html",
        "reports/_report.html",
        report=report,
        kinds=KINDS,
        teams=report.scope.teams,
        # The rep filter's choices: the whole team, whichever rep is chosen.
        people=report.scope.people if report.rep_id is None else team_members(db(), actor(), report.team_id),
    )


@bp.get("/dashboard/<table>.csv")
@login_required
def export(table: str) -> Response:
    if table not in EXPORTS:
        abort(404)
    return Response(
        as_csv(_report(), table),
        mimetype="text/csv",
        headers={"Content-Disposition": f"attachment; filename={table}.csv"},
    )


# -- in the pane ----------------------------------------------------------------------------------


@bp.get("/pane/team")
@login_required
def team() -> tuple[str, int]:
    user = actor()
    panel = team_panel(db(), user, local_today(user.organization.time_zone), utcnow())
    return page_or_fragment("reports/team_page.html", "reports/_team.html", panel=panel)


@bp.get("/pane/team/reps/<id:rep_id>")
@login_required
def rep(rep_id: int) -> tuple[str, int]:
    person, accounts = rep_accounts(db(), actor(), rep_id)
    return page_or_fragment("reports/team_page.html", "reports/_rep.html", rep=person, accounts=accounts)


@bp.get("/pane/accounts/<id:account_id>/timeline")
@login_required
def timeline(account_id: int) -> tuple[str, int]:
    return page_or_fragment(
        "reports/team_page.html", "reports/_timeline.html", timeline=account_timeline(db(), actor(), account_id)
    )


@bp.get("/notes")
@login_required
def notes() -> tuple[str, int]:
    query = request.args.get("account", "")
    return page_or_fragment(
        "reports/notes.html", "reports/_notes.html", query=query, notes=notes_feed(db(), actor(), query)
    )
