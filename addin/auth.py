"""Sign-in: Flask-Login over the domain's users.

The wide pages sign in with a cookie session (a local password, or in the preview the demo
picker). The pane in a mail client's iframe signs in with a bearer token (``addin.tokens``),
which it gets by exchanging an Office SSO access token or a password; the ``request_loader``
below reads it. Nothing after sign-in needs to know which way was used.
"""

from __future__ import annotations

from flask import Flask, Request, g, jsonify, redirect, render_template, request, url_for
from flask_login import LoginManager, UserMixin

from addin.database import db
from services.models import User
from services.users import active_user

login_manager = LoginManager()
login_manager.login_view = "auth.login"
login_manager.login_message = "Sign in to see your CRM."


class SignedIn(UserMixin):
    """Flask-Login's view of a domain ``User``; ``.user`` is what services receive."""

    def __init__(self, user: User) -> None:
        self.user = user

    def get_id(self) -> str:
        return str(self.user.id)

    def __getattr__(self, name: str):  # role, name, email, organization_id, ...
        return getattr(self.user, name)


@login_manager.user_loader
def _load(user_id: str) -> SignedIn | None:
    if not user_id.isdigit():
        return None
    user = active_user(db(), int(user_id))
    return SignedIn(user) if user else None


@login_manager.request_loader
def _load_from_bearer(request: Request) -> SignedIn | None:
    """The pane's second way in: a bearer token (see ``addin.tokens``)."""
    from addin.tokens import user_for_token

    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        return None
    user = user_for_token(header.removeprefix("Bearer ").strip())
    if user is None:
        return None
    g.signed_in_by = "bearer"
    return SignedIn(user)


@login_manager.unauthorized_handler
def _unauthorized():
    """A pane request (htmx or bearer) gets a 401 it can act on; a page gets the sign-in page."""
    if request.headers.get("Authorization") or request.path.startswith("/auth/") or request.is_json:
        return jsonify(error="Sign in first."), 401
    if request.headers.get("HX-Request") == "true":
        return render_template("pane/_signed_out.html"), 401
    return redirect(url_for("auth.login", next=request.full_path if request.query_string else request.path))


def init_app(app: Flask) -> None:
    login_manager.init_app(app)
