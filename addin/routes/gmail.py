"""The Gmail add-on (Google Workspace add-on, HTTP runtime): Google POSTs an event object, we
answer with card JSON.

Every request to ``/gmail/...`` is verified before anything is read
(``services.identity.verify_addon_request``): the bearer is the add-on's system ID token,
made out to this endpoint's URL and the deployment's service account; the user is the one
the event's user ID token names, within the organization their Workspace domain maps to. A
missing, forged, expired or misdirected token is a 401 with no data.

The handlers take an ``AddonEvent`` and answer a response dict (``addin.cards``); the preview
(``/preview/gmail/...``) runs the very same handlers for the signed-in demo user, with the
preview mailbox in place of the Gmail API, so the add-on can be tried with no Google account.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from datetime import datetime, timezone
from typing import Any, Callable

from flask import Blueprint, current_app, jsonify, redirect, request, url_for
from flask_login import login_required
from itsdangerous import BadSignature, SignatureExpired
from sqlalchemy.exc import IntegrityError
from werkzeug.wrappers import Response

from addin import cards, handoff
from addin.auth import start_session
from addin.database import commit, db, rollback, writes
from addin.oidc import google_workspaces
from addin.security import limiter, token_endpoint, verify_with_keys
from addin.views import actor, refused
from services.mail import activities, contacts, send_marks
from services import deals, followups, privacy
from services.mail.context import (
    PaneContext,
    account_timeline,
    activity_row_for,
    context_for_addresses,
    deal_row,
    deal_row_for,
)
from services.deals import open_deals, pipeline_stages
from services.errors import DomainError, NotFound
from services.capture.gmail import GmailMessage, GmailUnavailable, fetch_message
from services.identity import GoogleRules, user_for_google_claims, verify_addon_request
from services.models import LOGGED_BY_HAND, OUTCOMES_OF, HandoffUse, User
from services.notes import checklist_left, checklists
from services.periods import local_today, zone_named
from services.preview import sample_mailbox
from services.reports import rep_accounts, team_panel
from services.schemas import parse_id
from services.search import search_crm
from services.signals import deal_warnings
from services.types import utcnow

bp = Blueprint("gmail", __name__)

MAX_EVENT_BYTES = 256 * 1024
Json = dict[str, Any]


class BadEvent(Exception):
    """The event object is not one Google sends: a 422 that says what is wrong."""


@dataclass
class AddonEvent:
    user: User
    base_url: str
    parameters: dict[str, str] = field(default_factory=dict)
    inputs: dict[str, str] = field(default_factory=dict)
    message_id: str = ""
    recipients: list[str] = field(default_factory=list)
    time_zone: str = "UTC"
    load_message: Callable[[str], GmailMessage] | None = None

    @cached_property
    def cards(self) -> cards.CardContext:
        """The cards' context for this answer (one per event: what a card carries is set once)."""
        return cards.CardContext(self.base_url, self.time_zone, self.user.organization.setting("locale"))

    def message(self) -> GmailMessage:
        if not self.message_id or self.load_message is None:
            raise DomainError("Open a message first.")
        return self.load_message(self.message_id)


# -- reading the event ---------------------------------------------------------------------------


def read_event(raw: Any) -> tuple[dict[str, str], dict[str, str], dict[str, Any], str]:
    """(parameters, form inputs, the ``gmail`` object, the user's time zone) of an event."""
    if not isinstance(raw, dict):
        raise BadEvent("The event is not a JSON object.")
    common = raw.get("commonEventObject") or {}
    gmail = raw.get("gmail") or {}
    if not isinstance(common, dict) or not isinstance(gmail, dict):
        raise BadEvent("commonEventObject and gmail must be objects.")
    parameters = common.get("parameters") or {}
    if not isinstance(parameters, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in parameters.items()
    ):
        raise BadEvent("commonEventObject.parameters must map strings to strings.")
    inputs: dict[str, str] = {}
    form = common.get("formInputs") or {}
    if not isinstance(form, dict):
        raise BadEvent("commonEventObject.formInputs must be an object.")
    for name, value in form.items():
        if isinstance(name, str) and isinstance(value, dict) and (text := _input_value(value)) is not None:
            inputs[name] = text
    zone = common.get("timeZone") or {}
    time_zone = zone.get("id") if isinstance(zone, dict) and isinstance(zone.get("id"), str) else "UTC"
    return {k: v[:1000] for k, v in parameters.items()}, inputs, gmail, time_zone


