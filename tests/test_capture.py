"""Automatic capture against the local stand-in for Microsoft's and Google's servers
(``services.capture.standin``): a rep connects by OAuth with PKCE, the backfill and every later
pass read the providers' change feeds as documented, the pane's rules decide what is taken, and
the feeds' failures (throttling, expired cursors, dead tokens, a second worker) are met as the
providers ask, on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import io
import json
import zipfile
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Iterator

import pytest
import requests
from hypothesis import given, settings, strategies as st
from cryptography.fernet import Fernet
from joserfc import jwt
from joserfc.jwk import RSAKey
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session
from werkzeug.serving import make_server

from addin import jobs

from addin.capture import reader as app_reader
from services.capture import mailboxes, meetings, notices, providers, sync
from services.capture.providers import Endpoints
from services.capture.standin import PUSH_ACCOUNT, StandIn
from services.capture.vault import SecretUnreadable, Vault, rotate_secrets
from services.errors import DomainError, Forbidden, NotFound
from services.health import healths
from services.mail.activities import log_email, log_meeting
from services.models import (
    Activity,
    AuditEvent,
    BlockEntry,
    Capture,
    DealNotice,
    MailGrant,
    Mailbox,
    NoteChecklist,
    StageChange,
    Transcript,
    User,
)
from services.rollups import rebuild_rollups
from services.setup import people
from services.setup.export import export_organization
from tests.factories import World, make_deal
from tests.helpers import rollup_snapshot

REDIRECT = "https://crm.example/capture/callback/microsoft"
GRAPH_KEYS = (
    "id", "internetMessageId", "subject", "from", "toRecipients", "ccRecipients", "sentDateTime", "body", "categories",
    "isDraft", "iCalUId", "start", "end", "isCancelled", "attendees", "organizer", "location", "onlineMeeting",
    "iCalUID", "status", "summary", "originalStartTime", "visibility", "hangoutLink",
)  # fmt: skip
ANN = "ann@acme.test"


@pytest.fixture
def standin() -> Iterator[StandIn]:
    server = StandIn(page_size=3)
    yield server
    server.close()


def endpoints_for(standin: StandIn) -> Endpoints:
    return Endpoints(
        microsoft_login=standin.url,
        graph=standin.url,
        google_authorize=f"{standin.url}/o/oauth2/v2/auth/authorize",
        google_token=f"{standin.url}/token",
        gmail=standin.url,
        calendar=standin.url,
        microsoft_client_id="ms-app",
        microsoft_client_secret="ms-secret",
        google_client_id="google-app",
        google_client_secret="google-secret",
    )


@pytest.fixture
def reader(standin: StandIn) -> sync.Reader:
    return sync.Reader(
        endpoints_for(standin), Vault([Fernet.generate_key().decode()]), microsoft_app=("ms-app", "ms-secret")
    )


def consented(reader: sync.Reader, email: str, provider: str = "microsoft") -> tuple[mailboxes.Authorization, str]:
    """To the provider's authorize URL with a PKCE challenge, and the code it sends back with."""
    started = mailboxes.authorization(reader.endpoints, provider, REDIRECT, email)
    answer = requests.get(started.url, allow_redirects=False, timeout=5)
    assert answer.status_code == 302
    query = dict(p.split("=", 1) for p in requests.utils.urlparse(answer.headers["Location"]).query.split("&"))
    assert query["state"] == started.state
    return started, query["code"]


def connect(session: Session, reader: sync.Reader, user: User, provider: str = "microsoft") -> Mailbox:
    """As the pane does it: consent, then the code exchanged with the PKCE verifier."""
    started, code = consented(reader, user.email, provider)
    mailbox = mailboxes.connect(
        session,
        user,
        provider,
        code,
        started.verifier,
        REDIRECT,
        endpoints=reader.endpoints,
        vault=reader.vault,
        http=reader.http,
    )
    session.commit()
    return mailbox


def run(session: Session, sessions, reader: sync.Reader, mailbox_id: int, *, force: bool = True, **kw) -> sync.Pass:
    """A pass, as the worker makes it: the test's own session ends its transaction first (SQLite's
    writers wait for one another)."""
    session.commit()
    return sync.sync_mailbox(sessions, reader, mailbox_id, force=force, **kw)


def captured(session: Session, world: World) -> list[Activity]:
    session.expire_all()
    return list(
        session.scalars(
            select(Activity)
            .join(Capture, Capture.activity_id == Activity.id)
            .where(Activity.organization_id == world.org.id)
            .order_by(Activity.id)
        )
    )


def test_a_connected_mailbox_is_captured_by_the_panes_rules(
    session: Session, sessions, world: World, standin: StandIn, reader: sync.Reader
) -> None:
    rep = world.rep
    week_ago = datetime.now(UTC) - timedelta(days=7)
    standin.deliver(
        rep.email,
        sender=ANN,
        to=[rep.email],
        subject="Quote for 40 trucks",
        body="We are happy with the offer, thanks",
        sent_at=week_ago,
    )
    standin.deliver(rep.email, sender="new.person@acme.test", to=[rep.email], subject="Intro", sent_at=week_ago)
    standin.deliver(rep.email, sender="stranger@elsewhere.test", to=[rep.email], subject="Cold pitch", sent_at=week_ago)
    standin.deliver(rep.email, sender=world.teammate.email, to=[rep.email], subject="Lunch?", sent_at=week_ago)
    standin.deliver(rep.email, sender="noreply@acme.test", to=[rep.email], subject="Your invoice", sent_at=week_ago)
    standin.deliver(
        rep.email, sender=rep.email, to=[ANN], subject="Re: Quote", sent_at=week_ago, categories=["Private"]
    )
    old = standin.deliver(
        rep.email, sender=ANN, to=[rep.email], subject="Last year", sent_at=datetime.now(UTC) - timedelta(days=200)
    )
    mailbox = connect(session, reader, rep)
    assert mailbox.secret and reader.vault.open(mailbox.secret) in standin.refresh_tokens  # kept, encrypted
    assert "refresh" not in mailbox.secret

    result = run(session, sessions, reader, mailbox.id)
    assert result.done and result.stopped is None
    rows = captured(session, world)
    by_subject = {a.subject: a for a in rows}
    assert set(by_subject) == {"Quote for 40 trucks", "Intro", "Re: Quote"}
    assert by_subject["Quote for 40 trucks"].direction == "inbound"
    assert by_subject["Quote for 40 trucks"].contact_id == world.contact.id
    assert by_subject["Quote for 40 trucks"].opportunity_id == world.deal.id  # the account's only open deal
    assert by_subject["Quote for 40 trucks"].sentiment is not None  # scored as it arrived
    assert by_subject["Re: Quote"].direction == "outbound" and by_subject["Re: Quote"].is_private
    reasons = dict(
        session.execute(
            select(Activity.subject, Capture.reason).join(Capture, Capture.activity_id == Activity.id)
        ).all()
    )
    assert reasons["Quote for 40 trucks"] == "Ann Buyer is a contact"
    assert reasons["Intro"] == "acme.test is Acme Freight's domain"
    assert result.skipped  # the stranger, the teammate and the no-reply sender, each with why
    assert any("internal" in why for why in result.skipped)
    assert old not in {a.external_id for a in rows}
    mailbox = session.get(Mailbox, mailbox.id)
    assert mailbox.state == "current" and mailbox.backfill_done_at is not None and mailbox.captured == 3

    # The next pass starts from the delta links: only what arrived since.
    assert run(session, sessions, reader, mailbox.id).captured == 0
    standin.deliver(rep.email, sender=ANN, to=[rep.email], subject="Signed", thread="conv-deal")
    again = run(session, sessions, reader, mailbox.id)
    assert again.captured == 1 and len(captured(session, world)) == 4
    assert any("deltatoken" in r for r in standin.requests)  # the delta link, not a full read
    # Every figure counts it at once: the rollups equal a recount.
    live = rollup_snapshot(session, world.org.id)
    rebuild_rollups(session, world.org)
    assert rollup_snapshot(session, world.org.id) == live


