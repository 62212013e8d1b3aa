"""Warned before read: a deal's owner is told when a captured mail brings the deal's health below
the organization's line (``health_alert_below``), or when the deal goes dark, without having
opened anything. The notice waits in the owner's *My day* until seen, is mailed once by the
worker, and the manager's team panel lists the team's latest.

A health notice compares the deal's health just before the mail arrived with its health once
the mail is in (``services.health``, the same rule as everywhere), and is only given for mail
of the last two days: a backfill of old mail tells nobody anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any, Callable, Iterable

from sqlalchemy import Select, bindparam, func, select
from sqlalchemy.orm import Session

from services.access import get_scoped
from services.errors import Forbidden
from services.health import healths
from services.models import IS_OPEN_DEAL, Activity, DealNotice, Opportunity, Organization, User
from services.types import UTCDateTime, one_of, utcnow

FRESH = timedelta(days=2)  # mail older than this when captured tells nobody anything
SHOWN = 5


def after_capture(session: Session, organization: Organization, activity: Activity, now: datetime) -> DealNotice | None:
    """A notice if this captured inbound mail took its deal's health below the line."""
    deal_id = activity.opportunity_id
    if deal_id is None or activity.direction != "inbound" or now - activity.occurred_at > FRESH:
        return None
    deal = session.get(Opportunity, deal_id)
    if deal is None or deal.status != "open" or deal.deleted_at is not None:
        return None
    line = int(organization.setting("health_alert_below"))
    before = healths(session, organization, [deal_id], activity.occurred_at - timedelta(seconds=1)).get(deal_id)
    after = healths(session, organization, [deal_id], now).get(deal_id)
    if before is None or after is None or not (before.score >= line > after.score):
        return None
    why = "; ".join(f.words for f in after.shown) or "its health fell"
    notice = DealNotice(
        organization_id=organization.id,
        opportunity_id=deal_id,
        owner_id=deal.owner_id,
        activity_id=activity.id,
        kind="health",
        score_before=before.score,
        score_after=after.score,
        message=f"{deal.name}: health {before.score} → {after.score} after “{(activity.subject or 'a mail')[:80]}”. {why}"[
            :500
        ],
        created_at=now,
    )
    session.add(notice)
    session.flush()
    return notice


def gone_dark(session: Session, organization: Organization, now: datetime | None = None) -> int:
    """A notice for each open deal that went dark in the last day (no inbound interaction for
    the organization's going-dark days), once per silence. Returns how many."""
    now = now or utcnow()
    days = int(organization.setting("going_dark_days"))
    quiet_since = func.coalesce(Opportunity.last_inbound_at, Opportunity.created_at)
    told = (
        select(DealNotice.id)
        .where(
            DealNotice.organization_id == organization.id,
            DealNotice.opportunity_id == Opportunity.id,
            DealNotice.kind == "dark",
            DealNotice.created_at >= quiet_since,
        )
        .correlate(Opportunity)
        .exists()
    )
    deals = session.execute(
        select(Opportunity.id, Opportunity.name, Opportunity.owner_id).where(
            Opportunity.organization_id == organization.id,
            IS_OPEN_DEAL,
            quiet_since <= now - timedelta(days=days),
            quiet_since > now - timedelta(days=days + 1),
            ~told,
        )
    ).all()
    for deal_id, name, owner_id in deals:
        session.add(
            DealNotice(
                organization_id=organization.id,
                opportunity_id=deal_id,
                owner_id=owner_id,
                kind="dark",
                message=f"{name}: no word from the customer in {days} days.",
                created_at=now,
            )
        )
    session.flush()
    return len(deals)


def unseen(session: Session, actor: User) -> list[DealNotice]:
    return list(
        session.scalars(
            select(DealNotice)
            .where(
                DealNotice.organization_id == actor.organization_id,
                DealNotice.owner_id == actor.id,
                DealNotice.seen_at.is_(None),
            )
            .order_by(DealNotice.created_at.desc())
            .limit(20)
        )
    )


def mark_seen(session: Session, actor: User, notice_id: int, now: datetime | None = None) -> DealNotice:
    notice = get_scoped(session, actor, DealNotice, notice_id, "notice")
    if notice.owner_id != actor.id:
        raise Forbidden("That notice is someone else's.")
    notice.seen_at = notice.seen_at or now or utcnow()
    session.flush()
    return notice


@dataclass
class TeamNotice:
    owner: str
    message: str
    created_at: datetime


def team_notices(
    session: Session, organization_id: int, owner_ids: Iterable[int], now: datetime, days: int = 7
) -> list[TeamNotice]:
    """The team's notices of the last week, the newest first: what the manager's panel lists."""
    rows = session.connection().execute(
        _team_notices(), {"org": organization_id, "owners": list(owner_ids), "since": now - timedelta(days=days)}
    )
    return [TeamNotice(*row) for row in rows]


@cache
def _team_notices() -> Select[Any]:
    """``team_notices``'s statement, built once (building it cost more than running it)."""
    return (
        select(User.name, DealNotice.message, DealNotice.created_at)
        .join(User, User.id == DealNotice.owner_id)
        .where(
            DealNotice.organization_id == bindparam("org"),
            one_of(DealNotice.owner_id, bindparam("owners")),
            DealNotice.created_at >= bindparam("since", type_=UTCDateTime()),
        )
        .order_by(DealNotice.created_at.desc())
        .limit(SHOWN)
    )


def mail_notices(
    session: Session,
    send: Callable[[EmailMessage], object],
    sender: str,
    link: Callable[[DealNotice], str],
    now: datetime | None = None,
) -> int:
    """Each notice not mailed yet, mailed to its owner once. Returns how many."""
    now = now or utcnow()
    sent = 0
    for notice in session.scalars(
        select(DealNotice).where(DealNotice.mailed_at.is_(None)).order_by(DealNotice.id).limit(200)
    ):
        owner = session.get(User, notice.owner_id)
        if owner is not None and owner.is_active:
            message = EmailMessage()
            message["From"], message["To"] = sender, owner.email
            message["Subject"] = f"Inbox CRM: {notice.message.split(':', 1)[0]} needs a look"
            message.set_content(f"{notice.message}\n\nOpen it: {link(notice)}\n")
            send(message)
            sent += 1
        notice.mailed_at = now
        session.commit()
    return sent
