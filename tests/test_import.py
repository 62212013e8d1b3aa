"""The move from a spreadsheet or another CRM: files shaped like HubSpot's and Pipedrive's exports
(made here), imported, and every figure checked against a count of the files' own rows; the same
files again change nothing; bad files are refused whole; a stopped import resumes; an import is
undone. On both back ends."""

from __future__ import annotations

import csv
import io
from collections import Counter
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from services.errors import DomainError
from services.models import Account, Activity, BlockEntry, Contact, ImportRun, Lead, Opportunity, Tombstone, User
from services.periods import Period
from services.reports import activity_summary, deal_outcomes, pipeline, report_scope
from services.setup import importing
from services.setup.tables import MAX_BYTES, MAX_ROWS, read_table
from tests.factories import World
from services.types import utcnow
from tests.helpers import latest_snapshot, rollup_snapshot

TODAY = date(2026, 11, 20)
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)


def as_csv(rows: list[list[str]], delimiter: str = ",") -> str:
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter).writerows(rows)
    return out.getvalue()


def run(session, sessions, actor: User, kind: str, data: bytes, name: str) -> ImportRun:
    """An import as the page makes it: the file mapped by its recognised columns, queued, and the
    worker's part run."""
    report, mapping, _ = importing.dry_run(session, actor, kind, data, name, None)
    queued = importing.start_import(session, actor, kind, data, name, mapping)
    session.commit()
    done = importing.continue_import(sessions, queued.id)
    session.expire_all()
    return done


# -- HubSpot ---------------------------------------------------------------------------------------------


def hubspot_files(world: World) -> dict[str, list[list[str]]]:
    """Files with HubSpot's export columns: owners by name, companies by domain, deals by Record ID."""
    rep, teammate = world.rep.name, world.teammate.name
    companies = [
        ["Record ID", "Company name", "Company Domain Name", "City", "Company owner", "Create Date"],
        ["101", "Blue Steel", "bluesteel.example", "Pittsburgh", rep, "2026-01-05"],
        ["102", "Granite Pharma", "granite.example", "Boston", teammate, "2026-02-05"],
        ["103", "Acme Freight", "acme.test", "Denver", rep, "2026-02-05"],  # ours already: matched by domain
        ["104", "Blue Steel Inc", "bluesteel.example", "", rep, "2026-01-05"],  # the same domain: merged
    ]
    contacts = [
        [
            "Record ID",
            "First Name",
            "Last Name",
            "Email",
            "Phone Number",
            "Job Title",
            "Contact owner",
            "Associated Company",
        ],
        ["201", "Yusuf", "Tanaka", "yusuf@bluesteel.example", "+1 412 555 0101", "Buyer", rep, "Blue Steel"],
        ["202", "Pablo", "Olsen", "PABLO@granite.example", "", "Logistics lead", teammate, "Granite Pharma"],
        ["203", "Ann", "Buyer", "ann@acme.test", "", "", rep, "Acme Freight"],  # ours already
        ["204", "No", "Address", "not-an-address", "", "", rep, ""],
        ["205", "Who", "Knows", "who@granite.example", "", "", "Nobody Known", ""],
    ]
    deals = [
        [
            "Record ID",
            "Deal Name",
            "Deal Stage",
            "Amount",
            "Close Date",
            "Deal owner",
            "Associated Company",
            "Create Date",
            "Closed Lost Reason",
        ],
        ["301", "Coil transport", "Proposal", "40000", "2026-12-15", rep, "Blue Steel", "2026-10-01 09:00", ""],
        [
            "302",
            "Cold chain",
            "Closed Won",
            "25000.50",
            "2026-11-10",
            teammate,
            "Granite Pharma",
            "2026-09-01 09:00",
            "",
        ],
        ["303", "Trial run", "Closed Lost", "5000", "2026-11-12", rep, "Blue Steel", "2026-09-15 09:00", "Price"],
        ["304", "Pallets", "Negotiation", "1,200.00", "2026-12-20", teammate, "Granite Pharma", "2026-10-20 09:00", ""],
        ["305", "Mystery", "Signed in blood", "100", "", rep, "Blue Steel", "", ""],
        ["306", "Lots", "Proposal", "ten thousand", "", rep, "Blue Steel", "", ""],
        ["307", "Unknown firm", "Proposal", "100", "", rep, "Nowhere Ltd", "", ""],
    ]
    activities = [
        [
            "Activity ID",
            "Activity date",
            "Activity type",
            "Call direction",
            "Subject",
            "Notes",
            "Contact email",
            "Activity owner",
        ],
        ["401", "2026-11-02 10:00", "Call", "Outgoing", "Intro", "Truck size: 40 ft", "yusuf@bluesteel.example", rep],
        [
            "402",
            "2026-11-03 15:30",
            "Email",
            "Incoming",
            "Re: rates",
            "Thanks, looks good",
            "pablo@granite.example",
            teammate,
        ],
        [
            "403",
            "2026-11-04 09:00",
            "Meeting",
            "",
            "Site visit",
            "Went well\nwith two lines",
            "yusuf@bluesteel.example",
            rep,
        ],
        ["404", "2026-10-15 11:00", "Call", "Outgoing", "Follow-up", "", "", teammate],
        ["405", "2026-11-05 11:00", "Email", "Outgoing", "Internal", "", "mia@northwind.test", rep],  # internal mail
        ["406", "2026-11-05 12:00", "Carrier pigeon", "", "", "", "", rep],
        ["407", "1850-01-01", "Call", "", "", "", "", rep],
        ["408", "2026-11-06 12:00", "Call", "", '=HYPERLINK("http://evil.example","x")', "", "", rep],
        [
            "401",
            "2026-11-02 10:00",
            "Call",
            "Outgoing",
            "Intro",
            "Truck size: 40 ft",
            "yusuf@bluesteel.example",
            rep,
        ],  # twice
    ]
    return {"accounts": companies, "contacts": contacts, "deals": deals, "activities": activities}


