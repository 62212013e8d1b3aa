"""Single-use links that sign a user in once (``/gmail/open``): how a Gmail card, or a pane
signed in by token where cookies are blocked, opens one of our pages in a browser window
already signed in, with no second password. A link lives ``SECONDS`` and works once (its
``j`` is recorded as used, ``HandoffUse``); a raised token version (a sign-out everywhere, a
deactivation) voids it."""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import urlencode

from flask import current_app, url_for
from itsdangerous import URLSafeTimedSerializer

from services.models import User

SECONDS = 120


def serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="inboxcrm.gmail-handoff")


def link(user: User, base_url: str, *, path: str | None = None, item: dict[str, Any] | None = None) -> str:
    """The link for ``user``: to ``path`` (one of our own pages), or the full pane for ``item``."""
    target: dict[str, Any] = {"i": item} if item is not None else {"n": path}
    token = serializer().dumps({"u": user.id, "v": user.token_version, "j": secrets.token_urlsafe(16), **target})
    return f"{base_url.rstrip('/')}{url_for('gmail.open_panel')}?{urlencode({'t': token})}"