def _input_value(value: dict[str, Any]) -> str | None:
    """A form input as the text the services' schemas read: the first string, or a picked
    date and time as an ISO instant (the picker answers milliseconds since the epoch)."""
    strings = value.get("stringInputs")
    if isinstance(strings, dict) and isinstance(strings.get("value"), list) and strings["value"]:
        first = strings["value"][0]
        return first[:20_000] if isinstance(first, str) else None
    for key in ("dateTimeInput", "dateInput"):
        picked = value.get(key)
        if isinstance(picked, dict) and str(picked.get("msSinceEpoch", "")).lstrip("-").isdigit():
            try:
                return datetime.fromtimestamp(int(picked["msSinceEpoch"]) / 1000, tz=timezone.utc).isoformat()
            except (OverflowError, OSError, ValueError):
                return "out of range"
    return None


def _recipients(gmail: dict[str, Any]) -> list[str]:
    found = []
    for key in ("toRecipients", "ccRecipients", "bccRecipients"):
        values = gmail.get(key) or []
        if isinstance(values, list):
            found += [v for v in values if isinstance(v, str)][:50]
    return found


# -- handlers ------------------------------------------------------------------------------------

# What the rep chose from a search for the open mail: every action of its card carries it.
CHOSEN = ("chosen_account_id", "chosen_deal_id")


def _context(event: AddonEvent, message: GmailMessage) -> PaneContext:
    return context_for_addresses(
        db(),
        event.user,
        message.addresses,
        names={message.from_address: message.from_name},
        message_id=message.internet_message_id or None,
        conversation_id=message.thread_id or None,
        chosen_account_id=parse_id(event.parameters.get("chosen_account_id") or ""),
        chosen_deal_id=parse_id(event.parameters.get("chosen_deal_id") or ""),
    )


def _message_card(event: AddonEvent, message: GmailMessage, **extra: Any) -> Json:
    context = _context(event, message)
    ctx = event.cards
    # What is chosen stays chosen (and a choice no longer valid is dropped): the context says which.
    ctx.carry = {name: str(value) for name in CHOSEN if (value := getattr(context, name))}
    return cards.message_card(ctx, message, context, panel_url=_handoff_url(event, message), **extra)


def _back_to_message(event: AddonEvent, notice: str, **extra: Any) -> Json:
    """An answer from a card pushed over the message's (a form, an activity, a deal, a search):
    back to the message's card, as it now is, with what happened."""
    return cards.to_root(_message_card(event, event.message(), notice=notice, **extra), notice)


def _has_message(event: AddonEvent) -> bool:
    return bool(event.message_id and event.load_message is not None)


def on_homepage(event: AddonEvent, notice: str | None = None, undo: Json | None = None) -> Json:
    user, ctx = event.user, event.cards
    if user.sees_team:
        panel = team_panel(db(), user, local_today(user.organization.time_zone), utcnow())
        return cards.show(cards.team_card(ctx, panel, _handoff_url(event, path=url_for("reports.dashboard"))))
    now = utcnow()
    due = followups.my_day(db(), user, now, zone_named(event.time_zone))
    accounts = followups.accounts_of(db(), due)
    items = [cards.DueItem(f.id, f.title, f.due_at, f.due_at < now, accounts.get(f.id)) for f in due]
    capture_url = _handoff_url(event, path=url_for("capture.mine"))
    # The rep's open deals with a warning (going dark, stale, neglected), as the pane lists them.
    to_look_at = [row for row in _open_deal_rows(user, user, now) if row.warnings][:20]
    return cards.show(cards.rep_home_card(ctx, user.name, items, to_look_at, capture_url, notice=notice, undo=undo))


