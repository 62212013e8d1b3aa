"""Privacy: block lists (PRODUCT.md, "Privacy"). Mail with a blocked participant is never
logged, from any path; nothing of it is stored; the lists are validated, scoped, and only
admins keep the organization's."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from services.mail.activities import log_email, log_meeting
from services.mail.context import context_for_addresses
from services.errors import DomainError, Forbidden
from services.models import Activity, ActivityParticipant, AuditEvent, BlockEntry
from services.privacy import BLOCKED_MESSAGE, add_entry, blocked, parse_entry, remove_entry
from tests.factories import World

MAIL = {
    "item_type": "message",
    "from_address": "ann@acme.test",
    "to": ["rita@northwind.test"],
    "subject": "Salary review",
    "internet_message_id": "<hr-1@acme.test>",
    "body_text": "Confidential",
}


@pytest.mark.parametrize(
    "typed, parsed",
    [
        ("Ann@Acme.test", ("address", "ann@acme.test")),
        ("  lawfirm.example ", ("domain", "lawfirm.example")),
        ("@lawfirm.example", ("domain", "lawfirm.example")),
        ("xn--bcher-kva.example", ("domain", "xn--bcher-kva.example")),
    ],
)
def test_entries_are_addresses_or_domains(typed, parsed):
    assert parse_entry(typed) == parsed


@pytest.mark.parametrize(
    "typed, message",
    [
        ("foo@", "not an e-mail address"),
        ("@@x", "not an e-mail address"),
        ("x" * 10_000, "too long"),
        ("", "type an address or a domain"),
        ("acme", "not a domain"),
        ("ann@localhost", "not an e-mail address"),
        ("<script>@x.test", "not an e-mail address"),
    ],
)
def test_bad_entries_are_refused_plainly(typed, message):
    with pytest.raises(DomainError) as refused:
        parse_entry(typed)
    assert message in refused.value.message.lower() and not (typed and typed[:20] in refused.value.message)


def count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model))


@pytest.mark.parametrize(
    "entry, owner", [("ann@acme.test", "admin"), ("acme.test", "admin"), ("test", None), ("acme.test", "rep")]
)
def test_blocked_mail_is_never_logged(session, world: World, entry, owner):
    """On the organization's list (an admin's) or the rep's own: not logged, nothing of it kept,
    and the refusal does not name the address. ("test" is not a domain mail uses, so it blocks nothing.)"""
    if owner is None:
        with pytest.raises(DomainError):
            add_entry(session, world.admin, entry, organization_wide=True)
        return
    add_entry(session, world.admin if owner == "admin" else world.rep, entry, organization_wide=owner == "admin")
    session.commit()
    audit_before = count(session, AuditEvent)
    for mail in (
        MAIL,
        {
            **MAIL,
            "from_address": "rita@northwind.test",
            "to": ["boss@hq.acme.test" if entry == "acme.test" else "ann@acme.test"],
        },
    ):
        with pytest.raises(DomainError) as refused:
            log_email(session, world.rep, mail)
        session.rollback()
        assert refused.value.message == BLOCKED_MESSAGE and "acme" not in refused.value.message
    with pytest.raises(DomainError):
        log_meeting(
            session,
            world.rep,
            {
                "event_id": "e-1",
                "subject": "Salary",
                "start": "2026-11-02T14:00:00Z",
                "attendees": ["ann@acme.test", "rita@northwind.test"],
            },
        )
    session.rollback()
    assert count(session, Activity) == 0 and count(session, ActivityParticipant) == 0
    assert count(session, AuditEvent) == audit_before
    assert context_for_addresses(session, world.rep, ["ann@acme.test"]).blocked


def test_a_reps_list_is_their_own_and_lists_stay_in_their_organization(session, world: World):
    add_entry(session, world.rep, "ann@acme.test", organization_wide=False)
    session.commit()
    assert blocked(session, world.rep, ["ann@acme.test"]) and not blocked(session, world.teammate, ["ann@acme.test"])
    activity, created = log_email(session, world.teammate, {**MAIL, "to": ["tom@northwind.test"]})
    assert created
    # Contoso's admin blocking acme.test blocks nothing at Northwind.
    add_entry(session, world.other_user, "acme.test", organization_wide=True)
    session.commit()
    assert not blocked(session, world.teammate, ["ann@acme.test"])
    assert blocked(session, world.other_user, ["ann@acme.test"])


def test_only_admins_keep_the_organizations_list(session, world: World):
    for who in (world.rep, world.manager):
        with pytest.raises(Forbidden):
            add_entry(session, who, "acme.test", organization_wide=True)
    entry = add_entry(session, world.admin, "acme.test", organization_wide=True)
    again = add_entry(session, world.admin, "ACME.test", organization_wide=True)
    assert again.id == entry.id
    for who in (world.rep, world.manager):
        with pytest.raises(Forbidden):
            remove_entry(session, who, entry.id)
    own = add_entry(session, world.rep, "ann@acme.test", organization_wide=False)
    with pytest.raises(Forbidden):
        remove_entry(session, world.teammate, own.id)
    with pytest.raises(DomainError):  # another organization's entry is not found
        remove_entry(session, world.other_user, entry.id)
    remove_entry(session, world.admin, entry.id)
    remove_entry(session, world.rep, own.id)
    session.commit()
    assert count(session, BlockEntry) == 0
    assert (
        session.scalars(select(AuditEvent.action).where(AuditEvent.record_type == "block_entries")).all().count("block")
        == 2
    )


def test_block_list_pages(auth, app_world: World, app):
    """The pane's own list, the admin's page (admins only, CSRF-protected), and a blocked
    mail's pane, which says why instead of offering to log."""
    auth.login("rita@northwind.test")
    assert auth.get("/admin/block-list").status_code == 403
    assert auth.post("/admin/block-list", {"value": "acme.test"}).status_code == 403
    refused = auth.post("/pane/block-list", {"value": "foo@"})
    assert refused.status_code == 422 and "not an e-mail address" in refused.get_data(as_text=True)
    added = auth.post("/pane/block-list", {"value": "ann@acme.test"})
    assert added.status_code == 200 and "ann@acme.test" in added.get_data(as_text=True)
    pane = auth.get(
        "/pane/context",
        query_string={
            "item_type": "message",
            "from_address": "ann@acme.test",
            "internet_message_id": "<hr-1@acme.test>",
            "to": "rita@northwind.test",
        },
    )
    page = pane.get_data(as_text=True)
    assert BLOCKED_MESSAGE in page and 'data-form="log_email"' not in page
    logged = auth.post("/activities/email", {**MAIL, "to": "rita@northwind.test"})
    assert logged.status_code == 422 and BLOCKED_MESSAGE in logged.get_data(as_text=True)
    sending = auth.post(
        "/activities/sending",
        {**MAIL, "from_address": "rita@northwind.test", "to": "ann@acme.test", "send_key": "0" * 32},
    )
    assert sending.status_code == 422 and sending.json["error"] == BLOCKED_MESSAGE
    auth.login("ada@northwind.test")
    assert auth.client.post("/admin/block-list", data={"value": "lawfirm.example"}).status_code == 400  # no CSRF token
    assert auth.post("/admin/block-list", {"value": "lawfirm.example"}, htmx=False).status_code == 302
    assert "lawfirm.example" in auth.get("/admin/block-list", htmx=False).get_data(as_text=True)
    with app.extensions["inboxcrm.db"].sessions() as session:
        assert session.scalar(select(func.count(Activity.id))) == 0


