"""Benchmark: the Outlook pane on the scale-30 store, through the app, side by side with its floors.

* ``pane_vs_floor``: ``GET /pane/context`` for a known sender's mail, p50, ÷ the bare route of
  the same app with the same client (``/healthz``), the two timed alternately;
* ``log_vs_floor``: emails logged per second through the app (``POST /activities/email``, each a
  new message, the rep signed in, the pane's answer rendered) ÷ SQLAlchemy Core inserts of
  activity rows per second into the same store, each in a transaction of its own as a log is.

Called by ``bench/reports.py``; the figures go into the same JSON. What the bench logs and
inserts it takes back afterwards (the logs by the pane's own undo, the bare rows deleted), so
that the store the next run measures is the same.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from flask import Flask
from sqlalchemy import delete, insert, select

from bench.gmail import alternating
from services.activities import undo_log
from services.models import Activity, User
from services.preview import sample_mailbox


def measure(app: Flask, now: datetime, repeat: int = 200, logs: int = 100) -> dict[str, Any]:
    sessions = app.extensions["inboxcrm.db"].sessions
    engine = app.extensions["inboxcrm.db"].engine
    with sessions() as session:
        rep = session.scalars(select(User).where(User.role == "rep").order_by(User.id)).first()
        item = next(i for i in sample_mailbox(session, rep) if i.item_type == "message" and i.from_address != rep.email)
        rep_id, org_id, rep_email = rep.id, rep.organization_id, rep.email
    query = {"item_type": "message", "from_address": item.from_address, "from_name": item.from_name, "subject": item.subject,
             "internet_message_id": item.internet_message_id, "to": rep_email}
    client = app.test_client()
    with client.session_transaction() as cookie:
        cookie["_user_id"] = f"{rep_id}:0"
        cookie["signed_in_at"] = int(time.time())
    htmx = {"HX-Request": "true"}

    def context() -> None:
        assert client.get("/pane/context", query_string=query, headers=htmx).status_code == 200

    context()  # warm
    pane_ms, floor_ms = alternating(context, lambda: client.get("/healthz"), repeat)

    # Logging: each a new message from the same sender, as a rep logs their morning's mail.
    run = time.time_ns()
    logged: list[int] = []
    started = time.perf_counter()
    for n in range(logs):
        response = client.post("/activities/email", headers=htmx, data={
            **query, "internet_message_id": f"<bench-{run}-{n}@bench.invalid>", "body_text": "Thanks, the rates look good."})
        assert response.status_code == 200, response.get_data(as_text=True)[:300]
    app_seconds = (time.perf_counter() - started) / logs
    with sessions() as session:
        logged = list(session.scalars(select(Activity.id).where(Activity.external_id.like(f"<bench-{run}-%"))))
    assert len(logged) == logs

    # The floor: bare activity rows, one transaction each.
    row = {"organization_id": org_id, "type": "email", "direction": "inbound", "occurred_at": now, "owner_id": rep_id,
           "source": "outlook", "subject": item.subject, "body_text": "Thanks, the rates look good.", "is_private": False,
           "checklist_questions": 0, "checklist_answered": 0, "created_at": now, "updated_at": now}
    inserted: list[int] = []
    started = time.perf_counter()
    for n in range(logs):
        with engine.begin() as connection:
            inserted.append(connection.execute(insert(Activity).values(**row, external_id=f"<core-{run}-{n}@bench.invalid>")
                                               .returning(Activity.id)).scalar_one())
    core_seconds = (time.perf_counter() - started) / logs

    # Taken back: the logs as the rep would (their counts and rollups with them), the bare rows deleted.
    with sessions() as session:
        actor = session.get(User, rep_id)
        for activity_id in logged:
            undo_log(session, actor, activity_id)
        session.commit()
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
    }
