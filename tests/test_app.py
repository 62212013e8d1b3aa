"""The app's routes: sign-in, the preview, the pane's context and its actions, bad input."""

from __future__ import annotations

import gzip
import html
import json
import re
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from addin import create_app
from services.models import Activity, Base, Contact, FollowUp, Opportunity, Organization, StageChange
from services.periods import zone_named
from services.types import as_utc
from tests.factories import World
from tests.helpers import item_for, statements_of


def count(app, model, *where) -> int:
    with app.extensions["inboxcrm.db"].sessions() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where))


def test_healthz_checks_the_database(client, app):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json == {"status": "ok", "database": "ok"}


def test_healthz_reports_a_broken_database(tmp_path):
    broken = create_app(
        {"TESTING": True, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/missing/dir/x.db", "SECRET_KEY": "t"}
    )
    assert broken.test_client().get("/healthz").status_code == 503


def test_pages_need_sign_in(client, app_world):
    response = client.get("/pane/context")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_password_sign_in(auth, app_world: World):
    assert auth.login("rita@northwind.test", "wrong").status_code == 401
    response = auth.login("rita@northwind.test")
    assert response.status_code == 302
    assert "Rita Rep" in auth.get("/pane", htmx=False).get_data(as_text=True)


@pytest.mark.parametrize("target", ["https://evil.test/", "//evil.test/x", "javascript:alert(1)"])
def test_sign_in_never_redirects_off_site(auth, app_world: World, target):
    auth.refresh_token()
    response = auth.client.post(
        "/login",
        data={
            "email": "rita@northwind.test",
            "password": "correct horse battery staple",
            "next": target,
            "csrf_token": auth.token,
        },
    )
    assert response.headers["Location"] == "/preview"


def test_demo_picker_signs_in_and_the_preview_lists_sample_mail(app, auth, app_world: World):
    app.config["DEMO_SIGN_IN"] = True
    auth.refresh_token()
    response = auth.client.post("/login/as", data={"user_id": app_world.rep.id, "csrf_token": auth.token})
    assert response.status_code == 302
    page = auth.get("/preview", htmx=False).get_data(as_text=True)
    items = [json.loads(html.unescape(raw)) for raw in re.findall(r'data-item="([^"]+)"', page)]
    kinds = {item["from_address"].split("@")[1] for item in items}
    assert {"acme.test", "gmail.com", "granite-robotics.example", "northwind.test"} <= kinds
    assert any(item["item_type"] == "appointment" for item in items)
    assert 'width="350"' in page


def test_demo_picker_is_off_in_production(tmp_path, monkeypatch):
    monkeypatch.setenv("INBOXCRM_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "prod-secret")
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'p.db'}")
    monkeypatch.setenv("INBOXCRM_DEMO_SIGN_IN", "1")  # asked for, and still refused in production
    monkeypatch.setenv("INBOXCRM_PROXIES", "1")
    app = create_app({"WTF_CSRF_ENABLED": False})
    Base.metadata.create_all(app.extensions["inboxcrm.db"].engine)
    client = app.test_client()
    # A production store with no organization yet opens its first-run page.
    first = client.get("/preview", headers={"X-Forwarded-Proto": "https"})
    assert first.status_code == 302 and first.headers["Location"].endswith("/setup")
    with app.extensions["inboxcrm.db"].sessions() as session:
        session.add(Organization(name="Northwind", domains=["northwind.test"], settings={}))
        session.commit()
    # Production sends plain HTTP to HTTPS, and trusts the proxy's word on the scheme.
    assert client.get("/preview").status_code == 302
    assert client.post("/login/as", data={"user_id": "1"}, base_url="https://crm.test").status_code == 404
    page = client.get("/preview", headers={"X-Forwarded-Proto": "https"}).get_data(as_text=True)
    assert 'name="user_id"' not in page and "Sign in</a> to try the preview" in page


def test_production_needs_a_secret_key(monkeypatch):
    monkeypatch.setenv("INBOXCRM_ENV", "production")
    monkeypatch.delenv("SECRET_KEY", raising=False)
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        create_app()


def test_writes_need_the_csrf_token(auth, app_world: World):
    auth.login("rita@northwind.test")
    response = auth.client.post("/activities/email", data=item_for("ann@acme.test"), headers={"HX-Request": "true"})
    assert response.status_code == 400
    assert count(auth.client.application, Activity) == 0


def test_context_for_a_known_sender(auth, app_world: World):
    auth.login("rita@northwind.test")
    response = auth.get("/pane/context", query_string=item_for("ann@acme.test"))
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" not in body
    assert "Ann Buyer" in body and "Acme Freight" in body and "Reefer contract" in body and "Log this email" in body
    assert "Their secret deal" not in body and "Ann Elsewhere" not in body


def test_context_without_htmx_is_a_whole_page(auth, app_world: World):
    auth.login("rita@northwind.test")
    body = auth.get("/pane/context", htmx=False, query_string=item_for("ann@acme.test")).get_data(as_text=True)
    assert "<html" in body and "Ann Buyer" in body


def test_context_for_an_unknown_sender_offers_the_new_contact_form(auth, app_world: World):
    auth.login("rita@northwind.test")
    body = auth.get("/pane/context", query_string=item_for("priya@granite.test", from_name="Priya N")).get_data(
        as_text=True
    )
    assert "Nobody on this email is in the CRM yet" in body
    assert 'value="Priya N"' in body and 'value="Granite"' in body


def test_log_email_then_again(auth, app_world: World):
    auth.login("rita@northwind.test")
    first = auth.post("/activities/email", item_for("ann@acme.test", body_text="Hello"))
    assert first.status_code == 200 and "Email logged." in first.get_data(as_text=True)
    assert "This email is logged" in first.get_data(as_text=True)
    again = auth.post("/activities/email", item_for("ann@acme.test", body_text="Hello"))
    assert "already in the CRM" in again.get_data(as_text=True)
    assert count(auth.client.application, Activity) == 1


def test_plain_form_post_redirects_back_to_the_context(auth, app_world: World):
    auth.login("rita@northwind.test")
    response = auth.post("/activities/email", item_for("ann@acme.test"), htmx=False)
    assert response.status_code == 302 and response.headers["Location"].startswith("/pane/context?")
    page = auth.client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Email logged." in page and "This email is logged" in page


def test_lost_without_reason_shows_the_error_and_keeps_the_input(auth, app_world: World):
    auth.login("rita@northwind.test")
    form = {**item_for("ann@acme.test"), "stage": "lost", "final_amount": "123"}
    response = auth.post(f"/deals/{app_world.deal.id}/stage", form)
    body = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Say why the deal was lost." in body and 'aria-invalid="true"' in body and 'value="123"' in body
    assert count(auth.client.application, StageChange) == 2  # the two deals' initial entries only
    with auth.client.application.extensions["inboxcrm.db"].sessions() as session:
        assert session.get(Opportunity, app_world.deal.id).status == "open"


def test_stage_change_by_a_teammate_is_forbidden(auth, app_world: World):
    auth.login("tom@northwind.test")
    response = auth.post(
        f"/deals/{app_world.deal.id}/stage", {**item_for("ann@acme.test"), "stage": str(app_world.stages[1].id)}
    )
    assert response.status_code == 403
    assert "not allowed" in response.get_data(as_text=True)


def test_another_organizations_deal_is_404(auth, app_world: World):
    auth.login("ada@northwind.test")
    response = auth.post(
        f"/deals/{app_world.other_deal.id}/stage", {**item_for("ann@acme.test"), "stage": "lost", "loss_reason": "x"}
    )
    assert response.status_code == 404
    assert "Their secret deal" not in response.get_data(as_text=True)


def test_new_contact_and_deal_from_the_pane(auth, app_world: World):
    auth.login("rita@northwind.test")
    form = {
        **item_for("priya@granite.test"),
        "email": "priya@granite.test",
        "name": "Priya N",
        "company": "Granite",
        "deal_name": "Denver lane",
        "amount": "9000",
        "stage_id": str(app_world.stages[0].id),
    }
    body = auth.post("/contacts/from-sender", form).get_data(as_text=True)
    assert "Priya N added with the deal Denver lane." in body
    assert "Denver lane" in body and "Log this email" in body
    assert count(auth.client.application, Contact, Contact.name == "Priya N") == 1


@pytest.mark.parametrize(
    "change, message",
    [
        ({"email": "broken"}, "valid e-mail"),
        ({"name": ""}, "required"),
        ({"amount": "-3", "deal_name": "X"}, "amount between"),
    ],
)
def test_new_contact_with_bad_input_is_refused_inline(auth, app_world: World, change, message):
    auth.login("rita@northwind.test")
    form = {
        **item_for("priya@granite.test"),
        "email": "priya@granite.test",
        "name": "Priya N",
        "stage_id": str(app_world.stages[0].id),
        **change,
    }
    response = auth.post("/contacts/from-sender", form)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True).lower()
    assert count(auth.client.application, Contact) == 2


