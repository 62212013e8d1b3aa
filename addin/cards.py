"""The Gmail add-on's cards: the same view models the Outlook pane renders as HTML (the pane
context, the team panel, a rep's accounts, an account's timeline), drawn as Google's card JSON
(``google.apps.card_v1.Card``) instead.

Every button names its endpoint by full URL (``action(name)``), as the HTTP runtime requires,
and carries only record ids as parameters: the endpoint checks each against the caller's
organization and role, as every pane action does.

Nothing here reads the store or decides a rule; builders take plain data and return dicts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Iterable

from addin.filters import in_zone, money
from services.mail.context import ActivityRow, DealRow, PaneContext, Timeline
from services.capture.gmail import GmailMessage
from services.numbers import DEFAULT_LOCALE
from services.reports.panel import RepAccount, TeamPanel

Json = dict[str, Any]
MAX_TEXT = 1_000  # characters of any one text a card shows (a card has a size limit)
MAX_WIDGETS = 100  # Google draws no more on one card (``google.apps.card.v1.Card``: "up to 100 widgets per card")
CARD_REPS = 30  # reps a team card lists
CARD_SLIPPING = 5  # slipping reps a team card names
CARD_ROWS = 5  # rows of each other list a team card shows (the dashboard has them all)


@dataclass
class CardContext:
    """What every builder needs besides its data: where the endpoints are, and the reader's zone."""

    base_url: str
    time_zone: str
    locale: str = DEFAULT_LOCALE  # the reader's organization's, for amounts
    # Parameters every action of the card carries, unless it names them itself: what the rep
    # chose from a search for the open mail (its account, its deal), so every answer keeps it.
    carry: dict[str, str] = field(default_factory=dict)

    def action(self, name: str, **parameters: Any) -> Json:
        merged = {**self.carry, **parameters}
        return {
            "action": {
                "function": f"{self.base_url}/gmail/action/{name}",
                "parameters": [{"key": k, "value": str(v)} for k, v in merged.items() if v is not None],
                "loadIndicator": "SPINNER",
            }
        }

    def when(self, value: datetime | None) -> str:
        return in_zone(value, self.time_zone)

    def money(self, value: Decimal | int | None, currency: str = "") -> str:
        """An amount as the reader's organization writes it (the pane's ``money`` filter): a
        card's request carries Google's token, not a session, so the locale is the event's user's."""
        return money(value, currency, self.locale)


# -- widgets -------------------------------------------------------------------------------------


PRIVATE_CHOICE = "Private: only you see its subject and text"


