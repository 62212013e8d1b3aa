"""Sign-in from the mail client and the defences around it.

Microsoft's identity platform is played by a small local HTTP server that publishes a JWKS
the way ``login.microsoftonline.com/{tenant}/discovery/v2.0/keys`` does; tokens are signed in
the test with real RSA keys and checked for real.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator

import pytest
from joserfc.jwk import OctKey, RSAKey
from sqlalchemy import select

from addin.security import limiter
from tests.servers import KeyServer
from services.models import Activity, AuditEvent, User, UserIdentity
from tests.factories import World
from tests.helpers import CLIENT_ID, OTHER_TENANT, SCOPE, TENANT, JwksServer, claims, sign


@pytest.fixture(scope="module")
def jwks() -> Iterator[JwksServer]:
    server = JwksServer()
    yield server
    server.close()


@pytest.fixture
def sso_app(app, jwks):
    app.config.update(
        MS_JWKS_URL=jwks.url,
        MS_TENANTS={TENANT: "northwind.test"},
        MS_AUDIENCES=[CLIENT_ID, f"api://crm.test/{CLIENT_ID}"],
        MS_SCOPE=SCOPE,
    )
    limiter.reset()
    return app


def unsigned(payload: dict) -> str:
    def part(value: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(payload)}."


def exchange(client, token: str):
    return client.post("/auth/office", json={"token": token})


def test_a_valid_office_token_becomes_a_pane_token(sso_app, client, jwks, app_world: World):
    response = exchange(client, sign(jwks.key, claims()))
    assert response.status_code == 200, response.json
    pane_token = response.json["token"]
    assert response.json["token_type"] == "Bearer" and response.json["expires_in"] == 3600
    # The pane token works on its own: no cookie, and no CSRF token needed for a write.
    client.delete_cookie("session")
    bearer = {"Authorization": f"Bearer {pane_token}", "HX-Request": "true"}
    context = client.get("/pane/context", query_string={"from_address": "ann@acme.test"}, headers=bearer)
    assert context.status_code == 200 and "Ann Buyer" in context.get_data(as_text=True)
    logged = client.post(
        "/activities/email",
        headers=bearer,
        data={
            "from_address": "ann@acme.test",
            "to": "rita@northwind.test",
            "internet_message_id": "<sso@acme.test>",
            "subject": "Hi",
        },
    )
    assert logged.status_code == 200 and "Email logged." in logged.get_data(as_text=True)
    with sso_app.extensions["inboxcrm.db"].sessions() as session:
        assert session.scalars(select(Activity.owner_id)).one() == app_world.rep.id
        identity = session.scalars(select(UserIdentity)).one()
        assert (identity.user_id, identity.issuer, identity.subject) == (app_world.rep.id, TENANT, claims()["oid"])


def test_the_user_is_found_by_oid_once_linked(sso_app, client, jwks, app_world: World):
    assert exchange(client, sign(jwks.key, claims())).status_code == 200
    renamed = exchange(client, sign(jwks.key, claims(preferred_username="rita.renamed@northwind.test")))
    assert renamed.status_code == 200


@pytest.mark.parametrize(
    "make, why",
    [
        (lambda key, other: sign(other, claims()), "forged: signed by another key under our key id"),
        (lambda key, other: sign(key, claims(exp=int(time.time()) - 600, nbf=int(time.time()) - 4000)), "expired"),
        (lambda key, other: sign(key, claims(nbf=int(time.time()) + 900)), "not yet valid"),
        (lambda key, other: sign(key, claims(aud="api://someone-else")), "wrong audience"),
        (
            lambda key, other: sign(
                key, claims(tid=OTHER_TENANT, iss=f"https://login.microsoftonline.com/{OTHER_TENANT}/v2.0")
            ),
            "wrong tenant",
        ),
        (
            lambda key, other: sign(key, claims(iss=f"https://login.microsoftonline.com/{OTHER_TENANT}/v2.0")),
            "issuer of another tenant",
        ),
        (lambda key, other: sign(key, claims(scp="User.Read")), "missing scope"),
        (lambda key, other: sign(key, claims(scp=None)), "no scope at all"),
        (lambda key, other: sign(key, claims(oid=None)), "no oid"),
        (lambda key, other: unsigned(claims()), "alg none"),
        (
            lambda key, other: sign(
                OctKey.import_key(json.dumps(key.as_dict(private=False)).encode()), claims(), alg="HS256"
            ),
            "HS256 with the public key as secret",
        ),
        (lambda key, other: "not.a.token", "garbage"),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_bad_office_tokens_are_refused(sso_app, client, jwks, app_world: World, make, why):
    other = RSAKey.generate_key(2048, parameters={"kid": "key-1"})
    response = exchange(client, make(jwks.key, other))
    assert response.status_code == 401, why
    assert response.json == {"error": "That sign-in token is not valid here."}
    with sso_app.extensions["inboxcrm.db"].sessions() as session:
        assert session.scalars(select(UserIdentity)).all() == []


def test_an_unknown_microsoft_account_is_forbidden(sso_app, client, jwks, app_world: World):
    response = exchange(client, sign(jwks.key, claims(preferred_username="nobody@northwind.test", oid="x-1")))
    assert response.status_code == 403


def test_an_address_outside_the_organizations_domains_is_not_linked(sso_app, client, jwks, app_world: World):
    with sso_app.extensions["inboxcrm.db"].sessions() as session:
        session.get(User, app_world.rep.id).email = "rita@personal-domain.test"
        session.commit()
    response = exchange(client, sign(jwks.key, claims(preferred_username="rita@personal-domain.test")))
    assert response.status_code == 403


@pytest.mark.parametrize("body", [None, {}, {"token": 12}, {"token": "x" * 20000}])
def test_malformed_exchange_requests_get_a_json_400(sso_app, client, body, app_world: World):
    response = (
        client.post("/auth/office", json=body) if body is not None else client.post("/auth/office", data="nonsense")
    )
    assert response.status_code == 400 and "error" in response.json


def test_sso_is_off_until_tenants_are_configured(app, client, app_world: World):
    response = client.post("/auth/office", json={"token": "x.y.z"})
    assert response.status_code == 404 and "password" in response.json["error"]


def test_password_token_refresh_and_revoke(app, client, app_world: World):
    limiter.reset()
    assert client.post("/auth/token", json={"email": "rita@northwind.test", "password": "nope"}).status_code == 401
    token = client.post(
        "/auth/token", json={"email": "rita@northwind.test", "password": "correct horse battery staple"}
    ).json["token"]
    bearer = {"Authorization": f"Bearer {token}"}
    refreshed = client.post("/auth/token/refresh", headers=bearer)
    assert refreshed.status_code == 200 and refreshed.json["token"]
    assert client.post("/auth/token/revoke", headers=bearer).status_code == 204
    # Every token issued before the revocation is dead.
    for old in (token, refreshed.json["token"]):
        response = client.get("/pane/context", headers={"Authorization": f"Bearer {old}", "HX-Request": "true"})
        assert response.status_code == 401


@pytest.mark.parametrize("token", ["", "garbage", "eyJ1IjoxfQ.forged.signature"])
def test_bad_pane_tokens_are_refused_and_do_not_skip_csrf(app, client, app_world: World, token):
    headers = {"Authorization": f"Bearer {token}", "HX-Request": "true"}
    assert client.get("/pane/context", headers=headers).status_code == 401
    response = client.post(
        "/activities/email", headers=headers, data={"from_address": "ann@acme.test", "internet_message_id": "<x@y.z>"}
    )
    # A write with a dead token is a 401 the pane signs in again after, not a CSRF refusal.
    assert response.status_code == 401 and response.json["error"].startswith("Your sign-in has ended")
    with app.extensions["inboxcrm.db"].sessions() as session:
        assert session.scalars(select(Activity)).all() == []


def test_sign_in_is_rate_limited(app, client, app_world: World):
    limiter.reset()
    answers = [
        client.post("/auth/token", json={"email": "rita@northwind.test", "password": "guess"}).status_code
        for _ in range(12)
    ]
    assert answers[:10] == [401] * 10 and answers[10:] == [429, 429]
    limiter.reset()


def test_security_headers(client, app_world: World):
    response = client.get("/login")
    policy = response.headers["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";") if part.strip())
    assert "'unsafe-inline'" not in directives["script-src"] and "'unsafe-eval'" not in directives["script-src"]
    assert directives["script-src"].split() == ["'self'", "https://appsforoffice.microsoft.com"]
    # Outlook on the web's hosts frame the pane; no wildcard, and no host that serves anyone's content.
    assert directives["frame-ancestors"].split() == [
        "'self'",
        "https://outlook.office.com",
        "https://outlook.office365.com",
        "https://outlook.live.com",
        "https://outlook.cloud.microsoft",
    ]
    assert directives["object-src"] == "'none'"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "X-Frame-Options" not in response.headers  # frame-ancestors decides, so Outlook may frame the pane
    assert "Strict-Transport-Security" not in response.headers  # only in production, over HTTPS


def test_hsts_in_production(tmp_path, monkeypatch):
    from addin import create_app

    monkeypatch.setenv("INBOXCRM_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "s")
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'p.db'}")
    response = create_app().test_client().get("/healthz", base_url="https://crm.test")
    assert "max-age=" in response.headers["Strict-Transport-Security"]


# -- hard edges: tenants, odd tokens, a key URL that answers nonsense --------------------------------


def audit_actions(app, organization_id: int) -> list[str]:
    with app.extensions["inboxcrm.db"].sessions() as session:
        return list(session.scalars(select(AuditEvent.action).where(AuditEvent.organization_id == organization_id)))


def test_a_tenant_signs_in_to_its_own_organization_only(sso_app, client, jwks, app_world: World):
    """Tenant A is mapped to Northwind. Its token naming a user on Contoso's domain is refused,
    nothing is linked, and Contoso's audit trail says someone tried."""
    response = exchange(
        client, sign(jwks.key, claims(preferred_username="oscar@contoso.test", oid="a-user-of-tenant-a"))
    )
    assert response.status_code == 403
    with sso_app.extensions["inboxcrm.db"].sessions() as session:
        assert session.scalars(select(UserIdentity)).all() == []
    assert audit_actions(sso_app, app_world.other_org.id) == ["sign_in_refused"]


