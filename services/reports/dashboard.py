"""The dashboard's view model: every figure for one scope, each computed once, when first read.

A figure is one function of the scope (``services.reports.<area>``), one property here and one
place in a template. A table the page cuts short reads its figure with one limit and gets a
``Shown``; the CSV export reads the same figure without one."""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Callable
from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.orm import Session

from services.health import HealthDrop
from services.models import User
from services.periods import Period
from services.shown import Shown
from services.users import Person
from services.reports import alongside
from services.reports.alongside import on_page, prefetched
from services.reports.activity import (
    Drawdown,
    MonthPoint,
    RepActivity,
    activity_summary,
    drawdown_alerts,
    monthly_trends,
    weekday_pattern,
)
from services.reports.deals import (
    DealAlert,
    DealOutcomes,
    Forecast,
    LostDeal,
    NeglectedAccount,
    StageConversion,
    StageRow,
    deal_alerts,
    deal_outcomes,
    falling_deals,
    lost_deals,
    neglected_accounts,
    pipeline,
    quarter_forecast,
    stage_conversion,
)
from services.reports.leads import LeadSource, ResponseTime, lead_conversion, lead_response_times
from services.reports.note_quality import NoteQuality, NoteQualityTotals, note_quality, note_quality_totals
from services.reports.quotas import (
    Attainment,
    LeaderboardRow,
    TeamAttainment,
    leaderboard,
    quota_attainment,
    team_revenue_attainment,
    won_by_owner,
)
from services.reports.scope import ReportScope

CHART_PARTS = 4  # colours a stacked bar has (pane.css: .part-0 to .part-3)
# A page lists every rep up to this many; past it, the most active this many, and a way to all
# (an organization of 360 reps made a 1 MB page). The CSV exports always hold every rep.
REPS_SHOWN = 30
# The page names this many slipping reps, the steepest falls first, and says how many there are
# (a week without activity flagged 359 of 360 reps: a page of warnings); the CSV names them all.
DRAWDOWNS_SHOWN = 10
ALERTS_SHOWN = 40  # deals that need a look, and neglected accounts, the page lists
LOST_SHOWN = 50  # the latest lost deals the page lists
DROPS_SHOWN = 10  # the deals whose health fell most, the page lists


@dataclass(frozen=True)
class Change:
    """A figure beside its comparison: the difference and the change in per cent."""

    now: int
    before: int

    @property
    def difference(self) -> int:
        return self.now - self.before

    @property
    def ratio(self) -> float | None:
        return (self.now - self.before) / self.before if self.before else None