def test_log_call_note_follow_up_and_rating(auth, app_world: World):
    auth.login("rita@northwind.test")
    base = {**item_for("ann@acme.test"), "contact_id": app_world.contact.id, "account_id": app_world.account.id}
    logged = auth.post(
        "/activities",
        {
            **base,
            "type": "call",
            "outcome": "connected",
            "duration_minutes": "7",
            "answer:Truck size": "26 ft",
            "body_text": "Good",
        },
    )
    assert "Call logged." in logged.get_data(as_text=True)
    assert "Truck size: 26 ft" in logged.get_data(as_text=True)
    noted = auth.post("/activities/note", {**base, "body": "Prefers mornings"})
    assert "Note added." in noted.get_data(as_text=True)
    due = auth.post("/followups", {**base, "title": "Send contract", "due_at": "2099-01-05T10:00"})
    assert "Follow-up set" in due.get_data(as_text=True) and "Send contract" in due.get_data(as_text=True)
    with auth.client.application.extensions["inboxcrm.db"].sessions() as session:
        call_id = session.scalar(select(Activity.id).where(Activity.type == "call"))
    rated = auth.post(f"/activities/{call_id}/rating", {**base, "rating": "1"})
    assert "Marked as went well." in rated.get_data(as_text=True)
    # The pressed button now takes the rating back; pressed, it clears it.
    assert re.search(
        r'<button name="rating" value="0"[^>]*aria-pressed="true"[^>]*>\+ went well', rated.get_data(as_text=True)
    )
    cleared = auth.post(f"/activities/{call_id}/rating", {**base, "rating": "0"})
    assert "Rating cleared." in cleared.get_data(as_text=True)
    with auth.client.application.extensions["inboxcrm.db"].sessions() as session:
        assert session.get(Activity, call_id).rating is None
    assert auth.post(f"/activities/{call_id}/rating", {**base, "rating": "5"}).status_code == 422
    bad = auth.post("/activities", {**base, "type": "call", "duration_minutes": "-4"})
    assert bad.status_code == 422 and "Duration is between" in bad.get_data(as_text=True)
    assert count(auth.client.application, Activity) == 2


