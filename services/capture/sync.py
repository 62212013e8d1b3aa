"""One pass over a connected mailbox: each folder's feed read from where it stopped, a page at
a time, each page captured and committed with the feed's new position, so that a worker that
stops mid-pass loses at most one page, and reading it again makes no second activity.

A pass holds the mailbox's lease (``claim``): an ``UPDATE`` that succeeds for one worker only,
renewed with every page; a lease whose worker died runs out after ``LEASE``. What stops a pass:

* the provider throttles (429, 503): the mailbox waits the ``Retry-After`` it was given;
* a saved position expired (410, Gmail's 404): the folder is read again whole, once per pass;
  what was captured already is found by its Message-ID or UID and not taken twice;
* the consent is gone (a refresh refused as ``invalid_grant``, 401 after a refresh, 403): the
  mailbox stops, in error, with why, and its dead tokens are dropped;
* anything else the provider does wrong: the reason is kept and the next poll tries again.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import requests
from joserfc import jwt
from joserfc.jwk import RSAKey
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from services.audit import record_event
from services.capture.providers import (
    MAIL_SCOPES,
    Api,
    ConsentRevoked,
    CursorExpired,
    Endpoints,
    Page,
    ProviderError,
    Throttled,
    Token,
    calendar_page,
    gmail_history_id,
    gmail_page,
    graph_first_url,
    graph_page,
    graph_user,
    post_token,
)
from services.capture import meetings, push
from services.capture.rules import capture_event, capture_message, settle_meetings
from services.capture.vault import SecretUnreadable, Vault
from services.models import Mailbox, MailboxFeed, MailboxState, MailGrant
from services.types import utcnow

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=5)
POLL = timedelta(minutes=3)  # where no push is configured, how often a mailbox is read
RETRY = timedelta(minutes=10)  # after a provider's failure
PAGES = 40  # per folder and pass: a long backfill goes on in the next pass, other mailboxes get their turn
FOLDERS = {"microsoft": ("inbox", "sentitems", "calendar"), "google": ("mail", "calendar")}
READABLE = (MailboxState.CONNECTED.value, MailboxState.SYNCING.value, MailboxState.CURRENT.value)


@dataclass
class GoogleServiceAccount:
    """The service account Google Workspace admins delegate domain-wide authority to: its
    e-mail and private key (the JSON key file's ``client_email`` and ``private_key``)."""

    email: str
    private_key: str


@dataclass
class Reader:
    """What a pass needs from outside the store: where the providers are, the vault, an HTTP
    session, and how long to pause between a backfill's pages (the panes' writes go first)."""

    endpoints: Endpoints
    vault: Vault
    http: requests.Session = field(default_factory=requests.Session)
    pause: Callable[[], None] = lambda: None
    google_service_account: GoogleServiceAccount | None = None
    microsoft_app: tuple[str, str] | None = None  # client id and secret with application permissions
    # Push (``services.capture.push``): the public base URL the providers notify, the secret its
    # client states are made with, and the Pub/Sub topic Gmail publishes to. None: polling only.
    push_url: str | None = None
    push_secret: str = ""
    pubsub_topic: str | None = None


@dataclass
class Pass:
    """What one pass did."""

    mailbox_id: int
    ran: bool = False
    pages: int = 0
    seen: int = 0
    captured: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    done: bool = False  # every folder read to its provider's latest change
    stopped: str | None = None


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"[:64]


def claim(session: Session, mailbox_id: int, worker: str, now: datetime, *, force: bool = False) -> bool:
    """Take the mailbox's lease, if no live worker holds it (and it is due, unless ``force``)."""
    due = [Mailbox.claimed_until.is_(None) | (Mailbox.claimed_until < now), Mailbox.state.in_(READABLE)]
    if not force:
        due.append(Mailbox.next_sync_at.is_(None) | (Mailbox.next_sync_at <= now))
    taken = session.execute(
        update(Mailbox)
        .where(Mailbox.id == mailbox_id, *due)
        .values(claimed_by=worker, claimed_until=now + LEASE)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return taken.rowcount == 1


def release(session: Session, mailbox_id: int, worker: str) -> None:
    session.execute(
        update(Mailbox)
        .where(Mailbox.id == mailbox_id, Mailbox.claimed_by == worker)
        .values(claimed_by=None, claimed_until=None)
        .execution_options(synchronize_session=False)
    )
    session.commit()


def due_mailboxes(session: Session, now: datetime, limit: int = 500) -> list[int]:
    return list(
        session.scalars(
            select(Mailbox.id)
            .where(
                Mailbox.state.in_(READABLE),
                or_(Mailbox.next_sync_at.is_(None), Mailbox.next_sync_at <= now),
                or_(Mailbox.claimed_until.is_(None), Mailbox.claimed_until < now),
            )
            .order_by(Mailbox.next_sync_at.is_not(None), Mailbox.next_sync_at)
            .limit(limit)
        )
    )


def _token(session: Session, reader: Reader, mailbox: Mailbox, now: datetime) -> Callable[[bool], str]:
    def token(refresh: bool) -> str:
        if (
            not refresh
            and mailbox.access_secret
            and mailbox.access_expires_at
            and mailbox.access_expires_at > now + timedelta(minutes=1)
        ):
            return reader.vault.open(mailbox.access_secret)
        fresh = _new_token(session, reader, mailbox, now)
        mailbox.access_secret = reader.vault.seal(fresh.access)
        mailbox.access_expires_at = fresh.expires_at
        if fresh.refresh:  # Microsoft and Google may rotate the refresh token
            mailbox.secret = reader.vault.seal(fresh.refresh)
        return fresh.access

    return token


def _new_token(session: Session, reader: Reader, mailbox: Mailbox, now: datetime) -> Token:
    endpoints = reader.endpoints
    if mailbox.grant_id is None:
        if not mailbox.secret:
            raise ConsentRevoked("The mailbox has no sign-in saved: connect it again.")
        client_id, client_secret = endpoints.client(mailbox.provider)
        form = {
            "grant_type": "refresh_token",
            "refresh_token": reader.vault.open(mailbox.secret),
            "client_id": client_id,
            "client_secret": client_secret,
        }
        if mailbox.provider == "microsoft":
            form["scope"] = MAIL_SCOPES["microsoft"]
        return post_token(reader.http, endpoints.token_url(mailbox.provider), form, now)
    grant = session.get(MailGrant, mailbox.grant_id)
    if grant is None:
        raise ConsentRevoked("The organization's consent was withdrawn.")
    if mailbox.provider == "microsoft":
        if reader.microsoft_app is None:
            raise ConsentRevoked("This server has no Microsoft app with application permissions configured.")
        client_id, client_secret = reader.microsoft_app
        form = {
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": client_secret,
            "scope": f"{endpoints.graph}/.default",
        }
        return post_token(reader.http, endpoints.token_url("microsoft", grant.directory), form, now)
    account = reader.google_service_account
    if account is None:
        raise ConsentRevoked("This server has no Google service account for domain-wide delegation.")
    issued = int(now.timestamp())
    claims = {
        "iss": account.email,
        "sub": mailbox.address,
        "scope": MAIL_SCOPES["google"].removeprefix("openid email "),
        "aud": endpoints.google_token,
        "iat": issued,
        "exp": issued + 3600,
    }
    assertion = jwt.encode({"alg": "RS256", "typ": "JWT"}, claims, RSAKey.import_key(account.private_key))
    form = {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion}
    return post_token(reader.http, endpoints.google_token, form, now)


def _read_page(api: Api, reader: Reader, mailbox: Mailbox, feed: MailboxFeed, now: datetime) -> Page:
    endpoints = reader.endpoints
    since = mailbox.backfill_since or now
    if mailbox.provider == "microsoft":
        user = graph_user(mailbox.address if mailbox.grant_id else None)
        url = feed.page or feed.cursor or graph_first_url(endpoints.graph, user, feed.folder, since, now)
        return graph_page(api, url, feed.folder)
    if feed.folder == "calendar":
        return calendar_page(api, endpoints.calendar, feed.page, feed.cursor, since)
    if feed.cursor is None:  # a first pass: Gmail's history from here on is the next pass's start
        feed.cursor, feed.page = gmail_history_id(api, endpoints.gmail), "list:"
    return gmail_page(api, endpoints.gmail, feed.page or "", feed.cursor, since)


def _feed(session: Session, mailbox: Mailbox, folder: str) -> MailboxFeed:
    feed = session.scalar(select(MailboxFeed).where(MailboxFeed.mailbox_id == mailbox.id, MailboxFeed.folder == folder))
    if feed is None:
        feed = MailboxFeed(organization_id=mailbox.organization_id, mailbox_id=mailbox.id, folder=folder)
        session.add(feed)
    return feed


def sync_mailbox(
    sessions: sessionmaker[Session],
    reader: Reader,
    mailbox_id: int,
    *,
    clock: Callable[[], datetime] = utcnow,
    force: bool = False,
    worker: str | None = None,
) -> Pass:
    """One pass over the mailbox, if no other worker is on it (``force``: even before it is due)."""
    worker = worker or worker_name()
    result = Pass(mailbox_id)
    with sessions() as session:
        if not claim(session, mailbox_id, worker, clock(), force=force):
            return result
    result.ran = True
    try:
        with sessions() as session:
            mailbox = session.get(Mailbox, mailbox_id)
            assert mailbox is not None
            if not mailbox.user.is_active:
                _fail(session, mailbox, result, "Its owner was deactivated: nothing more is read.", clock())
                return result
            if mailbox.state == MailboxState.CONNECTED.value:
                mailbox.state = MailboxState.SYNCING.value
                session.commit()
            folders = FOLDERS[mailbox.provider]
        # Every folder read, even after one that is not done (a list, not a short-circuiting generator).
        done = all([_read_folder(sessions, reader, mailbox_id, folder, worker, clock, result) for folder in folders])  # noqa: C419
        with sessions() as session:
            mailbox = session.get(Mailbox, mailbox_id)
            assert mailbox is not None
            now = clock()
            if mailbox.state not in READABLE:
                return result
            settle_meetings(session, mailbox, now)
            if mailbox.provider == "microsoft" and result.stopped is None:
                api = Api(reader.http, _token(session, reader, mailbox, now))
                for capture in meetings.teams_meetings_waiting(session, mailbox, now):
                    meetings.fetch_teams_transcript(session, api, reader.endpoints.graph, mailbox, capture, now)
            if result.stopped is None:
                mailbox.problem = None
            if done and result.stopped is None:
                mailbox.state = MailboxState.CURRENT.value
                mailbox.synced_at = now
                mailbox.backfill_done_at = mailbox.backfill_done_at or now
                mailbox.next_sync_at = now + (push.SAFETY_POLL if _keep_push(session, reader, mailbox, now) else POLL)
            elif result.stopped is None:
                mailbox.next_sync_at = now  # more pages wait: the next pass goes on at once
            result.done = done and result.stopped is None
            session.commit()
    finally:
        with sessions() as session:
            release(session, mailbox_id, worker)
    return result


def _keep_push(session: Session, reader: Reader, mailbox: Mailbox, now: datetime) -> bool:
    """The mailbox's push subscriptions made or renewed, where push is configured. Returns
    whether push is on for it; a provider's refusal leaves it polled, and says why in the log."""
    if not reader.push_url or (mailbox.provider == "google" and not reader.pubsub_topic):
        return False
    api = Api(reader.http, _token(session, reader, mailbox, now))
    try:
        if mailbox.provider == "microsoft":
            feeds = [_feed(session, mailbox, folder) for folder in FOLDERS["microsoft"]]
            session.flush()
            push.subscribe(api, reader.endpoints.graph, mailbox, feeds, reader.push_url, reader.push_secret, now)
        else:
            assert reader.pubsub_topic is not None
            push.watch(api, reader.endpoints.gmail, _feed(session, mailbox, "mail"), reader.pubsub_topic, now)
    except (ProviderError, ConsentRevoked, SecretUnreadable) as failure:
        log.warning("mailbox %s: push not set up (%s); it is polled", mailbox.id, failure)
        return False
    return True


def _read_folder(
    sessions: sessionmaker[Session],
    reader: Reader,
    mailbox_id: int,
    folder: str,
    worker: str,
    clock: Callable[[], datetime],
    result: Pass,
) -> bool:
    """A folder's pages, each in its own transaction. Returns whether the folder reached its
    provider's latest change in this pass."""
    resynced = False
    for _ in range(PAGES):
        with sessions() as session:
            mailbox = session.get(Mailbox, mailbox_id)
            if mailbox is None or mailbox.state not in READABLE or mailbox.claimed_by != worker:
                return False  # disconnected, or the lease ran out and another worker took it
            now = clock()
            feed = _feed(session, mailbox, folder)
            api = Api(reader.http, _token(session, reader, mailbox, now))
            try:
                page = _read_page(api, reader, mailbox, feed, now)
            except CursorExpired:
                if resynced:
                    _stop(
                        session,
                        mailbox,
                        result,
                        "The provider keeps refusing to resume: it will be read again later.",
                        now + RETRY,
                    )
                    return False
                resynced = True
                feed.cursor = feed.page = None
                session.commit()
                continue
            except Throttled as throttled:
                _stop(session, mailbox, result, str(throttled), now + timedelta(seconds=throttled.seconds))
                return False
            except (ConsentRevoked, SecretUnreadable) as gone:
                _fail(session, mailbox, result, str(gone), now)
                return False
            except ProviderError as failure:
                _stop(session, mailbox, result, str(failure), now + RETRY)
                return False
            for message in page.messages:
                _count(result, capture_message(session, mailbox, message, now))
            for event in page.events:
                _count(result, capture_event(session, mailbox, event, now))
            seen = len(page.messages) + len(page.events)
            mailbox.seen += seen
            result.seen += seen
            result.pages += 1
            feed.page = page.page
            if page.cursor is not None:
                feed.cursor = page.cursor
            feed.synced_at = now
            mailbox.claimed_until = now + LEASE
            backfilling = mailbox.backfill_done_at is None
            session.commit()
            if page.page is None:
                return True
        if backfilling:
            reader.pause()
    return False


def _count(result: Pass, outcome: Any) -> None:
    if outcome.created:
        result.captured += 1
    elif outcome.activity is None:
        result.skipped[outcome.reason] = result.skipped.get(outcome.reason, 0) + 1


def _stop(session: Session, mailbox: Mailbox, result: Pass, why: str, retry_at: datetime) -> None:
    """For now: the reason kept for the rep and the admin, the next pass after ``retry_at``."""
    mailbox.problem = why[:500]
    mailbox.problem_at = retry_at
    mailbox.next_sync_at = retry_at
    result.stopped = why
    session.commit()
    log.info("mailbox %s waits until %s: %s", mailbox.id, retry_at, why)


def _fail(session: Session, mailbox: Mailbox, result: Pass, why: str, now: datetime) -> None:
    """For good: the consent is gone. Capture stops, its dead tokens dropped, until reconnected."""
    session.rollback()
    mailbox = session.get(Mailbox, mailbox.id, populate_existing=True)
    assert mailbox is not None
    mailbox.state = MailboxState.ERROR.value
    mailbox.problem = why[:500]
    mailbox.problem_at = now
    mailbox.secret = mailbox.access_secret = None
    mailbox.access_expires_at = None
    record_event(session, None, "capture_stopped", mailbox, after={"why": why})
    result.stopped = why
    session.commit()
    log.warning("mailbox %s stopped: %s", mailbox.id, why)