def test_the_same_message_is_one_activity_whoever_saw_it_first(
    session: Session, sessions, world: World, standin: StandIn, reader: sync.Reader
) -> None:
    rep = world.rep
    message_id = "<deal-1@acme.test>"
    log_email(
        session,
        rep,
        {"internet_message_id": message_id, "from_address": ANN, "to": [rep.email], "subject": "From the pane"},
    )
    session.commit()
    standin.deliver(rep.email, sender=ANN, to=[rep.email], subject="From the pane", message_id=message_id)
    standin.deliver(
        rep.email, sender=ANN, to=[rep.email, world.teammate.email], subject="To both", message_id="<both@acme.test>"
    )
    mailbox = connect(session, reader, rep)
    mate = connect(session, reader, world.teammate)
    run(session, sessions, reader, mailbox.id)
    run(session, sessions, reader, mate.id)
    standin.deliver(
        world.teammate.email,
        sender=ANN,
        to=[rep.email, world.teammate.email],
        subject="To both",
        message_id="<both@acme.test>",
    )
    run(session, sessions, reader, mate.id)
    counts = dict(
        session.execute(
            select(Activity.external_id, func.count())
            .where(Activity.organization_id == world.org.id)
            .group_by(Activity.external_id)
        ).all()
    )
    assert counts[message_id] == 1 and counts["<both@acme.test>"] == 1


def test_a_pass_resumes_where_it_stopped_and_an_expired_cursor_resyncs_without_duplicates(
    session: Session, sessions, world: World, standin: StandIn, reader: sync.Reader, monkeypatch: pytest.MonkeyPatch
) -> None:
    rep = world.rep
    for n in range(8):
        standin.deliver(rep.email, sender=ANN, to=[rep.email], subject=f"Mail {n}")
    mailbox = connect(session, reader, rep)
    monkeypatch.setattr(sync, "PAGES", 1)  # one page a pass: the worker "stops" after each
    first = run(session, sessions, reader, mailbox.id)
    assert not first.done and first.captured == 3
    session.expire_all()
    assert session.get(Mailbox, mailbox.id).next_sync_at is not None
    passes = 1
    while not run(session, sessions, reader, mailbox.id).done:
        passes += 1
        assert passes < 20
    assert len(captured(session, world)) == 8

    monkeypatch.setattr(sync, "PAGES", 40)
    standin.expire_cursors()
    standin.deliver(rep.email, sender=ANN, to=[rep.email], subject="After the gap")
    result = run(session, sessions, reader, mailbox.id)
    assert result.done and result.captured == 1  # read again whole; the 8 found by their ids
    assert len(captured(session, world)) == 9
    assert sum(1 for r in standin.requests if "messages/delta" in r) > 4


def test_throttling_waits_what_the_provider_asked(
    session: Session, sessions, world: World, standin: StandIn, reader: sync.Reader
) -> None:
    mailbox = connect(session, reader, world.rep)
    standin.deliver(world.rep.email, sender=ANN, to=[world.rep.email], subject="Hello")
    standin.throttle = [120]
    before = datetime.now(UTC)
    result = run(session, sessions, reader, mailbox.id)
    assert result.stopped and "120" in result.stopped
    session.expire_all()
    box = session.get(Mailbox, mailbox.id)
    assert box.next_sync_at >= before + timedelta(seconds=119)
    assert box.problem and box.state != "error"
    # Not due yet: a poll leaves it; once due, the pass goes on.
    assert run(session, sessions, reader, mailbox.id, force=False).ran is False
    assert (
        run(session, sessions, reader, mailbox.id, force=False, clock=lambda: before + timedelta(seconds=121)).captured
        == 1
    )


def test_an_expired_access_token_is_refreshed_and_a_revoked_consent_stops_capture(
    session: Session, sessions, world: World, standin: StandIn, reader: sync.Reader
) -> None:
    mailbox = connect(session, reader, world.rep)
    run(session, sessions, reader, mailbox.id)
    standin.expire_access_tokens()  # the next call answers 401: refreshed, and tried again
    standin.deliver(world.rep.email, sender=ANN, to=[world.rep.email], subject="After 401")
    assert run(session, sessions, reader, mailbox.id).captured == 1

    standin.revoke(world.rep.email)
    standin.expire_access_tokens()
    result = run(session, sessions, reader, mailbox.id)
    assert result.stopped and "connect it again" in result.stopped
    session.expire_all()
    box = session.get(Mailbox, mailbox.id)
    assert box.state == "error" and box.secret is None and box.access_secret is None
    assert "revoked" in box.problem
    assert session.scalar(
        select(AuditEvent).where(AuditEvent.action == "capture_stopped", AuditEvent.record_id == box.id)
    )
    assert sync.due_mailboxes(session, datetime.now(UTC) + timedelta(days=1)) == []  # stopped cleanly


