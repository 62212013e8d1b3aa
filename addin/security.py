"""Security that every request gets, from maintained extensions rather than our own code:

* Flask-Talisman: a Content-Security-Policy with no inline script, framing allowed only to
  Outlook's and Gmail's hosts (and ourselves, for the preview), nosniff, HSTS in production;
* Flask-WTF: CSRF on every state-changing request made with the session cookie (htmx sends
  the token as ``X-CSRFToken``). A request signed in with a pane bearer token carries no
  ambient credential, so it needs none;
* Flask-Limiter: rate limits on sign-in and token endpoints.
"""

from __future__ import annotations

from typing import Any, Callable

from flask import Flask, g, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import current_user
from flask_talisman import Talisman
from flask_wtf.csrf import CSRFProtect

csrf = CSRFProtect()
limiter = Limiter(key_func=get_remote_address, default_limits=[])
talisman = Talisman()

OFFICE_JS_HOST = "https://appsforoffice.microsoft.com"
# Where Outlook on the web, new Outlook and Gmail frame add-ins.
FRAME_ANCESTORS = [
    "'self'",
    "https://outlook.office.com",
    "https://outlook.office365.com",
    "https://outlook.live.com",
    "https://*.outlook.com",
    "https://*.office.com",
    "https://*.officeapps.live.com",
    "https://mail.google.com",
    "https://*.googleusercontent.com",
]
CONTENT_SECURITY_POLICY = {
    "default-src": "'self'",
    "script-src": ["'self'", OFFICE_JS_HOST],
    "style-src": "'self'",
    "img-src": ["'self'", "data:"],
    "connect-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'self'",
    "form-action": "'self'",
    "frame-ancestors": FRAME_ANCESTORS,
}
STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}


def token_endpoint(view: Callable[..., Any]) -> Callable[..., Any]:
    """Mark a view that takes credentials in its body and answers with a token: no cookie
    is involved, so there is nothing for a cross-site request to ride on."""
    view.csrf_exempt = True  # type: ignore[attr-defined]
    return view


def init_app(app: Flask) -> None:
    production = app.config["PRODUCTION"]
    app.config.setdefault("WTF_CSRF_CHECK_DEFAULT", False)
    csrf.init_app(app)
    limiter.init_app(app)
    talisman.init_app(
        app,
        content_security_policy=CONTENT_SECURITY_POLICY,
        frame_options=None,  # frame-ancestors above says who may frame the pane
        force_https=production,
        strict_transport_security=production,
        session_cookie_secure=production,
        session_cookie_samesite=app.config["SESSION_COOKIE_SAMESITE"],
        referrer_policy="same-origin",
    )

    @app.before_request
    def protect_cookie_sessions() -> None:
        if request.method not in STATE_CHANGING or app.config.get("WTF_CSRF_ENABLED") is False:
            return
        if getattr(app.view_functions.get(request.endpoint or ""), "csrf_exempt", False):
            return
        if request.headers.get("Authorization", "").startswith("Bearer "):
            # Touch current_user so the request loader runs; only a valid token skips CSRF.
            if current_user.is_authenticated and g.get("signed_in_by") == "bearer":
                return
        csrf.protect()
