"""The Gmail add-on: Google's event objects in, card JSON out, every request verified.

Google's key URL and the Gmail API are local servers (``tests/google.py``); tokens are signed
in the test with real RSA keys and checked for real; every card of every response is parsed
strictly as ``google.apps.card_v1.Card``.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from google.cloud import gsuiteaddons_v1
from google.protobuf import json_format
from joserfc.jwk import RSAKey
from sqlalchemy import func, select

from addin import handoff
from addin.cli import manifest
from addin.routes import gmail as gmail_routes
from services.capture.gmail import GmailUnavailable, fetch_message, parse_message
from services.models import Activity, AuditEvent, Contact, FollowUp, Opportunity, UserIdentity
from tests import google
from tests.factories import World
from tests.google import (
    ACCESS_TOKEN,
    BASE_URL,
    CLIENT_ID,
    OAUTH_TOKEN,
    SERVICE_ACCOUNT,
    b64url,
    check_cards,
    gmail_resource,
    texts,
)

MESSAGE_ID = "18c2f0a1b2c3d4e5"
RFC822_ID = "<CAF=rates.1234@mail.acme.test>"


@pytest.fixture
def app(engine, tmp_path, monkeypatch) -> Iterator[Flask]:
    """The app over the ``engine`` store, on each back end (this module's tests run twice): one
    message, one activity, and every card, whichever store serves them."""
    from addin import create_app

    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("INBOXCRM_ENV", raising=False)
    made = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": engine.url.render_as_string(hide_password=False),
            "SECRET_KEY": "test",
        }
    )
    made.instance_path = str(tmp_path)
    yield made
    made.extensions["inboxcrm.db"].engine.dispose()


@pytest.fixture
def addon(
    app: Flask, app_world: World, google_keys: google.GoogleKeys, gmail_api: google.GmailApi, monkeypatch
) -> Flask:
    app.config.update(
        BASE_URL=BASE_URL,
        GOOGLE_SERVICE_ACCOUNT=SERVICE_ACCOUNT,
        GOOGLE_CLIENT_IDS=[CLIENT_ID],
        GOOGLE_WORKSPACES={"northwind.test": "northwind.test", "contoso.test": "contoso.test"},
        GOOGLE_JWKS_URL=google_keys.jwks_url,
        GMAIL_API_URL=gmail_api.url,
    )
    monkeypatch.setattr("services.capture.gmail.TIMEOUT_SECONDS", 0.5)
    gmail_api.messages.clear()
    gmail_api.messages[MESSAGE_ID] = gmail_resource(
        MESSAGE_ID,
        {
            "From": "Ann Buyer <ann@acme.test>",
            "To": "rita@northwind.test",
            "Subject": "Re: rates for next quarter",
            "Message-ID": RFC822_ID,
            "Date": "Thu, 20 Nov 2025 14:00:00 +0100",
        },
        {
            "mimeType": "multipart/alternative",
            "parts": [
                {"mimeType": "text/plain", "body": {"data": b64url("Can you send the updated rates?")}},
                {"mimeType": "text/html", "body": {"data": b64url("<p>Can you send the <b>updated</b> rates?</p>")}},
            ],
        },
    )
    return app


def event(
    message_id: str | None = MESSAGE_ID,
    parameters: dict | None = None,
    inputs: dict | None = None,
    user_token: str | None = None,
    **gmail: object,
) -> dict:
    made: dict = {
        "commonEventObject": {
            "hostApp": "GMAIL",
            "platform": "WEB",
            "timeZone": {"id": "Europe/Berlin", "offset": 3600000},
            "parameters": parameters or {},
            "formInputs": inputs or {},
        },
        "authorizationEventObject": {"userOAuthToken": OAUTH_TOKEN, "userIdToken": user_token},
        "gmail": {"accessToken": ACCESS_TOKEN, **({"messageId": message_id} if message_id else {}), **gmail},
    }
    return made


def text(value: str) -> dict:
    return {"stringInputs": {"value": [value]}}


class Addon:
    """Posts events as Google does: the system token for the very endpoint, the user's token in the event."""

    def __init__(self, client, keys: google.GoogleKeys) -> None:
        self.client, self.keys = client, keys

    def post(
        self,
        path: str,
        body: dict,
        email: str = "rita@northwind.test",
        system: str | None = None,
        **user_claims: object,
    ):
        body = json.loads(json.dumps(body))
        body["authorizationEventObject"]["userIdToken"] = body["authorizationEventObject"].get(
            "userIdToken"
        ) or self.keys.user_token(email, **user_claims)
        token = system if system is not None else self.keys.system_token(path)
        return self.client.post(path, json=body, headers={"Authorization": f"Bearer {token}"} if token else {})

    def ok(self, path: str, body: dict, **kwargs: object) -> dict:
        response = self.post(path, body, **kwargs)
        assert response.status_code == 200, response.get_data(as_text=True)
        answer = response.get_json()
        assert check_cards(answer) or "notification" in texts(answer)
        return answer


@pytest.fixture
def google_addon(addon: Flask, google_keys: google.GoogleKeys) -> Addon:
    return Addon(addon.test_client(), google_keys)


def activities(app: Flask) -> list[Activity]:
    with app.extensions["inboxcrm.db"].sessions() as session:
        return list(session.scalars(select(Activity).where(Activity.deleted_at.is_(None))))


# -- deployment -----------------------------------------------------------------------------------


def test_manifest_command_writes_a_deployment_that_parses_strictly(app: Flask, tmp_path) -> None:
    out = tmp_path / "manifest"
    result = app.test_cli_runner().invoke(manifest, ["--base-url", "https://crm.example.com", "--out", str(out)])
    assert result.exit_code == 0, result.output
    deployment = json.loads((out / "gmail" / "deployment.json").read_text())
    add_ons = json_format.Parse(
        json.dumps(deployment["addOns"]), gsuiteaddons_v1.AddOns.pb()(), ignore_unknown_fields=False
    )
    assert add_ons.common.homepage_trigger.run_function == "https://crm.example.com/gmail/homepage"
    assert [t.on_trigger_function for t in add_ons.gmail.contextual_triggers] == [
        "https://crm.example.com/gmail/message"
    ]
    assert add_ons.gmail.compose_trigger.actions[0].run_function == "https://crm.example.com/gmail/compose"
    assert add_ons.http_options.authorization_header == 1  # SYSTEM_ID_TOKEN
    scopes = set(deployment["oauthScopes"])
    assert "https://www.googleapis.com/auth/gmail.addons.current.message.readonly" in scopes
    assert "https://www.googleapis.com/auth/userinfo.email" in scopes
    # Only the open message: nothing that reads or changes the mailbox.
    assert not scopes & {
        "https://mail.google.com/",
        "https://www.googleapis.com/auth/gmail.readonly",
        "https://www.googleapis.com/auth/gmail.modify",
    }
    assert all(
        s.startswith("https://www.googleapis.com/auth/gmail.addons.") or s.endswith("userinfo.email") for s in scopes
    )
    # No more than is used: no card changes a draft, and no event's locale is read.
    assert "https://www.googleapis.com/auth/gmail.addons.current.action.compose" not in scopes
    assert not add_ons.common.use_locale_from_app
    # The JSON has nothing the message does not know (the strict parse would have refused it).
    assert set(deployment) == {"oauthScopes", "addOns"}


# -- the message ----------------------------------------------------------------------------------


def test_gmail_api_message_is_parsed_nested_base64url_non_ascii_and_html_only() -> None:
    nested = gmail_resource(
        "m1",
        {
            "From": "=?UTF-8?B?SsO8cmdlbiBNw7xsbGVy?= <JUERGEN@Example.DE>",
            "To": "a@x.test, B <b@y.test>",
            "Cc": "not an address",
            "Subject": "Grüße – Angebot 🚚",
            "Message-ID": "<m1@example.de>",
        },
        {
            "mimeType": "multipart/mixed",
            "parts": [
                {
                    "mimeType": "multipart/alternative",
                    "parts": [
                        {"mimeType": "text/plain", "body": {"data": b64url("Hallo, Grüße")}},
                        {
                            "mimeType": "multipart/related",
                            "parts": [
                                {"mimeType": "text/html", "body": {"data": b64url("<p>Hallo, <i>Grüße</i></p>")}}
                            ],
                        },
                    ],
                },
                {"mimeType": "application/pdf", "filename": "quote.pdf", "body": {"attachmentId": "a1", "size": 10}},
            ],
        },
    )
    message = parse_message(nested)
    assert (message.from_name, message.from_address) == ("Jürgen Müller", "juergen@example.de")
    assert message.to == ["a@x.test", "b@y.test"] and message.cc == []
    assert message.subject == "Grüße – Angebot 🚚"
    assert message.body_text == "Hallo, Grüße" and "<i>Grüße</i>" in message.body_html
    assert message.internet_message_id == "<m1@example.de>"
    assert message.sent_at.startswith("2025-11-20T")

    html_only = parse_message(
        gmail_resource(
            "m2",
            {"From": "x@x.test", "Subject": "Hi"},
            {"mimeType": "text/html", "body": {"data": b64url("<div>Only <b>HTML</b> here</div>")}},
        )
    )
    assert html_only.body_text and "Only" in html_only.body_text and "<b>" not in html_only.body_text
    # The metadata format: headers, no bodies.
    metadata = parse_message(
        {
            "id": "m3",
            "threadId": "t3",
            "payload": {
                "mimeType": "multipart/alternative",
                "headers": [
                    {"name": "From", "value": "Ann Buyer <ann@acme.test>"},
                    {"name": "Subject", "value": "Metadata only"},
                    {"name": "Message-ID", "value": "<m3@acme.test>"},
                ],
            },
        }
    )
    assert (metadata.from_address, metadata.subject, metadata.body_text, metadata.body_html) == (
        "ann@acme.test",
        "Metadata only",
        None,
        None,
    )
    for junk in (None, [], {"payload": "x"}, {"id": 1}):
        with pytest.raises(ValueError):
            parse_message(junk)
    broken = parse_message(
        {
            "payload": {
                "headers": [{"name": 1}, "x", {"name": "From", "value": "@@"}],
                "mimeType": "text/plain",
                "body": {"data": "!!!not base64"},
            }
        }
    )
    assert broken.from_address == "" and broken.internet_message_id == ""


def test_message_card_shows_the_sender_and_logs_the_mail_once(
    addon: Flask, google_addon: Addon, gmail_api: google.GmailApi
) -> None:
    answer = google_addon.ok("/gmail/message", event())
    shown = texts(answer)
    assert "Ann Buyer" in shown and "Reefer contract" in shown and "Log this email" in shown
    assert re.search(r"Qualify · [^·]+ · health \d+", shown)  # the deal's health beside its stage (services.health)
    # The API was asked for the full message with both of Google's tokens.
    path, headers = gmail_api.requests[-1]
    assert path == f"/gmail/v1/users/me/messages/{MESSAGE_ID}?format=full"

    logged = google_addon.ok("/gmail/action/log_email", event())
    assert "Email logged." in texts(logged) and "This email is logged." in texts(logged)
    [activity] = activities(addon)
    assert (activity.source, activity.external_id, activity.direction) == ("gmail", RFC822_ID, "inbound")
    assert activity.subject == "Re: rates for next quarter" and "updated" in activity.body_text

    again = google_addon.ok("/gmail/action/log_email", event())
    assert "already in the CRM" in texts(again)
    assert len(activities(addon)) == 1


def test_the_same_message_from_outlook_and_gmail_is_one_activity(addon: Flask, google_addon: Addon, auth) -> None:
    auth.client = google_addon.client
    auth.login("rita@northwind.test")
    response = auth.post(
        "/activities/email",
        {
            "internet_message_id": RFC822_ID,
            "from_address": "ann@acme.test",
            "from_name": "Ann Buyer",
            "subject": "Re: rates for next quarter",
            "to": "rita@northwind.test",
        },
    )
    assert response.status_code == 200
    assert "already in the CRM" in texts(google_addon.ok("/gmail/action/log_email", event()))
    [activity] = activities(addon)
    assert activity.source == "outlook"


def test_gmail_api_failures_give_a_card_never_a_500(addon: Flask, google_addon: Addon) -> None:
    for message_id, words in (
        ("gone", "no such message"),
        ("broken", "error (500)"),
        ("slow", "in time"),
        ("junk", "not a message"),
    ):
        answer = google_addon.ok("/gmail/message", event(message_id))
        assert words in texts(answer), message_id
    answer = google_addon.ok("/gmail/action/log_email", event("broken"))
    assert "Gmail" in texts(answer) and activities(addon) == []


def test_fetch_message_sends_both_tokens_and_refuses_without_them(gmail_api: google.GmailApi, addon: Flask) -> None:
    assert fetch_message(gmail_api.url, MESSAGE_ID, OAUTH_TOKEN, ACCESS_TOKEN).internet_message_id == RFC822_ID
    with pytest.raises(GmailUnavailable, match="refused"):
        fetch_message(gmail_api.url, MESSAGE_ID, OAUTH_TOKEN, "another-message's-token")


# -- every request verified -----------------------------------------------------------------------


def test_requests_without_a_valid_google_token_get_401_and_no_data(
    addon: Flask, google_addon: Addon, google_keys: google.GoogleKeys
) -> None:
    stranger = RSAKey.generate_key(2048, parameters={"kid": "google-1"})
    now = int(time.time())
    cases = {
        "missing": dict(system=""),
        "forged": dict(
            system=google_keys.sign(
                {
                    "iss": "https://accounts.google.com",
                    "aud": f"{BASE_URL}/gmail/message",
                    "sub": "1",
                    "email": SERVICE_ACCOUNT,
                    "email_verified": True,
                    "exp": now + 600,
                },
                stranger,
            )
        ),
        "expired": dict(system=google_keys.system_token("/gmail/message", exp=now - 3600, iat=now - 7200)),
        "other endpoint": dict(system=google_keys.system_token("/gmail/homepage")),
        "other issuer": dict(system=google_keys.system_token("/gmail/message", iss="https://evil.example")),
        "other service account": dict(
            system=google_keys.system_token("/gmail/message", email="someone@evil.iam.gserviceaccount.com")
        ),
        "user token for another client": dict(aud="another-client"),
        "user token expired": dict(exp=now - 3600),
        "user address unverified": dict(email_verified=False),
        "hmac": dict(system="eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"),
    }
    for name, kwargs in cases.items():
        response = google_addon.post("/gmail/message", event(), **kwargs)
        assert response.status_code == 401, name
        assert "Ann Buyer" not in response.get_data(as_text=True), name
    # A user token with no signature at all, in the event.
    response = google_addon.post("/gmail/message", event(user_token="e30.e30."))
    assert response.status_code == 401


def test_users_map_by_workspace_and_an_unknown_user_is_told_how_to_get_access(
    addon: Flask, google_addon: Addon, app_world: World
) -> None:
    unknown = google_addon.ok("/gmail/message", event(), email="newbie@northwind.test")
    assert "No access yet" in texts(unknown) and "Ann Buyer" not in texts(unknown)
    # A workspace nobody mapped signs in nowhere.
    assert "No access yet" in texts(google_addon.ok("/gmail/homepage", event(None), email="someone@elsewhere.test"))
    # A Contoso workspace token naming a Northwind address: refused, and audited at Northwind.
    refused = google_addon.ok("/gmail/homepage", event(None), email="rita@northwind.test", hd="contoso.test")
    assert "No access yet" in texts(refused)
    with addon.extensions["inboxcrm.db"].sessions() as session:
        assert (
            session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "sign_in_refused"))
            == 1
        )
    # A personal Google account (no hd) that once verified Rita's address is not Rita.
    personal = google_addon.ok("/gmail/message", event(), email="rita@northwind.test", hd=None, sub="personal-1")
    assert "No access yet" in texts(personal) and "Ann Buyer" not in texts(personal)
    # Rita's Workspace account links her; another Workspace account claiming her address later does not.
    assert "No access yet" not in texts(google_addon.ok("/gmail/homepage", event(None), email="rita@northwind.test"))
    second = google_addon.ok("/gmail/homepage", event(None), email="rita@northwind.test", sub="another-google-account")
    assert "No access yet" in texts(second)
    with addon.extensions["inboxcrm.db"].sessions() as session:
        assert [i.subject for i in session.scalars(select(UserIdentity))] == ["sub-rita@northwind.test"]


