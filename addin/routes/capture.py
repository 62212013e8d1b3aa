"""Automatic capture's pages: the rep's own mailbox (connect, disconnect, what was taken and why,
take one back), and the admin's view of every mailbox (state, why it stopped, the organization's
consent, whose mailboxes it reads, the capture audit). The rules are ``services.capture``'s."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime

from flask import Blueprint, current_app, flash, jsonify, redirect, render_template, request, session, url_for
from flask_login import login_required
from werkzeug.wrappers import Response

from addin import capture as parts
from addin.database import commit, db
from addin.jobs import enqueue_capture
from addin.security import verify_with_keys
from addin.pane_actions import render_my_day
from addin.views import actor, is_htmx, refused
from services.access import require_role
from services.capture import mailboxes, meetings, notices, push
from services.capture.mailboxes import PROVIDER_NAMES
from services.errors import DomainError
from services.identity import verify_google_token
from services.models import MAIL_PROVIDERS, Mailbox
from services.types import utcnow

bp = Blueprint("capture", __name__)


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
        standin=bool(current_app.config["CAPTURE_STANDIN_URL"]),
        now=utcnow(),
    ), status


@bp.get("/capture")
@login_required
def mine() -> tuple[str, int]:
    return _page()


@bp.get("/capture/connect/<any(microsoft, google):provider>")
@login_required
def connect(provider: str) -> Response | tuple[str, int]:
    """To the provider's consent screen, with PKCE; the verifier waits in the rep's session. A
    link, not a form: the page's ``form-action 'self'`` would stop a form's redirect to the
    provider. It writes nothing but the session's state, checked when the provider sends the
    rep back (``callback``)."""
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


# -- captured meetings ---------------------------------------------------------------------------


@bp.post("/capture/meetings/<id:activity_id>/debrief")
@login_required
def debrief(activity_id: int) -> Response | tuple[str, int]:
    """How a held meeting went, from My day: its outcome, rating and note."""
    form = request.form
    data = {
        "rating": form.get("rating") or 0,
        "outcome": form.get("outcome", ""),
        "note": form.get("note", ""),
        "answers": {k.removeprefix("answer:"): v for k, v in form.items() if k.startswith("answer:")},
    }
    with refused(of_input_only=True) as refusal:
        meetings.debrief(db(), actor(), activity_id, data)
    if refusal:
        if not is_htmx():
            return _page(refusal.error, refusal.status)
        return render_my_day(error=refusal.error, typed={**form.to_dict(), "activity_id": activity_id}), refusal.status
    commit()
    if not is_htmx():
        flash("Saved: thank you.")
        return redirect(url_for("capture.mine"), code=303)
    return render_my_day(notice="Saved: thank you."), 200


@bp.post("/capture/notices/<id:notice_id>/seen")
@login_required
def notice_seen(notice_id: int) -> Response | tuple[str, int]:
    notices.mark_seen(db(), actor(), notice_id)
    commit()
    if not is_htmx():
        return redirect(url_for("capture.mine"), code=303)
    return render_my_day(), 200


@bp.post("/capture/meetings/<id:activity_id>/transcript")
@login_required
def attach_transcript(activity_id: int) -> Response | tuple[str, int]:
    upload = request.files.get("file")
    with refused(of_input_only=True) as refusal:
        name, content = (upload.filename or "", upload.read(meetings.MAX_FILE + 1)) if upload else ("", b"")
        meetings.attach_transcript(db(), actor(), activity_id, name, content)
    if refusal:
        return _transcript_page(activity_id, refusal.error, refusal.status)
    commit()
    flash("Transcript kept with the meeting.")
    return redirect(url_for("capture.transcript", activity_id=activity_id), code=303)


def _transcript_page(activity_id: int, error: DomainError | None = None, status: int = 200) -> tuple[str, int]:
    transcript = meetings.transcript_of(db(), actor(), activity_id)
    lines = meetings.parse_transcript(transcript.text or "") if transcript else []
    return render_template(
        "capture/transcript.html", activity_id=activity_id, transcript=transcript, lines=lines, error=error
    ), status


@bp.get("/capture/meetings/<id:activity_id>/transcript")
@login_required
def transcript(activity_id: int) -> tuple[str, int]:
    return _transcript_page(activity_id)


@bp.get("/capture/transcripts")
@login_required
def search_transcripts() -> tuple[str, int]:
    query = request.args.get("q", "")
    return render_template(
        "capture/transcripts.html", query=query[:200], found=meetings.search_transcripts(db(), actor(), query)
    ), 200


# -- the admin's ---------------------------------------------------------------------------------


def _mailboxes_page(error: DomainError | None = None, status: int = 200) -> tuple[str, int]:
    seen = mailboxes.overview(db(), actor())
    return render_template(
        "capture/mailboxes.html",
        rows=seen.mailboxes,
        audit=seen.audit,
        people=seen.people,
        providers=[(p, PROVIDER_NAMES[p]) for p in MAIL_PROVIDERS],
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


@bp.get("/admin/mailboxes/consent/microsoft")
@login_required
def microsoft_consent() -> Response | tuple[str, int]:
    """To Microsoft's admin consent (a link: see ``connect``); back at ``consent_callback``."""
    require_role(actor(), "admin")
    with refused() as refusal:
        started = mailboxes.admin_consent(parts.endpoints(), url_for("capture.consent_callback", _external=True))
    if refusal:
        return _mailboxes_page(refusal.error, refusal.status)
    session["capture_consent"] = started.state
    return redirect(started.url, code=303)


