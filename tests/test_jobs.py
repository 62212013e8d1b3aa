"""Work off the request path: webhook deliveries through the real job queue (Huey on its SQLite
store, and on a real Redis server), signed, retried with back-off, an endpoint turned off after
too many failures; the daily jobs; and lead intake, keyed or signed, round-robin, merged."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import Text, cast, func, select

from addin import jobs
from services.integration import webhooks
from services.mail.context import context_for_addresses
from services.integration.outbound import Reach
from services.integration.intake import add_source
from services.models import (
    AuditEvent,
    Contact,
    Lead,
    LeadArrival,
    LeadSource,
    Organization,
    User,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from services.types import utcnow
from tests.factories import World, make_user
from tests.servers import Receiver


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


# The tests' receivers listen on loopback: allowed here as an on-premises deployment allows its own hosts.
LOOPBACK = Reach(allow_http=True, hosts=frozenset({"127.0.0.1"}))


def sessions(app: Flask):
    return app.extensions["inboxcrm.db"].sessions


def endpoint(app: Flask, world: World, url: str, events=()) -> tuple[int, str]:
    with sessions(app)() as session:
        made, secret = webhooks.add_endpoint(
            session,
            session.get(User, world.admin.id),
            url,
            events,
            reach=LOOPBACK,
            known=("contacts", "activities", "opportunities"),
        )
        session.commit()
        return made.id, secret


def rename(app: Flask, contact_id: int, name: str) -> None:
    with sessions(app)() as session:
        session.get(Contact, contact_id).name = name
        session.commit()


def deliveries(app: Flask) -> list[WebhookDelivery]:
    with sessions(app)() as session:
        return session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)).all()


def work(limit: int = 20) -> int:
    """What the worker does: take each task waiting in the queue and run it, or put it in the
    schedule when its time has not come (a retry's back-off)."""
    done = 0
    while done < limit and (task := jobs.huey.dequeue()) is not None:
        if jobs.huey.ready_to_run(task):
            jobs.huey.execute(task)
            done += 1
        else:
            jobs.huey.add_schedule(task)
    return done


@pytest.fixture(params=["sqlite", "redis"])
def queue(request, app: Flask, app_world: World):
    """The job queue on the embedded SQLite store, or on a real Redis server."""
    if request.param == "redis":
        app.config["JOBS_REDIS_URL"] = request.getfixturevalue("redis_server").url
    app.config["WEBHOOKS_ALLOW_HOSTS"] = "127.0.0.1"
    jobs.use(app)
    jobs.huey.flush()
    yield request.param
    jobs.huey.flush()


def test_a_change_is_delivered_through_the_queue_signed(app, app_world: World, queue, receiver):
    endpoint_id, secret = endpoint(app, app_world, receiver.url)
    rename(app, app_world.contact.id, "Ann B. Buyer")
    [delivery] = deliveries(app)
    assert delivery.event["type"] == "contacts.updated" and delivery.event["data"]["id"] == app_world.contact.id
    assert jobs.huey.pending_count() == 1  # handed to the queue after the commit
    assert work() == 1
    [(headers, body)] = receiver.requests
    assert json.loads(body) == delivery.event
    assert webhooks.verify(secret, body, headers[webhooks.SIGNATURE])
    assert not webhooks.verify(secret, body + b" ", headers[webhooks.SIGNATURE])
    assert not webhooks.verify("whsec_other", body, headers[webhooks.SIGNATURE])
    at = int(headers[webhooks.SIGNATURE].split(",")[0][2:])
    assert not webhooks.verify(
        secret, body, headers[webhooks.SIGNATURE], now=at + webhooks.TOLERANCE_SECONDS + 1
    )  # a replay, later
    [delivered] = deliveries(app)
    assert (delivered.status, delivered.attempts) == ("delivered", 1)


def test_only_committed_changes_of_the_endpoints_organization_and_types_are_sent(
    app, app_world: World, queue, receiver
):
    endpoint(app, app_world, receiver.url, events=["opportunities"])
    rename(app, app_world.contact.id, "Not wanted")  # a contact: not a type it asked for
    with sessions(app)() as session:
        session.get(Contact, app_world.contact.id).name = "Rolled back"
        session.flush()
        session.rollback()
        session.get(Contact, app_world.other_contact.id).name = "Theirs"
        session.commit()
    assert deliveries(app) == [] and jobs.huey.pending_count() == 0
    with sessions(app)() as session:
        from services.deals import move_stage

        move_stage(
            session, session.get(User, app_world.rep.id), app_world.deal.id, {"stage": str(app_world.stages[1].id)}
        )
        session.commit()
    assert [d.event["type"] for d in deliveries(app)] == ["opportunities.updated"]


def test_failures_are_retried_with_back_off_recorded_and_a_dead_endpoint_turned_off(app, app_world: World, queue):
    receiver = Receiver([500, 503])
    try:
        endpoint_id, _ = endpoint(app, app_world, receiver.url)
        rename(app, app_world.contact.id, "Retry me")
        assert work() == 1
        [delivery] = deliveries(app)
        assert (delivery.status, delivery.attempts) == ("pending", 1)
        first_retry = delivery.next_attempt_at
        assert jobs.huey.scheduled_count() == 1  # the retry waits in the queue's schedule
        assert jobs.deliver_once(delivery.id, now=first_retry) == first_retry + webhooks.BACKOFF[1]
        assert jobs.deliver_once(delivery.id, now=first_retry) is None  # not due again yet: nothing sent
        assert jobs.deliver_once(delivery.id, now=first_retry + webhooks.BACKOFF[1]) is None
        with sessions(app)() as session:
            attempts = session.scalars(
                select(WebhookAttempt).where(WebhookAttempt.delivery_id == delivery.id).order_by(WebhookAttempt.id)
            ).all()
        assert [(a.status_code, a.error) for a in attempts] == [
            (500, "answered 500"),
            (503, "answered 503"),
            (200, None),
        ]
        assert deliveries(app)[0].status == "delivered"
    finally:
        receiver.close()

    # A receiver that is gone: each delivery fails its attempts, then is failed; the endpoint goes off.
    dead_id, _ = endpoint(app, app_world, "http://127.0.0.1:9/gone")
    rename(app, app_world.contact.id, "Into the void")
    with sessions(app)() as session:
        dead = [d.id for d in session.scalars(select(WebhookDelivery).where(WebhookDelivery.endpoint_id == dead_id))]
    now = utcnow()
    for _ in range(len(webhooks.BACKOFF) + 1):
        now = jobs.deliver_once(dead[0], now=now) or now
    with sessions(app)() as session:
        assert session.get(WebhookDelivery, dead[0]).status == "failed"
        ghost = session.get(WebhookEndpoint, dead_id)
        ghost.failures = webhooks.DISABLE_AFTER - 1
        session.commit()
    rename(app, app_world.contact.id, "Once more")
    work()
    with sessions(app)() as session:
        assert session.get(WebhookEndpoint, dead_id).disabled_at is not None

    def to_dead() -> int:
        with sessions(app)() as session:
            return session.scalar(
                select(func.count()).select_from(WebhookDelivery).where(WebhookDelivery.endpoint_id == dead_id)
            )

    before = to_dead()
    rename(app, app_world.contact.id, "Not sent to it")
    assert to_dead() == before  # an endpoint that is off gets nothing new (what waited resumes when it is on again)


def test_deliveries_the_queue_lost_are_sent_by_the_periodic_job(app, app_world: World, queue, receiver, monkeypatch):
    endpoint(app, app_world, receiver.url)
    monkeypatch.setattr(webhooks, "NOTIFY", [])  # the queue was down at the commit
    rename(app, app_world.contact.id, "Lost in the queue")
    assert jobs.huey.pending_count() == 0 and deliveries(app)[0].status == "pending"
    assert jobs.send_due_webhooks.call_local() == 1
    assert deliveries(app)[0].status == "delivered" and len(receiver.requests) == 1


def test_the_daily_job_keeps_health_and_the_lexicon_and_retention(app, app_world: World):
    from services.models import Activity, DealHealth

    with sessions(app)() as session:
        org = session.get(Organization, app_world.org.id)
        org.settings = {"body_retention_months": 6}
        old = utcnow() - timedelta(days=400)
        session.add(
            Activity(
                organization_id=org.id,
                type="email",
                direction="inbound",
                occurred_at=old,
                owner_id=app_world.rep.id,
                source="outlook",
                body_text="An old mail",
                created_at=old,
                updated_at=old,
            )
        )
        session.commit()
    done = jobs.daily()
    # Both organizations' open deals; ours keeps bodies 6 months; no event or kept API answer is old
    # yet; the deals went dark days ago, not in the last day: nobody is told again.
    assert done == {
        "deals": 2,
        "words": 0,
        "bodies": 1,
        "gone_dark": 0,
        "events": 0,
        "idempotency_keys": 0,
        "import_drafts": 0,
    }
    with sessions(app)() as session:
        assert session.scalar(select(func.count()).select_from(DealHealth)) == 2
        assert (
            session.scalar(select(Activity.body_text).where(Activity.occurred_at < utcnow() - timedelta(days=300)))
            is None
        )


def test_the_admin_registers_an_endpoint_and_sees_its_attempts(app, app_world: World, auth, queue, receiver):
    auth.login("rita@northwind.test")
    assert auth.get("/admin/webhooks", htmx=False).status_code == 403
    assert auth.post("/admin/webhooks", {"url": receiver.url}, htmx=False).status_code == 403
    auth.login("ada@northwind.test")
    for bad in ("", "ftp://x.test/", "not a url", "https://" + "x" * 600):
        assert auth.post("/admin/webhooks", {"url": bad}, htmx=False).status_code == 422
    assert auth.post("/admin/webhooks", {"url": receiver.url, "events": ["nope"]}, htmx=False).status_code == 422
    made = auth.post("/admin/webhooks", {"url": receiver.url, "events": ["contacts"]}, htmx=False)
    assert made.status_code == 201
    secret = re.search(r'<code id="new-secret">(whsec_[0-9a-f]+)</code>', made.get_data(as_text=True)).group(1)
    rename(app, app_world.contact.id, "Seen by the admin")
    work()
    page = auth.get("/admin/webhooks", htmx=False).get_data(as_text=True)
    assert "contacts.updated" in page and "delivered" in page and secret not in page
    app.config["WEBHOOKS_ALLOW_HTTP"] = False
    assert auth.post("/admin/webhooks", {"url": receiver.url}, htmx=False).status_code == 422  # production: https only


# -- lead intake -----------------------------------------------------------------------------------


def source(app: Flask, world: World, signed: bool = False, team=None):
    with sessions(app)() as session:
        made = add_source(session, session.get(User, world.admin.id), "Website form", "web_form", team, signed=signed)
        session.commit()
        return made.key, made.secret


def leads_by_email(app: Flask) -> dict[str, Lead]:
    with sessions(app)() as session:
        return {lead.email: lead for lead in session.scalars(select(Lead))}


def test_intake_assigns_leads_round_robin_and_keeps_each_arrival_without_overwriting(app, app_world: World, client):
    with sessions(app)() as session:
        make_user(
            session,
            session.get(Organization, app_world.org.id),
            session.get(type(app_world.east), app_world.east.id),
            "Ed East",
            "rep",
            "northwind.test",
        )
        session.commit()
    key, _ = source(app, app_world, team=app_world.east.id)
    made = [
        client.post(
            f"/intake/{key}",
            json={
                "name": f"Lead {i}",
                "email": f"lead{i}@x.test",
                "phone": f"+1 212 555 01{i:02d}",
                "message": f"Call me about lanes {i}",
            },
        )
        for i in range(4)
    ]
    assert [(r.status_code, r.get_json()) for r in made] == [(202, {"received": True})] * 4
    with sessions(app)() as session:
        east_reps = sorted(
            u.id for u in session.scalars(select(User).where(User.team_id == app_world.east.id, User.role == "rep"))
        )
    leads = leads_by_email(app)
    assert [leads[f"lead{i}@x.test"].owner_id for i in range(4)] == [east_reps[i % len(east_reps)] for i in range(4)]
    # The same person again, by address and by phone: the same answer as a new lead, and no field of theirs changed.
    again = client.post(
        f"/intake/{key}", data={"name": "Mallory", "email": "LEAD0@x.test", "company": "Evil Corp", "message": "Second"}
    )
    by_phone = client.post(f"/intake/{key}", json={"name": "Lead 1", "phone": "(212) 555-0101"})
    assert [(r.status_code, r.get_json()) for r in (again, by_phone)] == [(202, {"received": True})] * 2
    with sessions(app)() as session:
        assert session.scalar(select(func.count()).select_from(Lead)) == 4
        first = session.scalar(select(Lead).where(Lead.email == "lead0@x.test"))
        assert (first.company, first.name, first.phone, first.source) == (None, "Lead 0", "+1 212 555 0100", "web_form")
        kept = session.scalars(
            select(LeadArrival).where(LeadArrival.lead_id == first.id).order_by(LeadArrival.id)
        ).all()
        assert [(a.name, a.company, a.message) for a in kept] == [
            ("Lead 0", None, "Call me about lanes 0"),
            ("Mallory", "Evil Corp", "Second"),
        ]
        [card] = context_for_addresses(session, session.get(User, first.owner_id), ["lead0@x.test"]).leads
        assert [message for _, _, message in card.arrivals] == ["Second", "Call me about lanes 0"]
        assert (
            session.scalar(
                select(func.count()).select_from(AuditEvent).where(AuditEvent.action.in_(("intake", "arrival")))
            )
            == 6
        )
        # The audit trail names the source and the rep, never what the person typed.
        assert not session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(func.lower(cast(AuditEvent.after, Text)).contains("lead0"))
        )