def test_internal_mail_says_why_and_is_not_logged(auth, app_world: World, app):
    """Everyone on it on Northwind's domains: the pane says why there is nothing to log, and a
    log refuses; where the organization logs internal mail, it is offered and logged."""
    from services.models import Organization
    from services.privacy import INTERNAL_MESSAGE

    internal = {
        "item_type": "message",
        "from_address": "tom@northwind.test",
        "to": "rita@northwind.test",
        "internet_message_id": "<int-1@northwind.test>",
        "subject": "Lunch",
    }
    auth.login("rita@northwind.test")
    page = auth.get("/pane/context", query_string=internal).get_data(as_text=True)
    assert INTERNAL_MESSAGE in page and 'data-form="log_email"' not in page
    refused = auth.post("/activities/email", internal)
    assert refused.status_code == 422 and INTERNAL_MESSAGE in refused.get_data(as_text=True)
    with app.extensions["inboxcrm.db"].sessions() as session:
        org = session.get(Organization, app_world.org.id)
        org.settings = {**org.settings, "log_internal_mail": True}
        session.commit()
    page = auth.get("/pane/context", query_string=internal).get_data(as_text=True)
    assert INTERNAL_MESSAGE not in page and 'data-form="log_email"' in page
    assert auth.post("/activities/email", internal).status_code == 200
    with app.extensions["inboxcrm.db"].sessions() as session:
        assert session.scalar(select(Activity.direction)) == "internal"


