"""Schemathesis against the live app's API: requests generated from its own OpenAPI document,
each answered without a server error and as the document says (status, content type, body
shape). Run with a read-write token, so writes are tried as well as reads."""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path

import schemathesis
from schemathesis.core import NOT_SET
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.specs.openapi.checks import positive_data_acceptance

from addin import create_app
from services.integration import api_tokens
from services.models import Base, User
from tests.factories import build_world


def _live_app():
    """The app on a store of its own with the test world in it, and a read-write token."""
    path = Path(tempfile.mkdtemp(prefix="api-fuzz-"))
    app = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{path / 'app.db'}",
            "SECRET_KEY": "test",
            "API_RATE_LIMIT": "100000 per minute",
        }
    )
    app.instance_path = str(path)
    Base.metadata.create_all(app.extensions["inboxcrm.db"].engine)
    with app.extensions["inboxcrm.db"].sessions() as session:
        world = build_world(session)
        _, text = api_tokens.create_token(session, session.get(User, world.admin.id), "Fuzz", "read write")
        session.commit()
    return app, text


APP, TOKEN = _live_app()
schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", APP)
CHECKS = (not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance)
# A request without a body that the document calls valid (its cursor, limit, If-Match and
# Idempotency-Key as the document spells them) is taken. A body's business rules (a quota is a
# rep's or a team's, a follow-up's records agree, no NUL) are the app's to check and answer 422,
# which the document says; they are not all sayable in JSON Schema.
BODILESS_CHECKS = (*CHECKS, positive_data_acceptance)


@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_api_answers_as_its_document_says(case):
    headers = {"Authorization": f"Bearer {TOKEN}"}
    if case.method.upper() != "GET":
        headers["Idempotency-Key"] = (
            f"fuzz-{uuid.uuid4()}"  # a key of its own (an id() is reused once its object is gone)
        )
    response = case.call(headers=headers)
    case.validate_response(
        response, checks=CHECKS if case.body is not NOT_SET and case.body is not None else BODILESS_CHECKS
    )
