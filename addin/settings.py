"""Settings, read from the environment, with defaults that make the embedded default work
on a fresh machine: SQLite in ``instance/``, the demo sign-in picker on.

| variable                  | default                               | meaning                                   |
|---------------------------|---------------------------------------|-------------------------------------------|
| ``DATABASE_URL``          | ``sqlite:///<instance>/inboxcrm.db``  | SQLAlchemy URL; PostgreSQL in production  |
| ``SECRET_KEY``            | kept in ``instance/secret_key``        | signs sessions and CSRF tokens            |
| ``INBOXCRM_ENV``          | ``development``                       | ``production`` turns the demo picker off, |
|                           |                                       | requires SECRET_KEY, secure cookies       |
| ``INBOXCRM_DEMO_SIGN_IN`` | off (``make run`` turns it on)         | the preview's "sign in as" picker; never  |
|                           |                                       | in production                             |
| ``INBOXCRM_ADDIN_ID``     | a fixed UUID                          | the add-in's id in the Outlook manifests  |
| ``INBOXCRM_CLIENT_ID``    | all zeros                             | Entra ID app registration (SSO)           |
| ``INBOXCRM_MS_TENANTS``   | none (SSO off)                        | ``TENANT_ID=DOMAIN`` pairs, comma-        |
|                           |                                       | separated: each allowed tenant signs in   |
|                           |                                       | to the one organization owning DOMAIN     |
| ``INBOXCRM_MS_AUDIENCES`` | the client id                         | accepted ``aud`` values                   |
| ``INBOXCRM_MS_SCOPE``     | ``access_as_user``                    | the scope a token must carry              |
| ``INBOXCRM_MS_JWKS_URL``  | Microsoft's common keys               | where the signing keys are published      |
| ``INBOXCRM_SIGN_IN_RATE_LIMIT`` | ``10 per minute``               | per address, on every sign-in endpoint    |
| ``INBOXCRM_OIDC_{MICROSOFT,GOOGLE}_CLIENT_ID`` / ``_CLIENT_SECRET`` / ``_METADATA_URL``  |
|                           | unset (off)                           | the sign-in dialog's OpenID Connect apps  |
| ``INBOXCRM_PROXIES``      | 0                                     | proxies in front that set X-Forwarded-*;  |
|                           |                                       | only then are those headers believed      |
| ``INBOXCRM_SESSION_MAX_HOURS`` | 12                               | a sign-in's absolute lifetime: no session |
|                           |                                       | or refreshed token outlives it            |
| ``INBOXCRM_FRAME_ANCESTORS`` | Outlook on the web's hosts         | who may frame the pane (space-separated)  |
| ``INBOXCRM_BASE_URL``     | the request's own URL                 | the public https base: the Gmail add-on's |
|                           |                                       | endpoint URLs (token audiences), links    |
| ``INBOXCRM_GOOGLE_SERVICE_ACCOUNT`` | unset (Gmail add-on off)    | the deployment's system service account   |
|                           |                                       | (``projects.getAuthorization``)           |
| ``INBOXCRM_GOOGLE_CLIENT_IDS`` | unset                            | the deployment's OAuth client id(s): the  |
|                           |                                       | user ID token's audience                  |
| ``INBOXCRM_GOOGLE_WORKSPACES`` | unset                            | ``WORKSPACE_DOMAIN=DOMAIN`` pairs (or one |
|                           |                                       | domain for both): which organization each |
|                           |                                       | Google Workspace signs in to              |
| ``INBOXCRM_GOOGLE_AUDIENCE`` | unset                              | an extra accepted system-token audience   |
| ``INBOXCRM_GOOGLE_JWKS_URL`` | Google's published keys            | where Google's signing keys are published |
| ``INBOXCRM_GMAIL_API_URL`` | ``https://gmail.googleapis.com``     | the Gmail API's base URL                  |
| ``INBOXCRM_CAPTURE_{MICROSOFT,GOOGLE}_CLIENT_ID`` / ``_CLIENT_SECRET`` |
|                           | the sign-in apps'                     | the OAuth apps reps connect mailboxes to  |
| ``INBOXCRM_CAPTURE_KEYS`` | one derived from SECRET_KEY           | Fernet keys for mailbox tokens, newest    |
|                           |                                       | first (rotation: README)                  |
| ``INBOXCRM_CAPTURE_GOOGLE_KEY_FILE`` | unset                      | the service account key Workspace admins  |
|                           |                                       | delegate domain-wide authority to         |
| ``INBOXCRM_CAPTURE_PUSH_URL`` | unset (the worker polls)         | the public base URL the providers notify  |
| ``INBOXCRM_CAPTURE_PUBSUB_TOPIC`` / ``_ACCOUNT`` / ``_AUDIENCE`` |
|                           | unset                                 | Gmail's topic; the push subscription's    |
|                           |                                       | service account and token audience        |
| ``INBOXCRM_CAPTURE_STANDIN_URL`` | unset (``make run`` sets it)  | the local stand-in playing Microsoft and  |
|                           |                                       | Google for the preview; never production  |
| ``INBOXCRM_MS_LOGIN_URL``, ``INBOXCRM_GRAPH_URL``, ``INBOXCRM_GOOGLE_{AUTHORIZE,TOKEN,CALENDAR}_URL`` |
|                           | the providers' own                    | where the providers answer                |
| ``INBOXCRM_WEBHOOKS_ALLOW_HTTP`` | on for the embedded store only | webhook endpoints may be plain http://    |
| ``INBOXCRM_WEBHOOKS_ALLOW_HOSTS`` | none                          | internal hosts or networks webhooks may   |
|                           |                                       | reach (on premises); public ones only else|
"""

