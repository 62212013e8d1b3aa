"""Every path that writes an activity keeps the figures: what the rollups and the deals' and
accounts' latest times hold after writes, changes and deletions through each path (the pane's
log and undo, a meeting, a note, the API's edits and deletions, erasure, retention) equals a
recount from the live activities (``rebuild_rollups``), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from services.mail import activities
from services.integration import records
from services.models import Account, Activity, Opportunity, Organization, User
from services.privacy import erase_person, remove_old_bodies
from services.rollups import rebuild_rollups
from tests.helpers import rollup_snapshot
from services.types import utcnow
from tests.factories import World

MAIL = {
    "item_type": "message",
    "from_address": "ann@acme.test",
    "to": ["rita@northwind.test"],
    "subject": "Rates",
    "body_text": "Thanks!",
}


def kept(session, org_id: int):
    session.expire_all()
    return (
        rollup_snapshot(session, org_id),
        {
            (d.id, d.last_activity_at, d.last_inbound_at)
            for d in session.scalars(select(Opportunity).where(Opportunity.organization_id == org_id))
        },
        {(a.id, a.last_activity_at) for a in session.scalars(select(Account).where(Account.organization_id == org_id))},
    )


def recounted(session, org_id: int):
    rebuild_rollups(session, session.get(Organization, org_id))
    session.flush()
    return kept(session, org_id)


def test_every_write_path_keeps_the_rollups_and_latest_times(session, world: World):
    rep, admin = session.get(User, world.rep.id), session.get(User, world.admin.id)
    now = utcnow()
    org = session.get(Organization, world.org.id)
    # The pane: mails in and out, a call with a checklist note, a meeting, a note; one mail undone.
    first, _ = activities.log_email(
        session,
        rep,
        {
            **MAIL,
            "internet_message_id": "<w1@acme.test>",
            "sent_at": (now - timedelta(days=3)).isoformat(),
            "opportunity_id": world.deal.id,
        },
    )
    activities.log_email(
        session,
        rep,
        {**MAIL, "internet_message_id": "<w2@acme.test>", "sent_at": (now - timedelta(days=2)).isoformat()},
    )
    undone, _ = activities.log_email(
        session,
        rep,
        {
            **MAIL,
            "internet_message_id": "<w3@acme.test>",
            "sent_at": (now - timedelta(hours=1)).isoformat(),
            "opportunity_id": world.deal.id,
        },
    )
    call, _ = activities.log_activity(
        session,
        rep,
        {
            "type": "call",
            "direction": "outbound",
            "outcome": "connected",
            "duration_minutes": 20,
            "contact_id": world.contact.id,
            "opportunity_id": world.deal.id,
            "occurred_at": (now - timedelta(days=1)).isoformat(),
            "body_text": "Truck size: 40 ft",
        },
    )
    activities.log_meeting(
        session,
        rep,
        {
            "item_type": "appointment",
            "event_id": "E1",
            "subject": "Review",
            "start": (now - timedelta(hours=5)).isoformat(),
            "end": (now - timedelta(hours=4)).isoformat(),
            "attendees": ["ann@acme.test"],
        },
    )
    activities.add_note(session, rep, {"account_id": world.account.id, "body": "Asked about lanes"})
    session.commit()
    activities.undo_log(session, rep, undone.id)
    session.commit()
    assert kept(session, org.id) == recounted(session, org.id)
    session.rollback()
    # The API's generic edits and deletions: a call shortened and no longer connected, a mail deleted.
    records.update_record(
        session, admin, Activity, call.id, {"duration_minutes": 5, "outcome": "no_answer"}, call.sync_seq
    )
    first = session.get(Activity, first.id)
    records.delete_record(session, admin, Activity, first.id, first.sync_seq)
    session.commit()
    assert kept(session, org.id) == recounted(session, org.id)
    session.rollback()
    # Erasure and retention change text, never a count or a time.
    org.settings = {**org.settings, "body_retention_months": 1}
    remove_old_bodies(session, org, now + timedelta(days=400))
    erase_person(session, org, "ann@acme.test", secret="k", actor=admin)
    session.commit()
    assert kept(session, org.id) == recounted(session, org.id)
    session.rollback()
