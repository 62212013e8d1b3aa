"""Commands the app registers: ``flask --app wsgi db upgrade``, ``demo-data``.

``db`` follows Flask-Migrate's spelling over plain Alembic (Flask-Migrate itself needs
Flask-SQLAlchemy, which would drag Flask into ``services/``).
"""

from __future__ import annotations

import json
import os
import smtplib
from datetime import date, datetime

import click
from alembic import command
from alembic.config import Config
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext

from addin.capture import reader as capture_reader, vault as capture_vault
from addin.database import database
from services.errors import DomainError
from addin.jobs import send_reminders_now
from addin.manifests import ManifestError, write_manifests
from addin.routes.setup import setup_code
from services.capture.sync import due_mailboxes, sync_mailbox
from services.capture.vault import rotate_secrets
from services.setup.demo import build_demo, has_data
from services.health import snapshot
from services.lexicon import reweigh
from services.models import Organization, User
from services.setup import importing
from services.setup.export import audit_export, export_organization
from services.setup.organizations import create_organization
from services.setup.people import INVITATION_DAYS
from services.setup.tables import read_table
from services.notes import score_notes
from services.privacy import after_erasure, erase_person, holders_of, remove_old_bodies
from services.rollups import rebuild_rollups
from services.sentiment import backfill
from services.types import utcnow
from sqlalchemy import or_, select

MIGRATIONS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "migrations")


def alembic_config(url: str) -> Config:
    config = Config(os.path.join(MIGRATIONS, "alembic.ini"))
    config.set_main_option("script_location", MIGRATIONS)
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


db_group = AppGroup("db", help="Database migrations (Alembic).")


@db_group.command("upgrade", help="Bring the database to a revision (default: head).")
@click.argument("revision", default="head")
def upgrade(revision: str) -> None:
    command.upgrade(alembic_config(current_app.config["SQLALCHEMY_DATABASE_URI"]), revision)


@db_group.command("downgrade", help="Step the database back to a revision.")
@click.argument("revision", default="-1")
def downgrade(revision: str) -> None:
    command.downgrade(alembic_config(current_app.config["SQLALCHEMY_DATABASE_URI"]), revision)


@db_group.command(
    "stamp", help="Record a revision as the database's without running anything (a store built another way)."
)
@click.argument("revision")
def stamp(revision: str) -> None:
    command.stamp(alembic_config(current_app.config["SQLALCHEMY_DATABASE_URI"]), revision)


@db_group.command("current", help="Show the database's revision.")
def current() -> None:
    command.current(alembic_config(current_app.config["SQLALCHEMY_DATABASE_URI"]))


@db_group.command("revision", help="Write a new migration from the models' changes.")
@click.option("-m", "--message", required=True)
def revision(message: str) -> None:
    command.revision(alembic_config(current_app.config["SQLALCHEMY_DATABASE_URI"]), message=message, autogenerate=True)


@click.command("demo-data", help="Load the demo organization into an empty database.")
@with_appcontext
@click.option("--seed", default=7, show_default=True, help="Same seed, same data.")
@click.option("--scale", default=1.0, show_default=True, help="Multiply the volume (the benchmark uses 30 and more).")
@click.option("--today", type=click.DateTime(formats=["%Y-%m-%d"]), help="Anchor day (default: today).")
@click.option("--if-empty", is_flag=True, help="Do nothing when the database already holds data.")
def demo_data(seed: int, scale: float, today: object, if_empty: bool) -> None:

    with database().sessions() as session:
        if if_empty and has_data(session):
            click.echo("The database already holds data: demo data not loaded.")
            return
        anchor = today.date() if today else date.today()  # type: ignore[attr-defined]
        try:
            summary = build_demo(session, seed=seed, scale=scale, today=anchor)
        except DomainError as error:
            raise click.ClickException(error.message) from None
        session.commit()
    click.echo(json.dumps({"organization_id": summary.organization_id, "rows": summary.counts}))


@click.command(
    "manifest", help="Write the Outlook manifests and the Gmail deployment file for the backend at BASE_URL."
)
@click.option("--base-url", required=True, help="Where this backend is served, over HTTPS.")
@click.option("--out", "out_dir", default="manifest", show_default=True, type=click.Path(file_okay=False))
@with_appcontext
def manifest(base_url: str, out_dir: str) -> None:

    try:
        written = write_manifests(
            base_url, out_dir, current_app.config["ADDIN_ID"], current_app.config["ADDIN_CLIENT_ID"]
        )
    except ManifestError as error:
        raise click.ClickException(str(error)) from None
    for path in written:
        click.echo(path)