def _period_counts(rows: list[list[str]], start: date, end: date, zone: str) -> Counter:
    """The independent count: activities per owner name in [start, end) local, from the file."""
    header, *body = rows
    at = {name: header.index(name) for name in header}
    counted: Counter = Counter()
    seen: set[str] = set()
    for row in body:
        kind = row[at["Activity type"]].lower()
        if kind not in ("call", "email", "meeting") or row[at["Activity ID"]] in seen:
            continue
        if "=" in row[at["Subject"]][:1] or "northwind.test" in row[at["Contact email"]]:
            continue
        seen.add(row[at["Activity ID"]])
        when = datetime.fromisoformat(row[at["Activity date"]]).replace(tzinfo=ZoneInfo(zone))
        if start <= when.date() < end:
            counted[row[at["Activity owner"]]] += 1
    return counted


def test_a_hubspot_export_is_imported_and_every_figure_matches_the_files_rows(session, sessions, world: World):
    files = hubspot_files(world)
    reports = {}
    for kind in ("accounts", "contacts", "deals", "activities"):
        reports[kind] = run(session, sessions, world.admin, kind, as_csv(files[kind]).encode(), f"hubspot-{kind}.csv")
        assert reports[kind].status == "done", reports[kind].message
    counts = {kind: {k: v for k, v in r.counts.items() if k != "refused_lines"} for kind, r in reports.items()}
    assert counts["accounts"] == {"create": 2, "update": 1, "merge": 1}  # Acme gets its city
    assert counts["contacts"] == {"create": 2, "unchanged": 1, "refuse": 2}
    assert counts["deals"] == {"create": 4, "refuse": 3}
    assert counts["activities"] == {"create": 4, "merge": 1, "refuse": 4}
    refused = dict((line, reason) for line, reason in reports["deals"].counts["refused_lines"])
    assert "unknown stage" in refused[6] and "not a number" in refused[7] and "unknown account" in refused[8]
    refused = dict((line, reason) for line, reason in reports["activities"].counts["refused_lines"])
    assert "internal mail" in refused[6] and "unknown activity type" in refused[7]
    assert "out of range" in refused[8] and "formula" in refused[9]

    # Figures against the files' own rows.
    zone = world.org.time_zone
    november = Period(date(2026, 11, 1), date(2026, 12, 1))
    scope = report_scope(session, world.admin, november, today=TODAY, now=NOW)
    shown = {row.name: row.total for row in activity_summary(scope) if row.total}
    assert shown == dict(_period_counts(files["activities"], november.start, november.end, zone))
    outcomes = deal_outcomes(scope)
    assert (outcomes.won, outcomes.lost, outcomes.won_amount) == (1, 1, Decimal("25000.50"))
    assert outcomes.lost_by_reason == {"Price": (1, Decimal("5000.00"))}
    stages = {row.name: (row.count, row.amount) for row in pipeline(scope)}
    # The world's own open deal (25,000 in Qualify) beside the two imported open ones.
    assert stages["Proposal"] == (1, Decimal("40000.00")) and stages["Negotiation"] == (1, Decimal("1200.00"))
    assert stages["Qualify"] == (1, Decimal("25000.00"))
    yusuf = session.scalar(select(Contact).join(Contact.emails).where(Contact.name == "Yusuf Tanaka"))
    assert yusuf.account.name == "Blue Steel" and [p.number for p in yusuf.phones] == ["+1 412 555 0101"]
    meeting = session.scalar(select(Activity).where(Activity.subject == "Site visit"))
    assert (
        meeting.body_text == "Went well\nwith two lines"
        and meeting.source == "import"
        and meeting.contact_id == yusuf.id
    )
    call = session.scalar(select(Activity).where(Activity.external_id == "import:401"))
    assert call.checklist_questions == 2 and call.checklist_answered == 1  # scored as a logged note is

    # The same files again change nothing: no row, no rollup, no latest time.
    rollups, latest = rollup_snapshot(session, world.org.id), latest_snapshot(session, world.org.id)
    tables = {
        model: session.scalar(select(func.count()).select_from(model))
        for model in (Account, Contact, Opportunity, Activity)
    }
    for kind in ("accounts", "contacts", "deals", "activities"):
        again = run(session, sessions, world.admin, kind, as_csv(files[kind]).encode(), f"hubspot-{kind}.csv")
        assert set(again.counts) - {"refused_lines"} <= {"unchanged", "refuse", "merge"}, (kind, again.counts)
    assert {model: session.scalar(select(func.count()).select_from(model)) for model in tables} == tables
    assert rollup_snapshot(session, world.org.id) == rollups and latest_snapshot(session, world.org.id) == latest


