"""Tenant isolation, proven over every route the app has.

The walk reads the app's URL map, so a route added tomorrow is covered without editing this
test: it calls each route, with each of its methods, as an admin of *another* organization,
with our organization's ids swapped in wherever an id goes (the path and the form). Routes
that name a record answer 403 or 404; no answer carries our organization's data; and none of
our organization's rows changed.
"""

from __future__ import annotations

import io
import zipfile

import hashlib
from datetime import date, datetime, timedelta, timezone

from sqlalchemy import select

from addin.security import limiter
from addin.tokens import issue_token
from services.integration import api_tokens, webhooks
from services.integration.intake import add_source
from services.integration.outbound import Reach
from services.models import Activity, Base, BlockEntry, Capture, DealNotice, FollowUp, Lead, Mailbox, Quota, User
from services.setup import importing, people
from tests.factories import World

# Strings that exist only in our organization: none may reach the other one.
# Path arguments that name no record (a sign-in provider, a dashboard table): what is behind
# them is the caller's own organization's.
NAMES = {
    "provider": "google",
    "table": "alerts",
    "name": "deal",  # "name": a Gmail add-on action
    "action": "disable",  # what is done to a webhook endpoint
    "key": "no-such-source",
    "token": "an-invitation-token-nobody-was-given-0000",  # an invitation's token is its credential
    "activity_type": "call",  # a checklist's: the admin's own organization's
}  # an intake URL's key is the credential itself: ours are tried in test_intake
SECRETS = [
    "Reefer contract",
    "Ann Buyer",
    "Acme Freight Denver",
    "Rita Rep",
    "SECRET-ACTIVITY",
    "SECRET-IMPORTED",
    "newcomer@northwind.test",
    "SECRET-FOLLOW-UP",
    "SECRET-LEAD",
    "northwind.test",
]


def our_rows(app, org_id: int) -> str:
    """A fingerprint of every row of our organization, in every table that has one."""
    hasher = hashlib.sha256()
    with app.extensions["inboxcrm.db"].sessions() as session:
        for table in Base.metadata.sorted_tables:
            if "organization_id" in table.c:
                for row in session.execute(select(table).where(table.c.organization_id == org_id).order_by(table.c.id)):
                    hasher.update(repr(tuple(row)).encode())
    return hasher.hexdigest()