def _organizations(session, organization: str | None, among=None):
    """The organization named by ``--org`` (its id or exact name), else every one (``among``: of
    those matching this condition)."""

    query = select(Organization).order_by(Organization.id)
    if organization is not None:
        query = query.where(
            or_(
                Organization.name == organization,
                Organization.id == (int(organization) if organization.isdigit() else -1),
            )
        )
    elif among is not None:
        query = query.where(among)
    found = session.scalars(query).all()
    if organization is not None and not found:
        raise click.ClickException(f"No organization {organization!r}.")
    return found


rollups_group = AppGroup("rollups", help="Figures kept as activities are written: daily rollups, note quality.")


@rollups_group.command(
    "rebuild", help="Recompute every organization's rollups and note scores from its activities (after an import)."
)
def rebuild() -> None:

    with database().sessions() as session:
        for organization in _organizations(session, None):
            notes = score_notes(session, organization)  # first: the rollups count flagged notes
            rows = rebuild_rollups(session, organization)
            click.echo(f"{organization.name}: {rows} rollup rows, {notes} notes scored")
        session.commit()


reminders_group = AppGroup("reminders", help="Follow-up reminders by e-mail.")


@reminders_group.command(
    "send", help="Send the follow-up reminders whose time has come (run it every few minutes from a timer)."
)
@click.option(
    "--now",
    "at",
    type=click.DateTime(formats=["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M%z"]),
    default=None,
    help="The moment to send for (ISO with offset; default: now).",
)
def send_reminders_command(at: datetime | None) -> None:

    config = current_app.config
    try:
        sent, failed = send_reminders_now(at)
    except RuntimeError as error:
        raise click.ClickException(str(error)) from None
    except (OSError, smtplib.SMTPException) as error:
        raise click.ClickException(
            f"The SMTP server at {config['SMTP_HOST']}:{config['SMTP_PORT']} did not take the reminders: {error}"
        )
    click.echo(f"{sent} reminders sent, {failed} failed")
    if failed:
        raise SystemExit(1)


privacy_group = AppGroup("privacy", help="A person's erasure; the retention of mail bodies.")


@privacy_group.command(
    "erase",
    help="Erase the person with this e-mail address: their contact, every copy of the address, and the "
    "subject and text of every activity with them (the activities stay as anonymous counts).",
)
@click.argument("address")
@click.option(
    "--org",
    "organization",
    default=None,
    help="One organization (its id or exact name); default: every one the address is in.",
)
def erase_command(address: str, organization: str | None) -> None:

    with database().sessions() as session:
        organizations = _organizations(session, organization, among=Organization.id.in_(holders_of(address)))
        total = 0
        for org in organizations:
            try:
                erasure = erase_person(session, org, address, secret=current_app.config["SECRET_KEY"])
            except DomainError as error:
                raise click.ClickException(error.message)
            total += 1
            click.echo(
                f"{org.name}: "
                + ", ".join(f"{count} {what.replace('_', ' ')}" for what, count in erasure.counts().items())
            )
        session.commit()
        after_erasure(session.get_bind())
    click.echo(
        f"Erased from {total} organization(s)."
        if total
        else "The address is in no organization's contacts, leads or mail: nothing erased."
    )


@privacy_group.command(
    "retention",
    help="Remove the bodies of mail older than each organization's body_retention_months (run it daily from a timer).",
)
@click.option(
    "--now",
    "at",
    type=click.DateTime(formats=["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M%z"]),
    default=None,
    help="The moment to count from (ISO with offset; default: now).",
)
def retention_command(at: datetime | None) -> None:

    with database().sessions() as session:
        for org in _organizations(session, None):
            removed = remove_old_bodies(session, org, at)
            if removed:
                click.echo(f"{org.name}: {removed} mail bodies removed")
        session.commit()


sentiment_group = AppGroup(
    "sentiment", help="The sentiment of what customers wrote (services.sentiment, services.lexicon)."
)


@sentiment_group.command(
    "backfill", help="Score the activities never scored (written before scoring, or straight to the store)."
)
@click.option(
    "--org", "organization", default=None, help="One organization (its id or exact name); default: every one."
)
def backfill_command(organization: str | None) -> None:

    with database().sessions() as session:
        for org in _organizations(session, organization):
            scored = backfill(session, org)
            session.commit()
            click.echo(f"{org.name}: {scored} activities scored")


