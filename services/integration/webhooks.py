"""Webhooks: each change to a synced record, sent to the endpoints an admin registered.

* **An outbox**: a change's deliveries are written in the change's own transaction
  (``queue_deliveries``, from ``before_commit``), so none is lost between the store and the
  job queue; the queue is told after the commit (``NOTIFY``), and a periodic job sends what is
  due whatever the queue lost (``due``).
* **Thin, signed events**: an event names the record, its type, its version and whether it was
  deleted (``{"type": "contacts.updated", "data": {"id": 5, "version": 42}}``); the receiver
  reads the record through the API if it wants it. Each is signed as Stripe and GitHub do: the
  header ``Inboxcrm-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>" with the
  endpoint's secret>`` (``sign``, ``verify``).
* **An event list to catch up from**: every change is also kept as an event (``ChangeEvent``,
  ``EVENTS_KEPT``) for an organization with an endpoint, on or off; a receiver that was down,
  or an endpoint an admin turned off, reads what it missed from ``GET /api/v1/events``, as
  Stripe's receivers do from its events.
* **Retries with back-off** (``BACKOFF``): each attempt is recorded for the admin; a delivery
  that fails them all is marked failed; an endpoint that fails ``DISABLE_AFTER`` attempts in a
  row is disabled until an admin turns it on again.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable, Iterable

from sqlalchemy import delete, event, func, inspect, select, true
from sqlalchemy.orm import Session

from services.access import require_role
from services.audit import record_event
from services.integration.cursor import Cursor, rows_past
from services.errors import DomainError, NotFound
from services.models import ChangeEvent, User, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from services.integration.outbound import Reach, check_url, outcome
from services.types import as_utc, utcnow

BACKOFF = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=6),
    timedelta(hours=12),
)  # after each failed attempt; one more attempt than these and it has failed
DISABLE_AFTER = 20  # attempts failed in a row, across deliveries: the endpoint is off
TIMEOUT_SECONDS = 10
SIGNATURE = "Inboxcrm-Signature"
TOLERANCE_SECONDS = 300

# Told the ids of deliveries just committed (the job queue registers here: ``addin.jobs``).
NOTIFY: list[Callable[[list[int]], None]] = []


def sign(secret: str, body: bytes, at: int | None = None) -> str:
    at = int(time.time()) if at is None else at
    digest = hmac.new(secret.encode(), f"{at}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={at},v1={digest}"


def verify(secret: str, body: bytes, header: str, now: int | None = None, tolerance: int = TOLERANCE_SECONDS) -> bool:
    """What a receiver does: the signature matches and is recent (a replay of an old one is refused)."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        at = int(parts["t"])
    except (ValueError, KeyError):
        return False
    now = int(time.time()) if now is None else now
    expected = sign(secret, body, at).split("v1=", 1)[1]
    return abs(now - at) <= tolerance and hmac.compare_digest(expected, parts.get("v1", ""))


# -- endpoints, an admin's ----------------------------------------------------------------------------


def add_endpoint(
    session: Session,
    actor: User,
    url: str | None,
    events: Iterable[str] = (),
    *,
    reach: Reach,
    known: Iterable[str] = (),
) -> tuple[WebhookEndpoint, str]:
    """Register an endpoint; returns it and its secret (shown once). A public HTTPS address
    (``services.integration.outbound``: plain HTTP and internal hosts only where this deployment allows them)."""
    require_role(actor, "admin")
    url = check_url(url, reach)
    events = sorted(set(events))
    if unknown := [e for e in events if e not in set(known)]:
        raise DomainError(f"Not a kind of record: {', '.join(unknown)[:100]}.", {"events": ["Unknown record type."]})
    secret = "whsec_" + secrets.token_hex(24)
    endpoint = WebhookEndpoint(organization_id=actor.organization_id, url=url, secret=secret, events=events)
    session.add(endpoint)
    session.flush()
    record_event(session, actor, "create", endpoint, after={"url": url, "events": events})
    return endpoint, secret


def endpoint_of(session: Session, actor: User, endpoint_id: int) -> WebhookEndpoint:
    require_role(actor, "admin")
    endpoint = session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None or endpoint.organization_id != actor.organization_id:
        raise NotFound("endpoint")
    return endpoint


def set_enabled(session: Session, actor: User, endpoint_id: int, enabled: bool) -> CatchUp | None:
    """Turn an endpoint off (nothing is queued for it; its changes stay in the event list), or on
    again: returns what that sends, and what it missed meanwhile (``catch_up``)."""
    endpoint = endpoint_of(session, actor, endpoint_id)
    resumed = catch_up(session, endpoint) if enabled else None
    endpoint.disabled_at = None if enabled else (endpoint.disabled_at or utcnow())
    endpoint.failures = 0 if enabled else endpoint.failures
    session.flush()
    record_event(
        session, actor, "enable" if enabled else "disable", endpoint, after={"disabled_at": str(endpoint.disabled_at)}
    )
    return resumed


