"""The dashboard's tables as CSV: each export reads only its own figure of the report (the
report computes a figure when first read), and no cell can run as a spreadsheet formula."""

from __future__ import annotations

from typing import Any, Callable

from services.reports import TeamReport
from services.setup.tables import write_csv

Rows = list[list[Any]]


def _ratio(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


def _who(report: TeamReport, name: str) -> list[str]:
    """A person's cells: the name as the page shows it, and always their e-mail (two reps may
    share a name; a spreadsheet joins on the e-mail)."""
    return [name, report.scope.emails.get(name, "")]


EXPORTS: dict[str, tuple[list[str], Callable[[TeamReport], Rows]]] = {
    "activity": (
        ["rep", "rep email", "activities", "before", "attempts", "contacts", "connect rate", "minutes"],
        lambda r: [
            [
                *_who(r, a.name),
                a.total,
                r.activity_before.get(a.owner_id, 0),
                a.attempts,
                a.contacts,
                _ratio(a.connect_rate),
                sum(a.minutes.values()),
            ]
            for a in r.activity
        ],
    ),
    "time": (
        ["rep", "rep email", "type", "minutes"],
        lambda r: [
            [*_who(r, a.name), kind, a.minutes[kind]]
            for a in r.activity
            for kind in sorted(a.minutes)
            if a.minutes[kind]
        ],
    ),
    "quota": (
        ["rep", "rep email", "metric", "type", "target", "actual", "attainment"],
        lambda r: (
            [
                [*_who(r, q.name), q.metric, q.activity_type or "", q.shown_target, q.actual, _ratio(q.ratio)]
                for q in r.quota
            ]
            + [
                [f"team {t.name}", "", "won_revenue", "", t.shown_target, t.actual, _ratio(t.ratio)]
                for t in r.team_quota
            ]
        ),
    ),
    "pipeline": (
        ["stage", "deals", "amount", "weighted"],
        lambda r: [[s.name, s.count, s.amount, s.weighted] for s in r.pipeline],
    ),
    "conversion": (
        ["stage", "reached", "moved on", "rate"],
        lambda r: [[c.name, c.reached, c.moved_on, _ratio(c.rate)] for c in r.conversion],
    ),
    "leaderboard": (
        ["rank", "rep", "rep email", "won amount", "won deals", "activities"],
        lambda r: [[x.rank, *_who(r, x.name), x.won_amount, x.won_deals, x.activities] for x in r.leaderboard.rows],
    ),
    "lost": (
        ["deal", "owner", "owner email", "amount", "reason", "stage at loss", "closed"],
        lambda r: [
            [d.name, *_who(r, d.owner_name), d.amount, d.reason, d.stage_at_loss, d.closed_at.isoformat()]
            for d in r.lost
        ],
    ),
    "leads": (
        ["source", "created", "converted", "rate"],
        lambda r: [[x.source, x.created, x.converted, _ratio(x.rate)] for x in r.leads],
    ),
    "response": (
        ["rep", "rep email", "leads", "answered", "median hours", "within target"],
        lambda r: [
            [
                *_who(r, x.name),
                x.leads,
                x.answered,
                "" if x.median_hours is None else round(x.median_hours, 1),
                _ratio(x.share_within_target),
            ]
            for x in r.response
        ],
    ),
    "alerts": (
        ["deal", "account", "owner", "owner email", "amount", "alerts", "days", "reasons"],
        lambda r: [
            [a.name, a.account_name, *_who(r, a.owner_name), a.amount, " ".join(a.kinds), a.days, a.reasons]
            for a in r.alerts
        ],
    ),
    "health": (
        ["deal", "account", "owner", "owner email", "health", "change in 14 days", "what cost it most", "as of"],
        lambda r: [
            [
                d.name,
                d.account_name,
                *_who(r, d.owner_name),
                d.health,
                d.change,
                "; ".join(d.factors),
                d.day.isoformat(),
            ]
            for d in r.health_drops_all
        ],
    ),
    "slipping": (
        ["rep", "rep email", "per working day, last 7 days", "per working day, 28 days before"],
        lambda r: [[*_who(r, d.name), d.recent_per_day, d.baseline_per_day] for d in r.drawdowns],
    ),
    "neglected": (
        ["account", "owner", "owner email", "days quiet"],
        lambda r: [[a.name, *_who(r, a.owner_name), a.days] for a in r.neglected],
    ),
    "trends": (
        ["month", "won amount", "won deals", "win rate", "activities"],
        lambda r: [
            [p.month.isoformat(), p.won_amount, p.won_deals, _ratio(p.win_rate), p.activities] for p in r.trends
        ],
    ),
    "notes": (
        ["rep", "rep email", "type", "when", "answered", "questions", "flagged"],
        lambda r: [
            [
                *_who(r, n.owner_name),
                n.type,
                n.occurred_at.isoformat(),
                n.answered,
                n.questions,
                "yes" if n.flagged else "",
            ]
            for n in r.notes
        ],
    ),
}


def as_csv(report: TeamReport, table: str) -> str:
    header, rows = EXPORTS[table]
    return write_csv(header, rows(report))
