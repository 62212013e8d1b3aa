"""Benchmark: the Outlook pane on the scale-30 store, through the app, side by side with its floors.

* ``pane_vs_floor``: ``GET /pane/context`` for a known sender's mail, p50, ÷ the bare route of
  the same app with the same client (``/healthz``), the two timed alternately;
* ``log_vs_floor``: emails logged per second through the app (``POST /activities/email``, each a
  new message, the rep signed in, the pane's answer rendered) ÷ SQLAlchemy Core inserts of
  activity rows per second into the same store, each in a transaction of its own as a log is;
* ``log_least_vs_floor``: the same for the least a log through the app can be, a route of a
  second app of the same build that signs the rep in and makes that one Core insert and commit
  (no validation, no matching, no rollups, audit or answer): how near the floor any route of
  this stack comes, the ceiling ``log_vs_floor`` is read against.

The three log loops run interleaved, one of each in turn, so that they share the machine's moods.

Called by ``bench/reports.py``; the figures go into the same JSON. What the bench logs and
inserts it takes back afterwards (the logs by the pane's own undo, then deleted; the bare rows
deleted), so that the store the next run measures is the same.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from flask import Flask, request
from flask.testing import FlaskClient
from sqlalchemy import delete, insert, select

from bench.gmail import alternating
from bench.logs import take_back
from services.models import Activity, User
from services.preview import sample_mailbox


def measure(app: Flask, now: datetime, repeat: int = 200, logs: int = 100) -> dict[str, Any]:
    sessions = app.extensions["inboxcrm.db"].sessions
    engine = app.extensions["inboxcrm.db"].engine
    with sessions() as session:
        rep = session.scalars(select(User).where(User.role == "rep").order_by(User.id)).first()
        item = next(i for i in sample_mailbox(session, rep) if i.item_type == "message" and i.from_address != rep.email)
        rep_id, org_id, rep_email = rep.id, rep.organization_id, rep.email
    query = {
        "item_type": "message",
        "from_address": item.from_address,
        "from_name": item.from_name,
        "subject": item.subject,
        "internet_message_id": item.internet_message_id,
        "to": rep_email,
    }
    client = app.test_client()
    with client.session_transaction() as cookie:
        cookie["_user_id"] = f"{rep_id}:0"
        cookie["signed_in_at"] = int(time.time())
    htmx = {"HX-Request": "true"}

    def context() -> None:
        assert client.get("/pane/context", query_string=query, headers=htmx).status_code == 200

    context()  # warm
    pane_ms, floor_ms = alternating(context, lambda: client.get("/healthz"), repeat)

    # The floor's row, and the least a log through the app can be: a second app of the same
    # build (a route cannot be added to one that has served), the rep signed in, one Core insert.
    row = {
        "organization_id": org_id,
        "type": "email",
        "direction": "inbound",
        "occurred_at": now,
        "owner_id": rep_id,
        "source": "outlook",
        "subject": item.subject,
        "body_text": "Thanks, the rates look good.",
        "is_private": False,
        "checklist_questions": 0,
        "checklist_answered": 0,
        "created_at": now,
        "updated_at": now,
    }
    least = _least_log_client(row, rep_id)

    # Logging: each a new message from the same sender, as a rep logs their morning's mail; each
    # log beside one bare row (its own transaction, as a log is) and one least log.
    run = time.time_ns()
    app_seconds = least_seconds = core_seconds = 0.0
    inserted: list[int] = []
    for n in range(logs):
        started = time.perf_counter()
        response = client.post(
            "/activities/email",
            headers=htmx,
            data={
                **query,
                "internet_message_id": f"<bench-{run}-{n}@bench.invalid>",
                "body_text": "Thanks, the rates look good.",
            },
        )
        app_seconds += time.perf_counter() - started
        assert response.status_code == 200, response.get_data(as_text=True)[:300]
        started = time.perf_counter()
        assert least.post("/least-log", data={"n": f"<least-{run}-{n}@bench.invalid>"}).status_code == 200
        least_seconds += time.perf_counter() - started
        started = time.perf_counter()
        with engine.begin() as connection:
            inserted.append(
                connection.execute(
                    insert(Activity).values(**row, external_id=f"<core-{run}-{n}@bench.invalid>").returning(Activity.id)
                ).scalar_one()
            )
        core_seconds += time.perf_counter() - started
    app_seconds, least_seconds, core_seconds = app_seconds / logs, least_seconds / logs, core_seconds / logs
    # What each log says to the store: the statements of one more of each (why the two differ).
    from bench.reports import statements  # noqa: PLC0415 - reports imports this module

    log_statements = statements(
        engine,
        lambda: client.post(
            "/activities/email",
            headers=htmx,
            data={**query, "internet_message_id": f"<bench-{run}-x@bench.invalid>", "body_text": "Thanks."},
        ),
    )
    least_engine = least.application.extensions["inboxcrm.db"].engine
    least_statements = statements(
        least_engine, lambda: least.post("/least-log", data={"n": f"<least-{run}-x@bench.invalid>"})
    )
    with sessions() as session:
        logged = list(session.scalars(select(Activity.id).where(Activity.external_id.like(f"<bench-{run}-%"))))
        inserted += session.scalars(select(Activity.id).where(Activity.external_id.like(f"<least-{run}-%"))).all()
    assert len(logged) == logs + 1 and len(inserted) == 2 * logs + 1

    # Taken back: the logs as the rep would, then deleted (``bench.logs``); the bare rows deleted.
    take_back(app, f"<bench-{run}-%")
    with engine.begin() as connection:
        connection.execute(delete(Activity).where(Activity.id.in_(inserted)))

    return {
        "pane_context_ms": round(pane_ms, 2),
        "pane_bare_route_ms": round(floor_ms, 2),
        "pane_vs_floor": round(pane_ms / floor_ms, 1),
        "log_email_ms": round(app_seconds * 1000, 2),
        "logs_per_second": round(1 / app_seconds, 1),
        "core_inserts_per_second": round(1 / core_seconds, 1),
        "log_vs_floor": round(core_seconds / app_seconds, 3),
        "log_least_ms": round(least_seconds * 1000, 2),
        "log_least_vs_floor": round(core_seconds / least_seconds, 3),
        "log_vs_least": round(app_seconds / least_seconds, 1),
        "log_statements": log_statements,
        "log_least_statements": least_statements,
    }


def _least_log_client(row: dict[str, Any], rep_id: int) -> FlaskClient:
    """A client of a second app with one more route: the rep signed in (Flask-Login's cookie
    session, as the pane's), one activity row inserted with Core and committed, "ok"."""
    from flask_login import login_required

    from addin import create_app
    from addin.database import commit, db

    app = create_app({"TESTING": True, "WTF_CSRF_ENABLED": False})

    @login_required
    def least_log() -> str:
        db().connection().execute(insert(Activity).values(**row, external_id=request.form["n"]))
        commit()
        return "ok"

    app.add_url_rule("/least-log", "least_log", least_log, methods=["POST"])
    client = app.test_client()
    with client.session_transaction() as cookie:
        cookie["_user_id"] = f"{rep_id}:0"
        cookie["signed_in_at"] = int(time.time())
    return client