def test_a_link_made_for_another_organization_does_not_sign_in(sso_app, client, jwks, app_world: World):
    """Users are linked by (tid, oid); a link that points into an organization the tenant is not
    mapped to (made before the mapping, or by hand) is refused, and the refusal audited."""
    with sso_app.extensions["inboxcrm.db"].sessions() as session:
        session.add(
            UserIdentity(user_id=app_world.other_user.id, provider="microsoft", issuer=TENANT, subject=claims()["oid"])
        )
        session.commit()
    assert exchange(client, sign(jwks.key, claims())).status_code == 403
    assert audit_actions(sso_app, app_world.other_org.id) == ["sign_in_refused"]


@pytest.mark.parametrize("header", ["[1, 2]", '"RS256"', "7", "null"])
def test_a_token_whose_header_is_not_an_object_is_refused(sso_app, client, app_world: World, header):
    segment = base64.urlsafe_b64encode(header.encode()).rstrip(b"=").decode()
    response = exchange(client, f"{segment}.e30.c2ln")
    assert response.status_code == 401 and response.json == {"error": "That sign-in token is not valid here."}


@pytest.mark.parametrize(
    "body, content_type",
    [
        (b"<html><body>Sign in to the proxy</body></html>", "text/html"),
        (b"[1, 2, 3]", "application/json"),
        (b'{"keys": "none"}', "application/json"),
        (b'{"keys": [{"kty": "RSA"}]}', "application/json"),
        (b"", "application/json"),
    ],
    ids=["html", "a list", "keys not a list", "a key without its numbers", "empty"],
)
def test_a_key_url_answering_nonsense_is_a_503(app, client, jwks, app_world: World, body, content_type):
    odd = KeyServer(body, content_type)  # answers, but not with a key set
    try:
        app.config.update(
            MS_JWKS_URL=odd.url, MS_TENANTS={TENANT: "northwind.test"}, MS_AUDIENCES=[CLIENT_ID], MS_SCOPE=SCOPE
        )
        limiter.reset()
        response = exchange(client, sign(jwks.key, claims()))
        assert response.status_code == 503 and "try again" in response.json["error"]
    finally:
        odd.close()


def test_tenant_mapping_setting_is_parsed_and_checked():
    from addin.settings import tenant_organizations

    assert tenant_organizations(f" {TENANT.upper()}=Northwind.test, {OTHER_TENANT}=contoso.test ") == {
        TENANT: "northwind.test",
        OTHER_TENANT: "contoso.test",
    }
    for bad in ("*", TENANT, f"{TENANT}=", "=northwind.test"):
        with pytest.raises(RuntimeError, match="TENANT_ID=DOMAIN"):
            tenant_organizations(bad)