# -- Pipedrive ----------------------------------------------------------------------------------------


def test_a_pipedrive_export_in_a_german_organization_is_read_as_it_is_written(session, sessions, world: World):
    """Semicolons, a BOM, day-first dates, "1.234,50" amounts, a quoted newline; owners by name."""
    world.org.settings = {"locale": "de_DE"}
    session.commit()
    rep = world.rep.name
    organizations = [["Organization - Name", "Organization - Owner"], ["Nordkabel GmbH", rep]]
    persons = [
        ["Person - Name", "Person - Email", "Person - Organization", "Person - Owner"],
        ["Jörg Müller", "joerg@nordkabel.example", "Nordkabel GmbH", rep],
    ]
    deals = [
        [
            "Deal - ID",
            "Deal - Title",
            "Deal - Value",
            "Deal - Stage",
            "Deal - Status",
            "Deal - Owner",
            "Deal - Organization",
            "Deal - Expected close date",
            "Deal - Deal created",
        ],
        ["17", "Kabeltrommeln", "12.500,50", "Proposal", "open", rep, "Nordkabel GmbH", "15.12.2026", "01.10.2026"],
        ["18", "Altvertrag", "1.000", "Proposal", "won", rep, "Nordkabel GmbH", "05.11.2026", "01.09.2026"],
    ]
    activities = [
        [
            "Activity - ID",
            "Activity - Type",
            "Activity - Subject",
            "Activity - Due date",
            "Activity - Note",
            "Activity - Assigned to user",
            "Activity - Deal ID",
            "Person - Email",
        ],
        ["9", "call", "Erstgespräch", "03.11.2026", "Zeile eins\nZeile zwei", rep, "17", "joerg@nordkabel.example"],
    ]
    encode = lambda rows: "\ufeff".encode() + as_csv(rows, ";").encode()  # noqa: E731
    for kind, rows in (
        ("accounts", organizations),
        ("contacts", persons),
        ("deals", deals),
        ("activities", activities),
    ):
        done = run(session, sessions, world.admin, kind, encode(rows), f"pipedrive-{kind}.csv")
        assert done.counts.get("create") == len(rows) - 1, (kind, done.counts)
    deal = session.scalar(select(Opportunity).where(Opportunity.external_id == "17"))
    assert (deal.amount, deal.expected_close_date, deal.account.name) == (
        Decimal("12500.50"),
        date(2026, 12, 15),
        "Nordkabel GmbH",
    )
    won = session.scalar(select(Opportunity).where(Opportunity.external_id == "18"))
    assert won.status == "won" and won.closed_at is not None
    call = session.scalar(select(Activity).where(Activity.external_id == "import:9"))
    assert (
        call.opportunity_id == deal.id
        and call.account_id == deal.account_id
        and call.body_text == "Zeile eins\nZeile zwei"
    )
    assert deal.last_activity_at is not None  # the latest times of what it touched


