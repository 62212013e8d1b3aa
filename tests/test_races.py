"""Racing writes have one effect, on SQLite and on PostgreSQL.

Sixteen requests arrive at once (each its own session and transaction, released together by
a barrier) to undo one log, to log an undone message again, to close one deal, to mark one
follow-up done. Exactly one of them changes anything; the others are refused or find the
change made; and the rollups still equal a rebuild from the activities.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.mail import activities
from services import deals, followups
from services.errors import DomainError
from services.models import Activity, AuditEvent, FollowUp, Opportunity, StageChange, User
from services.rollups import rebuild_rollups
from tests.helpers import rollup_snapshot
from tests.factories import NOW, World

RACERS = 16
CALL = {
    "type": "call",
    "direction": "outbound",
    "outcome": "connected",
    "duration_minutes": "30",
    "external_id": "call-42",
    "subject": "Rates for Q1",
}


def race(sessions, session: Session, user_id: int, action: Callable[[Session, User], object]) -> tuple[int, list[str]]:
    """Run ``action`` in RACERS threads at once; how many committed, and the refusals' words.

    The test's own ``session`` ends its transaction first (on SQLite it would hold the lock),
    so ``action`` must use ids read before: an expired object of that session would load
    itself again, from the racing thread, in a new transaction."""
    session.rollback()
    barrier = threading.Barrier(RACERS)
    done: list[object] = []
    refusals: list[str] = []
    failures: list[BaseException] = []

    def one() -> None:
        with sessions() as session:
            try:
                barrier.wait()
                done.append(action(session, session.get(User, user_id)))
                session.commit()
            except DomainError as error:
                session.rollback()
                refusals.append(error.message)
            except BaseException as error:  # noqa: BLE001 - reported below
                failures.append(error)

    threads = [threading.Thread(target=one) for _ in range(RACERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not failures, failures
    assert len(done) + len(refusals) == RACERS
    return len(done), refusals


def rollups_equal_a_rebuild(session: Session, world: World) -> None:
    """The rollups, and each deal's and account's latest activity, as kept by the racing writes
    equal what a rebuild from the activities gives."""
    from tests.helpers import latest_snapshot

    session.expire_all()
    kept = rollup_snapshot(session, world.org.id), latest_snapshot(session, world.org.id)
    rebuild_rollups(session, session.get(type(world.org), world.org.id))
    session.expire_all()
    assert (rollup_snapshot(session, world.org.id), latest_snapshot(session, world.org.id)) == kept
    session.rollback()


def calls_counted(session: Session, world: World) -> int:
    return sum(row[6] for row in rollup_snapshot(session, world.org.id) if row[0] == "day" and row[3] == "call")


def test_racing_undo_then_racing_relog_count_once(sessions, session: Session, world: World):
    call = {**CALL, "contact_id": world.contact.id}
    activity, _ = activities.log_activity(session, session.get(User, world.rep.id), call, now=NOW)
    session.commit()
    activity_id = activity.id

    undone, refusals = race(
        sessions, session, world.rep.id, lambda s, rep: activities.undo_log(s, rep, activity_id, now=NOW)
    )
    assert undone == 1 and set(refusals) == {"That activity was not found."}
    assert calls_counted(session, world) == 0

    def relog(s: Session, rep: User) -> bool:
        return activities.log_activity(s, rep, call, now=NOW)[1]

    results, refusals = race(sessions, session, world.rep.id, relog)
    assert results == RACERS and not refusals
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(Activity).where(Activity.deleted_at.is_(None))) == 1
    # One restore, one +1: 30 minutes and one call, not sixteen.
    restores = session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "restore"))
    assert restores == 1
    assert calls_counted(session, world) == 1
    rollups_equal_a_rebuild(session, world)


def test_racing_won_closes_the_deal_once(sessions, session: Session, world: World):
    deal_id = world.deal.id
    before = session.scalar(select(func.count()).select_from(StageChange).where(StageChange.opportunity_id == deal_id))
    won, refusals = race(
        sessions,
        session,
        world.rep.id,
        lambda s, rep: deals.move_stage(s, rep, deal_id, {"stage": "won", "final_amount": "30000"}, now=NOW),
    )
    assert won == 1 and set(refusals) == {"This deal is already won."}
    session.expire_all()
    after = session.scalar(select(func.count()).select_from(StageChange).where(StageChange.opportunity_id == deal_id))
    assert after == before + 1
    assert session.get(Opportunity, deal_id).amount == Decimal("30000.00")


def test_racing_moves_to_one_stage_move_once(sessions, session: Session, world: World):
    deal_id, first, second = world.deal.id, world.stages[0].id, world.stages[1].id
    moved, refusals = race(
        sessions,
        session,
        world.rep.id,
        lambda s, rep: deals.move_stage(s, rep, deal_id, {"stage": str(second)}, now=NOW),
    )
    assert moved == 1 and set(refusals) == {"The deal is already in Proposal."}
    session.expire_all()
    moves = session.scalars(
        select(StageChange).where(StageChange.opportunity_id == deal_id, StageChange.from_stage_id.is_not(None))
    )
    assert [(m.from_stage_id, m.to_stage_id) for m in moves] == [(first, second)]


def test_racing_done_completes_the_follow_up_once(sessions, session: Session, world: World):
    follow_up = followups.add_follow_up(
        session,
        session.get(User, world.rep.id),
        {"title": "Call back", "due_at": (NOW + timedelta(days=2)).isoformat(), "contact_id": world.contact.id},
        now=NOW,
    )
    session.commit()
    follow_up_id = follow_up.id
    done, refusals = race(
        sessions, session, world.rep.id, lambda s, rep: followups.complete_follow_up(s, rep, follow_up_id, now=NOW)
    )
    assert done == 1 and set(refusals) == {"This follow-up is already done."}
    session.expire_all()
    completions = session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "complete"))
    assert completions == 1 and session.get(FollowUp, follow_up_id).done_at is not None
