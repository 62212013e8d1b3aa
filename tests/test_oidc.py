"""The OpenID Connect fallback (sign in with Google or Microsoft in a dialog), against a small
local provider that answers as an OpenID provider's documentation shows: discovery document,
authorization endpoint (redirect with code and state), token endpoint (an id token signed with
the provider's key, carrying the nonce it was given), and a JWKS."""

from __future__ import annotations

import html
import json
import re
import secrets
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from joserfc import jwt
from joserfc.jwk import RSAKey

from addin import create_app
from addin.security import limiter
from services.models import Base
from tests.factories import build_world

CLIENT_ID = "inbox-crm-test"


class Provider:
    def __init__(self) -> None:
        self.key = RSAKey.generate_key(2048, parameters={"kid": "google-1", "use": "sig"})
        self.codes: dict[str, dict] = {}
        self.claims: dict = {}  # what the next id token says, over the defaults
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.issuer = f"http://127.0.0.1:{self.httpd.server_port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def _handler(self):
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def _json(self, value: dict, status: int = 200) -> None:
                body = json.dumps(value).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:  # noqa: N802
                url = urlsplit(self.path)
                if url.path == "/.well-known/openid-configuration":
                    self._json(
                        {
                            "issuer": provider.issuer,
                            "authorization_endpoint": f"{provider.issuer}/authorize",
                            "token_endpoint": f"{provider.issuer}/token",
                            "jwks_uri": f"{provider.issuer}/jwks",
                            "response_types_supported": ["code"],
                            "subject_types_supported": ["public"],
                            "id_token_signing_alg_values_supported": ["RS256"],
                            "scopes_supported": ["openid", "email", "profile"],
                        }
                    )
                elif url.path == "/jwks":
                    self._json({"keys": [provider.key.as_dict(private=False)]})
                elif url.path == "/authorize":
                    query = {k: v[0] for k, v in parse_qs(url.query).items()}
                    code = secrets.token_urlsafe(8)
                    provider.codes[code] = query
                    self.send_response(302)
                    self.send_header(
                        "Location", f"{query['redirect_uri']}?{urlencode({'code': code, 'state': query['state']})}"
                    )
                    self.end_headers()
                else:
                    self._json({"error": "not_found"}, 404)

            def do_POST(self) -> None:  # noqa: N802
                form = {
                    k: v[0] for k, v in parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode()).items()
                }
                request = provider.codes.pop(form.get("code", ""), None)
                if request is None or form.get("grant_type") != "authorization_code":
                    self._json({"error": "invalid_grant"}, 400)
                    return
                now = int(time.time())
                claims = {
                    "iss": provider.issuer,
                    "aud": request["client_id"],
                    "sub": "110169484474386276334",
                    "email": "rita@northwind.test",
                    "email_verified": True,
                    "nonce": request.get("nonce"),
                    "iat": now,
                    "exp": now + 3600,
                    **provider.claims,
                }
                claims.setdefault(
                    "hd", str(claims.get("email", "")).rpartition("@")[2]
                )  # a Workspace account's token names its domain
                id_token = jwt.encode(
                    {"alg": "RS256", "kid": "google-1"},
                    {k: v for k, v in claims.items() if v is not None},
                    provider.key,
                )
                self._json(
                    {
                        "access_token": "ya29.test",
                        "token_type": "Bearer",
                        "expires_in": 3599,
                        "scope": "openid email profile",
                        "id_token": id_token,
                    }
                )

            def log_message(self, *args) -> None:
                pass

        return Handler


@pytest.fixture(scope="module")
def provider() -> Iterator[Provider]:
    server = Provider()
    yield server
    server.httpd.shutdown()


@pytest.fixture
def oidc_app(tmp_path, monkeypatch, provider: Provider):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "test",
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'oidc.db'}",
            "OIDC_GOOGLE_CLIENT_ID": CLIENT_ID,
            "OIDC_GOOGLE_CLIENT_SECRET": "secret",
            "OIDC_GOOGLE_METADATA_URL": f"{provider.issuer}/.well-known/openid-configuration",
        }
    )
    Base.metadata.create_all(app.extensions["inboxcrm.db"].engine)
    with app.extensions["inboxcrm.db"].sessions() as session:
        build_world(session)
    limiter.reset()
    provider.claims = {}
    return app