def test_a_private_activity_keeps_its_content_to_its_owner(auth, app_world: World, app):
    """Rita logs a call private, and makes a note private later: her teammate and her manager
    see that there was one, never its subject or text (the pane, the timeline, the notes feed);
    it counts in the figures all the same; only Rita may change it."""
    from services.mail.activities import set_private
    from services.reports import activity_summary, report_scope
    from services.periods import period_for
    from datetime import date

    base = {
        "item_type": "message",
        "from_address": "ann@acme.test",
        "to": "rita@northwind.test",
        "internet_message_id": "<p-1@acme.test>",
        "contact_id": app_world.contact.id,
        "account_id": app_world.account.id,
    }
    auth.login("rita@northwind.test")
    auth.post(
        "/activities",
        {
            **base,
            "type": "call",
            "outcome": "connected",
            "activity_subject": "SALARY-TALK",
            "body_text": "SECRET-TEXT",
            "is_private": "1",
        },
    )
    noted = auth.post("/activities/note", {**base, "body": "SECRET-NOTE"})
    with app.extensions["inboxcrm.db"].sessions() as session:
        call = session.scalars(select(Activity).where(Activity.type == "call")).one()
        note_id = session.scalar(select(Activity.id).where(Activity.type == "note"))
        assert call.is_private and noted.status_code == 200
    marked = auth.post(f"/activities/{note_id}/private", {**base, "private": "1"})
    assert marked.status_code == 200 and "Private: only you see" in marked.get_data(as_text=True)
    own = auth.get("/pane/context", query_string=base).get_data(as_text=True)
    assert "SALARY-TALK" in own and "SECRET-NOTE" in own and "🔒 private" in own

    for reader in ("tom@northwind.test", "mia@northwind.test"):  # a teammate, the manager
        auth.login(reader)
        responses = [
            auth.get("/pane/context", query_string=base),
            auth.get(f"/pane/accounts/{app_world.account.id}/timeline"),
            auth.get("/notes", query_string={"account": "acme"}),
        ]
        assert [r.status_code for r in responses] == [200, 200, 200], reader
        pages = [r.get_data(as_text=True) for r in responses]
        assert all("Private" in page for page in pages), reader  # that there was one, shown
        for page in pages:
            assert not any(secret in page for secret in ("SALARY-TALK", "SECRET-TEXT", "SECRET-NOTE")), reader
        assert auth.post(f"/activities/{note_id}/private", {**base, "private": "0"}).status_code == 403

    with app.extensions["inboxcrm.db"].sessions() as session:
        from services.models import User

        rita, mia = session.get(User, app_world.rep.id), session.get(User, app_world.manager.id)
        year = period_for("this_year", date.today(), 1)
        counted = {row.owner_id: row.total for row in activity_summary(report_scope(session, mia, year))}
        assert counted[rita.id] == 2  # the private call and note count
        with pytest.raises(Forbidden):
            set_private(session, mia, note_id, False)
        set_private(session, rita, note_id, False)
        session.commit()
        assert {row.owner_id: row.total for row in activity_summary(report_scope(session, mia, year))} == counted


# -- erasure, export, retention -----------------------------------------------------------------


def _everything_about_ann(session, world: World) -> None:
    """Ann (Acme) in every place an address can land: her contact, a logged mail with her (its
    participants), a note naming her address, a follow-up's title, a lead, the audit trail."""
    from services.mail.activities import add_note
    from services.followups import add_follow_up
    from services.models import Lead

    log_email(session, world.rep, {**MAIL, "subject": "Ann's salary", "body_text": "Dear Ann, write to ann@acme.test"})
    add_note(session, world.rep, {"account_id": world.account.id, "body": "Ask ANN@ACME.TEST for the contract"})
    add_follow_up(
        session,
        world.rep,
        {"title": "Call ann@acme.test back", "due_at": "2099-01-05T10:00", "account_id": world.account.id},
    )
    session.add(Lead(organization_id=world.org.id, name="Ann Buyer", email="ann@acme.test", source="web_form"))
    session.commit()


