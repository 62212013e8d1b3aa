"""The admin's pages for setting up the organization: people and invitations, teams, the
pipeline (stages, loss reasons, checklists), settings, quotas, import and export.

Each page posts a form and comes back to itself (``303``) with what was done, or shows the form
again with what is wrong (``422``) and nothing written. The rules are the services'
(``services/setup``); every page is an admin's (``require_role`` in each service).
"""

from __future__ import annotations

import logging
import os
import tempfile
from datetime import date
from typing import Any

from flask import (
    Blueprint,
    after_this_request,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask_login import login_required
from werkzeug.wrappers import Response

from addin.database import commit, db
from addin.jobs import enqueue_import, enqueue_rebuild, smtp_server
from addin.views import actor, is_htmx, refused
from services.access import require_role
from services.errors import DomainError, NotFound
from services.models import ROLES, ImportRun, User
from services.notes import SCORED_TYPES, checklists
from services.periods import fiscal_year_start, local_today
from services.setup import importing, people, pipeline, quotas, teams
from services.setup.export import audit_export, export_organization
from services.setup.organizations import OrganizationSchema, change_settings, organization_values
from services.setup.organizations import CURRENCIES, ZONES
from services.setup.tables import MAX_BYTES

bp = Blueprint("organization", __name__, url_prefix="/admin")
log = logging.getLogger(__name__)


def _back(endpoint: str, message: str, **values: Any) -> Response:
    commit()
    flash(message)
    return redirect(url_for(endpoint, **values), code=303)


# -- people -------------------------------------------------------------------------------------------


def _people_page(
    error: DomainError | None = None, typed: dict[str, str] | None = None, link: tuple[str, str] | None = None
):
    require_role(actor(), "admin")
    return render_template(
        "organization/people.html",
        people=people.people(db(), actor()),
        invitations=people.pending_invitations(db(), actor()),
        teams=[team for team, _ in teams.teams(db(), actor())],
        roles=ROLES,
        error=error,
        typed=typed or {},
        link=link,
        today=local_today(actor().organization.time_zone).isoformat(),
    )


@bp.get("/people")
@login_required
def people_page() -> str:
    return _people_page()


def send_invitation(invitation: Any, token: str, organization_name: str) -> str | None:
    """Mail the invitation's link; returns the link when it could not be sent (the admin sends it)."""
    link = url_for("setup.join", token=token, _external=True)
    config = current_app.config
    if not config["SMTP_HOST"]:
        return link
    message = people.invitation_message(invitation, organization_name, link, config["MAIL_FROM"])
    try:
        with smtp_server(config) as smtp:
            smtp.send_message(message)
    except OSError:  # smtplib's errors are OSErrors: down, refused, timed out
        log.warning("the invitation to %s could not be mailed", invitation.email, exc_info=True)
        return link
    return None


@bp.post("/people/invite")
@login_required
def invite() -> Any:
    with refused(of_input_only=True) as refusal:
        invitation, token = people.invite(db(), actor(), request.form)
    if refusal:
        typed = {key: (request.form.get(key) or "")[:300] for key in ("email", "name", "role", "team_id")}
        return _people_page(refusal.error, typed), 422
    commit()
    unsent = send_invitation(invitation, token, actor().organization.name)
    if unsent:
        # No mail server, or it refused: the link is shown this once, for the admin to send.
        return _people_page(link=(invitation.email, unsent)), 201
    flash(f"Invitation sent to {invitation.email}.")
    return redirect(url_for("organization.people_page"), code=303)


@bp.post("/invitations/<id:invitation_id>/revoke")
@login_required
def revoke_invitation(invitation_id: int) -> Response:
    invitation = people.revoke_invitation(db(), actor(), invitation_id)
    return _back("organization.people_page", f"The invitation to {invitation.email} no longer works.")


@bp.post("/people/<id:user_id>")
@login_required
def change_person(user_id: int) -> Any:
    form = request.form
    with refused(of_input_only=True) as refusal:
        person = people.change_person(db(), actor(), user_id, {k: form[k] for k in ("name", "role") if form.get(k)})
        if "team_id" in form:
            teams.move_person(db(), actor(), user_id, form.get("team_id"), form.get("on"))
    if refusal:
        return _people_page(refusal.error), 422
    return _back("organization.people_page", f"{person.name}: saved.")


@bp.post("/people/<id:user_id>/deactivate")
@login_required
def deactivate(user_id: int) -> Any:
    with refused(of_input_only=True) as refusal:
        handover = people.deactivate(db(), actor(), user_id, request.form.get("successor_id"))
    if refusal:
        return _people_page(refusal.error), 422
    person = db().get(User, user_id)
    return _back(
        "organization.people_page",
        f"{person.name} is deactivated: signed out everywhere. Handed over: {handover.deals} open deals, "
        f"{handover.accounts} accounts, {handover.contacts} contacts, {handover.leads} leads, {handover.follow_ups} follow-ups.",
    )


@bp.post("/people/<id:user_id>/reactivate")
@login_required
def reactivate(user_id: int) -> Response:
    person = people.reactivate(db(), actor(), user_id)
    return _back("organization.people_page", f"{person.name} can sign in again.")


# -- teams --------------------------------------------------------------------------------------------


def _teams_page(error: DomainError | None = None):
    return render_template("organization/teams.html", teams=teams.teams(db(), actor()), error=error)


@bp.get("/teams")
@login_required
def teams_page() -> str:
    return _teams_page()


@bp.post("/teams")
@login_required
def create_team() -> Any:
    with refused(of_input_only=True) as refusal:
        team = teams.create_team(db(), actor(), request.form.get("name"))
    if refusal:
        return _teams_page(refusal.error), 422
    return _back("organization.teams_page", f"Team {team.name} made.")


@bp.post("/teams/<id:team_id>")
@login_required
def rename_team(team_id: int) -> Any:
    with refused(of_input_only=True) as refusal:
        team = teams.rename_team(db(), actor(), team_id, request.form.get("name"))
    if refusal:
        return _teams_page(refusal.error), 422
    return _back("organization.teams_page", f"Renamed: {team.name}.")


@bp.post("/teams/<id:team_id>/merge")
@login_required
def merge_team(team_id: int) -> Any:
    with refused(of_input_only=True) as refusal:
        into = teams.merge_teams(db(), actor(), team_id, request.form.get("into_id"))
    if refusal:
        return _teams_page(refusal.error), 422
    return _back("organization.teams_page", f"Merged into {into.name}.")


# -- pipeline -----------------------------------------------------------------------------------------


def _pipeline_page(error: DomainError | None = None):
    org = actor().organization
    return render_template(
        "organization/pipeline.html",
        stages=pipeline.stages(db(), actor()),
        loss_reasons=org.setting("loss_reasons"),
        checklists=checklists(db(), org.id),
        checklist_types=SCORED_TYPES,
        error=error,
    )


@bp.get("/pipeline")
@login_required
def pipeline_page() -> str:
    return _pipeline_page()


@bp.post("/stages")
@login_required
def add_stage() -> Any:
    with refused(of_input_only=True) as refusal:
        stage = pipeline.add_stage(db(), actor(), request.form)
    if refusal:
        return _pipeline_page(refusal.error), 422
    return _back("organization.pipeline_page", f"Stage {stage.name} added at the end.")


@bp.post("/stages/<id:stage_id>")
@login_required
def change_stage(stage_id: int) -> Any:
    with refused(of_input_only=True) as refusal:
        stage = pipeline.change_stage(db(), actor(), stage_id, request.form)
    if refusal:
        return _pipeline_page(refusal.error), 422
    return _back("organization.pipeline_page", f"Stage {stage.name} saved.")


@bp.post("/stages/<id:stage_id>/retire")
@login_required
def retire_stage(stage_id: int) -> Any:
    with refused(of_input_only=True) as refusal:
        stage = pipeline.retire_stage(db(), actor(), stage_id, request.form.get("retired") != "0")
    if refusal:
        return _pipeline_page(refusal.error), 422
    said = "retired: it takes no new deals" if stage.retired_at else "back in the pipeline"
    return _back("organization.pipeline_page", f"{stage.name} is {said}.")


@bp.post("/stages/<id:stage_id>/move")
@login_required
def move_stage(stage_id: int) -> Any:
    """Up or down one place: the whole order, reordered (``pipeline.reorder_stages``)."""
    order = [stage.id for stage, _ in pipeline.stages(db(), actor())]
    if stage_id not in order:
        raise NotFound("stage")
    at = order.index(stage_id)
    to = at - 1 if request.form.get("direction") == "up" else at + 1
    if 0 <= to < len(order):
        order[at], order[to] = order[to], order[at]
    with refused(of_input_only=True) as refusal:
        pipeline.reorder_stages(db(), actor(), order)
    if refusal:
        return _pipeline_page(refusal.error), 422
    return _back("organization.pipeline_page", "Stages reordered; stage conversion reads the new order.")


@bp.post("/loss-reasons")
@login_required
def loss_reasons() -> Any:
    with refused(of_input_only=True) as refusal:
        change_settings(db(), actor(), {"loss_reasons": request.form.get("loss_reasons", "")})
    if refusal:
        return _pipeline_page(refusal.error), 422
    return _back("organization.pipeline_page", "Loss reasons saved.")


@bp.post("/checklists/<activity_type>")
@login_required
def checklist(activity_type: str) -> Any:
    with refused(of_input_only=True) as refusal:
        pipeline.set_checklist(db(), actor(), activity_type, request.form.get("questions", ""))
    if refusal:
        return _pipeline_page(refusal.error), 422
    return _back(
        "organization.pipeline_page", f"The {activity_type} checklist is saved: notes written from now on answer it."
    )


# -- settings -----------------------------------------------------------------------------------------


def _settings_page(error: DomainError | None = None, typed: dict[str, Any] | None = None):
    values = organization_values(actor().organization)
    if typed:
        values |= typed
    return render_template(
        "organization/settings.html",
        values=values,
        zones=sorted(ZONES),
        currencies=sorted(CURRENCIES),
        error=error,
        rebuilding=actor().organization.rebuilding_since is not None,
    )


@bp.get("/settings")
@login_required
def settings_page() -> str:
    require_role(actor(), "admin")
    return _settings_page()


SETTING_FIELDS = tuple(OrganizationSchema().fields)


@bp.post("/settings")
@login_required
def save_settings() -> Any:
    form = request.form
    data: dict[str, Any] = {key: form[key] for key in SETTING_FIELDS if key in form and key != "loss_reasons"}
    data["log_internal_mail"] = form.get("log_internal_mail") == "on"
    if data.get("body_retention_months", None) == "":
        data["body_retention_months"] = None
    with refused(of_input_only=True) as refusal:
        changed = change_settings(db(), actor(), data)
    if refusal:
        return _settings_page(refusal.error, {k: v for k, v in data.items()}), 422
    commit()
    if actor().organization.rebuilding_since is not None and (
        "time_zone" in changed or "fiscal_year_start_month" in changed
    ):
        enqueue_rebuild(actor().organization_id)
        flash(
            "Saved. The figures are being recounted in the new time zone or fiscal year; the dashboard says so until done."
        )
    else:
        flash("Saved." if changed else "Nothing changed.")
    return redirect(url_for("organization.settings_page"), code=303)


# -- quotas -------------------------------------------------------------------------------------------


def _year() -> int:
    """The fiscal year asked for (by the year it starts in), else the one running now."""
    value = request.values.get("year", "")
    if value.isdigit() and 1900 <= int(value) < 2200:
        return int(value)
    org = actor().organization
    return fiscal_year_start(local_today(org.time_zone), org.fiscal_year_start_month).year


def _quotas_page(error: DomainError | None = None, status: int = 200):
    metric = request.values.get("metric") or "won_revenue"
    if metric not in quotas.METRICS:
        metric = "won_revenue"
    grid = quotas.quota_grid(db(), actor(), _year(), metric)
    typed = {k: v for k, v in request.form.items() if k.startswith("t-")} if error else {}
    return render_template(
        "organization/quotas.html",
        grid=grid,
        metrics=quotas.METRICS,
        error=error,
        typed=typed,
        columns=quotas.CSV_COLUMNS,
    ), status


@bp.get("/quotas")
@login_required
def quotas_page() -> Any:
    return _quotas_page()


@bp.post("/quotas")
@login_required
def save_quotas() -> Any:
    with refused(of_input_only=True) as refusal:
        changed = quotas.save_grid(db(), actor(), _year(), request.form.get("metric", ""), request.form)
    if refusal:
        return _quotas_page(refusal.error, 422)
    said = "1 target saved." if changed == 1 else f"{changed} targets saved."
    return _back("organization.quotas_page", said, year=_year(), metric=request.form.get("metric"))


@bp.post("/quotas/import")
@login_required
def import_quotas() -> Any:
    upload = request.files.get("file")
    with refused(of_input_only=True) as refusal:
        if upload is None or not upload.filename:
            raise DomainError("Choose a CSV file.", {"file": ["Choose a file."]})
        changed = quotas.import_quotas(db(), actor(), upload.read(MAX_BYTES + 1))
    if refusal:
        return _quotas_page(refusal.error, 422)
    return _back("organization.quotas_page", f"Imported: {changed} targets set.")


# -- import and export --------------------------------------------------------------------------------


@bp.get("/import")
@login_required
def import_page() -> str:
    require_role(actor(), "admin")
    return render_template(
        "organization/import.html", kinds=importing.KINDS, runs=importing.imports(db(), actor()), error=None
    )


@bp.post("/import")
@login_required
def upload() -> Any:
    file = request.files.get("file")
    with refused(of_input_only=True) as refusal:
        if file is None or not file.filename:
            raise DomainError("Choose a CSV or XLSX file.", {"file": ["Choose a file."]})
        data = file.read(MAX_BYTES + 1)
        run = importing.upload(db(), actor(), request.form.get("kind", ""), data, file.filename)
    if refusal:
        return render_template(
            "organization/import.html",
            kinds=importing.KINDS,
            runs=importing.imports(db(), actor()),
            error=refusal.error,
        ), 422
    commit()
    return redirect(url_for("organization.mapping_page", run_id=run.id), code=303)


def _mapping_page(
    run_id: int, mapping: dict[str, str] | None = None, report: Any = None, error: DomainError | None = None
):
    run, table = importing.draft(db(), actor(), run_id)
    return render_template(
        "organization/mapping.html",
        run=run,
        headers=table.headers,
        sample=table.rows[:3],
        fields=importing.FIELDS[run.kind],
        mapping=mapping if mapping is not None else run.mapping,
        report=report,
        error=error,
        would=importing.WOULD,
    )


def _posted_mapping(run_kind: str) -> dict[str, str]:
    return {spec.name: request.form.get(f"map-{spec.name}", "") for spec in importing.FIELDS[run_kind]}


@bp.get("/import/<id:run_id>/mapping")
@login_required
def mapping_page(run_id: int) -> Any:
    return _mapping_page(run_id)


@bp.post("/import/<id:run_id>/mapping")
@login_required
def preview_or_start(run_id: int) -> Any:
    run, _ = importing.draft(db(), actor(), run_id)
    mapping = _posted_mapping(run.kind)
    if request.form.get("action") == "import":
        with refused(of_input_only=True) as refusal:
            importing.queue(db(), actor(), run_id, mapping)
        if refusal:
            return _mapping_page(run_id, mapping, error=refusal.error), 422
        commit()
        enqueue_import(run_id)
        return redirect(url_for("organization.import_progress", run_id=run_id), code=303)
    with refused(of_input_only=True) as refusal:
        _, report = importing.preview(db(), actor(), run_id, mapping)
    if refusal:
        return _mapping_page(run_id, mapping, error=refusal.error), 422
    return _mapping_page(run_id, mapping, report=report)


@bp.get("/import/<id:run_id>")
@login_required
def import_progress(run_id: int) -> Any:
    require_role(actor(), "admin")
    run = db().get(ImportRun, run_id)
    if run is None or run.organization_id != actor().organization_id:
        raise NotFound("import")
    template = "organization/_import_progress.html" if is_htmx() else "organization/import_run.html"
    return render_template(template, run=run, undo_hours=importing.UNDO_HOURS, did=importing.DID)


@bp.post("/import/<id:run_id>/undo")
@login_required
def undo_import(run_id: int) -> Any:
    with refused(of_input_only=True) as refusal:
        taken = importing.undo_import(db(), actor(), run_id)
    if refusal:
        flash(refusal.error.message)
        return redirect(url_for("organization.import_progress", run_id=run_id), code=303)
    return _back("organization.import_progress", f"Undone: {taken} records taken back.", run_id=run_id)


@bp.post("/export")
@login_required
def export() -> Response:
    """Everything the organization owns, as a zip (written to a temporary file as it is read)."""
    require_role(actor(), "admin")
    org = actor().organization
    handle = tempfile.NamedTemporaryFile(prefix="inboxcrm-export-", suffix=".zip", delete=False)
    with handle:
        counts = export_organization(db(), org, handle)
    audit_export(db(), actor(), org, counts)
    commit()

    @after_this_request
    def _remove(response: Response) -> Response:
        response.call_on_close(lambda: os.unlink(handle.name))
        return response

    return send_file(
        handle.name,
        mimetype="application/zip",
        as_attachment=True,
        download_name=f"inboxcrm-{date.today().isoformat()}.zip",
    )
