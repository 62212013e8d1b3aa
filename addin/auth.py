"""Sign-in: Flask-Login over the domain's users.

The wide pages sign in with a cookie session (a local password, or in the preview the demo
picker). The pane in a mail client's iframe signs in with a bearer token (``addin.tokens``),
which it gets by exchanging an Office SSO access token or a password; the ``request_loader``
below reads it. Nothing after sign-in needs to know which way was used.

Both ways end the same way. A cookie session carries the user's token version (in the id
Flask-Login keeps) and the time of sign-in; so do pane tokens. Signing out raises the
version, which ends every session and every token the user holds, in every browser; and no
session or token outlives ``SESSION_MAX_HOURS`` from its sign-in, however often it is renewed.
"""

from __future__ import annotations

import time

from flask import Flask, Request, g, jsonify, redirect, render_template, request, session, url_for
from flask_login import LoginManager, UserMixin, login_user, logout_user

from addin.database import db
from addin.tokens import claims_for_token, within_lifetime
from addin.views import is_htmx
from services.models import Organization, User
from services.schemas import parse_id
from services.users import active_user

login_manager = LoginManager()
login_manager.login_view = "auth.login"
login_manager.login_message = "Sign in to see your CRM."

SIGNED_IN_AT = "signed_in_at"


class SignedIn(UserMixin):
    """Flask-Login's view of a domain ``User``; ``.user`` is what services receive."""

    def __init__(self, user: User) -> None:
        self.user = user

    def get_id(self) -> str:
        # The version rides in the session: raising it (sign-out, revoke) ends this session.
        return f"{self.user.id}:{self.user.token_version}"

    # What the pages read of the signed-in user, named here (services receive ``.user``).

    @property
    def id(self) -> int:
        return self.user.id

    @property
    def name(self) -> str:
        return self.user.name

    @property
    def role(self) -> str:
        return self.user.role

    @property
    def organization(self) -> Organization:
        return self.user.organization

    @property
    def sees_team(self) -> bool:
        return self.user.sees_team

    @property
    def is_admin(self) -> bool:
        return self.user.is_admin


def start_session(user: User) -> None:
    """Sign in with a cookie. The session starts empty: whatever an earlier visitor left in it
    (a CSRF token an attacker planted or read) does not survive into the signed-in session."""
    session.clear()
    g.pop("csrf_token", None)
    login_user(SignedIn(user))
    session[SIGNED_IN_AT] = int(time.time())


def end_sessions(user: User) -> None:
    """Sign out everywhere: every cookie session and pane token of this user ends now."""
    user.token_version += 1
    db().commit()
    logout_user()
    session.clear()
    g.pop("csrf_token", None)


@login_manager.user_loader
def _load(session_id: str) -> SignedIn | None:
    user_part, _, version = session_id.partition(":")
    user_id = parse_id(user_part)
    user = active_user(db(), user_id) if user_id else None
    if user is None or version != str(user.token_version) or not within_lifetime(session.get(SIGNED_IN_AT)):
        return None
    return SignedIn(user)


@login_manager.request_loader
def _load_from_bearer(request: Request) -> SignedIn | None:
    """The pane's second way in: a bearer token (see ``addin.tokens``)."""
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        return None
    found = claims_for_token(header.removeprefix("Bearer ").strip())
    if found is None:
        return None
    user, claims = found
    g.signed_in_by = "bearer"
    g.token_claims = claims
    return SignedIn(user)


def signed_in_by_bearer() -> bool:
    return g.get("signed_in_by") == "bearer"


def expired_bearer():
    """A bearer that no longer works gets a 401 the pane acts on (it signs in again),
    whatever the method: never a CSRF complaint."""
    return jsonify(error="Your sign-in has ended; sign in again."), 401


@login_manager.unauthorized_handler
def _unauthorized():
    """A pane request (htmx or bearer) gets a 401 it can act on; a page gets the sign-in page."""
    if request.headers.get("Authorization") or request.path.startswith("/auth/") or request.is_json:
        return expired_bearer()
    if is_htmx():
        return render_template("pane/_signed_out.html"), 401
    return redirect(url_for("auth.login", next=request.full_path if request.query_string else request.path))


def _forget_the_request(_error: BaseException | None) -> None:
    """Who signed in, how, and the CSRF token are the request's. An app context can outlive
    many requests (the test client's, a CLI command's), and ``g`` lives as long as it."""
    for name in ("_login_user", "signed_in_by", "token_claims", "csrf_token"):
        g.pop(name, None)


def init_app(app: Flask) -> None:
    login_manager.init_app(app)
    app.teardown_request(_forget_the_request)
