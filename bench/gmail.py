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

from services.models import Account, Activity, User
from services.reports.scope import team_members
from services.preview import sample_mailbox
from tests import google

ACTIONS = ("log_form", "activity", "search", "block_list", "rep")  # the pushed cards measured


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
            rep_id = next(p.id for p in team_members(session, manager) if p.id != manager.id)  # one of the manager's
            activity_id = session.scalar(
                select(Activity.id).where(Activity.owner_id == rep.id, Activity.deleted_at.is_(None)).limit(1)
            )
            account = session.scalar(select(Account.name).where(Account.owner_id == rep.id).limit(1)) or "a"
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
        paths = ["/gmail/homepage", "/gmail/message"] + [f"/gmail/action/{name}" for name in ACTIONS]
        tokens = {path: keys.system_token(path) for path in paths}
        users = {email: keys.user_token(email) for email in (rep_email, manager_email)}

        def post(
            path: str,
            email: str,
            message_id: str | None = None,
            parameters: dict[str, str] | None = None,
            inputs: dict[str, str] | None = None,
        ) -> None:
            event = {
                "commonEventObject": {
                    "hostApp": "GMAIL",
                    "timeZone": {"id": "UTC"},
                    "parameters": parameters or {},
                    "formInputs": {k: {"stringInputs": {"value": [v]}} for k, v in (inputs or {}).items()},
                },
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
            # The cards a rep's action pushes (read only: the bench writes nothing).
            "gmail_call_form_ms": lambda: post("/gmail/action/log_form", rep_email, "bench", {"type": "call"}),
            "gmail_activity_card_ms": lambda: post(
                "/gmail/action/activity", rep_email, "bench", {"activity_id": str(activity_id)}
            ),
            "gmail_search_ms": lambda: post("/gmail/action/search", rep_email, "bench", inputs={"q": account[:4]}),
            "gmail_never_log_ms": lambda: post("/gmail/action/block_list", rep_email),
            "gmail_rep_card_ms": lambda: post("/gmail/action/rep", manager_email, parameters={"rep_id": str(rep_id)}),
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