class TeamReport:
    """Every figure for one scope: each computed once, when first read, so that a CSV export
    computes its one table and the dashboard each figure once. What the page shows is marked
    ``prefetched`` (``compute_page`` reads it in a second session) or ``on_page`` (in the page's
    own, meanwhile: ``services.reports.alongside``); a plain cached property is a CSV's alone."""

    def __init__(self, scope: ReportScope) -> None:
        self.scope = scope
        self.alongside: Future[dict[str, Any]] | None = None

    def compute_page(self, sessions: Callable[[], Session]) -> None:
        """Every figure the dashboard shows, in two sessions at once (``alongside``)."""
        alongside.compute_page(self, sessions)

    def on(self, session: Session, actor: User) -> TeamReport:
        """The same report read in another session (by ``actor``, the same user loaded there)."""
        return team_report(self.scope.elsewhere(session, actor))

    @property
    def period(self) -> Period:
        return self.scope.period

    @property
    def comparison(self) -> Period:
        return self.scope.comparison

    @property
    def team_id(self) -> int | None:
        return self.scope.team_id

    @property
    def rep_id(self) -> int | None:
        return self.scope.rep_id

    # The reps the page lists.

    @cached_property
    def reps(self) -> Shown[Person]:
        """The people the page's per-rep tables list, in name order: every one of the scope's
        (asked for, or few), else the ``REPS_SHOWN`` most active."""
        people = self.scope.people
        if self.scope.every_rep or len(people) <= REPS_SHOWN:
            return Shown.of(people, None)
        most_active = {row.owner_id for row in sorted(self.activity, key=lambda r: (-r.total, r.name))[:REPS_SHOWN]}
        return Shown([person for person in people if person.id in most_active], len(people))

    @cached_property
    def page_scope(self) -> ReportScope:
        """The scope of the page's per-rep tables: the scope itself, or its ``reps`` only."""
        return self.scope.among(self.reps.rows) if self.reps.cut else self.scope

    # Activity.

    @on_page
    def activity(self) -> list[RepActivity]:
        return activity_summary(self.scope)

    @on_page
    def summary_before(self) -> list[RepActivity]:
        return activity_summary(self.scope, self.comparison)

    @on_page
    def weekdays(self) -> dict[int, list[int]]:
        """Owner → counts Monday to Sunday, for the heat map's rows (the page's reps)."""
        return weekday_pattern(self.page_scope)

    @cached_property
    def drawdowns(self) -> list[Drawdown]:
        """Every slipping rep, in name order (the CSV)."""
        return sorted(drawdown_alerts(self.scope).rows, key=lambda rep: rep.name)

    @prefetched
    def slipping(self) -> Shown[Drawdown]:
        """The page's slipping reps, the steepest falls first."""
        return drawdown_alerts(self.scope, DRAWDOWNS_SHOWN)

    @prefetched
    def trends(self) -> list[MonthPoint]:
        return monthly_trends(self.scope)

    # Quotas and the leaderboard.

    @on_page
    def won(self) -> dict[int, tuple[int, Decimal]]:
        """Owner → (won deals, won amount) in the period: quotas and the leaderboard read it."""
        return won_by_owner(self.scope)

    @cached_property
    def quota(self) -> list[Attainment]:
        """Every rep's (the CSV)."""
        return quota_attainment(self.scope, summary=self.activity, won=self.won)

    @on_page
    def quota_shown(self) -> list[Attainment]:
        """The page's reps'."""
        return quota_attainment(self.page_scope, summary=self.activity, won=self.won)

    @on_page
    def team_quota(self) -> list[TeamAttainment]:
        return team_revenue_attainment(self.scope, won=self.won)

    @on_page
    def leaderboard(self) -> Shown[LeaderboardRow]:
        return leaderboard(self.scope, summary=self.activity, won=self.won)

    # Deals.

    @on_page
    def pipeline(self) -> list[StageRow]:
        return pipeline(self.scope)

    @on_page
    def outcomes(self) -> DealOutcomes:
        return deal_outcomes(self.scope)

    @prefetched
    def outcomes_before(self) -> DealOutcomes:
        return deal_outcomes(self.scope, self.comparison)

    @prefetched
    def conversion(self) -> list[StageConversion]:
        return stage_conversion(self.scope)

    @on_page
    def forecast(self) -> Forecast:
        return quarter_forecast(self.scope)

    @cached_property
    def lost(self) -> list[LostDeal]:
        return lost_deals(self.scope).rows

    @on_page
    def lost_shown(self) -> Shown[LostDeal]:
        """The latest ``LOST_SHOWN`` (the CSV reads them all)."""
        if "lost" in vars(self):
            return Shown.of(self.lost, LOST_SHOWN)
        return lost_deals(self.scope, LOST_SHOWN)

    @cached_property
    def alerts(self) -> list[DealAlert]:
        return deal_alerts(self.scope).rows

    @prefetched
    def alerts_shown(self) -> Shown[DealAlert]:
        return deal_alerts(self.scope, ALERTS_SHOWN)

    @cached_property
    def neglected(self) -> list[NeglectedAccount]:
        return neglected_accounts(self.scope).rows

    @prefetched
    def neglected_shown(self) -> Shown[NeglectedAccount]:
        return neglected_accounts(self.scope, ALERTS_SHOWN)

    @on_page
    def health_drops(self) -> Shown[HealthDrop]:
        return falling_deals(self.scope, DROPS_SHOWN)

    @cached_property
    def health_drops_all(self) -> list[HealthDrop]:
        """Every deal whose health fell (the CSV)."""
        return falling_deals(self.scope).rows

    # Leads and notes.

    @on_page
    def leads(self) -> list[LeadSource]:
        return lead_conversion(self.scope)

    @cached_property
    def response(self) -> list[ResponseTime]:
        """Every rep's (the CSV)."""
        return lead_response_times(self.scope)

    @on_page
    def response_shown(self) -> list[ResponseTime]:
        """The page's reps'."""
        return lead_response_times(self.page_scope)

    @cached_property
    def notes(self) -> list[NoteQuality]:
        return note_quality(self.scope)

    @on_page
    def note_totals(self) -> NoteQualityTotals:
        return note_quality_totals(self.scope)

    # What the page prints, from the figures above.

    @cached_property
    def activity_before(self) -> dict[int, int]:
        """Owner → total activities in the comparison period."""
        return {row.owner_id: row.total for row in self.summary_before}

    @property
    def activity_total(self) -> int:
        return sum(row.total for row in self.activity)

    @property
    def activity_change(self) -> Change:
        return Change(self.activity_total, sum(self.activity_before.values()))

    @property
    def won_change(self) -> Change:
        return Change(self.outcomes.won, self.outcomes_before.won)

    @property
    def pipeline_rows(self) -> list[tuple[StageRow, StageConversion | None]]:
        """Each open stage beside its conversion, matched by stage (not by position)."""
        conversion = {row.stage_id: row for row in self.conversion}
        return [(row, conversion.get(row.stage_id)) for row in self.pipeline]

    def _of_page_reps(self, rows: list[Any]) -> list[Any]:
        if not self.reps.cut:
            return rows
        shown = {person.id for person in self.reps.rows}
        return [row for row in rows if row.owner_id in shown]

    @cached_property
    def activity_rows(self) -> list[RepActivity]:
        """The activity table's rows: every rep in name order, or the most active first."""
        if not self.reps.cut:
            return self.activity
        return sorted(self._of_page_reps(self.activity), key=lambda r: (-r.total, r.name))

    @property
    def quota_rows(self) -> list[Attainment]:
        return self._of_page_reps(self.quota) if "quota" in vars(self) else self.quota_shown

    @property
    def leaderboard_rows(self) -> Shown[LeaderboardRow]:
        """The leaderboard's first ``REPS_SHOWN`` on a big team's page."""
        return self.leaderboard.first(REPS_SHOWN) if self.reps.cut else self.leaderboard

    @property
    def response_rows(self) -> list[ResponseTime]:
        return self._of_page_reps(self.response) if "response" in vars(self) else self.response_shown

    @cached_property
    def activity_types(self) -> list[str]:
        """The activity types anyone in the report spent time on, for the time table."""
        return sorted({kind for row in self.activity for kind, minutes in row.minutes.items() if minutes})

    @cached_property
    def time_table(self) -> list[tuple[str, list[float]]]:
        """Per rep, hours spent on each of ``activity_types``, in that order."""
        kinds = self.activity_types
        return [(row.name, [row.minutes.get(kind, 0) / 60 for kind in kinds]) for row in self.activity_rows]

    @property
    def activity_bars(self) -> list[tuple[str, list[tuple[str, int]]]]:
        """Per rep, the stack of activity counts by type: the three largest types, then the rest
        as "other", so that the chart's four colours and its legend name every segment."""
        kinds = sorted(
            {k for row in self.activity for k in row.counts},
            key=lambda k: (-sum(r.counts.get(k, 0) for r in self.activity), k),
        )
        named, rest = kinds[: CHART_PARTS - 1], kinds[CHART_PARTS - 1 :]
        if len(rest) == 1:
            named, rest = kinds, []
        return [
            (
                row.name,
                [(kind, row.counts.get(kind, 0)) for kind in named]
                + ([("other", sum(row.counts.get(k, 0) for k in rest))] if rest else []),
            )
            for row in self.activity_rows
        ]

    @property
    def pipeline_bars(self) -> list[tuple[str, int]]:
        return [(row.name, row.count) for row in self.pipeline]


def team_report(scope: ReportScope) -> TeamReport:
    """Every figure for the scope, with the comparison period (the one before, or the same one a
    year earlier) beside the activity and outcome figures, and its months of trends: what the
    dashboard and its CSV exports show. (``report_scope`` checked the scope as it resolved it: a
    rep, or a manager asking for another team, is refused before anything is computed.)"""
    if scope.session.get_bind().dialect.name == "postgresql":
        # A report's statements each take milliseconds: PostgreSQL's parallel workers cost more
        # to start than they save there (the drawdown's edge days were planned as a parallel
        # append). For this transaction only.
        scope.session.execute(text("SET LOCAL max_parallel_workers_per_gather = 0"))
    return TeamReport(scope)
