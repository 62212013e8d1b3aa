"""Deals (opportunities) and their way through the pipeline.

Every move writes one ``StageChange``; that history is what stage conversion is computed
from. Won and lost are statuses, not stages: a won deal keeps the stage it was won from.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Iterable, Mapping

from sqlalchemy import BigInteger, bindparam, case, distinct, event, func, literal, select, update
from sqlalchemy.orm import Session

from services.access import UNDO_MINUTES, get_scoped, require_edit
from services.audit import record_event, snapshot
from services.errors import DomainError
from services.models import Account, Contact, Opportunity, Organization, Stage, StageChange, User
from services.schemas import DealSchema, MoveStageSchema, load, parse_id
from services.signals import OpenDeal, warning_days, warning_facts, warning_parameters
from services.types import as_utc, utcnow

DEAL_FIELDS = ("name", "amount", "stage_id", "status", "loss_reason", "closed_at", "owner_id")


_STAGES = (
    select(
        Stage.id,
        Stage.name,
        Stage.position,
        Stage.probability,
        Stage.sla_days,
        Stage.retired_at.is_not(None).label("retired"),
    )
    .where(Stage.organization_id == bindparam("org"))
    .order_by(Stage.position)
)


_HELD = "inboxcrm.stages"  # session.info: the stages read in the session's transaction, by organization


def pipeline_stages(session: Session, organization_id: int) -> list[Any]:
    """The organization's stages in pipeline order, as plain read-only rows (``id``, ``name``,
    ``position``, ``probability``, ``sla_days``): every caller reads them, none changes them.
    Read once per transaction: the pane's deal cards, their warnings and their health each
    need them. A flush that writes a stage, and the transaction's end, forget them."""
    held = session.info.setdefault(_HELD, {})
    if (stages := held.get(organization_id)) is None:
        stages = held[organization_id] = session.connection().execute(_STAGES, {"org": organization_id}).all()
    return list(stages)


def _forget_stages(session: Session, *_: Any) -> None:
    session.info.pop(_HELD, None)


def _forget_written_stages(session: Session, *_: Any) -> None:
    if any(
        isinstance(record, Stage) for changed in (session.new, session.dirty, session.deleted) for record in changed
    ):
        _forget_stages(session)


def install(session_class: type[Session] = Session) -> None:
    """Keep ``pipeline_stages`` to one read per transaction for sessions of this class."""
    if not event.contains(session_class, "before_flush", _forget_written_stages):
        event.listen(session_class, "before_flush", _forget_written_stages)
        for name in ("after_commit", "after_rollback", "after_soft_rollback"):
            event.listen(session_class, name, _forget_stages)


def _open_deals_by(column: Any) -> Any:
    facts = warning_facts(column.in_(bindparam("ids", expanding=True)))
    return (
        select(
            Opportunity.id,
            Opportunity.name,
            Opportunity.amount,
            Opportunity.status,
            Opportunity.created_at,
            Opportunity.stage_entered_at,
            Opportunity.stage_id,
            Account.name.label("account_name"),
            Opportunity.owner_id,
            Opportunity.currency,
            *warning_days(facts),
        )
        .join(facts, facts.c.deal_id == Opportunity.id)
        .join(Account, Account.id == Opportunity.account_id)
        .order_by(Opportunity.created_at.desc(), Opportunity.id.desc())
    )


# Built once: the pane asks for these on every mail opened.
_OPEN_DEALS = {"accounts": _open_deals_by(Opportunity.account_id), "owners": _open_deals_by(Opportunity.owner_id)}


def open_deals(
    session: Session,
    organization: Organization,
    stages: Mapping[int, Stage],
    now: datetime,
    *,
    accounts: Iterable[int] = (),
    owners: Iterable[int] = (),
) -> list[OpenDeal]:
    """The open deals of some accounts, or of some owners, newest first, as plain rows, with
    their warnings' days (``services.signals.warning_days``) as of ``now``."""
    by, ids = ("accounts", list(accounts)) if accounts else ("owners", list(owners))
    if not ids:
        return []
    return [
        OpenDeal(
            row.id,
            row.name,
            row.amount,
            row.status,
            as_utc(row.created_at),
            as_utc(row.stage_entered_at),
            stages[row.stage_id],
            row.account_name,
            row.owner_id,
            row.currency,
            (row.dark_days, row.stale_days, row.neglected_days),
        )
        for row in session.execute(_OPEN_DEALS[by], warning_parameters(organization, now) | {"ids": ids})
    ]