def _open_deal_rows(viewer: User, owner: User, now: datetime) -> list[Any]:
    """``owner``'s open deals as ``viewer`` reads them, each with its warnings."""
    theirs = open_deals(
        db(),
        viewer.organization,
        {s.id: s for s in pipeline_stages(db(), viewer.organization_id)},
        now,
        owners=[owner.id],
    )
    warnings = deal_warnings(db(), viewer.organization, theirs, now)
    return [
        deal_row(viewer, d, now, [w for w in warnings if w.opportunity_id == d.id], owner, d.account_name)
        for d in theirs
    ]


def on_message(event: AddonEvent) -> Json:
    message = event.message()
    notice, error = _log_if_marked(event, message)
    return cards.show(_message_card(event, message, notice=notice, error=error))


def _log_if_marked(event: AddonEvent, message: GmailMessage) -> tuple[str | None, str | None]:
    """The rep's own mail, marked *Log when sent* in compose, is logged the first time they
    open it sent (``services.mail.send_marks``): (what happened, why it was not)."""
    if message.from_address != event.user.email or not message.internet_message_id:
        return None, None
    sent_at = _instant(message.sent_at)
    recipients = message.to + message.cc
    if send_marks.take_mark(db(), event.user, message.from_address, recipients, sent_at) is None:
        return None, None
    with refused() as refusal:
        activity, created = activities.log_email(db(), event.user, message.as_email_item())
    if refusal:  # the mark is spent all the same: the mail is not tried at every opening
        send_marks.take_mark(db(), event.user, message.from_address, recipients, sent_at)
        commit()
        return None, f"Marked to log when sent, but not logged: {cards.reason(refusal.error)}"
    commit()
    return ("Logged when you sent it." if created else "This email is already in the CRM."), None


def _instant(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text) if text else None
    except ValueError:
        return None


def on_compose(event: AddonEvent) -> Json:
    context = context_for_addresses(db(), event.user, event.recipients)
    return cards.show(cards.compose_card(event.cards, context))


def on_log_when_sent(event: AddonEvent) -> Json:
    context = context_for_addresses(db(), event.user, event.recipients)
    with refused() as refusal:
        send_marks.mark_for_sending(db(), event.user, event.recipients)
    if refusal:
        reason = cards.reason(refusal.error)
        return cards.update(cards.compose_card(event.cards, context, error=reason), reason)
    commit()
    notice = "✓ Will be logged when sent: open it from Sent once it has gone."
    return cards.update(cards.compose_card(event.cards, context, notice=notice), "Will be logged when sent.")


def _acting_on_message(
    act: Callable[[AddonEvent, GmailMessage], tuple[str, Json | None]],
) -> Callable[[AddonEvent], Json]:
    """An action on the opened message's card: run it, answer the card as it now is with what
    happened (and its Undo); a refusal rolls back and answers the card with the reason."""

    def handler(event: AddonEvent) -> Json:
        message = event.message()
        with refused() as refusal:
            notice, undo = act(event, message)
        if refusal:
            reason = cards.reason(refusal.error)
            return cards.update(_message_card(event, message, error=reason), reason)
        commit()
        return cards.update(_message_card(event, message, notice=notice, undo=undo), notice)

    return handler


def _chosen_deal(event: AddonEvent) -> dict[str, str]:
    """The deal the card's "For the deal" names: its id, "" for None; nothing when not asked."""
    picked = event.inputs.get("deal")
    if picked is None:
        return {}
    return {"opportunity_id": "" if picked == cards.NO_DEAL else picked}


@_acting_on_message
def on_log_email(event: AddonEvent, message: GmailMessage) -> tuple[str, Json | None]:
    if not message.internet_message_id:
        raise DomainError("This message has no Message-ID, so it cannot be logged.")
    item = {**message.as_email_item(), "is_private": event.inputs.get("private_email") == "1"}
    # The deal picked in "For the deal" ("" for None), else the one chosen from a search.
    picked = _chosen_deal(event)
    if deal := picked["opportunity_id"] if picked else event.parameters.get("chosen_deal_id"):
        item["opportunity_id"] = deal
    if chosen_account := event.parameters.get("chosen_account_id"):
        item["account_id"] = chosen_account  # the account chosen from a search (the service checks it)
    activity, created = activities.log_email(db(), event.user, item)
    if created:
        return "Email logged.", event.cards.action("undo", activity_id=activity.id)
    return "This email is already in the CRM.", None