def test_one_mailbox_is_never_read_by_two_workers(
    session: Session, sessions, world: World, standin: StandIn, reader: sync.Reader
) -> None:
    mailbox = connect(session, reader, world.rep)
    now = datetime.now(UTC)
    assert sync.claim(session, mailbox.id, "worker-a", now, force=True)
    assert not sync.claim(session, mailbox.id, "worker-b", now, force=True)
    assert run(session, sessions, reader, mailbox.id, worker="worker-b").ran is False
    # A lease whose worker died runs out.
    later = now + sync.LEASE + timedelta(seconds=1)
    assert run(session, sessions, reader, mailbox.id, worker="worker-b", clock=lambda: later).ran


def test_meetings_from_the_calendar_by_their_uid(
    session: Session, sessions, world: World, standin: StandIn, reader: sync.Reader
) -> None:
    rep = world.rep
    now = datetime.now(UTC).replace(microsecond=0)
    standin.schedule(
        rep.email,
        subject="Pricing review",
        start=now - timedelta(days=2),
        minutes=45,
        attendees=[ANN, rep.email],
        uid="uid-past",
    )
    standin.schedule(
        rep.email,
        subject="Team sync",
        start=now - timedelta(days=1),
        minutes=30,
        attendees=[world.teammate.email],
        uid="uid-internal",
    )
    standin.schedule(
        rep.email,
        subject="Demo",
        start=now + timedelta(days=1),
        minutes=60,
        attendees=["ceo@acme.test"],
        uid="uid-future",
        online="https://meet.test/x",
    )
    mailbox = connect(session, reader, rep)
    run(session, sessions, reader, mailbox.id)
    meetings = {a.external_id: a for a in captured(session, world) if a.type == "meeting"}
    assert set(meetings) == {"ical:uid-past", "ical:uid-future"}
    assert meetings["ical:uid-past"].outcome == "held" and meetings["ical:uid-past"].duration_minutes == 45
    assert meetings["ical:uid-past"].contact_id == world.contact.id
    assert (
        meetings["ical:uid-future"].outcome is None and "https://meet.test/x" in meetings["ical:uid-future"].body_text
    )

    # Rescheduled: the same activity moves. Cancelled: marked, never deleted.
    standin.schedule(
        rep.email,
        subject="Demo (moved)",
        start=now + timedelta(days=3),
        minutes=30,
        attendees=["ceo@acme.test"],
        uid="uid-future",
    )
    run(session, sessions, reader, mailbox.id)
    moved = {a.external_id: a for a in captured(session, world)}["ical:uid-future"]
    assert (
        moved.id == meetings["ical:uid-future"].id and moved.subject == "Demo (moved)" and moved.duration_minutes == 30
    )
    standin.schedule(
        rep.email,
        subject="Demo (moved)",
        start=now + timedelta(days=3),
        minutes=30,
        attendees=["ceo@acme.test"],
        uid="uid-future",
        cancelled=True,
    )
    run(session, sessions, reader, mailbox.id)
    session.expire_all()
    cancelled = session.get(Activity, moved.id)
    assert cancelled.outcome == "cancelled" and cancelled.deleted_at is None

    # A planned meeting is held once it has ended.
    standin.schedule(
        rep.email, subject="Call", start=now + timedelta(hours=1), minutes=30, attendees=[ANN], uid="uid-soon"
    )
    run(session, sessions, reader, mailbox.id)
    soon = {a.external_id: a for a in captured(session, world)}["ical:uid-soon"]
    assert soon.outcome is None
    run(session, sessions, reader, mailbox.id, clock=lambda: now + timedelta(hours=2))
    session.expire_all()
    assert session.get(Activity, soon.id).outcome == "held"


def test_gmail_by_history_and_calendar_by_sync_token(
    session: Session, sessions, world: World, standin: StandIn, reader: sync.Reader
) -> None:
    rep = world.rep
    standin.deliver(rep.email, sender=ANN, to=[rep.email], subject="Gmail one")
    standin.deliver(rep.email, sender=ANN, to=[rep.email], subject="Kept private", categories=["Private"])
    standin.schedule(
        rep.email,
        subject="Visit",
        start=datetime.now(UTC) - timedelta(days=1),
        minutes=30,
        attendees=[ANN],
        uid="g-uid",
    )
    mailbox = connect(session, reader, rep, "google")
    result = run(session, sessions, reader, mailbox.id)
    assert result.done, result.stopped
    rows = {a.subject: a for a in captured(session, world)}
    assert set(rows) == {"Gmail one", "Kept private", "Visit"}
    assert rows["Kept private"].is_private and not rows["Gmail one"].is_private
    assert rows["Gmail one"].source == "gmail"
    standin.deliver(rep.email, sender=ANN, to=[rep.email], subject="Gmail two")
    assert run(session, sessions, reader, mailbox.id).captured == 1
    assert any("/history" in r for r in standin.requests)
    standin.expire_cursors()  # history id too old (404), sync token gone (410): read again, nothing twice
    standin.deliver(rep.email, sender=ANN, to=[rep.email], subject="Gmail three")
    again = run(session, sessions, reader, mailbox.id)
    assert again.done and again.captured == 1
    assert len(captured(session, world)) == 5


def test_a_rep_takes_a_capture_back_and_it_is_never_taken_again(
    session: Session, sessions, world: World, standin: StandIn, reader: sync.Reader
) -> None:
    standin.deliver(world.rep.email, sender=ANN, to=[world.rep.email], subject="Personal")
    mailbox = connect(session, reader, world.rep)
    run(session, sessions, reader, mailbox.id)
    [mine] = mailboxes.recent_captures(session, world.rep)
    assert mine.reason == "Ann Buyer is a contact"
    with pytest.raises(Forbidden):
        mailboxes.uncapture(session, world.manager, mine.capture_id)
    activity, address = mailboxes.uncapture(session, world.rep, mine.capture_id)
    session.commit()
    assert activity.deleted_at is not None and address == ANN
    standin.expire_cursors()
    run(session, sessions, reader, mailbox.id)
    session.expire_all()
    assert session.get(Activity, activity.id).deleted_at is not None
    assert mailboxes.recent_captures(session, world.rep)[0].taken_back


def test_connecting_someone_elses_mailbox_is_refused(
    session: Session, world: World, standin: StandIn, reader: sync.Reader
) -> None:
    parts = {"endpoints": reader.endpoints, "vault": reader.vault, "http": reader.http}
    started, code = consented(reader, world.teammate.email)
    with pytest.raises(DomainError, match="your own mailbox"):
        mailboxes.connect(session, world.rep, "microsoft", code, started.verifier, REDIRECT, **parts)
    # A wrong verifier (PKCE) is refused by the provider.
    _, code = consented(reader, world.rep.email)
    with pytest.raises(DomainError, match="refused"):
        mailboxes.connect(session, world.rep, "microsoft", code, "not-the-verifier", REDIRECT, **parts)
    assert session.scalar(select(func.count()).select_from(Mailbox)) == 0


