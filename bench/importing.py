"""Benchmark: the move from another CRM. Prints one JSON object (``make bench`` runs it after
``bench/reports.py``).

    python bench/importing.py                                  # SQLite in a temporary folder
    python bench/importing.py --db postgresql+psycopg://...    # an EMPTY PostgreSQL database
    python bench/importing.py --contacts 10000 --activities 100000 --build-scale 0   # a quick run

On one fresh store, side by side:

* ``import_*_per_second``: 100,000 contacts and 1,000,000 past activities (five files of
  200,000, the most one file may hold) imported by ``flask --app wsgi import`` in a process of
  its own, as the worker runs it: read, mapped, every row planned, matched and checked, written
  in chunks with what undoing it needs, then the rollups and latest times of what it touched
  recounted. ``core_*_per_second``: the same rows, already parsed, inserted with SQLAlchemy
  Core bulk inserts (a transaction per 2,000, as the import's chunks) into a second organization
  of the same store. ``*_vs_core`` is their ratio; issue 30 asks ≥ 0.3.
* ``pane_during_import_vs_floor``: ``GET /pane/context`` for a known sender's mail ÷ the bare
  route (``/healthz``), timed alternately in this process while the import of an activities
  file runs in the other; ``pane_quiet_vs_floor`` the same with nothing running. Issue 30 asks
  the first ≤ 10.
* ``recount_10k_seconds``, ``recount_100k_seconds``: the recount after an import of 10,000
  activities and after one of 100,000, on the same store of over a million: it grows with what
  the import touched, not with the store.
* ``build_scale_30_seconds``: ``build_demo(scale=30)`` into a SQLite store of its own
  (``--build-scale``; 0 skips it), the stage facts recomputed at its end
  (``recompute_stage_facts``, once over 40 minutes alone).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from sqlalchemy import insert, select  # noqa: E402

from addin import create_app  # noqa: E402
from services.db import make_engine, make_session_factory  # noqa: E402
from services.integration import sync  # noqa: E402
from services.models import Activity, Base, Contact, ContactEmail, ContactPhone, Organization, User  # noqa: E402
from services import latest  # noqa: E402
from services.rollups import add_counted  # noqa: E402
from services.setup import importing  # noqa: E402
from services.setup.demo import build_demo  # noqa: E402
from services.setup.organizations import create_organization  # noqa: E402
from services.setup.tables import MAX_ROWS  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
REPS = 40
TYPES = ("email", "call", "meeting", "note")


def _people(session, org: Organization, prefix: str) -> list[tuple[int, str]]:
    rows = [
        {"organization_id": org.id, "email": f"{prefix}{n}@{org.domains[0]}", "name": f"Rep {prefix}{n}", "role": "rep"}
        for n in range(REPS)
    ]
    session.execute(insert(User), rows)
    session.commit()
    return list(session.execute(select(User.id, User.email).where(User.organization_id == org.id, User.role == "rep")))


def write_files(folder: Path, reps: list[str], contacts: int, activities: int) -> tuple[Path, list[Path]]:
    rng = random.Random(7)
    contacts_path = folder / "contacts.csv"
    with contacts_path.open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["Email", "First Name", "Last Name", "Phone Number", "Job Title", "Contact owner"])
        for n in range(contacts):
            out.writerow(
                [
                    f"person{n}@firm{n % 5000}.example",
                    f"First{n}",
                    f"Last{n}",
                    f"+1 555 {n:07d}",
                    "Buyer",
                    reps[n % len(reps)],
                ]
            )
    files = []
    per_file = min(MAX_ROWS, activities)
    for part in range(0, activities, per_file):
        path = folder / f"activities-{part // per_file + 1}.csv"
        with path.open("w", newline="") as handle:
            out = csv.writer(handle)
            out.writerow(
                [
                    "Activity ID",
                    "Activity date",
                    "Activity type",
                    "Direction",
                    "Subject",
                    "Notes",
                    "Contact email",
                    "Activity owner",
                ]
            )
            for n in range(part, min(part + per_file, activities)):
                when = NOW - timedelta(minutes=rng.randrange(2 * 365 * 24 * 60))
                out.writerow(
                    [
                        f"a{n}",
                        when.isoformat(timespec="minutes"),
                        TYPES[n % len(TYPES)],
                        "inbound" if n % 3 == 0 else "outbound",
                        f"Subject {n}",
                        "Rates for the Chicago lane, next quarter." if n % 2 else "",
                        f"person{rng.randrange(contacts)}@firm{n % 5000}.example",
                        reps[n % len(reps)],
                    ]
                )
        files.append(path)
    return contacts_path, files


def cli_import(url: str, path: Path, kind: str) -> float:
    """``flask --app wsgi import`` in a process of its own, as the worker runs an import."""
    env = dict(os.environ, DATABASE_URL=url, INBOXCRM_JOBS_PATH=str(path.parent / "jobs.db"))
    started = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "flask",
            "--app",
            "wsgi",
            "import",
            str(path),
            "--org",
            "Importer",
            "--kind",
            kind,
            "--quiet",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"import of {path.name} failed: {done.stderr[-2000:]}")
    return seconds


def core_rows(path: Path, org_id: int, owners: dict[str, int], kind: str) -> list[list[dict]]:
    """The file's rows parsed as the import would store them, in chunks of the import's size."""
    with path.open(newline="") as handle:
        reader = csv.reader(handle)
        next(reader)
        rows = list(reader)
    chunks = []
    for start in range(0, len(rows), importing.CHUNK):
        chunk = []
        for row in rows[start : start + importing.CHUNK]:
            if kind == "contacts":
                chunk.append(
                    {
                        "organization_id": org_id,
                        "name": f"{row[1]} {row[2]}",
                        "title": row[4],
                        "owner_id": owners[row[5]],
                        "created_at": NOW,
                        "_email": row[0],
                        "_phone": row[3],
                    }
                )
            else:
                chunk.append(
                    {
                        "organization_id": org_id, "external_id": f"core:{row[0]}", "occurred_at": datetime.fromisoformat(row[1]),
                        "type": row[2], "direction": row[3], "subject": row[4], "body_text": row[5] or None,
                        "owner_id": owners[row[7]], "source": "import", "is_private": False, "created_at": NOW, "updated_at": NOW,
                    }
                )  # fmt: skip
        chunks.append(chunk)
    return chunks


def core_insert(sessions, chunks: list[list[dict]], kind: str) -> float:
    started = time.perf_counter()
    for chunk in chunks:
        with sessions() as session:
            connection = session.connection()
            if kind == "contacts":
                ids = list(
                    connection.scalars(
                        Contact.__table__.insert().returning(Contact.__table__.c.id, sort_by_parameter_order=True),
                        [{k: v for k, v in row.items() if not k.startswith("_")} for row in chunk],
                    )
                )
                connection.execute(
                    ContactEmail.__table__.insert(),
                    [
                        {"organization_id": row["organization_id"], "contact_id": i, "address": row["_email"]}
                        for i, row in zip(ids, chunk)
                    ],
                )
                connection.execute(
                    ContactPhone.__table__.insert(),
                    [
                        {
                            "organization_id": row["organization_id"],
                            "contact_id": i,
                            "number": row["_phone"],
                            "kind": "work",
                        }
                        for i, row in zip(ids, chunk)
                    ],
                )
            else:
                connection.execute(Activity.__table__.insert(), chunk)
            session.commit()
    return time.perf_counter() - started


def pane_timings(
    app, rounds: int, running: subprocess.Popen | None = None, organization: str | None = "Importer"
) -> tuple[float, float]:
    """p50 of ``GET /pane/context`` and of ``/healthz``, alternately (while ``running`` runs), for
    the first rep (of ``organization``, when named)."""
    from services.preview import sample_mailbox  # noqa: PLC0415 - after the app is made

    sessions = app.extensions["inboxcrm.db"].sessions
    with sessions() as session:
        reps = select(User).join(Organization).where(User.role == "rep").order_by(User.id)
        if organization is not None:
            reps = reps.where(Organization.name == organization)
        rep = session.scalars(reps).first()
        item = next(i for i in sample_mailbox(session, rep) if i.item_type == "message" and i.from_address != rep.email)
        rep_id, rep_email = rep.id, rep.email
    query = {
        "item_type": "message", "from_address": item.from_address, "from_name": item.from_name,
        "subject": item.subject, "internet_message_id": item.internet_message_id, "to": rep_email,
    }  # fmt: skip
    client = app.test_client()
    with client.session_transaction() as cookie:
        cookie["_user_id"] = f"{rep_id}:0"
        cookie["signed_in_at"] = int(time.time())
    htmx = {"HX-Request": "true"}
    client.get("/pane/context", query_string=query, headers=htmx)
    pane, floor = [], []
    for _ in range(rounds):
        if running is not None and running.poll() is not None:
            break
        begin = time.perf_counter()
        assert client.get("/pane/context", query_string=query, headers=htmx).status_code == 200
        pane.append((time.perf_counter() - begin) * 1000)
        begin = time.perf_counter()
        client.get("/healthz")
        floor.append((time.perf_counter() - begin) * 1000)
    if not pane:  # the import was over before a round: nothing measured beside it
        return float("nan"), float("nan")
    return statistics.median(pane), statistics.median(floor)


def recount_seconds(sessions, org_id: int, count: int) -> float:
    """The recount an import of ``count`` activities does (their rollups added, their deals' and
    accounts' latest times), alone, on the imported store, rolled back."""
    with sessions() as session:
        org = session.get(Organization, org_id)
        ids = list(
            session.scalars(
                select(Activity.id).where(Activity.organization_id == org_id).order_by(Activity.id).limit(count)
            )
        )
        started = time.perf_counter()
        counter, deals, accounts = importing._count(session, org, ids)
        add_counted(session, org, counter)
        latest.recompute(session, org_id, deals=deals, accounts=accounts)
        seconds = time.perf_counter() - started
        session.rollback()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", default=None, help="an EMPTY database (default: SQLite in a temporary folder)")
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--activities", type=int, default=1_000_000)
    parser.add_argument("--build-scale", type=float, default=30)
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="inboxcrm-import-bench-"))
    url = args.db or f"sqlite:///{folder / 'store.db'}"
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    sync.install()
    sessions = make_session_factory(engine)
    with sessions() as session:
        founded = create_organization(
            session,
            {"name": "Importer", "domains": "importer.example"},
            "admin@importer.example",
            password="a long enough password",
        )
        core_org = Organization(name="Core", domains=["core.example"], settings={})
        session.add(core_org)
        session.commit()
        org_id, core_id = founded.organization.id, core_org.id
        owners = _people(session, founded.organization, "rep")
        core_owners = _people(session, core_org, "core")
    emails = [email for _, email in owners]
    contacts_path, activity_paths = write_files(folder, emails, args.contacts, args.activities)
    by_email = {email: core_owners[n][0] for n, (_, email) in enumerate(owners)}

    results: dict[str, object] = {
        "backend": engine.dialect.name,
        "contacts": args.contacts,
        "activities": args.activities,
    }
    core_seconds = core_insert(sessions, core_rows(contacts_path, core_id, by_email, "contacts"), "contacts")
    import_seconds = cli_import(url, contacts_path, "contacts")
    results |= {
        "import_contacts_per_second": round(args.contacts / import_seconds),
        "core_contacts_per_second": round(args.contacts / core_seconds),
        "contacts_vs_core": round(core_seconds / import_seconds, 2),
    }

    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": url,
            "SECRET_KEY": "bench",
            "TESTING": True,
            "JOBS_SQLITE_PATH": str(folder / "jobs.db"),
        }
    )
    pane_quiet, floor_quiet = pane_timings(app, args.rounds)

    core_total = import_total = 0.0
    during: list[tuple[float, float]] = []
    for n, path in enumerate(activity_paths):
        core_total += core_insert(sessions, core_rows(path, core_id, by_email, "activities"), "activities")
        if n == 0:  # the pane measured while this file's import runs in the other process
            env = dict(os.environ, DATABASE_URL=url, INBOXCRM_JOBS_PATH=str(folder / "jobs.db"))
            started = time.perf_counter()
            running = subprocess.Popen(
                [sys.executable, "-m", "flask", "--app", "wsgi", "import", str(path), "--org", "Importer", "--kind", "activities", "--quiet"],
                cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            )  # fmt: skip
            time.sleep(1.5)  # past its start-up: into the rows
            during.append(pane_timings(app, args.rounds, running))
            if running.wait() != 0:
                raise SystemExit(f"import failed: {running.stderr.read()[-2000:]}")
            import_total += time.perf_counter() - started
        else:
            import_total += cli_import(url, path, "activities")
    pane_during, floor_during = during[0]
    with sessions() as session:
        imported = session.scalar(
            select(Activity.id).where(Activity.organization_id == org_id).order_by(Activity.id.desc()).limit(1)
        )
    results |= {
        "import_activities_per_second": round(args.activities / import_total),
        "core_activities_per_second": round(args.activities / core_total),
        "activities_vs_core": round(core_total / import_total, 2),
        "pane_quiet_ms": round(pane_quiet, 2),
        "pane_quiet_vs_floor": round(pane_quiet / floor_quiet, 1),
        "pane_during_import_ms": round(pane_during, 2),
        "pane_during_import_vs_floor": round(pane_during / floor_during, 1),
        # The recount of an import of 10,000 activities, and of one of 100,000, on the same store.
        "recount_10k_seconds": round(recount_seconds(sessions, org_id, 10_000), 3),
        "recount_100k_seconds": round(recount_seconds(sessions, org_id, 100_000), 3),
        "imported_rows_seen": imported is not None,
    }
    if args.build_scale:  # on SQLite, in a store of its own
        built = make_engine(f"sqlite:///{folder / 'built.db'}")
        Base.metadata.create_all(built)
        started = time.perf_counter()
        with make_session_factory(built)() as session:
            build_demo(session, seed=7, scale=args.build_scale, today=date(2026, 11, 20))
            session.commit()
        results[f"build_scale_{args.build_scale:g}_seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
