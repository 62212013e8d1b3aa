"""Signing in and out: cookie sessions for the pages, bearer tokens for the pane.

* ``/login`` (password) and ``/login/as`` (the embedded default's demo picker) start a cookie
  session, for the preview and the wide pages;
* ``/auth/office`` exchanges an Office SSO access token, ``/auth/token`` a password, for a
  pane token; ``/auth/token/refresh`` and ``/auth/token/revoke`` keep or end it;
* ``/auth/oidc/<provider>`` is the fallback where SSO is not possible: Microsoft's or
  Google's sign-in in an Office dialog, which hands a pane token back to the pane.

Every sign-in endpoint is rate-limited; the token endpoints answer JSON, with a 4xx and an
``error`` for anything refused.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from authlib.integrations.base_client.errors import OAuthError
from flask import Blueprint, abort, current_app, flash, g, jsonify, redirect, render_template, request, session, url_for
from flask_login import login_required
from joserfc.errors import JoseError
from requests import RequestException
from werkzeug.wrappers import Response

from addin import oidc
from addin.auth import SIGNED_IN_AT, end_sessions, signed_in_by_bearer, start_session
from addin.database import db, writes
from addin.security import limiter, submitted_account, token_endpoint, verify_with_keys
from addin.tokens import issue_token
from addin.routes.setup import founding_form
from addin.views import actor, is_htmx, refused
from services.identity import MicrosoftRules, user_for_microsoft_claims, user_for_oidc_claims, verify_microsoft_token
from services.schemas import parse_id
from services.setup.organizations import SignIn, create_organization, has_organization
from services.users import active_user, authenticate

bp = Blueprint("auth", __name__)
log = logging.getLogger(__name__)


def sign_in_limit() -> str:
    return current_app.config["SIGN_IN_RATE_LIMIT"]


def _next_url() -> str:
    # Only a local path: an open redirect after sign-in is a phishing tool.
    target = request.values.get("next") or ""
    parts = urlsplit(target)
    if (
        target.startswith("/")
        and not target.startswith("//")
        and not parts.netloc
        and not parts.scheme
        and "\\" not in target
    ):
        return target
    return url_for("preview.mailbox")


def _error(message: str, status: int) -> tuple[Response, int]:
    return jsonify(error=message), status


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(sign_in_limit, methods=["POST"])
@limiter.limit(sign_in_limit, methods=["POST"], key_func=submitted_account)
def login() -> str | Response | tuple[str, int]:
    if request.method == "POST":
        user = authenticate(db(), request.form.get("email", ""), request.form.get("password", ""))
        if user is None:
            return render_template(
                "auth/login.html", error="Wrong e-mail address or password.", email=request.form.get("email", "")
            ), 401
        start_session(user)
        return redirect(_next_url())
    return render_template("auth/login.html", email="")


@bp.post("/login/as")
@limiter.limit(sign_in_limit)
def login_as() -> Response:
    """The embedded default's "sign in as" picker; off in production."""
    if not current_app.config["DEMO_SIGN_IN"]:
        abort(404)
    user_id = parse_id(request.form.get("user_id"))
    user = active_user(db(), user_id) if user_id else None
    if user is None:
        flash("Choose a user to sign in as.")
        return redirect(url_for("preview.mailbox"))
    start_session(user)
    return redirect(_next_url())


@bp.post("/logout")
@login_required
def logout() -> Response | tuple[str, int]:
    """Sign out, everywhere: this browser, the user's other browsers and every pane token."""
    by_bearer = signed_in_by_bearer()
    end_sessions(actor())
    if is_htmx():
        # The pane forgets its token and shows its sign-in again (pane.js listens).
        response = current_app.make_response((render_template("pane/_signed_out.html", by_choice=True), 200))
        response.headers["HX-Trigger"] = "inboxcrm:signed-out"
        return response
    if by_bearer:
        return "", 204
    return redirect(url_for("auth.login"))


# -- pane tokens --------------------------------------------------------------------------------


@bp.post("/auth/token")
@limiter.limit(sign_in_limit)
@limiter.limit(sign_in_limit, key_func=submitted_account)
@token_endpoint
def password_token() -> tuple[Response, int]:
    data = request.get_json(silent=True) if request.is_json else request.form
    if not isinstance(data, dict) and not hasattr(data, "get"):
        return _error("Send an e-mail address and a password.", 400)
    user = authenticate(db(), str(data.get("email") or ""), str(data.get("password") or ""))
    if user is None:
        return _error("Wrong e-mail address or password.", 401)
    return jsonify(issue_token(user)), 200


