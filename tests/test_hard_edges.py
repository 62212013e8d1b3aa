"""Hard edges an outside probe found, each closed at its seam: one visibility rule for private
content, sessions that end when they are ended, one id converter, one date range, one guard
against NUL characters, no-store caching, forwarded headers believed only when configured,
and reads that never wait for SQLite's write lock."""

from __future__ import annotations

import sqlite3
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from addin import create_app
from addin.security import limiter
from services import followups
from services.errors import DomainError
from services.mail import activities
from services.models import Activity, Base, FollowUp, User
from tests.conftest import AuthActions
from tests.factories import NOW, PASSWORD, World
from tests.helpers import item_for


def count(app, model, *where) -> int:
    with app.extensions["inboxcrm.db"].sessions() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where))


def pane_token(client, email: str = "rita@northwind.test") -> str:
    limiter.reset()
    response = client.post("/auth/token", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.json
    return response.json["token"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "HX-Request": "true"}


# -- 1. private means private everywhere -----------------------------------------------------------


def test_a_private_activitys_content_is_its_owners_alone_in_every_view(app, auth, app_world: World):
    with app.extensions["inboxcrm.db"].sessions() as session:
        rep = session.get(User, app_world.rep.id)
        activity, _ = activities.log_activity(
            session,
            rep,
            {
                "type": "call",
                "subject": "Salary talk with Ann",
                "body_text": "She is leaving in March",
                "is_private": "true",
                "contact_id": app_world.contact.id,
                "account_id": app_world.account.id,
            },
        )
        session.commit()
        activity_id = activity.id
    secrets = ("Salary talk with Ann", "She is leaving in March")

    auth.login("mia@northwind.test")  # Rita's manager: may see the history, not the content
    views = {
        "history": auth.get(f"/history/activities/{activity_id}"),
        "timeline": auth.get(f"/pane/accounts/{app_world.account.id}/timeline"),
        "notes": auth.get("/notes?account=Acme"),
        "pane": auth.get("/pane/context", query_string=item_for()),
    }
    for name, response in views.items():
        assert response.status_code == 200, name
        body = response.get_data(as_text=True)
        assert not any(secret in body for secret in secrets), name
    assert "(private)" in views["history"].get_data(as_text=True)

    auth.client.post("/logout", headers={"X-CSRFToken": auth.token})
    auth.login("rita@northwind.test")  # the owner reads her own
    assert "Salary talk with Ann" in auth.get(f"/history/activities/{activity_id}").get_data(as_text=True)


# -- 2. signing out ends the session ------------------------------------------------------------------


def test_a_copied_cookie_dies_with_sign_out(app, auth, app_world: World):
    auth.login("rita@northwind.test")
    copied = app.test_client()
    copied.set_cookie("session", auth.client.get_cookie("session").value)
    assert copied.get("/pane/context", headers={"HX-Request": "true"}).status_code == 200
    assert auth.client.post("/logout", headers={"X-CSRFToken": auth.token}).status_code == 302
    assert copied.get("/pane/context", headers={"HX-Request": "true"}).status_code == 401


def test_sign_out_ends_the_users_other_browsers_and_pane_tokens(app, auth, app_world: World):
    other_browser = AuthActions(app.test_client())
    other_browser.login("rita@northwind.test")
    assert other_browser.client.get("/pane/context", headers={"HX-Request": "true"}).status_code == 200
    token = pane_token(app.test_client())
    auth.login("rita@northwind.test")
    auth.client.post("/logout", headers={"X-CSRFToken": auth.token})
    assert other_browser.client.get("/pane/context", headers={"HX-Request": "true"}).status_code == 401
    assert app.test_client().get("/pane/context", headers=bearer(token)).status_code == 401


def test_revoking_the_pane_token_ends_cookie_sessions_too(app, auth, app_world: World):
    auth.login("rita@northwind.test")
    token = pane_token(app.test_client())
    assert app.test_client().post("/auth/token/revoke", headers=bearer(token)).status_code == 204
    assert auth.get("/pane/context").status_code == 401


def test_a_pane_signs_out_from_its_header(app, client, app_world: World):
    token = pane_token(client)
    header = client.get("/pane/header", headers=bearer(token)).get_data(as_text=True)
    assert "Rita Rep" in header and "Sign out" in header
    response = client.post("/logout", headers=bearer(token))
    assert response.status_code == 200 and response.headers["HX-Trigger"] == "inboxcrm:signed-out"
    assert client.get("/pane/context", headers=bearer(token)).status_code == 401


def test_refresh_cannot_stretch_a_sign_in_past_its_lifetime(app, client, app_world: World):
    from addin.tokens import issue_token

    app.config["SESSION_MAX_HOURS"] = 8
    with app.app_context(), app.extensions["inboxcrm.db"].sessions() as session:
        rep = session.get(User, app_world.rep.id)
        session.rollback()
        young = issue_token(rep, int(time.time()) - 3600)["token"]
        old = issue_token(rep, int(time.time()) - 8 * 3600 - 5)["token"]
        nearly = issue_token(rep, int(time.time()) - 8 * 3600 + 600)
    assert nearly["expires_in"] <= 600  # a refreshed token ends with the sign-in, not an hour later
    refreshed = client.post("/auth/token/refresh", headers=bearer(young))
    assert refreshed.status_code == 200
    assert client.post("/auth/token/refresh", headers=bearer(old)).status_code == 401
    assert client.get("/pane/context", headers=bearer(old)).status_code == 401


def test_a_cookie_session_ends_at_its_lifetime(app, auth, app_world: World):
    auth.login("rita@northwind.test")
    with auth.client.session_transaction() as session:
        session["signed_in_at"] = int(time.time()) - app.config["SESSION_MAX_HOURS"] * 3600 - 5
    assert auth.get("/pane/context").status_code == 401


# -- 11. a dead bearer is a 401 whatever the method --------------------------------------------------


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_a_revoked_token_gets_401_on_every_method(app, client, app_world: World, method):
    token = pane_token(client)
    client.post("/auth/token/revoke", headers=bearer(token))
    response = client.open("/activities/email", method=method, headers=bearer(token), data=item_for())
    assert response.status_code == 401 and response.json["error"].startswith("Your sign-in has ended")
    assert count(app, Activity) == 0


# -- 8. CSRF tokens rotate -----------------------------------------------------------------------------


def test_a_csrf_token_from_before_sign_in_is_refused_after(auth, app_world: World):
    planted = auth.refresh_token()
    auth.client.post("/login", data={"email": "rita@northwind.test", "password": PASSWORD, "csrf_token": planted})
    response = auth.client.post(
        "/activities/email", data=item_for(), headers={"X-CSRFToken": planted, "HX-Request": "true"}
    )
    assert response.status_code == 400 and count(auth.client.application, Activity) == 0
    fresh = auth.refresh_token()
    assert fresh != planted
    assert auth.post("/activities/email", item_for()).status_code == 200


def test_a_csrf_token_from_before_sign_out_is_refused_after(auth, app_world: World):
    auth.login("rita@northwind.test")
    before = auth.token
    auth.client.post("/logout", headers={"X-CSRFToken": before})
    auth.client.post(
        "/login", data={"email": "rita@northwind.test", "password": PASSWORD, "csrf_token": auth.refresh_token()}
    )
    response = auth.client.post(
        "/activities/email", data=item_for(), headers={"X-CSRFToken": before, "HX-Request": "true"}
    )
    assert response.status_code == 400


# -- 5 and 6: no 500 from input, and stored data never breaks a page -----------------------------


@pytest.mark.parametrize(
    "url",
    [
        "/deals/9223372036854775808/stage",
        "/deals/2147483648/stage",
        "/activities/99999999999/undo",
        "/followups/²/done",
        "/activities/%D9%A3/rating",
    ],
)
def test_ids_past_the_stores_range_or_not_ascii_are_404(auth, app_world: World, url):
    auth.login("rita@northwind.test")
    assert auth.post(url, {"stage": "won"}).status_code == 404


@pytest.mark.parametrize(
    "field, value", [("contact_id", "2147483648"), ("opportunity_id", "9223372036854775808"), ("account_id", "²")]
)
def test_form_ids_past_the_range_are_refused_with_a_message(auth, app_world: World, field, value):
    auth.login("rita@northwind.test")
    response = auth.post("/activities", {**item_for(), "type": "call", field: value})
    assert response.status_code == 422 and count(auth.client.application, Activity) == 0


@pytest.mark.parametrize("query", ["team=²", "rep=²", "team=99999999999", "rep=-1", "team=1e3"])
def test_odd_filters_on_the_dashboard_are_ignored(auth, app_world: World, query):
    auth.login("mia@northwind.test")
    assert auth.get(f"/dashboard?{query}").status_code == 200


def test_the_demo_picker_refuses_unicode_digits(app, auth, app_world: World):
    app.config["DEMO_SIGN_IN"] = True
    auth.refresh_token()
    response = auth.client.post("/login/as", data={"user_id": "²", "csrf_token": auth.token})
    assert response.status_code == 302
    assert auth.get("/pane/context").status_code == 401


EDGE = "9999-12-31T23:59"


@pytest.mark.parametrize(
    "url, form",
    [
        ("/followups", {"title": "Call", "due_at": EDGE, "contact_id": "1"}),
        ("/followups", {"title": "Call", "due_at": "0001-01-01T00:00", "contact_id": "1"}),
        ("/activities", {"type": "call", "occurred_at": EDGE, "contact_id": "1"}),
        ("/activities/email", item_for(sent_at="9999-12-31T23:59:00+00:00")),
        (
            "/activities/meeting",
            {"item_type": "appointment", "event_id": "e1", "start": EDGE, "attendees": "ann@acme.test"},
        ),
        (
            "/activities/meeting",
            {
                "item_type": "appointment",
                "event_id": "e1",
                "start": "2026-11-20T10:00",
                "end": EDGE,
                "attendees": "ann@acme.test",
            },
        ),
    ],
)
def test_dates_outside_the_sane_range_are_refused_at_input(auth, app_world: World, url, form):
    auth.login("rita@northwind.test")
    response = auth.post(url, form)
    assert response.status_code == 422
    assert "Enter a date between 1900 and 2199." in response.get_data(as_text=True)
    assert count(auth.client.application, Activity) == 0 and count(auth.client.application, FollowUp) == 0


@pytest.mark.parametrize(
    "query",
    [
        "period=custom&start=9999-12-31&end=9999-12-31",
        "period=custom&start=0001-01-01&end=0001-01-02",
        "period=custom&start=2199-12-30&end=2200-01-01",
    ],
)
def test_edge_report_periods_get_a_message(auth, app_world: World, query):
    auth.login("mia@northwind.test")
    response = auth.get(f"/dashboard?{query}")
    assert response.status_code == 422 and "Enter a date between 1900 and 2199." in response.get_data(as_text=True)


def test_a_stored_far_future_date_never_breaks_a_page(app, auth, app_world: World):
    """Written before input was range-checked: a follow-up due at the end of Python's calendar,
    in a UTC+1 organization. Every view of its account still answers."""
    with app.extensions["inboxcrm.db"].sessions() as session:
        session.add(
            FollowUp(
                organization_id=app_world.org.id,
                title="Far away",
                owner_id=app_world.rep.id,
                contact_id=app_world.contact.id,
                account_id=app_world.account.id,
                due_at=datetime(9999, 12, 31, 23, 30, tzinfo=timezone.utc),
                created_at=NOW,
            )
        )
        session.commit()
    auth.login("rita@northwind.test")
    response = auth.get("/pane/context", query_string=item_for())
    assert response.status_code == 200 and "Far away" in response.get_data(as_text=True)
    assert "31 Dec 23:30 UTC" in response.get_data(as_text=True)


@pytest.mark.parametrize(
    "url", ["/notes?account=a%00b", "/pane/context?from_address=ann%00@acme.test", "/dashboard?period=%00"]
)
def test_a_nul_character_in_a_query_is_refused(auth, app_world: World, url):
    auth.login("mia@northwind.test")
    response = auth.get(url)
    assert response.status_code == 422 and "NUL character" in response.get_data(as_text=True)


def test_a_nul_character_in_a_form_writes_nothing(auth, app_world: World):
    auth.login("rita@northwind.test")
    response = auth.post(
        "/activities/note", {**item_for(), "body": "fine\x00then", "contact_id": str(app_world.contact.id)}
    )
    assert response.status_code == 422 and count(auth.client.application, Activity) == 0


@pytest.mark.parametrize(
    "body",
    [
        {"email": "\x00", "password": "x"},
        {"email": "rita@northwind.test", "password": ["a\x00"]},
        {"note": {"deep": ["fine", "a\x00b"]}},
        {"a\x00": 1},
    ],
)
def test_a_nul_character_in_a_json_body_is_refused_at_the_door(client, app_world: World, body):
    """A JSON body is checked as a form is ("\\u0000" decodes to a NUL): on PostgreSQL the sign-in's
    lookup of an address holding one was a driver error, a 500 (found by the fuzz test)."""
    response = client.post("/auth/token", json=body)
    assert response.status_code == 422 and "NUL character" in response.get_json()["error"]


def test_services_refuse_nul_and_huge_ids_on_both_back_ends(session, world: World):
    """The same refusals below the web layer (the sync API and imports will call these), on
    PostgreSQL too, where the driver would otherwise raise."""
    rep = session.get(User, world.rep.id)
    for data in (
        {"type": "note", "body_text": "a\x00b", "contact_id": world.contact.id},
        {"type": "call", "contact_id": 2147483648},
        {"type": "call", "opportunity_id": 9223372036854775808},
        {"type": "call", "occurred_at": "9999-12-31T23:59:00", "contact_id": world.contact.id},
    ):
        with pytest.raises(DomainError):
            activities.log_activity(session, rep, data, now=NOW)
        session.rollback()
    with pytest.raises(DomainError, match="between 1900 and 2199"):
        followups.add_follow_up(
            session, rep, {"title": "x", "due_at": "9999-12-31T23:30:00+00:00", "contact_id": world.contact.id}, now=NOW
        )
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Activity)) == 0