def remove_endpoint(session: Session, actor: User, endpoint_id: int) -> None:
    endpoint = endpoint_of(session, actor, endpoint_id)
    record_event(session, actor, "delete", endpoint, before={"url": endpoint.url})
    session.delete(endpoint)
    session.flush()


def endpoints(session: Session, actor: User) -> list[WebhookEndpoint]:
    require_role(actor, "admin")
    return list(
        session.scalars(
            select(WebhookEndpoint)
            .where(WebhookEndpoint.organization_id == actor.organization_id)
            .order_by(WebhookEndpoint.created_at)
        )
    )


def recent_deliveries(
    session: Session, endpoint: WebhookEndpoint, limit: int = 20
) -> list[tuple[WebhookDelivery, list[WebhookAttempt]]]:
    deliveries = session.scalars(
        select(WebhookDelivery)
        .where(WebhookDelivery.endpoint_id == endpoint.id)
        .order_by(WebhookDelivery.id.desc())
        .limit(limit)
    ).all()
    attempts: dict[int, list[WebhookAttempt]] = {d.id: [] for d in deliveries}
    for attempt in session.scalars(
        select(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(list(attempts))).order_by(WebhookAttempt.id)
    ):
        attempts[attempt.delivery_id].append(attempt)
    return [(d, attempts[d.id]) for d in deliveries]


# -- the outbox --------------------------------------------------------------------------------------

_CHANGED = "inboxcrm.webhook_changes"
_QUEUED = "inboxcrm.webhook_queued"


def changed(
    session: Session,
    organization_id: int,
    record_type: str,
    record: Any = None,
    *,
    created: bool = False,
    record_id: int | None = None,
    version: int = 0,
    deleted: bool = False,
) -> None:
    """Note a change for the endpoints (``services.integration.sync`` calls it for each change it numbers):
    a record (its id and version read at the commit, once it has them), or one deleted outright."""
    session.info.setdefault(_CHANGED, []).append(
        (organization_id, record_type, record, created, record_id, version, deleted)
    )


def event_payload(change: ChangeEvent) -> dict[str, Any]:
    """An event as it is sent, and listed at ``GET /api/v1/events``."""
    return {
        "id": f"evt_{change.id}",
        "type": change.type,
        "created_at": as_utc(change.created_at).isoformat(),
        "data": {
            "record_type": change.record_type,
            "id": change.record_id,
            "version": change.version,
            "deleted": change.deleted,
        },
    }


def queue_deliveries(session: Session) -> None:
    """Before the commit: an event per change, for an organization with any endpoint (on or off:
    one that is off catches up from the event list), and a delivery per event and endpoint
    that is on and wants its type."""
    session.flush()  # ``before_commit`` comes before the commit's own flush: what it will write is noted first
    noted = session.info.pop(_CHANGED, None)
    if not noted:
        return
    orgs = {org for org, *_ in noted}
    endpoints_of: dict[int, list[WebhookEndpoint]] = {}
    for endpoint in session.scalars(select(WebhookEndpoint).where(WebhookEndpoint.organization_id.in_(orgs))):
        endpoints_of.setdefault(endpoint.organization_id, []).append(endpoint)
    if not endpoints_of:
        return
    now = utcnow()
    events: list[ChangeEvent] = []
    seen: set[tuple[str, int]] = set()
    for org, record_type, record, created, record_id, version, deleted in noted:
        if record is not None and not inspect(record).persistent:
            continue  # made in a savepoint that was rolled back
        ident = record.id if record is not None else record_id
        if org not in endpoints_of or (record_type, ident) in seen:
            continue
        seen.add((record_type, ident))
        gone = deleted or getattr(record, "deleted_at", None) is not None
        action = "deleted" if gone else ("created" if created else "updated")
        events.append(
            ChangeEvent(
                organization_id=org,
                type=f"{record_type}.{action}",
                record_type=record_type,
                record_id=ident,
                version=record.sync_seq if record is not None else version,
                deleted=gone,
                created_at=now,
            )
        )
    if not events:
        return
    session.add_all(events)
    session.flush()
    made = []
    for change in events:
        for endpoint in endpoints_of[change.organization_id]:
            if endpoint.disabled_at is not None or (endpoint.events and change.record_type not in endpoint.events):
                continue
            made.append(
                WebhookDelivery(
                    organization_id=change.organization_id,
                    endpoint_id=endpoint.id,
                    next_attempt_at=now,
                    event=event_payload(change),
                )
            )
    if made:
        session.add_all(made)
        session.flush()
        session.info.setdefault(_QUEUED, []).extend(d.id for d in made)


