"""The API other systems call: tokens made and revoked by an admin, sync by cursor, writes
taken once per Idempotency-Key, versions that refuse a stale change, errors with a stable
code, telephony calls, and a document that says all of it."""

from __future__ import annotations

import base64
import re
from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import func, select

from services.mail import activities
from services.integration import api_tokens
from services.models import Activity, ApiToken, Contact, ContactPhone, IdempotencyKey, Opportunity, Organization, User
from services.privacy import erase_person
from tests.factories import NOW, World, make_contact, make_user
from tests.helpers import Client, token


@pytest.fixture
def api(app: Flask, app_world: World) -> Client:
    return Client(app, token(app, app_world))


def count(app: Flask, model, *where) -> int:
    with app.extensions["inboxcrm.db"].sessions() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where))


# -- access -----------------------------------------------------------------------------------------


def test_no_token_a_revoked_one_or_a_read_one_writing_is_refused(app, app_world: World):
    anonymous = app.test_client().get("/api/v1/contacts")
    assert anonymous.status_code == 401 and anonymous.get_json()["code"] == "unauthorized"
    assert "Bearer" in anonymous.headers["WWW-Authenticate"]
    for junk in ("Bearer nope", "Bearer icrm_" + "x" * 43, "Basic abc", "Bearer " + "icrm_" * 100):
        assert app.test_client().get("/api/v1/contacts", headers={"Authorization": junk}).status_code == 401
    reader = Client(app, token(app, app_world, "read"))
    assert reader.get("/contacts").status_code == 200
    refused = reader.write("POST", "/contacts", {"name": "X", "email": "x@acme.test"})
    assert refused.status_code == 403 and refused.get_json()["code"] == "insufficient_scope"
    assert count(app, Contact, Contact.name == "X") == 0
    with app.extensions["inboxcrm.db"].sessions() as session:
        stored = session.scalar(select(ApiToken).where(ApiToken.prefix == reader.text[:12]))
        assert stored.token_hash != reader.text and reader.text not in stored.token_hash
        api_tokens.revoke_token(session, session.get(User, app_world.admin.id), stored.id)
        session.commit()
    assert reader.get("/contacts").status_code == 401


def test_a_token_sees_its_organization_only(app, app_world: World, api: Client):
    theirs = Client(app, token(app, app_world, org="theirs"))
    ids = {c["id"] for c in theirs.sync("contacts")[0]}
    assert ids == {app_world.other_contact.id}
    assert theirs.get(f"/contacts/{app_world.contact.id}").status_code == 404
    assert (
        theirs.write("PATCH", f"/contacts/{app_world.contact.id}", {"name": "Mine now"}, version=1).status_code == 404
    )
    assert api.get(f"/opportunities/{app_world.other_deal.id}").status_code == 404


def test_the_admin_makes_a_token_shown_once_and_revokes_it(app, app_world: World, auth):
    auth.login("rita@northwind.test")
    assert auth.get("/admin/api-tokens", htmx=False).status_code == 403
    assert auth.post("/admin/api-tokens", {"name": "BI", "scopes": "read"}, htmx=False).status_code == 403
    auth.login("ada@northwind.test")
    assert (
        auth.client.post("/admin/api-tokens", data={"name": "BI", "scopes": "read"}).status_code == 400
    )  # no CSRF token
    for bad in (
        {"name": "", "scopes": "read"},
        {"name": "BI", "scopes": "admin"},
        {"name": "x" * 101, "scopes": "read"},
    ):
        assert auth.post("/admin/api-tokens", bad, htmx=False).status_code == 422
    made = auth.post("/admin/api-tokens", {"name": "Power BI", "scopes": "read"}, htmx=False)
    assert made.status_code == 201
    text = re.search(r'<code id="new-token">(icrm_[^<]+)</code>', made.get_data(as_text=True)).group(1)
    assert Client(app, text).get("/users").status_code == 200
    listed = auth.get("/admin/api-tokens", htmx=False).get_data(as_text=True)
    assert "Power BI" in listed and text not in listed and text[:12] in listed
    with app.extensions["inboxcrm.db"].sessions() as session:
        token_id = session.scalar(select(ApiToken.id).where(ApiToken.name == "Power BI"))
    assert auth.post(f"/admin/api-tokens/{token_id}/revoke", htmx=False).status_code == 302
    assert Client(app, text).get("/users").status_code == 401