def test_a_source_switched_off_or_rekeyed_takes_nothing_at_its_old_url(app, app_world: World, auth, client):
    key, _ = source(app, app_world)
    with sessions(app)() as session:
        source_id = session.scalar(select(LeadSource.id).where(LeadSource.key == key))
    auth.login("rita@northwind.test")
    assert auth.post(f"/admin/lead-sources/{source_id}/disable", htmx=False).status_code == 403
    auth.login("ada@northwind.test")
    assert auth.post(f"/admin/lead-sources/{source_id}/disable", htmx=False).status_code == 302
    assert client.post(f"/intake/{key}", json={"name": "Off", "email": "off@x.test"}).status_code == 404
    assert auth.post(f"/admin/lead-sources/{source_id}/enable", htmx=False).status_code == 302
    assert client.post(f"/intake/{key}", json={"name": "On", "email": "on@x.test"}).status_code == 202
    assert auth.post(f"/admin/lead-sources/{source_id}/rotate", htmx=False).status_code == 302
    with sessions(app)() as session:
        new_key = session.get(LeadSource, source_id).key
    assert new_key != key
    assert client.post(f"/intake/{key}", json={"name": "Old", "email": "old@x.test"}).status_code == 404
    assert client.post(f"/intake/{new_key}", json={"name": "New", "email": "new@x.test"}).status_code == 202
    assert set(leads_by_email(app)) == {"on@x.test", "new@x.test"}