def test_malformed_events_get_422_not_500(addon: Flask, google_addon: Addon) -> None:
    bad_parameters = event()
    bad_parameters["commonEventObject"]["parameters"] = {"deal_id": 5}
    assert google_addon.post("/gmail/action/deal", bad_parameters).status_code == 422
    bad_common = event()
    bad_common["commonEventObject"] = ["x"]
    assert google_addon.post("/gmail/message", bad_common).status_code == 422
    assert google_addon.post("/gmail/message", event(None)).status_code == 422  # no message id
    assert google_addon.post("/gmail/action/nope", event()).status_code == 404
    huge = event()
    huge["commonEventObject"]["formInputs"] = {"note": text("x" * 300_000)}
    assert google_addon.post("/gmail/action/note", huge).status_code == 413


def test_a_huge_subject_and_body_are_clipped_and_logged(
    addon: Flask, google_addon: Addon, gmail_api: google.GmailApi
) -> None:
    gmail_api.messages["long"] = gmail_resource(
        "long",
        {"From": "ann@acme.test", "Subject": "S" * 5000, "Message-ID": "<long@acme.test>"},
        {"mimeType": "text/html", "body": {"data": b64url("<p>" + "word " * 300_000 + "</p>")}},
    )
    google_addon.ok("/gmail/message", event("long"))
    assert "Email logged." in texts(google_addon.ok("/gmail/action/log_email", event("long")))
    [activity] = activities(addon)
    assert len(activity.subject) == 500 and len(activity.body_html or "") <= 1_000_100  # clipped, then its tags closed


