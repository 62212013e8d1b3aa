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

from collections.abc import Iterable
from typing import Any

from sqlalchemy import bindparam, case, func, or_, select, update
from sqlalchemy.orm import Session

from services.models import Account, Activity, Opportunity, live
from services.signals import is_contact, is_inbound_interaction
from services.types import UTCDateTime


def _newest(model: Any, link: Any, *conditions: Any) -> Any:
    """The newest live activity linked (by ``link``) to the row of ``model`` being updated."""
    return (
        select(func.max(Activity.occurred_at))
        .where(Activity.organization_id == model.organization_id, link == model.id, live(Activity), *conditions)
        .scalar_subquery()
    )


def _deal_values() -> dict[str, Any]:
    return {
        "last_activity_at": _newest(Opportunity, Activity.opportunity_id),
        "last_inbound_at": _newest(Opportunity, Activity.opportunity_id, is_inbound_interaction()),
    }


def _account_values() -> dict[str, Any]:
    return {"last_activity_at": _newest(Account, Activity.account_id)}


def _later_of(model: Any, names: tuple[str, ...]) -> Any:
    """The record's latest times moved to the bound "when" where it is later, in one statement
    built once (bind "org", "record", "when"); a record already later is not written."""
    when = bindparam("when", type_=UTCDateTime())
    later = [getattr(model, name).is_(None) | (getattr(model, name) < when) for name in names]
    return (
        update(model)
        .where(model.organization_id == bindparam("org"), model.id == bindparam("record"), or_(*later))
        .values({name: case((moves, when), else_=getattr(model, name)) for name, moves in zip(names, later)})
    )


_LATER = {
    (Opportunity, False): _later_of(Opportunity, ("last_activity_at",)),
    (Opportunity, True): _later_of(Opportunity, ("last_activity_at", "last_inbound_at")),
    (Account, False): _later_of(Account, ("last_activity_at",)),
}


def touch(session: Session, activity: Activity, sign: int) -> None:
    """After ``activity`` was logged or restored (``sign`` 1) or undone (-1): its deal's and its
    account's latest times. A new activity can only make them later; an undone one may have
    been the latest, so they are read again from the live activities. Plain statements on the
    connection (a log's share of them is a few, each counted in every log's time); a record the
    session holds has those times expired, to be read again."""
    connection = session.connection()
    for model, record_id in ((Opportunity, activity.opportunity_id), (Account, activity.account_id)):
        if record_id is None:
            continue
        if sign < 0:
            row = (model.organization_id == activity.organization_id) & (model.id == record_id)
            # Locked first, so that the re-read below starts after any racing log of the same
            # record has committed (PostgreSQL reads each statement's own snapshot).
            connection.execute(select(model.id).where(row).with_for_update())
            values = _deal_values() if model is Opportunity else _account_values()
            connection.execute(update(model).where(row).values(**values))
            written = list(values)
        else:
            inbound = model is Opportunity and is_contact(activity.type, activity.direction, activity.outcome)
            connection.execute(
                _LATER[(model, inbound)],
                {"org": activity.organization_id, "record": record_id, "when": activity.occurred_at},
            )
            written = ["last_activity_at", "last_inbound_at"] if inbound else ["last_activity_at"]
        if (held := session.identity_map.get(session.identity_key(model, record_id))) is not None:
            session.expire(held, written)


def recompute(
    session: Session, organization_id: int, *, deals: Iterable[int] | None = None, accounts: Iterable[int] | None = None
) -> None:
    """Every deal's and account's latest times in the organization, from its live activities;
    with ``deals`` and ``accounts`` (an import's), theirs only."""
    if deals is None and accounts is None:
        session.execute(
            update(Opportunity).where(Opportunity.organization_id == organization_id).values(**_deal_values())
        )
        session.execute(update(Account).where(Account.organization_id == organization_id).values(**_account_values()))
        return
    for model, ids, values in ((Opportunity, deals, _deal_values), (Account, accounts, _account_values)):
        ids = sorted(set(ids or ()))
        for start in range(0, len(ids), 500):
            session.execute(
                update(model)
                .where(model.organization_id == organization_id, model.id.in_(ids[start : start + 500]))
                .values(**values())
                .execution_options(synchronize_session=False)
            )