# -- 9. forwarded headers, 10. the demo picker, 15. caching -------------------------------------------


def test_forwarded_addresses_are_not_believed_by_default(tmp_path, monkeypatch):
    """Not even in production: X-Forwarded-For is believed only with INBOXCRM_PROXIES set."""
    monkeypatch.setenv("INBOXCRM_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "prod-secret")
    monkeypatch.delenv("INBOXCRM_PROXIES", raising=False)
    production = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'prod.db'}"})
    Base.metadata.create_all(production.extensions["inboxcrm.db"].engine)
    client = production.test_client()
    limiter.reset()
    answers = [
        client.post(
            "/auth/token",
            json={"email": f"guess{n}@northwind.test", "password": "x"},
            base_url="https://crm.test",
            headers={"X-Forwarded-For": f"203.0.113.{n}"},
        ).status_code
        for n in range(12)
    ]
    assert answers[:10] == [401] * 10 and answers[10:] == [429, 429]
    limiter.reset()


def test_one_account_is_limited_whatever_the_address(tmp_path, monkeypatch, app_world: World):
    """Behind one trusted proxy the client address is believed; guessing one account's
    password from many addresses still meets the per-account limit."""
    monkeypatch.setenv("INBOXCRM_PROXIES", "1")
    proxied = create_app(
        {
            "TESTING": True,
            "WTF_CSRF_ENABLED": False,
            "SECRET_KEY": "t",
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'proxied.db'}",
        }
    )
    Base.metadata.create_all(proxied.extensions["inboxcrm.db"].engine)
    client = proxied.test_client()
    limiter.reset()
    answers = [
        client.post(
            "/login",
            data={"email": "rita@northwind.test", "password": "x"},
            headers={"X-Forwarded-For": f"203.0.113.{n}"},
        ).status_code
        for n in range(12)
    ]
    assert answers[:10] == [401] * 10 and answers[10:] == [429, 429]
    limiter.reset()