# -- rep actions ----------------------------------------------------------------------------------


def test_rep_actions_note_follow_up_stage_rating_undo(addon: Flask, google_addon: Addon, app_world: World) -> None:
    deal_id, account_id = app_world.deal.id, app_world.account.id
    links = {"deal_id": str(deal_id), "account_id": str(account_id)}
    noted = google_addon.ok(
        "/gmail/action/note", event(parameters=links, inputs={"note": text("Wants 12 reefers in March")})
    )
    assert "Note added." in texts(noted)
    empty = google_addon.ok("/gmail/action/note", event(parameters=links, inputs={"note": text("")}))
    assert "Not saved" in texts(empty) and "Note: " in texts(empty)

    due = int((datetime.now(timezone.utc) + timedelta(days=2)).timestamp() * 1000)
    followed = google_addon.ok(
        "/gmail/action/follow_up",
        event(
            parameters=links,
            inputs={
                "follow_up": text("Send the revised quote"),
                "due": {"dateTimeInput": {"msSinceEpoch": str(due), "hasDate": True, "hasTime": True}},
            },
        ),
    )
    assert "Follow-up set." in texts(followed)
    past = int((datetime.now(timezone.utc) - timedelta(days=2)).timestamp() * 1000)
    refused = google_addon.ok(
        "/gmail/action/follow_up",
        event(
            parameters=links,
            inputs={"follow_up": text("Too late"), "due": {"dateTimeInput": {"msSinceEpoch": str(past)}}},
        ),
    )
    assert "future" in texts(refused)
    with addon.extensions["inboxcrm.db"].sessions() as session:
        assert [f.title for f in session.scalars(select(FollowUp))] == ["Send the revised quote"]

    deal_card = google_addon.ok("/gmail/action/deal", event(parameters={"deal_id": str(deal_id)}))
    assert "Move to" in texts(deal_card) and "pushCard" in texts(deal_card)
    no_reason = google_addon.ok(
        "/gmail/action/stage", event(parameters={"deal_id": str(deal_id)}, inputs={"stage": text("lost")})
    )
    assert "Say why the deal was lost." in texts(no_reason)
    lost = google_addon.ok(
        "/gmail/action/stage",
        event(parameters={"deal_id": str(deal_id)}, inputs={"stage": text("lost"), "loss_reason": text("Price")}),
    )
    assert "lost" in texts(lost)
    with addon.extensions["inboxcrm.db"].sessions() as session:
        deal = session.get(Opportunity, deal_id)
        assert (deal.status, deal.loss_reason) == ("lost", "Price")

    logged = google_addon.ok("/gmail/action/log_email", event())
    activity_id = next(a.id for a in activities(addon) if a.type == "email")
    rated = google_addon.ok("/gmail/action/rate", event(parameters={"activity_id": str(activity_id), "rating": "1"}))
    assert "Thanks for rating." in texts(rated)
    undone = google_addon.ok("/gmail/action/undo", event(parameters={"activity_id": str(activity_id)}))
    assert "Log undone." in texts(undone) and "Log this email" in texts(undone)
    assert "Email logged." in texts(logged)
    assert all(a.type != "email" for a in activities(addon))