def test_the_organizations_consent_reads_the_chosen_mailboxes(
    session: Session, sessions, world: World, standin: StandIn, reader: sync.Reader
) -> None:
    with pytest.raises(Forbidden):
        mailboxes.grant_organization(session, world.manager, "microsoft", "tenant-1")
    mailboxes.grant_organization(session, world.admin, "microsoft", "tenant-1")
    [box] = mailboxes.capture_people(session, world.admin, "microsoft", [world.west_rep.id])
    session.commit()
    standin.deliver(world.west_rep.email, sender=ANN, to=[world.west_rep.email], subject="Tenant-wide")
    assert run(session, sessions, reader, box.id).captured == 1
    assert any(f"/v1.0/users/{world.west_rep.email}/" in r for r in standin.requests)
    mailboxes.disconnect(session, world.admin, box.id)
    session.commit()
    assert run(session, sessions, reader, box.id).ran is False


def test_disconnect_is_the_owners_or_an_admins(
    session: Session, sessions, world: World, standin: StandIn, reader: sync.Reader
) -> None:
    mailbox = connect(session, reader, world.rep)
    with pytest.raises(Forbidden):
        mailboxes.disconnect(session, world.manager, mailbox.id)
    mailboxes.disconnect(session, world.rep, mailbox.id)
    session.commit()
    assert mailbox.secret is None and mailbox.state == "disconnected"
    assert run(session, sessions, reader, mailbox.id).ran is False


def test_keys_rotate_and_a_dropped_key_is_noticed(
    session: Session, world: World, standin: StandIn, reader: sync.Reader
) -> None:
    old = Fernet.generate_key().decode()
    reader.vault = Vault([old])
    mailbox = connect(session, reader, world.rep)
    refresh = Vault([old]).open(mailbox.secret)
    new = Fernet.generate_key().decode()
    assert rotate_secrets(session, Vault([new, old])) == (1, 0)
    assert Vault([new]).open(mailbox.secret) == refresh
    with pytest.raises(SecretUnreadable):
        Vault([old]).open(mailbox.secret)
    with pytest.raises(ValueError, match="Fernet"):
        Vault(["not a key"])


def test_blocked_addresses_are_not_captured(
    session: Session, sessions, world: World, standin: StandIn, reader: sync.Reader
) -> None:
    session.add(BlockEntry(organization_id=world.org.id, owner_id=world.rep.id, kind="address", value=ANN))
    session.commit()
    standin.deliver(world.rep.email, sender=ANN, to=[world.rep.email], subject="Blocked")
    mailbox = connect(session, reader, world.rep)
    result = run(session, sessions, reader, mailbox.id)
    assert result.captured == 0 and any("block list" in why for why in result.skipped)


# -- the pages -------------------------------------------------------------------------------------


@pytest.fixture
def capture_app(app, standin: StandIn):
    """The app with its capture endpoints on the stand-in (as the preview runs it)."""
    app.config["CAPTURE_ENDPOINTS"] = {
        k: v for k, v in endpoints_for(standin).__dict__.items() if not k.endswith(("client_id", "client_secret"))
    }
    app.config["CAPTURE_MICROSOFT_CLIENT_ID"] = "ms-app"
    app.config["CAPTURE_MICROSOFT_CLIENT_SECRET"] = "ms-secret"
    return app


def test_a_rep_connects_from_the_page_and_sees_what_was_taken(
    capture_app, app_world: World, auth, standin: StandIn
) -> None:
    world = app_world
    auth.login(world.rep.email)
    page = auth.get("/capture", htmx=False).get_data(as_text=True)
    assert "Connect my Microsoft 365 mailbox" in page and "Google" not in page  # only what the server is set up for
    answer = auth.get("/capture/connect/microsoft", htmx=False)
    assert answer.status_code == 303 and answer.location.startswith(standin.url)
    assert "code_challenge=" in answer.location and "Mail.Read" in answer.location
    assert "Mail.Send" not in answer.location and "ReadWrite" not in answer.location  # read scopes only
    back = requests.get(answer.location, allow_redirects=False, timeout=5).headers["Location"]
    # A callback whose state is not the one this session started is refused, nothing connected.
    forged = auth.get(back.replace("state=", "state=x"), htmx=False)
    assert forged.status_code == 400 and "did not start here" in forged.get_data(as_text=True)
    answer = auth.get("/capture/connect/microsoft", htmx=False)
    back = requests.get(answer.location, allow_redirects=False, timeout=5).headers["Location"]
    done = auth.get(back.removeprefix("http://localhost"), htmx=False)
    assert done.status_code == 303
    sessions = capture_app.extensions["inboxcrm.db"].sessions
    with sessions() as session:
        box = session.scalar(select(Mailbox))
        assert box.user_id == world.rep.id and box.state == "connected"
    standin.deliver(world.rep.email, sender=ANN, to=[world.rep.email], subject="Arrived by itself")
    result = sync.sync_mailbox(sessions, app_reader(capture_app), box.id)  # the app's reader, as the worker makes it
    assert result.captured == 1
    page = auth.get("/capture", htmx=False).get_data(as_text=True)
    assert "Arrived by itself" in page and "Ann Buyer is a contact" in page and "Up to date" in page
    with sessions() as session:
        capture_id = session.scalar(select(Capture.id))
    taken = auth.post(f"/capture/captures/{capture_id}/take-back", htmx=False).get_data(as_text=True)
    assert "Never log mail with ann@acme.test?" in taken
    assert "taken back" in taken

    # Someone else's capture, mailbox or the admin's page: refused.
    auth.login(world.teammate.email)
    assert auth.post(f"/capture/captures/{capture_id}/take-back", htmx=False).status_code == 403
    assert auth.post(f"/capture/mailboxes/{box.id}/disconnect", htmx=False).status_code == 403
    assert auth.get("/admin/mailboxes", htmx=False).status_code == 403
    auth.login(world.other_user.email)
    assert auth.post(f"/capture/mailboxes/{box.id}/disconnect", htmx=False).status_code == 404

    auth.login(world.admin.email)
    admin_page = auth.get("/admin/mailboxes", htmx=False).get_data(as_text=True)
    assert world.rep.email in admin_page and "current" in admin_page and "uncapture" in admin_page
    assert auth.post(f"/capture/mailboxes/{box.id}/disconnect", htmx=False).status_code == 303
    with sessions() as session:
        assert session.get(Mailbox, box.id).state == "disconnected"