def clip(text: str | None, limit: int = MAX_TEXT) -> str:
    text = (text or "").strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def escape(text: str | None) -> str:
    """Card text is a small HTML subset: anything from the store or a mail is shown as text."""
    return clip(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def paragraph(text: str) -> Json:
    return {"textParagraph": {"text": text}}


def decorated(
    text: str,
    top: str | None = None,
    bottom: str | None = None,
    button: Json | None = None,
    on_click: Json | None = None,
) -> Json:
    widget: Json = {"text": text, "wrapText": True}
    if top:
        widget["topLabel"] = top
    if bottom:
        widget["bottomLabel"] = bottom
    if button:
        widget["button"] = button
    if on_click:
        widget["onClick"] = on_click
    return {"decoratedText": widget}


def button(text: str, on_click: Json, *, filled: bool = False) -> Json:
    made: Json = {"text": text, "onClick": on_click}
    if filled:
        made["type"] = "FILLED"
    return made


def buttons(*made: Json) -> Json:
    return {"buttonList": {"buttons": list(made)}}


def text_input(
    name: str, label: str, value: str | None = None, *, multiline: bool = False, hint: str | None = None
) -> Json:
    widget: Json = {"name": name, "label": label, "type": "MULTIPLE_LINE" if multiline else "SINGLE_LINE"}
    if value:
        widget["value"] = clip(value, 500)
    if hint:
        widget["hintText"] = hint
    return {"textInput": widget}


def dropdown(name: str, label: str, options: Iterable[tuple[str, str]], selected: str | None = None) -> Json:
    return {
        "selectionInput": {
            "name": name,
            "label": label,
            "type": "DROPDOWN",
            "items": [{"text": text, "value": value, "selected": value == selected} for value, text in options],
        }
    }


def checkbox(name: str, text: str, checked: bool = False) -> Json:
    """One box to tick: its input is "1" when ticked, absent when not."""
    return {
        "selectionInput": {
            "name": name,
            "label": "",
            "type": "CHECK_BOX",
            "items": [{"text": text, "value": "1", "selected": checked}],
        }
    }


def date_time(name: str, label: str) -> Json:
    return {"dateTimePicker": {"name": name, "label": label, "type": "DATE_AND_TIME"}}


def section(widgets: list[Json], header: str | None = None, *, collapsed_after: int | None = None) -> Json:
    made: Json = {"widgets": widgets}
    if header:
        made["header"] = header
    if collapsed_after is not None and len(widgets) > collapsed_after:
        made["collapsible"] = True
        made["uncollapsibleWidgetsCount"] = collapsed_after
    return made


def card(
    title: str,
    sections: list[Json],
    *,
    subtitle: str | None = None,
    name: str | None = None,
    footer: Json | None = None,
) -> Json:
    header: Json = {"title": clip(title, 200)}
    if subtitle:
        header["subtitle"] = clip(subtitle, 200)
    made: Json = {
        "header": header,
        "sections": within_limits([s for s in sections if s["widgets"]] or [section([paragraph("Nothing to show.")])]),
    }
    if name:
        made["name"] = name
    if footer:
        made["fixedFooter"] = {"primaryButton": footer}
    return made


def within_limits(sections: list[Json]) -> list[Json]:
    """Google draws no more than ``MAX_WIDGETS`` widgets on a card and ignores the rest: a card
    that would have more ends where it must, and says where the rest is."""
    kept: list[Json] = []
    room = MAX_WIDGETS - 1  # one left for the line that says more is in the full panel
    for made in sections:
        if room <= 0:
            break
        widgets = made["widgets"][:room]
        room -= len(widgets)
        kept.append({**made, "widgets": widgets})
    if sum(len(s["widgets"]) for s in sections) > MAX_WIDGETS - 1:
        kept[-1]["widgets"].append(paragraph("More than a card holds: the full panel has the rest."))
    return kept


# -- responses -----------------------------------------------------------------------------------


def show(made: Json) -> Json:
    """A trigger's answer (homepage, opened message, compose): the card to show."""
    return {"action": {"navigations": [{"pushCard": made}]}}


def update(made: Json, notice: str | None = None) -> Json:
    """An action's answer: this card again, as it now is, with a note of what happened."""
    action: Json = {"navigations": [{"updateCard": made}]}
    if notice:
        action["notification"] = {"text": clip(notice, 300)}
    return {"renderActions": {"action": action}}


def push(made: Json) -> Json:
    """An action's answer that goes one card deeper (a deal, a rep, an account)."""
    return {"renderActions": {"action": {"navigations": [{"pushCard": made}]}}}


def to_root(made: Json, notice: str | None = None, then: Json | None = None) -> Json:
    """An action's answer from a card pushed over the root one (a form, a search, an activity):
    back to the root card, drawn again as it now is (``made``), with a note of what happened;
    ``then``, a card shown over it again (the activity just changed: the root's list says it too)."""
    action: Json = {"navigations": [{"popToRoot": True}, {"updateCard": made}]}
    if then is not None:
        action["navigations"].append({"pushCard": then})
    if notice:
        action["notification"] = {"text": clip(notice, 300)}
    return {"renderActions": {"action": action}}


def notify(text: str) -> Json:
    """An action's answer that only says something (a refusal that changes no card)."""
    return {"renderActions": {"action": {"notification": {"text": clip(text, 300)}}}}


# What a refused field is called on the cards, for a reason in plain words.
FIELD_LABELS = {
    "body": "Note",
    "title": "Follow-up",
    "due_at": "Due",
    "name": "Name",
    "email": "Address",
    "company": "Company",
    "deal_name": "New deal",
    "stage_id": "Stage",
    "stage": "Move to",
    "loss_reason": "If lost: why?",
    "final_amount": "If won: final amount",
    "rating": "Rating",
}


def reason(error: Any) -> str:
    """A ``DomainError`` as one line: each refused field named with what is wrong with it."""
    fields = [
        (FIELD_LABELS.get(name, name.replace("_", " ").capitalize()), messages[0])
        for name, messages in (error.errors or {}).items()
        if messages and name != "_schema"
    ]
    if not fields or all(message != error.message for _, message in fields):
        return error.message  # the service said it in words already
    return "; ".join(f"{label}: {message}" for label, message in fields)


def said(
    *, error: str | None = None, notice: str | None = None, undo: Json | None = None, refused: str = "Not saved"
) -> list[Json]:
    """What the last action said, at the top of the card it answers with: why it was refused,
    what it did, and the button that takes it back."""
    widgets = [paragraph(f"<b>{refused}:</b> {escape(error)}")] if error else []
    if notice:
        widgets.append(paragraph(escape(notice)))
    if undo:
        widgets.append(buttons(button("Undo", undo)))
    return widgets


def notice_card(title: str, text: str) -> Json:
    """A whole card that says one thing: no access, Gmail unavailable, a malformed event."""
    return card(title, [section([paragraph(escape(text))])])


# -- the opened message --------------------------------------------------------------------------


def message_card(
    ctx: CardContext,
    message: GmailMessage,
    context: PaneContext,
    *,
    error: str | None = None,
    notice: str | None = None,
    undo: Json | None = None,
    panel_url: str | None = None,
) -> Json:
    """Who wrote, what is open with them, and every rep action: the pane's context as a card.
    ``undo``: the action that takes back what was just done (its button is beside the notice)."""
    sections: list[Json] = []
    top = said(error=error, notice=notice, undo=undo)
    if chosen := _chosen(context):
        top.append(
            decorated(
                f"For {escape(chosen)}",
                top="Chosen from a search",
                button=button("Clear", ctx.action("choose", chosen_account_id="", chosen_deal_id="")),
            )
        )
    choice = deal_choice(context)
    if nothing := context.nothing_to_log("message", message.internet_message_id, message.from_address):
        top.append(paragraph(escape(nothing)))
    elif context.logged_activity_id:
        top.append(decorated("This email is logged.", bottom="Undo within 10 minutes of logging it."))
    else:
        top += [*choice, checkbox("private_email", PRIVATE_CHOICE)]
        top.append(buttons(button("Log this email", ctx.action("log_email"), filled=True)))
    if context.contacts or context.accounts:
        top.append(
            buttons(*(button(kind.title(), ctx.action("log_form", type=kind)) for kind in ("call", "meeting", "visit")))
        )
    sections.append(section(top))

    people = [
        decorated(
            escape(c.name),
            top=escape(c.title) if c.title else None,
            bottom=escape(", ".join(filter(None, [c.account_name, *c.addresses[:1]]))),
        )
        for c in context.contacts
    ]
    sections.append(section(people, "People", collapsed_after=4))
    for lead in context.leads:
        arrivals = [
            decorated(
                escape(clip(message or "(no message)", 300)),
                top=ctx.when(when) + (f", {escape(source)}" if source else ""),
            )
            for when, source, message in lead.arrivals
        ]
        sections.append(
            section(
                [
                    decorated(
                        escape(lead.name),
                        top="Lead",
                        bottom=escape(
                            " · ".join(filter(None, [lead.company, lead.status, lead.source.replace("_", " ")]))
                        ),
                    ),
                    *arrivals,
                ],
                "Lead",
            )
        )

    for unknown in context.unknown[:3]:
        sections.append(
            section(
                [
                    decorated(escape(unknown.address), top="Not in the CRM yet"),
                    text_input(f"name:{unknown.address}", "Name", unknown.suggested_name),
                    text_input(f"company:{unknown.address}", "Company", unknown.suggested_company or ""),
                    text_input(f"deal_name:{unknown.address}", "New deal (optional)"),
                    dropdown(
                        f"stage_id:{unknown.address}",
                        "Its stage",
                        [(str(s.id), s.name) for s in context.stages if not s.retired],
                        next((str(s.id) for s in context.stages if not s.retired), None),
                    ),
                    buttons(button("Add contact", ctx.action("new_contact", address=unknown.address))),
                ],
                f"Add {escape(unknown.suggested_name)}",
            )
        )

    deals = [
        decorated(
            escape(deal.name),
            top=f"{escape(deal.stage_name)} · {ctx.money(deal.amount, deal.currency)}{_health(deal)}",
            bottom=escape(
                "; ".join(w.message for w in deal.warnings)
                or "; ".join(f.words for f in deal.health.shown if deal.health)
                or f"{deal.days_in_stage} days in stage · {deal.owner_name}"
            ),
            button=button("Change", ctx.action("deal", deal_id=deal.id)) if deal.editable else None,
        )
        for deal in context.deals
    ]
    sections.append(section(deals, "Open deals"))

    if context.contacts or context.accounts:
        link = _link_parameters(context)
        said_for = " (for the deal chosen above)" if choice else ""
        sections.append(
            section(
                [
                    text_input("note", "Note" + said_for, multiline=True, hint="Your team reads it with the account"),
                    checkbox("private_note", PRIVATE_CHOICE),
                    buttons(button("Add note", ctx.action("note", **link))),
                    text_input("follow_up", "Follow-up" + said_for, hint="e.g. Send the revised quote"),
                    date_time("due", "Due"),
                    buttons(button("Set follow-up", ctx.action("follow_up", **link))),
                ],
                "Note or follow-up",
            )
        )

    sections.append(
        section([activity_widget(ctx, row) for row in context.activities], "Recent activity", collapsed_after=3)
    )
    sections.append(
        section(
            [
                text_input("q", "Contact, account or deal", hint="File this mail somewhere else"),
                buttons(
                    button("Find in the CRM", ctx.action("search")), button("Never-log list", ctx.action("block_list"))
                ),
            ],
            "Find",
        )
    )
    footer = button("Open full panel", {"openLink": {"url": panel_url}}) if panel_url else None
    return card(
        "Inbox CRM", sections, subtitle=message.from_name or message.from_address, name="message", footer=footer
    )


NO_DEAL = "none"  # the deal choice's "None": a dropdown's every item has a value


def deal_choice(context: PaneContext, name: str = "deal", selected: str | None = None) -> list[Json]:
    """With several open deals (or one chosen from a search), which the mail, note or follow-up
    is for: the thread's deal, else the one with the latest activity, first (as the pane)."""
    if len(context.deals) < 2 and not context.chosen_deal_id:
        return []
    chosen = selected or (str(context.default_deal_id) if context.default_deal_id else NO_DEAL)
    return [dropdown(name, "For the deal", _deal_options(context), chosen)]


def _deal_options(context: PaneContext) -> list[tuple[str, str]]:
    """The open deals to choose from, after "None"."""
    return [(NO_DEAL, "None"), *((str(d.id), d.name) for d in context.deals)]


def _chosen(context: PaneContext) -> str | None:
    """What the rep chose from a search, in words; None when nothing is chosen."""
    if context.chosen_deal_id:
        return next((d.name for d in context.deals if d.id == context.chosen_deal_id), None)
    if context.chosen_account_id:
        return next((a.name for a in context.accounts if a.id == context.chosen_account_id), None)
    return None


def _link_parameters(context: PaneContext) -> dict[str, int | None]:
    """What a note or follow-up is about: the only open deal, else the account, else the contact."""
    return {
        "deal_id": context.deals[0].id if len(context.deals) == 1 else None,
        "account_id": context.accounts[0].id if context.accounts else None,
        "contact_id": context.contacts[0].id if context.contacts else None,
    }


def activity_widget(ctx: CardContext, row: ActivityRow) -> Json:
    """One activity in a list; it opens its own card (rate it, make it private, share it again)."""
    what = _what(row)
    subject = "(private)" if row.private else escape(row.subject or (row.summary or "")[:80] or "(no subject)")
    said = ", private" if row.marked_private and not row.private else ""
    return decorated(
        subject,
        top=f"{what} · {ctx.when(row.occurred_at)}",
        bottom=f"{escape(row.owner_name)}{RATED.get(row.rating or 0, '')}{said}",
        on_click=ctx.action("activity", activity_id=row.id),
    )


RATED = {1: " · went well", -1: " · went badly"}


def _what(row: ActivityRow) -> str:
    """An activity's kind in words: "Call", "Email (inbound)"."""
    return row.type.title() + (f" ({row.direction})" if row.type == "email" else "")


def activity_card(ctx: CardContext, row: ActivityRow, *, notice: str | None = None) -> Json:
    """One activity: what it was, and what its reader may do with it: rate it (or take the
    rating back), and, its owner, make it private or share it again."""
    what = _what(row)
    widgets = said(notice=notice)
    widgets.append(
        decorated(
            "(private: only its owner sees its subject and text)"
            if row.private
            else escape(row.subject or "(no subject)"),
            top=f"{what} · {ctx.when(row.occurred_at)}",
            bottom=escape(
                " · ".join(
                    filter(
                        None,
                        [row.owner_name, (row.outcome or "").replace("_", " "), RATED.get(row.rating or 0, "")[3:]],
                    )
                )
            ),
        )
    )
    if row.summary and not row.private:
        widgets.append(paragraph(escape(clip(row.summary, 400))))
    if row.mood:
        widgets.append(decorated(escape(row.mood), top="How the customer sounded"))
    actions: list[Json] = []
    if row.editable and not row.private:
        for value, words in ((1, "Went well"), (-1, "Went badly")):
            if row.rating == value:
                actions.append(button(f"Take back “{words.lower()}”", ctx.action("rate", activity_id=row.id, rating=0)))
            else:
                actions.append(button(words, ctx.action("rate", activity_id=row.id, rating=value)))
    if row.own:
        actions.append(
            button("Share with your team again", ctx.action("private", activity_id=row.id, private=0))
            if row.marked_private
            else button("Make private", ctx.action("private", activity_id=row.id, private=1))
        )
    if actions:
        widgets.append(buttons(*actions))
    return card(what, [section(widgets)], subtitle=ctx.when(row.occurred_at), name="activity")


def activity_form_card(
    ctx: CardContext,
    kind: str,
    context: PaneContext,
    questions: list[str],
    outcomes: Iterable[str],
    *,
    mail_subject: str = "",
    values: dict[str, str] | None = None,
    error: str | None = None,
) -> Json:
    """Log a call, meeting or visit with whoever the mail is with: its outcome, minutes, deal,
    checklist answers, subject, notes; a refused one comes back with everything typed."""
    values = values or {}
    widgets = said(error=error)
    widgets.append(
        dropdown(
            "outcome",
            "Outcome",
            [("", "–"), *((o, o.replace("_", " ").capitalize()) for o in outcomes)],
            values.get("outcome", ""),
        )
    )
    widgets.append(text_input("duration_minutes", "Minutes", values.get("duration_minutes"), hint="e.g. 30"))
    if context.deals:  # as the pane's form: every open deal, the likeliest first chosen (the only one, if one)
        likeliest = context.default_deal_id or (context.deals[0].id if len(context.deals) == 1 else None)
        widgets.append(
            dropdown("deal", "Deal", _deal_options(context), values.get("deal") or str(likeliest or NO_DEAL))
        )
    for number, question in enumerate(questions):
        widgets.append(text_input(f"answer:{number}", clip(question, 200), values.get(f"answer:{number}")))
    widgets.append(text_input("activity_subject", "Subject", values.get("activity_subject")))
    if mail_subject:
        widgets.append(
            checkbox(
                "use_mail_subject",
                f"Use the mail's subject: {clip(mail_subject, 60)}",
                bool(values.get("use_mail_subject")),
            )
        )
    widgets.append(text_input("body_text", "Notes", values.get("body_text"), multiline=True))
    widgets.append(checkbox("private_activity", PRIVATE_CHOICE, bool(values.get("private_activity"))))
    widgets.append(buttons(button(f"Log the {kind}", ctx.action("log_activity", type=kind), filled=True)))
    who = context.contacts[0].name if context.contacts else context.accounts[0].name if context.accounts else ""
    return card(f"Log a {kind}", [section(widgets)], subtitle=f"With {who}" if who else None, name="log_activity")


def search_card(ctx: CardContext, results: Any) -> Json:
    """What a search found, each to choose for the open mail: the mail, a call, a note or a
    follow-up then goes to that deal or account."""
    if results.too_short:
        return card("Find in the CRM", [section([paragraph("Type at least two letters.")])], name="search")

    def choose(text: str, top: str, bottom: str, **chosen: Any) -> Json:
        return decorated(
            escape(text), top=top, bottom=escape(bottom), button=button("Choose", ctx.action("choose", **chosen))
        )

    deals = [
        choose(d.name, f"Deal · {escape(d.stage_name)}", d.account_name, chosen_deal_id=d.id, chosen_account_id="")
        for d in results.deals
    ]
    accounts = [
        choose(a.name, "Account", ", ".join(a.domains[:2]), chosen_account_id=a.id, chosen_deal_id="")
        for a in results.accounts
    ]
    people = [
        choose(
            c.name,
            "Contact",
            ", ".join(filter(None, [c.account_name, c.address])),
            chosen_account_id=c.account_id,
            chosen_deal_id="",
        )
        if c.account_id
        else decorated(escape(c.name), top="Contact, with no account", bottom=escape(c.address or ""))
        for c in results.contacts
    ]
    found = [section(deals, "Deals"), section(accounts, "Accounts"), section(people, "Contacts")]
    if results.empty:
        found = [section([paragraph(f"Nothing matches “{escape(results.query)}”.")])]
    return card("Find in the CRM", found, subtitle=clip(results.query, 100), name="search")


def block_card(
    ctx: CardContext, lists: Any, *, notice: str | None = None, error: str | None = None, typed: str = ""
) -> Json:
    """The rep's own never-log list (mail with anyone on it is never logged), and the
    organization's, to read."""
    top = said(error=error, notice=notice)
    top += [
        text_input("block_value", "An address or a domain", typed, hint="e.g. name@example.org or example.org"),
        buttons(button("Never log their mail", ctx.action("block"), filled=True)),
    ]
    own = [
        decorated(
            escape(entry.value),
            top=entry.kind.title(),
            button=button("Remove", ctx.action("unblock", entry_id=entry.id)),
        )
        for entry in lists.own
    ]
    shared = [decorated(escape(entry.value), top=entry.kind.title()) for entry in lists.organization]
    return card(
        "Never log",
        [
            section(top),
            section(own or [paragraph("Your list is empty.")], f"Yours ({len(lists.own)})", collapsed_after=10),
            section(shared, f"Your organization's ({len(lists.organization)}), set by admins", collapsed_after=5),
        ],
        subtitle="Mail with anyone on these is never logged",
        name="block_list",
    )


def done_card(title: str, notice: str, undo: Json | None = None) -> Json:
    """What an action did, with its Undo, where no other card shows it (a stage moved from a
    deal opened with no mail)."""
    return card(title, [section(said(notice=notice, undo=undo))], name="done")


def deal_card(ctx: CardContext, deal: DealRow, stages: Iterable[tuple[int, str]], *, error: str | None = None) -> Json:
    """One deal: move it to another stage, or close it as won (final amount) or lost (why)."""
    options = [(str(stage_id), name) for stage_id, name in stages] + [("won", "Won"), ("lost", "Lost")]
    widgets = said(error=error)
    widgets += [
        decorated(
            escape(deal.name),
            top=f"{escape(deal.stage_name)} · {ctx.money(deal.amount, deal.currency)}",
            bottom=f"{deal.days_in_stage} days in stage · {escape(deal.account_name)}",
        ),
        dropdown("stage", "Move to", options, str(deal.stage_id)),
        text_input("loss_reason", "If lost: why?"),
        text_input("final_amount", "If won: final amount"),
        buttons(button("Save stage", ctx.action("stage", deal_id=deal.id), filled=True)),
    ]
    return card(deal.name, [section(widgets)], subtitle="Change stage", name="deal")


def _health(deal: DealRow) -> str:
    """A deal's health after its stage and amount (``services.health``), when worked out."""
    return f" · health {deal.health.score}" if deal.health else ""


# -- compose -------------------------------------------------------------------------------------


def compose_card(
    ctx: CardContext, context: PaneContext, *, notice: str | None = None, error: str | None = None
) -> Json:
    """Beside a draft: who the recipients are, what is open with them, and *Log when sent*
    (Gmail has no send hook: the sent mail is logged when the rep next opens it)."""
    people = [
        decorated(escape(c.name), top=escape(c.account_name or ""), bottom=escape(", ".join(c.addresses[:1])))
        for c in context.contacts
    ]
    deals = [
        decorated(
            escape(d.name),
            top=f"{escape(d.stage_name)} · {ctx.money(d.amount, d.currency)}{_health(d)}",
            bottom=escape("; ".join(w.message for w in d.warnings)) or None,
        )
        for d in context.deals
    ]
    intro = said(error=error, notice=notice, refused="Not marked")
    if not notice and context.addresses and not context.internal and not context.blocked:
        intro.append(
            decorated(
                "Log when sent",
                bottom="Once sent, open it from Sent and it is logged.",
                button=button("Log when sent", ctx.action("log_when_sent"), filled=True),
            )
        )
    if not context.addresses:
        intro.append(paragraph("Add a recipient outside your organization to see what is open with them."))
    return card(
        "Inbox CRM", [section(intro), section(people, "Recipients"), section(deals, "Open deals")], name="compose"
    )


# -- the homepage: a rep's day, a manager's team -------------------------------------------------


@dataclass
class DueItem:
    """A follow-up on the rep's day: what, when, overdue or not, and the account it opens."""

    id: int
    title: str
    due_at: datetime
    overdue: bool
    account_id: int | None = None


def rep_home_card(
    ctx: CardContext,
    name: str,
    follow_ups: list[DueItem],
    deals: list[DealRow],
    capture_url: str | None = None,
    *,
    notice: str | None = None,
    undo: Json | None = None,
) -> Json:
    """The rep's day: the follow-ups overdue and due today, each with Done (and its Undo), and
    their deals that need a look."""
    top = said(notice=notice, undo=undo)
    top.append(paragraph("Open a message to see who wrote, what is open with them, and to log it."))
    due = [
        decorated(
            escape(item.title),
            top="Overdue" if item.overdue else "Due today",
            bottom=ctx.when(item.due_at),
            button=button("Done", ctx.action("follow_up_done", follow_up_id=item.id)),
            on_click=ctx.action("account", account_id=item.account_id) if item.account_id else None,
        )
        for item in follow_ups
    ]
    look = [
        decorated(
            escape(d.name),
            top=escape(d.account_name),
            bottom=escape("; ".join(w.message for w in d.warnings)),
            button=button("Change", ctx.action("deal", deal_id=d.id)) if d.editable else None,
        )
        for d in deals
    ]
    return card(
        "Inbox CRM",
        [
            section(top),
            section(due or [paragraph("Nothing due today.")], "Your day", collapsed_after=8),
            section(look, "Your deals that need a look", collapsed_after=5),
            section([buttons(button("Never-log list", ctx.action("block_list")))]),
        ],
        subtitle=name,
        name="home",
        # Automatic capture is connected and watched in the full panel (OAuth needs a browser window).
        footer=button("Automatic capture", {"openLink": {"url": capture_url}}) if capture_url else None,
    )


def team_card(ctx: CardContext, panel: TeamPanel, dashboard_url: str) -> Json:
    """The pane's team panel as a card: this week against last with calls against pro-rata
    quota, who is slipping, the deals to look at (counted by kind), those heading south, what
    owners were told, the funnel with the quarter's win rate, and the leaders. Each list shows
    its first rows within Google's widget limit and says how many there are."""
    rows = panel.rows
    if len(rows) > CARD_REPS:  # the busiest this week; the dashboard has them all
        rows = sorted(rows, key=lambda r: (-r.this_week, r.name))[:CARD_REPS]
    reps = []
    for row in rows:
        calls = f"{row.calls} calls" + (
            f" of {row.calls_target:,.0f} due by today" if row.calls_target is not None else ", no quota"
        )
        reps.append(
            decorated(
                escape(row.name),
                top=f"{row.this_week} activities this week · {row.last_week} by now last week",
                bottom=calls,
                on_click=ctx.action("rep", rep_id=row.owner_id),
            )
        )
    if len(panel.rows) > CARD_REPS:
        reps.append(paragraph(f"The {CARD_REPS} busiest of {len(panel.rows)} reps: the dashboard has them all."))

    shown = panel.slipping.first(CARD_SLIPPING)  # the steepest falls first
    slipping = [
        decorated(
            escape(d.name),
            top="Slipping",
            bottom=f"{d.recent_per_day:.1f} a working day in the last 7 days, usually {d.baseline_per_day:.1f}",
        )
        for d in shown.rows
    ]
    if shown.cut:
        slipping.append(
            paragraph(f"The {CARD_SLIPPING} steepest falls of {shown.total}: the dashboard names them all.")
        )

    alerts = panel.alerts
    look: list[Json] = []
    if alerts.total:
        counts = " · ".join(f"{kind.replace('_', ' ')}: {count}" for kind, count in panel.alert_counts.items())
        look.append(paragraph(escape(counts)))
        look += [
            decorated(
                escape(a.name), top=f"{escape(a.owner_name)} · {escape(a.account_name)}", bottom=escape(a.reasons)
            )
            for a in alerts.rows[:CARD_ROWS]
        ]
        if alerts.total > CARD_ROWS:
            look.append(paragraph(f"The first {CARD_ROWS} of {alerts.total}, the longest waiting first."))

    south = [
        decorated(
            escape(d.name),
            top=f"Health {d.health} ({d.change:+d} in 14 days) · {escape(d.owner_name)}",
            bottom=escape("; ".join(d.factors[:2]) or d.account_name),
        )
        for d in panel.health_drops.rows[:CARD_ROWS]
    ]
    told = [
        decorated(escape(n.message), top=f"{escape(n.owner)} · {ctx.when(n.created_at)}")
        for n in panel.notices[:CARD_ROWS]
    ]
    funnel = "<br>".join(f"{escape(name)}: {count}" for name, count in panel.pipeline_bars) or "No open deals."
    quarter = panel.quarter
    rate = f"{quarter.win_rate:.0%}" if quarter.win_rate is not None else "none closed yet"
    pipeline = [
        paragraph(funnel),
        decorated(
            f"Win rate this quarter: {rate}",
            top=f"Weighted pipeline {ctx.money(panel.weighted)}",
            bottom=f"{quarter.won} won, {quarter.lost} lost",
        ),
    ]
    leaders = [
        decorated(
            f"{leader.rank}. {escape(leader.name)}", bottom=f"{ctx.money(leader.won_amount)} · {leader.won_deals} won"
        )
        for leader in panel.leaders.rows[:CARD_ROWS]
    ]
    footer = button("Open the dashboard (charts, pipeline, win rate)", {"openLink": {"url": dashboard_url}})
    return card(
        "Your team",
        [
            section(reps, "This week against last", collapsed_after=8),
            section(slipping, "Who is slipping", collapsed_after=5),
            section(look, f"Deals to look at ({alerts.total})", collapsed_after=3),
            section(south, "Heading south", collapsed_after=3),
            section(told, "Told their owners this week", collapsed_after=2),
            section(pipeline, "Pipeline and conversion"),
            section(leaders, "Leaders this quarter", collapsed_after=3),
        ],
        name="team",
        footer=footer,
    )


def rep_card(ctx: CardContext, rep_name: str, accounts: list[RepAccount], deals: list[DealRow]) -> Json:
    """One rep of the team: their open deals, and the accounts they work, each to its timeline."""
    open_deals = [
        decorated(
            escape(d.name),
            top=f"{escape(d.stage_name)} · {ctx.money(d.amount, d.currency)}{_health(d)}",
            bottom=escape(
                "; ".join(w.message for w in d.warnings) or f"{d.days_in_stage} days in stage · {d.account_name}"
            ),
        )
        for d in deals[:40]
    ]
    rows = [
        decorated(
            escape(a.name),
            top=f"{a.open_deals} open deals",
            bottom=f"Last activity {ctx.when(a.last_activity)}" if a.last_activity else "No activity yet",
            on_click=ctx.action("account", account_id=a.id),
        )
        for a in accounts[:50]
    ]
    return card(
        rep_name,
        [
            section(open_deals, f"Open deals ({len(deals)})", collapsed_after=5),
            section(rows, f"Accounts ({len(accounts)})", collapsed_after=10),
        ],
        subtitle="Deals and accounts",
        name="rep",
    )


def timeline_card(ctx: CardContext, timeline: Timeline, panel_url: str | None = None) -> Json:
    rows = [activity_widget(ctx, row) for row in timeline.activities[:30]]
    footer = button("Open the whole timeline", {"openLink": {"url": panel_url}}) if panel_url else None
    return card(timeline.account.name, [section(rows, "Timeline")], subtitle="Timeline", name="timeline", footer=footer)
