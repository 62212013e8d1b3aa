"""Activities from the pane: log this email, log a call/meeting/visit, notes, ratings."""

from __future__ import annotations

from flask import Blueprint, request
from flask_login import login_required

from addin.database import db
from addin.routes.pane import perform
from addin.views import actor
from services import activities

bp = Blueprint("activities", __name__)


@bp.post("/activities/email")
@login_required
def log_email():
    def action() -> str:
        _, created = activities.log_email(db(), actor(), request.form)
        return "Email logged." if created else "This email was already logged."

    return perform("log_email", action)


@bp.post("/activities")
@login_required
def log_activity():
    def action() -> str:
        activity, _ = activities.log_activity(db(), actor(), _with_answers(request.form))
        return f"{activity.type.title()} logged."

    return perform("log_activity", action)


@bp.post("/activities/note")
@login_required
def add_note():
    def action() -> str:
        activities.add_note(db(), actor(), request.form)
        return "Note added."

    return perform("note", action)


@bp.post("/activities/<int:activity_id>/rating")
@login_required
def rate(activity_id: int):
    def action() -> str:
        activities.rate_activity(db(), actor(), activity_id, request.form)
        return "Thanks for rating."

    return perform(f"rating-{activity_id}", action)


def _with_answers(form):
    """Checklist answers arrive as ``answer:<question>`` fields."""
    data = form.to_dict()
    data["answers"] = {k.removeprefix("answer:"): v for k, v in form.items() if k.startswith("answer:")}
    return data
