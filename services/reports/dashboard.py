"""The dashboard's view model: every figure for one scope, each computed once, when first read."""

from __future__ import annotations

from dataclasses import dataclass
from concurrent.futures import Future, ThreadPoolExecutor
from functools import cache, cached_property, partial
from typing import Any, Callable
from datetime import date, datetime

from sqlalchemy import text
from sqlalchemy.orm import Session, joinedload

from services.errors import DomainError
from services.models import User
from services.periods import Period
from services.reports.activity import activity_summary, Drawdown, drawdown_alerts, monthly_trends, MonthPoint, RepActivity, steepest_first, weekday_pattern
from services.reports.deals import SHOWN_LOST, LostDeal, deal_alerts, falling_deals, first_alerts, deal_outcomes, first_neglected, lost_deals, neglected_accounts, pipeline, quarter_forecast, stage_conversion, StageConversion, StageRow
from services.reports.leads import lead_conversion, lead_response_times, ResponseTime
from services.reports.note_quality import note_quality, note_quality_totals
from services.reports.quotas import Attainment, leaderboard, LeaderboardRow, quota_attainment, team_revenue_attainment, TeamAttainment, won_by_owner
from services.reports.scope import ReportScope
from services.users import Person



CHART_PARTS = 4  # colours a stacked bar has (pane.css: .part-0 to .part-3)
# A page lists every rep up to this many; past it, the most active this many, and a way to all
# (an organization of 360 reps made a 1 MB page). The CSV exports always hold every rep.
REPS_SHOWN = 30
# The page names this many slipping reps, the steepest falls first, and says how many there are
# (a week without activity flagged 359 of 360 reps: a page of warnings); the CSV names them all.
DRAWDOWNS_SHOWN = 10


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


def figure(compute: Callable[..., Any], at: str | None = "period", *, shared: dict[str, str] | None = None, shown: bool = False) -> cached_property:
    """A figure of the report: ``compute`` run once, when first read, for the report's scope
    (its people resolved once). ``at`` names what the figure is for (the report's period or
    comparison, the scope's now or today, or nothing); ``shared`` the figures it reuses (its
    argument → the figure's name);
    ``shown``: for the reps the page lists only (``page_people``), not every rep of the scope."""

    def read(report: TeamReport) -> Any:
        if (alongside := report.alongside) is not None and prop.attrname in ALONGSIDE:
            return alongside.result()[prop.attrname]
        scope = report.scope
        args = () if at is None else (getattr(report if at in ("period", "comparison") else scope, at),)
        extra = {argument: getattr(report, name) for argument, name in (shared or {}).items()}
        people = report.page_people if shown else scope.people
        return compute(scope.session, scope.actor, *args, scope.team_id, scope.rep_id, people=people, **extra)

    prop = cached_property(read)
    return prop


# The page's figures a second connection computes while the first computes the rest
# (``TeamReport.compute_page``): the heaviest in SQL, each independent of the rest.
ALONGSIDE = ("alerts_shown", "drawdowns", "neglected_shown", "trends", "outcomes_before", "conversion")
# The rest of what the page shows, computed by the first connection meanwhile.
PAGE = ("activity", "summary_before", "won", "quota_shown", "leaderboard", "pipeline", "outcomes", "lost_shown", "leads", "response_shown",
        "forecast", "health_drops", "note_totals", "weekdays", "team_quota")


@cache
def _executor() -> ThreadPoolExecutor:
    """The process's threads for reports' second connections (made in the process that serves,
    after gunicorn's fork)."""
    return ThreadPoolExecutor(max_workers=4, thread_name_prefix="report")


