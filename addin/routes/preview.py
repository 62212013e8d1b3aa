"""The preview: a mailbox beside the task pane, so the product can be tried in any browser
with no Outlook or Gmail account. Selecting a mail hands it to the pane the way Office.js
would."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, redirect, render_template, url_for
from flask_login import current_user

from addin.database import db
from addin.views import actor
from services.preview import sample_mailbox
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