def test_the_admins_consent_and_choices_refuse_bad_input(capture_app, app_world: World, auth) -> None:
    auth.login(app_world.admin.email)
    assert (
        auth.post("/admin/mailboxes/grant", {"provider": "microsoft", "directory": ""}, htmx=False).status_code == 422
    )
    assert auth.post("/admin/mailboxes/grant", {"provider": "yahoo", "directory": "x"}, htmx=False).status_code == 404
    assert (
        auth.post(
            "/admin/mailboxes/people", {"provider": "microsoft", "user_id": str(app_world.rep.id)}, htmx=False
        ).status_code
        == 422
    )
    assert (
        auth.post("/admin/mailboxes/grant", {"provider": "microsoft", "directory": "tenant-1"}, htmx=False).status_code
        == 303
    )
    assert auth.post("/admin/mailboxes/people", {"provider": "microsoft"}, htmx=False).status_code == 422
    other = str(app_world.other_user.id)
    assert (
        auth.post("/admin/mailboxes/people", {"provider": "microsoft", "user_id": other}, htmx=False).status_code == 404
    )
    made = auth.post("/admin/mailboxes/people", {"provider": "microsoft", "user_id": str(app_world.rep.id)}, htmx=False)
    assert made.status_code == 303
    assert "1 mailbox(es) will be read." in auth.get("/admin/mailboxes", htmx=False).get_data(as_text=True)


def test_a_leavers_mailbox_is_disconnected(
    session: Session, sessions, world: World, standin: StandIn, reader: sync.Reader
) -> None:
    mailbox = connect(session, reader, world.rep)
    people.deactivate(session, world.admin, world.rep.id, world.teammate.id)
    session.commit()
    session.expire_all()
    box = session.get(Mailbox, mailbox.id)
    assert box.state == "disconnected" and box.secret is None
    assert run(session, sessions, reader, mailbox.id).ran is False


# -- push ------------------------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "redis"])
def pushed(request, capture_app, app_world: World, standin: StandIn):
    """The app served on loopback as the providers' notification URL, its queue on SQLite or a
    real Redis, Google's keys the stand-in's (its Pub/Sub signs the push tokens)."""
    app = capture_app
    if request.param == "redis":
        app.config["JOBS_REDIS_URL"] = request.getfixturevalue("redis_server").url
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}"
    app.config |= {
        "CAPTURE_PUSH_URL": url,
        "CAPTURE_PUBSUB_TOPIC": "projects/northwind/topics/mail",
        "CAPTURE_PUBSUB_ACCOUNT": PUSH_ACCOUNT,
        "GOOGLE_JWKS_URL": standin.jwks_url,
        "CAPTURE_GOOGLE_CLIENT_ID": "google-app",
        "CAPTURE_GOOGLE_CLIENT_SECRET": "google-secret",
    }
    app.extensions.pop("inboxcrm.capture_reader", None)
    standin.pubsub_push_url = f"{url}/capture/google/push"
    jobs.use(app)
    jobs.huey.flush()
    yield app, url
    jobs.huey.flush()
    server.shutdown()


def work() -> int:
    """The worker: every task waiting in the queue, run."""
    done = 0
    while (task := jobs.huey.dequeue()) is not None:
        jobs.huey.execute(task)
        done += 1
    return done


def wait_for(condition, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the provider's notification never came"
        time.sleep(0.02)


def test_graph_notifications_make_a_mailbox_due_and_its_subscriptions_live(
    pushed, app_world: World, standin: StandIn
) -> None:
    app, url = pushed
    sessions = app.extensions["inboxcrm.db"].sessions
    with sessions() as session:
        box = connect(session, app_reader(app), session.get(User, app_world.rep.id))
    first = sync.sync_mailbox(sessions, app_reader(app), box.id)
    assert first.done
    assert len(standin.subscriptions) == 3  # inbox, sent items, calendar: each after Graph's handshake
    assert {s["clientState"] for s in standin.subscriptions.values()}.isdisjoint({"", None})
    with sessions() as session:
        mailbox = session.get(Mailbox, box.id)
        assert mailbox.next_sync_at > datetime.now(UTC) + timedelta(minutes=20)  # push on: a safety poll only

    standin.deliver(app_world.rep.email, sender=ANN, to=[app_world.rep.email], subject="Pushed")
    wait_for(lambda: standin.notified)
    assert standin.notified[-1][1] == 202
    assert work() == 1
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Capture)) == 1

    # A notification with another client state changes nothing; bad bodies are 400s.
    [sub_id] = [i for i, s in standin.subscriptions.items() if s["folder"] == "inbox"]
    forged = {"value": [{"subscriptionId": sub_id, "clientState": "guess", "changeType": "created"}]}
    assert requests.post(f"{url}/capture/graph/notifications", json=forged, timeout=5).status_code == 202
    assert work() == 0
    assert requests.post(f"{url}/capture/graph/notifications", data="x", timeout=5).status_code == 400
    assert requests.post(f"{url}/capture/graph/notifications", json={"value": 3}, timeout=5).status_code == 400

    # Lifecycle: reauthorization renews the subscription at the next pass; a removed one is made again.
    standin.lifecycle(app_world.rep.email, "reauthorizationRequired")
    assert work() == 3  # one task per notification; the first pass renews, the others find nothing due
    assert sum(r.startswith("PATCH /v1.0/subscriptions/") for r in standin.requests) == 3
    standin.lifecycle(app_world.rep.email, "subscriptionRemoved")
    assert work() == 3
    assert len(standin.subscriptions) == 3