class TeamReport:
    """Every figure for one scope: each computed once, when first read, so that a CSV export
    computes its one table and the dashboard each figure once."""

    def __init__(self, scope: ReportScope) -> None:
        self.scope = scope
        self.period, self.team_id, self.rep_id = scope.period, scope.team_id, scope.rep_id
        self.alongside: Future[dict[str, Any]] | None = None

    def compute_page(self, sessions: Callable[[], Session]) -> None:
        """The dashboard's figures, before it is rendered: the ``ALONGSIDE`` ones in a second
        session while this one computes the rest (``PAGE``)."""
        self.compute_alongside(sessions)
        if self.alongside is not None:
            for name in PAGE:
                getattr(self, name)

    def compute_alongside(self, sessions: Callable[[], Session]) -> None:
        """Start computing the ``ALONGSIDE`` figures in a session of their own (``sessions``
        makes one: a reader's), which reading any of them then waits for. The database works on
        both sessions at once (PostgreSQL a server process each; SQLite's readers side by side
        in WAL mode, its module letting go of the GIL while a statement runs), so the dashboard
        takes about as long as its larger half. The second session loads the actor itself and
        reads its own snapshot, as each statement of a report on PostgreSQL does (read
        committed). Not for a store in memory (each connection its own), nor for a report
        already read."""
        scope = self.scope
        bind = scope.session.get_bind()
        in_memory = bind.dialect.name == "sqlite" and bind.url.database in (None, "", ":memory:")
        if in_memory or self.alongside is not None or set(ALONGSIDE) & set(vars(self)):
            return
        people = scope.people  # resolved (and the actor's right to them checked) here, once
        self.alongside = _executor().submit(_compute_alongside, sessions, scope, people, scope.actor.id)

    @property
    def comparison(self) -> Period:
        return self.scope.comparison

    activity = figure(activity_summary)  # list[RepActivity]
    weekdays = figure(weekday_pattern, shown=True)  # owner → counts Monday to Sunday, for the heat map's rows
    won = figure(won_by_owner)  # owner → (won deals, won amount) in the period: quotas and the leaderboard read it
    quota = figure(quota_attainment, shared={"summary": "activity", "won": "won"})  # list[Attainment], every rep's (the CSV)
    quota_shown = figure(quota_attainment, shared={"summary": "activity", "won": "won"}, shown=True)  # the page's reps'
    pipeline = figure(pipeline, at=None)  # list[StageRow]
    outcomes = figure(deal_outcomes)  # DealOutcomes
    outcomes_before = figure(deal_outcomes, at="comparison")
    conversion = figure(stage_conversion)  # list[StageConversion]
    leaderboard = figure(leaderboard, shared={"summary": "activity", "won": "won"})  # list[LeaderboardRow]
    lost = figure(lost_deals)  # list[LostDeal]
    leads = figure(lead_conversion)  # list[LeadSource]
    response = figure(lead_response_times)  # list[ResponseTime], every rep's (the CSV)
    response_shown = figure(lead_response_times, shown=True)  # the page's reps'
    alerts = figure(deal_alerts, at="now")  # list[DealAlert], all of them (the CSV)
    alerts_shown = figure(first_alerts, at="now")  # Shown: the page's first SHOWN_ALERTS, and how many there are
    neglected = figure(neglected_accounts, at="now")  # list[NeglectedAccount], all of them (the CSV)
    neglected_shown = figure(first_neglected, at="now")  # Shown: the page's first SHOWN_ALERTS, and how many there are
    drawdowns = figure(drawdown_alerts, at="now")  # list[Drawdown]
    forecast = figure(quarter_forecast, at="today")  # Forecast
    health_drops = figure(falling_deals, at=None)  # list[HealthDrop]: the page's first SHOWN_DROPS
    health_drops_all = figure(partial(falling_deals, limit=None), at=None)  # every deal whose health fell (the CSV)
    notes = figure(note_quality)  # list[NoteQuality], for the CSV
    note_totals = figure(note_quality_totals)  # NoteQualityTotals, for the page

    summary_before = figure(activity_summary, at="comparison")  # list[RepActivity], the comparison period's

    @cached_property
    def activity_before(self) -> dict[int, int]:  # owner → total activities in the comparison period
        return {row.owner_id: row.total for row in self.summary_before}

    @cached_property
    def lost_shown(self) -> list[LostDeal]:
        """The latest ``SHOWN_LOST`` lost deals, for the page (the CSV reads them all)."""
        if "lost" in self.__dict__:
            return self.lost[:SHOWN_LOST]
        scope = self.scope
        return lost_deals(scope.session, scope.actor, self.period, scope.team_id, scope.rep_id, people=scope.people, limit=SHOWN_LOST)

    @cached_property
    def drawdowns_shown(self) -> list[Drawdown]:
        """The first ``DRAWDOWNS_SHOWN`` slipping reps, the steepest fall first."""
        return steepest_first(self.drawdowns)[:DRAWDOWNS_SHOWN]

    @cached_property
    def team_quota(self) -> list[TeamAttainment]:
        scope = self.scope
        return (team_revenue_attainment(scope.session, scope.actor, self.period, scope.team_id, people=scope.people, won=self.won,
                                        teams=scope.teams)
                if scope.rep_id is None else [])

    @cached_property
    def trends(self) -> list[MonthPoint]:
        if self.alongside is not None:
            return self.alongside.result()["trends"]
        scope = self.scope
        return monthly_trends(scope.session, scope.actor, scope.today, scope.months, scope.team_id, scope.rep_id, people=scope.people)

    @property
    def activity_total(self) -> int:
        return sum(row.total for row in self.activity)

    @property
    def activity_total_before(self) -> int:
        return sum(self.activity_before.values())

    @property
    def activity_change(self) -> Change:
        return Change(self.activity_total, self.activity_total_before)

    @property
    def won_change(self) -> Change:
        return Change(self.outcomes.won, self.outcomes_before.won)

    @property
    def pipeline_rows(self) -> list[tuple[StageRow, StageConversion | None]]:
        """Each open stage beside its conversion, matched by stage (not by position)."""
        conversion = {row.stage_id: row for row in self.conversion}
        return [(row, conversion.get(row.stage_id)) for row in self.pipeline]


    @cached_property
    def shown_reps(self) -> set[int] | None:
        """The reps the page lists: None for all of them (the scope asked for every rep, or they
        are few), else the ``REPS_SHOWN`` most active."""
        if self.scope.every_rep or len(self.activity) <= REPS_SHOWN:
            return None
        return {row.owner_id for row in sorted(self.activity, key=lambda r: (-r.total, r.name))[:REPS_SHOWN]}

    @cached_property
    def page_people(self) -> list[Person]:
        """The people the page's per-rep tables list: ``shown_reps`` of the scope's. A table of
        every rep (the CSV) is computed for them all; the page's, for these only."""
        shown = self.shown_reps
        return self.scope.people if shown is None else [person for person in self.scope.people if person.id in shown]

    @property
    def reps_total(self) -> int:
        return len(self.activity)

    def _shown(self, rows: list[Any]) -> list[Any]:
        shown = self.shown_reps
        return rows if shown is None else [row for row in rows if row.owner_id in shown]

    @cached_property
    def activity_rows(self) -> list[RepActivity]:
        """The activity table's rows: every rep in name order, or the most active first."""
        if self.shown_reps is None:
            return self.activity
        return sorted(self._shown(self.activity), key=lambda r: (-r.total, r.name))

    @property
    def quota_rows(self) -> list[Attainment]:
        return self._shown(self.quota) if "quota" in self.__dict__ else self.quota_shown

    @property
    def leaderboard_rows(self) -> list[LeaderboardRow]:
        return self.leaderboard if self.shown_reps is None else self.leaderboard[:REPS_SHOWN]

    @property
    def response_rows(self) -> list[ResponseTime]:
        return self._shown(self.response) if "response" in self.__dict__ else self.response_shown

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
        kinds = sorted({k for row in self.activity for k in row.counts}, key=lambda k: (-sum(r.counts.get(k, 0) for r in self.activity), k))
        named, rest = kinds[:CHART_PARTS - 1], kinds[CHART_PARTS - 1:]
        if len(rest) == 1:
            named, rest = kinds, []
        return [
            (row.name, [(kind, row.counts.get(kind, 0)) for kind in named] + ([("other", sum(row.counts.get(k, 0) for k in rest))] if rest else []))
            for row in self.activity_rows
        ]

    @property
    def pipeline_bars(self) -> list[tuple[str, int]]:
        return [(row.name, row.count) for row in self.pipeline]