def sign_in(client, dialog: bool = False, tamper_state: bool = False):
    start = client.get("/auth/oidc/google" + ("?dialog=1" if dialog else ""))
    assert start.status_code == 302 and start.headers["Location"].startswith("http://127.0.0.1")
    at_provider = requests.get(start.headers["Location"], allow_redirects=False, timeout=5)
    back = urlsplit(at_provider.headers["Location"])
    query = back.query if not tamper_state else re.sub(r"state=[^&]+", "state=forged", back.query)
    return client.get(f"{back.path}?{query}")


def test_google_sign_in_in_a_browser_window(oidc_app, provider):
    client = oidc_app.test_client()
    response = sign_in(client)
    assert response.status_code == 302 and response.headers["Location"] == "/preview"
    assert "Rita Rep" in client.get("/pane").get_data(as_text=True)


def test_google_sign_in_in_the_office_dialog_hands_back_a_pane_token(oidc_app, provider):
    client = oidc_app.test_client()
    response = sign_in(client, dialog=True)
    assert response.status_code == 200
    answer = json.loads(html.unescape(re.search(r'data-answer="([^"]+)"', response.get_data(as_text=True)).group(1)))
    assert answer["token_type"] == "Bearer"
    fresh = oidc_app.test_client()  # no cookie: the token alone signs the pane in
    context = fresh.get(
        "/pane/context",
        query_string={"from_address": "ann@acme.test"},
        headers={"Authorization": f"Bearer {answer['token']}", "HX-Request": "true"},
    )
    assert context.status_code == 200 and "Ann Buyer" in context.get_data(as_text=True)


@pytest.mark.parametrize(
    "claims, status",
    [
        ({"nonce": "replayed"}, 401),
        ({"aud": "someone-else"}, 401),
        ({"iss": "https://evil.test"}, 401),
        ({"exp": int(time.time()) - 3600, "iat": int(time.time()) - 7200}, 401),
        ({"email_verified": False}, 403),
        ({"email": "stranger@northwind.test"}, 403),
        ({"email": "oscar@contoso.test", "sub": "other"}, 200),
        ({"hd": None}, 403),
        ({"hd": "contoso.test"}, 403),
    ],
    ids=[
        "wrong nonce",
        "wrong audience",
        "wrong issuer",
        "expired",
        "unverified address",
        "unknown address",
        "another organization's user",
        "a personal Google account",
        "another organization's Workspace",
    ],
)
def test_bad_id_tokens_are_refused(oidc_app, provider, claims, status):
    provider.claims = claims
    client = oidc_app.test_client()
    response = sign_in(client)
    if status == 200:
        # Oscar is a real user of the other organization: he signs in as himself, and sees his own.
        assert response.status_code == 302
        assert "Oscar Other" in client.get("/pane").get_data(as_text=True)
    else:
        assert response.status_code == status
        assert client.get("/pane/context", headers={"HX-Request": "true"}).status_code == 401


def test_a_second_google_account_is_never_linked_by_its_address_alone(oidc_app, provider):
    """Rita signed in once with her Workspace account; another Google account that verified her
    address (a personal one, or any other) is refused and audited: a second way in is an admin's."""
    from sqlalchemy import select

    from services.models import AuditEvent, UserIdentity

    assert sign_in(oidc_app.test_client()).status_code == 302
    provider.claims = {"sub": "999999999999999999999"}
    client = oidc_app.test_client()
    assert sign_in(client).status_code == 403
    with oidc_app.extensions["inboxcrm.db"].sessions() as session:
        assert [i.subject for i in session.scalars(select(UserIdentity).where(UserIdentity.provider == "google"))] == [
            "110169484474386276334"
        ]
        refused = session.scalars(select(AuditEvent).where(AuditEvent.action == "sign_in_refused")).one()
        assert "second identity" in refused.after["reason"]


def test_a_forged_state_is_refused(oidc_app, provider):
    client = oidc_app.test_client()
    response = sign_in(client, tamper_state=True)
    assert response.status_code == 401