def test_a_new_sender_becomes_a_contact_with_a_deal(
    addon: Flask, google_addon: Addon, gmail_api: google.GmailApi, app_world: World
) -> None:
    gmail_api.messages["new"] = gmail_resource(
        "new",
        {
            "From": "Bea Novak <bea@globex.test>",
            "To": "rita@northwind.test",
            "Subject": "Intro",
            "Message-ID": "<intro@globex.test>",
        },
        {"mimeType": "text/plain", "body": {"data": b64url("Hello")}},
    )
    card = google_addon.ok("/gmail/message", event("new"))
    assert "Add contact" in texts(card) and "Globex" in texts(card)
    address = "bea@globex.test"
    added = google_addon.ok(
        "/gmail/action/new_contact",
        event(
            "new",
            parameters={"address": address},
            inputs={
                f"name:{address}": text("Bea Novak"),
                f"company:{address}": text("Globex"),
                f"deal_name:{address}": text("Globex pilot"),
                f"stage_id:{address}": text(str(app_world.stages[0].id)),
            },
        ),
    )
    assert "Bea Novak added with the deal Globex pilot." in texts(added)
    # An address that is not on the message cannot be added through it.
    forged = google_addon.ok(
        "/gmail/action/new_contact",
        event("new", parameters={"address": "ceo@other.test"}, inputs={"name:ceo@other.test": text("CEO")}),
    )
    assert "not on this message" in texts(forged)
    with addon.extensions["inboxcrm.db"].sessions() as session:
        assert session.scalar(select(func.count()).select_from(Contact).where(Contact.name == "CEO")) == 0