# -- catching up ---------------------------------------------------------------------------------------

EVENTS_KEPT = timedelta(days=30)  # as the README says; the daily job forgets older ones


def events_after(session: Session, organization_id: int, cursor: Cursor, limit: int) -> list[ChangeEvent]:
    """The organization's events past ``cursor``, in the order their changes committed (the
    change number, then the event's id; ids alone are handed out before commit, and on
    PostgreSQL two transactions can commit in the other order), ``limit`` at most."""
    return rows_past(
        session,
        select(ChangeEvent).where(ChangeEvent.organization_id == organization_id),
        ChangeEvent.version,
        ChangeEvent.id,
        cursor,
        limit,
    )


def forget_old_events(session: Session, now: datetime | None = None) -> int:
    """The daily job: events past ``EVENTS_KEPT`` go."""
    cutoff = (now or utcnow()) - EVENTS_KEPT
    return session.execute(
        delete(ChangeEvent).where(ChangeEvent.created_at < cutoff).execution_options(synchronize_session=False)
    ).rowcount


@dataclass(frozen=True)
class CatchUp:
    """What turning an endpoint on again will do: the deliveries still waiting are sent; the
    changes made while it was off were not queued for it, and are read from the event list,
    from ``after`` on."""

    waiting: int
    missed: int
    after: Cursor  # past the last event before it was turned off

    @property
    def cursor(self) -> str:
        """``GET /api/v1/events?cursor=...``: the events from the moment it was turned off."""
        return self.after.encode()


def catch_up(session: Session, endpoint: WebhookEndpoint) -> CatchUp | None:
    """For an endpoint that is off: what turning it on will send, and what it missed meanwhile."""
    if endpoint.disabled_at is None:
        return None
    waiting = (
        session.scalar(
            select(func.count())
            .select_from(WebhookDelivery)
            .where(WebhookDelivery.endpoint_id == endpoint.id, WebhookDelivery.status == "pending")
        )
        or 0
    )
    since = ChangeEvent.created_at >= endpoint.disabled_at
    wanted = ChangeEvent.record_type.in_(endpoint.events) if endpoint.events else true()
    missed = (
        session.scalar(
            select(func.count())
            .select_from(ChangeEvent)
            .where(ChangeEvent.organization_id == endpoint.organization_id, since, wanted)
        )
        or 0
    )
    last = session.execute(
        select(ChangeEvent.version, ChangeEvent.id)
        .where(ChangeEvent.organization_id == endpoint.organization_id, ChangeEvent.created_at < endpoint.disabled_at)
        .order_by(ChangeEvent.version.desc(), ChangeEvent.id.desc())
        .limit(1)
    ).first()
    return CatchUp(waiting, missed, Cursor(*last) if last else Cursor())


def _after_commit(session: Session) -> None:
    queued = session.info.pop(_QUEUED, None)
    if queued:
        for notify in NOTIFY:
            notify(queued)


def _after_rollback(session: Session, *_: Any) -> None:
    session.info.pop(_CHANGED, None)
    session.info.pop(_QUEUED, None)


def install(session_class: type[Session] = Session) -> None:
    if not event.contains(session_class, "before_commit", queue_deliveries):
        event.listen(session_class, "before_commit", queue_deliveries)
        event.listen(session_class, "after_commit", _after_commit)
        event.listen(session_class, "after_rollback", _after_rollback)


# -- sending --------------------------------------------------------------------------------------------


LEASE = timedelta(seconds=3 * TIMEOUT_SECONDS)  # a claimed delivery's next try is put off this long while it is sent


@dataclass(frozen=True)
class Outgoing:
    """A delivery claimed for sending: where, what, signed."""

    delivery_id: int
    url: str
    body: bytes
    headers: dict[str, str]


@dataclass(frozen=True)
class Outcome:
    status_code: int | None
    error: str | None  # None: delivered
    milliseconds: int


BATCH = 200  # deliveries claimed, sent and recorded together: two short write transactions for the lot


def _due(query: Any, now: datetime) -> Any:
    """``query`` narrowed to the deliveries that are pending and due, of endpoints that are on."""
    return query.join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id).where(
        WebhookDelivery.status == "pending",
        WebhookDelivery.next_attempt_at <= now,
        WebhookEndpoint.disabled_at.is_(None),
    )