def _compute_alongside(sessions: Callable[[], Session], scope: ReportScope, people: list[Person], actor_id: int) -> dict[str, Any]:
    """The ``ALONGSIDE`` figures of ``scope``'s report, in a session of their own. Nothing of the
    first session is touched here (its actor is loaded again, by id): a session and its objects
    belong to one thread."""
    with sessions() as session:
        actor = session.get(User, actor_id, options=[joinedload(User.organization)])
        twin = team_report(session, actor, scope.period, scope.today, scope.now, scope.team_id, scope.rep_id,
                           year_over_year=scope.year_over_year, months=scope.months, every_rep=scope.every_rep, people=people)
        # Each figure's function run straight, not through its property: Python 3.11's
        # cached_property holds one lock per property for every instance while it computes,
        # and the first session, reading the same property, holds it waiting for this one.
        return {name: vars(TeamReport)[name].func(twin) for name in ALONGSIDE}


def team_report(session: Session, actor: User, period: Period, today: date, now: datetime, team_id: int | None = None,
                rep_id: int | None = None, *, year_over_year: bool = False, months: int = 12, every_rep: bool = False,
                people: list[Person] | None = None) -> TeamReport:
    """Every figure for one period and team, with the comparison period (the one before, or
    the same one a year earlier) beside the activity and outcome figures, and ``months`` of
    trends: what the dashboard and its CSV exports show. The scope is checked here (a rep, or
    a manager asking for another team, is refused before anything is computed)."""
    if months not in (12, 24):
        raise DomainError("Trends cover 12 or 24 months.")
    scope = ReportScope(session, actor, period, today, now, team_id, rep_id, year_over_year, months, every_rep)
    if people is None:
        scope.people  # noqa: B018 - resolves and checks the scope now
    else:  # resolved already, for this actor and scope (a report's second session)
        scope.people = people
    if session.get_bind().dialect.name == "postgresql":
        # A report's statements each take milliseconds: PostgreSQL's parallel workers cost more
        # to start than they save there (the drawdown's edge days were planned as a parallel
        # append). For this transaction only.
        session.execute(text("SET LOCAL max_parallel_workers_per_gather = 0"))
    return TeamReport(scope)