@pytest.mark.parametrize("loss", ["deactivated", "demoted to rep", "demoted to manager", "revoked by another admin"])
def test_a_token_is_worth_no_more_than_its_owner_now(app, app_world: World, auth, loss: str):
    """Checked on every request against its owner's current rights; another admin takes it over."""
    with app.extensions["inboxcrm.db"].sessions() as session:
        org = session.get(Organization, app_world.org.id)
        second = make_user(session, org, None, "Sam Second", "admin", "northwind.test")
        session.commit()
        second_id = second.id
    api = Client(app, token(app, app_world))
    assert api.get("/contacts").status_code == 200
    assert api.write("POST", "/contacts", {"name": "Before", "email": "before@acme.test"}).status_code == 201
    with app.extensions["inboxcrm.db"].sessions() as session:
        admin = session.get(User, app_world.admin.id)
        token_id = session.scalar(select(ApiToken.id).where(ApiToken.prefix == api.text[:12]))
        if loss == "deactivated":
            admin.is_active = False
        elif loss.startswith("demoted"):
            admin.role = loss.rsplit(" ", 1)[1]
        else:
            api_tokens.revoke_token(session, session.get(User, second_id), token_id)
        session.commit()
    read, write = api.get("/contacts"), api.write("POST", "/contacts", {"name": "After", "email": "after@acme.test"})
    assert (read.status_code, write.status_code) == (401, 401)
    assert count(app, Contact, Contact.name == "After") == 0
    auth.login("sam@northwind.test")
    listed = auth.get("/admin/api-tokens", htmx=False).get_data(as_text=True)
    taken = auth.post(f"/admin/api-tokens/{token_id}/take-over", htmx=False)
    if loss == "revoked by another admin":
        assert "lost the rights" not in listed and taken.status_code == 422
        assert api.get("/contacts").status_code == 401
        return
    assert "lost the rights: it opens nothing" in listed and taken.status_code == 302
    assert api.get("/contacts").status_code == 200
    made = api.write("POST", "/contacts", {"name": "Taken over", "email": "taken@acme.test"}).get_json()
    with app.extensions["inboxcrm.db"].sessions() as session:
        assert session.get(Contact, made["id"]).owner_id == second_id  # made as its new owner
        assert "lost the rights" not in auth.get("/admin/api-tokens", htmx=False).get_data(as_text=True)


def test_each_token_has_its_own_rate_limit(app, app_world: World):
    app.config["API_RATE_LIMIT"] = "3 per minute"
    first, second = Client(app, token(app, app_world)), Client(app, token(app, app_world))
    assert [first.get("/users").status_code for _ in range(4)] == [200, 200, 200, 429]
    limited = first.get("/users")
    assert limited.get_json()["code"] == "rate_limited" and int(limited.headers["Retry-After"]) > 0
    assert limited.headers["X-RateLimit-Limit"] == "3" and limited.headers["X-RateLimit-Remaining"] == "0"
    answer = second.get("/users")
    assert answer.status_code == 200 and answer.headers["X-RateLimit-Remaining"] == "2"


def test_the_api_rate_limit_and_its_shared_store_come_from_the_environment(monkeypatch, tmp_path):
    from addin import create_app

    monkeypatch.setenv("API_RATE_LIMIT", "7 per second")
    monkeypatch.setenv("INBOXCRM_REDIS_URL", "redis://127.0.0.1:6390/0")
    monkeypatch.delenv("RATELIMIT_STORAGE_URI", raising=False)
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'a.db'}", "SECRET_KEY": "x"})
    assert app.config["API_RATE_LIMIT"] == "7 per second"
    assert app.config["RATELIMIT_STORAGE_URI"] == "redis://127.0.0.1:6390/0"  # every worker counts against one limit