def test_a_gmail_push_is_believed_only_with_pubsubs_token(pushed, app_world: World, standin: StandIn) -> None:
    app, url = pushed
    sessions = app.extensions["inboxcrm.db"].sessions
    with sessions() as session:
        box = connect(session, app_reader(app), session.get(User, app_world.rep.id), "google")
    assert sync.sync_mailbox(sessions, app_reader(app), box.id).done
    assert standin.watches == {app_world.rep.email: "projects/northwind/topics/mail"}

    standin.deliver(app_world.rep.email, sender=ANN, to=[app_world.rep.email], subject="Pushed by Pub/Sub")
    wait_for(lambda: standin.notified)
    assert standin.notified[-1][1] == 204
    assert work() == 1
    with sessions() as session:
        assert (
            session.scalar(select(Activity.subject).join(Capture, Capture.activity_id == Activity.id))
            == "Pushed by Pub/Sub"
        )

    data = base64.b64encode(json.dumps({"emailAddress": app_world.rep.email, "historyId": 1}).encode()).decode()
    body = {"message": {"data": data, "messageId": "1"}, "subscription": "projects/x/subscriptions/y"}
    push_url = f"{url}/capture/google/push"
    stranger = RSAKey.generate_key(2048, parameters={"kid": "standin-1"})
    for token in (
        standin.push_token(aud="https://elsewhere.test/push"),
        standin.push_token(email="someone@evil.test"),
        standin.push_token(exp=int(time.time()) - 3600),
        jwt.encode(
            {"alg": "RS256", "kid": "standin-1"}, {"iss": "https://accounts.google.com", "aud": push_url}, stranger
        ),
    ):
        assert (
            requests.post(push_url, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=5).status_code
            == 401
        )
    assert requests.post(push_url, json=body, timeout=5).status_code == 401
    good = {"Authorization": f"Bearer {standin.push_token()}"}
    assert requests.post(push_url, json={"message": {"data": "!!"}}, headers=good, timeout=5).status_code == 400
    assert requests.post(push_url, json=[1], headers=good, timeout=5).status_code == 400
    assert work() == 0
    assert requests.post(push_url, json=body, headers=good, timeout=5).status_code == 204
    assert work() == 1


# -- meetings after they are held --------------------------------------------------------------------

VTT = """WEBVTT

00:00:01.000 --> 00:00:04.000
<v Rita Rep>Thanks for joining, Ann.</v>

00:00:05.000 --> 00:00:09.000
<v Ann Buyer>We love the reefer pricing, this is great news for us.</v>

00:00:10.000 --> 00:00:12.000
<v Ann Buyer>Send the contract for the Denver lanes.</v>
"""


def test_a_held_meeting_asks_how_it_went_and_keeps_its_teams_transcript(
    session: Session, sessions, world: World, standin: StandIn, reader: sync.Reader
) -> None:
    rep = world.rep
    now = datetime.now(UTC).replace(microsecond=0)
    join = "https://teams.microsoft.com/l/meetup-join/19%3ameeting_1"
    standin.transcripts[join] = VTT
    standin.schedule(
        rep.email,
        subject="Pricing call",
        start=now - timedelta(hours=3),
        minutes=30,
        attendees=[ANN],
        uid="m-1",
        online=join,
    )
    session.add(NoteChecklist(organization_id=world.org.id, activity_type="visit", questions=["Next step"]))
    mailbox = connect(session, reader, rep)
    run(session, sessions, reader, mailbox.id)
    [asked] = meetings.to_ask(session, rep)
    meeting = session.get(Activity, asked.activity_id)
    transcript = session.scalar(select(Transcript).where(Transcript.activity_id == meeting.id))
    assert transcript.source == "teams" and "Denver lanes" in transcript.text
    assert "Thanks for joining" not in transcript.customer_text  # the rep's own lines are not the customer's
    assert meeting.sentiment is not None and meeting.sentiment > 0.3  # scored by what Ann said

    with pytest.raises(DomainError):
        meetings.debrief(session, rep, meeting.id, {"outcome": "went great"})
    with pytest.raises(Forbidden):
        meetings.debrief(session, world.teammate, meeting.id, {"outcome": "held"})
    meetings.debrief(
        session,
        rep,
        meeting.id,
        {"outcome": "held", "rating": 1, "note": "Good call", "answers": {"Next step": "Contract"}},
    )
    session.commit()
    session.expire_all()
    meeting = session.get(Activity, meeting.id)
    assert meeting.rating == 1 and "Next step: Contract" in meeting.body_text and "Good call" in meeting.body_text
    assert meetings.to_ask(session, rep) == []  # answered: asked no more

    # Searchable by the team; private when the meeting is.
    assert [hit.activity_id for hit in meetings.search_transcripts(session, world.manager, "denver")] == [meeting.id]
    assert meetings.search_transcripts(session, world.west_rep, "denver") == []
    meeting.is_private = True
    session.commit()
    assert meetings.search_transcripts(session, world.manager, "denver") == []
    assert meetings.search_transcripts(session, rep, "denver")[0].line == "Send the contract for the Denver lanes."
    with pytest.raises(Forbidden):
        meetings.transcript_of(session, world.manager, meeting.id)


def test_a_transcript_file_is_attached_and_bad_files_refused(session: Session, world: World) -> None:
    meeting, _ = log_meeting(
        session, world.rep, {"event_id": "E1", "subject": "Visit", "start": "2026-11-02T14:00", "attendees": [ANN]}
    )
    session.commit()
    for name, content, message in (
        ("notes.pdf", b"x", ".vtt or .txt"),
        ("t.vtt", b"\xff\xfe\x00bad", "UTF-8"),
        ("t.vtt", b"WEBVTT\n\n", "no transcript"),
        ("t.txt", b"x" * (meetings.MAX_FILE + 1), "5 MB"),
    ):
        with pytest.raises(DomainError, match=message):
            meetings.attach_transcript(session, world.rep, meeting.id, name, content)
    with pytest.raises(Forbidden):
        meetings.attach_transcript(session, world.manager, meeting.id, "t.txt", b"Ann Buyer: hello")
    kept = meetings.attach_transcript(
        session, world.rep, meeting.id, "call.txt", b"Ann Buyer: The price is terrible.\nRita Rep: I see."
    )
    archive = io.BytesIO()
    assert export_organization(session, world.org, archive)["transcripts"] == 1  # the organization's to take out
    with zipfile.ZipFile(archive) as opened:
        assert "The price is terrible." in opened.read("transcripts.csv").decode()
    assert kept.customer_text == "The price is terrible."
    assert session.get(Activity, meeting.id).sentiment < 0
    with pytest.raises(NotFound):
        meetings.transcript_of(session, world.other_user, meeting.id)  # another organization's


