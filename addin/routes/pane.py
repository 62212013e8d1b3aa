"""The task pane: its shell, and the context beside the open mail item.

Every action in the pane (log, note, stage, follow-up, new contact) answers with the context
re-rendered, so the rep sees the store as it now is; a refused action re-renders it with the
form's errors and what the rep typed, with status 422, which htmx is told to swap.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Mapping

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import login_required
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from addin import oidc
from addin.database import commit, db, reads_only, rollback
from addin.views import actor, is_htmx, page_or_fragment, reader_zone, zone_differs
from services.notes import checklists
from services.context import context_for_addresses
from services.errors import DomainError
from services import followups, privacy
from services.privacy import BLOCKED_MESSAGE, INTERNAL_MESSAGE
from services.schemas import parse_id
from services.search import search_crm
from services.text import sender_problem
from services.types import utcnow

bp = Blueprint("pane", __name__)

ITEM_FIELDS = ("item_type", "from_address", "from_name", "subject", "internet_message_id", "conversation_id", "sent_at", "event_id",
               "start", "end", "send_key", "chosen_account_id", "chosen_deal_id")
ITEM_LISTS = ("to", "cc", "attendees")


@dataclass
class MailItemRef:
    """The open mail item as the pane's adapter described it (headers only, no body)."""

    item_type: str = "message"
    from_address: str = ""
    from_name: str = ""
    subject: str = ""
    internet_message_id: str = ""
    conversation_id: str = ""
    sent_at: str = ""
    event_id: str = ""
    start: str = ""
    end: str = ""
    send_key: str = ""  # a sent message's key, where it was logged as it was sent (static/js/launchevent.js)
    # Not the mail client's: what the rep chose from a search for this item (``services.search``).
    chosen_account_id: str = ""
    chosen_deal_id: str = ""
    to: list[str] = field(default_factory=list)
    cc: list[str] = field(default_factory=list)
    attendees: list[str] = field(default_factory=list)

    @classmethod
    def from_values(cls, values: MultiDict[str, str]) -> MailItemRef:
        single = {name: (values.get(name) or "")[:1000] for name in ITEM_FIELDS}
        lists = {name: [v for v in values.getlist(name) if v][:50] for name in ITEM_LISTS}
        item = cls(**single, **lists)
        if item.item_type not in ("message", "appointment", "compose"):
            item.item_type = "message"
        return item

    @property
    def addresses(self) -> list[str]:
        return [self.from_address, *self.to, *self.cc, *self.attendees]

    def query(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v}

    @property
    def sender_problem(self) -> str | None:
        """Why this mail's sender is nothing to log or add (``services.text.sender_problem``)."""
        return sender_problem(self.from_address) if self.item_type == "message" else None

    @property
    def external_id(self) -> str | None:
        """The id the item is logged under (see ``log_email`` and ``log_meeting``)."""
        if self.item_type == "appointment":
            return f"event:{self.event_id}" if self.event_id else None
        return self.internet_message_id or None

    @property
    def present(self) -> bool:
        return bool(self.from_address or self.to or self.attendees)


@dataclass
class SmallAnswer:
    """What a small action changed, for its answer (``pane/_small_answer.html``) in place of
    the whole context: an activity to show again (``added``: new, put first), an element to
    take away (its id), the mail logged, a deal's card."""

    activity: Any = None
    added: bool = False
    removed: str | None = None
    logged: int | None = None  # the open mail, now logged as this activity
    deal: Any = None  # a deal to show again (an email logged to it may end its warnings), with the pipeline's ``stages``
    stages: Any = None


@dataclass
class Notice:
    """What an action says when it worked; ``undo`` names an activity the rep may take back,
    ``undo_deal`` a deal whose last move they may; ``closed``, a deal the action won or lost
    (its name and "Won" or "Lost"), which stays in view though it is no longer open;
    ``changed``, for a small action, what it changed: the pane is answered with that alone."""

    text: str
    undo: int | None = None
    undo_deal: int | None = None
    closed: tuple[str, str] | None = None
    changed: SmallAnswer | None = None


def render_context(
    item: MailItemRef,
    *,
    status: int = 200,
    form: str | None = None,
    error: DomainError | None = None,
    values: Mapping[str, Any] | None = None,
    notice: Notice | None = None,
    said_in_form: bool = False,
) -> tuple[str, int]:
    """The context for ``item``; ``form`` names the form that failed, shown with ``error``
    (``said_in_form``: the form shows every refused field's message beside it, so the pane's
    alert at the top says nothing more)."""
    context = context_for_addresses(
        db(), actor(), item.addresses, names={item.from_address: item.from_name}, message_id=item.external_id,
        conversation_id=item.conversation_id or None, chosen_account_id=parse_id(item.chosen_account_id),
        chosen_deal_id=parse_id(item.chosen_deal_id),
    )
    return page_or_fragment(
        "pane/index.html",
        "pane/_context.html",
        status,
        item=item,
        context=context,
        checklists={t: q for t, q in checklists(db(), actor().organization_id).items() if t in ("call", "meeting", "visit")},
        failed_form=form,
        error=error,
        values=values or {},
        notice=notice,
        said_in_form=said_in_form,
    )


