"""Deals from the pane: moving a deal through the pipeline."""

from __future__ import annotations

from flask import Blueprint, request
from flask_login import login_required

from addin.database import db
from addin.routes.pane import Notice, perform
from addin.views import actor
from services import deals

bp = Blueprint("deals", __name__)


@bp.post("/deals/<id:deal_id>/stage")
@login_required
def move_stage(deal_id: int):
    def action() -> Notice:
        deal = deals.move_stage(db(), actor(), deal_id, request.form)
        return Notice(f"{deal.name}: {deal.stage.name if deal.status == 'open' else deal.status}.")

    return perform(f"stage-{deal_id}", action)
