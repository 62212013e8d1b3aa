"""The latest activity of each deal and account, and a deal's latest inbound interaction, kept
on the deal and the account themselves.

Going dark, neglected deals and neglected accounts ask "when did we last hear from them" for
every open deal of an organization; asked of the activities, that is two probes per deal
(2,500 deals at scale 30). Kept here instead, like the rollups: ``touch`` runs in the same
transaction as every activity write (log: +1, undo: -1, restore: +1, from
``services.rollups.count_activity``), and ``recompute`` rebuilds them from the activities
(after an import, with the rollups). A test proves both give the same values.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from services.models import Account, Activity, Opportunity
from services.signals import is_contact, is_inbound_interaction


def _newest(model: Any, link: Any, *conditions: Any) -> Any:
    """The newest live activity linked (by ``link``) to the row of ``model`` being updated."""
    return (
        select(func.max(Activity.occurred_at))
        .where(Activity.organization_id == model.organization_id, link == model.id, Activity.deleted_at.is_(None), *conditions)
        .scalar_subquery()
    )


def _deal_values() -> dict[str, Any]:
    return {"last_activity_at": _newest(Opportunity, Activity.opportunity_id),
            "last_inbound_at": _newest(Opportunity, Activity.opportunity_id, is_inbound_interaction())}


def _account_values() -> dict[str, Any]:
    return {"last_activity_at": _newest(Account, Activity.account_id)}


def touch(session: Session, activity: Activity, sign: int) -> None:
    """After ``activity`` was logged or restored (``sign`` 1) or undone (-1): its deal's and its
    account's latest times. A new activity can only make them later; an undone one may have
    been the latest, so they are read again from the live activities."""
    when = activity.occurred_at
    targets = [(Opportunity, activity.opportunity_id), (Account, activity.account_id)]
    for model, record_id in targets:
        if record_id is None:
            continue
        row = (model.organization_id == activity.organization_id) & (model.id == record_id)
        if sign < 0:
            # Locked first, so that the re-read below starts after any racing log of the same
            # record has committed (PostgreSQL reads each statement's own snapshot).
            session.execute(select(model.id).where(row).with_for_update())
            session.execute(update(model).where(row).values(**(_deal_values() if model is Opportunity else _account_values())))
            continue
        columns = ["last_activity_at"]
        if model is Opportunity and is_contact(activity.type, activity.direction, activity.outcome):
            columns.append("last_inbound_at")
        for name in columns:
            column = getattr(model, name)
            session.execute(update(model).where(row & (column.is_(None) | (column < when))).values({name: when}))


def recompute(session: Session, organization_id: int) -> None:
    """Every deal's and account's latest times in the organization, from its live activities."""
    session.execute(update(Opportunity).where(Opportunity.organization_id == organization_id).values(**_deal_values()))
    session.execute(update(Account).where(Account.organization_id == organization_id).values(**_account_values()))
