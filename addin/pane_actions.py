"""The pane's action plumbing, shared by every blueprint whose forms live in the pane (its
activities, contacts, deals and follow-ups): the open mail item as the pane sends it
(``MailItemRef``), what an action says when it worked (``Notice``, ``SmallAnswer``), where a
refused form says what is wrong (``RefusedForm``), and ``perform``, which runs one action and
answers the pane.

A small action (a log, a note, a call, a follow-up, a stage move, a rating, and their undos)
answers with only what it changed, swapped out of band; any other answers with the context
re-rendered, so the rep sees the store as it now is. A refused action re-renders it once,
with the form's errors and what the rep typed, with status 422, which htmx is told to swap.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from functools import cached_property
from typing import Any, Callable, Mapping

from flask import flash, redirect, render_template, request, url_for
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from addin.database import commit, db
from addin.views import actor, is_htmx, page_or_fragment, reader_zone, refused
from services import followups
from services.capture import meetings as captured_meetings, notices as deal_notices
from services.capture.mailboxes import own_mailbox
from services.deals import pipeline_stages
from services.mail.context import FollowUpRow, PaneContext, context_for_addresses
from services.errors import DomainError
from services.models import LOGGED_BY_HAND, FollowUp
from services.notes import checklists
from services.schemas import parse_id
from services.types import utcnow

ITEM_FIELDS = (
    "item_type",
    "from_address",
    "from_name",
    "subject",
    "internet_message_id",
    "conversation_id",
    "sent_at",
    "event_id",
    "start",
    "end",
    "send_key",
    "chosen_account_id",
    "chosen_deal_id",
)
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
    def external_id(self) -> str | None:
        """The id the item is logged under (see ``log_email`` and ``log_meeting``)."""
        if self.item_type == "appointment":
            return f"event:{self.event_id}" if self.event_id else None
        return self.internet_message_id or None

    @property
    def present(self) -> bool:
        """Whether a mail item is open at all: one with no sender (a draft, a broken header) is
        still open, and says why there is nothing to log rather than "Open an email"."""
        return bool(self.from_address or self.to or self.attendees or self.internet_message_id or self.subject)


@dataclass
class SmallAnswer:
    """What a small action changed, for its answer (``pane/_small_answer.html``) in place of
    the whole context: an activity to show again (``added``: new, put first), an element to
    take away (its id), the mail logged, a deal's card."""

    activity: Any = None
    added: bool = False
    removed: str | None = None
    logged: int | None = None  # the open mail, now logged as this activity
    # A deal to show again (an email logged to it may end its warnings; its stage form reads the pipeline's stages).
    deal: Any = None
    closed: tuple[int, str, str] | None = None  # a deal just won or lost: (id, name, "Won" or "Lost")
    follow_up: Any = None  # a follow-up to list first (``services.mail.context.FollowUpRow``)


@dataclass
class Notice:
    """What an action says when it worked; ``undo`` names an activity the rep may take back,
    ``undo_deal`` a deal whose last move they may, ``undo_url`` where another action is undone;
    ``changed``, for a small action, what it changed: the pane is answered with that alone (a
    deal won or lost stays in view, closed: ``SmallAnswer.closed``)."""

    text: str
    undo: int | None = None
    undo_deal: int | None = None
    undo_url: str | None = None  # any other action's own undo (a follow-up set, or marked done)
    changed: SmallAnswer | None = None


# The fields each kind of form (its name up to a dash) shows with their own message beside them.
FIELDS_SAID_BESIDE = {
    "log_activity": ("outcome", "duration_minutes"),
    "note": ("body",),
    "follow_up": ("title", "due_at"),
    "stage": ("loss_reason", "final_amount"),
    "new_contact": ("amount",),
}


