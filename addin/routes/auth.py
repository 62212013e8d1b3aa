"""Signing in and out: local passwords, and the preview's demo picker."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import login_required, login_user, logout_user
from werkzeug.wrappers import Response

from addin.auth import SignedIn
from addin.database import db
from services.users import active_user, authenticate

bp = Blueprint("auth", __name__)


def _next_url() -> str:
    # Only a local path: an open redirect after sign-in is a phishing tool.
    target = request.values.get("next") or ""
    parts = urlsplit(target)
    if target.startswith("/") and not target.startswith("//") and not parts.netloc and not parts.scheme:
        return target
    return url_for("preview.mailbox")


@bp.route("/login", methods=["GET", "POST"])
def login() -> str | Response | tuple[str, int]:
    if request.method == "POST":
        user = authenticate(db(), request.form.get("email", ""), request.form.get("password", ""))
        if user is None:
            return render_template("auth/login.html", error="Wrong e-mail address or password.", email=request.form.get("email", "")), 401
        login_user(SignedIn(user))
        return redirect(_next_url())
    return render_template("auth/login.html", email="")


@bp.post("/login/as")
def login_as() -> Response:
    """The embedded default's "sign in as" picker; off in production."""
    if not current_app.config["DEMO_SIGN_IN"]:
        abort(404)
    user_id = request.form.get("user_id", "")
    user = active_user(db(), int(user_id)) if user_id.isdigit() else None
    if user is None:
        flash("Choose a user to sign in as.")
        return redirect(url_for("preview.mailbox"))
    login_user(SignedIn(user))
    return redirect(_next_url())


@bp.post("/logout")
@login_required
def logout() -> Response:
    logout_user()
    return redirect(url_for("auth.login"))
