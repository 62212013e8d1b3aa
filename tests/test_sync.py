"""Incremental sync: every change numbered in commit order, read back by cursor without a
miss or a repeat, even while writes land between the pages (on PostgreSQL from other
connections at the same time)."""

from __future__ import annotations

import random
import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from services.mail import activities
from services.integration import sync
from services.errors import DomainError
from services.models import Contact, ContactEmail, Opportunity, Organization, Tombstone, User
from services.privacy import erase_person
from tests.factories import NOW, World, make_contact


def seq_of(session, record) -> int:
    session.expire(record)
    return record.sync_seq


def counter(session, org_id: int) -> int:
    return session.scalar(select(Organization.change_seq).where(Organization.id == org_id))


def test_a_write_is_numbered_and_what_the_store_keeps_for_itself_is_not_a_change(session, world: World):
    deal_seq = seq_of(session, world.deal)
    assert deal_seq > 0  # made through the ORM in the world
    rep = session.get(User, world.rep.id)
    activity, _ = activities.log_email(
        session,
        rep,
        {
            "internet_message_id": "<s1@acme.test>",
            "from_address": "ann@acme.test",
            "to": ["rita@northwind.test"],
            "subject": "Rates",
            "body_text": "Thanks!",
        },
        now=NOW,
    )
    session.commit()
    assert activity.sync_seq == counter(session, world.org.id) > deal_seq
    # The log moved the deal's latest activity (kept by the store): not a change of the deal.
    assert (
        seq_of(session, world.deal) == deal_seq and session.get(Opportunity, world.deal.id).last_activity_at is not None
    )
    # A rating is.
    activities.rate_activity(session, rep, activity.id, {"rating": "1"})
    session.commit()
    assert seq_of(session, activity) == counter(session, world.org.id) > deal_seq


def test_a_childs_change_is_its_parents(session, world: World):
    before = seq_of(session, world.contact)
    session.add(ContactEmail(organization_id=world.org.id, contact_id=world.contact.id, address="ann.b@acme.test"))
    session.commit()
    assert seq_of(session, world.contact) > before


def test_one_transaction_one_number_and_each_organization_its_own(session, world: World):
    first = make_contact(session, world.org, world.account, "Bo One", "bo@acme.test", world.rep)
    second = make_contact(session, world.org, world.account, "Cy Two", "cy@acme.test", world.rep)
    theirs = make_contact(session, world.other_org, world.other_account, "Di Three", "di@acme.test", world.other_user)
    session.commit()
    assert first.sync_seq == second.sync_seq == counter(session, world.org.id)
    assert theirs.sync_seq == counter(session, world.other_org.id)


def test_a_savepoint_rolled_back_gives_up_its_number(session, world: World):
    rep = session.get(User, world.rep.id)
    item = {
        "internet_message_id": "<dup@acme.test>",
        "from_address": "ann@acme.test",
        "to": ["rita@northwind.test"],
        "subject": "Hi",
    }
    activities.log_email(session, rep, item, now=NOW)
    session.commit()
    with session.begin_nested():
        make_contact(session, world.org, None, "Ed Temp", "ed@acme.test", world.rep)
        session.flush()
        taken = counter(session, world.org.id)
        session.rollback()
    make_contact(session, world.org, None, "Fay Kept", "fay@acme.test", world.rep)
    session.commit()
    kept = session.scalar(select(Contact).where(Contact.name == "Fay Kept"))
    assert kept.sync_seq == counter(session, world.org.id) >= taken
    # No record carries a number the counter has not reached.
    for model in sync.SYNCED.values():
        assert (
            session.scalar(select(func.max(model.sync_seq)).where(model.organization_id == world.org.id)) or 0
        ) <= counter(session, world.org.id)


def replica_sync(
    session, org_id: int, record_type: str, replica: dict, cursor: sync.Cursor, limit: int, delivered: list
) -> sync.Cursor:
    """One page of a client's sync, applied to its copy."""
    page = sync.changes(session, org_id, record_type, cursor, limit)
    for record in page.records:
        delivered.append((record.id, record.sync_seq))
        if getattr(record, "deleted_at", None) is not None:
            replica.pop(record.id, None)
        else:
            replica[record.id] = (record.sync_seq, record.name)
    for stone in page.tombstones:
        delivered.append((stone.record_id, stone.sync_seq))
        replica.pop(stone.record_id, None)
    return page.cursor