def perform(form: str, action: Callable[[], Notice]) -> tuple[str, int] | Response:
    """Run one pane action for the item the form names, then show the context again (or, for
    a small action, only what its notice says changed, and the toast).

    Success commits and, for a plain form post, redirects (post/redirect/get). A refusal
    rolls back, so nothing is half-written, and re-renders the form with the rep's input, in
    the whole context, wherever the form meant to swap its answer.
    """
    item = MailItemRef.from_values(request.form)
    try:
        notice = action()
    except DomainError as error:
        rollback()
        status = 422 if error.status == 400 else error.status
        page, status = render_context(item, status=status, form=form, error=error, values=request.form)
        # Each thing wrong is said once: when the re-rendered form marks every refused field
        # with its message, the pane's alert would only repeat it. (Known only once rendered:
        # the form may not be there, a tampered hidden field has no place in it.)
        if error.errors and all(f'id="{form}-{name}-error"' in page for name in error.errors):
            page, status = render_context(item, status=status, form=form, error=error, values=request.form, said_in_form=True)
        return Response(page, status, headers={"HX-Retarget": "#context", "HX-Reswap": "innerHTML"})
    commit()
    if not is_htmx():
        flash(notice.text)
        return redirect(url_for("pane.context", **item.query()))
    if notice.changed is not None:
        return render_template("pane/_small_answer.html", item=item, notice=notice, **asdict(notice.changed)), 200
    return render_context(item, notice=notice)


@bp.get("/pane")
def shell() -> str:
    """The pane's shell. It holds no data, so it opens signed out too: where the mail client
    blocks cookies, the pane's script signs in with a token and asks for the context."""
    host = "preview" if request.args.get("host") == "preview" else "outlook"
    return render_template("pane/index.html", host=host, item=None, context=None, sign_in_providers=oidc.enabled())


@bp.get("/pane/header")
@login_required
def header() -> str:
    """The header for a pane that signed in after its shell loaded (by token)."""
    return render_template("pane/_header.html")


@bp.route("/pane/context", methods=["GET", "POST"])
@login_required
@reads_only
def context() -> tuple[str, int]:
    """The context for a mail item. The pane's script POSTs the item, so that its addresses and
    subject stay out of URLs and the logs that keep them; a GET with the item in its query
    serves links (and a plain form's redirect)."""
    return render_context(MailItemRef.from_values(request.form if request.method == "POST" else request.args))


@bp.get("/launch-event")
def launch_event() -> str:
    """The page Outlook on the web, on the Mac and the new Outlook load, hidden, to run the
    add-in's launch events (``OnMessageSend``); classic Outlook for Windows runs the script alone."""
    return render_template("pane/launch_event.html")


@bp.get("/pane/block-list")
@login_required
def block_list() -> tuple[str, int]:
    """The rep's own block list (and the organization's, to read): mail with anyone on them is
    never logged."""
    return _block_list()


@bp.post("/pane/block-list")
@login_required
def block() -> tuple[str, int]:
    try:
        privacy.add_entry(db(), actor(), request.form.get("value"), organization_wide=False)
    except DomainError as error:
        rollback()
        return _block_list(error=error, typed=(request.form.get("value") or "")[:300], status=422 if error.status == 400 else error.status)
    commit()
    return _block_list(notice="Blocked: mail with them on it is not logged.")


@bp.post("/pane/block-list/<id:entry_id>/delete")
@login_required
def unblock(entry_id: int) -> tuple[str, int]:
    privacy.remove_entry(db(), actor(), entry_id)
    commit()
    return _block_list(notice="Taken off your block list.")


def _block_list(*, error: DomainError | None = None, typed: str = "", notice: str | None = None, status: int = 200) -> tuple[str, int]:
    return page_or_fragment("pane/index.html", "pane/_block_list.html", status, lists=privacy.block_lists(db(), actor()), error=error,
                            typed=typed, block_notice=notice, item=None, context=None, block_page=True)


@bp.get("/pane/search")
@login_required
def search() -> tuple[str, int]:
    """Contacts, accounts and open deals matching what the rep typed, each to choose for the
    open item: its mail, a call or a note can then go to that account or deal."""
    return render_template("pane/_search_results.html", results=search_crm(db(), actor(), request.args.get("q")),
                           item=MailItemRef.from_values(request.args)), 200


@bp.get("/pane/my-day")
@login_required
def my_day() -> tuple[str, int]:
    """With no mail open: the rep's follow-ups overdue and due today."""
    now = utcnow()
    return render_template("pane/_my_day.html", follow_ups=followups.my_day(db(), actor(), now, reader_zone()), now=now), 200


@bp.app_context_processor
def pane_globals() -> dict[str, Any]:
    # The open item's fields, named once (here): the forms carry them, the pane's script sends them.
    return {"demo_sign_in": current_app.config["DEMO_SIGN_IN"], "ITEM_FIELDS": ITEM_FIELDS, "ITEM_LISTS": ITEM_LISTS,
            "zone_differs": zone_differs, "BLOCKED_MESSAGE": BLOCKED_MESSAGE,
            "INTERNAL_MESSAGE": INTERNAL_MESSAGE}