def test_the_demo_picker_is_off_unless_asked_for(tmp_path, monkeypatch):
    monkeypatch.delenv("INBOXCRM_DEMO_SIGN_IN", raising=False)
    monkeypatch.delenv("INBOXCRM_ENV", raising=False)
    plain = create_app(
        {"WTF_CSRF_ENABLED": False, "SECRET_KEY": "t", "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'plain.db'}"}
    )
    assert plain.config["DEMO_SIGN_IN"] is False
    assert plain.test_client().post("/login/as", data={"user_id": "1"}).status_code == 404


def test_crm_answers_are_never_cached(auth, app, client, app_world: World):
    limiter.reset()
    token = client.post("/auth/token", json={"email": "rita@northwind.test", "password": PASSWORD})
    assert token.headers["Cache-Control"] == "no-store"
    auth.login("mia@northwind.test")
    for url in ("/pane/context", "/dashboard/activity.csv", "/dashboard", "/notes"):
        assert auth.get(url, htmx=False).headers["Cache-Control"] == "no-store", url
    assert "no-store" not in auth.get("/static/css/pane.css", htmx=False).headers.get("Cache-Control", "")


# -- 13. reads never take the write lock ------------------------------------------------------------


def test_reads_go_on_while_another_writer_holds_sqlites_lock(app, auth, app_world: World):
    auth.login("rita@northwind.test")
    path = app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///")
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # another request, mid-write
    answered: list[int] = []
    browser = app.test_client()  # a client of its own: the test client is not shared across threads
    browser.set_cookie("session", auth.client.get_cookie("session").value)
    reader = threading.Thread(
        target=lambda: answered.append(
            browser.get("/pane/context", query_string=item_for(), headers={"HX-Request": "true"}).status_code
        )
    )
    try:
        reader.start()
        reader.join(5)
        assert answered == [200], "a GET waited for the write lock"
    finally:
        writer.execute("ROLLBACK")
        writer.close()
        reader.join()


