"""What many tests share: counting a request's SQL statements, Microsoft's identity platform
on loopback (its keys, and tokens signed with them), the API as another system calls it, and
snapshots of what the store keeps beside the activities (rollups, latest times), to compare a
store before and after. Google's stand-ins are in ``tests.google``; the servers themselves in
``tests.servers``; the small world of people in ``tests.factories``."""

from __future__ import annotations

import json
import time

from flask import Flask
from joserfc import jwt
from joserfc.jwk import RSAKey
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from services.integration import api_tokens
from services.models import MONTH_COLUMNS, WEEKDAY_COLUMNS, Account, Opportunity, User
from services.rollups import COARSE, DATE_COLUMN, GRAINS, KEYS
from tests.factories import World
from tests.servers import KeyServer

# -- SQL statements ---------------------------------------------------------------------------------


def statements_of(app, call) -> tuple[object, int]:
    """``call``'s response, and how many SQL statements it ran."""
    engine = app.extensions["inboxcrm.db"].engine
    seen: list[str] = []

    def count(conn, cursor, statement, *args) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        response = call()
    finally:
        event.remove(engine, "before_cursor_execute", count)
    return response, len(seen)


# -- the pane's open mail item -------------------------------------------------------------------


def item_for(address: str = "ann@acme.test", message_id: str = "<m1@acme.test>", **extra) -> dict:
    """A mail from ``address`` to Rita, as the pane's script sends it with each action."""
    return {
        "item_type": "message",
        "from_address": address,
        "from_name": "Ann Buyer",
        "to": ["rita@northwind.test"],
        "subject": "Rates",
        "internet_message_id": message_id,
        **extra,
    }


# -- Microsoft's identity platform ----------------------------------------------------------------


TENANT = "9188040d-6c67-4c5b-b112-36a304b66dad"
OTHER_TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CLIENT_ID = "6e74172b-be56-4843-9ff4-e66a39bb12e3"
SCOPE = "access_as_user"


class JwksServer(KeyServer):
    """Answers GET /{tenant}/discovery/v2.0/keys with the public half of our keys."""

    def __init__(self) -> None:
        self.key = RSAKey.generate_key(2048, parameters={"kid": "key-1", "use": "sig"})
        super().__init__(
            json.dumps({"keys": [self.key.as_dict(private=False)]}).encode(), path=f"/{TENANT}/discovery/v2.0/keys"
        )


def claims(**overrides) -> dict:
    now = int(time.time())
    values = {
        "aud": CLIENT_ID,
        "iss": f"https://login.microsoftonline.com/{TENANT}/v2.0",
        "tid": TENANT,
        "oid": "00000000-0000-0000-66f3-3332eca7ea81",
        "preferred_username": "rita@northwind.test",
        "scp": f"{SCOPE} User.Read",
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
        "ver": "2.0",
    }
    values.update(overrides)
    return {k: v for k, v in values.items() if v is not None}


def sign(key, payload: dict, alg: str = "RS256", kid: str = "key-1") -> str:
    return jwt.encode({"alg": alg, "kid": kid, "typ": "JWT"}, payload, key)


# -- the API as another system calls it -------------------------------------------------------------


def token(app: Flask, world: World, scopes: str = "read write", org: str = "ours") -> str:
    with app.extensions["inboxcrm.db"].sessions() as session:
        admin = session.get(User, (world.admin if org == "ours" else world.other_user).id)
        _, text = api_tokens.create_token(session, admin, "Tests", scopes)
        session.commit()
    return text


class Client:
    """The API as another system calls it."""

    def __init__(self, app: Flask, text: str) -> None:
        self.http, self.text, self.keys = app.test_client(), text, 0

    def headers(self, key: str | None = None, version: int | None = None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.text}"}
        if key is not None:
            headers["Idempotency-Key"] = key
        if version is not None:
            headers["If-Match"] = str(version)
        return headers

    def get(self, path: str, **params):
        return self.http.get(f"/api/v1{path}", query_string=params, headers=self.headers())

    def write(self, method: str, path: str, body=None, *, key: str | None = "auto", version: int | None = None):
        if key == "auto":
            self.keys += 1
            key = f"k{self.keys}"
        return self.http.open(f"/api/v1{path}", method=method, json=body, headers=self.headers(key, version))

    def sync(self, record_type: str, cursor: str | None = None, limit: int = 100) -> tuple[list, list, str]:
        """Every page from ``cursor`` to the end."""
        data, deleted = [], []
        while True:
            page = self.get(f"/{record_type}", **({"cursor": cursor} if cursor else {}), limit=limit).get_json()
            data += page["data"]
            deleted += page["deleted"]
            cursor = page["cursor"]
            if not page["has_more"]:
                return data, deleted, cursor


# -- what the store keeps beside the activities -----------------------------------------------------


def rollup_snapshot(session: Session, organization_id: int) -> set[tuple]:
    """The organization's rollups, every grain, as comparable tuples (rows that count nothing
    left out)."""
    found: set[tuple] = set()
    for model, grain in GRAINS:
        weekdays = [getattr(model, column) for column in WEEKDAY_COLUMNS] if grain in COARSE else []
        extra = (
            [model.attempts, model.contacts, *(getattr(model, column) for column in MONTH_COLUMNS)]
            if grain == "year"
            else []
        )
        found |= {
            (grain, *row)
            for row in session.execute(
                select(
                    model.owner_id,
                    getattr(model, DATE_COLUMN[grain]),
                    *(getattr(model, name) for name in KEYS[grain]),
                    model.count,
                    model.minutes,
                    model.flagged,
                    *weekdays,
                    *extra,
                ).where(model.organization_id == organization_id, model.count > 0)
            )
        }
    return found


def latest_snapshot(session: Session, organization_id: int) -> set[tuple]:
    """Each deal's and account's kept latest activity (``services.latest``)."""
    return {
        ("deal", *row)
        for row in session.execute(
            select(Opportunity.id, Opportunity.last_activity_at, Opportunity.last_inbound_at).where(
                Opportunity.organization_id == organization_id
            )
        )
    } | {
        ("account", *row)
        for row in session.execute(
            select(Account.id, Account.last_activity_at).where(Account.organization_id == organization_id)
        )
    }
