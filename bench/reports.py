"""Benchmark: the manager figures on a store of two years of a 360-rep team, side by side with
DuckDB computing the same counts from the raw activity rows of the same store.

    python bench/reports.py                                   # SQLite, bench/results/scale30.db
    python bench/reports.py --db postgresql+psycopg://.../db  # PostgreSQL (an empty database
                                                              # the first time: it is filled)

The store is built once (``build_demo(seed=7, scale=30, today=2026-11-20)``) and kept, so that
later runs only measure. Every figure is a ratio of two timings taken in the same run, on
the same machine, a moment apart: the machine is noisy, a ratio holds where a time does not.
Prints one JSON object and writes it to ``bench/results/latest.json``.
"""

from __future__ import annotations

import argparse
import csv
import gc
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from typing import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import event, func, select  # noqa: E402

from services import sentiment  # noqa: E402
from services.db import make_engine, make_session_factory  # noqa: E402
from services.setup.demo import build_demo  # noqa: E402
from services.models import Activity, DealHealth, Organization, User  # noqa: E402
from services.periods import period_for  # noqa: E402
from services.reports import activity_summary, report_scope  # noqa: E402

RESULTS = ROOT / "bench" / "results"
TODAY = date(2026, 11, 20)
NOW = datetime(2026, 11, 20, 17, tzinfo=timezone.utc)


def timed(call, repeat: int) -> float:
    """The median of ``repeat`` runs, in seconds."""
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        runs.append(time.perf_counter() - started)
    return statistics.median(runs)


def ensure_store(url: str, scale: float) -> float | None:
    """The scale-30 store, built once, brought to the migrations' head like any store."""
    from alembic import command
    from sqlalchemy import inspect

    from addin.cli import alembic_config

    engine = make_engine(url)
    tables = inspect(engine).get_table_names()
    if "organizations" in tables and "alembic_version" not in tables:
        raise SystemExit(
            f"{url} was built before the bench store followed the migrations: delete it, or stamp the revision it "
            "was built at (flask --app wsgi db stamp REVISION with DATABASE_URL pointing at it)"
        )
    command.upgrade(alembic_config(url), "head")
    with make_session_factory(engine)() as session:
        if session.scalar(select(func.count(Organization.id))):
            if not session.scalar(select(func.count(DealHealth.id))):
                # A store built before deal health was kept: the last two weeks, as the demo keeps them.
                from services.health import WINDOW_DAYS, snapshot

                for organization in session.scalars(select(Organization)).all():
                    for days in range(WINDOW_DAYS, -1, -1):
                        snapshot(session, organization, NOW - timedelta(days=days))
                session.commit()
            for organization in session.scalars(select(Organization)).all():
                # A store built before logging scored sentiment: scored as the demo scores them now.
                if session.scalar(select(Activity.id).where(sentiment.unscored(organization.id)).limit(1)) is not None:
                    sentiment.backfill(session, organization)
                    session.commit()
            engine.dispose()
            return None
        started = time.perf_counter()
        build_demo(session, seed=7, scale=scale, today=TODAY)
        session.commit()
    engine.dispose()
    return time.perf_counter() - started


def duckdb_year(url: str, organization_id: int, start: datetime, end: datetime):
    """DuckDB over the raw activity rows: loaded once (not timed). Returns the same grouping the
    activity summary gives, as a call to time, and the number of activities it counts."""
    import duckdb

    engine = make_engine(url)
    export = Path(tempfile.mkdtemp()) / "activities.csv"
    columns = (
        Activity.organization_id,
        Activity.owner_id,
        Activity.occurred_at,
        Activity.type,
        Activity.direction,
        Activity.outcome,
        Activity.duration_minutes,
        Activity.deleted_at,
    )
    with engine.connect() as connection, export.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([c.key for c in columns])
        for row in connection.execution_options(yield_per=50_000).execute(select(*columns)):
            # Times as epoch seconds: one plain numeric column for DuckDB, whatever the back end.
            writer.writerow(["" if v is None else (v.timestamp() if isinstance(v, datetime) else v) for v in row])
    engine.dispose()
    duck = duckdb.connect()
    duck.execute(
        f"CREATE TABLE activities AS SELECT * FROM read_csv('{export}', header=true, "
        "types={'occurred_at': 'DOUBLE', 'deleted_at': 'DOUBLE', 'outcome': 'VARCHAR', 'duration_minutes': 'BIGINT'})"
    )
    export.unlink()
    query = """
        SELECT owner_id, type, direction, outcome, count(*), sum(duration_minutes)
        FROM activities
        WHERE organization_id = ? AND deleted_at IS NULL AND occurred_at >= ? AND occurred_at < ?
        GROUP BY owner_id, type, direction, outcome
    """
    params = [organization_id, start.timestamp(), end.timestamp()]
    total = sum(row[4] for row in duck.execute(query, params).fetchall())
    return (lambda: duck.execute(query, params).fetchall()), total


