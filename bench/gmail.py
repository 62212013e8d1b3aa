"""Benchmark: the Gmail add-on's homepage and message cards, end to end through the app (both
of Google's ID tokens verified against a local key server, the message read from a local
Gmail API), as medians beside the bare route, each card call alternating with a bare-route
call. Called by ``bench/reports.py``; the figures go into the same JSON.
"""

from __future__ import annotations

import statistics
import time
from contextlib import ExitStack
from datetime import datetime
from typing import Any
from unittest import mock

from flask import Flask
from sqlalchemy import select

from services.models import User
from services.preview import sample_mailbox
from tests import google


def alternating(call, floor, repeat: int) -> tuple[float, float]:
    """Medians (ms) of ``call`` and of the bare route, taken alternately, a moment apart: the
    machine's noise weighs on both alike, so their ratio holds."""
    runs, floors = [], []
    for _ in range(repeat):
        started = time.perf_counter()
        floor()
        floors.append(time.perf_counter() - started)
        started = time.perf_counter()
        call()
        runs.append(time.perf_counter() - started)
    return statistics.median(runs) * 1000, statistics.median(floors) * 1000


def measure(app: Flask, now: datetime, repeat: int = 200) -> dict[str, Any]:
    """The cards as of ``now``, the moment the store describes (its last day's activity, its
    deals going dark): a store built days ago would otherwise show an empty week."""
    keys, api = google.GoogleKeys(), google.GmailApi()
    with ExitStack() as clock:
        for name in ("addin.routes.gmail.utcnow", "services.mail.context.utcnow"):
            clock.enter_context(mock.patch(name, return_value=now))
        clock.enter_context(mock.patch("addin.routes.gmail.local_today", return_value=now.date()))
        return _measure(app, repeat, keys, api)


def _measure(app: Flask, repeat: int, keys: google.GoogleKeys, api: google.GmailApi) -> dict[str, Any]:
    try:
        with app.extensions["inboxcrm.db"].sessions() as session:
            rep = session.scalars(select(User).where(User.role == "rep").order_by(User.id)).first()
            manager = session.scalars(select(User).where(User.role == "manager").order_by(User.id)).first()
            domain = rep.email.split("@")[1]
            item = next(i for i in sample_mailbox(session, rep) if i.item_type == "message")
            rep_email, manager_email = rep.email, manager.email
        api.messages["bench"] = google.gmail_resource(
            "bench",
            {
                "From": f"{item.from_name} <{item.from_address}>",
                "To": rep_email,
                "Subject": item.subject,
                "Message-ID": item.internet_message_id,
            },
            {"mimeType": "text/plain", "body": {"data": google.b64url(item.body_text)}},
        )
        app.config.update(
            BASE_URL=google.BASE_URL,
            GOOGLE_SERVICE_ACCOUNT=google.SERVICE_ACCOUNT,
            GOOGLE_CLIENT_IDS=[google.CLIENT_ID],
            GOOGLE_WORKSPACES={domain: domain},
            GOOGLE_JWKS_URL=keys.jwks_url,
            GMAIL_API_URL=api.url,
        )
        client = app.test_client()
        tokens = {path: keys.system_token(path) for path in ("/gmail/homepage", "/gmail/message")}
        users = {email: keys.user_token(email) for email in (rep_email, manager_email)}

        def post(path: str, email: str, message_id: str | None = None) -> None:
            event = {
                "commonEventObject": {"hostApp": "GMAIL", "timeZone": {"id": "UTC"}},
                "authorizationEventObject": {"userOAuthToken": google.OAUTH_TOKEN, "userIdToken": users[email]},
                "gmail": {"accessToken": google.ACCESS_TOKEN, **({"messageId": message_id} if message_id else {})},
            }
            response = client.post(path, json=event, headers={"Authorization": f"Bearer {tokens[path]}"})
            assert response.status_code == 200 and "pushCard" in response.get_data(as_text=True), response.get_data(
                as_text=True
            )[:300]

        calls = {
            "gmail_home_rep_ms": lambda: post("/gmail/homepage", rep_email),
            "gmail_home_manager_ms": lambda: post("/gmail/homepage", manager_email),
            "gmail_message_ms": lambda: post("/gmail/message", rep_email, "bench"),
        }
        for call in calls.values():
            call()  # warm: keys fetched, identities linked
        result: dict[str, Any] = {}
        for name, call in calls.items():
            card, floor = alternating(call, lambda: client.get("/healthz"), repeat)
            result[name] = round(card, 2)
            result[name.replace("_ms", "_vs_floor")] = round(card / floor, 1)
        return result
    finally:
        keys.close()
        api.close()


def against_hot_floor(result: dict[str, Any], hot_floor_ms: float) -> dict[str, float]:
    """The same cards against the bare route timed in a tight loop of its own (its caches hot,
    so a lower floor than the alternating one): the stricter reading, reported beside."""
    return {
        name.replace("_ms", "_vs_hot_floor"): round(value / hot_floor_ms, 1)
        for name, value in result.items()
        if name.endswith("_ms")
    }