def test_forged_parameters_for_another_organization_change_nothing(
    addon: Flask, google_addon: Addon, app_world: World
) -> None:
    other = app_world.other_deal.id
    for path, parameters, inputs in (
        ("/gmail/action/stage", {"deal_id": str(other)}, {"stage": text("lost"), "loss_reason": text("x")}),
        ("/gmail/action/deal", {"deal_id": str(other)}, {}),
        ("/gmail/action/note", {"deal_id": str(other)}, {"note": text("sneaky")}),
        ("/gmail/action/undo", {"activity_id": "99999999999999"}, {}),
        ("/gmail/action/rep", {"rep_id": str(app_world.other_user.id)}, {}),
        ("/gmail/action/account", {"account_id": str(app_world.other_account.id)}, {}),
    ):
        answer = google_addon.ok(path, event(parameters=parameters, inputs=inputs))
        assert "Their secret deal" not in texts(answer) and "Ann Elsewhere" not in texts(answer), path
    with addon.extensions["inboxcrm.db"].sessions() as session:
        assert session.get(Opportunity, other).status == "open"
        assert session.scalar(select(func.count()).select_from(Activity)) == 0


def test_compose_shows_the_recipients_context(addon: Flask, google_addon: Addon) -> None:
    answer = google_addon.ok("/gmail/compose", event(None, toRecipients=["ann@acme.test"]))
    assert "Ann Buyer" in texts(answer) and "Reefer contract" in texts(answer)
    nobody = google_addon.ok("/gmail/compose", event(None, toRecipients=["tom@northwind.test"]))
    assert "Add a recipient outside your organization" in texts(nobody)


