"""The OpenID Connect fallback: sign in with Microsoft or Google in an Office dialog (or a
plain browser window) when single sign-on is not available. Authlib's Flask client runs the
authorization-code flow with state and nonce and checks the id token's signature, audience,
nonce and expiry; the issuer rule is ours for Microsoft's multi-tenant endpoint."""

from __future__ import annotations

from typing import Any

from authlib.integrations.flask_client import OAuth
from flask import Flask, current_app

PROVIDERS = {
    "microsoft": "https://login.microsoftonline.com/organizations/v2.0/.well-known/openid-configuration",
    "google": "https://accounts.google.com/.well-known/openid-configuration",
}
LABELS = {"microsoft": "Microsoft", "google": "Google"}


def init_app(app: Flask) -> None:
    oauth = OAuth(app)
    for name, metadata in PROVIDERS.items():
        prefix = f"OIDC_{name.upper()}"
        if app.config.get(f"{prefix}_CLIENT_ID"):
            oauth.register(
                name,
                client_id=app.config[f"{prefix}_CLIENT_ID"],
                client_secret=app.config.get(f"{prefix}_CLIENT_SECRET"),
                server_metadata_url=app.config.get(f"{prefix}_METADATA_URL") or metadata,
                client_kwargs={"scope": "openid email profile", "timeout": 10},
            )
    app.extensions["inboxcrm.oauth"] = oauth


def client(provider: str) -> Any | None:
    if provider not in PROVIDERS:
        return None
    return current_app.extensions["inboxcrm.oauth"].create_client(provider)


def enabled() -> list[tuple[str, str]]:
    return [(name, LABELS[name]) for name in PROVIDERS if client(name) is not None]


def claims_options(provider: str) -> dict[str, Any] | None:
    """Microsoft's multi-tenant metadata names its issuer as a template; accept the concrete
    issuer of an allowed tenant only. Google's issuer is checked against its metadata."""
    if provider != "microsoft":
        return None
    tenants = current_app.config["MS_TENANTS"]

    def allowed(claims: Any, issuer: str) -> bool:
        tenant = str(claims.get("tid", ""))
        return ("*" in tenants or tenant in tenants) and issuer == f"https://login.microsoftonline.com/{tenant}/v2.0"

    return {"iss": {"essential": True, "validate": allowed}}