@sentiment_group.command(
    "rescore",
    help="Weigh the learned words again (their evidence decays) and score every activity with text "
    "again with the organization's lexicon as it is now.",
)
@click.option(
    "--org", "organization", default=None, help="One organization (its id or exact name); default: every one."
)
def rescore_command(organization: str | None) -> None:

    with database().sessions() as session:
        for org in _organizations(session, organization):
            moved = reweigh(session, org, None)
            scored = backfill(session, org, rescore=True)
            session.commit()
            click.echo(f"{org.name}: {moved} learned words moved, {scored} activities scored again")


health_group = AppGroup("health", help="Deal health (services.health).")


@health_group.command(
    "snapshot",
    help="Keep every open deal's health for today (run it daily from a timer; run again, it replaces the day's).",
)
@click.option(
    "--now",
    "at",
    type=click.DateTime(formats=["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M%z"]),
    default=None,
    help="The moment to keep it for (ISO with offset; default: now).",
)
def snapshot_command(at: datetime | None) -> None:

    with database().sessions() as session:
        for org in _organizations(session, None):
            kept = snapshot(session, org, at)
            session.commit()
            click.echo(f"{org.name}: the health of {kept} open deals kept")


capture_group = AppGroup("capture", help="Automatic capture: connected mailboxes read by the worker.")


@capture_group.command(
    "rotate-keys", help="Encrypt every mailbox's tokens again with the newest INBOXCRM_CAPTURE_KEYS key."
)
def rotate_keys() -> None:
    with database().sessions() as session:
        rotated, unreadable = rotate_secrets(session, capture_vault())
        session.commit()
    click.echo(f"{rotated} mailbox(es) rotated; {unreadable} held a token no key opens (they must be reconnected).")


@capture_group.command("sync", help="One pass over every mailbox that is due (what the worker does each minute).")
@click.option("--mailbox", "mailbox_id", type=int, help="Only this mailbox, due or not.")
def capture_sync(mailbox_id: int | None) -> None:
    sessions = database().sessions
    with sessions() as session:
        due = [mailbox_id] if mailbox_id else due_mailboxes(session, utcnow())
    for each in due:
        result = sync_mailbox(sessions, capture_reader(), each, force=mailbox_id is not None)
        click.echo(
            f"mailbox {each}: {result.seen} read, {result.captured} captured"
            + (f"; stopped: {result.stopped}" if result.stopped else "")
        )


org_group = AppGroup("org", help="Organizations: a real team's set-up.")


def invitation_url(token: str, base_url: str | None = None) -> str:
    base = (base_url or current_app.config["BASE_URL"] or "http://127.0.0.1:5000").rstrip("/")
    return f"{base}/join/{token}"


@org_group.command(
    "create", help="Create an organization and invite its first admin: prints the admin's single-use invitation link."
)
@click.option("--name", required=True, help="The organization's name.")
@click.option("--domain", "domains", required=True, multiple=True, help="Its own mail domain (repeat for several).")
@click.option("--admin", "admin_email", required=True, help="The first admin's e-mail address.")
@click.option("--admin-name", default="", help="The first admin's name (else the address's local part).")
@click.option("--time-zone", default="UTC", show_default=True)
@click.option(
    "--fiscal-year-start", default=1, show_default=True, type=int, help="The fiscal year's first month, 1-12."
)
@click.option("--locale", default="en_US", show_default=True, help="How amounts are typed and shown (en_US, de_DE…).")
@click.option("--currency", default="USD", show_default=True)
@click.option("--base-url", default=None, help="Where the product is served (default: INBOXCRM_BASE_URL).")
def create_org_command(
    name: str,
    domains: tuple[str, ...],
    admin_email: str,
    admin_name: str,
    time_zone: str,
    fiscal_year_start: int,
    locale: str,
    currency: str,
    base_url: str | None,
) -> None:
    data = {
        "name": name,
        "domains": list(domains),
        "time_zone": time_zone,
        "fiscal_year_start_month": fiscal_year_start,
        "locale": locale,
        "currency": currency,
    }
    with database().sessions() as session:
        try:
            founded = create_organization(session, data, admin_email, admin_name)
        except DomainError as error:
            more = [
                f"{field}: {text}" for field, texts in error.errors.items() for text in texts if text != error.message
            ]
            raise click.ClickException(" ".join([error.message, *more])) from None
        session.commit()
        click.echo(f"Created {founded.organization.name} (id {founded.organization.id}).")
        click.echo(f"The admin's invitation, single-use, valid {INVITATION_DAYS} days:")
        click.echo(f"  {invitation_url(founded.invitation_token, base_url)}")


