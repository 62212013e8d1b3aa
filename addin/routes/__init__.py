"""Blueprints, one per area; each area's rules live in ``services/<area>.py``."""

from __future__ import annotations

from flask import Flask, jsonify, request

from addin.routes import (
    activities,
    admin,
    api,
    api_setup,  # noqa: F401 - its routes join the API's blueprint as it is imported
    audit,
    auth,
    capture,
    contacts,
    deals,
    followups,
    gmail,
    health,
    intake,
    organization,
    pane,
    preview,
    reports,
    setup,
)
from addin.views import RecordIdConverter, page_or_fragment, refusal_status
from services.errors import DomainError
from services.setup.tables import MAX_BYTES


def register(app: Flask) -> None:
    app.url_map.converters["id"] = RecordIdConverter
    for module in (
        auth,
        health,
        pane,
        preview,
        contacts,
        deals,
        activities,
        followups,
        audit,
        admin,
        reports,
        gmail,
        intake,
        setup,
        organization,
        capture,
    ):
        app.register_blueprint(module.bp)

    @app.errorhandler(413)
    def too_large(_error: Exception):
        """A body past the limit: a sentence, on the page or the API, never a bare error page."""
        message = f"That is too large to send: a file may be {MAX_BYTES // (1024 * 1024)} MB at most; split it."
        if request.path.startswith(("/api/", "/intake/")) or request.is_json:
            return jsonify(error=message, code="too_large"), 413
        return page_or_fragment("refused.html", "_refused.html", 413, message=message)

    @app.errorhandler(DomainError)
    def refused(error: DomainError):
        """A refusal that no form catches (a record not found, a role too low): a message in
        the pane, JSON for an API caller; never a 500."""
        if request.path.startswith(("/api/", "/intake/")):
            return api.api_error(error)
        status = refusal_status(error)
        if request.is_json or request.path.startswith("/auth/"):
            return jsonify(error=error.message, errors=error.errors), status
        return page_or_fragment("refused.html", "_refused.html", status, message=error.message)
