"""Follow-ups from the pane: set one with a due date, mark one done."""

from __future__ import annotations

from flask import Blueprint, request, url_for
from flask_login import login_required

from addin.database import db
from addin.pane_actions import MailItemRef, Notice, SmallAnswer, follow_up_row, perform
from addin.views import actor, reader_zone
from services import followups
from services.types import utcnow

bp = Blueprint("followups", __name__)


@bp.post("/followups")
@login_required
def add():
    def action() -> Notice:
        follow_up = followups.add_follow_up(db(), actor(), request.form, zone=reader_zone())
        # It goes first in the follow-ups; nothing else in view changes.
        return Notice(
            "Follow-up set.",
            undo_url=url_for("followups.undo", follow_up_id=follow_up.id),
            changed=SmallAnswer(follow_up=follow_up_row(follow_up, utcnow(), owner_name=follow_up.owner.name)),
        )

    return perform("follow_up", action)


@bp.post("/followups/<id:follow_up_id>/undo")
@login_required
def undo(follow_up_id: int):
    """A follow-up just set, taken back."""

    def action() -> Notice:
        followups.undo_follow_up(db(), actor(), follow_up_id)
        return Notice("Follow-up taken back.", changed=SmallAnswer(removed=f"follow-up-{follow_up_id}"))

    return perform(f"undo-follow-up-{follow_up_id}", action)


@bp.post("/followups/<id:follow_up_id>/reopen")
@login_required
def reopen(follow_up_id: int):
    """A follow-up just marked done, open again."""

    def action() -> Notice:
        follow_up = followups.reopen_follow_up(db(), actor(), follow_up_id)
        # Back, first, in the list it left: the mail's follow-ups (with its owner's name, as
        # they are listed there: a manager may reopen a rep's), or My day (opening its account).
        if MailItemRef.from_values(request.form).present:
            row = follow_up_row(follow_up, utcnow(), owner_name=follow_up.owner.name)
        else:
            row = follow_up_row(follow_up, utcnow(), followups.accounts_of(db(), [follow_up]).get(follow_up.id))
        return Notice("Follow-up open again.", changed=SmallAnswer(follow_up=row))

    return perform(f"reopen-{follow_up_id}", action)


@bp.post("/followups/<id:follow_up_id>/done")
@login_required
def done(follow_up_id: int):
    def action() -> Notice:
        followups.complete_follow_up(db(), actor(), follow_up_id)
        # Done, it leaves the list; nothing else in view changes.
        return Notice(
            "Follow-up done.",
            changed=SmallAnswer(removed=f"follow-up-{follow_up_id}"),
            undo_url=url_for("followups.reopen", follow_up_id=follow_up_id),
        )

    return perform(f"done-{follow_up_id}", action)