def test_a_method_the_path_does_not_take_is_a_405_that_says_which_it_does(api: Client):
    answer = api.http.put("/api/v1/contacts", headers=api.headers("k"))
    assert answer.status_code == 405 and answer.get_json()["code"] == "method_not_allowed"
    assert set(answer.headers["Allow"].replace(" ", "").split(",")) >= {"GET", "POST"}


# -- sync ---------------------------------------------------------------------------------------------


def seed_contacts(app: Flask, world: World, n: int) -> None:
    with app.extensions["inboxcrm.db"].sessions() as session:
        for i in range(n):
            make_contact(
                session,
                session.get(Organization, world.org.id),
                None,
                f"Seed {i}",
                f"seed{i}@acme.test",
                session.get(User, world.rep.id),
            )
        session.commit()


def test_a_full_sync_then_only_what_changed(app, app_world: World, api: Client):
    seed_contacts(app, app_world, 7)
    data, deleted, cursor = api.sync("contacts", limit=3)
    assert len(data) == 8 and deleted == [] and len({c["id"] for c in data}) == 8
    assert {"ann@acme.test"} == set(next(c for c in data if c["id"] == app_world.contact.id)["emails"])
    assert api.sync("contacts", cursor) == ([], [], cursor)  # nothing since

    ann = api.get(f"/contacts/{app_world.contact.id}").get_json()
    changed = api.write(
        "PATCH", f"/contacts/{app_world.contact.id}", {"title": "Head of Logistics"}, version=ann["version"]
    )
    assert changed.status_code == 200 and changed.get_json()["version"] > ann["version"]
    seed = next(c for c in data if c["name"] == "Seed 3")
    assert api.write("DELETE", f"/contacts/{seed['id']}", version=seed["version"]).status_code == 200
    data2, deleted2, cursor2 = api.sync("contacts", cursor)
    assert [(c["id"], c["title"], c["deleted_at"] is not None) for c in data2] == [
        (app_world.contact.id, "Head of Logistics", False),
        (seed["id"], None, True),
    ]
    with app.extensions["inboxcrm.db"].sessions() as session:
        erase_person(session, session.get(Organization, app_world.org.id), "ann@acme.test", secret="s")
        session.commit()
    data3, deleted3, _ = api.sync("contacts", cursor2)
    assert data3 == [] and [d["id"] for d in deleted3] == [app_world.contact.id]


def test_writes_between_the_pages_of_a_sync_are_neither_lost_nor_repeated(app, app_world: World, api: Client):
    seed_contacts(app, app_world, 12)
    replica, seen, cursor, made = {}, [], None, 0
    while True:
        page = api.get("/contacts", **({"cursor": cursor} if cursor else {}), limit=2).get_json()
        for record in page["data"]:
            seen.append((record["id"], record["version"]))
            replica[record["id"]] = record["name"]
        cursor = page["cursor"]
        if made < 6:  # a new one, and a rename of one read or not yet read
            made += 1
            assert (
                api.write("POST", "/contacts", {"name": f"Made {made}", "email": f"made{made}@acme.test"}).status_code
                == 201
            )
            target = api.get(f"/contacts/{app_world.contact.id if made % 2 else replica and max(replica)}").get_json()
            assert (
                api.write(
                    "PATCH", f"/contacts/{target['id']}", {"name": f"{target['name']}!"}, version=target["version"]
                ).status_code
                == 200
            )
        elif not page["has_more"]:
            break
    with app.extensions["inboxcrm.db"].sessions() as session:
        assert replica == dict(
            session.execute(select(Contact.id, Contact.name).where(Contact.organization_id == app_world.org.id)).all()
        )
    assert len(seen) == len(set(seen))


