"""The manager's panel in the pane: this week against last, who is slipping, the deals to look
at; and the drill-down from a rep to their accounts."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from functools import cached_property
from datetime import date, datetime, timedelta, timezone
from typing import Any
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.capture.notices import TeamNotice, team_notices
from services.access import get_scoped
from services.health import HealthDrop
from services.errors import Forbidden
from services.models import IS_OPEN_DEAL, Account, Activity, Opportunity, User, live
from services.periods import Period, period_for
from services.types import as_utc
from services.shown import Shown
from services.reports.activity import Drawdown, activity_summary, drawdown_alerts
from services.reports.deals import (
    DealAlert,
    DealOutcomes,
    StageRow,
    deal_alerts,
    deal_outcomes,
    falling_deals,
    pipeline,
)
from services.reports.quotas import LeaderboardRow, leaderboard, quota_targets
from services.reports.scope import ReportScope, report_scope, team_members

PANEL_DROPS = 5  # deals whose health fell most, in the pane's panel
PANEL_LEADERS = 5  # the quarter's leaders in the pane's panel
PANEL_SLIPPING = 5  # slipping reps the pane's panel names (the dashboard names ten, its CSV all)


@dataclass
class RepAccount:
    id: int
    name: str
    open_deals: int
    last_activity: datetime | None


def rep_accounts(session: Session, actor: User, rep_id: int) -> tuple[User, list[RepAccount]]:
    """The accounts a rep owns or worked on in the last 90 days, most recently touched first:
    "how is this rep doing with this client"."""
    rep = get_scoped(session, actor, User, rep_id, "rep")
    if rep.id not in {u.id for u in team_members(session, actor)}:
        raise Forbidden("Managers see their own team's reps.")
    since = datetime.now(timezone.utc) - timedelta(days=90)
    worked = select(Activity.account_id).where(
        Activity.organization_id == actor.organization_id,
        Activity.owner_id == rep.id,
        Activity.occurred_at >= since,
        Activity.account_id.is_not(None),
    )
    accounts = (
        session.connection()
        .execute(
            select(Account.id, Account.name).where(
                Account.organization_id == actor.organization_id,
                live(Account),
                (Account.owner_id == rep.id) | Account.id.in_(worked),
            )
        )
        .all()
    )
    ids = [a.id for a in accounts]

    def latest(*where: Any) -> dict[int, datetime]:
        return dict(
            session.connection()
            .execute(
                select(Activity.account_id, func.max(Activity.occurred_at))
                .where(
                    Activity.organization_id == actor.organization_id,
                    Activity.owner_id == rep.id,
                    live(Activity),
                    *where,
                )
                .group_by(Activity.account_id)
            )
            .all()
        )

    # The rep's last activity per account: those of the last 90 days by the rep's own index (most
    # accounts are there); only the accounts they own but left alone longer are looked up whole.
    last = latest(Activity.occurred_at >= since, Activity.account_id.in_(ids))
    if older := [i for i in ids if i not in last]:
        last |= latest(Activity.account_id.in_(older))
    deals = dict(
        session.connection()
        .execute(
            select(Opportunity.account_id, func.count())
            .where(
                Opportunity.organization_id == actor.organization_id,
                Opportunity.owner_id == rep.id,
                IS_OPEN_DEAL,
                Opportunity.account_id.in_(ids),
            )
            .group_by(Opportunity.account_id)
        )
        .all()
    )
    rows = [RepAccount(i, name, deals.get(i, 0), as_utc(last.get(i))) for i, name in accounts]
    never = datetime.min.replace(tzinfo=timezone.utc)
    return rep, sorted(rows, key=lambda r: (r.last_activity or never, r.name), reverse=True)


@dataclass
class PanelRow:
    owner_id: int
    name: str
    this_week: int
    last_week: int
    calls: int
    calls_target: Decimal | None


class TeamPanel:
    """The compact view for the pane: this week against last, calls against their (pro rata)
    quota, the funnel, this quarter's win rate, who is slipping, deals to look at, leaders.

    Its scope is the manager's team, Monday to today (``week``); each figure is computed when
    first read: the pane's panel reads them all, the Gmail card only those it shows."""

    def __init__(self, scope: ReportScope) -> None:
        self.scope = scope
        # Monday to today against the same days of last week.
        self.before = Period(
            scope.period.start - timedelta(days=7), scope.period.end - timedelta(days=7), "wtd_previous"
        )
        self.quarter_period = period_for("this_quarter", scope.today, scope.actor.organization.fiscal_year_start_month)

    @cached_property
    def rows(self) -> list[PanelRow]:
        scope = self.scope
        previous = {row.owner_id: row.total for row in activity_summary(scope, self.before)}
        summary = activity_summary(scope)
        targets = quota_targets(scope.session, scope.actor, scope.period, [r.owner_id for r in summary])
        calls = {r.owner_id: targets.get((r.owner_id, "activities", "call")) for r in summary}
        return [
            PanelRow(
                r.owner_id,
                r.name,
                r.total,
                previous.get(r.owner_id, 0),
                r.counts.get("call", 0),
                calls[r.owner_id].quantize(Decimal("0.01")) if calls[r.owner_id] is not None else None,
            )
            for r in summary
        ]

    @cached_property
    def _stages(self) -> list[StageRow]:
        return pipeline(self.scope)

    @property
    def pipeline_bars(self) -> list[tuple[str, int]]:
        return [(s.name, s.count) for s in self._stages]

    @property
    def weighted(self) -> Decimal:
        return sum((s.weighted for s in self._stages), Decimal(0))

    @cached_property
    def quarter(self) -> DealOutcomes:
        return deal_outcomes(self.scope, self.quarter_period)

    @cached_property
    def slipping(self) -> Shown[Drawdown]:
        """The team's slipping reps, the steepest fall first: a week off for the whole team
        flags them all; a view names the first few (``first``) and says how many there are."""
        return drawdown_alerts(self.scope)

    @property
    def slipping_shown(self) -> Shown[Drawdown]:
        """The first ``PANEL_SLIPPING``, for the pane."""
        return self.slipping.first(PANEL_SLIPPING)

    @cached_property
    def alerts(self) -> Shown[DealAlert]:
        """The deals to look at, the longest waiting first; every one of them is counted by kind."""
        return deal_alerts(self.scope)

    @cached_property
    def health_drops(self) -> Shown[HealthDrop]:
        """The deals whose health fell most in the last 14 days (``services.health``)."""
        return falling_deals(self.scope, PANEL_DROPS)

    @cached_property
    def notices(self) -> list[TeamNotice]:
        """What the team's reps were told of their deals this week (``services.capture.notices``)."""
        scope = self.scope
        return team_notices(scope.session, scope.actor.organization_id, [p.id for p in scope.people], scope.now)

    @cached_property
    def leaders(self) -> Shown[LeaderboardRow]:
        # Ranked by what they won; the panel shows no activity totals, so none are read.
        return leaderboard(self.scope, self.quarter_period, limit=PANEL_LEADERS, with_activities=False)

    @property
    def alert_counts(self) -> dict[str, int]:
        """Deals per kind of alert (a deal both stale and going dark counts in each)."""
        counts: dict[str, int] = defaultdict(int)
        for alert in self.alerts.rows:
            for kind in alert.kinds:
                counts[kind] += 1
        return dict(counts)


def team_panel(session: Session, actor: User, today: date, now: datetime) -> TeamPanel:
    """The manager's panel for the pane and the Gmail card (a manager's or an admin's only:
    the team is resolved, and the role checked, here): this week so far."""
    week = period_for("this_week", today)
    return TeamPanel(
        report_scope(session, actor, Period(week.start, today + timedelta(days=1), "wtd"), today=today, now=now)
    )
