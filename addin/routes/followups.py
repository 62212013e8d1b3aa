"""Follow-ups from the pane: set one with a due date, mark one done."""

from __future__ import annotations

from flask import Blueprint, request
from flask_login import login_required

from addin.database import db
from addin.pane_actions import Notice, SmallAnswer, perform
from addin.views import actor, reader_zone
from services import followups

bp = Blueprint("followups", __name__)


@bp.post("/followups")
@login_required
def add():
    def action() -> Notice:
        followups.add_follow_up(db(), actor(), request.form, zone=reader_zone())
        return Notice("Follow-up set.")

    return perform("follow_up", action)


@bp.post("/followups/<id:follow_up_id>/done")
@login_required
def done(follow_up_id: int):
    def action() -> Notice:
        followups.complete_follow_up(db(), actor(), follow_up_id)
        # Done, it leaves the list; nothing else in view changes.
        return Notice("Follow-up done.", changed=SmallAnswer(removed=f"follow-up-{follow_up_id}"))

    return perform(f"done-{follow_up_id}", action)