def test_email_bodies_and_names_are_escaped(auth, app_world: World):
    auth.login("rita@northwind.test")
    evil = {
        **item_for("mallory@evil.test", from_name="<img src=x onerror=alert(1)>"),
        "subject": "<script>alert(1)</script>",
    }
    body = auth.get("/pane/context", query_string=evil).get_data(as_text=True)
    assert "<img src=x" not in body and "<script>alert" not in body
    assert "&lt;img src=x onerror=alert(1)&gt;" in body


def test_the_panes_first_load_stays_under_60_kb_compressed(auth, app_world: World):
    """Everything the pane loads before the first context, Office.js aside, gzipped."""
    auth.login("rita@northwind.test")
    page = auth.get("/pane", htmx=False).get_data(as_text=True)
    assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', page)
    assert (
        any("htmx" in a for a in assets)
        and any(a.endswith(".css") for a in assets)
        and any("pane.js" in a for a in assets)
    )
    sizes = {"page": len(gzip.compress(page.encode()))}
    for asset in assets:
        response = auth.client.get(asset)
        assert response.status_code == 200
        sizes[asset] = len(gzip.compress(response.get_data()))
        response.close()
    assert sum(sizes.values()) < 60 * 1024, sizes


@pytest.mark.parametrize(
    "form, message",
    [
        ({}, "A meeting needs attendees."),
        (
            {"attendees": ["ann@acme.test"], "start": "2026-11-02T15:00", "end": "2026-11-02T14:00"},
            "ends before it starts",
        ),
    ],
)
def test_log_meeting_refuses_bad_input_inline(auth, app_world: World, form, message):
    auth.login("rita@northwind.test")
    item = {"item_type": "appointment", "event_id": "AAMk-2", "subject": "Review", "start": "2026-11-02T14:00", **form}
    response = auth.post("/activities/meeting", item)
    assert response.status_code == 422 and message in response.get_data(as_text=True)
    assert count(auth.client.application, Activity) == 0


