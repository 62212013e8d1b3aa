"""Blueprints, one per area; each area's rules live in ``services/<area>.py``."""

from __future__ import annotations

from typing import Any

from flask import Flask, jsonify, request
from werkzeug.routing import BaseConverter, ValidationError

from addin.views import page_or_fragment
from services.errors import DomainError
from services.schemas import parse_id


class RecordIdConverter(BaseConverter):
    """``<id:deal_id>``: a record id in a URL. Only ASCII digits within the store's integer
    range match, so a Unicode digit or an id past the database's range is a plain 404."""

    regex = r"[0-9]{1,10}"
    weight = 50

    def to_python(self, value: str) -> int:
        number = parse_id(value)
        if number is None:
            raise ValidationError()
        return number

    def to_url(self, value: Any) -> str:
        return str(int(value))


def register(app: Flask) -> None:
    from addin.routes import activities, admin, audit, auth, contacts, deals, followups, gmail, health, intake, pane, preview, reports

    app.url_map.converters["id"] = RecordIdConverter
    for module in (auth, health, pane, preview, contacts, deals, activities, followups, audit, admin, reports, gmail, intake):
        app.register_blueprint(module.bp)

    @app.errorhandler(DomainError)
    def refused(error: DomainError):
        """A refusal that no form catches (a record not found, a role too low): a message in
        the pane, JSON for an API caller; never a 500."""
        if request.path.startswith(("/api/", "/intake/")):
            from addin.routes.api import api_error

            return api_error(error)
        status = 422 if error.status == 400 else error.status
        if request.is_json or request.path.startswith("/auth/"):
            return jsonify(error=error.message, errors=error.errors), status
        return page_or_fragment("refused.html", "_refused.html", status, message=error.message)
