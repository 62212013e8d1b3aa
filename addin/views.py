"""Small helpers every blueprint shares: the acting user, htmx detection, rendering."""

from __future__ import annotations

from typing import Any

from flask import render_template, request
from flask_login import current_user

from services.models import User


def actor() -> User:
    """The signed-in domain user, as services expect it."""
    return current_user.user


def is_htmx() -> bool:
    return request.headers.get("HX-Request") == "true" and request.headers.get("HX-Boosted") != "true"


def page_or_fragment(page: str, fragment: str, status: int = 200, **context: Any) -> tuple[str, int]:
    """The whole page for a browser, only the fragment for htmx: one route, two views."""
    return render_template(fragment if is_htmx() else page, **context), status
