"""Small helpers every blueprint shares: the acting user, htmx detection, rendering."""

from __future__ import annotations

from typing import Any

from flask import render_template, request
from flask_login import current_user

from services.models import User
from services.periods import zone_named

# The mail client's own zone, sent by the pane's script with each request: Outlook's
# ``userProfile.timeZone`` (a Windows name), or the browser's (an IANA name).
ZONE_HEADER = "X-Time-Zone"


def actor() -> User:
    """The signed-in domain user, as services expect it."""
    return current_user.user


def is_htmx() -> bool:
    return request.headers.get("HX-Request") == "true" and request.headers.get("HX-Boosted") != "true"


def page_or_fragment(page: str, fragment: str, status: int = 200, **context: Any) -> tuple[str, int]:
    """The whole page for a browser, only the fragment for htmx: one route, two views."""
    return render_template(fragment if is_htmx() else page, **context), status


def reader_zone() -> str:
    """The zone the reader types and reads times in: their mailbox's, where the pane sent it
    and it is a zone we know, else their organization's."""
    environ = request.environ  # per request (``g`` can outlive one under a test's app context)
    if "inboxcrm.reader_zone" not in environ:
        environ["inboxcrm.reader_zone"] = zone_named(request.headers.get(ZONE_HEADER)) or actor().organization.time_zone
    return environ["inboxcrm.reader_zone"]


def zone_differs() -> str | None:
    """The reader's zone when it is not their organization's (times then name their zone)."""
    zone = reader_zone()
    return zone if zone != actor().organization.time_zone else None