def test_a_cursor_or_a_limit_not_ours_is_a_clear_error(api: Client):
    bad = api.get("/contacts", cursor="garbage")
    assert bad.status_code == 422 and bad.get_json()["code"] == "invalid_cursor" and bad.get_json()["field"] == "cursor"
    # Numbers past the store's BIGINT (SQLite's driver overflowed: a 500), below the start, or not ASCII digits.
    for inside in (
        "v1:99999999999999999999:1",
        "v1:1:9223372036854775808",
        "v1:-2:0",
        "v1:1:-1",
        "v1:\u0661:1",
        "v1:1_0:1",
        "v1: 1:1",
    ):
        cursor = base64.urlsafe_b64encode(inside.encode()).decode().rstrip("=")
        for path in ("/contacts", "/activities", "/events"):
            answer = api.get(path, cursor=cursor)
            assert answer.status_code == 422 and answer.get_json()["code"] == "invalid_cursor", (inside, path)
    for inside in ("99999999999999999999.1", "1.9223372036854775808", "-2.0", "1.-1", "\u0661.1", "1._0", "1.2.3"):
        assert api.get("/contacts", cursor=inside).get_json()["code"] == "invalid_cursor", inside
    biggest = (
        base64.urlsafe_b64encode(b"v1:9223372036854775807:9223372036854775807").decode().rstrip("=")
    )  # as cursors were written before
    assert api.get("/contacts", cursor=biggest).get_json()["data"] == []
    assert api.get("/contacts", cursor="9223372036854775807.9223372036854775807").get_json()["data"] == []
    for limit in (0, 1001, "x"):
        answer = api.get("/contacts", limit=limit)
        assert answer.status_code == 422 and answer.get_json()["field"] == "limit"


# -- writes ---------------------------------------------------------------------------------------------


def test_a_retried_write_answers_as_the_first_and_writes_nothing_new(app, app_world: World, api: Client):
    body = {"name": "Bo Buyer", "email": "bo@acme.test", "account_id": app_world.account.id}
    first = api.write("POST", "/contacts", body, key="retry-1")
    again = api.write("POST", "/contacts", body, key="retry-1")
    assert first.status_code == again.status_code == 201 and first.get_json() == again.get_json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert count(app, Contact, Contact.name == "Bo Buyer") == 1
    reused = api.write("POST", "/contacts", {**body, "name": "Other"}, key="retry-1")
    assert reused.status_code == 422 and reused.get_json()["code"] == "idempotency_key_reused"
    missing = api.write("POST", "/contacts", body, key=None)
    assert missing.status_code == 422 and missing.get_json()["code"] == "idempotency_key_required"
    assert count(app, Contact, Contact.name.in_(["Bo Buyer", "Other"])) == 1
    # A refused write keeps no key: fixed, the same key is taken.
    wrong = api.write("POST", "/contacts", {"name": "Cy", "email": "not an address"}, key="retry-2")
    assert wrong.status_code == 422 and wrong.get_json()["field"] == "email"
    assert count(app, IdempotencyKey, IdempotencyKey.key == "retry-2") == 0


def test_a_stale_version_gets_409_with_the_record_as_it_is(app, app_world: World, api: Client):
    deal = api.get(f"/opportunities/{app_world.deal.id}").get_json()
    moved = api.write("PATCH", f"/opportunities/{deal['id']}", {"amount": 30000}, version=deal["version"])
    assert moved.status_code == 200 and moved.get_json()["amount"] == "30000.00"
    stale = api.write("PATCH", f"/opportunities/{deal['id']}", {"amount": 1}, version=deal["version"])
    assert stale.status_code == 409 and stale.get_json()["code"] == "version_conflict"
    assert stale.get_json()["current"] == api.get(f"/opportunities/{deal['id']}").get_json()
    unsaid = api.write("PATCH", f"/opportunities/{deal['id']}", {"amount": 1})
    assert unsaid.status_code == 422 and unsaid.get_json()["code"] == "version_required"
    with app.extensions["inboxcrm.db"].sessions() as session:
        assert session.get(Opportunity, deal["id"]).amount == 30000
    for body, field in (
        ({"amount": -5}, "amount"),
        ({"name": ""}, None),
        ({"expected_close_date": "tomorrow"}, "expected_close_date"),
    ):
        answer = api.write("PATCH", f"/opportunities/{deal['id']}", body, version=moved.get_json()["version"])
        assert answer.status_code in (200, 422)
        if field:
            assert answer.status_code == 422 and answer.get_json()["field"] == field


