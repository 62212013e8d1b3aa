"""The Gmail add-on's cards: the same view models the Outlook pane renders as HTML (the pane
context, the team panel, a rep's accounts, an account's timeline), drawn as Google's card JSON
(``google.apps.card_v1.Card``) instead.

Every button names its endpoint by full URL (``action(name)``), as the HTTP runtime requires,
and carries only record ids as parameters: the endpoint checks each against the caller's
organization and role, as every pane action does.

Nothing here reads the store or decides a rule; builders take plain data and return dicts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable

from addin.filters import in_zone, money
from services.mail.context import ActivityRow, DealRow, PaneContext, Timeline
from services.capture.gmail import GmailMessage
from services.reports.panel import RepAccount, TeamPanel

Json = dict[str, Any]
MAX_TEXT = 1_000  # characters of any one text a card shows (a card has a size limit)
CARD_REPS = 50  # reps a team card lists
CARD_SLIPPING = 10  # slipping reps a team card names


@dataclass
class CardContext:
    """What every builder needs besides its data: where the endpoints are, and the reader's zone."""

    base_url: str
    time_zone: str

    def action(self, name: str, **parameters: Any) -> Json:
        return {
            "action": {
                "function": f"{self.base_url}/gmail/action/{name}",
                "parameters": [{"key": k, "value": str(v)} for k, v in parameters.items() if v is not None],
                "loadIndicator": "SPINNER",
            }
        }

    def when(self, value: datetime | None) -> str:
        return in_zone(value, self.time_zone)


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