# -- managers -------------------------------------------------------------------------------------


def test_manager_homepage_is_the_team_panel_with_drill_down(
    addon: Flask, google_addon: Addon, app_world: World
) -> None:
    home = google_addon.ok("/gmail/homepage", event(None), email="mia@northwind.test")
    shown = texts(home)
    assert "Your team" in shown and "Rita Rep" in shown and "Tom Teammate" in shown and "Wendy West" not in shown
    rep = google_addon.ok(
        "/gmail/action/rep", event(None, parameters={"rep_id": str(app_world.rep.id)}), email="mia@northwind.test"
    )
    assert "Acme Freight" in texts(rep)
    timeline = google_addon.ok(
        "/gmail/action/account",
        event(None, parameters={"account_id": str(app_world.account.id)}),
        email="mia@northwind.test",
    )
    assert "Timeline" in texts(timeline)
    # Another team's rep is not this manager's to open; a rep gets their own day, not a team.
    west = google_addon.ok(
        "/gmail/action/rep", event(None, parameters={"rep_id": str(app_world.west_rep.id)}), email="mia@northwind.test"
    )
    assert "Acme Freight" not in texts(west) and "notification" in texts(west)
    rep_home = google_addon.ok("/gmail/homepage", event(None))
    assert "Your team" not in texts(rep_home) and "Open a message" in texts(rep_home)


# -- "Open full panel" ----------------------------------------------------------------------------