@dataclass
class RefusedForm:
    """A pane form the service refused, and where each thing wrong is said, decided here once:
    a field the form shows has its own message beside it; the form's line says the rest, or
    only points at the fields when one of them says it already; the pane's alert at the top
    says it only when the form does not (the form is not in the page, or a refused field has no
    place in it, as a tampered hidden one)."""

    name: str  # the form's name, its kind up to a dash ("stage-12")
    error: DomainError
    values: Mapping[str, Any]  # what the rep typed and chose
    shown: bool  # whether the form is in the page

    @cached_property
    def beside(self) -> list[str]:
        """The refused fields said beside themselves."""
        if not self.shown:
            return []
        return [name for name in FIELDS_SAID_BESIDE.get(self.name.split("-")[0], ()) if name in self.error.errors]

    def said_beside(self, name: str) -> str | None:
        return " ".join(self.error.errors[name]) if name in self.beside else None

    @property
    def line(self) -> str:
        """The form's own line, above its fields."""
        if any(self.error.message in self.error.errors[name] for name in self.beside):
            return "Check the field marked below." if len(self.beside) == 1 else "Check the fields marked below."
        return self.error.message

    @property
    def said_in_form(self) -> bool:
        """Every refused field is said beside itself: the pane's alert would only repeat it."""
        return bool(self.error.errors) and all(name in self.beside for name in self.error.errors)


def form_shown(name: str, context: PaneContext, values: Mapping[str, Any]) -> bool:
    """Whether the pane shows the form ``name`` for this context (``pane/_context.html``): the
    actions for a known person or account, a deal's card that may be edited, the new-contact
    form of the address typed."""
    kind, _, rest = name.partition("-")
    if kind in ("log_activity", "note", "follow_up"):
        return bool(context.contacts or context.accounts)
    if kind == "stage":
        return any(str(deal.id) == rest and deal.editable for deal in context.deals)
    if kind == "new_contact":
        return any(person.address == values.get("email") for person in context.unknown)
    return False


def render_context(
    item: MailItemRef,
    *,
    status: int = 200,
    form: str | None = None,
    error: DomainError | None = None,
    values: Mapping[str, Any] | None = None,
    notice: Notice | None = None,
) -> tuple[str, int]:
    """The context for ``item``; ``form`` names the form that failed, shown with ``error`` and
    the ``values`` typed."""
    return page_or_fragment(
        "pane/index.html", "pane/_context.html", status, **_context_values(item, form, error, values, notice)
    )


# The forms whose refusal draws only their own part of the pane again: (the part, where it is).
REFUSED_PARTS = {
    "log_activity": ("actions", "#actions"),
    "note": ("actions", "#actions"),
    "follow_up": ("actions", "#actions"),
    "stage": ("deal", ""),  # the deal's card, ``#deal-<id>``
    "new_contact": ("new_contact", "#unknown-senders"),
}


def render_refused(
    item: MailItemRef, form: str, error: DomainError, values: Mapping[str, Any], status: int
) -> Response:
    """A refused form drawn again with its errors and what was typed: the form's own part
    alone (the log actions, or the deal's card) where the pane shows it, swapped in its place,
    with the alert if the form does not say it all; else the whole context."""
    page = _context_values(item, form, error, values, None)
    kind, _, rest = form.partition("-")
    refusal = page["refusal"]
    if is_htmx() and refusal is not None and refusal.shown and kind in REFUSED_PARTS:
        part, target = REFUSED_PARTS[kind]
        deal = None
        if part == "deal":  # shown: the deal is in the page (``form_shown``)
            deal = next(d for d in page["context"].deals if str(d.id) == rest)
            target = f"#deal-{rest}"
        answer = render_template("pane/_refused_part.html", part=part, deal=deal, **page)
        return Response(answer, status, headers={"HX-Retarget": target, "HX-Reswap": "outerHTML"})
    whole, _ = page_or_fragment("pane/index.html", "pane/_context.html", status, **page)
    return in_the_pane(whole, status)