def test_no_route_crosses_the_tenant_line(app, client, app_world: World):
    world = app_world
    with app.extensions["inboxcrm.db"].sessions() as session:
        activity = Activity(
            organization_id=world.org.id,
            type="call",
            direction="outbound",
            occurred_at=datetime.now(timezone.utc),
            owner_id=world.rep.id,
            source="web",
            subject="SECRET-ACTIVITY",
            contact_id=world.contact.id,
        )
        follow_up = FollowUp(
            organization_id=world.org.id,
            title="SECRET-FOLLOW-UP",
            owner_id=world.rep.id,
            due_at=datetime.now(timezone.utc) + timedelta(days=2),
            contact_id=world.contact.id,
        )
        blocked = BlockEntry(
            organization_id=world.org.id, owner_id=world.rep.id, kind="address", value="secret@acme.test"
        )
        lead = Lead(
            organization_id=world.org.id, name="SECRET-LEAD", source="other", owner_id=world.rep.id, status="new"
        )
        quota = Quota(
            organization_id=world.org.id,
            user_id=world.rep.id,
            period="month",
            period_start=date(2026, 11, 1),
            metric="won_deals",
            target=3,
        )
        session.add_all([activity, follow_up, blocked, lead, quota])
        session.flush()
        our_token, _ = api_tokens.create_token(session, session.get(User, world.admin.id), "Ours", "read write")
        endpoint, _ = webhooks.add_endpoint(
            session,
            session.get(User, world.admin.id),
            "https://hooks.northwind.test/in",
            reach=Reach(hosts=frozenset({"hooks.northwind.test"})),
        )
        _, their_token = api_tokens.create_token(
            session, session.get(User, world.other_user.id), "Theirs", "read write"
        )
        source = add_source(session, session.get(User, world.admin.id), "Our form", "web_form")
        invitation, _ = people.invite(session, session.get(User, world.admin.id), {"email": "newcomer@northwind.test"})
        import_run = importing.upload(
            session, session.get(User, world.admin.id), "accounts", b"name\nSECRET-IMPORTED\n", "ours.csv"
        )
        mailbox = Mailbox(
            organization_id=world.org.id, user_id=world.rep.id, provider="microsoft", address=world.rep.email
        )
        session.add(mailbox)
        session.flush()
        capture = Capture(
            organization_id=world.org.id,
            mailbox_id=mailbox.id,
            activity_id=activity.id,
            reason="Ann Buyer is a contact",
        )
        notice = DealNotice(
            organization_id=world.org.id, opportunity_id=world.deal.id, owner_id=world.rep.id, kind="dark", message="x"
        )
        session.add_all([capture, notice])
        session.commit()
        ours = {
            "mailbox_id": mailbox.id,
            "capture_id": capture.id,
            "notice_id": notice.id,
            "deal_id": world.deal.id,
            "activity_id": activity.id,
            "follow_up_id": follow_up.id,
            "rep_id": world.rep.id,
            "account_id": world.account.id,
            "entry_id": blocked.id,
            "token_id": our_token.id,
            "endpoint_id": endpoint.id,
            "source_id": source.id,
            "user_id": world.rep.id,
            "team_id": world.east.id,
            "stage_id": world.stages[0].id,
            "invitation_id": invitation.id,
            "run_id": import_run.id,
        }
        record_ids = {
            "deals": world.deal.id,
            "activities": activity.id,
            "contacts": world.contact.id,
            "accounts": world.account.id,
            "followups": follow_up.id,
        }
        # The API names its types in its paths (/api/v1/<type>/<record_id>).
        api_ids = {
            "accounts": world.account.id,
            "contacts": world.contact.id,
            "leads": lead.id,
            "opportunities": world.deal.id,
            "activities": activity.id,
            "follow_ups": follow_up.id,
            "quotas": quota.id,
            "users": world.rep.id,
            "stages": world.stages[0].id,
        }
    # Our ids wherever a form names a record.
    form = {
        "from_address": "ann@acme.test",
        "from_name": "Ann",
        "to": "oscar@contoso.test",
        "subject": "Hello",
        "item_type": "message",
        "contact_id": world.contact.id,
        "account_id": world.account.id,
        "opportunity_id": world.deal.id,
        "stage_id": world.stages[0].id,
        "parent_id": world.account.id,
        "stage": str(world.stages[1].id),
        "loss_reason": "x",
        "final_amount": "1",
        "type": "call",
        "body": "x",
        "body_text": "x",
        "title": "x",
        "due_at": "2099-01-01T10:00",
        "rating": "1",
        "name": "X",
        "email": "x@new.test",
        "company": "X",
        "deal_name": "X",
        "event_id": "E1",
        "start": "2026-11-02T14:00",
        "attendees": "ann@acme.test",
        "user_id": str(world.rep.id),
        "password": "x",
        "account": "acme",
        "period": "this_year",
        "provider": "microsoft",
        "directory": "tenant-of-contoso",
    }
    before = our_rows(app, world.org.id)
    checked = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        kinds = list(record_ids) if "kind" in rule.arguments else [None]
        for kind in kinds:
            values = {}
            for argument in rule.arguments:
                if argument == "kind":
                    values["kind"] = kind
                elif argument in NAMES:
                    values[argument] = NAMES[argument]
                elif argument == "record_id":
                    values["record_id"] = (
                        api_ids[rule.rule.split("/")[3]] if rule.endpoint.startswith("api.") else record_ids[kind]
                    )
                else:
                    assert argument in ours, (
                        f"teach the tenancy walk which of our ids goes into <{argument}> of {rule.rule}"
                    )
                    values[argument] = ours[argument]
            path = rule.build(values)[1] if values else rule.rule
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                limiter.reset()
                with app.extensions["inboxcrm.db"].sessions() as session:
                    attacker = session.get(User, world.other_user.id)
                    token = issue_token(attacker)["token"] if attacker else None
                if rule.endpoint.startswith("api."):  # the other organization's API token, with our ids in the body
                    response = client.open(
                        path,
                        method=method,
                        json=form if method != "GET" else None,
                        headers={
                            "Authorization": f"Bearer {their_token}",
                            "Idempotency-Key": f"{method} {path}",
                            "If-Match": "1",
                        },
                    )
                else:
                    headers = {"Authorization": f"Bearer {token}", "HX-Request": "true"}
                    call = client.get if method == "GET" else client.post
                    response = call(
                        path,
                        headers=headers,
                        **(
                            {"data": {**form, "internet_message_id": f"<{path}-{method}@x>"}}
                            if method != "GET"
                            else {"query_string": form}
                        ),
                    )
                if response.mimetype == "application/zip":  # their own organization's export: every file read
                    archive = zipfile.ZipFile(io.BytesIO(response.data))
                    body = "".join(archive.read(name).decode() for name in archive.namelist())
                else:
                    body = response.get_data(as_text=True)
                leaked = [secret for secret in SECRETS if secret in body]
                assert not leaked, f"{method} {path} shows {leaked}"
                if rule.arguments - {"kind", *NAMES}:
                    assert response.status_code in (403, 404), f"{method} {path} answered {response.status_code}"
                assert response.status_code < 500, f"{method} {path} failed: {body[:300]}"
                checked.append((method, rule.endpoint))
                client.delete_cookie("session")
    assert our_rows(app, world.org.id) == before, "a route of the other organization changed our rows"
    endpoints = {endpoint for _, endpoint in checked}
    assert {
        "deals.move_stage",
        "activities.rate",
        "activities.undo",
        "followups.done",
        "audit.history",
        "pane.context",
        "reports.rep",
        "reports.timeline",
        "reports.dashboard",
        "reports.notes",
        "api.list_contacts",
        "api.change_opportunities",
        "api.delete_activities",
        "api.move_stage",
        "api.calls",
    } <= endpoints
    limiter.reset()