from __future__ import annotations

import os
import secrets
from typing import Any, Mapping, MutableMapping

from services.integration.outbound import Reach


def _flag(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


def load_settings(config: MutableMapping[str, Any], instance_path: str) -> None:
    env = os.environ
    production = env.get("INBOXCRM_ENV", "development") == "production"
    config["PRODUCTION"] = production
    config["SQLALCHEMY_DATABASE_URI"] = _database_url(env.get("DATABASE_URL"), instance_path)
    secret = env.get("SECRET_KEY")
    if production and not secret:
        raise RuntimeError("SECRET_KEY must be set when INBOXCRM_ENV=production")
    config["SECRET_KEY"] = secret or _instance_secret(instance_path)
    # Signing in as anyone with one click is for the embedded demo store only: opt-in, and
    # never in production whatever the variable says.
    config["DEMO_SIGN_IN"] = _flag(env.get("INBOXCRM_DEMO_SIGN_IN"), False) and not production
    config["SESSION_COOKIE_SECURE"] = production
    config["SESSION_COOKIE_HTTPONLY"] = True
    config["SESSION_COOKIE_SAMESITE"] = "None" if production else "Lax"
    config["REMEMBER_COOKIE_SECURE"] = production
    config["WTF_CSRF_TIME_LIMIT"] = None  # the pane stays open all day; the token lives with the session
    config["WTF_CSRF_HEADERS"] = ["X-CSRFToken"]
    config["MAX_CONTENT_LENGTH"] = 4 * 1024 * 1024
    # The add-in's stable id in both manifests, and the Entra ID app registration for SSO.
    config["ADDIN_ID"] = env.get("INBOXCRM_ADDIN_ID", "ff2c44c0-14c4-48f3-af45-503436255242")
    config["ADDIN_CLIENT_ID"] = env.get("INBOXCRM_CLIENT_ID", "00000000-0000-0000-0000-000000000000")
    # Office single sign-on: which Microsoft tokens the pane may exchange for a pane token.
    config["MS_JWKS_URL"] = env.get(
        "INBOXCRM_MS_JWKS_URL", "https://login.microsoftonline.com/common/discovery/v2.0/keys"
    )
    config["MS_TENANTS"] = tenant_organizations(env.get("INBOXCRM_MS_TENANTS", ""))
    config["MS_AUDIENCES"] = [
        a.strip() for a in env.get("INBOXCRM_MS_AUDIENCES", config["ADDIN_CLIENT_ID"]).split(",") if a.strip()
    ]
    config["MS_SCOPE"] = env.get("INBOXCRM_MS_SCOPE", "access_as_user")
    # The OpenID Connect fallback, per provider: on when a client id is set.
    for provider in ("MICROSOFT", "GOOGLE"):
        for key in ("CLIENT_ID", "CLIENT_SECRET", "METADATA_URL"):
            config[f"OIDC_{provider}_{key}"] = env.get(f"INBOXCRM_OIDC_{provider}_{key}", "")
    # How many proxies (load balancer, nginx) stand in front and set X-Forwarded-*. None unless
    # said: believed without a proxy, the header lets anyone pick the address rate limits count.
    config["PROXIES"] = _count(env.get("INBOXCRM_PROXIES"), "INBOXCRM_PROXIES", 0)
    config["SESSION_MAX_HOURS"] = _count(env.get("INBOXCRM_SESSION_MAX_HOURS"), "INBOXCRM_SESSION_MAX_HOURS", 12)
    config["FRAME_ANCESTORS"] = (env.get("INBOXCRM_FRAME_ANCESTORS") or " ".join(OUTLOOK_HOSTS)).split()
    config["BASE_URL"] = (env.get("INBOXCRM_BASE_URL") or "").rstrip("/")
    # The Gmail add-on (HTTP runtime): on when the deployment's service account is named.
    config["GOOGLE_SERVICE_ACCOUNT"] = env.get("INBOXCRM_GOOGLE_SERVICE_ACCOUNT", "").strip()
    config["GOOGLE_CLIENT_IDS"] = [c.strip() for c in env.get("INBOXCRM_GOOGLE_CLIENT_IDS", "").split(",") if c.strip()]
    config["GOOGLE_AUDIENCE"] = env.get("INBOXCRM_GOOGLE_AUDIENCE", "").strip() or None
    config["GOOGLE_WORKSPACES"] = tenant_organizations(
        env.get("INBOXCRM_GOOGLE_WORKSPACES", ""), "INBOXCRM_GOOGLE_WORKSPACES", bare_domain=True
    )
    config["GOOGLE_JWKS_URL"] = env.get("INBOXCRM_GOOGLE_JWKS_URL", "https://www.googleapis.com/oauth2/v3/certs")
    config["GMAIL_API_URL"] = env.get("INBOXCRM_GMAIL_API_URL", "https://gmail.googleapis.com")
    # Automatic capture (``services.capture``): the apps reps connect their mailboxes to (the
    # sign-in apps' by default), the keys their tokens are kept under, and where the providers are.
    for provider in ("MICROSOFT", "GOOGLE"):
        for key in ("CLIENT_ID", "CLIENT_SECRET"):
            config[f"CAPTURE_{provider}_{key}"] = (
                env.get(f"INBOXCRM_CAPTURE_{provider}_{key}") or config[f"OIDC_{provider}_{key}"]
            )
    config["CAPTURE_KEYS"] = [k.strip() for k in env.get("INBOXCRM_CAPTURE_KEYS", "").split(",") if k.strip()]
    config["CAPTURE_GOOGLE_KEY_FILE"] = env.get("INBOXCRM_CAPTURE_GOOGLE_KEY_FILE", "").strip()
    # Push: the public https base URL Graph and Pub/Sub post to (unset: the worker polls), the
    # Pub/Sub topic Gmail publishes to, and who Pub/Sub's push tokens name and are made out to.
    config["CAPTURE_PUSH_URL"] = env.get("INBOXCRM_CAPTURE_PUSH_URL", "").strip().rstrip("/")
    config["CAPTURE_PUBSUB_TOPIC"] = env.get("INBOXCRM_CAPTURE_PUBSUB_TOPIC", "").strip()
    config["CAPTURE_PUBSUB_ACCOUNT"] = env.get("INBOXCRM_CAPTURE_PUBSUB_ACCOUNT", "").strip()
    config["CAPTURE_PUBSUB_AUDIENCE"] = env.get("INBOXCRM_CAPTURE_PUBSUB_AUDIENCE", "").strip()
    config["CAPTURE_ENDPOINTS"] = {
        "microsoft_login": env.get("INBOXCRM_MS_LOGIN_URL", "https://login.microsoftonline.com"),
        "graph": env.get("INBOXCRM_GRAPH_URL", "https://graph.microsoft.com"),
        "google_authorize": env.get("INBOXCRM_GOOGLE_AUTHORIZE_URL", "https://accounts.google.com/o/oauth2/v2/auth"),
        "google_token": env.get("INBOXCRM_GOOGLE_TOKEN_URL", "https://oauth2.googleapis.com/token"),
        "gmail": config["GMAIL_API_URL"],
        "calendar": env.get("INBOXCRM_GOOGLE_CALENDAR_URL", "https://www.googleapis.com"),
    }
    # The preview's captured mailbox: every provider played by the local stand-in at this URL
    # (``services.capture.standin``, which ``make run`` starts). Never in production.
    config["CAPTURE_STANDIN_URL"] = (
        "" if production else env.get("INBOXCRM_CAPTURE_STANDIN_URL", "").strip().rstrip("/")
    )
    if config["CAPTURE_STANDIN_URL"]:
        use_standin(config, config["CAPTURE_STANDIN_URL"])
    # Flask-Limiter's counters: in memory for one process; redis://... for several workers.
    # With Redis configured (the job queue's), every worker counts against one limit there.
    config["RATELIMIT_STORAGE_URI"] = (
        env.get("RATELIMIT_STORAGE_URI") or env.get("INBOXCRM_REDIS_URL", "").strip() or "memory://"
    )
    # X-RateLimit-Limit, -Remaining, -Reset and Retry-After on limited routes.
    config["RATELIMIT_HEADERS_ENABLED"] = True
    # The API's limit per token (Flask-Limiter's notation); the README's API_RATE_LIMIT.
    config["API_RATE_LIMIT"] = env.get("API_RATE_LIMIT") or env.get("INBOXCRM_API_RATE_LIMIT") or "1200 per minute"
    config["SIGN_IN_RATE_LIMIT"] = env.get("INBOXCRM_SIGN_IN_RATE_LIMIT", "10 per minute")
    # Follow-up reminders by e-mail (``flask --app wsgi reminders send``): off until a host is set.
    config["SMTP_HOST"] = env.get("INBOXCRM_SMTP_HOST", "").strip()
    config["SMTP_PORT"] = _count(env.get("INBOXCRM_SMTP_PORT"), "INBOXCRM_SMTP_PORT", 587)
    config["SMTP_USER"] = env.get("INBOXCRM_SMTP_USER", "")
    config["SMTP_PASSWORD"] = env.get("INBOXCRM_SMTP_PASSWORD", "")
    config["SMTP_STARTTLS"] = _flag(env.get("INBOXCRM_SMTP_STARTTLS"), True)
    config["MAIL_FROM"] = env.get("INBOXCRM_MAIL_FROM", "Inbox CRM <crm@localhost>")
    # The job queue (``addin.jobs``, Huey): Redis in production, else a SQLite file in instance/.
    config["JOBS_REDIS_URL"] = env.get("INBOXCRM_REDIS_URL", "").strip()
    config["JOBS_SQLITE_PATH"] = env.get("INBOXCRM_JOBS_PATH", os.path.join(instance_path, "jobs.db"))
    # Webhook endpoints must be https://, unless this is said (a laptop, the tests).
    config["WEBHOOKS_ALLOW_HTTP"] = _flag(
        env.get("INBOXCRM_WEBHOOKS_ALLOW_HTTP"), not production and env.get("DATABASE_URL") is None
    )
    # Webhooks reach the public internet only; an on-premises deployment names the internal
    # hosts or networks it allows ("crm-hooks.corp, 10.20.0.0/16").
    config["WEBHOOKS_ALLOW_HOSTS"] = env.get("INBOXCRM_WEBHOOKS_ALLOW_HOSTS", "")


def use_standin(config: MutableMapping[str, Any], url: str) -> None:
    """Capture's providers all played by the stand-in at ``url`` (the preview's, and the tests')."""
    config["CAPTURE_STANDIN_URL"] = url
    config["CAPTURE_ENDPOINTS"] = {
        "microsoft_login": url,
        "graph": url,
        "google_authorize": f"{url}/o/oauth2/v2/auth/authorize",
        "google_token": f"{url}/token",
        "gmail": url,
        "calendar": url,
    }
    for provider in ("MICROSOFT", "GOOGLE"):
        config[f"CAPTURE_{provider}_CLIENT_ID"] = config[f"CAPTURE_{provider}_CLIENT_ID"] or "preview-app"
        config[f"CAPTURE_{provider}_CLIENT_SECRET"] = config[f"CAPTURE_{provider}_CLIENT_SECRET"] or "preview-secret"


def webhook_reach(config: Mapping[str, Any]) -> Reach:
    """Where webhooks may be sent, by this app's settings (``services.integration.outbound``)."""
    return Reach.from_setting(
        config.get("WEBHOOKS_ALLOW_HOSTS", ""), allow_http=bool(config.get("WEBHOOKS_ALLOW_HTTP"))
    )


# Where Outlook on the web and the new Outlook frame an add-in's task pane.
OUTLOOK_HOSTS = (
    "https://outlook.office.com",
    "https://outlook.office365.com",
    "https://outlook.live.com",
    "https://outlook.cloud.microsoft",
)


def _count(value: str | None, name: str, default: int) -> int:
    if value is None or value.strip() == "":
        return default
    if not value.strip().isascii() or not value.strip().isdigit():
        raise RuntimeError(f"{name} must be a whole number, not {value!r}")
    return int(value)


def tenant_organizations(value: str, name: str = "INBOXCRM_MS_TENANTS", *, bare_domain: bool = False) -> dict[str, str]:
    """``INBOXCRM_MS_TENANTS``: ``tenant-id=northwind.example, other-id=contoso.example``. Each
    allowed Microsoft tenant (or Google Workspace domain) maps to the one organization that
    owns the domain; its tokens sign in to that organization only. With ``bare_domain`` a
    lone domain maps to itself (a Workspace domain that is the organization's own)."""
    tenants: dict[str, str] = {}
    for pair in value.split(","):
        if not pair.strip():
            continue
        tenant, sep, domain = (part.strip().lower() for part in pair.partition("="))
        if bare_domain and not sep:
            domain = tenant
        elif not sep or not tenant or not domain:
            raise RuntimeError(f"{name}: write each as TENANT_ID=DOMAIN, not {pair.strip()!r}")
        tenants[tenant] = domain
    return tenants


def _database_url(url: str | None, instance_path: str) -> str:
    if not url:
        return "sqlite:///" + os.path.join(instance_path, "inboxcrm.db")
    # Heroku-style URLs name the old driver; SQLAlchemy wants psycopg 3 spelled out.
    if url.startswith("postgres://"):
        url = "postgresql://" + url.removeprefix("postgres://")
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return url


def _instance_secret(instance_path: str) -> str:
    """The embedded default keeps a random key in the instance folder, so that sign-ins
    survive a restart without anyone having to set a secret."""
    path = os.path.join(instance_path, "secret_key")
    try:
        with open(path, encoding="ascii") as handle:
            return handle.read().strip()
    except FileNotFoundError:
        os.makedirs(instance_path, exist_ok=True)
        key = secrets.token_hex(32)
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w", encoding="ascii") as handle:
            handle.write(key)
        return key