@bp.get("/admin/mailboxes/consent/microsoft/done")
@login_required
def consent_callback() -> Response | tuple[str, int]:
    """Microsoft's answer: ``admin_consent=True`` and the ``tenant``, for the state we gave."""
    require_role(actor(), "admin")
    state = session.pop("capture_consent", None)
    if not state or request.args.get("state") != state:
        return _mailboxes_page(DomainError("That consent did not start here, or has been used: start again."), 400)
    if request.args.get("admin_consent", "").lower() != "true" or request.args.get("error"):
        return _mailboxes_page(DomainError("Microsoft did not give the organization's consent: nothing changed."), 400)
    with refused(of_input_only=True) as refusal:
        mailboxes.grant_organization(db(), actor(), "microsoft", request.args.get("tenant", ""))
    if refusal:
        return _mailboxes_page(refusal.error, refusal.status)
    commit()
    flash("Microsoft gave the organization's consent: now choose whose mailboxes are read.")
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


# -- push: the providers' notifications (no cookie, no CSRF: each proves itself) -----------------


def _graph(lifecycle: bool) -> Response | tuple[str, int, dict[str, str]] | tuple[Response, int]:
    """Graph's validation handshake (echo the token, as plain text, at once), else its
    notifications, each checked by its client state; what they name is read by the worker."""
    if "validationToken" in request.args:
        return request.args["validationToken"][:1000], 200, {"Content-Type": "text/plain; charset=utf-8"}
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return jsonify(error="Expected Graph's notification JSON."), 400
    try:
        due = push.graph_notified(db(), body.get("value"), current_app.config["SECRET_KEY"], lifecycle=lifecycle)
    except ValueError:
        return jsonify(error="Expected a list of notifications under value."), 400
    commit()
    for mailbox_id in due:
        enqueue_capture(mailbox_id)
    return "", 202


@bp.post("/capture/graph/notifications")
def graph_notifications():
    return _graph(lifecycle=False)


@bp.post("/capture/graph/lifecycle")
def graph_lifecycle():
    return _graph(lifecycle=True)


@bp.post("/capture/google/push")
def google_push():
    """Cloud Pub/Sub's push of a Gmail watch: its OIDC token checked (Google's signature, our
    audience, the push subscription's service account), then the mailbox it names is due."""
    config = current_app.config
    audience = config["CAPTURE_PUBSUB_AUDIENCE"] or f"{config['CAPTURE_PUSH_URL']}/capture/google/push"
    bearer = request.headers.get("Authorization", "")
    if not config["CAPTURE_PUBSUB_ACCOUNT"] or not bearer.startswith("Bearer "):
        return jsonify(error="A Pub/Sub push token is required."), 401
    claims = verify_with_keys(
        "inboxcrm.google_keys",
        config["GOOGLE_JWKS_URL"],
        lambda keys: verify_google_token(bearer.removeprefix("Bearer "), [audience], keys),
        "Pub/Sub push",
        "The push token was refused.",
    )
    if not isinstance(claims, dict):
        return claims
    if str(claims.get("email", "")).lower() != config["CAPTURE_PUBSUB_ACCOUNT"].lower():
        return jsonify(error="The push token is not the push subscription's."), 401
    body = request.get_json(silent=True)
    message = body.get("message") if isinstance(body, dict) else None
    try:
        data = json.loads(base64.b64decode(message["data"], validate=True))
        address = data["emailAddress"]
        assert isinstance(address, str)
    except (TypeError, KeyError, ValueError, AssertionError, binascii.Error):
        return jsonify(error="Expected a Gmail notification: message.data with emailAddress."), 400
    due = push.gmail_pushed(db(), address)
    commit()
    for mailbox_id in due:
        enqueue_capture(mailbox_id)
    return "", 204


for _view in (graph_notifications, graph_lifecycle, google_push):
    _view.csrf_exempt = True  # type: ignore[attr-defined]


def behind(mailbox: Mailbox, now: datetime) -> str:
    """How far the mailbox is behind, in words, for the admin's table."""
    if mailbox.synced_at is None:
        return "not read to the end yet"
    minutes = int((now - mailbox.synced_at).total_seconds() // 60)
    return "up to date" if minutes < 5 else f"behind by {minutes} min"


bp.add_app_template_global(behind, "capture_behind")