def _rows_holding(session, org_id: int, needle: str) -> list[str]:
    """Every row of the organization, in every table, with ``needle`` in any of its columns."""
    from services.models import Base

    found = []
    for table in Base.metadata.sorted_tables:
        if "organization_id" not in table.c:
            continue
        for row in session.execute(select(table).where(table.c.organization_id == org_id)):
            if needle in repr(tuple(row)).lower():
                found.append(f"{table.name}:{row[0]}")
    return found


def test_erasure_leaves_no_copy_of_the_address_and_every_figure_stands(session, world: World, engine):
    from datetime import date

    from services.models import Organization
    from services.periods import period_for
    from services.privacy import erase_person, keyed_hash, after_erasure
    from services.reports import activity_summary, report_scope
    from tests.helpers import rollup_snapshot

    _everything_about_ann(session, world)
    year = period_for("this_year", date.today(), 1)
    counts_before = (
        count(session, Activity),
        activity_summary(report_scope(session, world.admin, year)),
        rollup_snapshot(session, world.org.id),
    )
    assert _rows_holding(session, world.org.id, "ann@acme.test")
    erasure = erase_person(
        session, session.get(Organization, world.org.id), "Ann@Acme.test", secret="k", actor=world.admin
    )
    session.commit()
    after_erasure(engine)
    assert erasure.contacts == 1 and erasure.activities == 2 and erasure.participants == 1 and erasure.leads == 1
    assert _rows_holding(session, world.org.id, "ann@acme.test") == []
    assert (
        count(session, Activity),
        activity_summary(report_scope(session, world.admin, year)),
        rollup_snapshot(session, world.org.id),
    ) == counts_before
    # What the audit trail keeps: that it happened, how much, a keyed hash; never the address.
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == "erase")).one()
    assert event.actor_id == world.admin.id and event.after["address_hash"] == keyed_hash("k", "ann@acme.test")
    # Contoso's Ann, the same address in another organization, is untouched.
    assert _rows_holding(session, world.other_org.id, "ann@acme.test")
    if engine.dialect.name == "sqlite":
        # Freed pages overwritten, the write-ahead log emptied: the file itself no longer holds
        # Northwind's copies (Contoso's contact still has one).
        raw = open(engine.url.database, "rb").read().lower()
        assert raw.count(b"ann@acme.test") <= 2, raw.count(b"ann@acme.test")


def test_erasure_is_for_admins_and_for_addresses(session, world: World):
    from services.privacy import erase_person

    for who in (world.rep, world.manager):
        with pytest.raises(Forbidden):
            erase_person(session, world.org, "ann@acme.test", secret="k", actor=who)
    for bad in ("", "ann@", "x" * 5000):
        with pytest.raises(DomainError):
            erase_person(session, world.org, bad, secret="k", actor=world.admin)
    assert count(session, AuditEvent) == 0


def test_export_holds_everything_about_the_person_and_nothing_else(auth, app_world: World, app):
    import json

    with app.extensions["inboxcrm.db"].sessions() as session:
        _everything_about_ann(session, app_world)
    auth.login("rita@northwind.test")
    assert auth.get("/admin/privacy/export", query_string={"address": "ann@acme.test"}).status_code == 403
    auth.login("ada@northwind.test")
    assert auth.get("/admin/privacy/export", query_string={"address": "nobody@"}).status_code == 422
    exported = auth.get("/admin/privacy/export", query_string={"address": "ANN@acme.test"}, htmx=False)
    assert exported.status_code == 200 and "attachment" in exported.headers["Content-Disposition"]
    data = json.loads(exported.get_data(as_text=True))
    assert [c["name"] for c in data["contacts"]] == ["Ann Buyer"] and [a["name"] for a in data["accounts"]] == [
        "Acme Freight"
    ]
    assert [a["subject"] for a in data["activities"]] == ["Ann's salary"] and data["leads"][0][
        "email"
    ] == "ann@acme.test"
    assert [d["name"] for d in data["deals"]] == ["Reefer contract"]
    assert "Their secret deal" not in exported.get_data(as_text=True) and "Ann Elsewhere" not in exported.get_data(
        as_text=True
    )
    with app.extensions["inboxcrm.db"].sessions() as session:
        event = session.scalars(select(AuditEvent).where(AuditEvent.action == "export")).one()
        assert "ann@acme.test" not in json.dumps(event.after)