@_acting_on_message
def on_undo(event: AddonEvent, message: GmailMessage) -> tuple[str, Json | None]:
    activities.undo_log(db(), event.user, _id(event, "activity_id"))
    return "Log undone.", None


def on_rate(event: AddonEvent) -> Json:
    activity = activities.rate_activity(
        db(), event.user, _id(event, "activity_id"), {"rating": event.parameters.get("rating", "")}
    )
    notice = {1: "Marked as went well.", -1: "Marked as went badly."}.get(activity.rating or 0, "Rating taken back.")
    return _after_activity_change(event, activity.id, notice)


def on_private(event: AddonEvent) -> Json:
    activity = activities.set_private(
        db(), event.user, _id(event, "activity_id"), event.parameters.get("private") == "1"
    )
    notice = "Private: only you see its subject and text." if activity.is_private else "Shared with your team again."
    return _after_activity_change(event, activity.id, notice)


def _after_activity_change(event: AddonEvent, activity_id: int, notice: str) -> Json:
    """A rating or privacy changed: the activity's card again, as it now is. Over a message,
    the message's card below it is drawn again too (its list shows ratings and privacy), so
    Back shows it as it now is; if Gmail cannot give the message now, the activity's card
    alone."""
    commit()
    row = activity_row_for(db(), event.user, activity_id)
    card = cards.activity_card(event.cards, row, notice=notice)
    if _has_message(event):
        try:
            return cards.to_root(_message_card(event, event.message()), notice, then=card)
        except GmailUnavailable:
            pass
    return cards.update(card, notice)


def on_activity(event: AddonEvent) -> Json:
    row = activity_row_for(db(), event.user, _id(event, "activity_id"))
    return cards.push(cards.activity_card(event.cards, row))


@_acting_on_message
def on_new_contact(event: AddonEvent, message: GmailMessage) -> tuple[str, Json | None]:
    address = event.parameters.get("address", "")
    if address not in message.addresses:
        raise DomainError("That address is not on this message.")
    data = {
        "email": address,
        **{key: event.inputs.get(f"{key}:{address}", "") for key in ("name", "company", "deal_name", "stage_id")},
    }
    contact, deal = contacts.create_from_sender(db(), event.user, data)
    return f"{contact.name} added" + (f" with the deal {deal.name}." if deal else "."), None


# A card's record parameters by the names the services give them.
LINKS = {"deal_id": "opportunity_id", "account_id": "account_id", "contact_id": "contact_id"}


def _links(event: AddonEvent) -> dict[str, str]:
    """What a note or follow-up is about (the services check each id against the caller): the
    card's records, with the deal the rep chose in "For the deal"."""
    links = {field: value for name, field in LINKS.items() if (value := event.parameters.get(name))}
    picked = _chosen_deal(event)
    if picked:
        links.pop("opportunity_id", None)
        links.update({k: v for k, v in picked.items() if v})
    return links


@_acting_on_message
def on_note(event: AddonEvent, message: GmailMessage) -> tuple[str, Json | None]:
    note = activities.add_note(
        db(),
        event.user,
        {"body": event.inputs.get("note", ""), "is_private": event.inputs.get("private_note") == "1", **_links(event)},
    )
    return "Note added.", event.cards.action("undo", activity_id=note.id)


@_acting_on_message
def on_follow_up(event: AddonEvent, message: GmailMessage) -> tuple[str, Json | None]:
    if "due" not in event.inputs:
        raise DomainError("Choose when the follow-up is due.", {"due_at": ["Required."]})
    follow_up = followups.add_follow_up(
        db(),
        event.user,
        {"title": event.inputs.get("follow_up", ""), "due_at": event.inputs["due"], **_links(event)},
        zone=zone_named(event.time_zone),
    )
    return "Follow-up set.", event.cards.action("follow_up_undo", follow_up_id=follow_up.id)


@_acting_on_message
def on_follow_up_undo(event: AddonEvent, message: GmailMessage) -> tuple[str, Json | None]:
    followups.undo_follow_up(db(), event.user, _id(event, "follow_up_id"))
    return "Follow-up taken back.", None