def test_my_day_asks_and_a_refused_answer_keeps_what_was_typed(
    capture_app, app_world: World, auth, standin: StandIn
) -> None:
    world = app_world
    sessions = capture_app.extensions["inboxcrm.db"].sessions
    standin.schedule(
        world.rep.email,
        subject="Quarterly review",
        start=datetime.now(UTC) - timedelta(hours=2),
        minutes=30,
        attendees=[ANN],
        uid="q-1",
    )
    with sessions() as session:
        box = connect(session, app_reader(capture_app), session.get(User, world.rep.id))
    sync.sync_mailbox(sessions, app_reader(capture_app), box.id)
    auth.login(world.rep.email)
    day = auth.get("/pane/my-day").get_data(as_text=True)
    assert "How did it go?" in day and "Quarterly review" in day
    with sessions() as session:
        meeting_id = session.scalar(select(Activity.id).where(Activity.subject == "Quarterly review"))
    refused_answer = auth.post(
        f"/capture/meetings/{meeting_id}/debrief", {"outcome": "splendid", "note": "Typed note", "rating": "1"}
    )
    assert refused_answer.status_code == 422
    page = refused_answer.get_data(as_text=True)
    assert "Choose held, no show" in page and "Typed note" in page
    saved = auth.post(f"/capture/meetings/{meeting_id}/debrief", {"outcome": "no_show", "rating": "-1"})
    assert (
        saved.status_code == 200
        and "Saved" in saved.get_data(as_text=True)
        and "Quarterly review" not in saved.get_data(as_text=True)
    )
    with sessions() as session:
        meeting = session.get(Activity, meeting_id)
        assert meeting.outcome == "no_show" and meeting.rating == -1
    # The transcript page: attach, read, and refusals.
    upload = auth.post(
        f"/capture/meetings/{meeting_id}/transcript",
        {"file": (io.BytesIO(b"Ann Buyer: See you next week."), "t.txt")},
        htmx=False,
    )
    assert upload.status_code == 303
    assert "See you next week." in auth.get(f"/capture/meetings/{meeting_id}/transcript", htmx=False).get_data(
        as_text=True
    )
    bad = auth.post(f"/capture/meetings/{meeting_id}/transcript", {"file": (io.BytesIO(b"%PDF"), "t.pdf")}, htmx=False)
    assert bad.status_code == 422 and ".vtt or .txt" in bad.get_data(as_text=True)
    assert "See you next week." in auth.get("/capture/transcripts?q=next+week", htmx=False).get_data(as_text=True)


# -- warned before read ------------------------------------------------------------------------------


def test_a_captured_mail_that_sinks_a_deal_tells_its_owner_before_they_read_it(
    session: Session, sessions, world: World, standin: StandIn, reader: sync.Reader
) -> None:
    world.org.settings = {**world.org.settings, "health_alert_below": 90}
    opened = datetime.now(UTC) - timedelta(days=1)  # a young deal, in good health
    world.deal.created_at = world.deal.stage_entered_at = opened
    session.execute(update(StageChange).where(StageChange.opportunity_id == world.deal.id).values(changed_at=opened))
    session.commit()
    mailbox = connect(session, reader, world.rep)
    run(session, sessions, reader, mailbox.id)
    standin.deliver(
        world.rep.email,
        sender=ANN,
        to=[world.rep.email],
        subject="Very disappointed",
        body="This is terrible, awful service. We are furious and will cancel. Horrible, unacceptable, the worst.",
    )
    run(session, sessions, reader, mailbox.id)
    [notice] = notices.unseen(session, world.rep)
    assert notice.kind == "health" and notice.opportunity_id == world.deal.id
    before, after = healths_around(session, world, notice)
    assert notice.score_before == before >= 90 > notice.score_after == after
    assert "Very disappointed" in notice.message
    standin.deliver(
        world.rep.email, sender=ANN, to=[world.rep.email], subject="Fine", body="Thanks, all good and great."
    )
    run(session, sessions, reader, mailbox.id)
    assert len(notices.unseen(session, world.rep)) == 1  # a warm mail after it sinks nothing more

    # Mailed once, to the owner; the manager's panel lists it; seen, it leaves My day.
    sent: list = []
    assert notices.mail_notices(session, sent.append, "crm@northwind.test", lambda n: "https://crm.example/x") == 1
    assert sent[0]["To"] == world.rep.email and "https://crm.example/x" in sent[0].get_content()
    assert notices.mail_notices(session, sent.append, "crm@northwind.test", lambda n: "x") == 0
    listed = notices.team_notices(session, world.org.id, [world.rep.id, world.teammate.id], datetime.now(UTC))
    assert [n.message for n in listed] == [notice.message]
    with pytest.raises(Forbidden):
        notices.mark_seen(session, world.teammate, notice.id)
    notices.mark_seen(session, world.rep, notice.id)
    assert notices.unseen(session, world.rep) == []


def healths_around(session: Session, world: World, notice) -> tuple[int, int]:
    """The deal's health just before the mail and now, recomputed independently of the notice."""
    mail = session.get(Activity, notice.activity_id)
    before = healths(session, world.org, [world.deal.id], mail.occurred_at - timedelta(seconds=1))[world.deal.id].score
    after = healths(session, world.org, [world.deal.id], notice.created_at)[world.deal.id].score
    return before, after


def test_a_deal_going_dark_is_told_once(session: Session, world: World) -> None:
    now = datetime.now(UTC)
    days = world.org.setting("going_dark_days")
    world.deal.last_inbound_at = now - timedelta(days=days, hours=2)
    session.commit()
    assert notices.gone_dark(session, world.org, now) == 1
    assert notices.gone_dark(session, world.org, now + timedelta(hours=1)) == 0  # once per silence
    [notice] = notices.unseen(session, world.rep)
    assert notice.kind == "dark" and f"{days} days" in notice.message
    world.deal.last_inbound_at = now - timedelta(days=days + 5)  # dark long ago: not news
    world.deal.created_at = now - timedelta(days=60)
    session.commit()
    assert notices.gone_dark(session, world.org, now + timedelta(days=2)) == 0


def test_notices_show_in_my_day_and_the_managers_panel(app, app_world: World, auth) -> None:
    world = app_world
    with app.extensions["inboxcrm.db"].sessions() as session:
        notice = DealNotice(
            organization_id=world.org.id,
            opportunity_id=world.deal.id,
            owner_id=world.rep.id,
            kind="dark",
            message="Reefer contract: no word from the customer in 21 days.",
        )
        session.add(notice)
        session.commit()
        notice_id = notice.id
    auth.login(world.manager.email)
    panel = auth.get("/pane/team").get_data(as_text=True)
    assert "no word from the customer in 21 days" in panel
    assert "on last week's same days" in panel and "Calls against quota" in panel  # the numbers say what they are
    assert auth.post(f"/capture/notices/{notice_id}/seen").status_code == 403
    auth.login(world.west_manager.email)
    assert "no word from the customer in 21 days" not in auth.get("/pane/team").get_data(as_text=True)
    auth.login(world.rep.email)
    assert "Deals to look at" in auth.get("/pane/my-day").get_data(as_text=True)
    after = auth.post(f"/capture/notices/{notice_id}/seen").get_data(as_text=True)
    assert "Deals to look at" not in after


