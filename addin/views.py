"""Small helpers every blueprint shares: the acting user, htmx detection, rendering."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

from flask import Response, g, render_template, request
from flask_login import current_user
from werkzeug.routing import BaseConverter, ValidationError

from addin.database import rollback
from services.errors import DomainError
from services.models import User
from services.periods import zone_named
from services.schemas import parse_id

# The mail client's own zone, sent by the pane's script with each request: Outlook's
# ``userProfile.timeZone`` (a Windows name), or the browser's (an IANA name).
ZONE_HEADER = "X-Time-Zone"


def actor() -> User:
    """The signed-in domain user, as services expect it."""
    return current_user.user


# The request headers that choose between a page and its fragment: a response that read them
# says so (``Vary``), so that no cache hands a fragment to a browser asking for the page.
HTMX_HEADERS = ("HX-Request", "HX-Boosted", "HX-History-Restore-Request")


def is_htmx() -> bool:
    """Whether the request wants a fragment. A history restore (Back, when htmx's own cache has
    lost the page) wants the whole page, as does a boosted link."""
    g.varies_on_htmx = True
    headers = request.headers
    return (
        headers.get("HX-Request") == "true"
        and headers.get("HX-Boosted") != "true"
        and headers.get("HX-History-Restore-Request") != "true"
    )


def vary_on_htmx(response: Response) -> Response:
    """``Vary`` on the htmx headers for a response whose body depended on them (``is_htmx``)."""
    if g.pop("varies_on_htmx", False):
        for header in HTMX_HEADERS:
            response.vary.add(header)
    return response


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


class RecordIdConverter(BaseConverter):
    """``<id:deal_id>``: a record id in a URL. Only ASCII digits within the store's integer
    range match, so a Unicode digit or an id past the database's range is a plain 404."""

    regex = r"[0-9]{1,10}"
    weight = 50

    def to_python(self, value: str) -> int:
        number = parse_id(value)
        if number is None:
            raise ValidationError()
        return number

    def to_url(self, value: Any) -> str:
        return str(int(value))


def refusal_status(error: DomainError) -> int:
    """The status a refusal answers with: a bad input (the services' 400) is 422, what htmx and
    the API's callers read as "fix what you sent"; not found, forbidden and conflict keep theirs."""
    return 422 if error.status == 400 else error.status


@dataclass
class Refusal:
    """A service's refusal, caught by ``refused``: false until one happened."""

    error: DomainError | None = None

    def __bool__(self) -> bool:
        return self.error is not None

    @property
    def status(self) -> int:
        assert self.error is not None
        return refusal_status(self.error)


@contextmanager
def refused(*, of_input_only: bool = False) -> Iterator[Refusal]:
    """Run a route's service call; a refusal rolls the request's session back (nothing is left
    half-written) and is handed to the route, to show beside its form::

        with refused() as refusal:
            notice = privacy.add_entry(...)
        if refusal:
            return render_form(error=refusal.error), refusal.status
        commit()

    ``of_input_only``: a refusal that is not about the input (not found, forbidden) goes on to
    the app's handler, which answers it as any other."""
    refusal = Refusal()
    try:
        yield refusal
    except DomainError as error:
        rollback()
        if of_input_only and error.status != 400:
            raise
        refusal.error = error