def checkbox(name: str, text: str) -> Json:
    """One box to tick: its input is "1" when ticked, absent when not."""
    return {
        "selectionInput": {
            "name": name,
            "label": "",
            "type": "CHECK_BOX",
            "items": [{"text": text, "value": "1", "selected": False}],
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
        "sections": [s for s in sections if s["widgets"]] or [section([paragraph("Nothing to show.")])],
    }
    if name:
        made["name"] = name
    if footer:
        made["fixedFooter"] = {"primaryButton": footer}
    return made


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
    undo: int | None = None,
    panel_url: str | None = None,
) -> Json:
    """Who wrote, what is open with them, and every rep action: the pane's context as a card."""
    sections: list[Json] = []
    top: list[Json] = []
    if error:
        top.append(paragraph(f"<b>Not saved:</b> {escape(error)}"))
    if notice:
        top.append(paragraph(escape(notice)))
    if undo:
        top.append(buttons(button("Undo", ctx.action("undo", activity_id=undo))))
    if nothing := context.nothing_to_log("message", message.internet_message_id, message.from_address):
        top.append(paragraph(escape(nothing)))
    elif context.logged_activity_id:
        top.append(decorated("This email is logged.", bottom="Undo within 10 minutes of logging it."))
    else:
        top.append(checkbox("private_email", PRIVATE_CHOICE))
        top.append(buttons(button("Log this email", ctx.action("log_email"), filled=True)))
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
        said = [
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
                    *said,
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
            top=f"{escape(deal.stage_name)} · {money(deal.amount, deal.currency)}{_health(deal)}",
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
        sections.append(
            section(
                [
                    text_input("note", "Note", multiline=True, hint="Your team reads it with the account"),
                    checkbox("private_note", PRIVATE_CHOICE),
                    buttons(button("Add note", ctx.action("note", **link))),
                    text_input("follow_up", "Follow-up", hint="e.g. Send the revised quote"),
                    date_time("due", "Due"),
                    buttons(button("Set follow-up", ctx.action("follow_up", **link))),
                ],
                "Note or follow-up",
            )
        )

    sections.append(
        section([activity_widget(ctx, row) for row in context.activities], "Recent activity", collapsed_after=3)
    )
    footer = button("Open full panel", {"openLink": {"url": panel_url}}) if panel_url else None
    return card(
        "Inbox CRM", sections, subtitle=message.from_name or message.from_address, name="message", footer=footer
    )


def _link_parameters(context: PaneContext) -> dict[str, int | None]:
    """What a note or follow-up is about: the only open deal, else the account, else the contact."""
    return {
        "deal_id": context.deals[0].id if len(context.deals) == 1 else None,
        "account_id": context.accounts[0].id if context.accounts else None,
        "contact_id": context.contacts[0].id if context.contacts else None,
    }


def activity_widget(ctx: CardContext, row: ActivityRow) -> Json:
    what = row.type.title() + (f" ({row.direction})" if row.type == "email" else "")
    subject = "(private)" if row.private else escape(row.subject or (row.summary or "")[:80] or "(no subject)")
    rating = {1: " · went well", -1: " · went badly"}.get(row.rating or 0, "")
    rate = None
    if row.editable and not row.private:
        value = 0 if row.rating == 1 else 1
        rate = button(
            "Went badly" if row.rating == 1 else "Went well", ctx.action("rate", activity_id=row.id, rating=value or -1)
        )
    return decorated(
        subject, top=f"{what} · {ctx.when(row.occurred_at)}", bottom=f"{escape(row.owner_name)}{rating}", button=rate
    )


def deal_card(ctx: CardContext, deal: DealRow, stages: Iterable[tuple[int, str]], *, error: str | None = None) -> Json:
    """One deal: move it to another stage, or close it as won (final amount) or lost (why)."""
    options = [(str(stage_id), name) for stage_id, name in stages] + [("won", "Won"), ("lost", "Lost")]
    widgets = [
        decorated(
            escape(deal.name),
            top=f"{escape(deal.stage_name)} · {money(deal.amount, deal.currency)}",
            bottom=f"{deal.days_in_stage} days in stage · {escape(deal.account_name)}",
        )
    ]
    if error:
        widgets.insert(0, paragraph(f"<b>Not saved:</b> {escape(error)}"))
    widgets += [
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


def compose_card(ctx: CardContext, context: PaneContext) -> Json:
    """Beside a draft: who the recipients are and what is open with them."""
    people = [
        decorated(escape(c.name), top=escape(c.account_name or ""), bottom=escape(", ".join(c.addresses[:1])))
        for c in context.contacts
    ]
    deals = [
        decorated(
            escape(d.name),
            top=f"{escape(d.stage_name)} · {money(d.amount, d.currency)}{_health(d)}",
            bottom=escape("; ".join(w.message for w in d.warnings)) or None,
        )
        for d in context.deals
    ]
    intro = (
        []
        if context.addresses
        else [paragraph("Add a recipient outside your organization to see what is open with them.")]
    )
    return card(
        "Inbox CRM", [section(intro), section(people, "Recipients"), section(deals, "Open deals")], name="compose"
    )


# -- the homepage: a rep's day, a manager's team -------------------------------------------------


def rep_home_card(
    ctx: CardContext,
    name: str,
    follow_ups: list[tuple[str, datetime, bool]],
    deals: list[DealRow],
    capture_url: str | None = None,
) -> Json:
    due = [
        decorated(escape(title), top="Overdue" if overdue else "Due", bottom=ctx.when(at))
        for title, at, overdue in follow_ups
    ]
    look = [
        decorated(escape(d.name), top=escape(d.account_name), bottom=escape("; ".join(w.message for w in d.warnings)))
        for d in deals
    ]
    intro = paragraph("Open a message to see who wrote, what is open with them, and to log it.")
    return card(
        "Inbox CRM",
        [
            section([intro]),
            section(due, "Your follow-ups", collapsed_after=5),
            section(look, "Your deals that need a look", collapsed_after=5),
        ],
        subtitle=name,
        name="home",
        # Automatic capture is connected and watched in the full panel (OAuth needs a browser window).
        footer=button("Automatic capture", {"openLink": {"url": capture_url}}) if capture_url else None,
    )


def team_card(ctx: CardContext, panel: TeamPanel, dashboard_url: str) -> Json:
    """The team panel: this week against last, calls against pro-rata quota, who is slipping,
    the deals going dark; each rep opens their accounts."""
    rows = panel.rows
    if len(rows) > CARD_REPS:  # a card has a size limit: the busiest this week, the rest in the dashboard
        rows = sorted(rows, key=lambda r: (-r.this_week, r.name))[:CARD_REPS]
    reps = []
    for row in rows:
        calls = f"{row.calls} calls" + (
            f" of {row.calls_target:,.0f} due so far" if row.calls_target is not None else ""
        )
        reps.append(
            decorated(
                escape(row.name),
                top=f"{row.this_week} this week · {row.last_week} last week",
                bottom=calls,
                on_click=ctx.action("rep", rep_id=row.owner_id),
            )
        )
    shown = panel.slipping.first(CARD_SLIPPING)  # the steepest falls first
    slipping = [
        decorated(
            escape(d.name),
            top="Slipping",
            bottom=f"{d.recent_per_day:.1f} a day in the last 7 days against {d.baseline_per_day:.1f} before",
        )
        for d in shown.rows
    ]
    if shown.cut:
        slipping.append(
            paragraph(f"The {CARD_SLIPPING} steepest falls of {shown.total}: the dashboard names them all.")
        )
    dark = [
        decorated(escape(a.name), top=f"{escape(a.owner_name)} · {escape(a.account_name)}", bottom=escape(a.reasons))
        for a in panel.alerts.rows
        if "going_dark" in a.kinds
    ]
    footer = button("Open the dashboard (charts, pipeline, win rate)", {"openLink": {"url": dashboard_url}})
    return card(
        "Your team",
        [
            section(
                reps
                + (
                    [paragraph(f"The {CARD_REPS} busiest of {len(panel.rows)} reps: the dashboard has them all.")]
                    if len(panel.rows) > CARD_REPS
                    else []
                ),
                "This week against last",
                collapsed_after=8,
            ),
            section(slipping, "Who is slipping", collapsed_after=5),
            section(dark[:20], f"Deals going dark ({len(dark)})", collapsed_after=5),
        ],
        name="team",
        footer=footer,
    )


def rep_card(ctx: CardContext, rep_name: str, accounts: list[RepAccount]) -> Json:
    rows = [
        decorated(
            escape(a.name),
            top=f"{a.open_deals} open deals",
            bottom=f"Last activity {ctx.when(a.last_activity)}" if a.last_activity else "No activity yet",
            on_click=ctx.action("account", account_id=a.id),
        )
        for a in accounts[:50]
    ]
    return card(rep_name, [section(rows, f"Accounts ({len(accounts)})")], subtitle="Accounts", name="rep")


def timeline_card(ctx: CardContext, timeline: Timeline, panel_url: str | None = None) -> Json:
    rows = [activity_widget(ctx, row) for row in timeline.activities[:30]]
    footer = button("Open the whole timeline", {"openLink": {"url": panel_url}}) if panel_url else None
    return card(timeline.account.name, [section(rows, "Timeline")], subtitle="Timeline", name="timeline", footer=footer)