def on_follow_up_done(event: AddonEvent) -> Json:
    follow_up_id = _id(event, "follow_up_id")
    followups.complete_follow_up(db(), event.user, follow_up_id)
    commit()
    undo = event.cards.action("follow_up_reopen", follow_up_id=follow_up_id)
    return _as_action(on_homepage(event, "Follow-up done.", undo), "Follow-up done.")


def on_follow_up_reopen(event: AddonEvent) -> Json:
    followups.reopen_follow_up(db(), event.user, _id(event, "follow_up_id"))
    commit()
    return _as_action(on_homepage(event, "Follow-up open again."), "Follow-up open again.")


def on_log_form(event: AddonEvent) -> Json:
    """The form to log a call, meeting or visit with whoever the open mail is with."""
    kind, questions = _kind_logged(event)
    message = event.message()
    return cards.push(_activity_form(event, kind, questions, message, _context(event, message)))


def _kind_logged(event: AddonEvent) -> tuple[str, list[str]]:
    """The type of activity a log form is for, and its checklist's questions."""
    kind = event.parameters.get("type", "")
    if kind not in LOGGED_BY_HAND:
        raise DomainError("Choose a call, a meeting or a visit.")
    return kind, checklists(db(), event.user.organization_id).get(kind, [])


def _activity_form(
    event: AddonEvent, kind: str, questions: list[str], message: GmailMessage, context: PaneContext, **extra: Any
) -> Json:
    ctx = event.cards
    ctx.carry = {name: value for name in CHOSEN if (value := event.parameters.get(name))}
    return cards.activity_form_card(
        ctx, kind, context, questions, OUTCOMES_OF[kind], mail_subject=message.subject, **extra
    )


def on_log_activity(event: AddonEvent) -> Json:
    """Log the call, meeting or visit: with the mail's contact and account (and the deal
    chosen), through the pane's own service; the checklist questions left unanswered are named."""
    kind, questions = _kind_logged(event)
    message = event.message()
    context = _context(event, message)
    inputs = event.inputs
    answers = {q: inputs[f"answer:{n}"] for n, q in enumerate(questions) if inputs.get(f"answer:{n}", "").strip()}
    typed = (inputs.get("activity_subject") or "").strip()
    data: dict[str, Any] = {
        "type": kind,
        "answers": answers,
        "subject": typed or (message.subject if inputs.get("use_mail_subject") == "1" else None),
        "body_text": inputs.get("body_text") or None,
        "is_private": inputs.get("private_activity") == "1",
        "contact_id": context.contacts[0].id if context.contacts else None,
        "account_id": context.accounts[0].id if context.accounts else None,
        **{
            k: v
            for k, v in (("outcome", inputs.get("outcome")), ("duration_minutes", inputs.get("duration_minutes")))
            if v
        },
        **{k: v for k, v in _chosen_deal(event).items() if v},
    }
    with refused() as refusal:
        activity, _ = activities.log_activity(db(), event.user, {k: v for k, v in data.items() if v is not None})
    if refusal:
        reason = cards.reason(refusal.error)
        made = _activity_form(event, kind, questions, message, context, values=inputs, error=reason)
        return cards.update(made, reason)
    left = checklist_left(db(), event.user.organization_id, kind, activity.body_text, answers)
    notice = f"{kind.title()} logged."
    if left and left[0]:
        notice += f" Not answered: {'; '.join(left[0])}."
    commit()
    return _back_to_message(event, notice, undo=event.cards.action("undo", activity_id=activity.id))


def on_deal(event: AddonEvent) -> Json:
    deal_id = _id(event, "deal_id")
    row = deal_row_for(db(), event.user, deal_id, utcnow())
    return cards.push(cards.deal_card(event.cards, row, _stages(event)))


def on_stage(event: AddonEvent) -> Json:
    deal_id = _id(event, "deal_id")
    data = {key: event.inputs.get(key, "") for key in ("stage", "loss_reason", "final_amount")}
    with refused() as refusal:
        deal = deals.move_stage(db(), event.user, deal_id, data)
    if refusal:
        row, reason = deal_row_for(db(), event.user, deal_id, utcnow()), cards.reason(refusal.error)
        return cards.update(cards.deal_card(event.cards, row, _stages(event), error=reason), reason)
    notice = f"{deal.name}: {deal.stage.name if deal.status == 'open' else deal.status}."
    commit()
    return _after_deal_change(event, deal.name, notice, event.cards.action("undo_stage", deal_id=deal_id))


