"""Contacts and accounts from the pane: the unknown-sender form."""

from __future__ import annotations

from flask import Blueprint, request
from flask_login import login_required

from addin.database import db
from addin.pane_actions import Notice, perform
from addin.views import actor
from services.mail import contacts

bp = Blueprint("contacts", __name__)


@bp.post("/contacts/from-sender")
@login_required
def create_from_sender():
    def action() -> Notice:
        contact, deal = contacts.create_from_sender(db(), actor(), request.form)
        return Notice(f"{contact.name} added" + (f" with the deal {deal.name}." if deal else "."))

    return perform("new_contact", action)