def test_unknown_keys_are_rate_limited_per_address(app, app_world: World, client):
    key, _ = source(app, app_world)
    guesses = [
        client.post(f"/intake/guess-{i}", json={"name": "X", "email": "x@x.test"}).status_code for i in range(25)
    ]
    assert guesses[:20] == [404] * 20 and set(guesses[20:]) == {429}
    limited = client.post("/intake/guess-more", json={"name": "X", "email": "x@x.test"})
    assert limited.status_code == 429 and limited.get_json()["code"] == "rate_limited"


def test_intake_refuses_what_it_cannot_take(app, app_world: World, client):
    key, secret = source(app, app_world, signed=True)
    body = json.dumps({"name": "Signed Sam", "email": "sam@x.test"}).encode()
    unsigned = client.post(f"/intake/{key}", data=body, content_type="application/json")
    assert unsigned.status_code == 404  # a leaked URL alone cannot post to a signed source
    forged = client.post(
        f"/intake/{key}",
        data=body,
        content_type="application/json",
        headers={webhooks.SIGNATURE: webhooks.sign("whsec_guess", body)},
    )
    assert forged.status_code == 404
    signed = client.post(
        f"/intake/{key}",
        data=body,
        content_type="application/json",
        headers={webhooks.SIGNATURE: webhooks.sign(secret, body)},
    )
    assert signed.status_code == 202
    open_key, _ = source(app, app_world)
    for bad, status in (
        ({"name": "No way to reach"}, 422),
        ({"email": "x@x.test"}, 422),
        ({"name": "X", "email": "nope"}, 422),
        ({"name": "X" * 300, "email": "a@b.test"}, 422),
        ({"name": "X", "email": "a@b.test", "message": "m" * 5001}, 422),
    ):
        answer = client.post(f"/intake/{open_key}", json=bad)
        assert answer.status_code == status and set(answer.get_json()) == {"code", "message", "field", "errors"}
    for body in (b"[" * 5000 + b"]" * 5000, b'{"name": ' * 3000, b"{not json"):
        answer = client.post(f"/intake/{open_key}", data=body, content_type="application/json")
        assert answer.status_code == 400 and answer.get_json()["code"] == "invalid_json"
    assert client.post("/intake/no-such-key", json={"name": "X", "email": "a@b.test"}).status_code == 404
    assert client.post(f"/intake/{open_key}", data=b"[1,2]", content_type="application/json").status_code == 422
    with sessions(app)() as session:
        assert session.scalar(select(func.count()).select_from(Lead)) == 1
        assert (session.scalar(select(Lead.created_at)) - utcnow()) < timedelta(minutes=1)


