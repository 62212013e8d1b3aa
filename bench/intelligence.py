"""Benchmark: what activity intelligence costs (``services.sentiment``).

* ``log_scoring_adds_ms``: the p50 of logging an email through the app (``POST /activities/email``,
  a reply with a signature and a quoted thread below it) with scoring, less the p50 of the same
  with scoring switched off, logs of each alternating in one run: at most 2 ms.
* ``backfill_per_second``: activities scored per second by ``sentiment.backfill`` over the store's
  first never-scored activities (read, scored, written back in batches), rolled back after.

Called by ``bench/reports.py``; the figures go into the same JSON. Its logs are undone after.
"""

from __future__ import annotations

import statistics
import time
from datetime import datetime
from typing import Any

from flask import Flask
from sqlalchemy import select, update

from bench.logs import take_back
from services.mail import activities
from services import sentiment
from services.models import Activity, Organization, User
from services.preview import sample_mailbox

REPLY = """Thanks Rita, the new rates look good and we would like to start the pilot on the Boston lane next month.
Could you send the contract draft by Friday?

Best regards,
Ann Buyer
Head of Logistics | Acme Freight
+1 617 555 0100

On Mon, Nov 16, 2026 at 9:00 AM Rita Rep <rita@northwind.example> wrote:
> Hi Ann,
> Following our call, here are the updated rates for the three lanes we discussed.
> We can hold them until the end of the month. The reefer capacity is confirmed for Q1.
> Let me know if anything is unclear, and sorry again for the delay on the last shipment.
> Rita
"""


def measure(app: Flask, now: datetime, logs: int = 60, backfill_rows: int = 20_000) -> dict[str, Any]:
    sessions = app.extensions["inboxcrm.db"].sessions
    with sessions() as session:
        rep = session.scalars(select(User).where(User.role == "rep").order_by(User.id)).first()
        item = next(i for i in sample_mailbox(session, rep) if i.item_type == "message" and i.from_address != rep.email)
        rep_id, org_id, rep_email = rep.id, rep.organization_id, rep.email
    client = app.test_client()
    with client.session_transaction() as cookie:
        cookie["_user_id"] = f"{rep_id}:0"
        cookie["signed_in_at"] = int(time.time())
    data = {
        "item_type": "message",
        "from_address": item.from_address,
        "from_name": item.from_name,
        "subject": item.subject,
        "to": rep_email,
        "body_text": REPLY,
    }
    run = time.time_ns()
    scoring = activities.sentiment.score_activity

    def log(n: int, scored: bool) -> float:
        activities.sentiment.score_activity = scoring if scored else (lambda *args, **kwargs: None)
        try:
            started = time.perf_counter()
            response = client.post(
                "/activities/email",
                headers={"HX-Request": "true"},
                data={**data, "internet_message_id": f"<intel-{run}-{n}@bench.invalid>"},
            )
            elapsed = time.perf_counter() - started
        finally:
            activities.sentiment.score_activity = scoring
        assert response.status_code == 200, response.get_data(as_text=True)[:300]
        return elapsed

    sentiment.warm()
    log(-1, True)  # warm: the first log of a process loads the language models
    with_scoring, without = [], []
    for n in range(logs):
        with_scoring.append(log(2 * n, True))
        without.append(log(2 * n + 1, False))
    take_back(app, f"<intel-{run}-%")

    with sessions() as session:
        org = session.get(Organization, org_id)
        # A store scored already (as the demo builds it now) has nothing for the backfill: the
        # first rows it would score are made unscored in the same transaction, untimed, and
        # the whole taken back after.
        session.execute(
            update(Activity)
            .where(
                Activity.id.in_(
                    select(Activity.id)
                    .where(
                        Activity.organization_id + 0 == org_id,
                        Activity.deleted_at.is_(None),
                        Activity.sentiment_scored_at.is_not(None),
                    )
                    .order_by(Activity.id)
                    .limit(backfill_rows)
                )
            )
            .values(sentiment=None, sentiment_scored_at=None)
            .execution_options(synchronize_session=False)
        )
        started = time.perf_counter()
        scored = sentiment.backfill(session, org, limit=backfill_rows)
        backfill_seconds = time.perf_counter() - started
        session.rollback()
    return {
        "log_with_scoring_ms": round(statistics.median(with_scoring) * 1000, 2),
        "log_without_scoring_ms": round(statistics.median(without) * 1000, 2),
        "log_scoring_adds_ms": round((statistics.median(with_scoring) - statistics.median(without)) * 1000, 2),
        "backfill_rows": scored,
        "backfill_per_second": round(scored / backfill_seconds) if backfill_seconds else None,
    }
