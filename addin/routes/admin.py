"""Admin pages: the organization's people, teams and pipeline (admins only)."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_login import login_required
from werkzeug.wrappers import Response

from addin.database import commit, db, writes
from addin.settings import webhook_reach
from addin.views import refused, actor
from services.integration import api_tokens, intake, sync, webhooks
from services import lexicon, privacy
from services.reports.scope import visible_teams
from services.access import require_role
from services.setup.admin import organization_overview
from services.errors import DomainError

bp = Blueprint("admin", __name__)


@bp.get("/admin")
@login_required
def overview() -> str:
    return render_template("admin/overview.html", overview=organization_overview(db(), actor()))


@bp.get("/admin/block-list")
@login_required
def block_list() -> tuple[str, int]:
    """The organization's block list: addresses and domains whose mail nobody logs."""
    require_role(actor(), "admin")
    return render_template("admin/block_list.html", lists=privacy.block_lists(db(), actor()), error=None, typed=""), 200


@bp.post("/admin/block-list")
@login_required
def block() -> tuple[str, int] | Response:
    with refused(of_input_only=True) as refusal:
        privacy.add_entry(db(), actor(), request.form.get("value"), organization_wide=True)
    if refusal:
        return render_template(
            "admin/block_list.html",
            lists=privacy.block_lists(db(), actor()),
            error=refusal.error,
            typed=(request.form.get("value") or "")[:300],
        ), 422
    commit()
    flash("Blocked: its mail is not logged.")
    return redirect(url_for("admin.block_list"))


@bp.post("/admin/block-list/<id:entry_id>/delete")
@login_required
def unblock(entry_id: int) -> Response:
    require_role(actor(), "admin")
    privacy.remove_entry(db(), actor(), entry_id)
    commit()
    flash("Taken off the block list.")
    return redirect(url_for("admin.block_list"))


@bp.get("/admin/lexicon")
@login_required
def lexicon_page() -> tuple[str, int]:
    """The words the team's ratings taught the sentiment score, with the evidence behind each."""
    require_role(actor(), "admin")
    return render_template(
        "admin/lexicon.html", words=lexicon.learned_words(db(), actor().organization), rules=lexicon
    ), 200


@bp.post("/admin/lexicon/reset")
@login_required
def reset_word() -> Response:
    require_role(actor(), "admin")
    word = (request.form.get("word") or "").strip().lower()[:40]
    if lexicon.reset_word(db(), actor(), word):
        commit()
        flash(f"“{word}” is forgotten: its evidence is gone and it scores as VADER's own again.")
    else:
        flash("That word has nothing learned to reset.")
    return redirect(url_for("admin.lexicon_page"))


@bp.get("/admin/api-tokens")
@login_required
def api_tokens_page() -> tuple[str, int]:
    """The organization's API tokens: made (shown once), listed by name and prefix, revoked."""
    return render_template("admin/api_tokens.html", tokens=api_tokens.tokens(db(), actor()), made=None, error=None), 200


@bp.post("/admin/api-tokens")
@login_required
def make_api_token() -> tuple[str, int]:
    with refused(of_input_only=True) as refusal:
        token, text = api_tokens.create_token(db(), actor(), request.form.get("name"), request.form.get("scopes"))
    if refusal:
        return render_template(
            "admin/api_tokens.html", tokens=api_tokens.tokens(db(), actor()), made=None, error=refusal.error
        ), 422
    commit()
    # Shown this once: the store keeps only its hash.
    return render_template(
        "admin/api_tokens.html", tokens=api_tokens.tokens(db(), actor()), made=(token, text), error=None
    ), 201


@bp.post("/admin/api-tokens/<id:token_id>/revoke")
@login_required
def revoke_api_token(token_id: int) -> Response:
    api_tokens.revoke_token(db(), actor(), token_id)
    commit()
    flash("Revoked: it no longer opens the API.")
    return redirect(url_for("admin.api_tokens_page"))


@bp.post("/admin/api-tokens/<id:token_id>/take-over")
@login_required
def take_over_api_token(token_id: int) -> Response:
    api_tokens.take_over(db(), actor(), token_id)
    commit()
    flash("Taken over: it acts as you from now on.")
    return redirect(url_for("admin.api_tokens_page"))


@bp.get("/admin/webhooks")
@login_required
def webhooks_page() -> tuple[str, int]:
    """Where the organization's changes are sent, each endpoint's recent deliveries and attempts."""
    return _webhooks(None, None, 200)


def _webhooks(made, error, status):
    session, admin = db(), actor()
    listed = [
        (endpoint, webhooks.recent_deliveries(session, endpoint)) for endpoint in webhooks.endpoints(session, admin)
    ]
    return render_template(
        "admin/webhooks.html",
        endpoints=listed,
        made=made,
        error=error,
        types=list(sync.SYNCED),
        catch_ups={endpoint.id: webhooks.catch_up(session, endpoint) for endpoint, _ in listed},
        events_kept_days=webhooks.EVENTS_KEPT.days,
        allow_http=current_app.config["WEBHOOKS_ALLOW_HTTP"],
    ), status