def test_open_full_panel_signs_in_once_and_shows_the_same_message(
    addon: Flask, google_addon: Addon, monkeypatch
) -> None:
    card = google_addon.ok("/gmail/message", event())
    url = next(c["fixedFooter"]["primaryButton"]["onClick"]["openLink"]["url"] for c in google.cards_of(card))
    assert url.startswith(f"{BASE_URL}/gmail/open?t=")
    path = urlsplit(url).path + "?" + urlsplit(url).query
    browser = addon.test_client()
    opened = browser.get(path)
    assert opened.status_code == 302 and "/pane/context" in opened.headers["Location"]
    assert parse_qs(urlsplit(opened.headers["Location"]).query)["internet_message_id"] == [RFC822_ID]
    page = browser.get(opened.headers["Location"])
    assert page.status_code == 200 and "Ann Buyer" in page.get_data(as_text=True)
    assert addon.test_client().get(path).status_code == 401  # used once already
    assert addon.test_client().get(path.replace("t=", "t=x")).status_code == 401
    monkeypatch.setattr(handoff, "SECONDS", -1)
    card = google_addon.ok("/gmail/message", event())
    url = next(c["fixedFooter"]["primaryButton"]["onClick"]["openLink"]["url"] for c in google.cards_of(card))
    assert addon.test_client().get(urlsplit(url).path + "?" + urlsplit(url).query).status_code == 401


def test_gmail_endpoints_are_off_until_configured(app: Flask) -> None:
    response = app.test_client().post("/gmail/message", json=event())
    assert response.status_code == 404


def test_a_remembered_signature_never_skips_the_claims(google_keys: google.GoogleKeys) -> None:
    """Signatures are remembered (Google resends the same token for an hour); expiry, audience
    and issuer are checked on every use all the same."""
    from services.identity import RemoteKeys, TokenRejected, verify_google_token

    remote = RemoteKeys(google_keys.jwks_url)
    token = google_keys.system_token("/gmail/message")
    audience = [f"{BASE_URL}/gmail/message"]
    assert verify_google_token(token, audience, remote)["email"] == SERVICE_ACCOUNT
    assert token in remote.verified
    with pytest.raises(TokenRejected):
        verify_google_token(token, [f"{BASE_URL}/gmail/homepage"], remote)
    with pytest.raises(TokenRejected):
        verify_google_token(token, audience, remote, now=int(time.time()) + 3 * 3600)
    # A token signed by another key is not made good by being asked about twice.
    forged = google_keys.sign(
        {
            "iss": "https://accounts.google.com",
            "aud": audience[0],
            "sub": "1",
            "email": SERVICE_ACCOUNT,
            "email_verified": True,
            "exp": int(time.time()) + 600,
        },
        RSAKey.generate_key(2048, parameters={"kid": "google-1"}),
    )
    for _ in range(2):
        with pytest.raises(TokenRejected):
            verify_google_token(forged, audience, remote)
    assert forged not in remote.verified


def test_an_admins_team_card_lists_the_busiest_reps_and_says_so(addon: Flask, google_addon: Addon, monkeypatch) -> None:
    monkeypatch.setattr("addin.cards.CARD_REPS", 2)
    home = google_addon.ok("/gmail/homepage", event(None), email="ada@northwind.test")
    shown = texts(home)
    assert "The 2 busiest of" in shown and "the dashboard has them all" in shown


def test_the_team_card_names_the_steepest_falls_and_how_many_slip(
    addon: Flask, google_addon: Addon, app_world: World, monkeypatch
) -> None:
    from tests.factories import slipping_team

    monkeypatch.setattr("addin.cards.CARD_SLIPPING", 1)
    slipping_team(addon, app_world)
    shown = texts(google_addon.ok("/gmail/homepage", event(None), email="mia@northwind.test"))
    slipping = shown[shown.index("Who is slipping") :]
    assert (
        "Tom Teammate" in slipping.split("The 1 steepest")[0] and "Rita Rep" not in slipping.split("The 1 steepest")[0]
    )
    assert "The 1 steepest falls of 2: the dashboard names them all." in slipping


def test_the_team_cards_links_open_the_dashboard_and_the_timeline_signed_in_once(
    addon: Flask, google_addon: Addon, app_world: World
) -> None:
    """Charts open in the full panel: the team card's and the timeline card's links sign the
    manager in once, with no second password, and land on the dashboard or the timeline."""

    def link(answer: dict) -> str:
        url = next(
            c["fixedFooter"]["primaryButton"]["onClick"]["openLink"]["url"]
            for c in google.cards_of(answer)
            if "fixedFooter" in c
        )
        assert url.startswith(f"{BASE_URL}/gmail/open?t=")
        return urlsplit(url).path + "?" + urlsplit(url).query

    home = google_addon.ok("/gmail/homepage", event(None), email="mia@northwind.test")
    browser = addon.test_client()
    opened = browser.get(link(home))
    assert opened.status_code == 302 and urlsplit(opened.headers["Location"]).path == "/dashboard"
    page = browser.get("/dashboard")
    assert page.status_code == 200 and "Rita Rep" in page.get_data(as_text=True)
    assert addon.test_client().get(link(home)).status_code == 401  # once only

    timeline = google_addon.ok(
        "/gmail/action/account",
        event(None, parameters={"account_id": str(app_world.account.id)}),
        email="mia@northwind.test",
    )
    opened = addon.test_client().get(link(timeline))
    assert opened.status_code == 302 and f"/{app_world.account.id}" in opened.headers["Location"]


