"""Deals from the pane: moving a deal through the pipeline."""

from __future__ import annotations

from flask import Blueprint, request
from flask_login import login_required

from addin.database import db
from addin.pane_actions import Notice, perform
from addin.views import actor
from services import deals

bp = Blueprint("deals", __name__)


@bp.post("/deals/<id:deal_id>/stage")
@login_required
def move_stage(deal_id: int):
    def action() -> Notice:
        deal = deals.move_stage(db(), actor(), deal_id, request.form)
        closed = (deal.name, deal.status.title()) if deal.status != "open" else None
        return Notice(
            f"{deal.name}: {deal.stage.name if deal.status == 'open' else deal.status}.",
            undo_deal=deal.id,
            closed=closed,
        )

    return perform(f"stage-{deal_id}", action)


@bp.post("/deals/<id:deal_id>/stage/undo")
@login_required
def undo_move(deal_id: int):
    def action() -> Notice:
        deal = deals.undo_move(db(), actor(), deal_id)
        return Notice(
            f"Undone: {deal.name} is back {'in ' + deal.stage.name if deal.status == 'open' else deal.status}."
        )

    return perform(f"undo-deal-{deal_id}", action)