def claim_due(
    session: Session, delivery_ids: Iterable[int] | None = None, now: datetime | None = None, limit: int = BATCH
) -> list[Outgoing]:
    """Take deliveries to send: those named, else any, that are pending and due, of endpoints
    that are on, the longest waiting first (``limit`` at most). Each one's next try is put off
    by ``LEASE`` (another worker thread, or the periodic job, leaves it alone meanwhile; a
    worker that dies leaves it to be tried again then). The caller commits before it sends
    (``send``), so that no transaction, and on SQLite no write lock, is held across the
    receivers' answers; a batch costs two write transactions however many it holds, which is
    what keeps deliveries up with a store under write load."""
    query = (
        _due(select(WebhookDelivery, WebhookEndpoint), now or utcnow())
        .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
        .limit(limit)
        .with_for_update(of=WebhookDelivery, skip_locked=True)
    )  # PostgreSQL: two workers take different ones
    if delivery_ids is not None:
        query = query.where(WebhookDelivery.id.in_(list(delivery_ids)))
    now = now or utcnow()
    claimed = []
    for delivery, endpoint in session.execute(query):
        delivery.next_attempt_at = now + LEASE
        body = json.dumps(delivery.event, separators=(",", ":"), sort_keys=True).encode()
        claimed.append(
            Outgoing(
                delivery.id,
                endpoint.url,
                body,
                {
                    "Content-Type": "application/json",
                    "User-Agent": "InboxCRM-Webhooks/1",
                    SIGNATURE: sign(endpoint.secret, body, int(now.timestamp())),
                },
            )
        )
    session.flush()
    return claimed


def any_due(session: Session, now: datetime | None = None) -> bool:
    """Whether a delivery waits to be sent, as ``claim_due`` would take it: asked with a reading
    session before a claim, so that a worker with nothing to send takes no write lock."""
    return session.scalar(_due(select(WebhookDelivery.id), now or utcnow()).limit(1)) is not None


def send(outgoing: Outgoing, post: Callable[..., Any]) -> Outcome:
    """POST a claimed delivery (``post`` is ``requests.post``'s shape: ``services.integration.outbound.poster``,
    which reaches public addresses only); any failure of the receiver's, an error status or none
    at all, is a failed attempt, kept as its category (``services.integration.outbound.outcome``)."""
    started = time.perf_counter()
    status_code, error = None, None
    try:
        response = post(
            outgoing.url, data=outgoing.body, timeout=TIMEOUT_SECONDS, allow_redirects=False, headers=outgoing.headers
        )
        status_code = response.status_code
        if not 200 <= status_code < 300:
            error = outcome(status_code=status_code)
    except Exception as failure:  # noqa: BLE001 - recorded as the attempt's outcome
        error = outcome(failure)
    return Outcome(status_code, error, int((time.perf_counter() - started) * 1000))


def record_all(
    session: Session, outcomes: dict[int, Outcome], now: datetime | None = None
) -> dict[int, datetime | None]:
    """Record each attempt and what follows: delivered; or failed, to be tried again after its
    back-off (its time returned), or failed for good; an endpoint turned off after
    ``DISABLE_AFTER`` failures in a row. One transaction for the batch."""
    now = now or utcnow()
    deliveries = {
        d.id: d
        for d in session.scalars(
            select(WebhookDelivery)
            .where(WebhookDelivery.id.in_(list(outcomes)))
            .order_by(WebhookDelivery.id)
            .with_for_update()
        )
    }
    endpoints = {
        e.id: e
        for e in session.scalars(
            select(WebhookEndpoint)
            .where(WebhookEndpoint.id.in_({d.endpoint_id for d in deliveries.values()}))
            .order_by(WebhookEndpoint.id)
            .with_for_update()
        )
    }
    retries: dict[int, datetime | None] = {}
    for delivery_id, result in outcomes.items():
        delivery = deliveries[delivery_id]
        endpoint = endpoints[delivery.endpoint_id]
        session.add(
            WebhookAttempt(
                organization_id=delivery.organization_id,
                delivery_id=delivery.id,
                at=now,
                status_code=result.status_code,
                error=result.error,
                milliseconds=result.milliseconds,
            )
        )
        delivery.attempts += 1
        retries[delivery_id] = None
        if result.error is None:
            delivery.status, delivery.delivered_at, delivery.next_attempt_at = "delivered", now, None
            endpoint.failures = 0
            continue
        endpoint.failures += 1
        if endpoint.failures >= DISABLE_AFTER and endpoint.disabled_at is None:
            endpoint.disabled_at = now
        if delivery.attempts > len(BACKOFF):
            delivery.status, delivery.next_attempt_at = "failed", None
            continue
        delivery.next_attempt_at = retries[delivery_id] = now + BACKOFF[delivery.attempts - 1]
    session.flush()
    return retries