# -- privacy on the way in ------------------------------------------------------------------------------


def test_block_lists_and_retention_apply_to_imported_activities(session, sessions, world: World):
    session.add(BlockEntry(organization_id=world.org.id, kind="domain", value="spam.example"))
    session.add(
        BlockEntry(organization_id=world.org.id, kind="address", value="private@acme.test", owner_id=world.rep.id)
    )
    world.org.settings = {"body_retention_months": 6}
    session.commit()
    rows = [
        ["External id", "Type", "Date", "Direction", "Notes", "Contact e-mail", "Owner"],
        ["1", "email", "2026-11-01", "inbound", "hi", "x@news.spam.example", world.rep.email],
        ["2", "email", "2026-11-01", "inbound", "hi", "private@acme.test", world.rep.email],
        ["3", "email", "2026-11-01", "inbound", "hi", "private@acme.test", world.teammate.email],  # not on Tom's list
        ["4", "call", "2025-01-01", "outbound", "an old note", "ann@acme.test", world.rep.email],
    ]
    done = run(session, sessions, world.admin, "activities", as_csv(rows).encode(), "history.csv")
    refused = dict((line, reason) for line, reason in done.counts["refused_lines"])
    assert set(refused) == {2, 3} and all("block list" in reason for reason in refused.values())
    old = session.scalar(select(Activity).where(Activity.external_id == "import:4"))
    assert old.body_text is None  # older than the retention: the body is not kept


# -- bad files --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "said"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 8, "not text"),
        (b"", "empty"),
        (b"name,domain\n", "no rows"),
        (b"PK\x03\x04 not really a zip", "cannot be opened"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, ".xls"),
    ],
)
def test_a_bad_file_is_refused_whole_with_a_clear_message(session, world: World, data, said):
    with pytest.raises(DomainError) as refused:
        importing.upload(session, world.admin, "accounts", data, "file.csv")
    assert said in refused.value.message
    session.rollback()
    assert session.scalar(select(func.count()).select_from(ImportRun)) == 0


