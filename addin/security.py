"""Security that every request gets, from maintained extensions rather than our own code:

* Flask-Talisman: a Content-Security-Policy with no inline script, framing allowed only to
  Outlook's and Gmail's hosts (and ourselves, for the preview), nosniff, HSTS in production;
* Flask-WTF: CSRF on every state-changing request made with the session cookie (htmx sends
  the token as ``X-CSRFToken``). A request signed in with a pane bearer token carries no
  ambient credential, so it needs none;
* Flask-Limiter: rate limits on sign-in and token endpoints, per client address and per
  account typed in, so that a botnet's many addresses still meet the per-account limit;
* ``Cache-Control: no-store`` on everything but the static files: CRM pages, CSV exports and
  tokens are one person's, and no shared cache or back button should keep them;
* a NUL character anywhere in a URL, a form or a JSON body is refused at the door (PostgreSQL text
  cannot hold one, and no field of ours means one);
* JSON nested deeper than ``JSON_MAX_DEPTH`` is refused (400) before it is parsed: Python's
  parser recurses, and ten thousand brackets would otherwise end in a RecursionError (a 500).
"""

from __future__ import annotations

import logging
from typing import Any, Callable

import re

from flask import Flask, Response, current_app, jsonify, request
from flask.json.provider import DefaultJSONProvider
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import current_user
from flask_talisman import Talisman
from flask_wtf.csrf import CSRFProtect

from addin.auth import expired_bearer, signed_in_by_bearer
from addin.views import vary_on_htmx
from services.errors import DomainError
from services.setup.tables import MAX_BYTES
from services.identity import KeysUnavailable, RemoteKeys, TokenRejected

log = logging.getLogger(__name__)
csrf = CSRFProtect()
limiter = Limiter(key_func=get_remote_address, default_limits=[])
talisman = Talisman()

OFFICE_JS_HOST = "https://appsforoffice.microsoft.com"
CONTENT_SECURITY_POLICY = {
    "default-src": "'self'",
    "script-src": ["'self'", OFFICE_JS_HOST],
    "style-src": "'self'",
    "img-src": ["'self'", "data:"],
    "connect-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'self'",
    "form-action": "'self'",
    # Filled from the FRAME_ANCESTORS setting: the hosts of Outlook on the web and the new
    # Outlook that frame the task pane, and ourselves (the preview). Gmail draws cards, not
    # our pages, so no Google host frames us; nor does any host that serves others' content.
    "frame-ancestors": [],
}
STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}


def token_endpoint(view: Callable[..., Any]) -> Callable[..., Any]:
    """Mark a view that takes credentials in its body and answers with a token: no cookie
    is involved, so there is nothing for a cross-site request to ride on."""
    view.csrf_exempt = True  # type: ignore[attr-defined]
    return view


def verify_with_keys(
    name: str, url: str, verify: Callable[[RemoteKeys], dict[str, Any]], what: str, refusal: str
) -> dict[str, Any] | tuple[Response, int]:
    """Check a token signed by an identity provider with its published keys (kept per app,
    under ``name``): the claims, or the JSON answer to give (401 refused, 503 no keys)."""
    keys = current_app.extensions.get(name)
    if keys is None or keys.url != url:  # the first request, or the key URL setting changed
        keys = current_app.extensions[name] = RemoteKeys(url)
    try:
        return verify(keys)
    except TokenRejected as error:
        log.info("%s refused: %s", what, error)
        return jsonify(error=refusal), 401
    except KeysUnavailable:
        log.exception("%s: the signing keys could not be fetched", what)
        return jsonify(error="Sign-in is unavailable right now; try again shortly."), 503


def submitted_account() -> str:
    """The account a sign-in attempt names (form or JSON), for the per-account limit."""
    data = request.get_json(silent=True) if request.is_json else request.form
    email = data.get("email") if isinstance(data, dict) or hasattr(data, "get") else None
    return "account:" + (str(email).strip().lower()[:254] if email else "-")