@org_group.command("setup-code", help="The code the first-run page asks for (it derives from the secret key).")
def setup_code_command() -> None:
    click.echo(setup_code())


@click.command("import", help="Import a CSV or XLSX of accounts, contacts, deals, activities or leads.")
@with_appcontext
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--org", "organization", required=True, help="The organization (its id or exact name).")
@click.option("--kind", required=True, type=click.Choice(importing.KINDS))
@click.option("--mapping", "mapping_file", type=click.File(), help="A JSON file: our field → the file's column.")
@click.option(
    "--as", "as_email", default=None, help="Whose import it is (an admin's e-mail; default: the first admin)."
)
@click.option("--dry-run", is_flag=True, help="Say what each row would do; write nothing.")
@click.option("--quiet", is_flag=True, help="Print the summary only, not each row.")
def import_command(
    path: str, organization: str, kind: str, mapping_file, as_email: str | None, dry_run: bool, quiet: bool
) -> None:
    with open(path, "rb") as handle:
        data = handle.read()
    with database().sessions() as session:
        org = _organizations(session, organization)[0]
        actor = _admin(session, org, as_email)
        try:
            mapping = json.load(mapping_file) if mapping_file else None
            if mapping is not None and not isinstance(mapping, dict):
                raise click.ClickException("The mapping file holds a JSON object: our field → the file's column.")
            if dry_run:
                report, mapping, _ = importing.dry_run(session, actor, kind, data, os.path.basename(path), mapping)
                _print_outcomes(report, quiet)
                click.echo(report.summary(dry_run=True))
                return
            table = read_table(data, os.path.basename(path))
            mapping = importing.check_mapping(
                kind, table.headers, mapping or importing.mapping_for(session, org.id, kind, table.headers)
            )
            run = importing.start_import(session, actor, kind, data, os.path.basename(path), mapping)
            session.commit()
        except DomainError as error:
            raise click.ClickException(error.message) from None
        run_id = run.id
    run = importing.continue_import(database().sessions, run_id)
    refused = (run.counts or {}).get("refused_lines", [])
    if not quiet:
        for line, reason in refused:
            click.echo(f"line {line}: refused: {reason}")
    counts = {k: v for k, v in (run.counts or {}).items() if k != "refused_lines"}
    click.echo(importing.Report([], counts, run.rows_total).summary(dry_run=False) + f" (import {run.id})")


def _print_outcomes(report, quiet: bool) -> None:
    if quiet:
        return
    for outcome in report.outcomes:
        why = f": {outcome.reason}" if outcome.reason else ""
        click.echo(f"line {outcome.line}: {importing.WOULD[outcome.action]} {outcome.label}{why}".rstrip())


def _admin(session, org: Organization, as_email: str | None) -> User:
    query = select(User).where(User.organization_id == org.id, User.role == "admin", User.is_active)
    if as_email:
        query = query.where(User.email == as_email.strip().lower())
    admin = session.scalars(query.order_by(User.id)).first()
    if admin is None:
        raise click.ClickException(f"{org.name} has no active admin{' ' + as_email if as_email else ''}.")
    return admin


@click.command("export", help="Export everything an organization owns: a zip of one CSV per object, and JSON.")
@with_appcontext
@click.option("--org", "organization", required=True, help="The organization (its id or exact name).")
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False, writable=True))
def export_command(organization: str, out_path: str) -> None:
    with database().sessions() as session:
        org = _organizations(session, organization)[0]
        with open(out_path, "wb") as out:
            counts = export_organization(session, org, out)
        audit_export(session, None, org, counts)
        session.commit()
    click.echo(f"{org.name}: " + ", ".join(f"{n} {name}" for name, n in counts.items()) + f" → {out_path}")


def init_app(app: Flask) -> None:
    app.cli.add_command(org_group)
    app.cli.add_command(capture_group)
    app.cli.add_command(import_command)
    app.cli.add_command(export_command)
    app.cli.add_command(health_group)
    app.cli.add_command(sentiment_group)
    app.cli.add_command(privacy_group)
    app.cli.add_command(reminders_group)
    app.cli.add_command(rollups_group)
    app.cli.add_command(db_group)
    app.cli.add_command(demo_data)
    app.cli.add_command(manifest)