def test_the_admin_makes_an_intake_url_that_takes_leads(app, app_world: World, auth, client):
    auth.login("rita@northwind.test")
    assert auth.get("/admin/lead-sources", htmx=False).status_code == 403
    auth.login("ada@northwind.test")
    for bad in (
        {"name": "", "kind": "web_form"},
        {"name": "Form", "kind": "telepathy"},
        {"name": "Form", "kind": "web_form", "team_id": "99999"},
    ):
        assert auth.post("/admin/lead-sources", bad, htmx=False).status_code in (404, 422)
    made = auth.post(
        "/admin/lead-sources",
        {"name": "Website form", "kind": "web_form", "team_id": str(app_world.east.id)},
        htmx=False,
    )
    assert made.status_code == 201
    url = re.search(r'<code id="intake-url">https?://[^/]+(/intake/[^<]+)</code>', made.get_data(as_text=True)).group(1)
    assert "Website form" in auth.get("/admin/lead-sources", htmx=False).get_data(as_text=True)
    taken = client.post(url, json={"name": "Pat Prospect", "email": "pat@prospect.test"})
    assert taken.status_code == 202
    assert leads_by_email(app)["pat@prospect.test"].owner_id in {app_world.rep.id, app_world.teammate.id}


def test_a_delivery_is_claimed_before_it_is_sent_and_no_transaction_waits_on_the_receiver(app, app_world: World, queue):
    seen_locked = []

    def post(url, **kwargs):
        # While the receiver answers, another writer gets the store at once (SQLite's write lock is free).
        with sessions(app)() as other:
            other.get(Contact, app_world.other_contact.id).name = "Written meanwhile"
            other.commit()
        seen_locked.append(True)
        return type("Answer", (), {"status_code": 204})()

    endpoint(app, app_world, "http://127.0.0.1:9/unused")
    rename(app, app_world.contact.id, "Claim me")
    [delivery] = deliveries(app)
    with sessions(app)() as session:
        claimed = webhooks.claim_due(session, [delivery.id])
        assert len(claimed) == 1 and webhooks.claim_due(session, [delivery.id]) == []  # leased: not taken twice
        session.rollback()
    assert jobs.deliver_once(delivery.id, post=post) is None and seen_locked == [True]
    assert deliveries(app)[0].status == "delivered"


