"""Property-based proof that input never breaks the app: Hypothesis drives every rule of the
URL map with generated path values, query parameters and form fields (ids in and far out of
range, Unicode digits, dates from year 1 to 9999, NUL characters, huge strings, fields missing
and repeated), as a rep, a manager and an admin, on SQLite and on PostgreSQL.

What must hold for every request: no 5xx; and a request that was refused (4xx) changed no
row of any table. Examples are derandomized and bounded, so the suite stays deterministic and
its time fixed.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from werkzeug.datastructures import MultiDict

from addin import create_app
from addin.security import limiter
from addin.tokens import issue_token
from services.integration import api_tokens
from services.integration.intake import add_source
from services.models import Base, User
from tests import google
from tests.conftest import _truncate
from tests.factories import World, build_world

EXAMPLES_PER_RULE = 15
ROLES = ("rep", "manager", "admin")

# Each route gets a plausible request (so that generated values reach the code past the first
# check) which Hypothesis then mutates: a few fields set to edge values, some dropped, some
# repeated, and a field the route does not read.
ITEM = {
    "item_type": "message",
    "from_address": "ann@acme.test",
    "from_name": "Ann Buyer",
    "subject": "Rates",
    "internet_message_id": "<fuzz@acme.test>",
    "to": "rita@northwind.test",
    "sent_at": "2026-11-20T10:00:00+00:00",
}
PERIOD = {"period": "custom", "start": "2026-01-01", "end": "2026-03-31", "team": "1", "rep": "1"}
BASE_FORMS: dict[str, dict[str, str]] = {
    "activities.log_activity": {
        **ITEM,
        "type": "call",
        "contact_id": "1",
        "occurred_at": "2026-11-20T10:00",
        "duration_minutes": "30",
        "outcome": "connected",
        "answer:Truck size": "40 ft",
        "is_private": "false",
    },
    "activities.log_email": {**ITEM, "opportunity_id": "1", "body_text": "Hello"},
    "activities.log_meeting": {
        **ITEM,
        "item_type": "appointment",
        "event_id": "e1",
        "start": "2026-11-20T10:00",
        "end": "2026-11-20T11:00",
        "attendees": "ann@acme.test",
    },
    "activities.add_note": {**ITEM, "body": "Asked for rates", "contact_id": "1", "account_id": "1"},
    "activities.rate": {**ITEM, "rating": "1"},
    "activities.undo": ITEM,
    "deals.move_stage": {**ITEM, "stage": "2", "loss_reason": "Price", "final_amount": "9000"},
    "followups.add": {
        **ITEM,
        "title": "Call back",
        "due_at": "2027-01-05T10:00",
        "contact_id": "1",
        "opportunity_id": "1",
    },
    "followups.done": ITEM,
    "contacts.create_from_sender": {
        **ITEM,
        "name": "Priya N",
        "email": "priya@granite.test",
        "company": "Granite",
        "deal_name": "Denver lane",
        "amount": "9000",
        "stage_id": "1",
    },
    "pane.context": ITEM,
    "reports.dashboard": PERIOD,
    "reports.export": PERIOD,
    "reports.notes": {"account": "Acme"},
    "auth.login": {"email": "rita@northwind.test", "password": "wrong", "next": "/pane"},
    "auth.login_as": {"user_id": "1", "next": "/pane"},
    "auth.password_token": {"email": "rita@northwind.test", "password": "wrong"},
    "auth.office_token": {"token": "x.y.z"},
    "auth.oidc_start": {"dialog": "1"},
    "auth.oidc_callback": {"code": "c", "state": "s"},
    "pane.shell": {"host": "preview"},
    "intake.take": {
        "name": "Pat Prospect",
        "email": "pat@prospect.test",
        "phone": "+1 212 555 0100",
        "message": "Rates?",
    },
    "api.list_contacts": {"cursor": "djE6MTow", "limit": "10"},
    "api.list_events": {"cursor": "djE6MTow", "limit": "10"},
    "api.create_contacts": {"name": "Priya N", "email": "priya@granite.test", "phone": "+1 212 555 0100"},
    "api.change_activities": {"subject": "Rates", "outcome": "held", "duration_minutes": "30", "version": "1"},
    "api.create_opportunities": {
        "name": "Denver lane",
        "account_id": "1",
        "stage_id": "1",
        "amount": "9000",
        "contact_id": "1",
    },
    "api.calls": {
        "external_id": "c1",
        "direction": "inbound",
        "started_at": "2026-11-20T10:00:00+00:00",
        "duration_seconds": "60",
        "outcome": "connected",
        "phone": "+1 212 555 0100",
    },
}
# The Gmail add-on's event objects carry these as parameters and form inputs (``addin/routes/gmail.py``).
GMAIL_EVENT = {
    "activity_id": "1",
    "rating": "1",
    "address": "priya@granite.test",
    "name:priya@granite.test": "Priya N",
    "company:priya@granite.test": "Granite",
    "deal_name:priya@granite.test": "Denver lane",
    "stage_id:priya@granite.test": "1",
    "deal_id": "1",
    "account_id": "1",
    "contact_id": "1",
    "rep_id": "1",
    "stage": "2",
    "loss_reason": "Price",
    "final_amount": "9000",
    "note": "Asked for rates",
    "private_note": "1",
    "follow_up": "Call back",
    "due": "2027-01-05T10:00",
    "private_email": "1",
}
for _endpoint in (
    "gmail.action",
    "gmail.preview",
    "gmail.trigger_homepage",
    "gmail.trigger_message",
    "gmail.trigger_compose",
):
    BASE_FORMS[_endpoint] = GMAIL_EVENT
GMAIL_ACTIONS = [
    "log_email",
    "undo",
    "rate",
    "new_contact",
    "note",
    "follow_up",
    "deal",
    "stage",
    "rep",
    "account",
    "homepage",
    "message",
]
# A hole's value in the sweep, where "1" would name nothing there.
DEFAULT_SEGMENT = {"intake.take": "the-source-key", "gmail.action": "note", "gmail.preview": "stage"}

# Cursors the API never gave: numbers past BIGINT, negative, not ASCII digits (base64 of "v1:…:…").
CURSOR_EDGES = [
    base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")
    for text in ("v1:99999999999999999999:1", "v1:1:9223372036854775808", "v1:-5:-5", "v1:\u0663:1", "v2:1:1")
] + [
    "99999999999999999999.1",
    "1.9223372036854775808",
    "-5.-5",
    "1.2.3",
]  # and as they are written now, "<sequence>.<id>"
INTAKE_KEY = DEFAULT_SEGMENT["intake.take"]  # a path value the prober swaps for the live intake source's key
GMAIL_MESSAGE = "18c2f0a1fuzz"
EDGE_VALUES = [
    *CURSOR_EDGES,
    "",
    " ",
    "0",
    "-1",
    "²",
    "٣",
    "1e3",
    "2147483648",
    "9223372036854775808",
    "99999999999999999999999",
    "9999-12-31",
    "0001-01-01",
    "9999-12-31T23:59",
    "9999-12-31T23:59:00+00:00",
    "0001-01-01T00:00",
    "a\x00b",
    "x" * 20_000,
    "é" * 300,
    "[1]",
    "{}",
    "null",
    "nan",
    "1" * 400,
]

values = st.one_of(
    st.sampled_from(EDGE_VALUES),
    st.sampled_from(EDGE_VALUES),  # twice: edges are what break things
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.dates().map(str),
    st.datetimes().map(lambda d: d.isoformat()),
    st.text(max_size=40),
)
segments = st.one_of(
    st.sampled_from(["2147483648", "9223372036854775808", "99999999999", "²", "٣", "0", INTAKE_KEY]),
    st.sampled_from(GMAIL_ACTIONS),
    st.integers(min_value=1, max_value=4).map(str),  # ids that exist in the small world
    st.sampled_from(
        ["activities", "deals", "contacts", "followups", "accounts", "microsoft", "google", "activity", "alerts"]
    ),
    st.text(min_size=1, max_size=20),
)


@st.composite
def requests_for(draw, endpoint: str) -> list[tuple[str, str]]:
    """A plausible request for ``endpoint``, mutated: the pairs of a form or a query string."""
    base = dict(BASE_FORMS.get(endpoint, {}))
    names = sorted(base) + ["unknown_field"]
    for name in draw(st.sets(st.sampled_from(sorted(base)), max_size=2)) if base else ():
        base.pop(name)  # missing fields
    base.update(draw(st.dictionaries(st.sampled_from(names), values, max_size=3)))  # edge values
    pairs = list(base.items())
    for name in draw(st.lists(st.sampled_from(names), max_size=2)):
        pairs.append((name, draw(values)))  # repeated fields
    return pairs


def rules(app: Flask) -> list[tuple[str, str]]:
    found = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            found.append((rule.rule, method, rule.endpoint))
    return sorted(found)


RULES = rules(create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://", "SECRET_KEY": "rules"}))


def gmail_event(pairs: list[tuple[str, str]], user_token: str | None = None) -> dict:
    """The fields as an add-on event: each one a parameter and a form input (Google sends both kinds)."""
    return {
        "commonEventObject": {
            "hostApp": "GMAIL",
            "platform": "WEB",
            "timeZone": {"id": "Europe/Berlin", "offset": 3600000},
            "parameters": dict(pairs),
            "formInputs": {k: {"stringInputs": {"value": [v]}} for k, v in pairs},
        },
        "authorizationEventObject": {"userOAuthToken": google.OAUTH_TOKEN, "userIdToken": user_token},
        "gmail": {"accessToken": google.ACCESS_TOKEN, "messageId": GMAIL_MESSAGE},
    }


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def fuzz_app(request: pytest.FixtureRequest, tmp_path_factory) -> Iterator[tuple[Flask, World]]:
    """One store per back end for the whole module: what must hold, holds in any state the
    earlier requests left it in."""
    keys, gmail = request.getfixturevalue("google_keys"), request.getfixturevalue("gmail_api")
    gmail.messages[GMAIL_MESSAGE] = google.gmail_resource(
        GMAIL_MESSAGE,
        {
            "From": "Ann Buyer <ann@acme.test>",
            "To": "rita@northwind.test",
            "Subject": "Rates",
            "Message-ID": "<fuzz-gmail@acme.test>",
            "Date": "Thu, 20 Nov 2025 14:00:00 +0100",
        },
        {"mimeType": "text/plain", "body": {"data": google.b64url("Rates, please.")}},
    )
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'fuzz.db'}"
    else:
        url = request.getfixturevalue("postgres_engine").url.render_as_string(hide_password=False)
    app = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": url,
            "SECRET_KEY": "fuzz",
            "DEMO_SIGN_IN": True,
            # The Gmail add-on on, against Google played on loopback (``tests/google.py``).
            "BASE_URL": google.BASE_URL,
            "GOOGLE_SERVICE_ACCOUNT": google.SERVICE_ACCOUNT,
            "GOOGLE_CLIENT_IDS": [google.CLIENT_ID],
            "GOOGLE_WORKSPACES": {"northwind.test": "northwind.test"},
            "GOOGLE_JWKS_URL": keys.jwks_url,
            "GMAIL_API_URL": gmail.url,
        }
    )
    engine = app.extensions["inboxcrm.db"].engine
    Base.metadata.create_all(engine)
    with app.extensions["inboxcrm.db"].sessions() as session:
        world = build_world(session)
        admin = session.get(User, world.admin.id)
        world.api_token = api_tokens.create_token(session, admin, "Fuzz", "read write")[1]  # type: ignore[attr-defined]
        world.intake_key = add_source(session, admin, "Fuzz form", "web_form").key  # type: ignore[attr-defined]
        session.commit()
    world.google_keys = keys  # type: ignore[attr-defined]
    yield app, world
    if request.param == "postgresql":
        _truncate(engine)
    engine.dispose()


def store_digest(app: Flask) -> str:
    """Every row of every table, hashed: equal digests mean nothing was written."""
    digest = hashlib.sha256()
    with app.extensions["inboxcrm.db"].engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            for row in connection.execute(select(table).order_by(*table.primary_key.columns)):
                digest.update(repr(tuple(row)).encode())
    return digest.hexdigest()


def path_for(rule: str, drawn: list[str]) -> str:
    parts = iter(drawn)
    return re.sub(r"<(?:[a-z]+:)?[a-z_]+>", lambda _m: quote(next(parts), safe=""), rule)


class Prober:
    """Sends one request as a role and checks what must hold: no 5xx, and a refusal wrote
    nothing (the store's digest before the request is the one after the previous request)."""

    def __init__(self, app: Flask, world: World) -> None:
        self.app, self.world = app, world
        self.client = app.test_client()
        self.digest = store_digest(app)
        self.users = {"rep": world.rep.id, "manager": world.manager.id, "admin": world.admin.id}
        self.emails = {"rep": world.rep.email, "manager": world.manager.email, "admin": world.admin.email}

    def bearer(self, role: str) -> str:
        """A fresh token each time: an earlier request may have signed the user out."""
        with self.app.test_request_context(), self.app.extensions["inboxcrm.db"].sessions() as session:
            token = issue_token(session.get(User, self.users[role]))["token"]
            session.rollback()
        return token

    def send(self, role: str, method: str, path: str, pairs: list[tuple[str, str]], htmx: bool, as_json: bool) -> int:
        limiter.reset()
        path = path.replace(INTAKE_KEY, self.world.intake_key)
        self.sent = getattr(self, "sent", 0) + 1
        if (
            path.startswith("/gmail/") and method == "POST"
        ):  # Google's request: both of its tokens, signed; the fields in the event object
            keys, email = self.world.google_keys, self.emails[role]
            body = gmail_event(pairs, keys.user_token(email))
            response = self.client.post(path, json=body, headers={"Authorization": f"Bearer {keys.system_token(path)}"})
            return self.check(role, method, path, pairs, response)
        if (
            path.startswith("/preview/gmail/") and method == "POST"
        ):  # the preview's: the signed-in user, the event object
            response = self.client.post(
                path, json=gmail_event(pairs), headers={"Authorization": f"Bearer {self.bearer(role)}"}
            )
            return self.check(role, method, path, pairs, response)
        if path.startswith("/api/"):  # the API's own credential, a fresh Idempotency-Key and a version
            headers = {
                "Authorization": f"Bearer {self.world.api_token}",
                "Idempotency-Key": f"fuzz-{self.sent}-{self.digest[:8]}",
                "If-Match": dict(pairs).get("version", "1"),
            }
        else:
            headers = {"Authorization": f"Bearer {self.bearer(role)}"}
        if htmx:
            headers["HX-Request"] = "true"
        if method == "GET":
            response = self.client.get(path, query_string=pairs, headers=headers)
        elif as_json:
            response = self.client.open(path, method=method, json=dict(pairs), headers=headers)
        else:
            response = self.client.open(path, method=method, data=MultiDict(pairs), headers=headers)
        return self.check(role, method, path, pairs, response)

    def check(self, role: str, method: str, path: str, pairs: list[tuple[str, str]], response) -> int:
        what = (role, method, path, [(k, v[:80]) for k, v in pairs], response.status_code)
        assert response.status_code < 500, (*what, response.get_data(as_text=True)[:300])
        after = store_digest(self.app)
        if 400 <= response.status_code < 500:
            assert after == self.digest, ("a refused request wrote", *what)
        self.digest = after
        return response.status_code


@pytest.mark.parametrize("rule, method, endpoint", RULES, ids=[f"{m} {r}" for r, m, _ in RULES])
def test_no_generated_request_breaks_a_route(fuzz_app, rule: str, method: str, endpoint: str):
    """Hypothesis: mutated requests, as any role, in form, query or JSON."""
    prober = Prober(*fuzz_app)
    holes = len(re.findall(r"<[^>]+>", rule))

    @settings(
        max_examples=EXAMPLES_PER_RULE,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(
        role=st.sampled_from(ROLES),
        path_values=st.lists(segments, min_size=holes, max_size=holes),
        pairs=requests_for(endpoint),
        htmx=st.booleans(),
        as_json=st.booleans(),
    )
    def one_request(role, path_values, pairs, htmx, as_json):
        prober.send(role, method, path_for(rule, path_values), pairs, htmx, as_json)

    one_request()


# The sweep: every field of every route's plausible request, alone at each edge of its kind.
# Random examples cannot promise to meet "this field at that edge"; the sweep does.
ANY_EDGES = ["", "a\x00b", "x" * 20_000, "²"]
NUMBER_EDGES = ["-1", "1e3", "2147483648", "9223372036854775808"]
DATE_EDGES = ["9999-12-31", "0001-01-01", "9999-12-31T23:59", "0001-01-01T00:00", "9999-12-31T23:59:00+00:00"]
DATE_FIELDS = {"occurred_at", "sent_at", "start", "end", "due_at", "due", "expected_close_date"}
SWEEP_SEGMENTS = ["0", "²", "2147483648", "9223372036854775808", "a\x00b"]


def sweep_values(name: str) -> list[str]:
    if name in DATE_FIELDS:
        return ANY_EDGES + DATE_EDGES
    if name == "cursor":
        return ANY_EDGES + CURSOR_EDGES
    if name.endswith("_id") or name in {
        "team",
        "rep",
        "rating",
        "stage",
        "amount",
        "final_amount",
        "duration_minutes",
        "duration_seconds",
        "limit",
        "version",
    }:
        return ANY_EDGES + NUMBER_EDGES
    return ANY_EDGES


@pytest.mark.parametrize("rule, method, endpoint", RULES, ids=[f"{m} {r}" for r, m, _ in RULES])
def test_every_field_at_every_edge(fuzz_app, rule: str, method: str, endpoint: str):
    prober = Prober(*fuzz_app)
    base = BASE_FORMS.get(endpoint, {})
    holes = len(re.findall(r"<[^>]+>", rule))
    sent = 0
    for hole in range(holes):
        for segment in SWEEP_SEGMENTS:
            path_values = [DEFAULT_SEGMENT.get(endpoint, "1")] * holes
            path_values[hole] = segment
            prober.send(
                ROLES[sent % 3],
                method,
                path_for(rule, path_values),
                list(base.items()),
                htmx=sent % 2 == 0,
                as_json=False,
            )
            sent += 1
    path = path_for(rule, [DEFAULT_SEGMENT.get(endpoint, "1")] * holes)
    for name in base:
        for value in sweep_values(name):
            prober.send(
                ROLES[sent % 3],
                method,
                path,
                list({**base, name: value}.items()),
                htmx=sent % 2 == 0,
                as_json=sent % 5 == 0,
            )
            sent += 1


JSON_RULES = [
    (rule, method, endpoint)
    for rule, method, endpoint in RULES
    if method in ("POST", "PATCH", "PUT") and (rule.startswith(("/api/", "/intake/", "/gmail/")))
]


@pytest.mark.parametrize("rule, method, endpoint", JSON_RULES, ids=[f"{m} {r}" for r, m, _ in JSON_RULES])
def test_json_nested_past_reason_is_a_4xx_everywhere(fuzz_app, rule: str, method: str, endpoint: str):
    """The API, the intake URLs and the Gmail add-on's action bodies: JSON ten thousand levels deep
    (Python's parser recurses: a RecursionError was a 500), or merely too deep, is refused."""
    prober = Prober(*fuzz_app)
    path = path_for(rule, [DEFAULT_SEGMENT.get(endpoint, "1")] * len(re.findall(r"<[^>]+>", rule)))
    for body in (b"[" * 10_000 + b"]" * 10_000, b'{"a":' * 40 + b"1" + b"}" * 40, b'{"name": ' * 5_000):
        limiter.reset()
        path = path.replace(INTAKE_KEY, prober.world.intake_key)
        headers = {
            "Authorization": f"Bearer {prober.world.api_token}",
            "Idempotency-Key": f"deep-{len(body)}",
            "If-Match": "1",
        }
        response = prober.client.open(path, method=method, data=body, content_type="application/json", headers=headers)
        assert 400 <= response.status_code < 500, (path, response.status_code, response.get_data(as_text=True)[:200])
        after = store_digest(prober.app)
        assert after == prober.digest, ("a refused request wrote", path)
