"""The preview: a mailbox beside the task pane, so the product can be tried in any browser
with no Outlook or Gmail account. Selecting a mail hands it to the pane the way Office.js
would."""

from __future__ import annotations

from typing import Any

from datetime import timedelta

import requests
from flask import Blueprint, abort, current_app, flash, redirect, render_template, url_for
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from addin import capture as parts
from addin.database import db
from addin.views import actor
from services.capture.mailboxes import own_mailbox
from services.capture.sync import sync_mailbox
from services.preview import sample_arrival, sample_mailbox, sample_meeting_attendees
from services.types import utcnow
from services.setup.organizations import has_organization
from services.users import sign_in_choices

bp = Blueprint("preview", __name__)


@bp.get("/")
@bp.get("/preview")
def mailbox() -> Any:
    if not current_user.is_authenticated and not has_organization(db()):
        return redirect(url_for("setup.first_run"))  # a store with no organization yet: its first run
    signed_in = current_user.is_authenticated
    return render_template(
        "preview/index.html",
        items=sample_mailbox(db(), actor()) if signed_in else [],
        choices=sign_in_choices(db(), actor() if signed_in else None) if current_app.config["DEMO_SIGN_IN"] else [],
    )


# -- the captured sample mailbox, played by the stand-in (``services.capture.standin``) -------------


def _standin(what: str, body: dict[str, Any]) -> None:
    """Ask the stand-in to play a change in the mailbox; then read the mailbox at once, as a
    push notification would have it read (the worker would, a moment later)."""
    url = current_app.config["CAPTURE_STANDIN_URL"]
    if not url:
        abort(404)
    mailbox = own_mailbox(db(), actor())
    if mailbox is None or mailbox.state in ("disconnected", "error"):
        flash("Connect the sample mailbox first.")
        return
    try:
        requests.post(f"{url}/standin/{what}", json=body, timeout=5).raise_for_status()
    except requests.RequestException:
        flash("The stand-in for Microsoft and Google is not running: `make run` starts it.")
        return
    mailbox_id = mailbox.id
    db().commit()  # the pass writes in sessions of its own
    result = sync_mailbox(current_app.extensions["inboxcrm.db"].sessions, parts.reader(), mailbox_id, force=True)
    flash(f"Read the mailbox: {result.captured} captured." + (f" {result.stopped}" if result.stopped else ""))


@bp.post("/preview/capture/mail")
@login_required
def sample_mail() -> Response:
    """A sample mail from one of the rep's customers arrives in their connected mailbox."""
    mailbox = own_mailbox(db(), actor())
    arrival = sample_arrival(db(), actor(), mailbox.seen if mailbox else 0)
    if arrival is None:
        flash("You have no customers for a sample mail to come from.")
    else:
        _standin(
            "deliver",
            {
                "address": actor().email,
                "sender": arrival.sender,
                "to": [actor().email],
                "subject": arrival.subject,
                "body": arrival.body,
            },
        )
    return redirect(url_for("capture.mine"), code=303)


@bp.post("/preview/capture/meeting")
@login_required
def sample_meeting() -> Response:
    """A meeting with the rep's customers that ended half an hour ago appears in their calendar:
    captured as held, and My day asks how it went."""
    attendees = sample_meeting_attendees(db(), actor())
    if not attendees:
        flash("You have no customers for a sample meeting.")
    else:
        start = utcnow() - timedelta(minutes=75)
        _standin(
            "schedule",
            {
                "address": actor().email,
                "subject": "Quarterly review",
                "start": start.isoformat(),
                "minutes": 45,
                "attendees": attendees,
            },
        )
    return redirect(url_for("capture.mine"), code=303)
