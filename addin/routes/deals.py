"""Deals from the pane: moving a deal through the pipeline."""

from __future__ import annotations

from flask import Blueprint, request
from flask_login import login_required

from addin.database import db
from addin.pane_actions import Notice, SmallAnswer, perform
from addin.views import actor
from services import deals
from services.mail.context import deal_card
from services.models import Opportunity

bp = Blueprint("deals", __name__)


@bp.post("/deals/<id:deal_id>/stage")
@login_required
def move_stage(deal_id: int):
    def action() -> Notice:
        deal = deals.move_stage(db(), actor(), deal_id, request.form)
        return Notice(
            f"{deal.name}: {deal.stage.name if deal.status == 'open' else deal.status}.",
            undo_deal=deal.id,
            changed=_deal_again(deal),
        )

    return perform(f"stage-{deal_id}", action)


@bp.post("/deals/<id:deal_id>/stage/undo")
@login_required
def undo_move(deal_id: int):
    def action() -> Notice:
        deal = deals.undo_move(db(), actor(), deal_id)
        return Notice(
            f"Undone: {deal.name} is back {'in ' + deal.stage.name if deal.status == 'open' else deal.status}.",
            changed=_deal_again(deal),
        )

    return perform(f"undo-deal-{deal_id}", action)


def _deal_again(deal: Opportunity) -> SmallAnswer:
    """A stage move's answer: the deal's card again (its stage, health, warnings), or, won or
    lost, the closed card that stays in view with the Undo in the toast; nothing else."""
    if deal.status != "open":
        return SmallAnswer(closed=(deal.id, deal.name, deal.status.title()))
    return SmallAnswer(deal=deal_card(db(), actor(), deal.id))
