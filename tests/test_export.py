"""Leaving, and coming back: what the export gives imports into an empty organization, in a
store of its own, with the same figures; and an invitation mailed through the SMTP server the
reminders use."""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import date, timedelta
from decimal import Decimal


from services.db import make_engine, make_session_factory
from services.deals import move_stage
from services.mail.activities import log_activity
from services.models import Base, Organization, Stage, Team, User
from services.periods import Period
from services.reports import activity_summary, deal_outcomes, pipeline, report_scope
from services.setup import importing
from services.setup.export import export_organization
from services.setup.people import accept_new_user
from tests.factories import NOW, World
from tests.test_reminders import smtp_server  # noqa: F401 - the SMTP server on loopback, a fixture

PERIOD = Period(date(2026, 10, 1), date(2026, 12, 1))


def figures(session, admin: User) -> dict[str, object]:
    scope = report_scope(session, admin, PERIOD, today=NOW.date(), now=NOW)
    outcomes = deal_outcomes(scope)
    return {
        "activity": {row.name: (row.total, row.attempts, row.contacts) for row in activity_summary(scope) if row.total},
        "outcomes": (outcomes.won, outcomes.lost, outcomes.won_amount, outcomes.lost_by_reason),
        "pipeline": {row.name: (row.count, row.amount) for row in pipeline(scope) if row.count},
    }


def test_what_the_export_gives_imports_into_an_empty_organization_with_the_same_figures(
    session, world: World, tmp_path
):
    days = [NOW - timedelta(days=n, hours=n % 5) for n in range(0, 50, 3)]
    for n, when in enumerate(days):
        who = (world.rep, world.teammate, world.west_rep)[n % 3]
        log_activity(
            session,
            who,
            {
                "type": ("call", "email", "meeting")[n % 3],
                "direction": ("outbound", "inbound")[n % 2],
                "outcome": "connected" if n % 3 == 0 else None,
                "occurred_at": when.isoformat(),
                "contact_id": world.contact.id,
                "body_text": f"Note {n}",
                "external_id": f"<m{n}@acme.test>" if n % 3 == 1 else None,
            },
        )
    session.commit()
    move_stage(
        session, world.rep, world.deal.id, {"stage": "won", "final_amount": "31000"}, now=NOW - timedelta(days=5)
    )
    session.commit()
    before = figures(session, world.admin)
    out = io.BytesIO()
    export_organization(session, world.org, out)
    archive = zipfile.ZipFile(out)

    # An empty organization in a store of its own: its people and stages made from the export.
    engine = make_engine(f"sqlite:///{tmp_path / 'elsewhere.db'}")
    Base.metadata.create_all(engine)
    with make_session_factory(engine)() as there:
        org = Organization(
            name="Northwind again",
            time_zone=world.org.time_zone,
            currency=world.org.currency,
            domains=["northwind.test"],
            settings={},
        )
        there.add(org)
        there.flush()
        teams = {}
        for row in csv.DictReader(io.StringIO(archive.read("teams.csv").decode())):
            teams[row["name"]] = Team(organization_id=org.id, name=row["name"])
            there.add(teams[row["name"]])
        for row in csv.DictReader(io.StringIO(archive.read("stages.csv").decode())):
            there.add(
                Stage(
                    organization_id=org.id,
                    name=row["name"],
                    position=int(row["position"]),
                    probability=Decimal(row["probability"]),
                    sla_days=int(row["sla_days"]) if row["sla_days"] else None,
                )
            )
        there.flush()
        admin = None
        for row in csv.DictReader(io.StringIO(archive.read("people.csv").decode())):
            team = teams[row["team"]].id if row["team"] else None
            user = accept_new_user(there, org, row["email"], row["name"], row["role"], team, None, NOW)
            admin = user if row["role"] == "admin" else admin
        there.commit()
        for kind in ("accounts", "contacts", "deals", "activities", "leads"):
            data = archive.read(f"{kind}.csv")
            if len(data.decode().splitlines()) < 2:
                continue  # nothing of this kind (the import refuses a file of headers alone)
            report, mapping, _ = importing.dry_run(there, admin, kind, data, f"{kind}.csv", None)
            assert report.counts.get("refuse", 0) == 0, (kind, [o for o in report.outcomes if o.action == "refuse"][:3])
            run = importing.start_import(there, admin, kind, data, f"{kind}.csv", mapping)
            there.commit()
            assert importing.continue_import(make_session_factory(engine), run.id).status == "done"
        there.expire_all()
        after = figures(there, there.get(User, admin.id))
    assert after == before
    assert before["activity"] and before["outcomes"][0] == 1
    engine.dispose()


def test_an_invitation_goes_through_the_reminders_smtp_server(app, app_world: World, auth, smtp_server):
    controller, received = smtp_server
    app.config.update(
        SMTP_HOST="127.0.0.1", SMTP_PORT=controller.port, SMTP_STARTTLS=False, MAIL_FROM="crm@northwind.test"
    )
    auth.login(app_world.admin.email)
    answer = auth.post(
        "/admin/people/invite", {"email": "nina@northwind.test", "name": "Nina", "role": "rep"}, htmx=False
    )
    assert answer.status_code == 303
    ((recipients, message),) = received.messages
    assert recipients == ["nina@northwind.test"] and "Join Northwind" in message["Subject"]
    link = next(line.strip() for line in message.get_payload(decode=True).decode().splitlines() if "/join/" in line)
    assert auth.get("/" + link.split("://", 1)[1].split("/", 1)[1], htmx=False).status_code == 200
    # The server down: the link is shown to the admin instead, nothing lost.
    app.config["SMTP_PORT"] = 1
    shown = auth.post("/admin/people/invite", {"email": "omar@northwind.test"}, htmx=False)
    assert shown.status_code == 201 and "/join/" in shown.get_data(as_text=True)


def test_an_invitation_made_through_the_api_is_mailed_once_committed(app, app_world: World, smtp_server):
    from tests.helpers import Client, token  # noqa: PLC0415

    controller, received = smtp_server
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=controller.port, SMTP_STARTTLS=False)
    api = Client(app, token(app, app_world))
    answer = api.write("POST", "/invitations", {"email": "pia@northwind.test", "role": "rep"})
    assert answer.status_code == 201 and "link" not in answer.get_json()
    ((recipients, message),) = received.messages
    assert recipients == ["pia@northwind.test"] and "/join/" in message.get_payload(decode=True).decode()
    again = api.write("POST", "/invitations", {"email": "pia@northwind.test", "role": "rep"}, key="k1")
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert len(received.messages) == 1  # a retried request mails nothing new
