"""Blueprints, one per area; each area's rules live in ``services/<area>.py``."""

from __future__ import annotations

from flask import Flask


def register(app: Flask) -> None:
    from addin.routes import activities, auth, contacts, deals, followups, health, pane, preview

    for module in (auth, health, pane, preview, contacts, deals, activities, followups):
        app.register_blueprint(module.bp)
