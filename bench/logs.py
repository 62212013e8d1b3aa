"""What a bench run logged through the app, taken back so that the next run measures the same store."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import delete, select

from services.mail.activities import undo_log
from services.models import Activity, User


def take_back(app: Flask, external_ids_like: str) -> int:
    """The run's logs (their external ids ``LIKE`` the pattern) undone by their reps, as the
    pane's Undo does (counts, rollups and latest times with them), then deleted: undone rows
    left behind made the bench's deal longer run after run (4,000 activities after a few dozen),
    and deal health slower to read. Returns how many."""
    db = app.extensions["inboxcrm.db"]
    with db.sessions() as session:
        logged = session.execute(
            select(Activity.id, Activity.owner_id, Activity.deleted_at).where(
                Activity.external_id.like(external_ids_like)
            )
        ).all()
        owners = {owner_id: session.get(User, owner_id) for _, owner_id, _ in logged}
        for activity_id, owner_id, deleted_at in logged:
            if deleted_at is None:
                undo_log(session, owners[owner_id], activity_id)
        session.commit()
    with db.engine.begin() as connection:
        connection.execute(delete(Activity).where(Activity.id.in_([activity_id for activity_id, _, _ in logged])))
    return len(logged)