def test_erase_from_the_admin_page_and_the_command(auth, app_world: World, app):
    from services.models import Contact

    auth.login("ada@northwind.test")
    assert auth.get("/admin/privacy", htmx=False).status_code == 200
    assert (
        auth.client.post(
            "/admin/privacy/erase", data={"address": "ann@acme.test", "confirm": "ann@acme.test"}
        ).status_code
        == 400
    )  # CSRF
    mismatch = auth.post("/admin/privacy/erase", {"address": "ann@acme.test", "confirm": "anne@acme.test"}, htmx=False)
    assert mismatch.status_code == 422 and "same address twice" in mismatch.get_data(as_text=True)
    assert (
        auth.post(
            "/admin/privacy/erase", {"address": "ann@acme.test", "confirm": "ann@acme.test"}, htmx=False
        ).status_code
        == 302
    )
    with app.extensions["inboxcrm.db"].sessions() as session:
        assert [c.name for c in session.scalars(select(Contact).order_by(Contact.id))] == ["Ann Elsewhere"]
    # The command, without --org: every organization the address is in (Contoso's Ann now).
    result = app.test_cli_runner().invoke(args=["privacy", "erase", "ann@acme.test"])
    assert result.exit_code == 0 and "Contoso: 1 contacts" in result.output, result.output
    with app.extensions["inboxcrm.db"].sessions() as session:
        assert session.scalar(select(func.count(Contact.id))) == 0
    assert (
        app.test_cli_runner().invoke(args=["privacy", "erase", "not-an-address"]).exit_code == 0
    )  # in nobody's contacts
    assert app.test_cli_runner().invoke(args=["privacy", "erase", "ann@acme.test", "--org", "Nowhere"]).exit_code != 0


def test_retention_removes_old_mail_bodies_only(session, world: World):
    from datetime import datetime, timedelta, timezone

    from services.models import Organization
    from services.privacy import remove_old_bodies

    now = datetime(2026, 11, 26, 12, tzinfo=timezone.utc)
    old, _ = log_email(
        session, world.rep, {**MAIL, "sent_at": "2025-06-01T10:00:00+00:00", "internet_message_id": "<old@acme.test>"}
    )
    new, _ = log_email(
        session, world.rep, {**MAIL, "sent_at": "2026-10-01T10:00:00+00:00", "internet_message_id": "<new@acme.test>"}
    )
    session.commit()
    org = session.get(Organization, world.org.id)
    assert remove_old_bodies(session, org, now) == 0  # no retention set: everything kept
    org.settings = {**org.settings, "body_retention_months": 12}
    assert remove_old_bodies(session, org, now) == 1
    session.commit()
    session.expire_all()
    assert (session.get(Activity, old.id).body_text, session.get(Activity, old.id).subject) == (None, "Salary review")
    assert session.get(Activity, new.id).body_text == "Confidential"
    assert remove_old_bodies(session, org, now + timedelta(days=400)) == 1  # the clock moves: the newer one's turn


def test_erasing_a_demo_contact_leaves_the_address_nowhere(session):
    """On a demo organization: the busiest contact erased, every column of every row of every
    table is scanned for their address, and the activities and rollups are as they were."""
    from datetime import date

    from services.setup.demo import build_demo
    from services.models import Base, ContactEmail, Organization
    from services.privacy import erase_person
    from tests.helpers import rollup_snapshot

    build_demo(session, seed=5, scale=0.05, today=date(2026, 11, 20))
    session.commit()
    org = session.scalars(select(Organization)).first()
    contact_id, activities = session.execute(
        select(Activity.contact_id, func.count())
        .where(Activity.contact_id.is_not(None))
        .group_by(Activity.contact_id)
        .order_by(func.count().desc())
        .limit(1)
    ).one()
    address = session.scalars(select(ContactEmail.address).where(ContactEmail.contact_id == contact_id)).first()
    before = (count(session, Activity), rollup_snapshot(session, org.id))
    assert activities > 0 and session.scalar(
        select(func.count())
        .select_from(Activity)
        .where(Activity.contact_id == contact_id, Activity.body_text.is_not(None))
    )
    erasure = erase_person(session, org, address, secret="k")
    session.commit()
    assert erasure.contacts == 1 and erasure.activities >= activities
    holding = []
    for table in Base.metadata.sorted_tables:
        for row in session.execute(select(table)):
            if address in repr(tuple(row)).lower():
                holding.append(f"{table.name}:{row[0]}")
    assert holding == []
    assert (count(session, Activity), rollup_snapshot(session, org.id)) == before


