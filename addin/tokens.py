"""Pane tokens: short-lived signed bearer tokens for panes that run where cookies do not.

Outlook on the web and Gmail run the pane in a third-party iframe, where browsers often
block cookies. After sign-in the pane holds one of these and htmx sends it as
``Authorization: Bearer`` on every request. A token names the user, their organization, their
token version and the time they signed in: raising the version (sign-out, revoke) invalidates
every token issued so far, and a refresh keeps the time of sign-in, so refreshing cannot
stretch a sign-in past ``SESSION_MAX_HOURS``.
"""

from __future__ import annotations

import time
from typing import Any

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from addin.database import db
from services.models import User
from services.users import active_user

TOKEN_MINUTES = 60


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="inboxcrm.pane-token")


def issue_token(user: User, signed_in_at: int | None = None) -> dict[str, Any]:
    """A token for ``user``; ``signed_in_at`` carries over the original sign-in on refresh."""
    signed_in_at = signed_in_at or int(time.time())
    token = _serializer().dumps({"u": user.id, "o": user.organization_id, "v": user.token_version, "a": signed_in_at})
    remaining = current_app.config["SESSION_MAX_HOURS"] * 3600 - (int(time.time()) - signed_in_at)
    return {"token": token, "token_type": "Bearer", "expires_in": max(0, min(TOKEN_MINUTES * 60, remaining))}


def within_lifetime(signed_in_at: object) -> bool:
    """A sign-in (a cookie's or a token's) is good for ``SESSION_MAX_HOURS`` from the moment the
    person signed in."""
    if not isinstance(signed_in_at, (int, float)) or isinstance(signed_in_at, bool):
        return False
    age = time.time() - signed_in_at
    return 0 <= age <= current_app.config["SESSION_MAX_HOURS"] * 3600


def claims_for_token(token: str) -> tuple[User, dict[str, Any]] | None:
    """The user a token speaks for, with its claims; None for a token that no longer works."""
    try:
        data = _serializer().loads(token, max_age=TOKEN_MINUTES * 60)
    except (BadSignature, SignatureExpired):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("u"), int) or not within_lifetime(data.get("a")):
        return None
    user = active_user(db(), data["u"])
    if user is None or user.organization_id != data.get("o") or user.token_version != data.get("v"):
        return None
    return user, data