def test_too_big_and_too_long_files_are_refused_before_anything_is_written(session, world: World):
    with pytest.raises(DomainError) as refused:
        read_table(b"a" * (MAX_BYTES + 1), "big.csv")
    assert "MB" in refused.value.message
    with pytest.raises(DomainError) as refused:
        read_table(("name\n" + "x\n" * (MAX_ROWS + 1)).encode(), "long.csv")
    assert "rows" in refused.value.message and "split" in refused.value.message


def test_encodings_delimiters_and_xlsx_read_alike(world: World):
    openpyxl = pytest.importorskip("openpyxl")
    rows = [["Name", "City"], ["Société Générale", "Paris; La Défense"], ["Ørsted", "København"]]
    expected = [["Société Générale", "Paris; La Défense"], ["Ørsted", "København"]]
    for data in (
        as_csv(rows).encode("utf-8"),
        "\ufeff".encode() + as_csv(rows).encode(),
        as_csv(rows, ";").encode("cp1252"),
        as_csv(rows, "\t").encode("utf-16"),
    ):
        table = read_table(data, "file.csv")
        assert (table.headers, table.rows) == (["Name", "City"], expected), data[:20]
    book = openpyxl.Workbook()
    for row in rows + [['=HYPERLINK("http://evil.example")', "x"]]:
        book.active.append(row)
    out = io.BytesIO()
    book.save(out)
    table = read_table(out.getvalue(), "file.xlsx")
    assert table.rows[:2] == expected and table.rows[2][0].startswith("=HYPERLINK")


def test_a_mapping_missing_a_needed_field_is_refused_and_a_saved_one_is_reused(session, world: World):
    data = as_csv([["Firm", "Web"], ["Blue Steel", "bluesteel.example"]]).encode()
    with pytest.raises(DomainError):
        importing.dry_run(session, world.admin, "accounts", data, "f.csv", None)
    with pytest.raises(DomainError):
        importing.dry_run(session, world.admin, "accounts", data, "f.csv", {"name": "Nope"})
    report, mapping, _ = importing.dry_run(
        session, world.admin, "accounts", data, "f.csv", {"name": "Firm", "domain": "Web"}
    )
    assert report.counts == {"create": 1}
    assert (
        session.scalar(select(func.count()).select_from(Account).where(Account.name == "Blue Steel")) == 0
    )  # a dry run
    importing.start_import(session, world.admin, "accounts", data, "f.csv", mapping)
    session.commit()
    assert importing.mapping_for(session, world.org.id, "accounts", ["Firm", "Web"]) == {
        "name": "Firm",
        "domain": "Web",
    }
    with pytest.raises(DomainError):
        importing.dry_run(session, world.manager, "accounts", data, "f.csv", mapping)


# -- the worker: a restart, an undo ------------------------------------------------------------------------


def test_an_import_stopped_midway_resumes_without_duplicates(session, sessions, world: World, monkeypatch):
    rows = [["External id", "Type", "Date", "Owner"]] + [
        [str(n), "call", (NOW - timedelta(minutes=n)).isoformat(), world.rep.email]
        for n in range(importing.CHUNK + 500)
    ]
    data = as_csv(rows).encode()
    queued = importing.start_import(
        session,
        world.admin,
        "activities",
        data,
        "calls.csv",
        {"external_id": "External id", "type": "Type", "occurred_at": "Date", "owner": "Owner"},
    )
    session.commit()
    write = importing.Importer.write
    calls = {"n": 0}

    def dies_on_the_second_chunk(self, pending):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("the worker was killed")
        return write(self, pending)

    monkeypatch.setattr(importing.Importer, "write", dies_on_the_second_chunk)
    with pytest.raises(RuntimeError):
        importing.continue_import(sessions, queued.id)
    monkeypatch.setattr(importing.Importer, "write", write)
    session.expire_all()
    stopped = session.get(ImportRun, queued.id)
    assert (stopped.status, stopped.rows_done) == ("running", importing.CHUNK)
    session.commit()  # SQLite: this session's transaction would hold the writers' lock
    assert (
        importing.continue_import(sessions, queued.id).status == "running"
    )  # another worker is at it (its beat is recent)
    assert (
        importing.waiting_runs(session, NOW + timedelta(days=1)) == [queued.id] or importing.waiting_runs(session) == []
    )
    stopped.beat_at = stopped.beat_at - importing.STALE - timedelta(seconds=1)
    session.commit()
    assert importing.waiting_runs(session) == [queued.id]
    session.commit()
    done = importing.continue_import(sessions, queued.id)
    assert done.status == "done" and done.counts["create"] == len(rows) - 1 and done.content is None
    assert (
        session.scalar(select(func.count()).select_from(Activity).where(Activity.source == "import")) == len(rows) - 1
    )
    # Its rollups are what a rebuild from nothing counts.
    kept = rollup_snapshot(session, world.org.id)
    from services.rollups import rebuild_rollups  # noqa: PLC0415

    rebuild_rollups(session, world.org)
    assert rollup_snapshot(session, world.org.id) == kept


