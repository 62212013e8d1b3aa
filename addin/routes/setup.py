"""A real team's way in: the first-run page of a store with no organization, and the page an
invitation's link opens.

The first-run page names the organization and makes its first admin, with a password or by
signing in with Microsoft or Google (which maps that tenant or Workspace to the organization).
Whoever reaches a fresh server first must not become its admin: the page asks for the set-up
code, derived from the server's secret key, which only its operator can read (the server's log,
or ``flask --app wsgi org setup-code``). Once an organization exists the page is gone (404);
``flask --app wsgi org create`` makes the others.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from typing import Any
from zoneinfo import available_timezones

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, session, url_for

from addin import oidc
from addin.auth import start_session
from addin.database import commit, db
from addin.security import limiter
from addin.views import refused
from services.errors import DomainError, NotFound
from services.setup.organizations import check_new_organization, create_organization, has_organization
from services.setup.people import MIN_PASSWORD, accept, invitation_for

bp = Blueprint("setup", __name__)
log = logging.getLogger(__name__)
FOUNDING = "founding"  # session: the first-run form, while its admin signs in with Microsoft or Google
ZONES = sorted(available_timezones())
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"]  # fmt: skip
FIELDS = ("name", "domains", "time_zone", "fiscal_year_start_month", "currency", "locale", "admin_name", "admin_email")


def setup_code() -> str:
    """The first-run page's code: the server's secret key's, so only its operator knows it."""
    digest = hmac.new(current_app.config["SECRET_KEY"].encode(), b"inboxcrm first run", hashlib.sha256).hexdigest()
    return "-".join(digest[i : i + 4] for i in range(0, 16, 4))


def _typed() -> dict[str, str]:
    return {name: (request.form.get(name) or "")[:300] for name in FIELDS}


def _form(error: DomainError | None = None, typed: dict[str, str] | None = None, status: int = 200):
    return render_template(
        "setup/first_run.html",
        error=error,
        typed=typed or {"time_zone": "UTC", "fiscal_year_start_month": "1", "currency": "USD", "locale": "en_US"},
        zones=ZONES,
        months=MONTHS,
        providers=oidc.enabled(),
        min_password=MIN_PASSWORD,
    ), status


def _organization_data(typed: dict[str, str]) -> dict[str, Any]:
    return {
        key: typed[key] for key in ("name", "domains", "time_zone", "fiscal_year_start_month", "currency", "locale")
    }


@bp.route("/setup", methods=["GET", "POST"])
@limiter.limit("10 per minute", methods=["POST"])
def first_run() -> Any:
    if has_organization(db()):
        abort(404)
    if request.method == "GET":
        log.warning("Inbox CRM has no organization yet: the first-run page's set-up code is %s", setup_code())
        return _form()
    typed = _typed()
    if not hmac.compare_digest((request.form.get("code") or "").strip().lower(), setup_code()):
        return _form(
            DomainError("The set-up code is not right: find it in the server's log.", {"code": ["Not right."]}),
            typed,
            403,
        )
    way = request.form.get("way") or "password"
    if way in dict(oidc.enabled()):
        with refused() as refusal:
            check_new_organization(db(), _organization_data(typed))
        if refusal:
            return _form(refusal.error, typed, 422)
        session[FOUNDING] = typed
        return redirect(url_for("auth.oidc_start", provider=way))
    if request.form.get("password") != request.form.get("password_again"):
        return _form(
            DomainError("The two passwords differ.", {"password": ["Type the same password twice."]}), typed, 422
        )
    with refused() as refusal:
        founded = create_organization(
            db(),
            _organization_data(typed),
            typed["admin_email"],
            typed["admin_name"],
            password=request.form.get("password"),
        )
    if refusal:
        return _form(refusal.error, typed, 422)
    commit()
    start_session(founded.admin)
    flash(f"{founded.organization.name} is ready. Invite your team, then shape the pipeline.")
    return redirect(url_for("organization.people_page"))


def founding_form() -> dict[str, str] | None:
    """The first-run form waiting for its admin's sign-in (``auth.oidc_callback`` takes it)."""
    return session.pop(FOUNDING, None)


def _join_page(invitation: Any, error: DomainError | None = None, status: int = 200):
    if invitation is None:  # used, revoked, expired, or never made: the same answer
        return render_template("setup/join.html", invitation=None, error=None, providers=[]), 404
    return render_template(
        "setup/join.html", invitation=invitation, error=error, providers=oidc.enabled(), min_password=MIN_PASSWORD
    ), status


@bp.route("/join/<token>", methods=["GET", "POST"])
@limiter.limit("20 per minute", methods=["POST"])
def join(token: str) -> Any:
    """An invitation's page: the invited person sets a password, or signs in with single sign-on."""
    invitation = invitation_for(db(), token)
    if invitation is None or request.method == "GET":
        return _join_page(invitation)
    if request.form.get("password") != request.form.get("password_again"):
        return _join_page(
            invitation, DomainError("The two passwords differ.", {"password": ["Type the same password twice."]}), 422
        )
    with refused() as refusal:
        user = accept(db(), token, request.form.get("name"), request.form.get("password"))
    if refusal:
        return _join_page(None if isinstance(refusal.error, NotFound) else invitation, refusal.error, 422)
    commit()
    start_session(user)
    flash(f"Welcome to {user.organization.name}, {user.name}.")
    return redirect(url_for("preview.mailbox"))