def test_undo_by_someone_else_is_forbidden(auth, app_world: World):
    auth.login("rita@northwind.test")
    auth.post("/activities/email", item_for("ann@acme.test"))
    with auth.client.application.extensions["inboxcrm.db"].sessions() as session:
        activity_id = session.scalar(select(Activity.id))
    auth.login("mia@northwind.test")
    response = auth.post(f"/activities/{activity_id}/undo", item_for("ann@acme.test"))
    assert response.status_code == 403
    assert count(auth.client.application, Activity, Activity.deleted_at.is_(None)) == 1


@pytest.mark.parametrize("who, status", [("rita", 403), ("mia", 403), ("ada", 200)])
def test_admin_pages_are_admin_only(auth, app_world: World, who, status):
    auth.login(f"{who}@northwind.test")
    response = auth.get("/admin", htmx=False)
    assert response.status_code == status
    body = response.get_data(as_text=True)
    if status == 200:
        assert "Tom Teammate" in body and "Negotiation" in body and "Oscar Other" not in body
    else:
        assert "Tom Teammate" not in body


@pytest.mark.parametrize(
    "name, zone",
    [
        ("Eastern Standard Time", "America/New_York"),  # Outlook's userProfile.timeZone: Windows names
        ("Central European Standard Time", "Europe/Warsaw"),
        ("America/Sao_Paulo", "America/Sao_Paulo"),  # a browser's: IANA names
        ("UTC", "UTC"),
        ("Etc/UTC", "UTC"),
        ("Mars Standard Time", None),
        ("../../etc/passwd", None),
        ("", None),
        (None, None),
        ("x" * 500, None),
    ],
)
def test_mail_client_zone_names(name, zone):
    assert zone_named(name) == zone


def test_times_typed_and_read_in_the_mailbox_zone(auth, app_world: World):
    """Rita's organization keeps Berlin time; her mailbox is in New York. Her 10:00 is New York's
    10:00, and the pane names the zone where it is not her organization's."""
    auth.login("rita@northwind.test")
    base = {**item_for("ann@acme.test"), "contact_id": app_world.contact.id, "account_id": app_world.account.id}
    headers = {"X-CSRFToken": auth.token, "HX-Request": "true", "X-Time-Zone": "Eastern Standard Time"}
    response = auth.client.post(
        "/followups", data={**base, "title": "Call back", "due_at": "2099-01-05T10:00"}, headers=headers
    )
    assert response.status_code == 200
    with auth.client.application.extensions["inboxcrm.db"].sessions() as session:
        due = session.scalar(select(FollowUp.due_at).where(FollowUp.title == "Call back"))
    assert as_utc(due) == datetime(2099, 1, 5, 15, 0, tzinfo=timezone.utc)  # 10:00 EST
    page = response.get_data(as_text=True)
    # The answer is the follow-up alone, put first in the list, in her zone's time.
    assert "05 Jan 10:00 EST" in page and 'hx-swap-oob="afterbegin:#follow-up-list"' in page
    # Her pane names the zone its forms take times in.
    mine = auth.client.get("/pane/context", query_string=item_for("ann@acme.test"), headers=headers)
    assert "(America/New_York time)" in mine.get_data(as_text=True)
    # The same follow-up read by the pane in Berlin: its organization's zone, so no zone named.
    same = auth.client.get(
        "/pane/context",
        query_string=item_for("ann@acme.test"),
        headers={"HX-Request": "true", "X-Time-Zone": "W. Europe Standard Time"},
    )
    assert "05 Jan 16:00 ·" in same.get_data(as_text=True) and "America/New_York time" not in same.get_data(
        as_text=True
    )
    # A zone nobody knows is the organization's, never an error.
    odd = auth.client.post(
        "/followups",
        data={**base, "title": "Odd zone", "due_at": "2099-01-05T10:00"},
        headers={**headers, "X-Time-Zone": "Mars Standard Time"},
    )
    assert odd.status_code == 200
    with auth.client.application.extensions["inboxcrm.db"].sessions() as session:
        due = session.scalar(select(FollowUp.due_at).where(FollowUp.title == "Odd zone"))
    assert as_utc(due) == datetime(2099, 1, 5, 9, 0, tzinfo=timezone.utc)  # 10:00 in Berlin


