"""Blueprints, one per area; each area's rules live in ``services/<area>.py``."""

from __future__ import annotations

from flask import Flask, jsonify, render_template, request

from services.errors import DomainError


def register(app: Flask) -> None:
    from addin.routes import activities, admin, audit, auth, contacts, deals, followups, health, pane, preview

    for module in (auth, health, pane, preview, contacts, deals, activities, followups, audit, admin):
        app.register_blueprint(module.bp)

    @app.errorhandler(DomainError)
    def refused(error: DomainError):
        """A refusal that no form catches (a record not found, a role too low): a message in
        the pane, JSON for an API caller; never a 500."""
        status = 422 if error.status == 400 else error.status
        if request.is_json or request.path.startswith(("/auth/", "/api/")):
            return jsonify(error=error.message, errors=error.errors), status
        return render_template("_refused.html", message=error.message), status