def sync_to_end(reader, org_id: int, replica: dict, cursor: sync.Cursor, limit: int, delivered: list) -> sync.Cursor:
    """The client's pages until one brings nothing new."""
    while True:
        before = cursor
        cursor = replica_sync(reader, org_id, "contacts", replica, cursor, limit, delivered)
        if cursor == before:
            return cursor


def live_contacts(session, org_id: int) -> dict:
    return {
        c.id: (c.sync_seq, c.name)
        for c in session.scalars(select(Contact).where(Contact.organization_id == org_id, Contact.deleted_at.is_(None)))
    }


def test_a_paginated_sync_with_writes_between_its_pages_misses_nothing_and_repeats_nothing(sessions, world: World):
    rng = random.Random(5)
    org_id = world.org.id
    with sessions() as setup:
        for i in range(40):
            make_contact(
                setup,
                setup.get(Organization, org_id),
                None,
                f"Seed {i}",
                f"seed{i}@acme.test",
                setup.get(User, world.rep.id),
            )
        setup.commit()
    replica: dict = {}
    delivered: list = []
    cursor = sync.Cursor()
    made = 0
    with sessions() as writer:
        for round_ in range(60):
            with sessions() as reader:
                cursor = replica_sync(reader, org_id, "contacts", replica, cursor, rng.randint(1, 7), delivered)
            # Between the pages: new contacts, renamed ones (read already or not), soft deletes, an erasure.
            ids = list(
                writer.scalars(
                    select(Contact.id).where(Contact.organization_id == org_id, Contact.deleted_at.is_(None))
                )
            )
            action = rng.random()
            if action < 0.35:
                made += 1
                make_contact(
                    writer,
                    writer.get(Organization, org_id),
                    None,
                    f"New {made}",
                    f"new{made}@acme.test",
                    writer.get(User, world.rep.id),
                )
            elif action < 0.75:
                writer.get(Contact, rng.choice(ids)).name = f"Renamed {round_}"
            elif action < 0.9:
                writer.get(Contact, rng.choice(ids)).deleted_at = NOW
            else:
                victim = writer.get(Contact, rng.choice(ids))
                address = writer.scalar(select(ContactEmail.address).where(ContactEmail.contact_id == victim.id))
                erase_person(writer, writer.get(Organization, org_id), address, secret="s")
            writer.commit()
    with sessions() as reader:
        sync_to_end(reader, org_id, replica, cursor, 5, delivered)
        assert replica == live_contacts(reader, org_id)
        assert len(delivered) == len(set(delivered))  # each change once
        assert reader.scalar(select(func.count()).select_from(Tombstone)) >= 1


def test_a_cursor_not_given_by_the_api_is_refused():
    for bad in ("nonsense", "djE6eDp5", "!!!", "v2"):
        with pytest.raises(DomainError) as raised:
            sync.Cursor.decode(bad)
        assert raised.value.code == "invalid_cursor"
    assert sync.Cursor.decode(sync.Cursor(7, 9).encode()) == sync.Cursor(7, 9)


def test_concurrent_writers_on_postgresql_never_hide_a_change_from_a_reader(sessions, world: World):
    """Writers commit from their own connections while a reader pages: a number is handed out
    in commit order, so whatever the reader passed can never be followed by an earlier number."""
    if sessions.kw["bind"].dialect.name != "postgresql":
        pytest.skip("SQLite has one writer at a time: the concurrency is PostgreSQL's")
    org_id = world.org.id
    stop = threading.Event()
    errors: list[BaseException] = []

    def write(name: str) -> None:
        try:
            n = 0
            while not stop.is_set() and n < 60:
                with sessions() as writer:
                    make_contact(
                        writer,
                        writer.get(Organization, org_id),
                        None,
                        f"{name} {n}",
                        f"{name}{n}@acme.test",
                        writer.get(User, world.rep.id),
                    )
                    writer.flush()
                    if n % 3 == 0:
                        writer.get(Contact, world.contact.id).name = f"Ann by {name} {n}"
                    writer.commit()
                n += 1
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    writers = [threading.Thread(target=write, args=(f"w{i}",)) for i in range(3)]
    for thread in writers:
        thread.start()
    replica: dict = {}
    delivered: list = []
    cursor = sync.Cursor()
    while any(t.is_alive() for t in writers):
        with sessions() as reader:
            cursor = replica_sync(reader, org_id, "contacts", replica, cursor, 4, delivered)
    stop.set()
    for thread in writers:
        thread.join()
    assert not errors
    with sessions() as reader:
        sync_to_end(reader, org_id, replica, cursor, 50, delivered)
        assert replica == live_contacts(reader, org_id)
        assert len(delivered) == len(set(delivered))