def test_unconfigured_providers_are_404(oidc_app):
    assert oidc_app.test_client().get("/auth/oidc/microsoft").status_code == 404
    assert oidc_app.test_client().get("/auth/oidc/myspace").status_code == 404


# -- a real team starts: invitations and the first admin by single sign-on ----------------------------


def test_signing_in_with_an_invited_address_is_enough(oidc_app, provider):
    from sqlalchemy import select

    from services.models import Team, User
    from services.setup import people

    with oidc_app.extensions["inboxcrm.db"].sessions() as session:
        admin = session.scalar(select(User).where(User.role == "admin", User.email == "ada@northwind.test"))
        west = session.scalar(select(Team).where(Team.name == "West"))
        people.invite(session, admin, {"email": "nina@northwind.test", "role": "manager", "team_id": west.id})
        people.invite(session, admin, {"email": "stranger@elsewhere.test"})
        session.commit()
    provider.claims = {"sub": "200", "email": "nina@northwind.test", "name": "Nina Nilsen"}
    client = oidc_app.test_client()
    assert sign_in(client).status_code == 302
    with oidc_app.extensions["inboxcrm.db"].sessions() as session:
        nina = session.scalar(select(User).where(User.email == "nina@northwind.test"))
        assert (nina.role, nina.team.name, [i.subject for i in nina.identities]) == ("manager", "West", ["200"])
    # Invited at a domain that is not the organization's own: Google's word on it opens nothing.
    provider.claims = {"sub": "201", "email": "stranger@elsewhere.test"}
    assert sign_in(oidc_app.test_client()).status_code == 403
    # Nobody invited: nobody made.
    provider.claims = {"sub": "202", "email": "uninvited@northwind.test"}
    assert sign_in(oidc_app.test_client()).status_code == 403


def test_the_first_admin_signs_in_with_google_and_maps_the_workspace(tmp_path, monkeypatch, provider):
    from sqlalchemy import select

    from addin.routes.setup import setup_code
    from services.models import Organization, User
    from services.setup import people

    monkeypatch.delenv("DATABASE_URL", raising=False)
    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "test",
            "WTF_CSRF_ENABLED": False,
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'fresh.db'}",
            "OIDC_GOOGLE_CLIENT_ID": CLIENT_ID,
            "OIDC_GOOGLE_CLIENT_SECRET": "secret",
            "OIDC_GOOGLE_METADATA_URL": f"{provider.issuer}/.well-known/openid-configuration",
        }
    )
    Base.metadata.create_all(app.extensions["inboxcrm.db"].engine)
    limiter.reset()
    with app.app_context():
        code = setup_code()
    client = app.test_client()
    form = {
        "code": code,
        "name": "Fjord",
        "domains": "fjord.example",
        "time_zone": "Europe/Oslo",
        "currency": "NOK",
        "locale": "nb_NO",
        "fiscal_year_start_month": "1",
    }
    assert client.post("/setup", data=form | {"way": "google", "domains": "gmail.com"}).status_code == 422
    start = client.post("/setup", data=form | {"way": "google"})
    assert start.status_code == 302 and start.headers["Location"].endswith("/auth/oidc/google")
    provider.claims = {"sub": "300", "email": "ingrid@fjord.example", "name": "Ingrid Admin"}
    at_provider = requests.get(client.get("/auth/oidc/google").headers["Location"], allow_redirects=False, timeout=5)
    back = urlsplit(at_provider.headers["Location"])
    done = client.get(f"{back.path}?{back.query}")
    assert done.status_code == 302 and done.headers["Location"].endswith("/admin/people")
    with app.extensions["inboxcrm.db"].sessions() as session:
        org = session.scalar(select(Organization))
        ingrid = session.scalar(select(User).where(User.email == "ingrid@fjord.example"))
        assert (org.google_workspace, ingrid.role, ingrid.password_hash) == ("fjord.example", "admin", None)
        people.invite(session, ingrid, {"email": "ola@fjord.example"})
        session.commit()
    # The Workspace now signs in to it: an invited colleague only signs in.
    provider.claims = {"sub": "301", "email": "ola@fjord.example"}
    assert sign_in(app.test_client()).status_code == 302
    assert app.test_client().get("/setup").status_code == 404
