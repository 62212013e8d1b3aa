"""The OpenID Connect fallback: sign in with Microsoft or Google in an Office dialog (or a
plain browser window) when single sign-on is not available. Authlib's Flask client runs the
authorization-code flow with state and nonce and checks the id token's signature, audience,
nonce and expiry; the issuer rule is ours for Microsoft's multi-tenant endpoint."""

from __future__ import annotations

from typing import Any

from authlib.integrations.flask_client import OAuth
from flask import Flask, current_app

from addin.database import db
from services.identity import directories

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


def microsoft_tenants() -> dict[str, str]:
    """The Microsoft tenants whose sign-in opens an organization: the settings' and the store's."""
    return directories(db(), current_app.config["MS_TENANTS"], "microsoft")


def google_workspaces() -> dict[str, str]:
    """The Google Workspaces whose sign-in opens an organization: the settings' and the store's."""
    return directories(db(), current_app.config["GOOGLE_WORKSPACES"], "google")


def claims_options(provider: str, *, any_tenant: bool = False) -> dict[str, Any] | None:
    """Microsoft's multi-tenant metadata names its issuer as a template; accept the concrete
    issuer of an allowed tenant only (``any_tenant``: the first admin's sign-in, which maps its
    tenant to the new organization). Google's issuer is checked against its metadata."""
    if provider != "microsoft":
        return None
    tenants = microsoft_tenants()

    def allowed(claims: Any, issuer: str) -> bool:
        tenant = str(claims.get("tid", ""))
        known = any_tenant or "*" in tenants or tenant in tenants
        return known and issuer == f"https://login.microsoftonline.com/{tenant}/v2.0"

    return {"iss": {"essential": True, "validate": allowed}}