def on_undo_stage(event: AddonEvent) -> Json:
    deal = deals.undo_move(db(), event.user, _id(event, "deal_id"))
    notice = f"Undone: {deal.name} is back {'in ' + deal.stage.name if deal.status == 'open' else deal.status}."
    commit()
    return _after_deal_change(event, deal.name, notice)


def _after_deal_change(event: AddonEvent, name: str, notice: str, undo: Json | None = None) -> Json:
    """Back to the message's card with what happened, or, with no message open, a card that says it."""
    if _has_message(event):
        return _back_to_message(event, notice, undo=undo)
    return cards.update(cards.done_card(name, notice, undo), notice)


def on_search(event: AddonEvent) -> Json:
    event.cards.carry = {}
    return cards.push(cards.search_card(event.cards, search_crm(db(), event.user, event.inputs.get("q"))))


def on_choose(event: AddonEvent) -> Json:
    """The message's card for the deal or account chosen from a search (or none, cleared)."""
    message = event.message()
    made = _message_card(event, message)
    chosen = parse_id(event.parameters.get("chosen_deal_id") or "") or parse_id(
        event.parameters.get("chosen_account_id") or ""
    )
    if chosen and not event.cards.carry:
        raise NotFound("deal or account")
    return cards.to_root(made, "Chosen: what you log now goes there." if chosen else "Choice cleared.")


def on_block_list(event: AddonEvent) -> Json:
    event.cards.carry = {}
    return cards.push(cards.block_card(event.cards, privacy.block_lists(db(), event.user)))


def on_block(event: AddonEvent) -> Json:
    event.cards.carry = {}
    typed = event.inputs.get("block_value", "")
    with refused() as refusal:
        privacy.add_entry(db(), event.user, typed, organization_wide=False)
    if refusal:
        reason = cards.reason(refusal.error)
        made = cards.block_card(event.cards, privacy.block_lists(db(), event.user), error=reason, typed=typed[:300])
        return cards.update(made, reason)
    commit()
    notice = "Blocked: mail with them on it is not logged."
    return cards.update(cards.block_card(event.cards, privacy.block_lists(db(), event.user), notice=notice), notice)


def on_unblock(event: AddonEvent) -> Json:
    event.cards.carry = {}
    privacy.remove_entry(db(), event.user, _id(event, "entry_id"))
    commit()
    notice = "Taken off your never-log list."
    return cards.update(cards.block_card(event.cards, privacy.block_lists(db(), event.user), notice=notice), notice)


def on_rep(event: AddonEvent) -> Json:
    rep, accounts = rep_accounts(db(), event.user, _id(event, "rep_id"))
    return cards.push(cards.rep_card(event.cards, rep.name, accounts, _open_deal_rows(event.user, rep, utcnow())))


def on_account(event: AddonEvent) -> Json:
    account_id = _id(event, "account_id")
    timeline = account_timeline(db(), event.user, account_id)
    return cards.push(
        cards.timeline_card(
            event.cards, timeline, _handoff_url(event, path=url_for("reports.timeline", account_id=account_id))
        )
    )


def _id(event: AddonEvent, name: str) -> int:
    value = parse_id(event.parameters.get(name) or "")
    if value is None:
        raise NotFound("record")
    return value


def _stages(event: AddonEvent) -> list[tuple[int, str]]:
    return [(s.id, s.name) for s in pipeline_stages(db(), event.user.organization_id) if not s.retired]


TRIGGERS: dict[str, Callable[[AddonEvent], Json]] = {
    "homepage": on_homepage,
    "message": on_message,
    "compose": on_compose,
}
ACTIONS: dict[str, Callable[[AddonEvent], Json]] = {
    "log_email": on_log_email,
    "undo": on_undo,
    "rate": on_rate,
    "private": on_private,
    "activity": on_activity,
    "new_contact": on_new_contact,
    "note": on_note,
    "follow_up": on_follow_up,
    "follow_up_undo": on_follow_up_undo,
    "follow_up_done": on_follow_up_done,
    "follow_up_reopen": on_follow_up_reopen,
    "log_form": on_log_form,
    "log_activity": on_log_activity,
    "deal": on_deal,
    "stage": on_stage,
    "undo_stage": on_undo_stage,
    "search": on_search,
    "choose": on_choose,
    "block_list": on_block_list,
    "block": on_block,
    "unblock": on_unblock,
    "log_when_sent": on_log_when_sent,
    "rep": on_rep,
    "account": on_account,
    "homepage": lambda event: _as_action(on_homepage(event)),
}