# -- the event list, and an endpoint turned on again ------------------------------------------------


def test_changes_while_an_endpoint_is_off_wait_in_the_event_list(app, app_world: World, auth, queue, receiver):
    from tests.helpers import Client, token

    endpoint_id, _ = endpoint(app, app_world, receiver.url, events=["contacts"])
    rename(app, app_world.contact.id, "While on")
    auth.login("ada@northwind.test")
    assert auth.post(f"/admin/webhooks/{endpoint_id}/disable", htmx=False).status_code == 302
    for name in ("Off one", "Off two"):
        rename(app, app_world.contact.id, name)
    assert len(deliveries(app)) == 1  # nothing queued for an endpoint that is off
    page = auth.get("/admin/webhooks", htmx=False).get_data(as_text=True)
    cursor = re.search(r"GET /api/v1/events\?cursor=([\w.-]+)", page).group(1)
    assert "sends the 1 deliveries waiting" in page and "The 2 changes made while it was off" in page
    api = Client(app, token(app, app_world, "read"))
    missed = api.get("/events", cursor=cursor).get_json()
    assert [(e["type"], e["data"]["id"]) for e in missed["data"]] == [("contacts.updated", app_world.contact.id)] * 2
    assert missed["has_more"] is False and api.get("/events", cursor=missed["cursor"]).get_json()["data"] == []
    everything = api.get("/events", limit=1).get_json()
    assert (
        everything["has_more"] and everything["data"][0]["id"] == deliveries(app)[0].event["id"]
    )  # the event as it was delivered
    turned_on = auth.post(f"/admin/webhooks/{endpoint_id}/enable", htmx=False, follow_redirects=True).get_data(
        as_text=True
    )
    assert (
        "Sending the 1 deliveries waiting; the 2 changes made while it was off are at GET /api/v1/events?cursor="
        in turned_on
    )
    # Another organization's token sees none of them.
    assert Client(app, token(app, app_world, org="theirs")).get("/events").get_json()["data"] == []