def side_by_side(calls: dict[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    """Each call timed once per round, in turn, for ``rounds`` rounds: the median seconds of
    each. Taken in turn, the machine's noise of the moment weighs on all of them alike."""
    runs: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            started = time.perf_counter()
            call()
            runs[name].append(time.perf_counter() - started)
    return {name: statistics.median(times) for name, times in runs.items()}


def statements(engine, call) -> int:
    seen: list[str] = []

    def count(conn, cursor, statement, *args) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        call()
    finally:
        event.remove(engine, "before_cursor_execute", count)
    return len(seen)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", default=f"sqlite:///{RESULTS / 'scale30.db'}")
    parser.add_argument("--scale", type=float, default=30)
    parser.add_argument("--repeat", type=int, default=15, help="rounds of the side-by-side timings")
    parser.add_argument("--load-seconds", type=float, default=60, help="the 64-pane load under gunicorn (0: skip it)")
    parser.add_argument("--no-sync", action="store_true", help="skip the full sync through the API (about two minutes)")
    parser.add_argument(
        "--webhook-seconds", type=float, default=60, help="webhooks under an integrator's writes (0: skip it)"
    )
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    built = ensure_store(args.db, args.scale)

    os.environ["DATABASE_URL"] = args.db
    os.environ.setdefault("SECRET_KEY", "bench")
    from addin import create_app

    app = create_app({"TESTING": True, "WTF_CSRF_ENABLED": False})
    gc.freeze()  # as wsgi.py does once the app is built
    engine = app.extensions["inboxcrm.db"].engine
    with app.extensions["inboxcrm.db"].sessions() as session:
        admin = session.scalars(select(User).where(User.role == "admin")).first()
        org = admin.organization
        year = period_for("this_year", TODAY, org.fiscal_year_start_month)
        start, end = year.utc_bounds(org.time_zone)
        reps = session.scalar(select(func.count(User.id)).where(User.role == "rep"))
        activities = session.scalar(select(func.count(Activity.id)))
        summary_total = sum(row.total for row in activity_summary(report_scope(session, admin, year)))
        admin_id, org_id = admin.id, org.id
    duck_call, duck_total = duckdb_year(args.db, org_id, start, end)

    client = app.test_client()
    with client.session_transaction() as cookie:
        cookie["_user_id"] = f"{admin_id}:0"
        cookie["signed_in_at"] = int(time.time())
    page = "/dashboard?period=this_year"
    assert client.get(page).status_code == 200
    with app.extensions["inboxcrm.db"].sessions() as session:
        admin = session.get(User, admin_id)
        timings = side_by_side(
            {
                "summary": lambda: activity_summary(report_scope(session, admin, year)),
                "duckdb": duck_call,
                "dashboard": lambda: client.get(page),
            },
            args.repeat,
        )
    summary_seconds, duck_seconds, dashboard_seconds = timings["summary"], timings["duckdb"], timings["dashboard"]
    dashboard_statements = statements(engine, lambda: client.get(page))
    export_statements = statements(engine, lambda: client.get("/dashboard/activity.csv?period=this_year"))

    floor = "/healthz"
    floor_seconds = timed(lambda: client.get(floor), 50)
    from bench.gmail import against_hot_floor, measure as gmail_cards

    cards = gmail_cards(app, NOW)
    cards |= against_hot_floor(cards, floor_seconds * 1000)
    from bench.pane import measure as pane_figures

    pane = pane_figures(app, NOW)
    from bench.intelligence import measure as intelligence_figures

    intelligence = intelligence_figures(app, NOW)
    from bench.sync import measure as sync_figures

    app.config["API_RATE_LIMIT"] = "1000000 per minute"  # one client reading as fast as it can
    synced = {} if args.no_sync else sync_figures(app)
    engine.dispose()  # the load's server has the store to itself
    from bench.load import run as load

    loaded = load(args.db, args.load_seconds) if args.load_seconds else {}
    from bench.webhooks import run as webhooks_under_load

    hooked = webhooks_under_load(args.db, args.webhook_seconds) if args.webhook_seconds else {}
    result = {
        "backend": engine.dialect.name,
        "scale": args.scale,
        "reps": reps,
        "activities": activities,
        "store_built_seconds": round(built, 1) if built else None,
        "summary_year_seconds": round(summary_seconds, 4),
        "duckdb_year_seconds": round(duck_seconds, 4),
        "summary_vs_duckdb": round(summary_seconds / duck_seconds, 2),
        "summary_counts_agree": summary_total == duck_total,
        "dashboard_year_seconds": round(dashboard_seconds, 3),
        "dashboard_year_vs_duckdb": round(dashboard_seconds / duck_seconds, 1),
        "dashboard_statements": dashboard_statements,
        "csv_export_statements": export_statements,
        "bare_route_ms": round(floor_seconds * 1000, 2),
        **cards,
        **pane,
        **intelligence,
        **synced,
        "peak_memory_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        **loaded,
        **hooked,
    }
    text = json.dumps(result, indent=2)
    print(text)
    (RESULTS / "latest.json").write_text(text + "\n")


if __name__ == "__main__":
    main()
