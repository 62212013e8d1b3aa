"""Activities from the pane: log this email, log a call/meeting/visit, notes, ratings."""

from __future__ import annotations

from flask import Blueprint, jsonify, render_template, request
from flask_login import login_required

from addin.database import commit, db, reads_only
from addin.pane_actions import MailItemRef, Notice, SmallAnswer, perform
from addin.views import actor, refused
from services.mail import activities
from services import notes
from services.mail.context import activity_row, deal_card

bp = Blueprint("activities", __name__)


@bp.post("/activities/email")
@login_required
def log_email():
    def action() -> Notice:
        activity, created = activities.log_email(db(), actor(), request.form)
        # The log card says so, the mail goes first in the recent activities, and its deal's
        # card comes again: an inbound mail ends its "no word from the customer".
        deal = deal_card(db(), actor(), activity.opportunity_id) if activity.opportunity_id else None
        changed = SmallAnswer(
            activity_row(actor(), activity, activity.owner) if created else None,
            added=created,
            logged=activity.id,
            deal=deal,
        )
        if created:
            return Notice("Email logged.", activity.id, changed=changed)
        if request.form.get("send_key"):  # opened from Sent Items after it was logged as it went
            return Notice("Logged when you sent it.", changed=changed)
        return Notice("This email is already in the CRM.", changed=changed)

    return perform("log_email", action)


@bp.post("/activities/sending")
@login_required
def log_sending():
    """Outlook's ``OnMessageSend`` handler (``static/js/launchevent.js``) logs the rep's marked
    message as it goes: JSON in answer, never a page, for a script with no pane to show it in."""
    with refused() as refusal:
        activity, created = activities.log_email(db(), actor(), request.form, sending=True)
    if refusal:
        return jsonify(error=refusal.error.message, fields=refusal.error.errors), refusal.status
    commit()
    return jsonify(activity_id=activity.id, logged=created), 200


@bp.post("/activities/meeting")
@login_required
def log_meeting():
    def action() -> Notice:
        activity, created = activities.log_meeting(db(), actor(), request.form)
        return Notice("Meeting logged.", activity.id) if created else Notice("This meeting was already logged.")

    return perform("log_meeting", action)


@bp.post("/activities/<id:activity_id>/undo")
@login_required
def undo(activity_id: int):
    def action() -> Notice:
        activity = activities.undo_log(db(), actor(), activity_id)
        if activity.external_id and activity.external_id == MailItemRef.from_values(request.form).external_id:
            return Notice("Log undone.")  # the open mail: its log card offers the log again, in the whole context
        # Anything else (a call, a note): it leaves the recent activities; nothing else in view changes.
        return Notice("Log undone.", changed=SmallAnswer(removed=f"activity-{activity_id}"))

    return perform(f"undo-{activity_id}", action)


@bp.post("/activities")
@login_required
def log_activity():
    def action() -> Notice:
        activity, _ = activities.log_activity(db(), actor(), _logged_from_pane(request.form))
        # It goes first in the recent activities, and its deal's card comes again (its health and
        # warnings may change); nothing else in view does.
        deal = deal_card(db(), actor(), activity.opportunity_id) if activity.opportunity_id else None
        changed = SmallAnswer(activity_row(actor(), activity, actor()), added=True, deal=deal)
        return Notice(f"{activity.type.title()} logged.", activity.id, changed=changed)

    return perform("log_activity", action)


@bp.post("/activities/checklist")
@login_required
@reads_only
def checklist_left():
    """What the note being written has not answered yet of its type's checklist (the pane asks
    as the rep types, and names them under the note field)."""
    form = _logged_from_pane(request.form)
    left = notes.checklist_left(
        db(), actor().organization_id, form.get("type") or "", form.get("body_text"), form["answers"]
    )
    return render_template("pane/_unanswered.html", left=left)


@bp.post("/activities/note")
@login_required
def add_note():
    def action() -> Notice:
        note = activities.add_note(db(), actor(), request.form)
        # The note is put first in the recent activities; nothing else in view changes.
        return Notice("Note added.", note.id, changed=SmallAnswer(activity_row(actor(), note, actor()), added=True))

    return perform("note", action)


@bp.post("/activities/<id:activity_id>/rating")
@login_required
def rate(activity_id: int):
    def action() -> Notice:
        activity = activities.rate_activity(db(), actor(), activity_id, request.form)
        # A rating answers with its activity alone (its buttons pressed or not), not the whole context.
        return Notice(
            {1: "Marked as went well.", -1: "Marked as went badly."}.get(activity.rating or 0, "Rating cleared."),
            changed=SmallAnswer(activity_row(actor(), activity, activity.owner)),
        )

    return perform(f"rating-{activity_id}", action)


@bp.post("/activities/<id:activity_id>/private")
@login_required
def set_private(activity_id: int):
    def action() -> Notice:
        activity = activities.set_private(db(), actor(), activity_id, request.form.get("private") == "1")
        return Notice(
            "Private: only you see its subject and text." if activity.is_private else "Shared with your team again.",
            changed=SmallAnswer(activity_row(actor(), activity, actor())),
        )

    return perform(f"private-{activity_id}", action)


def _logged_from_pane(form):
    """A call, meeting or visit as the pane's form posts it: checklist answers arrive as
    ``answer:<question>`` fields; its subject is what the rep typed, or the open mail's when
    the rep ticks "use the mail's subject" (the form carries the mail's own ``subject`` with
    the item), else none."""
    data = form.to_dict()
    data["answers"] = {k.removeprefix("answer:"): v for k, v in form.items() if k.startswith("answer:")}
    typed = (form.get("activity_subject") or "").strip()
    data["subject"] = typed or (form.get("subject") if form.get("use_mail_subject") else None)
    return data
