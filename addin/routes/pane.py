"""The task pane: its shell, the context beside the open mail item, the rep's block list, search
and day. The actions its forms post go to their areas' blueprints, through ``addin.pane_actions``."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify, render_template, request
from flask_login import login_required

from addin import handoff, oidc
from addin.database import commit, db, reads_only
from addin.pane_actions import ITEM_FIELDS, ITEM_LISTS, MailItemRef, render_context, render_my_day
from addin.views import actor, page_or_fragment, refused, zone_differs
from services.errors import DomainError
from services import privacy
from services.models import CALL_OUTCOMES, LEAD_SOURCES, LOGGED_BY_HAND, MEETING_OUTCOMES
from services.search import search_crm

bp = Blueprint("pane", __name__)


@bp.get("/pane")
def shell() -> str:
    """The pane's shell. It holds no data, so it opens signed out too: where the mail client
    blocks cookies, the pane's script signs in with a token and asks for the context."""
    host = "preview" if request.args.get("host") == "preview" else "outlook"
    return render_template("pane/index.html", host=host, item=None, context=None, sign_in_providers=oidc.enabled())


@bp.post("/pane/handoff")
@login_required
def handoff_link() -> tuple[Any, int]:
    """A single-use link opening one of our pages already signed in (``addin.handoff``): what a
    pane signed in by token (no cookie, as in Outlook) opens Notes, the dashboard or Automatic
    capture with, instead of a second sign-in in the browser window."""
    target = request.form.get("next", "")
    if not target.startswith("/") or target.startswith("//") or "\\" in target or len(target) > 500:
        return jsonify(error="Only a page of this server can be opened."), 400
    return jsonify(url=handoff.link(actor(), request.host_url, path=target)), 200


@bp.get("/pane/header")
@login_required
def header() -> str:
    """The header for a pane that signed in after its shell loaded (by token)."""
    return render_template("pane/_header.html")


@bp.route("/pane/context", methods=["GET", "POST"])
@login_required
@reads_only
def context() -> tuple[str, int]:
    """The context for a mail item. The pane's script POSTs the item, so that its addresses and
    subject stay out of URLs and the logs that keep them; a GET with the item in its query
    serves links (and a plain form's redirect)."""
    return render_context(MailItemRef.from_values(request.form if request.method == "POST" else request.args))


@bp.get("/launch-event")
def launch_event() -> str:
    """The page Outlook on the web, on the Mac and the new Outlook load, hidden, to run the
    add-in's launch events (``OnMessageSend``); classic Outlook for Windows runs the script alone."""
    return render_template("pane/launch_event.html")


@bp.get("/pane/block-list")
@login_required
def block_list() -> tuple[str, int]:
    """The rep's own block list (and the organization's, to read): mail with anyone on them is
    never logged."""
    return _block_list()


@bp.post("/pane/block-list")
@login_required
def block() -> tuple[str, int]:
    with refused() as refusal:
        privacy.add_entry(db(), actor(), request.form.get("value"), organization_wide=False)
    if refusal:
        return _block_list(error=refusal.error, typed=(request.form.get("value") or "")[:300], status=refusal.status)
    commit()
    return _block_list(notice="Blocked: mail with them on it is not logged.")


@bp.post("/pane/block-list/<id:entry_id>/delete")
@login_required
def unblock(entry_id: int) -> tuple[str, int]:
    privacy.remove_entry(db(), actor(), entry_id)
    commit()
    return _block_list(notice="Taken off your block list.")


def _block_list(
    *, error: DomainError | None = None, typed: str = "", notice: str | None = None, status: int = 200
) -> tuple[str, int]:
    return page_or_fragment(
        "pane/index.html",
        "pane/_block_list.html",
        status,
        lists=privacy.block_lists(db(), actor()),
        error=error,
        typed=typed,
        block_notice=notice,
        item=None,
        context=None,
        block_page=True,
    )


@bp.get("/pane/search")
@login_required
def search() -> tuple[str, int]:
    """Contacts, accounts and open deals matching what the rep typed, each to choose for the
    open item: its mail, a call or a note can then go to that account or deal."""
    return render_template(
        "pane/_search_results.html",
        results=search_crm(db(), actor(), request.args.get("q")),
        item=MailItemRef.from_values(request.args),
    ), 200


@bp.get("/pane/my-day")
@login_required
def my_day() -> tuple[str, int]:
    """With no mail open: the rep's follow-ups overdue and due today, and the meetings to say
    how they went."""
    return render_my_day(), 200


@bp.app_context_processor
def pane_globals() -> dict[str, Any]:
    # The open item's fields, named once (here): the forms carry them, the pane's script sends them.
    return {
        "demo_sign_in": current_app.config["DEMO_SIGN_IN"],
        "ITEM_FIELDS": ITEM_FIELDS,
        "ITEM_LISTS": ITEM_LISTS,
        "zone_differs": zone_differs,
        "LOGGED_BY_HAND": LOGGED_BY_HAND,
        "CALL_OUTCOMES": CALL_OUTCOMES,
        "MEETING_OUTCOMES": MEETING_OUTCOMES,
        "LEAD_SOURCES": LEAD_SOURCES,
    }
