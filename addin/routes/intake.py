"""Lead intake URLs: ``POST /intake/<key>`` from a web form, a WhatsApp provider or an ads
platform (``services.integration.intake``). JSON or a form post; no cookie, so no CSRF token: the key (and,
for a signed source, the signature) is the credential.

Answers, in the API's error shape (``addin.routes.api.error_body``): 202 for every lead taken,
new or matched to one already here, with no id (the URL tells nobody who is a lead); 404 for a
key that names no live source (or a bad signature); 400 for a body that is not JSON (or nests
too deep); 422 for a lead that cannot be taken. Limited per key, and per address for keys that
name nothing, so that keys cannot be guessed at speed."""

from __future__ import annotations

from flask import Blueprint, jsonify, request
from flask_limiter.util import get_remote_address
from werkzeug.exceptions import BadRequest

from addin.database import commit, db
from addin.routes.api import error_body
from addin.security import limiter
from services.integration.intake import source_for, take_lead
from services.integration.webhooks import SIGNATURE

bp = Blueprint("intake", __name__)
PER_KEY = "120 per minute"
UNKNOWN_PER_ADDRESS = "20 per minute"  # refusals (404) from one address, whatever keys it tries


@bp.post("/intake/<key>")
@limiter.limit(PER_KEY, key_func=lambda: "intake:" + (request.view_args or {}).get("key", "")[:64])
@limiter.limit(
    UNKNOWN_PER_ADDRESS,
    key_func=lambda: "intake-unknown:" + get_remote_address(),
    deduct_when=lambda r: r.status_code == 404,
)
def take(key: str):
    body = request.get_data(cache=True)
    source = source_for(db(), key, body, request.headers.get(SIGNATURE))
    try:
        data = request.get_json() if request.is_json else request.form.to_dict()
    except BadRequest:
        return jsonify(
            error_body("invalid_json", "Send the lead as JSON (nested no deeper than a form's fields) or as a form.")
        ), 400
    if not isinstance(data, dict):
        return jsonify(error_body("invalid_json", "Send the lead as a JSON object or a form.")), 422
    take_lead(db(), source, data)
    commit()
    return jsonify(received=True), 202


take.csrf_exempt = True  # type: ignore[attr-defined]
