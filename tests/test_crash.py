"""A crash loses nothing: the server runs as production does (gunicorn, two workers), takes a
burst of writes from eight clients, and is killed with SIGKILL in the middle of it. After a
restart, every write it acknowledged is there, no record is half-written (each activity has
its audit event, each follow-up too) and the rollups equal a rebuild from the activities.
On SQLite (the embedded default) and on PostgreSQL."""

from __future__ import annotations

import threading
import time

import pytest
import requests
from sqlalchemy import func, select

from services.db import make_engine, make_session_factory
from services.models import Activity, AuditEvent, Base, FollowUp, Organization
from services.rollups import rebuild_rollups
from tests.helpers import rollup_snapshot
from tests.factories import PASSWORD, build_world
from tests.servers import Gunicorn

CLIENTS = 8
SETTINGS = {"INBOXCRM_SIGN_IN_RATE_LIMIT": "1000 per minute"}


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'crash.db'}"
    return request.getfixturevalue("postgres_server").fresh_database("inboxcrm_crash")


def test_a_killed_server_loses_nothing(database_url: str, tmp_path):
    engine = make_engine(database_url)
    Base.metadata.create_all(engine)
    sessions = make_session_factory(engine)
    with sessions() as session:
        world = build_world(session)
        contact_id, org_id = world.contact.id, world.org.id
    log = tmp_path / "server.log"
    server = Gunicorn(database_url, log, workers=2, threads=4, secret="crash-test", env=SETTINGS)
    acknowledged: list[str] = []
    stop = threading.Event()
    try:
        token = requests.post(
            f"{server.url}/auth/token", json={"email": "rita@northwind.test", "password": PASSWORD}, timeout=10
        )
        headers = {"Authorization": f"Bearer {token.json()['token']}"}

        def burst(client: int) -> None:
            n = 0
            with requests.Session() as http:
                while not stop.is_set():
                    n += 1
                    external_id = f"crash-{client}-{n}"
                    form = {
                        "type": "call",
                        "outcome": "connected",
                        "duration_minutes": "15",
                        "contact_id": str(contact_id),
                        "external_id": external_id,
                        "subject": f"Call {n}",
                    }
                    try:
                        answer = http.post(
                            f"{server.url}/activities", data=form, headers=headers, timeout=5, allow_redirects=False
                        )
                        if answer.status_code == 302:  # logged, and the pane is sent back to its context
                            acknowledged.append(external_id)
                        http.post(
                            f"{server.url}/followups",
                            headers=headers,
                            timeout=5,
                            allow_redirects=False,
                            data={"title": f"Follow {n}", "due_at": "2030-01-01T10:00", "contact_id": str(contact_id)},
                        )
                    except requests.RequestException:
                        return  # the server is gone

        clients = [threading.Thread(target=burst, args=(c,)) for c in range(CLIENTS)]
        for thread in clients:
            thread.start()
        deadline = time.monotonic() + 30
        while len(acknowledged) < 40 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(acknowledged) >= 40, f"the burst did not get going; see {log}"
        server.kill()  # mid-burst: requests are in flight in every worker
        stop.set()
        for thread in clients:
            thread.join(10)
    finally:
        stop.set()
        server.kill()

    server = Gunicorn(
        database_url, log, workers=2, threads=4, secret="crash-test", env=SETTINGS
    )  # comes back on the store as the crash left it
    try:
        assert requests.get(f"{server.url}/healthz", timeout=5).json() == {"status": "ok", "database": "ok"}
    finally:
        server.kill()

    with sessions() as session:
        stored = set(session.scalars(select(Activity.external_id)))
        assert set(acknowledged) <= stored, "an acknowledged write was lost"
        activities = session.scalar(select(func.count()).select_from(Activity))
        logged = session.scalar(
            select(func.count(func.distinct(AuditEvent.record_id))).where(
                AuditEvent.record_type == "activities", AuditEvent.action == "log"
            )
        )
        assert activities == logged >= len(acknowledged)
        follow_ups = session.scalar(select(func.count()).select_from(FollowUp))
        created = session.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.record_type == "follow_ups")
        )
        assert follow_ups == created
        kept = rollup_snapshot(session, org_id)
        rebuild_rollups(session, session.get(Organization, org_id))
        assert rollup_snapshot(session, org_id) == kept
        session.rollback()
    engine.dispose()
