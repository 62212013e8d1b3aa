"""Manager figures, exactly as PRODUCT.md defines them. Each is a function of a
``ReportScope`` (who asks, which people, which period, now; ``report_scope`` resolves it once
a request) and, where it compares, of another period; it returns plain data, and a table a page
cuts short answers a ``Shown`` for one ``limit``. The pane's team panel, the dashboard and its
CSV exports render them.

Managers see their own team; admins any team or the whole organization; reps see none of
these (their pane shows their own work). Soft-deleted records never count.

| module | what it computes |
| --- | --- |
| ``scope`` | who a report covers, the period in SQL, ``ReportScope`` (resolved once per request) |
| ``activity`` | activity counts and time, weekday pattern, drawdown, monthly trends |
| ``quotas`` | quota attainment (reps and teams), leaderboard |
| ``deals`` | pipeline, outcomes, stage conversion, lost deals, alerts, neglected accounts, forecast |
| ``leads`` | lead conversion by source, response time |
| ``note_quality`` | how much of its checklist each note answers |
| ``dashboard`` | ``TeamReport``: every figure for a scope, each computed once, when first read |
| ``alongside`` | the dashboard's second reading session, and which figures it computes |
| ``panel`` | the manager's panel in the pane, and a rep's accounts |

The figures read plain columns, never ORM objects, through the session's connection
(``session.connection().execute``): the same transaction, without the ORM's result machinery,
which costs a few milliseconds a statement and a dashboard runs about forty.
"""

from services.reports.activity import (
    Drawdown,
    MonthPoint,
    RepActivity,
    activity_summary,
    drawdown_alerts,
    monthly_trends,
    weekday_pattern,
)
from services.reports.dashboard import CHART_PARTS, Change, TeamReport, team_report
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
from services.reports.panel import PanelRow, RepAccount, TeamPanel, rep_accounts, team_panel
from services.reports.quotas import (
    AgainstTarget,
    Attainment,
    LeaderboardRow,
    TeamAttainment,
    leaderboard,
    quota_attainment,
    quota_targets,
    team_revenue_attainment,
    won_by_owner,
)
from services.reports.scope import ReportScope, report_scope, team_members, visible_teams
from services.shown import Shown

__all__ = [
    "AgainstTarget",
    "Attainment",
    "CHART_PARTS",
    "Change",
    "DealAlert",
    "DealOutcomes",
    "Drawdown",
    "Forecast",
    "LeaderboardRow",
    "LeadSource",
    "LostDeal",
    "MonthPoint",
    "NeglectedAccount",
    "NoteQuality",
    "NoteQualityTotals",
    "PanelRow",
    "RepAccount",
    "RepActivity",
    "ReportScope",
    "ResponseTime",
    "Shown",
    "StageConversion",
    "StageRow",
    "TeamAttainment",
    "TeamPanel",
    "TeamReport",
    "activity_summary",
    "deal_alerts",
    "deal_outcomes",
    "drawdown_alerts",
    "falling_deals",
    "lead_conversion",
    "lead_response_times",
    "leaderboard",
    "lost_deals",
    "monthly_trends",
    "neglected_accounts",
    "note_quality",
    "note_quality_totals",
    "pipeline",
    "quarter_forecast",
    "quota_attainment",
    "quota_targets",
    "rep_accounts",
    "report_scope",
    "stage_conversion",
    "team_members",
    "team_panel",
    "team_report",
    "team_revenue_attainment",
    "visible_teams",
    "weekday_pattern",
    "won_by_owner",
]