def test_private_content_stays_out_of_the_dashboard_exports_and_logs(auth, app_world: World, app, caplog):
    """A private call's subject and text appear in no figure page, no CSV, no log line; and a
    blocked mail's address and subject appear in no log line either."""
    import logging

    from addin.exports import EXPORTS

    caplog.set_level(logging.DEBUG)
    base = {
        "item_type": "message",
        "from_address": "ann@acme.test",
        "to": "rita@northwind.test",
        "internet_message_id": "<p-2@acme.test>",
        "contact_id": app_world.contact.id,
        "account_id": app_world.account.id,
    }
    auth.login("rita@northwind.test")
    auth.post(
        "/activities",
        {
            **base,
            "type": "call",
            "outcome": "connected",
            "activity_subject": "PRIVATE-SUBJECT",
            "body_text": "PRIVATE-TEXT",
            "is_private": "1",
        },
    )
    auth.post("/pane/block-list", {"value": "hr@acme.test"})
    auth.post(
        "/activities/email",
        {**base, "from_address": "hr@acme.test", "subject": "BLOCKED-SUBJECT", "internet_message_id": "<b@acme.test>"},
    )
    auth.login("mia@northwind.test")
    pages = [auth.get("/dashboard?period=this_year", htmx=False).get_data(as_text=True)]
    pages += [auth.get(f"/dashboard/{table}.csv?period=this_year").get_data(as_text=True) for table in EXPORTS]
    for page in pages:
        assert "PRIVATE-SUBJECT" not in page and "PRIVATE-TEXT" not in page
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert not any(secret in logged for secret in ("PRIVATE-TEXT", "BLOCKED-SUBJECT", "hr@acme.test"))


@pytest.mark.parametrize("who", ["rita@northwind.test", "mia@northwind.test"])
def test_privacy_pages_are_for_admins(auth, app_world: World, who):
    auth.login(who)
    assert auth.get("/admin/privacy", htmx=False).status_code == 403
    assert auth.get("/admin/privacy/export", query_string={"address": "ann@acme.test"}).status_code == 403
    assert (
        auth.post("/admin/privacy/erase", {"address": "ann@acme.test", "confirm": "ann@acme.test"}).status_code == 403
    )
    assert auth.get("/admin/block-list", htmx=False).status_code == 403
    assert auth.post("/admin/block-list", {"value": "acme.test"}).status_code == 403