def test_a_stopped_capture_is_shown_in_my_day(capture_app, app_world: World, auth, standin: StandIn) -> None:
    sessions = capture_app.extensions["inboxcrm.db"].sessions
    with sessions() as session:
        box = connect(session, app_reader(capture_app), session.get(User, app_world.rep.id))
    standin.revoke(app_world.rep.email)
    standin.expire_access_tokens()
    sync.sync_mailbox(sessions, app_reader(capture_app), box.id)
    auth.login(app_world.rep.email)
    day = auth.get("/pane/my-day").get_data(as_text=True)
    assert "Automatic capture stopped" in day and "connect it again" in day
    auth.login(app_world.admin.email)
    assert "connect it again" in auth.get("/admin/mailboxes", htmx=False).get_data(as_text=True)


def test_microsoft_admin_consent_is_recorded_for_the_tenant_it_names(
    capture_app, app_world: World, auth, standin: StandIn
) -> None:
    auth.login(app_world.manager.email)
    assert auth.get("/admin/mailboxes/consent/microsoft", htmx=False).status_code == 403
    auth.login(app_world.admin.email)
    started = auth.get("/admin/mailboxes/consent/microsoft", htmx=False)
    assert started.status_code == 303 and "/organizations/v2.0/adminconsent?" in started.location
    back = requests.get(started.location, allow_redirects=False, timeout=5).headers["Location"]
    assert auth.get(back.replace("state=", "state=forged"), htmx=False).status_code == 400  # and the state is spent
    started = auth.get("/admin/mailboxes/consent/microsoft", htmx=False)
    back = requests.get(started.location, allow_redirects=False, timeout=5).headers["Location"]
    assert auth.get(back.replace("admin_consent=True", "admin_consent=False"), htmx=False).status_code == 400
    started = auth.get("/admin/mailboxes/consent/microsoft", htmx=False)
    back = requests.get(started.location, allow_redirects=False, timeout=5).headers["Location"]
    assert auth.get(back.removeprefix("http://localhost"), htmx=False).status_code == 303
    with capture_app.extensions["inboxcrm.db"].sessions() as session:
        grant = session.scalar(select(MailGrant))
        assert (grant.provider, grant.directory, grant.organization_id) == (
            "microsoft",
            "standin-tenant",
            app_world.org.id,
        )


# -- the providers' answers are untrusted -----------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(GRAPH_KEYS),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=30),
            lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3),
            max_leaves=8,
        ),
    )
)
def test_any_answer_is_read_or_skipped_never_a_crash(item: dict) -> None:
    message = providers.graph_message(item)
    assert message is None or (message.from_address and message.internet_message_id)
    event = providers.graph_event(item)
    assert event is None or event.end >= event.start
    google = providers.google_event(item)
    assert google is None or google.uid


def test_a_page_with_neither_link_nor_cursor_is_a_provider_error() -> None:
    with pytest.raises(providers.ProviderError, match="neither"):
        providers.Page().linked(None, "", "Graph's page")
    assert providers.Page().linked("next", "delta", "x").page == "next"
    assert providers.Page().linked(None, "delta", "x").cursor == "delta"


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (429, providers.Throttled),
        (503, providers.Throttled),
        (410, providers.CursorExpired),
        (404, providers.CursorExpired),
        (403, providers.ConsentRevoked),
        (500, providers.ProviderError),
    ],
)
def test_the_providers_statuses_are_our_errors(status: int, error: type) -> None:
    answer = requests.Response()
    answer.status_code = status
    answer.headers["Retry-After"] = "7"
    answer._content = b"{}"
    with pytest.raises(error) as raised:
        providers.Api._answer(answer)
    if error is providers.Throttled:
        assert raised.value.seconds == 7


def test_a_mail_logged_as_it_was_sent_is_found_in_sent_items_not_taken_twice(
    session: Session, sessions, world: World, standin: StandIn, reader: sync.Reader
) -> None:
    rep, sent_at = world.rep, datetime.now(UTC).replace(microsecond=0)
    for key, to in (("a" * 32, ANN), ("b" * 32, "ceo@acme.test")):
        log_email(
            session,
            rep,
            {
                "send_key": key,
                "from_address": rep.email,
                "to": [to],
                "subject": "Proposal",
                "sent_at": sent_at.isoformat(),
            },
            sending=True,
        )
    session.commit()
    standin.deliver(
        rep.email, sender=rep.email, to=["ceo@acme.test"], subject="Proposal", sent_at=sent_at, message_id="<p2@x>"
    )
    standin.deliver(rep.email, sender=rep.email, to=[ANN], subject="Proposal", sent_at=sent_at, message_id="<p1@x>")
    mailbox = connect(session, reader, rep)
    result = run(session, sessions, reader, mailbox.id)
    assert result.captured == 0
    session.expire_all()
    ids = dict(
        session.execute(select(Activity.external_id, Activity.id).where(Activity.organization_id == world.org.id)).all()
    )
    assert "<p1@x>" in ids and "<p2@x>" in ids and not any(k and k.startswith("send:") for k in ids)
    assert len(ids) == 2
    to_ann = session.get(Activity, ids["<p1@x>"])
    assert {p.address for p in to_ann.participants if p.role == "to"} == {ANN}  # each found by its recipients


def test_a_mail_goes_to_its_threads_deal_else_to_none_among_several(
    session: Session, sessions, world: World, standin: StandIn, reader: sync.Reader
) -> None:
    second = make_deal(session, world.org, world.account, world.rep, world.stages[0], "Second lane")
    session.commit()
    log_email(
        session,
        world.rep,
        {"internet_message_id": "<t1@acme.test>", "from_address": ANN, "to": [world.rep.email], "subject": "Lanes",
         "conversation_id": "thread-7", "opportunity_id": second.id},
    )  # fmt: skip
    session.commit()
    standin.deliver(world.rep.email, sender=ANN, to=[world.rep.email], subject="Re: Lanes", thread="thread-7")
    standin.deliver(world.rep.email, sender=ANN, to=[world.rep.email], subject="Another matter", thread="thread-8")
    mailbox = connect(session, reader, world.rep)
    run(session, sessions, reader, mailbox.id)
    deals = {a.subject: a.opportunity_id for a in captured(session, world)}
    assert deals == {"Re: Lanes": second.id, "Another matter": None}  # two open deals: the pane offers the choice
