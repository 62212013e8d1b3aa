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
from services.mail import activities, contacts
from services import deals, followups
from services.mail.context import PaneContext, account_timeline, context_for_addresses, deal_row, deal_row_for
from services.deals import open_deals, pipeline_stages
from services.errors import DomainError, NotFound
from services.capture.gmail import GmailMessage, GmailUnavailable, fetch_message
from services.identity import GoogleRules, user_for_google_claims, verify_addon_request
from services.models import HandoffUse, User
from services.periods import local_today
from services.preview import sample_mailbox
from services.reports import rep_accounts, team_panel
from services.schemas import parse_id
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

    @property
    def cards(self) -> cards.CardContext:
        return cards.CardContext(self.base_url, self.time_zone)

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


def _context(event: AddonEvent, message: GmailMessage) -> PaneContext:
    return context_for_addresses(
        db(),
        event.user,
        message.addresses,
        names={message.from_address: message.from_name},
        message_id=message.internet_message_id or None,
    )


def _message_card(event: AddonEvent, message: GmailMessage, **extra: Any) -> Json:
    return cards.message_card(
        event.cards, message, _context(event, message), panel_url=_handoff_url(event, message), **extra
    )


def on_homepage(event: AddonEvent) -> Json:
    user, ctx = event.user, event.cards
    if user.sees_team:
        panel = team_panel(db(), user, local_today(user.organization.time_zone), utcnow())
        return cards.show(cards.team_card(ctx, panel, _handoff_url(event, path=url_for("reports.dashboard"))))
    now = utcnow()
    follow_ups = [(f.title, f.due_at, f.due_at < now) for f in followups.open_follow_ups(db(), user, limit=20)]
    mine = open_deals(
        db(), user.organization, {s.id: s for s in pipeline_stages(db(), user.organization_id)}, now, owners=[user.id]
    )
    warnings = deal_warnings(db(), user.organization, mine, now)
    flagged = {w.opportunity_id for w in warnings}
    rows = [
        deal_row(user, d, now, [w for w in warnings if w.opportunity_id == d.id], user, d.account_name)
        for d in mine
        if d.id in flagged
    ]
    capture_url = _handoff_url(event, path=url_for("capture.mine"))
    return cards.show(cards.rep_home_card(ctx, user.name, follow_ups, rows[:20], capture_url))


def on_message(event: AddonEvent) -> Json:
    return cards.show(_message_card(event, event.message()))


def on_compose(event: AddonEvent) -> Json:
    context = context_for_addresses(db(), event.user, event.recipients)
    return cards.show(cards.compose_card(event.cards, context))


def _acting_on_message(
    act: Callable[[AddonEvent, GmailMessage], tuple[str, int | None]],
) -> Callable[[AddonEvent], Json]:
    """An action on the opened message's card: run it, answer the card as it now is with what
    happened; a refusal rolls back and answers the card with the reason."""

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


@_acting_on_message
def on_log_email(event: AddonEvent, message: GmailMessage) -> tuple[str, int | None]:
    if not message.internet_message_id:
        raise DomainError("This message has no Message-ID, so it cannot be logged.")
    activity, created = activities.log_email(
        db(), event.user, {**message.as_email_item(), "is_private": event.inputs.get("private_email") == "1"}
    )
    return ("Email logged.", activity.id) if created else ("This email is already in the CRM.", None)


@_acting_on_message
def on_undo(event: AddonEvent, message: GmailMessage) -> tuple[str, int | None]:
    activities.undo_log(db(), event.user, _id(event, "activity_id"))
    return "Log undone.", None


@_acting_on_message
def on_rate(event: AddonEvent, message: GmailMessage) -> tuple[str, int | None]:
    activities.rate_activity(
        db(), event.user, _id(event, "activity_id"), {"rating": event.parameters.get("rating", "")}
    )
    return "Thanks for rating.", None


@_acting_on_message
def on_new_contact(event: AddonEvent, message: GmailMessage) -> tuple[str, int | None]:
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
    """What a note or follow-up is about (the services check each id against the caller)."""
    return {field: value for name, field in LINKS.items() if (value := event.parameters.get(name))}


@_acting_on_message
def on_note(event: AddonEvent, message: GmailMessage) -> tuple[str, int | None]:
    note = activities.add_note(
        db(),
        event.user,
        {"body": event.inputs.get("note", ""), "is_private": event.inputs.get("private_note") == "1", **_links(event)},
    )
    return "Note added.", note.id


@_acting_on_message
def on_follow_up(event: AddonEvent, message: GmailMessage) -> tuple[str, int | None]:
    if "due" not in event.inputs:
        raise DomainError("Choose when the follow-up is due.", {"due_at": ["Required."]})
    followups.add_follow_up(
        db(), event.user, {"title": event.inputs.get("follow_up", ""), "due_at": event.inputs["due"], **_links(event)}
    )
    return "Follow-up set.", None


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
    if event.message_id and event.load_message is not None:
        message = event.message()
        navigations = [{"popToRoot": True}, {"updateCard": _message_card(event, message, notice=notice)}]
        return {"renderActions": {"action": {"navigations": navigations, "notification": {"text": notice}}}}
    return cards.notify(notice)


def on_rep(event: AddonEvent) -> Json:
    rep, accounts = rep_accounts(db(), event.user, _id(event, "rep_id"))
    return cards.push(cards.rep_card(event.cards, rep.name, accounts))


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
    "new_contact": on_new_contact,
    "note": on_note,
    "follow_up": on_follow_up,
    "deal": on_deal,
    "stage": on_stage,
    "rep": on_rep,
    "account": on_account,
    "homepage": lambda event: _as_action(on_homepage(event)),
}


def _as_action(response: Json) -> Json:
    return {
        "renderActions": {"action": {"navigations": [{"updateCard": response["action"]["navigations"][0]["pushCard"]}]}}
    }


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