def test_erasure_leaves_nothing_and_tells_every_change(app, app_world: World, auth, client):
    """A person the API wrote everywhere (an account and a deal named after her, kept API
    answers, a follow-up and a call on her), and a person who is only a lead from a web form:
    after their erasure (the admin page, then the command), no text column of any table holds
    either's address, name or phone, and every synced record that changed, the deals and
    follow-ups that let go of her contact and the activities blanked in bulk among them, has a
    new version and a webhook event."""
    from services.integration import api_tokens, webhooks
    from services.integration.intake import add_source
    from services.models import Base, FollowUp, Opportunity, User, WebhookDelivery
    from services.integration.outbound import Reach

    sessions = app.extensions["inboxcrm.db"].sessions
    with sessions() as session:
        admin = session.get(User, app_world.admin.id)
        _, token = api_tokens.create_token(session, admin, "Sync", "read write")
        webhooks.add_endpoint(
            session, admin, "https://hooks.northwind.test/in", reach=Reach(hosts=frozenset({"hooks.northwind.test"}))
        )
        key = add_source(session, admin, "Website form", "web_form").key
        session.commit()
    api = app.test_client()
    calls = iter(range(100))

    def post(path, body):
        answer = api.post(
            f"/api/v1{path}",
            json=body,
            headers={"Authorization": f"Bearer {token}", "Idempotency-Key": f"k{next(calls)}"},
        )
        assert answer.status_code == 201, answer.get_json()
        return answer.get_json()

    jane, phone = "jane.quill@gmail.example", "+44 20 7946 0958"
    account = post("/accounts", {"name": f"Jane Quill ({jane})"})
    contact = post("/contacts", {"name": "Jane Quill", "email": jane, "phone": phone, "account_id": account["id"]})
    deal = post(
        "/opportunities",
        {
            "name": f"Jane Quill: {jane}",
            "account_id": account["id"],
            "contact_id": contact["id"],
            "stage_id": app_world.stages[0].id,
            "amount": "1000",
        },
    )
    follow_up = post(
        "/follow_ups", {"title": "Call Jane Quill back", "due_at": "2099-01-05T10:00", "contact_id": contact["id"]}
    )
    call = post(
        "/activities",
        {
            "type": "call",
            "direction": "outbound",
            "contact_id": contact["id"],
            "subject": "Jane Quill",
            "body_text": f"Rang {phone}",
        },
    )
    lou, lou_phone = "lou@lead.example", "+1 415 555 0199"
    assert (
        client.post(
            f"/intake/{key}",
            json={"name": "Lou Leadbetter", "email": lou, "phone": lou_phone, "message": "Ring me on +1 415 555 0199"},
        ).status_code
        == 202
    )
    # Somebody else's form post that names Jane: what they wrote loses her name; who they are stays.
    assert (
        client.post(
            f"/intake/{key}",
            json={"name": "Rob Referral", "email": "rob@referral.example", "message": f"Jane Quill ({phone}) sent me"},
        ).status_code
        == 202
    )
    with sessions() as session:
        versions = {
            (Opportunity, deal["id"]): session.get(Opportunity, deal["id"]).sync_seq,
            (FollowUp, follow_up["id"]): session.get(FollowUp, follow_up["id"]).sync_seq,
            (Activity, call["id"]): session.get(Activity, call["id"]).sync_seq,
        }
        delivered_before = session.scalar(select(func.max(WebhookDelivery.id)))

    auth.login("ada@northwind.test")
    assert auth.post("/admin/privacy/erase", {"address": jane, "confirm": jane}, htmx=False).status_code == 302
    result = app.test_cli_runner().invoke(args=["privacy", "erase", lou])
    assert result.exit_code == 0 and "1 leads" in result.output, result.output

    with sessions() as session:
        for needle in (jane, "jane quill", phone, lou, "lou leadbetter", lou_phone):
            holding = [
                f"{table.name}:{row[0]}"
                for table in Base.metadata.sorted_tables
                for row in session.execute(select(table))
                if needle in repr(tuple(row)).lower()
            ]
            assert holding == [], (needle, holding)
        for (model, ident), version in versions.items():
            record = session.get(model, ident)
            assert record.sync_seq > version and getattr(record, "contact_id", None) is None, model
        told = {
            (d.event["data"]["record_type"], d.event["data"]["id"]): d.event["data"]["version"]
            for d in session.scalars(select(WebhookDelivery).where(WebhookDelivery.id > delivered_before))
        }
        for (model, ident), _ in versions.items():
            name = {Opportunity: "opportunities", FollowUp: "follow_ups", Activity: "activities"}[model]
            assert told[(name, ident)] == session.get(model, ident).sync_seq, name
        assert ("contacts", contact["id"]) in told and ("accounts", account["id"]) in told
        from services.models import Lead, LeadArrival

        rob = session.scalar(select(Lead).where(Lead.email == "rob@referral.example"))
        assert (
            rob.name == "Rob Referral"
            and session.scalar(select(LeadArrival.message).where(LeadArrival.lead_id == rob.id))
            == "[erased] ([erased]) sent me"
        )


def test_retention_gives_each_emptied_activity_a_version_and_an_event(session, world: World):
    from datetime import datetime, timezone

    from services.integration import webhooks
    from services.models import Organization, User, WebhookDelivery
    from services.integration.outbound import Reach
    from services.privacy import remove_old_bodies

    webhooks.add_endpoint(
        session,
        session.get(User, world.admin.id),
        "https://hooks.northwind.test/in",
        reach=Reach(hosts=frozenset({"hooks.northwind.test"})),
    )
    old, _ = log_email(
        session, world.rep, {**MAIL, "sent_at": "2025-06-01T10:00:00+00:00", "internet_message_id": "<kept@acme.test>"}
    )
    session.commit()
    version = old.sync_seq
    org = session.get(Organization, world.org.id)
    org.settings = {**org.settings, "body_retention_months": 12}
    assert remove_old_bodies(session, org, datetime(2026, 11, 26, 12, tzinfo=timezone.utc)) == 1
    session.commit()
    session.expire_all()
    emptied = session.get(Activity, old.id)
    assert emptied.body_text is None and emptied.sync_seq > version
    told = [d.event["data"] for d in session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id))]
    assert told[-1] == {"record_type": "activities", "id": old.id, "version": emptied.sync_seq, "deleted": False}