def _context_values(
    item: MailItemRef,
    form: str | None,
    error: DomainError | None,
    values: Mapping[str, Any] | None,
    notice: Notice | None,
) -> dict[str, Any]:
    """What the context's templates read, for ``item`` (see ``render_context``)."""
    context = context_for_addresses(
        db(),
        actor(),
        item.addresses,
        names={item.from_address: item.from_name},
        message_id=item.external_id,
        conversation_id=item.conversation_id or None,
        chosen_account_id=parse_id(item.chosen_account_id),
        chosen_deal_id=parse_id(item.chosen_deal_id),
    )
    values = values or {}
    refusal = (
        RefusedForm(form, error, values, item.present and form_shown(form, context, values)) if form and error else None
    )
    return {
        "item": item,
        "context": context,
        "contact": context.contacts[0] if context.contacts else None,
        "account": context.accounts[0] if context.accounts else None,
        "checklists": {t: q for t, q in checklists(db(), actor().organization_id).items() if t in LOGGED_BY_HAND},
        "failed_form": form,
        "error": error,
        "refusal": refusal,
        "values": values,
        "notice": notice,
    }


def render_my_day(
    notice: str | None = None, error: DomainError | None = None, typed: dict[str, Any] | None = None
) -> str:
    """My day, what the pane shows with no mail open: the follow-ups due (each with Done, and
    opening its account), and the captured meetings held lately that ask how they went."""
    now = utcnow()
    due = followups.my_day(db(), actor(), now, reader_zone())
    accounts = followups.accounts_of(db(), due)
    return render_template(
        "pane/_my_day.html",
        item=MailItemRef(),  # none open: the forms post no mail (``open_item``)
        follow_ups=[follow_up_row(f, now, accounts.get(f.id)) for f in due],
        meetings=captured_meetings.to_ask(db(), actor(), now),
        notices=deal_notices.unseen(db(), actor()),
        mailbox=own_mailbox(db(), actor()),
        questions=captured_meetings.questions(db(), actor().organization_id),
        outcomes=captured_meetings.DEBRIEF_OUTCOMES,
        notice=notice,
        error=error,
        typed=typed or {},
    )


def follow_up_row(
    follow_up: FollowUp, now: datetime, account_id: int | None = None, owner_name: str = ""
) -> FollowUpRow:
    """One of the actor's own follow-ups as the pane lists it (``pane/_follow_up_item.html``):
    in My day with the account it opens, in a mail's context with its owner's name."""
    return FollowUpRow(
        follow_up.id, follow_up.title, follow_up.due_at, follow_up.due_at < now, owner_name, True, account_id
    )


def perform(form: str, action: Callable[[], Notice]) -> tuple[str, int] | Response:
    """Run one pane action for the item the form names, then show the context again (or, for
    a small action, only what its notice says changed, and the toast).

    Success commits and, for a plain form post, redirects (post/redirect/get). A refusal
    rolls back, so nothing is half-written, and re-renders the form with the rep's input, in
    the whole context, wherever the form meant to swap its answer.
    """
    item = MailItemRef.from_values(request.form)
    with refused() as refusal:
        notice = action()
    if refusal and not item.present and is_htmx():
        # No mail open: the action came from My day, which comes back with the refusal.
        return in_the_pane(render_my_day(error=refusal.error), refusal.status)
    if refusal:
        return render_refused(item, form, refusal.error, request.form, refusal.status)
    commit()
    if not is_htmx():
        flash(notice.text)
        return redirect(url_for("pane.context", **item.query()))
    if notice.changed is not None:
        # Its fields as they are (``asdict`` would deep-copy every row and card in it, a millisecond a log).
        changed = {f.name: getattr(notice.changed, f.name) for f in fields(notice.changed)}
        stages = pipeline_stages(db(), actor().organization_id) if notice.changed.deal is not None else None
        return render_template("pane/_small_answer.html", item=item, notice=notice, stages=stages, **changed), 200
    page, status = render_context(item, notice=notice)
    return in_the_pane(page, status)


def in_the_pane(page: str, status: int) -> Response:
    """A whole answer (the context, or My day) put in the pane, wherever the form meant to swap
    its answer (a small form swaps none)."""
    return Response(page, status, headers={"HX-Retarget": "#context", "HX-Reswap": "innerHTML"})