def _as_action(response: Json, notice: str | None = None) -> Json:
    """A trigger's card as an action's answer: the card in place, with what happened."""
    return cards.update(response["action"]["navigations"][0]["pushCard"], notice)


def handle(kind: str, name: str, event: AddonEvent) -> Json:
    """Run one trigger or action; a refusal no handler caught becomes a card that says why."""
    handler = (TRIGGERS if kind == "trigger" else ACTIONS)[name]
    try:
        with refused() as refusal:
            response = handler(event)
    except GmailUnavailable as error:
        rollback()
        response = cards.notice_card("Gmail is unavailable", str(error))
        return cards.show(response) if kind == "trigger" else cards.push(response)
    if refusal:
        message = refusal.error.message
        return cards.show(cards.notice_card("Inbox CRM", message)) if kind == "trigger" else cards.notify(message)
    commit()
    return response


# -- the endpoints Google calls ------------------------------------------------------------------


def base_url() -> str:
    return current_app.config["BASE_URL"] or request.host_url.rstrip("/")


def _refused(message: str, status: int) -> tuple[Response, int]:
    return jsonify(error=message), status


def _google_request(kind: str, name: str) -> tuple[Response, int] | Response:
    config = current_app.config
    if not config["GOOGLE_SERVICE_ACCOUNT"]:
        return _refused("The Gmail add-on is not set up here.", 404)
    if request.content_length and request.content_length > MAX_EVENT_BYTES:
        return _refused("The event is too large.", 413)
    raw = request.get_json(silent=True)
    header = request.headers.get("Authorization", "")
    system_token = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else ""
    auth = raw.get("authorizationEventObject") if isinstance(raw, dict) else None
    user_token = auth.get("userIdToken") if isinstance(auth, dict) else None
    if (
        not system_token
        or not isinstance(user_token, str)
        or not user_token
        or len(system_token) + len(user_token) > 32_768
    ):
        return _refused("Google's ID tokens are missing.", 401)
    rules = GoogleRules(
        config["GOOGLE_SERVICE_ACCOUNT"], config["GOOGLE_CLIENT_IDS"], google_workspaces(), config["GOOGLE_AUDIENCE"]
    )
    claims = verify_with_keys(
        "inboxcrm.google_keys",
        config["GOOGLE_JWKS_URL"],
        lambda keys: verify_addon_request(system_token, user_token, base_url() + request.path, rules, keys),
        "A Gmail add-on request",
        "The request is not signed by Google for this add-on.",
    )
    if not isinstance(claims, dict):
        return claims
    try:
        parameters, inputs, gmail, time_zone = read_event(raw)
    except BadEvent as error:
        return _refused(str(error), 422)
    user = user_for_google_claims(db(), claims, rules.workspaces)
    commit()  # a link made, or a refusal audited
    if user is None:
        made = cards.notice_card(
            "No access yet",
            f"{claims.get('email')} has no Inbox CRM account. Ask your Inbox CRM admin to add "
            "you with this address; then open this message again.",
        )
        return jsonify(cards.show(made) if kind == "trigger" else cards.push(made))
    oauth_token = auth.get("userOAuthToken") if isinstance(auth.get("userOAuthToken"), str) else ""
    access_token = gmail.get("accessToken") if isinstance(gmail.get("accessToken"), str) else ""

    def load(message_id: str) -> GmailMessage:
        return fetch_message(config["GMAIL_API_URL"], message_id, oauth_token, access_token)

    message_id = gmail.get("messageId") if isinstance(gmail.get("messageId"), str) else ""
    if kind == "trigger" and name == "message" and not message_id:
        return _refused("gmail.messageId is missing.", 422)
    event = AddonEvent(user, base_url(), parameters, inputs, message_id[:200], _recipients(gmail), time_zone, load)
    return jsonify(handle(kind, name, event))


