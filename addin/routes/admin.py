"""Admin pages: the organization's people, teams and pipeline (admins only)."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import login_required
from werkzeug.wrappers import Response

from addin.database import commit, db, rollback
from addin.views import actor
from services import privacy
from services.access import require_role
from services.admin import organization_overview
from services.errors import DomainError

bp = Blueprint("admin", __name__)


@bp.get("/admin")
@login_required
def overview() -> str:
    return render_template("admin/overview.html", overview=organization_overview(db(), actor()))


@bp.get("/admin/block-list")
@login_required
def block_list() -> tuple[str, int]:
    """The organization's block list: addresses and domains whose mail nobody logs."""
    require_role(actor(), "admin")
    return render_template("admin/block_list.html", lists=privacy.block_lists(db(), actor()), error=None, typed=""), 200


@bp.post("/admin/block-list")
@login_required
def block() -> tuple[str, int] | Response:
    try:
        privacy.add_entry(db(), actor(), request.form.get("value"), organization_wide=True)
    except DomainError as error:
        rollback()
        if error.status != 400:
            raise
        return render_template("admin/block_list.html", lists=privacy.block_lists(db(), actor()), error=error,
                               typed=(request.form.get("value") or "")[:300]), 422
    commit()
    flash("Blocked: its mail is not logged.")
    return redirect(url_for("admin.block_list"))


@bp.post("/admin/block-list/<id:entry_id>/delete")
@login_required
def unblock(entry_id: int) -> Response:
    require_role(actor(), "admin")
    privacy.remove_entry(db(), actor(), entry_id)
    commit()
    flash("Taken off the block list.")
    return redirect(url_for("admin.block_list"))