def open_stage(session: Session, actor: User, stage_id: Any) -> Stage:
    """A stage of the actor's organization that takes deals: a retired one takes none."""
    stage = get_scoped(session, actor, Stage, stage_id, "stage")
    if stage.retired_at is not None:
        raise DomainError(f"{stage.name} is retired: choose another stage.", {"stage": ["This stage is retired."]})
    return stage


def create_opportunity(
    session: Session, actor: User, data: Mapping[str, Any], *, now: datetime | None = None
) -> Opportunity:
    values = load(DealSchema, data, locale=actor.organization.setting("locale"))
    now = now or utcnow()
    account = get_scoped(session, actor, Account, values["account_id"], "account")
    contact = get_scoped(session, actor, Contact, values["contact_id"], "contact") if values.get("contact_id") else None
    stage = open_stage(session, actor, values["stage_id"])
    deal = Opportunity(
        organization_id=actor.organization_id,
        name=values["name"].strip(),
        account=account,
        contact=contact,
        owner_id=actor.id,
        amount=values["amount"],
        currency=actor.organization.currency,
        expected_close_date=values.get("expected_close_date"),
        source=values.get("source"),
        stage=stage,
        status="open",
        stage_entered_at=now,
        created_at=now,
    )
    stage_entered(deal, stage, "open")
    session.add(deal)
    session.flush()
    # The first stage change records where the deal entered the pipeline.
    session.add(
        StageChange(
            organization_id=actor.organization_id,
            opportunity_id=deal.id,
            from_stage_id=None,
            to_stage_id=stage.id,
            from_status=None,
            to_status="open",
            changed_at=now,
            changed_by_id=actor.id,
        )
    )
    record_event(session, actor, "create", deal, after=snapshot(deal, DEAL_FIELDS))
    return deal


def move_stage(
    session: Session, actor: User, opportunity_id: int, data: Mapping[str, Any], *, now: datetime | None = None
) -> Opportunity:
    """Move a deal to another stage, or close it as won (with the final amount) or lost
    (with a reason). Moving a closed deal to a stage reopens it."""
    values = load(MoveStageSchema, data, locale=actor.organization.setting("locale"))
    now = now or utcnow()
    deal = get_scoped(session, actor, Opportunity, opportunity_id, "deal", for_update=True)
    require_edit(actor, deal.owner)
    before = snapshot(deal, DEAL_FIELDS)
    from_stage_id, from_status = deal.stage_id, deal.status
    was = {
        "from_amount": deal.amount,
        "from_loss_reason": deal.loss_reason,
        "from_closed_at": deal.closed_at,
        "from_stage_entered_at": deal.stage_entered_at,
    }
    target = values["stage"]

    if target == "won":
        if deal.status == "won":
            raise DomainError("This deal is already won.")
        if values.get("final_amount") is None:
            raise DomainError("Enter the final amount of the won deal.", {"final_amount": ["Required to mark as won."]})
        deal.status, deal.closed_at, deal.loss_reason = "won", now, None
        deal.amount = Decimal(values["final_amount"])
    elif target == "lost":
        if deal.status == "lost":
            raise DomainError("This deal is already lost.")
        reason = (values.get("loss_reason") or "").strip()
        if not reason:
            raise DomainError("Say why the deal was lost.", {"loss_reason": ["Say why the deal was lost."]})
        reasons = actor.organization.setting("loss_reasons")
        if reasons and reason not in reasons:
            raise DomainError(
                "Choose one of the organization's loss reasons.", {"loss_reason": ["Choose a reason from the list."]}
            )
        deal.status, deal.closed_at, deal.loss_reason = "lost", now, reason
    else:
        stage_id = parse_id(target)
        if stage_id is None:
            raise DomainError("Choose a stage.", {"stage": ["Unknown stage."]})
        stage = open_stage(session, actor, stage_id)
        if stage.id == deal.stage_id and deal.status == "open":
            raise DomainError(f"The deal is already in {stage.name}.", {"stage": ["Already in this stage."]})
        deal.stage, deal.stage_entered_at = stage, now
        deal.status, deal.closed_at, deal.loss_reason = "open", None, None

    stage_entered(deal, deal.stage, deal.status)
    session.add(
        StageChange(
            organization_id=actor.organization_id,
            opportunity_id=deal.id,
            from_stage_id=from_stage_id,
            to_stage_id=deal.stage.id,
            from_status=from_status,
            to_status=deal.status,
            changed_at=now,
            changed_by_id=actor.id,
            **was,
        )
    )
    session.flush()
    record_event(session, actor, "move_stage", deal, before=before, after=snapshot(deal, DEAL_FIELDS))
    return deal