def test_a_stage_move_and_the_writes_of_each_type(app, app_world: World, api: Client):
    deal = api.get(f"/opportunities/{app_world.deal.id}").get_json()
    won = api.write(
        "POST", f"/opportunities/{deal['id']}/stage", {"stage": "won", "final_amount": 27000}, version=deal["version"]
    )
    assert won.status_code == 200 and (won.get_json()["status"], won.get_json()["amount"]) == ("won", "27000.00")
    assert (
        api.write("POST", f"/opportunities/{deal['id']}/stage", {"stage": "lost"}, version=deal["version"]).status_code
        == 409
    )
    account = api.write("POST", "/accounts", {"name": "Globex", "domain": "globex.test"}).get_json()
    assert account["domains"] == ["globex.test"]
    new_deal = api.write(
        "POST",
        "/opportunities",
        {
            "name": "Globex lanes",
            "account_id": account["id"],
            "stage_id": app_world.stages[0].id,
            "amount": "12,500",
            "owner_id": app_world.rep.id,
        },
    )
    assert new_deal.status_code == 201 and new_deal.get_json()["owner_id"] == app_world.rep.id
    lead = api.write("POST", "/leads", {"name": "Li Lead", "email": "li@lead.test", "source": "web_form"})
    assert lead.status_code == 201 and lead.get_json()["status"] == "new"
    follow_up = api.write(
        "POST", "/follow_ups", {"title": "Call Li", "due_at": "2099-01-02T10:00:00Z", "account_id": account["id"]}
    )
    assert follow_up.status_code == 201
    done = api.write(
        "PATCH", f"/follow_ups/{follow_up.get_json()['id']}", {"done": True}, version=follow_up.get_json()["version"]
    )
    assert done.get_json()["done_at"] is not None
    quota = api.write(
        "POST",
        "/quotas",
        {
            "user_id": app_world.rep.id,
            "period": "month",
            "period_start": "2026-12-01",
            "metric": "activities",
            "activity_type": "call",
            "target": 80,
        },
    )
    assert quota.status_code == 201 and quota.get_json()["target"] == "80.00"
    assert (
        api.write(
            "POST", "/quotas", {"period": "month", "period_start": "2026-12-01", "metric": "won_deals", "target": 3}
        ).status_code
        == 422
    )
    assert api.write("PATCH", f"/users/{app_world.rep.id}", {"name": "x"}, version=1).status_code == 405
    note = api.write(
        "POST",
        "/activities",
        {
            "type": "note",
            "body_text": "Imported",
            "contact_id": app_world.contact.id,
            "owner_id": app_world.teammate.id,
        },
    )
    assert note.status_code == 201 and (note.get_json()["owner_id"], note.get_json()["source"]) == (
        app_world.teammate.id,
        "api",
    )
    assert api.write("POST", "/activities", {"type": "note", "owner_id": app_world.other_user.id}).status_code == 404


def test_a_private_activity_keeps_its_text_from_the_api(app, app_world: World, api: Client):
    with app.extensions["inboxcrm.db"].sessions() as session:
        note = activities.add_note(
            session,
            session.get(User, app_world.rep.id),
            {"contact_id": app_world.contact.id, "body": "Salary talk", "is_private": "1"},
        )
        session.commit()
    shown = api.get(f"/activities/{note.id}").get_json()
    assert shown["is_private"] and shown["body_text"] is None and shown["subject"] is None
    assert "Salary" not in str(api.sync("activities")[0])


def test_a_call_from_telephony_is_an_activity_once(app, app_world: World, api: Client):
    with app.extensions["inboxcrm.db"].sessions() as session:
        session.add(
            ContactPhone(organization_id=app_world.org.id, contact_id=app_world.contact.id, number="(617) 555-0100")
        )
        session.commit()
    call = {
        "external_id": "pbx-991",
        "direction": "inbound",
        "started_at": (NOW - timedelta(hours=2)).isoformat(),
        "duration_seconds": 61,
        "outcome": "connected",
        "phone": "+1 617 555 0100",
        "owner_id": app_world.rep.id,
        "notes": "Wants rates",
    }
    first = api.write("POST", "/calls", call)
    assert first.status_code == 201
    logged = first.get_json()
    assert (logged["type"], logged["duration_minutes"], logged["contact_id"], logged["owner_id"]) == (
        "call",
        2,
        app_world.contact.id,
        app_world.rep.id,
    )
    assert api.write("POST", "/calls", call).get_json()["id"] == logged["id"]  # reported again, under a new key
    assert count(app, Activity, Activity.type == "call") == 1
    for bad, field in (
        ({**call, "duration_seconds": -1}, "duration_seconds"),
        ({**call, "outcome": "maybe"}, "outcome"),
        ({k: v for k, v in call.items() if k != "started_at"}, "started_at"),
    ):
        answer = api.write("POST", "/calls", bad)
        assert answer.status_code == 422 and answer.get_json()["field"] == field