def _holds_nul(values: object) -> bool:
    return any("\x00" in key or any("\x00" in value for value in items) for key, items in values.lists())  # type: ignore[attr-defined]


def _json_holds_nul(value: object) -> bool:
    """A NUL anywhere in a JSON body's keys or strings ("\\u0000" decodes to one). The body's
    depth is bounded already (``ShallowJSONProvider``)."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_json_holds_nul(key) or _json_holds_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_json_holds_nul(item) for item in value)
    return False


JSON_MAX_DEPTH = 32  # no body of ours nests deeper than a few levels
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_BRACKET = re.compile(r"[\[\]{}]")


def json_depth(text: str | bytes) -> int:
    """How deep a JSON text's arrays and objects nest (brackets inside strings not counted)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    deepest = depth = 0
    for bracket in _BRACKET.finditer(_STRING.sub("", text)):
        depth += 1 if bracket.group() in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


class ShallowJSONProvider(DefaultJSONProvider):
    """Flask's JSON, refusing a body nested past ``JSON_MAX_DEPTH`` (``request.get_json`` then
    answers 400, or None when asked to be silent)."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        if json_depth(s) > JSON_MAX_DEPTH:
            raise ValueError(f"JSON nested deeper than {JSON_MAX_DEPTH} levels")
        return super().loads(s, **kwargs)


UPLOADS = frozenset({"organization.upload", "organization.import_quotas"})  # the routes that take a file


def init_app(app: Flask) -> None:
    production = app.config["PRODUCTION"]
    app.json = ShallowJSONProvider(app)
    app.config.setdefault("WTF_CSRF_CHECK_DEFAULT", False)
    csrf.init_app(app)
    limiter.init_app(app)
    policy = {**CONTENT_SECURITY_POLICY, "frame-ancestors": ["'self'", *app.config["FRAME_ANCESTORS"]]}
    talisman.init_app(
        app,
        content_security_policy=policy,
        frame_options=None,  # frame-ancestors above says who may frame the pane
        force_https=production,
        strict_transport_security=production,
        session_cookie_secure=production,
        session_cookie_samesite=app.config["SESSION_COOKIE_SAMESITE"],
        referrer_policy="same-origin",
    )

    @app.before_request
    def room_for_a_file() -> None:
        """The import's and the quotas' uploads may carry a file of the import's size; every other
        request keeps ``MAX_CONTENT_LENGTH``. Set before anything (the CSRF check) reads the body."""
        if request.endpoint in UPLOADS:
            request.max_content_length = MAX_BYTES + 1024 * 1024

    @app.before_request
    def refuse_nul_characters() -> None:
        if (
            "\x00" in request.path
            or _holds_nul(request.args)
            or (request.method in STATE_CHANGING and _holds_nul(request.form))
            or (request.is_json and _json_holds_nul(request.get_json(silent=True)))
        ):
            raise DomainError("The request holds a NUL character, which no field accepts.")

    @app.before_request
    def protect_cookie_sessions():
        if request.method not in STATE_CHANGING or app.config.get("WTF_CSRF_ENABLED") is False:
            return None
        if getattr(app.view_functions.get(request.endpoint or ""), "csrf_exempt", False) or request.path.startswith(
            "/api/"
        ):
            return None  # the API takes its own tokens, never a cookie (``addin.routes.api``)
        if request.headers.get("Authorization", "").startswith("Bearer "):
            # Touch current_user so the request loader runs; only a valid token skips CSRF,
            # and a token that no longer works is a 401 the pane acts on, whatever the method.
            if current_user.is_authenticated and signed_in_by_bearer():
                return None
            return expired_bearer()
        if request.path.startswith("/auth/token/") and not current_user.is_authenticated:
            return (
                expired_bearer()
            )  # no credential at all: a 401 the pane signs in on (CSRF guards a session; here is none)
        csrf.protect()
        return None

    app.after_request(vary_on_htmx)

    @app.after_request
    def no_store(response: Response) -> Response:
        if request.endpoint != "static":
            response.headers["Cache-Control"] = "no-store"
        return response