def test_small_actions_answer_with_what_changed(auth, app_world: World):
    """A rating, a note, a follow-up done: each answers with only what it changed (out of band)
    and the toast, not the whole context; refused, the context comes back with the form's errors."""
    app = auth.client.application
    auth.login("rita@northwind.test")
    base = {**item_for("ann@acme.test"), "contact_id": app_world.contact.id, "account_id": app_world.account.id}
    auth.post("/activities", {**base, "type": "call", "outcome": "connected", "duration_minutes": "7"})
    with app.extensions["inboxcrm.db"].sessions() as session:
        call_id = session.scalar(select(Activity.id).where(Activity.type == "call"))
    whole, context_statements = statements_of(
        app, lambda: auth.get("/pane/context", query_string=item_for("ann@acme.test"))
    )

    rated, rating_statements = statements_of(
        app, lambda: auth.post(f"/activities/{call_id}/rating", {**base, "rating": "1"})
    )
    page = rated.get_data(as_text=True)
    assert rated.status_code == 200 and "Marked as went well." in page
    assert re.search(rf'<li class="activity call" id="activity-{call_id}" hx-swap-oob="true">', page)
    assert re.search(r'value="0"[^>]*aria-pressed="true"[^>]*>\+ went well', page)
    assert "Ann Buyer" not in page and 'class="card contact"' not in page  # not the context
    assert len(rated.data) * 5 < len(whole.data) and rating_statements * 2 < context_statements, (
        rating_statements,
        context_statements,
    )
    with app.extensions["inboxcrm.db"].sessions() as session:
        assert session.get(Activity, call_id).rating == 1

    noted = auth.post("/activities/note", {**base, "body": "Prefers <b>mornings</b>"})
    page = noted.get_data(as_text=True)
    assert '<ul hx-swap-oob="afterbegin:#recent-activities">' in page and "Prefers &lt;b&gt;mornings&lt;/b&gt;" in page
    assert "Note added." in page and "Undo" in page

    auth.post("/followups", {**base, "title": "Send contract", "due_at": "2099-01-05T10:00"})
    with app.extensions["inboxcrm.db"].sessions() as session:
        follow_up_id = session.scalar(select(FollowUp.id))
    done = auth.post(f"/followups/{follow_up_id}/done", base).get_data(as_text=True)
    assert f'<li id="follow-up-{follow_up_id}" hx-swap-oob="delete"></li>' in done and "Follow-up done." in done

    # Refused: a form with no place of its own (a rating), the whole context, retargeted at the
    # pane with the error in it; a form of the log actions, those alone, drawn again in place.
    refused = auth.post(f"/activities/{call_id}/rating", {**base, "rating": "5"})
    assert refused.status_code == 422
    assert (refused.headers["HX-Retarget"], refused.headers["HX-Reswap"]) == ("#context", "innerHTML")
    assert 'class="card contact"' in refused.get_data(as_text=True)
    again = auth.post(f"/followups/{follow_up_id}/done", base)
    assert again.status_code == 422 and "already done" in again.get_data(as_text=True)
    empty = auth.post("/activities/note", {**base, "body": "", "is_private": "1"})
    assert empty.status_code == 422 and (empty.headers["HX-Retarget"], empty.headers["HX-Reswap"]) == (
        "#actions",
        "outerHTML",
    )
    note_form = empty.get_data(as_text=True)
    assert 'class="card contact"' not in note_form and len(note_form) * 2 < len(whole.data)
    assert 'id="actions"' in note_form and 'name="is_private" value="1" checked' in note_form  # kept
    assert 'aria-invalid="true"' in note_form
    stage = auth.post(f"/deals/{app_world.deal.id}/stage", {**base, "stage": "lost"})
    assert stage.status_code == 422 and stage.headers["HX-Retarget"] == f"#deal-{app_world.deal.id}"
    assert "Say why the deal was lost." in stage.get_data(
        as_text=True
    ) and 'class="card contact"' not in stage.get_data(as_text=True)


