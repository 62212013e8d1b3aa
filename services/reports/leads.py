"""Lead figures: conversion by source and response time."""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import func, select

from services.models import Activity, Lead, live
from services.types import elapsed_ms, one_of
from services.reports.scope import ReportScope, _in_period, owned_by


@dataclass
class LeadSource:
    source: str
    created: int
    converted: int

    @property
    def rate(self) -> float | None:
        return self.converted / self.created if self.created else None


def lead_conversion(scope: ReportScope) -> list[LeadSource]:
    """Per source: leads created in the period that converted ÷ leads created in the period.
    A lead belongs to its owner's team, so the figure follows the team and rep filters."""
    session, actor, period, people = scope.session, scope.actor, scope.period, scope.people
    rows = session.connection().execute(
        select(Lead.source, func.count(), func.count(Lead.converted_at))
        .where(
            Lead.organization_id == actor.organization_id,
            live(Lead),
            owned_by(Lead.owner_id, people),
            _in_period(Lead.created_at, actor, period),
        )
        .group_by(Lead.source)
        .order_by(Lead.source)
    )
    return [LeadSource(source, created, converted) for source, created, converted in rows]


@dataclass
class ResponseTime:
    owner_id: int
    name: str
    leads: int
    answered: int
    median_hours: float | None
    within_target: int

    @property
    def share_within_target(self) -> float | None:
        return self.within_target / self.leads if self.leads else None


def lead_response_times(scope: ReportScope) -> list[ResponseTime]:
    """From a lead's creation to its first outbound call, email or meeting: the median per rep,
    and the share of the period's leads answered within the organization's target."""
    session, actor, period = scope.session, scope.actor, scope.period
    people = {u.id: u for u in scope.people}
    target_hours = float(actor.organization.setting("lead_response_target_hours"))
    # Each lead's first touch, looked up per lead of the period (ix_activities_lead).
    first_touch = (
        select(Activity.occurred_at)
        .where(
            Activity.organization_id == actor.organization_id,
            Activity.lead_id == Lead.id,
            live(Activity),
            Activity.direction == "outbound",
            Activity.type.in_(("call", "email", "meeting")),
        )
        .order_by(Activity.occurred_at)
        .limit(1)
        .correlate(Lead)
        .scalar_subquery()
    )
    waits: dict[int, list[float | None]] = defaultdict(list)
    # The wait worked out in the database, in milliseconds: a number per lead, not two timestamps.
    for owner_id, waited in session.connection().execute(
        select(Lead.owner_id, elapsed_ms(Lead.created_at, first_touch)).where(
            Lead.organization_id == actor.organization_id,
            live(Lead),
            one_of(Lead.owner_id, people),
            _in_period(Lead.created_at, actor, period),
        )
    ):
        waits[owner_id].append(waited / 3_600_000 if waited is not None else None)
    rows = []
    for owner_id, user in people.items():
        answered = sorted(w for w in waits[owner_id] if w is not None)
        median = statistics.median(answered) if answered else None
        rows.append(
            ResponseTime(
                owner_id,
                user.name,
                len(waits[owner_id]),
                len(answered),
                median,
                sum(1 for w in answered if w <= target_hours),
            )
        )
    return rows
