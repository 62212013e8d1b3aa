"""Benchmark: syncing the store through the API (``addin.routes.api``).

* ``sync_full_records_per_second``: every record of every synced type read through
  ``GET /api/v1/<type>`` page by page (1,000 a page, the cursor passed back), as JSON, by a
  client with a read token; beside ``sync_duckdb_records_per_second``, DuckDB reading the same
  rows (the same tables' columns, loaded beforehand, not timed) out to Python, and their ratio
  ``sync_full_vs_duckdb``.
* ``sync_incremental_seconds``: after 1,000 changes (contacts renamed, in transactions of 10),
  the sync from the cursor the full sync ended at: how long, and that it brought exactly those.

Called by ``bench/reports.py``; the figures go into the same JSON. The token is removed and the
contacts' names put back afterwards (the store's change counter moves on, as it would).
"""

from __future__ import annotations

import csv
import tempfile
import time
from datetime import date, datetime
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import delete, select

from services.integration import api_tokens, sync
from services.models import ApiToken, Contact, IdempotencyKey, User

PAGE = 1000


def _duckdb_floor(app: Flask, organization_id: int) -> tuple[float, int]:
    """DuckDB reading every synced table's rows (their columns, as loaded from the store)."""
    import duckdb

    engine = app.extensions["inboxcrm.db"].engine
    duck = duckdb.connect()
    folder = Path(tempfile.mkdtemp())
    for name, model in sync.SYNCED.items():
        table = model.__table__
        columns = [c for c in table.c if c.name not in ("body_html", "password_hash")]
        path = folder / f"{name}.csv"
        with engine.connect() as connection, path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow([c.name for c in columns])
            for row in connection.execution_options(yield_per=50_000).execute(
                select(*columns).where(table.c.organization_id == organization_id)
            ):
                writer.writerow(
                    ["" if v is None else (v.isoformat() if isinstance(v, (datetime, date)) else v) for v in row]
                )
        duck.execute(f"CREATE TABLE {name} AS SELECT * FROM read_csv('{path}', header=true, all_varchar=true)")
        path.unlink()
    started = time.perf_counter()
    rows = 0
    for name in sync.SYNCED:  # out to Python a page at a time, as the API's client reads them
        result = duck.execute(f"SELECT * FROM {name} ORDER BY id")
        while batch := result.fetchmany(PAGE):
            rows += len(batch)
    return time.perf_counter() - started, rows


def measure(app: Flask) -> dict[str, Any]:
    sessions = app.extensions["inboxcrm.db"].sessions
    with sessions() as session:
        admin = session.scalars(select(User).where(User.role == "admin")).first()
        org_id = admin.organization_id
        made, text = api_tokens.create_token(session, admin, "Bench sync", "read write")
        session.commit()
        token_id = made.id
    client = app.test_client()
    headers = {"Authorization": f"Bearer {text}"}

    def sync_all(cursors: dict[str, str | None]) -> tuple[int, dict[str, str]]:
        records, ends = 0, {}
        for record_type in sync.SYNCED:
            cursor = cursors.get(record_type)
            while True:
                page = client.get(
                    f"/api/v1/{record_type}",
                    query_string={"limit": PAGE, **({"cursor": cursor} if cursor else {})},
                    headers=headers,
                ).get_json()
                records += len(page["data"]) + len(page["deleted"])
                cursor = page["cursor"]
                if not page["has_more"]:
                    break
            ends[record_type] = cursor
        return records, ends

    started = time.perf_counter()
    full_records, cursors = sync_all({})
    full_seconds = time.perf_counter() - started

    # 1,000 changes, in transactions of ten, then the sync from where the full one ended.
    with sessions() as session:
        contacts = session.scalars(
            select(Contact).where(Contact.organization_id == org_id).order_by(Contact.id).limit(1000)
        ).all()
        names = {c.id: c.name for c in contacts}
        for start in range(0, len(contacts), 10):
            for contact in contacts[start : start + 10]:
                contact.name = contact.name + " (bench)"
            session.commit()
    started = time.perf_counter()
    changed, _ = sync_all(cursors)
    incremental_seconds = time.perf_counter() - started

    with sessions() as session:
        for contact in session.scalars(select(Contact).where(Contact.id.in_(list(names)))):
            contact.name = names[contact.id]
        session.execute(delete(IdempotencyKey).where(IdempotencyKey.token_id == token_id))
        session.execute(delete(ApiToken).where(ApiToken.id == token_id))
        session.commit()

    duck_seconds, duck_rows = _duckdb_floor(app, org_id)
    api_rate, duck_rate = full_records / full_seconds, duck_rows / duck_seconds
    return {
        "sync_full_records": full_records,
        "sync_full_seconds": round(full_seconds, 1),
        "sync_full_records_per_second": round(api_rate),
        "sync_duckdb_records_per_second": round(duck_rate),
        "sync_full_vs_duckdb": round(api_rate / duck_rate, 3),
        "sync_duckdb_rows_agree": duck_rows == full_records,
        "sync_incremental_changes": len(names),
        "sync_incremental_records": changed,
        "sync_incremental_seconds": round(incremental_seconds, 3),
    }