def test_a_whole_import_is_undone_within_a_day(session, sessions, world: World):
    files = hubspot_files(world)
    run(session, sessions, world.admin, "accounts", as_csv(files["accounts"]).encode(), "a.csv")
    contacts = run(session, sessions, world.admin, "contacts", as_csv(files["contacts"]).encode(), "c.csv")
    rollups = rollup_snapshot(session, world.org.id)
    activities = run(session, sessions, world.admin, "activities", as_csv(files["activities"][:4]).encode(), "h.csv")
    assert activities.counts["create"] == 3
    with pytest.raises(DomainError):
        importing.undo_import(session, world.manager, activities.id)
    taken = importing.undo_import(session, world.admin, activities.id)
    session.commit()
    assert taken == 3
    assert session.scalar(select(func.count()).select_from(Activity).where(Activity.source == "import")) == 0
    assert rollup_snapshot(session, world.org.id) == rollups
    assert session.scalar(select(func.count()).select_from(Tombstone).where(Tombstone.record_type == "activities")) == 3
    with pytest.raises(DomainError):  # once
        importing.undo_import(session, world.admin, activities.id)
    session.rollback()
    with pytest.raises(DomainError):  # a day on
        importing.undo_import(session, world.admin, contacts.id, now=NOW + timedelta(days=30))
    session.rollback()
    importing.undo_import(session, world.admin, contacts.id)
    session.commit()
    assert session.scalar(select(func.count()).select_from(Contact).where(Contact.name == "Yusuf Tanaka")) == 0
    assert session.scalar(select(func.count()).select_from(Lead)) == 0


# -- the command ----------------------------------------------------------------------------------------


