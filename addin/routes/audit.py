"""A record's history (its audit trail), for its owner, their managers and admins."""

from __future__ import annotations

from flask import Blueprint, abort
from flask_login import login_required

from addin.database import db
from addin.views import actor, page_or_fragment
from services.audit import record_history
from services.models import Account, Activity, Contact, FollowUp, Opportunity

bp = Blueprint("audit", __name__)

RECORDS = {
    "deals": Opportunity,
    "activities": Activity,
    "contacts": Contact,
    "accounts": Account,
    "followups": FollowUp,
}


@bp.get("/history/<kind>/<id:record_id>")
@login_required
def history(kind: str, record_id: int) -> tuple[str, int]:
    if kind not in RECORDS:
        abort(404)
    entries = record_history(db(), actor(), RECORDS[kind], record_id)
    return page_or_fragment("audit/history.html", "audit/_history.html", entries=entries)
