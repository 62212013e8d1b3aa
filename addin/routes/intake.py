"""Lead intake URLs: ``POST /intake/<key>`` from a web form, a WhatsApp provider or an ads
platform (``services.intake``). JSON or a form post; no cookie, so no CSRF token: the key (and,
for a signed source, the signature) is the credential. Answers JSON: 201 a lead made, 200 one
merged, 404 for a key that names no live source (or a bad signature), 422 for a lead that
cannot be taken."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from addin.database import commit, db
from addin.security import limiter
from services.intake import source_for, take_lead
from services.webhooks import SIGNATURE

bp = Blueprint("intake", __name__)


@bp.post("/intake/<key>")
@limiter.limit("120 per minute", key_func=lambda: "intake:" + (request.view_args or {}).get("key", "")[:64])
def take(key: str):
    body = request.get_data(cache=True)
    source = source_for(db(), key, body, request.headers.get(SIGNATURE))
    data = request.get_json(silent=True) if request.is_json else request.form.to_dict()
    if not isinstance(data, dict):
        return jsonify(error="Send the lead as a JSON object or a form.", errors={}), 422
    taken = take_lead(db(), source, data)
    commit()
    return jsonify(id=taken.lead.id, merged=taken.merged), 200 if taken.merged else 201


take.csrf_exempt = True  # type: ignore[attr-defined]
