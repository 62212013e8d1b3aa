"""Capture's parts made from the app's settings (``services.capture``): the providers' endpoints,
the vault of mailbox tokens, and the reader a pass uses, made once per process."""

from __future__ import annotations

import json
import time
from pathlib import Path

from flask import Flask, current_app

from services.capture.providers import Endpoints
from services.capture.sync import GoogleServiceAccount, Reader
from services.capture.vault import Vault

BACKFILL_PAUSE = 0.05  # seconds between a backfill's pages: the panes' writes go first


def endpoints(app: Flask | None = None) -> Endpoints:
    config = (app or current_app).config
    return Endpoints(
        **config["CAPTURE_ENDPOINTS"],
        microsoft_client_id=config["CAPTURE_MICROSOFT_CLIENT_ID"],
        microsoft_client_secret=config["CAPTURE_MICROSOFT_CLIENT_SECRET"],
        google_client_id=config["CAPTURE_GOOGLE_CLIENT_ID"],
        google_client_secret=config["CAPTURE_GOOGLE_CLIENT_SECRET"],
    )


def vault(app: Flask | None = None) -> Vault:
    config = (app or current_app).config
    return Vault(config["CAPTURE_KEYS"]) if config["CAPTURE_KEYS"] else Vault.derived(config["SECRET_KEY"])


def _service_account(path: str) -> GoogleServiceAccount | None:
    if not path:
        return None
    key = json.loads(Path(path).read_text(encoding="utf-8"))
    return GoogleServiceAccount(key["client_email"], key["private_key"])


def reader(app: Flask | None = None) -> Reader:
    """The process's reader (one HTTP session, its keep-alive connections shared by the passes)."""
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    if "inboxcrm.capture_reader" not in app.extensions:
        config = app.config
        made = endpoints(app)
        app.extensions["inboxcrm.capture_reader"] = Reader(
            made,
            vault(app),
            pause=lambda: time.sleep(BACKFILL_PAUSE),
            google_service_account=_service_account(config["CAPTURE_GOOGLE_KEY_FILE"]),
            microsoft_app=made.client("microsoft") if made.configured("microsoft") else None,
            push_url=config["CAPTURE_PUSH_URL"] or None,
            push_secret=config["SECRET_KEY"],
            pubsub_topic=config["CAPTURE_PUBSUB_TOPIC"] or None,
        )
    return app.extensions["inboxcrm.capture_reader"]