def test_a_refused_new_contact_keeps_every_value_and_draws_its_own_form(auth, app_world: World):
    """An unknown sender's form refused (an amount that is not one): only the unknown senders'
    part comes back, in place, with the name, company, deal, amount and the stage chosen kept;
    nothing is written."""
    auth.login(app_world.rep.email)
    item = {**item_for("priya@granite.test"), "internet_message_id": "<p1@granite.test>"}
    whole = auth.post("/pane/context", item)
    typed = {
        "email": "priya@granite.test",
        "name": "Priya Natarajan",
        "company": "Granite Robotics",
        "deal_name": "Denver to Austin",
        "amount": "4.8.1",
        "stage_id": str(app_world.stages[1].id),
    }
    refused = auth.post("/contacts/from-sender", {**item, **typed})
    page = refused.get_data(as_text=True)
    assert refused.status_code == 422
    assert (refused.headers["HX-Retarget"], refused.headers["HX-Reswap"]) == ("#unknown-senders", "outerHTML")
    assert page.lstrip().startswith('<section class="unknown" id="unknown-senders"') and len(page) < len(whole.data)
    for name in ("name", "company", "deal_name", "amount"):
        assert f'name="{name}"' in page and f'value="{typed[name]}"' in page, name
    assert f'<option value="{app_world.stages[1].id}" selected>{app_world.stages[1].name}</option>' in page
    assert 'aria-invalid="true"' in page
    with auth.client.application.extensions["inboxcrm.db"].sessions() as session:
        assert session.scalar(select(func.count()).select_from(Contact).where(Contact.name == "Priya Natarajan")) == 0


def test_logging_an_email_answers_with_what_changed(auth, app_world: World):
    """Logged: the log card says so, the mail goes first in the recent activities, and its
    deal's card comes again without "no word from the customer" (an inbound mail is word)."""
    from datetime import timedelta

    app = auth.client.application
    with app.extensions["inboxcrm.db"].sessions() as session:
        deal = session.get(Opportunity, app_world.deal.id)
        deal.created_at = deal.created_at - timedelta(days=40)  # quiet for 40 days: going dark
        session.commit()
    auth.login("rita@northwind.test")
    before = auth.get("/pane/context", query_string=item_for("ann@acme.test")).get_data(as_text=True)
    assert "No word from the customer" in before
    logged = auth.post("/activities/email", {**item_for("ann@acme.test"), "body_text": "Yes, go ahead."})
    page = logged.get_data(as_text=True)
    assert logged.status_code == 200 and "Email logged." in page
    assert '<section class="card log-email" aria-label="Log this email" id="log-item" hx-swap-oob="true">' in page
    assert '<ul hx-swap-oob="afterbegin:#recent-activities">' in page
    assert f'<article class="card deal" id="deal-{app_world.deal.id}" hx-swap-oob="true">' in page
    assert "No word from the customer" not in page and 'class="card contact"' not in page
    again = auth.post("/activities/email", {**item_for("ann@acme.test"), "body_text": "Yes, go ahead."}).get_data(
        as_text=True
    )
    assert "This email is already in the CRM." in again and "afterbegin" not in again


def test_the_context_can_be_posted(auth, app_world: World):
    """The pane posts the item (its addresses stay out of URLs): the same context as a GET, and
    a cookie session's post needs its CSRF token like any other."""
    auth.login("rita@northwind.test")
    got = auth.get("/pane/context", query_string=item_for("ann@acme.test")).get_data(as_text=True)
    posted = auth.post("/pane/context", item_for("ann@acme.test"))
    assert posted.status_code == 200 and "Ann Buyer" in posted.get_data(as_text=True)
    assert posted.get_data(as_text=True).count("Reefer contract") == got.count("Reefer contract")
    assert (
        auth.client.post("/pane/context", data=item_for("ann@acme.test"), headers={"HX-Request": "true"}).status_code
        == 400
    )