def test_bad_bodies_are_4xx_json_never_500(api: Client):
    for method, path, body in (
        ("POST", "/contacts", None),
        ("POST", "/contacts", ["a"]),
        ("POST", "/contacts", "text"),
        ("POST", "/opportunities", {"name": "x", "account_id": 99999999, "stage_id": 1}),
        ("PATCH", "/contacts/99999", {"name": "x"}),
        ("POST", "/nowhere", {}),
        ("PUT", "/contacts", {}),
    ):
        answer = api.write(method, path, body, version=1)
        assert 400 <= answer.status_code < 500, (method, path, answer.status_code)
        assert answer.is_json and answer.get_json()["code"]


# -- the document -----------------------------------------------------------------------------------------


def test_the_openapi_document_covers_every_route(app, api: Client):
    document = app.test_client().get("/api/v1/openapi.json").get_json()
    assert document["openapi"].startswith("3.")
    rules = {
        re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("api.")
    }
    assert rules == set(document["paths"])
    post = document["paths"]["/api/v1/contacts"]["post"]
    assert {p["name"] for p in post["parameters"]} == {"Idempotency-Key"} and "requestBody" in post
    assert {"409", "422"} <= set(document["paths"]["/api/v1/contacts/{record_id}"]["patch"]["responses"])
    assert document["components"]["securitySchemes"]["token"]["scheme"] == "bearer"
    # The document is valid OpenAPI, and every operation says its 401 and 429 (with the rate-limit headers).
    from openapi_spec_validator import validate

    validate(document)
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if method == "parameters":  # the path's own, beside its operations
                continue
            assert {"401", "429"} <= set(operation["responses"]), (path, method)
            assert "X-RateLimit-Remaining" in operation["responses"]["429"]["headers"]


def test_the_fast_dump_is_the_schemas_dump(app, app_world: World, api: Client):
    from addin.api_schemas import DUMP, GONE, OUT, Gone
    from services.integration import sync
    from services.models import Tombstone

    api.write(
        "POST",
        "/calls",
        {
            "external_id": "c1",
            "direction": "outbound",
            "started_at": NOW.isoformat(),
            "duration_seconds": 30,
            "outcome": "busy",
        },
    )
    api.write(
        "POST",
        "/quotas",
        {
            "team_id": app_world.east.id,
            "period": "quarter",
            "period_start": "2026-10-01",
            "metric": "won_revenue",
            "target": "125000.5",
        },
    )
    api.write("POST", "/leads", {"name": "Lu", "phone": "+1 555 0100"})
    api.write(
        "POST",
        "/follow_ups",
        {"title": "Call Lu", "due_at": "2099-01-02T10:00:00+01:00", "contact_id": app_world.contact.id},
    )
    with app.extensions["inboxcrm.db"].sessions() as session:
        for name, model in sync.SYNCED.items():
            rows = session.scalars(select(model)).all()
            assert rows, name
            assert [DUMP[name](r) for r in rows] == OUT[name](many=True).dump(rows), name
        stone = Tombstone(
            organization_id=app_world.org.id, record_type="contacts", record_id=5, sync_seq=9, deleted_at=NOW
        )
        assert GONE(stone) == Gone().dump(stone)