def test_retention_and_erasure_are_changes(session, world: World):
    rep = session.get(User, world.rep.id)
    activity, _ = activities.log_email(
        session,
        rep,
        {
            "internet_message_id": "<old@acme.test>",
            "from_address": "ann@acme.test",
            "to": ["rita@northwind.test"],
            "subject": "Old",
            "body_text": "Old text",
            "sent_at": (NOW - timedelta(days=400)).isoformat(),
        },
        now=NOW,
    )
    session.commit()
    before, contact_id = seq_of(session, activity), world.contact.id
    erase_person(session, session.get(Organization, world.org.id), "ann@acme.test", secret="s")
    session.commit()
    assert seq_of(session, activity) > before
    stone = session.scalar(select(Tombstone).where(Tombstone.record_id == contact_id))
    assert (stone.record_type, stone.sync_seq) == ("contacts", counter(session, world.org.id))


def test_a_record_deleted_outright_through_the_orm_leaves_a_tombstone(session, world: World):
    gone = make_contact(session, world.org, None, "Gus Gone", "gus@acme.test", world.rep)
    session.commit()
    gone_id = gone.id
    session.delete(gone)
    session.commit()
    stone = session.scalar(select(Tombstone).where(Tombstone.record_id == gone_id))
    assert (stone.record_type, stone.sync_seq) == ("contacts", counter(session, world.org.id))


@pytest.fixture(params=["sqlite", "postgresql"])
def store_app(request, tmp_path, monkeypatch):
    """The app on each back end (the API's page is read through the request's own session)."""
    from addin import create_app
    from services.models import Base

    monkeypatch.delenv("DATABASE_URL", raising=False)
    url = (
        f"sqlite:///{tmp_path / 'app.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("postgres_server").fresh_database("inboxcrm_snapshot")
    )
    app = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": url,
            "SECRET_KEY": "test",
            "JOBS_SQLITE_PATH": str(tmp_path / "jobs.db"),
        }
    )
    Base.metadata.create_all(app.extensions["inboxcrm.db"].engine)
    yield app
    app.extensions["inboxcrm.db"].engine.dispose()


def test_a_page_reads_its_records_and_tombstones_in_one_snapshot(store_app, monkeypatch):
    """Two commits land between a page's read of its records and of its tombstones: a change to
    one contact, then another contact deleted outright. The page's cursor must not pass the
    change its first read did not see."""
    from services.integration import api_tokens
    from tests.factories import build_world

    app = store_app
    sessions = app.extensions["inboxcrm.db"].sessions
    with sessions() as session:
        world = build_world(session)
        _, token = api_tokens.create_token(session, session.get(User, world.admin.id), "Sync", "read")
        doomed = make_contact(session, world.org, world.account, "Dee Doomed", "dee@acme.test", world.rep)
        session.commit()
        doomed_id = doomed.id
    real, calls = sync.rows_past, []

    def between(*args, **kwargs):
        rows = real(*args, **kwargs)
        calls.append(1)
        if len(calls) == 1:  # the records read: two commits from another connection, then the tombstones
            with sessions() as other:
                other.get(Contact, world.contact.id).name = "Changed meanwhile"
                other.commit()
                other.delete(other.get(Contact, doomed_id))
                other.commit()
        return rows

    monkeypatch.setattr(sync, "rows_past", between)
    http, headers = app.test_client(), {"Authorization": f"Bearer {token}"}
    first = http.get("/api/v1/contacts", headers=headers).get_json()
    monkeypatch.setattr(sync, "rows_past", real)
    later = http.get("/api/v1/contacts", headers=headers, query_string={"cursor": first["cursor"]}).get_json()
    seen = {c["id"]: c["name"] for c in first["data"] + later["data"]}
    assert seen[world.contact.id] == "Changed meanwhile"  # never skipped
    assert doomed_id in {t["id"] for t in first["deleted"] + later["deleted"]}