@bp.post("/admin/webhooks")
@login_required
def add_webhook() -> tuple[str, int]:
    with refused(of_input_only=True) as refusal:
        endpoint, secret = webhooks.add_endpoint(
            db(),
            actor(),
            request.form.get("url"),
            request.form.getlist("events"),
            reach=webhook_reach(current_app.config),
            known=sync.SYNCED,
        )
    if refusal:
        return _webhooks(None, refusal.error, 422)
    commit()
    return _webhooks((endpoint, secret), None, 201)  # its secret, shown this once


@bp.post("/admin/webhooks/<id:endpoint_id>/<any(enable, disable, delete):action>")
@login_required
def change_webhook(endpoint_id: int, action: str) -> Response:
    resumed = None
    if action == "delete":
        webhooks.remove_endpoint(db(), actor(), endpoint_id)
    else:
        resumed = webhooks.set_enabled(db(), actor(), endpoint_id, action == "enable")
    commit()
    flash(
        {
            "enable": "Turned on again.",
            "disable": "Turned off: nothing is sent to it; its changes wait in the event list.",
            "delete": "Removed.",
        }[action]
        + (
            f" Sending the {resumed.waiting} deliveries waiting; the {resumed.missed} changes made while it "
            f"was off are at GET /api/v1/events?cursor={resumed.cursor}."
            if resumed
            else ""
        )
    )
    return redirect(url_for("admin.webhooks_page"))


@bp.get("/admin/lead-sources")
@login_required
def lead_sources_page() -> tuple[str, int]:
    """The intake URLs leads are posted to, and whose reps they go to."""
    return _lead_sources(None, None, 200)


def _lead_sources(made, error, status):
    return render_template(
        "admin/lead_sources.html",
        sources=intake.sources(db(), actor()),
        teams=visible_teams(db(), actor()),
        made=made,
        error=error,
    ), status


@bp.post("/admin/lead-sources")
@login_required
def add_lead_source() -> tuple[str, int]:
    with refused(of_input_only=True) as refusal:
        source = intake.add_source(
            db(),
            actor(),
            request.form.get("name"),
            request.form.get("kind"),
            request.form.get("team_id"),
            signed=request.form.get("signed") == "1",
        )
    if refusal:
        return _lead_sources(None, refusal.error, 422)
    commit()
    return _lead_sources(source, None, 201)


@bp.post("/admin/lead-sources/<id:source_id>/<any(enable, disable, rotate):action>")
@login_required
def change_lead_source(source_id: int, action: str) -> Response:
    if action == "rotate":
        intake.rotate_key(db(), actor(), source_id)
    else:
        intake.set_source_enabled(db(), actor(), source_id, action == "enable")
    commit()
    flash(
        {
            "enable": "Switched on: its URL takes leads again.",
            "disable": "Switched off: its URL answers as an unknown one.",
            "rotate": "A new key: the old URL no longer takes leads. Give the form its new URL.",
        }[action]
    )
    return redirect(url_for("admin.lead_sources_page"))


@bp.get("/admin/privacy")
@login_required
def privacy_page() -> tuple[str, int]:
    """A person's rights: the export of what is stored about them, and their erasure."""
    require_role(actor(), "admin")
    return render_template("admin/privacy.html", error=None, typed=""), 200


@bp.get("/admin/privacy/export")
@login_required
@writes  # it writes its audit record: a writer's session (a reader's would fail while anyone writes)
def export_person() -> tuple[str, int] | Response:
    """Everything stored about one person, as one JSON file (their right of access)."""
    address = request.args.get("address")
    with refused(of_input_only=True) as refusal:
        data = privacy.person_export(db(), actor(), address)
    if refusal:
        return render_template("admin/privacy.html", error=refusal.error, typed=(address or "")[:300]), 422
    privacy.record_export(db(), actor(), data["address"], current_app.config["SECRET_KEY"])
    commit()
    response = jsonify(data)
    response.headers["Content-Disposition"] = "attachment; filename=person.json"
    return response


@bp.post("/admin/privacy/erase")
@login_required
def erase_person() -> tuple[str, int] | Response:
    """Erase a person (their right to be forgotten), after the admin typed the address twice."""
    require_role(actor(), "admin")
    address, confirm = request.form.get("address") or "", request.form.get("confirm") or ""
    with refused(of_input_only=True) as refusal:
        if address.strip().lower() != confirm.strip().lower():
            raise DomainError("Type the same address twice to erase it.", {"confirm": ["Not the same address."]})
        erasure = privacy.erase_person(
            db(), actor().organization, address, secret=current_app.config["SECRET_KEY"], actor=actor()
        )
    if refusal:
        return render_template("admin/privacy.html", error=refusal.error, typed=address[:300]), 422
    commit()
    privacy.after_erasure(db().get_bind())
    flash(
        f"Erased: {erasure.contacts} contact(s), the text of {erasure.activities} activities, {erasure.participants} copies of the address."
    )
    return redirect(url_for("admin.privacy_page"))