def test_activities_changed_and_deleted_through_the_api_keep_every_figure(app, app_world: World, api: Client):
    """The rollups and the deals' and accounts' latest times, after edits and deletions through
    the API, equal a recount from the live activities (``rebuild_rollups``)."""
    from services.models import Account
    from services.rollups import rebuild_rollups
    from tests.helpers import rollup_snapshot

    deal = app_world.deal
    made = {}
    for name, body in {
        "meeting": {"type": "meeting", "direction": "outbound", "outcome": "held", "duration_minutes": 240},
        "inbound": {"type": "email", "direction": "inbound", "subject": "Yes please"},
        "call": {"type": "call", "direction": "outbound", "outcome": "connected", "duration_minutes": 12},
    }.items():
        answer = api.write(
            "POST",
            "/activities",
            {
                **body,
                "opportunity_id": deal.id,
                "account_id": app_world.account.id,
                "occurred_at": (NOW - timedelta(days=len(made) + 1)).isoformat(),
            },
        )
        assert answer.status_code == 201, answer.get_json()
        made[name] = answer.get_json()
    shortened = api.write(
        "PATCH", f"/activities/{made['meeting']['id']}", {"duration_minutes": 30}, version=made["meeting"]["version"]
    )
    assert shortened.status_code == 200
    assert (
        api.write(
            "PATCH", f"/activities/{made['call']['id']}", {"outcome": "no_answer"}, version=made["call"]["version"]
        ).status_code
        == 200
    )
    assert (
        api.write("DELETE", f"/activities/{made['inbound']['id']}", version=made["inbound"]["version"]).status_code
        == 200
    )
    again = api.get(f"/activities/{made['inbound']['id']}").get_json()
    assert again["deleted_at"] is not None  # deleted once: deleting or changing it again finds nothing
    assert api.write("DELETE", f"/activities/{made['inbound']['id']}", version=again["version"]).status_code == 404
    assert (
        api.write(
            "PATCH", f"/activities/{made['inbound']['id']}", {"duration_minutes": 5}, version=again["version"]
        ).status_code
        == 404
    )

    def kept(session):
        deals = {(d.id, d.last_activity_at, d.last_inbound_at) for d in session.scalars(select(Opportunity))}
        accounts = {(a.id, a.last_activity_at) for a in session.scalars(select(Account))}
        return rollup_snapshot(session, app_world.org.id), deals, accounts

    with app.extensions["inboxcrm.db"].sessions() as session:
        as_written = kept(session)
        rebuild_rollups(session, session.get(Organization, app_world.org.id))
        session.flush()
        session.expire_all()
        assert kept(session) == as_written
        # The deal's last inbound interaction was the deleted mail's, then the call no longer connected: the meeting's.
        meeting = session.get(Activity, made["meeting"]["id"])
        assert session.get(Opportunity, deal.id).last_inbound_at == meeting.occurred_at
        session.rollback()


def test_the_note_quality_line_counts_what_its_csv_lists_after_api_deletions(app, app_world: World, api: Client):
    """The line ("n of m flagged") reads the rollups, the CSV the activities: equal after calls
    are logged and deleted through the API."""
    from services.periods import period_for
    from services.reports import note_quality, note_quality_totals, report_scope

    calls = [
        api.write(
            "POST",
            "/activities",
            {
                "type": "call",
                "direction": "outbound",
                "outcome": "connected",
                "body_text": "",
                "owner_id": app_world.rep.id,
                "occurred_at": (NOW - timedelta(hours=i + 1)).isoformat(),
            },
        ).get_json()
        for i in range(3)
    ]
    assert api.write("DELETE", f"/activities/{calls[0]['id']}", version=calls[0]["version"]).status_code == 200
    with app.extensions["inboxcrm.db"].sessions() as session:
        admin = session.get(User, app_world.admin.id)
        year = period_for("this_year", NOW.date(), admin.organization.fiscal_year_start_month)
        listed = note_quality(report_scope(session, admin, year))
        totals = note_quality_totals(report_scope(session, admin, year))
        assert (totals.notes, totals.flagged) == (len(listed), sum(n.flagged for n in listed))
        assert {n.activity_id for n in listed} >= {c["id"] for c in calls[1:]} and calls[0]["id"] not in {
            n.activity_id for n in listed
        }