def rep_follow_up(app, world: World, title: str, due_at: datetime, **link: int) -> int:
    """A follow-up of the rep's, stored before the client asks (``link``: its deal, contact or
    account); its id."""
    with app.extensions["inboxcrm.db"].sessions() as session:
        follow_up = FollowUp(organization_id=world.org.id, title=title, due_at=due_at, owner_id=world.rep.id, **link)
        session.add(follow_up)
        session.commit()
        return follow_up.id


def test_my_days_items_open_their_account(app, app_world: World, auth):
    """A follow-up on a deal or a contact opens its account's timeline from My day."""
    soon = datetime.now(timezone.utc) - timedelta(minutes=30)  # overdue: on My day at any hour
    for title, link in (("On the deal", {"opportunity_id": app_world.deal.id}), ("Loose", {})):
        rep_follow_up(app, app_world, title, soon, **link)
    auth.login(app_world.rep.email)
    day = auth.get("/pane/my-day").get_data(as_text=True)
    timeline = f"/pane/accounts/{app_world.account.id}/timeline"
    assert re.search(rf'<a href="{timeline}"[^>]*>On the deal</a>', day)
    assert "<span>Loose</span>" in day
    assert "Acme Freight" in auth.get(timeline).get_data(as_text=True)


def test_my_day_has_done_with_its_undo_and_says_a_refusal(app, app_world: World, auth):
    """With no mail open, My day's follow-ups each have Done: it answers with the item taken out
    and a toast with Undo, which puts it back first, opening its account; a refusal comes back
    in My day, not in an empty mail's context."""
    follow_up_id = rep_follow_up(
        app,
        app_world,
        "Chase the quote",
        datetime.now(timezone.utc) - timedelta(hours=2),
        opportunity_id=app_world.deal.id,
    )
    auth.login(app_world.rep.email)
    headers = {"X-CSRFToken": auth.token, "HX-Request": "true"}
    day = auth.get("/pane/my-day").get_data(as_text=True)
    assert f'id="follow-up-{follow_up_id}"' in day and f"/followups/{follow_up_id}/done" in day
    assert 'id="notices"' in day  # where a small answer's toast goes

    done = auth.client.post(f"/followups/{follow_up_id}/done", data={}, headers=headers)
    page = done.get_data(as_text=True)
    assert done.status_code == 200 and f'id="follow-up-{follow_up_id}" hx-swap-oob="delete"' in page
    assert f"/followups/{follow_up_id}/reopen" in page and "Follow-up done." in page
    assert "Chase the quote" not in auth.get("/pane/my-day").get_data(as_text=True)

    again = auth.client.post(f"/followups/{follow_up_id}/done", data={}, headers=headers)
    page = again.get_data(as_text=True)
    assert again.status_code == 422 and again.headers["HX-Retarget"] == "#context"
    assert "This follow-up is already done." in page and "My day" in page and "Open an email" not in page

    reopened = auth.client.post(f"/followups/{follow_up_id}/reopen", data={}, headers=headers)
    page = reopened.get_data(as_text=True)
    assert reopened.status_code == 200 and "afterbegin:#follow-up-list" in page
    timeline = f"/pane/accounts/{app_world.account.id}/timeline"
    assert re.search(rf'<a href="{timeline}"[^>]*>Chase the quote</a>', page)
    assert "Chase the quote" in auth.get("/pane/my-day").get_data(as_text=True)


def test_a_follow_up_reopened_by_a_manager_is_listed_under_its_owner(app, app_world: World, auth):
    follow_up_id = rep_follow_up(
        app, app_world, "Renewal call", datetime.now(timezone.utc) + timedelta(days=3), contact_id=app_world.contact.id
    )
    auth.login(app_world.manager.email)
    item = item_for("ann@acme.test")
    assert auth.post(f"/followups/{follow_up_id}/done", item).status_code == 200
    page = auth.post(f"/followups/{follow_up_id}/reopen", item).get_data(as_text=True)
    assert "Renewal call" in page and f"· {app_world.rep.name}" in page
    assert f"· {app_world.manager.name}" not in page


