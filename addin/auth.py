"""Sign-in: Flask-Login over the domain's users.

The embedded default signs in with a local password (or, in the preview, the demo picker).
Token sign-in from inside the mail client (Office SSO, Google ID tokens) comes as a second
way in: a ``request_loader`` that verifies the bearer token and resolves the user through
``services.users.user_for_identity``; nothing after sign-in needs to know which way was used.
"""

from __future__ import annotations

from flask import Flask
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


def init_app(app: Flask) -> None:
    login_manager.init_app(app)
