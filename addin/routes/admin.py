"""Admin pages: the organization's people, teams and pipeline (admins only)."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask_login import login_required

from addin.database import db
from addin.views import actor
from services.admin import organization_overview

bp = Blueprint("admin", __name__)


@bp.get("/admin")
@login_required
def overview() -> str:
    return render_template("admin/overview.html", overview=organization_overview(db(), actor()))