def test_the_gmail_card_logs_a_mail_or_a_note_private(addon: Flask, google_addon: Addon, app_world: World) -> None:
    """The card's "Private" boxes: ticked, the mail or the note is its owner's alone."""
    shown = google_addon.ok("/gmail/message", event())
    assert "Private: only you see its subject and text" in json.dumps(shown)
    google_addon.ok("/gmail/action/log_email", event(inputs={"private_email": text("1")}))
    [mail] = activities(addon)
    assert mail.is_private
    account_id = app_world.account.id
    google_addon.ok(
        "/gmail/action/note", event(parameters={"account_id": str(account_id)}, inputs={"note": text("Shared note")})
    )
    google_addon.ok(
        "/gmail/action/note",
        event(parameters={"account_id": str(account_id)}, inputs={"note": text("Own note"), "private_note": text("1")}),
    )
    notes = {a.body_text: a.is_private for a in activities(addon) if a.type == "note"}
    assert notes == {"Shared note": False, "Own note": True}


def test_the_message_card_shows_what_the_sender_posted_as_a_lead(
    addon: Flask, google_addon: Addon, app_world: World
) -> None:
    from services.models import Lead, LeadArrival

    with addon.extensions["inboxcrm.db"].sessions() as session:
        lead = Lead(
            organization_id=app_world.org.id,
            name="Ann Buyer",
            email="ann@acme.test",
            company="Acme",
            source="web_form",
            owner_id=app_world.rep.id,
            status="working",
        )
        session.add(lead)
        session.flush()
        session.add(
            LeadArrival(
                organization_id=app_world.org.id, lead_id=lead.id, name="Ann", message="Quote for reefer lanes, please"
            )
        )
        session.commit()
    shown = texts(google_addon.ok("/gmail/message", event()))
    assert "Quote for reefer lanes, please" in shown and "Acme · working · web form" in shown


@pytest.mark.parametrize(
    "headers",
    [
        {
            "From": "Mail Delivery <mailer-daemon@acme.test>",
            "To": "rita@northwind.test",
            "Message-ID": "<bounce@acme.test>",
        },
        {
            "From": "Mail Delivery <mailer-daemon@acme.test>",
            "To": "rita@northwind.test",
        },  # a bounce with no Message-ID: the bounce is said
        {
            "From": "Tom Teammate <tom@northwind.test>",
            "To": "rita@northwind.test",
            "Message-ID": "<lunch@northwind.test>",
        },
        {"From": "Ann Buyer <ann@acme.test>", "To": "rita@northwind.test"},
    ],
    ids=["bounce", "bounce-without-id", "internal", "no-message-id"],
)
def test_the_card_and_the_pane_say_alike_why_there_is_nothing_to_log(
    addon: Flask, google_addon: Addon, gmail_api: google.GmailApi, auth, headers
) -> None:
    """What a mail allows is decided once (``PaneContext.nothing_to_log``): the Gmail card and the
    Outlook pane say the same sentence for the same mail, and neither offers to log it."""
    gmail_api.messages["odd"] = gmail_resource(
        "odd", {**headers, "Subject": "Odd"}, {"mimeType": "text/plain", "body": {"data": b64url("Hi")}}
    )
    card = texts(google_addon.ok("/gmail/message", event("odd")))
    auth.client = google_addon.client
    auth.login("rita@northwind.test")
    sender = re.search(r"<(.+)>", headers["From"]).group(1)
    item = {
        "item_type": "message",
        "from_address": sender,
        "to": headers["To"],
        "internet_message_id": headers.get("Message-ID", ""),
        "subject": "Odd",
    }
    pane = auth.get("/pane/context", query_string={k: v for k, v in item.items() if v}).get_data(as_text=True)
    said = re.search(r"<p class=\"muted\" data-nothing-to-log>(.+?)</p>", pane)
    assert said, pane
    assert said.group(1).replace("&#39;", "'") in card
    assert "Log this email" not in card and 'data-form="log_email"' not in pane