def test_the_import_command_says_what_each_row_does_and_a_summary(app, app_world: World, tmp_path):
    path = tmp_path / "companies.csv"
    path.write_text(as_csv(hubspot_files(app_world)["accounts"]))
    runner = app.test_cli_runner()
    dry = runner.invoke(args=["import", str(path), "--org", "Northwind", "--kind", "accounts", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "line 2: to create Blue Steel" in dry.output and "line 5: to merge" in dry.output
    assert dry.output.strip().endswith("4 rows: 2 to create, 1 to update, 1 to merge, 0 unchanged, 0 refused")
    done = runner.invoke(args=["import", str(path), "--org", "Northwind", "--kind", "accounts"])
    assert done.exit_code == 0 and "4 rows: 2 created, 1 updated, 1 merged, 0 unchanged, 0 refused" in done.output
    again = runner.invoke(args=["import", str(path), "--org", "Northwind", "--kind", "accounts", "--quiet"])
    assert "0 created, 0 updated, 1 merged, 3 unchanged" in again.output
    bad = runner.invoke(args=["import", str(path), "--org", "Nobody", "--kind", "accounts"])
    assert bad.exit_code != 0 and "No organization" in bad.output
    out = tmp_path / "everything.zip"
    export = runner.invoke(args=["export", "--org", "Northwind", "--out", str(out)])
    assert export.exit_code == 0 and out.stat().st_size > 0 and "4 accounts" in export.output


def test_the_daily_job_forgets_drafts_and_what_an_old_import_kept_for_its_undo(session, sessions, world: World):
    from services.models import ImportChange  # noqa: PLC0415

    data = as_csv(hubspot_files(world)["accounts"]).encode()
    draft_id = importing.upload(session, world.admin, "accounts", data, "a.csv").id
    session.commit()
    done = run(session, sessions, world.admin, "accounts", data, "b.csv")
    assert session.scalar(select(func.count()).select_from(ImportChange).where(ImportChange.import_id == done.id))
    assert importing.forget_old_imports(session, utcnow() + timedelta(hours=1)) == 0
    assert importing.forget_old_imports(session, utcnow() + timedelta(days=2)) == 1
    session.commit()
    session.expire_all()
    assert session.get(ImportRun, draft_id) is None
    assert not session.scalar(select(func.count()).select_from(ImportChange).where(ImportChange.import_id == done.id))
    with pytest.raises(DomainError):
        importing.undo_import(session, world.admin, done.id, now=utcnow() + timedelta(days=2))


def test_salesforce_columns_are_recognised_and_leads_come_in(session, sessions, world: World):
    accounts = [
        ["Account Name", "Website", "Billing City", "Account Owner"],
        ["Blue Steel", "https://www.bluesteel.example/", "Pittsburgh", world.rep.name],
    ]
    assert importing.detect_mapping("accounts", accounts[0]) == {
        "name": "Account Name",
        "domain": "Website",
        "city": "Billing City",
        "owner": "Account Owner",
    }
    deals = ["Opportunity ID", "Opportunity Name", "Account Name", "Amount", "Stage", "Close Date", "Opportunity Owner"]
    assert set(importing.detect_mapping("deals", deals)) == {
        "external_id",
        "name",
        "account",
        "amount",
        "stage",
        "close_date",
        "owner",
    }
    done = run(session, sessions, world.admin, "accounts", as_csv(accounts).encode(), "sf.csv")
    assert done.counts["create"] == 1
    assert session.scalar(select(Account).where(Account.name == "Blue Steel")).domains[0].domain == "bluesteel.example"
    leads = [
        ["Email", "First Name", "Last Name", "Company", "Lead Source", "Lead Status", "Lead Owner"],
        ["kim@prospect.example", "Kim", "Lee", "Prospect Co", "Web form", "Working", world.rep.email],
        ["", "No", "Mail", "", "Trade show", "", ""],
        ["kim@prospect.example", "Kim", "Lee", "", "", "", ""],
        ["bad", "", "", "", "", "", ""],
        ["x@prospect.example", "", "", "", "", "Lost in space", ""],
    ]
    done = run(session, sessions, world.admin, "leads", as_csv(leads).encode(), "leads.csv")
    assert {k: v for k, v in done.counts.items() if k != "refused_lines"} == {"create": 2, "merge": 1, "refuse": 2}
    kim = session.scalar(select(Lead).where(Lead.email == "kim@prospect.example"))
    assert (kim.name, kim.source, kim.status, kim.owner_id) == ("Kim Lee", "web_form", "working", world.rep.id)
    again = run(session, sessions, world.admin, "leads", as_csv(leads).encode(), "leads.csv")
    assert again.counts.get("create", 0) == 1  # the lead without an address is matched by nothing


def test_the_import_pages_map_preview_queue_and_show_progress(app, app_world: World, auth, monkeypatch):
    from addin.routes import organization  # noqa: PLC0415

    queued: list[int] = []
    monkeypatch.setattr(organization, "enqueue_import", queued.append)
    auth.login(app_world.admin.email)
    data = as_csv([["Firm", "Web"], ["Blue Steel", "bluesteel.example"], ["=cmd|' /C calc'!A0", "x.example"]]).encode()
    bad = auth.post(
        "/admin/import",
        {"kind": "accounts", "file": (io.BytesIO(b"\x00\x01\x02" * 100), "x.csv")},
        htmx=False,
        content_type="multipart/form-data",
    )
    assert bad.status_code == 422 and "not text" in bad.get_data(as_text=True)
    answer = auth.post(
        "/admin/import",
        {"kind": "accounts", "file": (io.BytesIO(data), "firms.csv")},
        htmx=False,
        content_type="multipart/form-data",
    )
    assert answer.status_code == 303
    mapping_url = answer.headers["Location"]
    page = auth.get(mapping_url, htmx=False).get_data(as_text=True)
    assert "Blue Steel" in page and 'name="map-name"' in page
    assert auth.post(mapping_url, {"action": "preview", "map-name": ""}, htmx=False).status_code == 422
    preview = auth.post(mapping_url, {"action": "preview", "map-name": "Firm", "map-domain": "Web"}, htmx=False)
    text = preview.get_data(as_text=True)
    assert preview.status_code == 200 and "1 to create" in text and "formula" in text
    with app.extensions["inboxcrm.db"].sessions() as session:
        assert session.scalar(select(func.count()).select_from(Account).where(Account.name == "Blue Steel")) == 0
    started = auth.post(mapping_url, {"action": "import", "map-name": "Firm", "map-domain": "Web"}, htmx=False)
    assert started.status_code == 303 and queued
    importing.continue_import(app.extensions["inboxcrm.db"].sessions, queued[0])
    progress = auth.get(started.headers["Location"], htmx=False).get_data(as_text=True)
    assert "Done: 2 of 2 rows." in progress and "Undo the whole import" in progress
    fragment = auth.get(started.headers["Location"]).get_data(as_text=True)
    assert fragment.startswith('<div id="progress"') and "hx-trigger" not in fragment  # done: no more polling
    # The mapping is remembered for the next file with these columns.
    with app.extensions["inboxcrm.db"].sessions() as session:
        assert importing.mapping_for(session, app_world.org.id, "accounts", ["Firm", "Web"]) == {
            "name": "Firm",
            "domain": "Web",
        }


def test_the_import_page_takes_a_file_larger_than_a_form_and_refuses_past_its_limit(app, app_world: World, auth):
    auth.login(app_world.admin.email)
    rows = [["Name", "Domain"]] + [[f"Firm {n} " + "x" * 40, f"firm{n}.example"] for n in range(90_000)]
    data = as_csv(rows).encode()
    assert len(data) > app.config["MAX_CONTENT_LENGTH"]  # more than any other request may carry
    answer = auth.post(
        "/admin/import",
        {"kind": "accounts", "file": (io.BytesIO(data), "firms.csv")},
        htmx=False,
        content_type="multipart/form-data",
    )
    assert answer.status_code == 303
    huge = io.BytesIO(b"a" * (MAX_BYTES + 2 * 1024 * 1024))
    refused = auth.post(
        "/admin/import",
        {"kind": "accounts", "file": (huge, "huge.csv")},
        htmx=False,
        content_type="multipart/form-data",
    )
    assert refused.status_code == 413 and "split it" in refused.get_data(as_text=True)
    # Elsewhere the form's limit stands.
    big = auth.post("/admin/teams", {"name": "x" * (app.config["MAX_CONTENT_LENGTH"] + 10)}, htmx=False)
    assert big.status_code == 413


def test_an_erasure_drops_the_files_imports_still_keep(session, world: World):
    from services.privacy import erase_person  # noqa: PLC0415

    data = as_csv([["Email", "Name"], ["yusuf@bluesteel.example", "Yusuf Tanaka"]]).encode()
    draft = importing.upload(session, world.admin, "contacts", data, "c.csv")
    session.commit()
    erase_person(session, world.org, "yusuf@bluesteel.example", secret="s", actor=world.admin)
    session.commit()
    session.refresh(draft)
    assert draft.content is None and draft.status == "failed" and "erased" in draft.message
