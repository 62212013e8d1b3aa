"""The manager's dashboard: every figure for a period and team, and CSV exports of its tables."""

from __future__ import annotations

import csv
import io

from flask import Blueprint, Response, abort, request
from flask_login import login_required

from addin.database import db
from addin.views import actor, page_or_fragment
from services.periods import KINDS, local_today, parse_period
from services.reports import report_tables, team_report, visible_teams
from services.types import utcnow

bp = Blueprint("reports", __name__)


def _report():
    user = actor()
    org = user.organization
    today = local_today(org.time_zone)
    period = parse_period(request.args.get("period"), request.args.get("start"), request.args.get("end"), today,
                          org.fiscal_year_start_month)
    team = request.args.get("team", "")
    return team_report(db(), user, period, today, utcnow(), int(team) if team.isdigit() else None)


@bp.get("/dashboard")
@login_required
def dashboard() -> tuple[str, int]:
    report = _report()
    return page_or_fragment("reports/dashboard.html", "reports/_report.html", report=report, kinds=KINDS,
                            teams=visible_teams(db(), actor()))


@bp.get("/dashboard/<table>.csv")
@login_required
def export(table: str) -> Response:
    tables = report_tables(_report())
    if table not in tables:
        abort(404)
    header, rows = tables[table]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows([[_cell(value) for value in row] for row in rows])
    return Response(out.getvalue(), mimetype="text/csv", headers={"Content-Disposition": f"attachment; filename={table}.csv"})


def _cell(value: object) -> object:
    # Names come from mail headers: a leading = + - @ would run as a spreadsheet formula.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value
