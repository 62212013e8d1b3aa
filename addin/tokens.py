"""Pane tokens: short-lived signed bearer tokens for panes that run where cookies do not.

Outlook on the web and Gmail run the pane in a third-party iframe, where browsers often
block cookies. After sign-in the pane holds one of these and htmx sends it as
``Authorization: Bearer`` on every request. A token names the user, their organization and
their token version: raising the version (``revoke``) invalidates every token issued so far.
"""

from __future__ import annotations

from typing import Any

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from addin.database import db
from services.models import User
from services.users import active_user

TOKEN_MINUTES = 60


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="inboxcrm.pane-token")


def issue_token(user: User) -> dict[str, Any]:
    token = _serializer().dumps({"u": user.id, "o": user.organization_id, "v": user.token_version})
    return {"token": token, "token_type": "Bearer", "expires_in": TOKEN_MINUTES * 60}


def user_for_token(token: str) -> User | None:
    try:
        data = _serializer().loads(token, max_age=TOKEN_MINUTES * 60)
    except (BadSignature, SignatureExpired):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("u"), int):
        return None
    user = active_user(db(), data["u"])
    if user is None or user.organization_id != data.get("o") or user.token_version != data.get("v"):
        return None
    return user


def revoke_tokens(user: User) -> None:
    user.token_version += 1
    db().commit()