for _name in TRIGGERS:
    bp.add_url_rule(
        f"/gmail/{_name}",
        f"trigger_{_name}",
        token_endpoint(lambda _n=_name: _google_request("trigger", _n)),
        methods=["POST"],
    )


@bp.post("/gmail/action/<name>")
@token_endpoint
def action(name: str):
    if name not in ACTIONS:
        return _refused("No such action.", 404)
    return _google_request("action", name)


# -- the preview plays the same handlers ---------------------------------------------------------


@bp.post("/preview/gmail/trigger/<name>", defaults={"kind": "trigger"})
@bp.post("/preview/gmail/action/<name>", defaults={"kind": "action"})
@login_required
def preview(kind: str, name: str):
    """The preview's Gmail side panel: the same handlers, for the signed-in user, with the
    preview mailbox as the message source (no Google account, no Gmail API)."""
    if name not in (TRIGGERS if kind == "trigger" else ACTIONS):
        return _refused("No such trigger or action.", 404)
    try:
        parameters, inputs, gmail, time_zone = read_event(request.get_json(silent=True))
    except BadEvent as error:
        return _refused(str(error), 422)
    user = actor()
    mailbox = {item.id: item for item in sample_mailbox(db(), user)}

    def load(message_id: str) -> GmailMessage:
        item = mailbox.get(message_id)
        if item is None or item.item_type != "message":
            raise GmailUnavailable("Gmail has no such message (it may have been deleted).")
        return GmailMessage(
            item.id,
            item.id,
            item.internet_message_id,
            item.subject,
            item.from_address,
            item.from_name,
            item.to,
            item.cc,
            item.sent_at,
            None,
            item.body_text,
        )

    message_id = gmail.get("messageId") if isinstance(gmail.get("messageId"), str) else ""
    event = AddonEvent(
        user, request.host_url.rstrip("/"), parameters, inputs, message_id, _recipients(gmail), time_zone, load
    )
    return jsonify(handle(kind, name, event))


# -- "Open full panel": a single-use hand-off from the card to the htmx pane ----------------------


def _handoff_url(event: AddonEvent, message: GmailMessage | None = None, *, path: str | None = None) -> str:
    """A link that signs the user in once and opens the full pane for ``message``, or one of our
    own pages (``path``: the dashboard's charts, a whole timeline)."""
    item = None
    if message is not None:
        item = {
            "from_address": message.from_address,
            "from_name": message.from_name,
            "subject": message.subject,
            "internet_message_id": message.internet_message_id,
            "to": message.to[:20],
            "cc": message.cc[:20],
        }
    return handoff.link(event.user, event.base_url, path=path, item=item)


@bp.get("/gmail/open")
@limiter.limit("30 per minute")
@writes
def open_panel():
    """Sign in from the card's link (no second password) and show the full pane for the same
    message, or the page the card pointed to. The link lives two minutes and works once."""
    try:
        data = handoff.serializer().loads(request.args.get("t", ""), max_age=handoff.SECONDS)
    except SignatureExpired:
        return _refused("This link has expired: use Open full panel again.", 401)
    except BadSignature:
        return _refused("This link is not valid.", 401)
    page = data.get("n") if isinstance(data, dict) else None
    local_page = isinstance(page, str) and page.startswith("/") and not page.startswith("//")
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("j"), str)
        or not (isinstance(data.get("i"), dict) or local_page)
    ):
        return _refused("This link is not valid.", 401)
    session = db()
    user = session.get(User, data.get("u")) if isinstance(data.get("u"), int) else None
    if user is None or not user.is_active or user.token_version != data.get("v"):
        return _refused("This link is not valid.", 401)
    try:
        with session.begin_nested():
            session.add(HandoffUse(jti=data["j"], used_at=utcnow()))
            session.flush()
    except IntegrityError:
        rollback()
        return _refused("This link was used already: use Open full panel again.", 401)
    commit()
    start_session(user)
    if local_page:
        return redirect(page)
    item = {k: v for k, v in data["i"].items() if isinstance(v, (str, list)) and v}
    return redirect(url_for("pane.context", **item))
