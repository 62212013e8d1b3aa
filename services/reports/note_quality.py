"""Note quality: how much of its checklist each call's and visit's note answers (scored as the
note was written: ``services.notes``), and the flagged ones counted from the rollups."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable
from datetime import datetime

from sqlalchemy import ColumnElement, case, func, select

from services.models import Activity, User, live
from services.notes import SCORED_TYPES, is_flagged
from services.periods import Period
from services.types import as_utc
from services.reports.activity import _rollup_grains
from services.reports.scope import ReportScope, _in_period, _partial_day, owned_by


@dataclass
class NoteQuality:
    activity_id: int
    owner_name: str
    type: str
    occurred_at: datetime
    answered: int
    questions: int

    @property
    def share(self) -> float:
        return self.answered / self.questions if self.questions else 1.0

    @property
    def flagged(self) -> bool:
        return bool(is_flagged(self.questions, self.answered))


def _scored_notes(actor: User, period: Period, owners: Iterable[int]) -> ColumnElement[bool]:
    return (
        (Activity.organization_id == actor.organization_id)
        & live(Activity)
        & Activity.type.in_(SCORED_TYPES)
        & Activity.owner_id.in_(list(owners))
        & _in_period(Activity.occurred_at, actor, period)
    )


def _flagged() -> ColumnElement[bool]:
    return (func.coalesce(Activity.checklist_questions, 0) > 0) & (func.coalesce(Activity.checklist_answered, 0) == 0)


def note_quality(scope: ReportScope) -> list[NoteQuality]:
    """For calls and visits in the period: the share of their type's checklist questions the
    note answers ("Question: answer" lines, scored as the note was written: ``services.notes``);
    an empty note, or one answering none, is flagged."""
    session, actor, period = scope.session, scope.actor, scope.period
    owners = {u.id: u.name for u in scope.people}
    rows = session.connection().execute(
        select(
            Activity.id,
            Activity.owner_id,
            Activity.type,
            Activity.occurred_at,
            Activity.checklist_answered,
            Activity.checklist_questions,
        )
        .where(_scored_notes(actor, period, owners))
        .order_by(Activity.occurred_at, Activity.id)
    )
    return [
        NoteQuality(id_, owners[owner_id], kind, as_utc(when), answered or 0, questions or 0)
        for id_, owner_id, kind, when, answered, questions in rows
    ]


@dataclass(frozen=True)
class NoteQualityTotals:
    notes: int  # calls and visits in the period
    flagged: int  # whose note answers none of the checklist


def note_quality_totals(scope: ReportScope) -> NoteQualityTotals:
    """The dashboard's line on note quality: from the rollups (which count flagged notes beside
    all activities), and the activities themselves for a to-date period's partial last day."""
    session, actor, period, people = scope.session, scope.actor, scope.period, scope.people
    owners = [u.id for u in people]  # the partial day's activities are found by owner
    total = flagged = 0
    for model, within, sign in _rollup_grains(period, actor.organization.fiscal_year_start_month):
        notes, marked = (
            session.connection()
            .execute(
                select(func.coalesce(func.sum(model.count), 0), func.coalesce(func.sum(model.flagged), 0)).where(
                    model.organization_id == actor.organization_id,
                    owned_by(model.owner_id, people),
                    model.type.in_(SCORED_TYPES),
                    within,
                )
            )
            .one()
        )
        total, flagged = total + sign * int(notes), flagged + sign * int(marked)
    if (partial := _partial_day(actor, period, owners)) is not None:
        notes, marked = (
            session.connection()
            .execute(
                select(func.count(), func.coalesce(func.sum(case((_flagged(), 1), else_=0)), 0)).where(
                    partial, Activity.type.in_(SCORED_TYPES)
                )
            )
            .one()
        )
        total, flagged = total + int(notes), flagged + int(marked)
    return NoteQualityTotals(total, flagged)
