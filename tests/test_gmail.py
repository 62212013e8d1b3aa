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

from addin import cards, handoff
from addin.cli import manifest
from services.capture.gmail import GmailUnavailable, fetch_message, parse_message
from services.models import Activity, AuditEvent, Contact, FollowUp, Opportunity, Organization, SendMark, UserIdentity
from services.privacy import erase_person
from tests import google
from tests.factories import World, make_deal
from tests.google import (
    ACCESS_TOKEN,
    BASE_URL,
    CLIENT_ID,
    OAUTH_TOKEN,
    SERVICE_ACCOUNT,
    b64url,
    check_response,
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
        check_response(answer, "action" if path.startswith("/gmail/action/") else "trigger")
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


def test_a_cards_amounts_are_written_as_the_users_organization_writes_them(
    addon: Flask, google_addon: Addon, app_world: World
) -> None:
    """A card's request carries Google's token, not a session: the amounts still follow the
    organization's locale, as the pane's do."""
    assert re.search(r"Qualify · \w* ?25,000", texts(google_addon.ok("/gmail/message", event())))
    with addon.extensions["inboxcrm.db"].sessions() as session:
        session.get(Organization, app_world.org.id).settings = {"locale": "de_DE"}
        session.commit()
    shown = texts(google_addon.ok("/gmail/message", event()))
    assert re.search(r"Qualify · \w* ?25\.000", shown) and "25,000" not in shown


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
    assert "Marked as went well." in texts(rated) and "Take back" in texts(rated)
    undone = google_addon.ok("/gmail/action/undo", event(parameters={"activity_id": str(activity_id)}))
    assert "Log undone." in texts(undone) and "Log this email" in texts(undone)
    assert "Email logged." in texts(logged)
    assert all(a.type != "email" for a in activities(addon))


def test_an_activity_changed_over_a_message_redraws_the_message_card_below(
    addon: Flask, google_addon: Addon, gmail_api: google.GmailApi
) -> None:
    """Rated or made private from its own card over a message: the message's card below is drawn
    again (its list says the rating and the privacy), then the activity's card over it, so Back
    shows the list as it now is. From the homepage, the activity's card alone."""
    google_addon.ok("/gmail/action/log_email", event())
    [activity] = activities(addon)

    def moves(answer: dict) -> list[str]:
        return [next(iter(n)) for n in answer["renderActions"]["action"]["navigations"]]

    rated = google_addon.ok("/gmail/action/rate", event(parameters={"activity_id": str(activity.id), "rating": "1"}))
    navigations = rated["renderActions"]["action"]["navigations"]
    assert moves(rated) == ["popToRoot", "updateCard", "pushCard"]
    root, top = navigations[1]["updateCard"], navigations[2]["pushCard"]
    assert "Ann Buyer" in texts(root) and "went well" in texts(root)  # the message's list says it
    assert "Take back" in texts(top) and "Marked as went well." in texts(rated)

    private = google_addon.ok(
        "/gmail/action/private", event(parameters={"activity_id": str(activity.id), "private": "1"})
    )
    root = private["renderActions"]["action"]["navigations"][1]["updateCard"]
    assert ", private" in texts(root)

    # From the homepage (no message open): the activity's card, updated in place.
    home = google_addon.ok(
        "/gmail/action/rate", event(message_id=None, parameters={"activity_id": str(activity.id), "rating": "0"})
    )
    assert moves(home) == ["updateCard"]
    # Gmail failing to give the message now: still the activity's card, the change kept.
    failed = google_addon.ok(
        "/gmail/action/rate", event("broken", parameters={"activity_id": str(activity.id), "rating": "-1"})
    )
    assert moves(failed) == ["updateCard"]
    assert [a.rating for a in activities(addon)] == [-1]


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


# -- every rep action in Gmail (issue 32) ----------------------------------------------------------


def parameters_of(answer: dict, name: str) -> list[dict[str, str]]:
    """The parameters of every button or click in ``answer`` that calls the action ``name``."""
    found = []

    def walk(value: object) -> None:
        if isinstance(value, dict):
            action = value.get("action")
            if isinstance(action, dict) and str(action.get("function", "")).endswith(f"/gmail/action/{name}"):
                found.append({p["key"]: p["value"] for p in action.get("parameters", [])})
            for inner in value.values():
                walk(inner)
        elif isinstance(value, list):
            for inner in value:
                walk(inner)

    walk(answer)
    return found


def test_a_whole_answer_is_parsed_strictly_and_a_malformed_one_is_refused() -> None:
    """The wrapper is parsed as strictly as the card: an unknown or snake_case name, a trigger
    answered as an action, a navigation Google does not know, a card over its widget limit."""
    made = {"header": {"title": "T"}, "sections": [{"widgets": [{"textParagraph": {"text": "x"}}]}]}
    google.check_response({"action": {"navigations": [{"pushCard": made}]}}, "trigger")
    update = {"renderActions": {"action": {"navigations": [{"popToRoot": True}, {"updateCard": made}]}}}
    google.check_response(update, "action")
    google.check_response({"renderActions": {"action": {"notification": {"text": "Done."}}}}, "action")
    google.check_response({"renderActions": {"action": {"link": {"url": "https://crm.test/x"}}}}, "action")
    wide = {"header": {"title": "T"}, "sections": [{"widgets": [{"textParagraph": {"text": "x"}}] * 101}]}
    for bad, kind in (
        (update, "trigger"),
        ({"action": {"navigations": [{"pushCard": made}]}}, "action"),
        ({"renderActions": {"action": {"navigations": [{"replaceCard": made}]}}}, "action"),
        ({"renderActions": {"action": {"notification": {"text": "x", "type": "ERROR"}}}}, "action"),
        ({"render_actions": {"action": {"notification": {"text": "x"}}}}, "action"),
        ({"renderActions": {"action": {"navigations": [{"pushCard": wide}]}}}, "action"),
        ({"renderActions": {"action": {}}}, "action"),
    ):
        with pytest.raises((AssertionError, json_format.ParseError)):
            google.check_response(bad, kind)


def test_the_cards_builder_never_draws_more_widgets_than_google_shows() -> None:
    made = cards.card(
        "Many", [cards.section([cards.paragraph(str(n)) for n in range(150)]), cards.section([cards.paragraph("last")])]
    )
    widgets = [w for s in made["sections"] for w in s["widgets"]]
    assert len(widgets) == cards.MAX_WIDGETS and "full panel has the rest" in json.dumps(widgets[-1])


def test_a_call_is_logged_from_its_own_card_with_the_checklist_named(
    addon: Flask, google_addon: Addon, app_world: World
) -> None:
    shown = google_addon.ok("/gmail/message", event())
    assert [p["type"] for p in parameters_of(shown, "log_form")] == ["call", "meeting", "visit"]
    form = google_addon.ok("/gmail/action/log_form", event(parameters={"type": "call"}))
    [made] = google.cards_of(form)
    assert "pushCard" in texts(form) and "Truck size" in texts(made) and "Lanes used" in texts(made)
    outcomes = {
        i["value"]
        for w in made["sections"][0]["widgets"]
        if w.get("selectionInput", {}).get("name") == "outcome"
        for i in w["selectionInput"]["items"]
    }
    assert outcomes == {"", "connected", "no_answer", "voicemail", "busy"}  # a call is not "held"

    deal = str(app_world.deal.id)
    typed = {
        "outcome": text("held"),
        "duration_minutes": text("15"),
        "deal": text(deal),
        "answer:0": text("40 ft reefers"),
        "body_text": text("Talked through the March rates"),
    }
    refused = google_addon.ok("/gmail/action/log_activity", event(parameters={"type": "call"}, inputs=typed))
    assert "Not saved" in texts(refused) and "outcome is one of" in texts(refused)
    assert "Talked through the March rates" in texts(refused) and "40 ft reefers" in texts(refused)  # kept
    assert not [a for a in activities(addon) if a.type == "call"]

    typed["outcome"] = text("connected")
    typed["private_activity"] = text("1")
    logged = google_addon.ok("/gmail/action/log_activity", event(parameters={"type": "call"}, inputs=typed))
    navigations = logged["renderActions"]["action"]["navigations"]
    assert list(navigations[0]) == ["popToRoot"] and list(navigations[1]) == ["updateCard"]
    assert "Call logged. Not answered: Lanes used." in texts(logged)
    [call] = [a for a in activities(addon) if a.type == "call"]
    assert (call.outcome, call.duration_minutes, call.opportunity_id, call.is_private) == (
        "connected",
        15,
        app_world.deal.id,
        True,
    )
    assert call.contact_id == app_world.contact.id and "Truck size: 40 ft reefers" in call.body_text
    assert (call.checklist_questions, call.checklist_answered) == (2, 1)
    assert parameters_of(logged, "undo")[0]["activity_id"] == str(call.id)
    nothing = google_addon.ok("/gmail/action/log_form", event(parameters={"type": "email"}))
    assert "Choose a call, a meeting or a visit." in texts(nothing)


def test_an_activity_opens_its_card_to_rate_take_back_and_make_private(
    addon: Flask, google_addon: Addon, app_world: World
) -> None:
    google_addon.ok("/gmail/action/log_email", event())
    [mail] = activities(addon)
    listed = google_addon.ok("/gmail/message", event())
    assert {"activity_id": str(mail.id)} in [
        {k: v for k, v in p.items() if k == "activity_id"} for p in parameters_of(listed, "activity")
    ]
    opened = google_addon.ok("/gmail/action/activity", event(parameters={"activity_id": str(mail.id)}))
    assert "Went well" in texts(opened) and "Make private" in texts(opened)

    def state() -> tuple:
        [now] = [a for a in activities(addon) if a.id == mail.id]
        return now.rating, now.is_private

    rated = google_addon.ok("/gmail/action/rate", event(parameters={"activity_id": str(mail.id), "rating": "1"}))
    assert state() == (1, False) and "Take back “went well”" in texts(rated)
    google_addon.ok("/gmail/action/rate", event(parameters={"activity_id": str(mail.id), "rating": "0"}))
    assert state() == (None, False)
    private = google_addon.ok("/gmail/action/private", event(parameters={"activity_id": str(mail.id), "private": "1"}))
    assert state() == (None, True) and "Share with your team again" in texts(private)
    # A teammate opening it sees that it is private, not its subject, and cannot rate it.
    seen = google_addon.ok(
        "/gmail/action/activity", event(parameters={"activity_id": str(mail.id)}), email="tom@northwind.test"
    )
    assert "Re: rates" not in texts(seen) and "only its owner sees" in texts(seen) and "Went well" not in texts(seen)
    # Only its owner makes it private or shares it again; a teammate cannot.
    tom = google_addon.ok(
        "/gmail/action/private",
        event(parameters={"activity_id": str(mail.id), "private": "0"}),
        email="tom@northwind.test",
    )
    assert state() == (None, True) and "notification" in texts(tom) and "updateCard" not in texts(tom)
    google_addon.ok("/gmail/action/private", event(parameters={"activity_id": str(mail.id), "private": "0"}))
    assert state() == (None, False)
    foreign = google_addon.ok(
        "/gmail/action/activity", event(parameters={"activity_id": str(mail.id)}), email="oscar@contoso.test"
    )
    assert "Re: rates" not in texts(foreign)


def test_a_stage_move_is_undone_from_the_card(addon: Flask, google_addon: Addon, app_world: World) -> None:
    deal_id, stages = app_world.deal.id, app_world.stages
    moved = google_addon.ok(
        "/gmail/action/stage", event(parameters={"deal_id": str(deal_id)}, inputs={"stage": text(str(stages[1].id))})
    )
    assert parameters_of(moved, "undo_stage")[0]["deal_id"] == str(deal_id)
    with addon.extensions["inboxcrm.db"].sessions() as session:
        assert session.get(Opportunity, deal_id).stage_id == stages[1].id
    undone = google_addon.ok("/gmail/action/undo_stage", event(parameters={"deal_id": str(deal_id)}))
    assert "is back in" in texts(undone)
    with addon.extensions["inboxcrm.db"].sessions() as session:
        assert session.get(Opportunity, deal_id).stage_id == stages[0].id
    # From the homepage (no message open): a card says what happened, with its Undo.
    again = google_addon.ok(
        "/gmail/action/stage",
        event(None, parameters={"deal_id": str(deal_id)}, inputs={"stage": text(str(stages[1].id))}),
    )
    assert parameters_of(again, "undo_stage") and '"name": "done"' in texts(again)
    twice = google_addon.ok("/gmail/action/undo_stage", event(None, parameters={"deal_id": str(deal_id)}))
    google_addon.ok("/gmail/action/undo_stage", event(None, parameters={"deal_id": str(deal_id)}))
    assert "is back in" in texts(twice)


def test_a_note_and_a_follow_up_go_to_the_deal_chosen_and_a_follow_up_is_undone(
    addon: Flask, google_addon: Addon, app_world: World
) -> None:
    with addon.extensions["inboxcrm.db"].sessions() as session:
        org = session.get(type(app_world.org), app_world.org.id)
        account = session.get(type(app_world.account), app_world.account.id)
        rep = session.get(type(app_world.rep), app_world.rep.id)
        stage = session.get(type(app_world.stages[0]), app_world.stages[0].id)
        second = make_deal(session, org, account, rep, stage, "Acme reefers").id
        session.commit()
    shown = google_addon.ok("/gmail/message", event())
    assert '"name": "deal"' in texts(shown) and "For the deal" in texts(shown)
    links = parameters_of(shown, "note")[0]
    google_addon.ok(
        "/gmail/action/note", event(parameters=links, inputs={"note": text("For reefers"), "deal": text(str(second))})
    )
    google_addon.ok(
        "/gmail/action/note", event(parameters=links, inputs={"note": text("For none"), "deal": text("none")})
    )
    notes = {a.body_text: a.opportunity_id for a in activities(addon) if a.type == "note"}
    assert notes == {"For reefers": second, "For none": None}

    due = int((datetime.now(timezone.utc) + timedelta(days=1)).timestamp() * 1000)
    set_ = google_addon.ok(
        "/gmail/action/follow_up",
        event(
            parameters=links,
            inputs={
                "follow_up": text("Call back"),
                "due": {"dateTimeInput": {"msSinceEpoch": str(due)}},
                "deal": text(str(second)),
            },
        ),
    )
    [undo] = parameters_of(set_, "follow_up_undo")
    with addon.extensions["inboxcrm.db"].sessions() as session:
        [follow_up] = session.scalars(select(FollowUp)).all()
        assert (follow_up.opportunity_id, follow_up.time_zone) == (second, "Europe/Berlin")
    theirs = google_addon.ok("/gmail/action/follow_up_undo", event(parameters=undo), email="tom@northwind.test")
    assert "Follow-up taken back." not in texts(theirs)
    taken = google_addon.ok("/gmail/action/follow_up_undo", event(parameters=undo))
    assert "Follow-up taken back." in texts(taken)
    with addon.extensions["inboxcrm.db"].sessions() as session:
        assert (
            session.scalar(
                select(func.count())
                .select_from(FollowUp)
                .where(FollowUp.done_at.is_(None), FollowUp.deleted_at.is_(None))
            )
            == 0
        )


def test_the_reps_day_is_the_homepage_with_done_and_undo(addon: Flask, google_addon: Addon, app_world: World) -> None:
    now = datetime.now(timezone.utc)
    with addon.extensions["inboxcrm.db"].sessions() as session:
        mine = FollowUp(
            organization_id=app_world.org.id,
            owner_id=app_world.rep.id,
            title="Send the quote",
            due_at=now - timedelta(hours=2),
            account_id=app_world.account.id,
        )
        later = FollowUp(
            organization_id=app_world.org.id,
            owner_id=app_world.rep.id,
            title="Next month",
            due_at=now + timedelta(days=30),
        )
        toms = FollowUp(
            organization_id=app_world.org.id,
            owner_id=app_world.teammate.id,
            title="Tom's own",
            due_at=now - timedelta(hours=1),
        )
        session.add_all([mine, later, toms])
        session.commit()
        mine_id, toms_id = mine.id, toms.id
    home = google_addon.ok("/gmail/homepage", event(None))
    assert "Send the quote" in texts(home) and "Overdue" in texts(home)
    assert "Next month" not in texts(home) and "Tom's own" not in texts(home)
    assert {"follow_up_id": str(mine_id)} in parameters_of(home, "follow_up_done")
    assert {"account_id": str(app_world.account.id)} in parameters_of(home, "account")
    done = google_addon.ok("/gmail/action/follow_up_done", event(None, parameters={"follow_up_id": str(mine_id)}))
    assert "Follow-up done." in texts(done) and "Send the quote" not in texts(done)
    assert parameters_of(done, "follow_up_reopen") == [{"follow_up_id": str(mine_id)}]
    reopened = google_addon.ok("/gmail/action/follow_up_reopen", event(None, parameters={"follow_up_id": str(mine_id)}))
    assert "Send the quote" in texts(reopened)
    google_addon.ok("/gmail/action/follow_up_done", event(None, parameters={"follow_up_id": str(toms_id)}))
    with addon.extensions["inboxcrm.db"].sessions() as session:
        assert session.get(FollowUp, toms_id).done_at is None and session.get(FollowUp, mine_id).done_at is None


def test_the_reps_own_never_log_list_in_gmail(addon: Flask, google_addon: Addon, app_world: World) -> None:
    opened = google_addon.ok("/gmail/action/block_list", event(None))
    assert "Your list is empty." in texts(opened)
    blocked = google_addon.ok("/gmail/action/block", event(None, inputs={"block_value": text("friend@example.com")}))
    assert "friend@example.com" in texts(blocked) and "Blocked" in texts(blocked)
    bad = google_addon.ok("/gmail/action/block", event(None, inputs={"block_value": text("not an address at all")}))
    assert "Not saved" in texts(bad) and "not an address at all" in texts(bad)
    [entry] = parameters_of(blocked, "unblock")
    tom = google_addon.ok("/gmail/action/unblock", event(None, parameters=entry), email="tom@northwind.test")
    assert "Taken off" not in texts(tom)
    removed = google_addon.ok("/gmail/action/unblock", event(None, parameters=entry))
    assert "Taken off your never-log list." in texts(removed) and "friend@example.com" not in texts(removed)


def test_search_the_crm_and_file_the_mail_on_any_deal(
    addon: Flask, google_addon: Addon, gmail_api: google.GmailApi, app_world: World
) -> None:
    gmail_api.messages["stranger"] = gmail_resource(
        "stranger",
        {
            "From": "Sam <sam@freight-brokers.test>",
            "To": "rita@northwind.test",
            "Subject": "Lanes",
            "Message-ID": "<lanes@fb.test>",
        },
        {"mimeType": "text/plain", "body": {"data": b64url("Which lanes?")}},
    )
    found = google_addon.ok("/gmail/action/search", event("stranger", inputs={"q": text("Acme")}))
    choices = parameters_of(found, "choose")
    assert {"chosen_deal_id": str(app_world.deal.id), "chosen_account_id": ""} in choices
    assert "Their secret deal" not in texts(found)  # another organization's
    short = google_addon.ok("/gmail/action/search", event("stranger", inputs={"q": text("A")}))
    assert "at least two letters" in texts(short)
    chosen = google_addon.ok(
        "/gmail/action/choose", event("stranger", parameters={"chosen_deal_id": str(app_world.deal.id)})
    )
    assert "Chosen from a search" in texts(chosen)
    carried = parameters_of(chosen, "log_email")
    assert carried == [{"chosen_account_id": str(app_world.account.id), "chosen_deal_id": str(app_world.deal.id)}]
    assert all(p.get("chosen_deal_id") == str(app_world.deal.id) for p in parameters_of(chosen, "note"))
    google_addon.ok(
        "/gmail/action/log_email",
        event("stranger", parameters=carried[0], inputs={"deal": text(str(app_world.deal.id))}),
    )
    [mail] = activities(addon)
    assert mail.opportunity_id == app_world.deal.id and mail.account_id == app_world.account.id
    foreign = google_addon.ok(
        "/gmail/action/choose", event("stranger", parameters={"chosen_deal_id": str(app_world.other_deal.id)})
    )
    assert "Chosen from a search" not in texts(foreign) and "updateCard" not in texts(foreign)


def test_log_when_sent_logs_the_sent_mail_when_next_opened(
    addon: Flask, google_addon: Addon, gmail_api: google.GmailApi, app_world: World
) -> None:
    compose = google_addon.ok("/gmail/compose", event(None, toRecipients=["ann@acme.test"]))
    assert parameters_of(compose, "log_when_sent") == [{}]
    inside = google_addon.ok("/gmail/action/log_when_sent", event(None, toRecipients=["tom@northwind.test"]))
    assert "Not marked" in texts(inside)
    marked = google_addon.ok("/gmail/action/log_when_sent", event(None, toRecipients=["Ann Buyer <ann@acme.test>"]))
    assert "Will be logged when sent" in texts(marked)

    def sent(message_id: str, to: str) -> None:
        gmail_api.messages[message_id] = gmail_resource(
            message_id,
            {
                "From": "Rita Rep <rita@northwind.test>",
                "To": to,
                "Subject": "The rates",
                "Message-ID": f"<{message_id}@northwind.test>",
                "Date": datetime.now(timezone.utc).strftime("%a, %d %b %Y %H:%M:%S +0000"),
            },
            {"mimeType": "text/plain", "body": {"data": b64url("Here they are.")}},
        )
        gmail_api.messages[message_id]["internalDate"] = str(int(datetime.now(timezone.utc).timestamp() * 1000))

    sent("other", "bob@globex.test")
    google_addon.ok("/gmail/message", event("other"))
    assert activities(addon) == []  # not the marked recipients
    sent("sent1", "ann@acme.test")
    opened = google_addon.ok("/gmail/message", event("sent1"))
    assert "Logged when you sent it." in texts(opened)
    [mail] = activities(addon)
    assert (mail.direction, mail.external_id) == ("outbound", "<sent1@northwind.test>")
    sent("sent2", "ann@acme.test")
    google_addon.ok("/gmail/message", event("sent2"))  # the mark was used once
    assert len(activities(addon)) == 1


def test_the_managers_team_card_is_the_team_panel(addon: Flask, google_addon: Addon, app_world: World) -> None:
    home = google_addon.ok("/gmail/homepage", event(None), email="mia@northwind.test")
    shown = texts(home)
    for heading in (
        "This week against last",
        "Pipeline and conversion",
        "Win rate this quarter",
        "Leaders this quarter",
    ):
        assert heading in shown
    # The funnel, recounted from the store: open deals per stage of the team's.
    with addon.extensions["inboxcrm.db"].sessions() as session:
        counted = session.execute(
            select(Opportunity.stage_id, func.count())
            .where(
                Opportunity.organization_id == app_world.org.id,
                Opportunity.status == "open",
                Opportunity.owner_id.in_([app_world.rep.id, app_world.teammate.id, app_world.manager.id]),
            )
            .group_by(Opportunity.stage_id)
        ).all()
    names = {s.id: s.name for s in app_world.stages}
    for stage_id, count in counted:
        assert f"{names[stage_id]}: {count}" in shown
    rep = google_addon.ok(
        "/gmail/action/rep", event(None, parameters={"rep_id": str(app_world.rep.id)}), email="mia@northwind.test"
    )
    assert "Open deals (1)" in texts(rep) and app_world.deal.name in texts(rep)


def test_an_erasure_forgets_the_drafts_marked_to_them(addon: Flask, google_addon: Addon, app_world: World) -> None:
    google_addon.ok("/gmail/action/log_when_sent", event(None, toRecipients=["ann@acme.test", "bob@globex.test"]))
    google_addon.ok("/gmail/action/log_when_sent", event(None, toRecipients=["bob@globex.test"]))
    with addon.extensions["inboxcrm.db"].sessions() as session:
        org = session.get(type(app_world.org), app_world.org.id)
        erase_person(session, org, "ann@acme.test", secret="s")
        session.commit()
        assert session.scalars(select(SendMark.recipients)).all() == ["bob@globex.test"]


def test_the_system_tokens_audience_is_the_endpoint_called_or_the_one_configured(
    addon: Flask, google_addon: Addon
) -> None:
    """Google makes the system ID token out to the URL it calls: a card action's token names the
    action's own URL. A deployment that puts one audience on every request (its base URL, say)
    is accepted only where ``INBOXCRM_GOOGLE_AUDIENCE`` names it; either way, a token for
    another of our endpoints is refused."""
    action = "/gmail/action/log_email"
    assert google_addon.post(action, event(), system=google_addon.keys.system_token(action)).status_code == 200
    deployment = google_addon.keys.sign(
        {
            "iss": "https://accounts.google.com",
            "aud": BASE_URL,
            "sub": "1044",
            "email": SERVICE_ACCOUNT,
            "email_verified": True,
            "iat": int(time.time()),
            "exp": int(time.time()) + 600,
        }
    )
    assert google_addon.post(action, event(), system=deployment).status_code == 401
    addon.config["GOOGLE_AUDIENCE"] = BASE_URL
    assert google_addon.post(action, event(), system=deployment).status_code == 200
    other = google_addon.keys.system_token("/gmail/action/note")
    assert google_addon.post(action, event(), system=other).status_code == 401


def test_a_mail_is_filed_on_the_account_chosen_and_never_on_another_organizations(
    addon: Flask, google_addon: Addon, gmail_api: google.GmailApi, app_world: World
) -> None:
    gmail_api.messages["stranger"] = gmail_resource(
        "stranger",
        {"From": "Sam <sam@brokers.test>", "To": "rita@northwind.test", "Subject": "Lanes", "Message-ID": "<l@b.test>"},
        {"mimeType": "text/plain", "body": {"data": b64url("Which lanes?")}},
    )
    foreign = google_addon.ok(
        "/gmail/action/log_email", event("stranger", parameters={"chosen_account_id": str(app_world.other_account.id)})
    )
    assert "That account was not found." in texts(foreign) and activities(addon) == []  # refused, nothing written
    chosen = google_addon.ok(
        "/gmail/action/choose", event("stranger", parameters={"chosen_account_id": str(app_world.account.id)})
    )
    [carried] = parameters_of(chosen, "log_email")
    google_addon.ok("/gmail/action/log_email", event("stranger", parameters=carried))
    [mail] = activities(addon)
    # The account's only open deal comes with it, as for a sender of that account.
    assert (mail.account_id, mail.opportunity_id) == (app_world.account.id, app_world.deal.id)