def test_a_follow_up_set_or_done_has_an_undo_in_its_toast(app, app_world: World, auth):
    auth.login(app_world.rep.email)
    item = {"from_address": "ann@acme.test", "internet_message_id": "<fu@acme.test>", "item_type": "message"}
    answer = auth.post(
        "/followups",
        {**item, "title": "Call back", "due_at": "2099-01-01T10:00", "contact_id": str(app_world.contact.id)},
    ).get_data(as_text=True)
    undo = re.search(r'hx-post="(/followups/(\d+)/undo)"', answer)
    assert "Follow-up set." in answer and undo
    assert "Follow-up taken back." in auth.post(undo.group(1), item).get_data(as_text=True)
    with app.extensions["inboxcrm.db"].sessions() as session:
        assert session.get(FollowUp, int(undo.group(2))).deleted_at is not None


def test_a_call_a_follow_up_a_stage_move_and_their_undos_answer_with_what_they_changed(auth, app_world: World):
    """Each answers with what it changed, swapped out of band, never the whole context: the call
    first in the list (and its deal's card), the follow-up first in its list, the deal's card;
    their undos take them out or draw the card again."""
    auth.login("rita@northwind.test")
    headers = {"X-CSRFToken": auth.token, "HX-Request": "true"}
    base = {**item_for("ann@acme.test"), "contact_id": app_world.contact.id, "account_id": app_world.account.id}
    whole = auth.client.post("/pane/context", data=item_for("ann@acme.test"), headers=headers).get_data(as_text=True)

    def small(path: str, data: dict, *marks: str) -> str:
        response = auth.client.post(path, data=data, headers=headers)
        page = response.get_data(as_text=True)
        assert response.status_code == 200 and 'class="context"' not in page, path
        assert len(page) < len(whole) / 2, (path, len(page), len(whole))
        for mark in marks:
            assert mark in page, (path, mark)
        return page

    call = small(
        "/activities",
        {**base, "type": "call", "outcome": "connected", "opportunity_id": app_world.deal.id, "body_text": "Rates"},
        'hx-swap-oob="afterbegin:#recent-activities"',
        f'id="deal-{app_world.deal.id}"',
        "Call logged.",
    )
    call_id = int(re.search(r'id="activity-(\d+)"', call).group(1))
    small(f"/activities/{call_id}/undo", base, f'id="activity-{call_id}" hx-swap-oob="delete"', "Log undone.")
    follow = small("/followups", {**base, "title": "Call back", "due_at": "2099-01-05T10:00"}, "#follow-up-list")
    follow_up_id = int(re.search(r'id="follow-up-(\d+)"', follow).group(1))
    small(f"/followups/{follow_up_id}/undo", base, f'id="follow-up-{follow_up_id}" hx-swap-oob="delete"')
    follow = small("/followups", {**base, "title": "Send rates", "due_at": "2099-01-05T10:00"}, "#follow-up-list")
    follow_up_id = int(re.search(r'id="follow-up-(\d+)"', follow).group(1))
    small(f"/followups/{follow_up_id}/done", base, f'id="follow-up-{follow_up_id}" hx-swap-oob="delete"')
    reopened = small(
        f"/followups/{follow_up_id}/reopen", base, "afterbegin:#follow-up-list", "Follow-up open again.", "Send rates"
    )
    assert f"· {app_world.rep.name}" in reopened  # listed as the mail's follow-ups are, with their owner
    stage = app_world.stages[1]
    small(
        f"/deals/{app_world.deal.id}/stage", {**base, "stage": stage.id}, f'id="deal-{app_world.deal.id}"', stage.name
    )
    won = small(f"/deals/{app_world.deal.id}/stage/undo", base, "Undone:")
    assert app_world.stages[0].name in won
    closed = small(
        f"/deals/{app_world.deal.id}/stage", {**base, "stage": "won", "final_amount": "900"}, "data-closed-deal"
    )
    assert "Won" in closed
    # The open mail's own log, undone, offers the log again: that answer is the whole context.
    logged = auth.client.post("/activities/email", data=item_for("ann@acme.test"), headers=headers)
    mail_id = int(re.search(r'data-logged="(\d+)"', logged.get_data(as_text=True)).group(1))
    again = auth.client.post(f"/activities/{mail_id}/undo", data=item_for("ann@acme.test"), headers=headers)
    assert 'class="context"' in again.get_data(as_text=True) and again.headers["HX-Retarget"] == "#context"