def undo_move(session: Session, actor: User, opportunity_id: int, *, now: datetime | None = None) -> Opportunity:
    """Take back the deal's last move (a stage, won, lost, a reopening): only the rep who made
    it, only within ``UNDO_MINUTES``. The deal is put back as it was and the move's record
    removed, so that stage conversion counts only what stood; the audit trail keeps both."""
    now = now or utcnow()
    deal = get_scoped(session, actor, Opportunity, opportunity_id, "deal", for_update=True)
    require_edit(actor, deal.owner)
    last = session.scalars(
        select(StageChange)
        .where(StageChange.organization_id == actor.organization_id, StageChange.opportunity_id == deal.id)
        .order_by(StageChange.changed_at.desc(), StageChange.id.desc())
        .limit(1)
    ).first()
    if last is None or last.from_status is None or last.from_stage_entered_at is None:
        raise DomainError("There is no move of this deal to undo.")
    if last.changed_by_id != actor.id:
        raise DomainError("Only the person who moved the deal can undo the move.")
    if now - as_utc(last.changed_at) > timedelta(minutes=UNDO_MINUTES):
        raise DomainError("It is too late to undo this move.")
    before = snapshot(deal, DEAL_FIELDS)
    deal.stage_id = last.from_stage_id if last.from_stage_id is not None else deal.stage_id
    deal.status, deal.amount, deal.loss_reason = last.from_status, last.from_amount, last.from_loss_reason
    deal.closed_at, deal.stage_entered_at = last.from_closed_at, last.from_stage_entered_at
    session.delete(last)
    session.flush()
    recompute_stage_facts(session, actor.organization_id, deal.id)
    session.refresh(deal)
    record_event(session, actor, "undo_move", deal, before=before, after=snapshot(deal, DEAL_FIELDS))
    return deal


# -- what stage conversion reads, kept on the deal ----------------------------------------------


def stage_entered(deal: Opportunity, stage: Any, status: str) -> None:
    """Keep what a stage change adds to the deal's ``stages_reached``, ``furthest_position`` and
    ``ever_won``: called with every ``StageChange`` written (the deal's row is locked by then,
    or new). A change only adds; one taken back (``undo_move``) has the deal's facts
    recomputed from those that stand."""
    deal.stages_reached = (deal.stages_reached or 0) | (1 << stage.position)
    deal.furthest_position = max(
        deal.furthest_position if deal.furthest_position is not None else stage.position, stage.position
    )
    deal.ever_won = bool(deal.ever_won) or status == "won"


def recompute_stage_facts(session: Session, organization_id: int, deal_id: int | None = None) -> None:
    """Every deal's kept stage facts in the organization (or one deal's), from its stage
    changes (after a bulk load, an import, a reordered pipeline; after an undone move).

    In two passes that each read a stage change once: the deals' facts cleared, then set from
    the changes grouped by deal (``UPDATE … FROM``). A correlated subquery per deal walked every
    stage change of the organization once per deal where the planner had no statistics yet (a
    store just built): the scale-30 demo spent over 40 minutes in it."""
    deals = [Opportunity.organization_id == organization_id]
    changes = [StageChange.organization_id == organization_id]
    if deal_id is not None:
        deals.append(Opportunity.id == deal_id)
        changes.append(StageChange.opportunity_id == deal_id)
    facts = (
        select(
            StageChange.opportunity_id.label("deal_id"),
            # Positions are unique in an organization: the distinct bits of its stages sum to the mask.
            func.sum(distinct(literal(1, BigInteger).op("<<")(Stage.position))).label("bits"),
            func.max(Stage.position).label("furthest"),
            func.max(case((StageChange.to_status == "won", 1), else_=0)).label("won"),
        )
        .join(Stage, Stage.id == StageChange.to_stage_id)
        .where(*changes)
        .group_by(StageChange.opportunity_id)
        .subquery()
    )
    session.execute(
        update(Opportunity)
        .where(*deals)
        .values(stages_reached=0, furthest_position=None, ever_won=False)
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(Opportunity)
        .where(*deals, Opportunity.id == facts.c.deal_id)
        .values(stages_reached=facts.c.bits, furthest_position=facts.c.furthest, ever_won=facts.c.won == 1)
        .execution_options(synchronize_session=False)
    )