def test_the_daily_job_forgets_old_events_and_idempotency_keys(app, app_world: World, queue, receiver):
    from services.models import ChangeEvent, IdempotencyKey
    from tests.helpers import Client, token

    endpoint(app, app_world, receiver.url)
    rename(app, app_world.contact.id, "An event")
    api = Client(app, token(app, app_world))
    assert (
        api.write("POST", "/contacts", {"name": "Kept a day", "email": "kept@acme.test"}, key="once").status_code == 201
    )
    later = utcnow() + timedelta(days=2)
    done = jobs.daily(later)
    assert (done["events"], done["idempotency_keys"]) == (0, 1)
    assert (
        api.write("POST", "/contacts", {"name": "Another", "email": "another@acme.test"}, key="once").status_code == 201
    )  # free again
    done = jobs.daily(utcnow() + timedelta(days=31))
    with sessions(app)() as session:
        assert done["events"] >= 2 and session.scalar(select(func.count()).select_from(ChangeEvent)) == 0
        assert session.scalar(select(func.count()).select_from(IdempotencyKey)) == 0


def test_deliveries_go_in_batches_each_claimed_once(app, app_world: World, queue, receiver):
    """What many commits queued is claimed in one transaction, sent, and recorded in another:
    a second claim meanwhile takes none of it, and each event reaches the receiver once."""
    endpoint(app, app_world, receiver.url)
    for n in range(30):
        rename(app, app_world.contact.id, f"Name {n}")
    with sessions(app)() as session:
        claimed = webhooks.claim_due(session)
        session.commit()
        assert len(claimed) == 30 and webhooks.claim_due(session) == []  # leased: not taken twice
        session.rollback()
    assert jobs.deliver_due() == (0, {})  # nothing due until the lease runs out
    later = utcnow() + webhooks.LEASE + timedelta(seconds=1)
    assert jobs.deliver_due(now=later)[0] == 30
    assert len(receiver.requests) == 30 and len({body for _, body in receiver.requests}) == 30
    assert {d.status for d in deliveries(app)} == {"delivered"}
    assert work(100) == 30 and len(receiver.requests) == 30  # the 30 tasks the commits queued find nothing left to send


def test_the_rep_reads_what_a_lead_posted_beside_their_mail(app, app_world: World, auth, client):
    key, _ = source(app, app_world)
    for message in ("Do you run Denver to Austin?", "Still keen: call me <b>today</b>"):
        assert (
            client.post(
                f"/intake/{key}",
                json={
                    "name": "Pat Prospect",
                    "email": "pat@prospect.test",
                    "company": "Prospect Co",
                    "message": message,
                },
            ).status_code
            == 202
        )
    auth.login("rita@northwind.test")
    pane = auth.get("/pane/context?from_address=pat@prospect.test&item_type=message").get_data(as_text=True)
    section = pane[pane.index('aria-label="Lead"') :]
    assert "Lead: Pat Prospect" in section and "Prospect Co" in section
    assert section.index("Still keen") < section.index("Denver to Austin")  # the newest first
    assert (
        "<b>today</b>" not in pane and "&lt;b&gt;today&lt;/b&gt;" in pane
    )  # what a stranger typed is text, never markup


def test_each_lead_on_a_mail_shows_its_own_latest_posts(app, app_world: World, client):
    """A lead that posted often does not crowd another lead on the same mail out of the pane."""
    key, _ = source(app, app_world)
    client.post(f"/intake/{key}", json={"name": "Quiet Quinn", "email": "quinn@quiet.test", "message": "Just once"})
    for n in range(15):
        client.post(f"/intake/{key}", json={"name": "Busy Bea", "email": "bea@busy.test", "message": f"Post {n}"})
    with sessions(app)() as session:
        cards = context_for_addresses(
            session, session.get(User, app_world.rep.id), ["bea@busy.test", "quinn@quiet.test"]
        ).leads
        shown = {card.name: [message for _, _, message in card.arrivals] for card in cards}
    assert shown == {"Busy Bea": ["Post 14", "Post 13", "Post 12"], "Quiet Quinn": ["Just once"]}


def test_the_app_imports_on_a_fresh_checkout_with_no_instance_folder(tmp_path):
    """The queue's SQLite file is made at import (``huey_consumer addin.jobs.huey`` finds it so):
    its folder, absent on a fresh checkout, is made with it rather than failing the import."""
    path = tmp_path / "not" / "yet" / "jobs.db"
    done = subprocess.run(
        [sys.executable, "-c", "import addin; addin.create_app"],
        capture_output=True,
        text=True,
        env={**os.environ, "INBOXCRM_JOBS_PATH": str(path)},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert path.exists()