@bp.post("/auth/office")
@limiter.limit(sign_in_limit)
@token_endpoint
def office_token() -> tuple[Response, int]:
    """Exchange an Office SSO access token (``Office.auth.getAccessToken``) for a pane token."""
    config = current_app.config
    tenants = oidc.microsoft_tenants()
    if not tenants or not config["MS_AUDIENCES"]:
        return _error("Single sign-on is not set up here; sign in with your password.", 404)
    data = request.get_json(silent=True)
    token = data.get("token") if isinstance(data, dict) else None
    if not isinstance(token, str) or not token or len(token) > 16_384:
        return _error('Send the access token as {"token": "..."}.', 400)
    rules = MicrosoftRules(config["MS_AUDIENCES"], tenants, config["MS_SCOPE"])
    claims = verify_with_keys(
        "inboxcrm.ms_keys",
        config["MS_JWKS_URL"],
        lambda keys: verify_microsoft_token(token, rules, keys),
        "An Office token",
        "That sign-in token is not valid here.",
    )
    if not isinstance(claims, dict):
        return claims
    user = user_for_microsoft_claims(db(), claims, tenants)
    db().commit()  # a link made, or a refusal audited
    if user is None:
        return _error("No Inbox CRM user has this Microsoft account; ask your admin.", 403)
    return jsonify(issue_token(user)), 200


@bp.get("/auth/oidc/<provider>")
@limiter.limit(sign_in_limit)
def oidc_start(provider: str) -> Response:
    """Open the provider's sign-in; ``?dialog=1`` when the pane opened this in an Office dialog."""
    remote = oidc.client(provider)
    if remote is None:
        abort(404)
    session["oidc_dialog"] = request.args.get("dialog") == "1"
    return remote.authorize_redirect(url_for("auth.oidc_callback", provider=provider, _external=True))


@bp.get("/auth/oidc/<provider>/callback")
@writes
@limiter.limit(sign_in_limit)
def oidc_callback(provider: str) -> Response | tuple[str, int]:
    remote = oidc.client(provider)
    if remote is None:
        abort(404)
    founding = founding_form()
    try:
        answer = remote.authorize_access_token(
            claims_options=oidc.claims_options(provider, any_tenant=founding is not None)
        )
    except (OAuthError, JoseError, RequestException, KeyError, ValueError) as error:
        log.info("OpenID Connect sign-in with %s refused: %r", provider, error)
        return render_template("auth/login.html", error="That sign-in did not work; try again.", email=""), 401
    claims = answer.get("userinfo") or {}
    if founding is not None and claims.get("sub"):
        return _found(provider, dict(claims), founding)
    user = user_for_oidc_claims(db(), provider, dict(claims), oidc.microsoft_tenants()) if claims.get("sub") else None
    db().commit()  # a link made, or a refusal audited
    if user is None:
        return render_template(
            "auth/login.html", error="No Inbox CRM user has this account; ask your admin.", email=""
        ), 403
    if session.pop("oidc_dialog", False):
        # The Office dialog hands the pane token to the pane (dialog.js, messageParent).
        return render_template("auth/dialog_done.html", answer=issue_token(user)), 200
    start_session(user)
    return redirect(url_for("preview.mailbox"))


def _found(provider: str, claims: dict, typed: dict[str, str]) -> Response | tuple[str, int]:
    """The first-run page's organization, made with the admin who just signed in; their tenant
    or Workspace now signs in to it."""
    if has_organization(db()):
        abort(404)
    if provider == "microsoft":
        tenant = str(claims.get("tid", "")).lower()
        address = claims.get("preferred_username") or claims.get("email")
        sign_in = SignIn(provider, tenant, str(claims.get("oid") or claims["sub"]), tenant)
    else:
        address = claims.get("email") if claims.get("email_verified") is True else None
        sign_in = SignIn(provider, str(claims.get("iss")), str(claims["sub"]), str(claims.get("hd") or "").lower())
    if not address or not sign_in.directory:
        return render_template(
            "auth/login.html", error="Sign in with a work account of your organization (a verified address).", email=""
        ), 403
    data = {
        key: typed.get(key, "")
        for key in ("name", "domains", "time_zone", "fiscal_year_start_month", "currency", "locale")
    }
    with refused() as refusal:
        founded = create_organization(
            db(), data, str(address), str(claims.get("name") or typed.get("admin_name") or ""), sign_in=sign_in
        )
    if refusal:
        return render_template("auth/login.html", error=refusal.error.message, email=""), 422
    db().commit()
    start_session(founded.admin)
    flash(f"{founded.organization.name} is ready. Invite your team, then shape the pipeline.")
    return redirect(url_for("organization.people_page"))


@bp.post("/auth/token/refresh")
@limiter.limit(sign_in_limit)
@login_required
def refresh_token() -> tuple[Response, int]:
    """A fresh token, as long as the sign-in it renews is within its absolute lifetime."""
    signed_in_at = g.token_claims["a"] if signed_in_by_bearer() else session.get(SIGNED_IN_AT)
    return jsonify(issue_token(actor(), signed_in_at)), 200


@bp.post("/auth/token/revoke")
@login_required
def revoke() -> tuple[str, int]:
    """The pane's sign-out: ends every token and session of the user, like ``/logout``."""
    end_sessions(actor())
    return "", 204