def test_writers_still_queue_rather_than_fail(app, auth, app_world: World):
    auth.login("rita@northwind.test")
    results: list[int] = []

    def log(n: int) -> None:
        client = app.test_client()
        client.set_cookie("session", auth.client.get_cookie("session").value)
        results.append(
            client.post(
                "/activities/email",
                data=item_for(message_id=f"<q{n}@acme.test>"),
                headers={"X-CSRFToken": auth.token, "HX-Request": "true"},
            ).status_code
        )

    threads = [threading.Thread(target=log, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert results == [200] * 8 and count(app, Activity) == 8


def test_month_to_date_on_the_31st_compares_with_the_whole_month_before():
    """Month-to-date on a 31st compares with the whole month before, clamped (see periods)."""
    from services.periods import comparison_for, period_for

    march = comparison_for(period_for("mtd", datetime(2026, 3, 31).date()))
    assert (march.start.isoformat(), march.end.isoformat()) == ("2026-02-01", "2026-03-01")
    assert timedelta(days=march.days) == timedelta(days=28)


def test_a_refresh_with_no_credential_is_a_401(client):
    for headers in ({}, {"Content-Type": "application/json"}):
        answer = client.post("/auth/token/refresh", headers=headers)
        assert answer.status_code == 401 and answer.is_json


def test_a_persons_export_waits_for_a_writer_instead_of_failing(app, app_world, auth):
    """The export writes its audit record: it takes a writer's session, which waits its turn
    behind another writer's transaction rather than failing with "database is locked"."""
    import threading
    import time

    from sqlalchemy import text as sql

    auth.login("ada@northwind.test")
    sessions = app.extensions["inboxcrm.db"].sessions
    holding, released = threading.Event(), threading.Event()

    def writer():
        with sessions() as session:
            session.execute(
                sql("UPDATE organizations SET name = name")
            )  # a writer's transaction: SQLite's write lock held
            holding.set()
            time.sleep(1.0)
            session.commit()
        released.set()

    thread = threading.Thread(target=writer)
    thread.start()
    holding.wait(5)
    answer = auth.get("/admin/privacy/export?address=ann@acme.test", htmx=False)
    thread.join()
    assert answer.status_code == 200 and released.is_set()
