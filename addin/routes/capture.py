"""Automatic capture's pages: the rep's own mailbox (connect, disconnect, what was taken and why,
take one back), and the admin's view of every mailbox (state, why it stopped, the organization's
consent, whose mailboxes it reads, the capture audit). The rules are ``services.capture``'s."""

from __future__ import annotations

from datetime import datetime

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_login import login_required
from sqlalchemy import select
from werkzeug.wrappers import Response

from addin import capture as parts
from addin.database import commit, db
from addin.jobs import enqueue_capture
from addin.views import actor, refused
from services.access import require_role
from services.capture import mailboxes
from services.capture.mailboxes import PROVIDER_NAMES
from services.capture.sync import FOLDERS
from services.errors import DomainError
from services.models import MAIL_PROVIDERS, AuditEvent, Mailbox, User
from services.types import utcnow

bp = Blueprint("capture", __name__)
AUDITED = ("connect", "disconnect", "grant", "uncapture", "capture_stopped")


def _callback(provider: str) -> str:
    return url_for("capture.callback", provider=provider, _external=True)


def _page(error: DomainError | None = None, status: int = 200, offer: str | None = None) -> tuple[str, int]:
    me = actor()
    endpoints = parts.endpoints()
    return render_template(
        "capture/mine.html",
        mailbox=mailboxes.own_mailbox(db(), me),
        captures=mailboxes.recent_captures(db(), me),
        providers=[(p, PROVIDER_NAMES[p]) for p in MAIL_PROVIDERS if endpoints.configured(p)],
        error=error,
        offer=offer,
        now=utcnow(),
    ), status


@bp.get("/capture")
@login_required
def mine() -> tuple[str, int]:
    return _page()


@bp.post("/capture/connect/<any(microsoft, google):provider>")
@login_required
def connect(provider: str) -> Response | tuple[str, int]:
    """To the provider's consent screen, with PKCE; the verifier waits in the rep's session."""
    with refused() as refusal:
        started = mailboxes.authorization(parts.endpoints(), provider, _callback(provider), actor().email)
    if refusal:
        return _page(refusal.error, refusal.status)
    session["capture_oauth"] = {"provider": provider, "state": started.state, "verifier": started.verifier}
    return redirect(started.url, code=303)


@bp.get("/capture/callback/<any(microsoft, google):provider>")
@login_required
def callback(provider: str) -> Response | tuple[str, int]:
    pending = session.pop("capture_oauth", None) or {}
    if request.args.get("error"):
        return _page(DomainError("The provider did not give consent: nothing was connected."), 400)
    if pending.get("provider") != provider or not pending.get("state") or request.args.get("state") != pending["state"]:
        return _page(DomainError("That sign-in did not start here, or has been used: connect again."), 400)
    with refused() as refusal:
        mailbox = mailboxes.connect(
            db(),
            actor(),
            provider,
            request.args.get("code", ""),
            pending["verifier"],
            _callback(provider),
            endpoints=parts.endpoints(),
            vault=parts.vault(),
            http=parts.reader().http,
        )
    if refusal:
        return _page(refusal.error, refusal.status)
    commit()
    enqueue_capture(mailbox.id)
    flash(f"Connected: the last {actor().organization.setting('backfill_days')} days are being read.")
    return redirect(url_for("capture.mine"), code=303)


@bp.post("/capture/mailboxes/<id:mailbox_id>/disconnect")
@login_required
def disconnect(mailbox_id: int) -> Response:
    mailbox = mailboxes.disconnect(db(), actor(), mailbox_id)
    commit()
    flash("Disconnected: nothing more is read from that mailbox.")
    return redirect(url_for("capture.mailboxes_page" if mailbox.user_id != actor().id else "capture.mine"), code=303)


@bp.post("/capture/captures/<id:capture_id>/take-back")
@login_required
def take_back(capture_id: int) -> tuple[str, int]:
    """The capture undone (its activity removed, never taken again); the address offered for
    the rep's never-log list."""
    _, address = mailboxes.uncapture(db(), actor(), capture_id)
    commit()
    return _page(offer=address)


# -- the admin's ---------------------------------------------------------------------------------


def _mailboxes_page(error: DomainError | None = None, status: int = 200) -> tuple[str, int]:
    me = actor()
    require_role(me, "admin")
    rows = mailboxes.mailboxes_of(db(), me)
    audit = db().scalars(
        select(AuditEvent)
        .where(AuditEvent.organization_id == me.organization_id, AuditEvent.action.in_(AUDITED))
        .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
        .limit(50)
    )
    people = db().scalars(
        select(User).where(User.organization_id == me.organization_id, User.is_active).order_by(User.name)
    )
    return render_template(
        "capture/mailboxes.html",
        rows=rows,
        audit=list(audit),
        people=list(people),
        providers=[(p, PROVIDER_NAMES[p]) for p in MAIL_PROVIDERS],
        folders=FOLDERS,
        error=error,
        now=utcnow(),
    ), status


@bp.get("/admin/mailboxes")
@login_required
def mailboxes_page() -> tuple[str, int]:
    return _mailboxes_page()


@bp.post("/admin/mailboxes/grant")
@login_required
def grant() -> Response | tuple[str, int]:
    with refused(of_input_only=True) as refusal:
        mailboxes.grant_organization(db(), actor(), request.form.get("provider", ""), request.form.get("directory", ""))
    if refusal:
        return _mailboxes_page(refusal.error, refusal.status)
    commit()
    flash("The organization's consent is recorded: now choose whose mailboxes are read.")
    return redirect(url_for("capture.mailboxes_page"), code=303)


@bp.post("/admin/mailboxes/people")
@login_required
def capture_people() -> Response | tuple[str, int]:
    ids = [int(v) for v in request.form.getlist("user_id") if v.isdigit()]
    with refused(of_input_only=True) as refusal:
        if not ids:
            raise DomainError("Choose at least one person.")
        made = mailboxes.capture_people(db(), actor(), request.form.get("provider", ""), ids)
    if refusal:
        return _mailboxes_page(refusal.error, refusal.status)
    commit()
    for mailbox in made:
        enqueue_capture(mailbox.id)
    flash(f"{len(made)} mailbox(es) will be read.")
    return redirect(url_for("capture.mailboxes_page"), code=303)


@bp.post("/capture/mailboxes/<id:mailbox_id>/sync")
@login_required
def sync_now(mailbox_id: int) -> Response:
    """Read now rather than at the next poll (the owner's or an admin's)."""
    mailboxes.read_soon(db(), actor(), mailbox_id)
    commit()
    enqueue_capture(mailbox_id)
    flash("Reading it now.")
    return redirect(request.referrer or url_for("capture.mine"), code=303)


def behind(mailbox: Mailbox, now: datetime) -> str:
    """How far the mailbox is behind, in words, for the admin's table."""
    if mailbox.synced_at is None:
        return "not read to the end yet"
    minutes = int((now - mailbox.synced_at).total_seconds() // 60)
    return "up to date" if minutes < 5 else f"behind by {minutes} min"


bp.add_app_template_global(behind, "capture_behind")
