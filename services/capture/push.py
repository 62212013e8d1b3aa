"""Push: the providers tell us a mailbox changed, and its next pass is due at once.

* **Microsoft Graph change notifications**: a subscription per folder (``created`` messages in
  the inbox and sent items, any change to events), made and renewed before it expires by each
  pass; Graph first checks the notification URL answers its ``validationToken``. Each
  notification carries the ``clientState`` we gave (an HMAC of the app's secret and the feed):
  one without it is ignored. Lifecycle notifications: ``reauthorizationRequired`` renews at the
  next pass, ``subscriptionRemoved`` makes a new one, ``missed`` reads the mailbox again.
* **Gmail**: ``users.watch`` on the inbox and sent mail, to a Cloud Pub/Sub topic whose push
  subscription posts here with a Google-signed OIDC token (checked by the route); the message
  names the mailbox and its new history id. Renewed daily (a watch lasts 7 days).

Where no push URL is configured (the embedded default), nothing is subscribed: the worker polls.
The notification only makes the mailbox due; what changed is read from the feed itself.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.capture.providers import Api, CursorExpired, ProviderError, graph_user
from services.models import Mailbox, MailboxFeed

GRAPH_LIFETIME = timedelta(days=3)  # Graph allows under 7 days for messages and events
RENEW_BEFORE = timedelta(days=1)
WATCH_RENEW_BEFORE = timedelta(days=6)  # a Gmail watch lasts 7 days; Google asks for a daily renewal
SAFETY_POLL = timedelta(minutes=30)  # with push, a pass this often anyway: a lost notification costs no mail


def client_state(secret: str, feed_id: int) -> str:
    return hmac.new(secret.encode(), f"inboxcrm feed {feed_id}".encode(), hashlib.sha256).hexdigest()[:64]


def _resource(mailbox: Mailbox, folder: str) -> str:
    user = graph_user(mailbox.address if mailbox.grant_id else None)
    return f"{user}/events" if folder == "calendar" else f"{user}/mailFolders('{folder}')/messages"


def subscribe(
    api: Api, graph: str, mailbox: Mailbox, feeds: list[MailboxFeed], push_url: str, secret: str, now: datetime
) -> int:
    """Every folder's Graph subscription made, or renewed when it ends within a day. Returns how
    many were made or renewed."""
    touched = 0
    for feed in feeds:
        expires = now + GRAPH_LIFETIME
        stamp = expires.strftime("%Y-%m-%dT%H:%M:%S.0000000Z")
        if feed.subscription_id and feed.subscription_expires_at and feed.subscription_expires_at > now + RENEW_BEFORE:
            continue
        answer: dict[str, Any] | None = None
        if feed.subscription_id:
            try:
                answer = api.send(
                    "PATCH", f"{graph}/v1.0/subscriptions/{feed.subscription_id}", {"expirationDateTime": stamp}
                )
            except CursorExpired:  # 404: the subscription is gone; a new one below
                answer = None
        if answer is None:
            answer = api.send(
                "POST",
                f"{graph}/v1.0/subscriptions",
                {
                    "changeType": "created,updated,deleted" if feed.folder == "calendar" else "created",
                    "notificationUrl": f"{push_url}/capture/graph/notifications",
                    "lifecycleNotificationUrl": f"{push_url}/capture/graph/lifecycle",
                    "resource": _resource(mailbox, feed.folder),
                    "expirationDateTime": stamp,
                    "clientState": client_state(secret, feed.id),
                },
            )
        if not isinstance(answer.get("id"), str):
            raise ProviderError("Graph's subscription had no id.")
        feed.subscription_id = answer["id"]
        feed.subscription_expires_at = expires
        touched += 1
    return touched


def watch(api: Api, gmail: str, feed: MailboxFeed, topic: str, now: datetime) -> bool:
    """Gmail's watch on the mailbox's inbox and sent mail, made or renewed (daily)."""
    if feed.subscription_expires_at and feed.subscription_expires_at > now + WATCH_RENEW_BEFORE:
        return False
    answer = api.send(
        "POST",
        f"{gmail}/gmail/v1/users/me/watch",
        {"topicName": topic, "labelIds": ["INBOX", "SENT"], "labelFilterBehavior": "include"},
    )
    expiration = answer.get("expiration")
    if not isinstance(expiration, (str, int)) or not str(expiration).isdigit():
        raise ProviderError("Gmail's watch had no expiration.")
    feed.subscription_id = "watch"
    feed.subscription_expires_at = datetime.fromtimestamp(int(expiration) / 1000, tz=now.tzinfo)
    return True


def _due(session: Session, mailbox_ids: set[int]) -> list[int]:
    due = []
    for mailbox in session.scalars(select(Mailbox).where(Mailbox.id.in_(mailbox_ids))):
        if mailbox.state in ("connected", "syncing", "current"):
            mailbox.next_sync_at = None
            due.append(mailbox.id)
    session.flush()
    return due


def graph_notified(session: Session, notifications: Any, secret: str, *, lifecycle: bool = False) -> list[int]:
    """Graph's notifications (the ``value`` list), each checked against its feed's
    ``clientState``. Returns the mailboxes now due; anything unknown or forged is ignored."""
    if not isinstance(notifications, list):
        raise ValueError("not a list of notifications")
    mailboxes: set[int] = set()
    for note in notifications[:1000]:
        if not isinstance(note, dict) or not isinstance(note.get("subscriptionId"), str):
            continue
        feed = session.scalar(select(MailboxFeed).where(MailboxFeed.subscription_id == note["subscriptionId"][:200]))
        given = note.get("clientState")
        if feed is None or not isinstance(given, str) or not hmac.compare_digest(given, client_state(secret, feed.id)):
            continue
        event = note.get("lifecycleEvent") if lifecycle else None
        if event == "reauthorizationRequired":
            feed.subscription_expires_at = None  # renewed by the next pass
        elif event == "subscriptionRemoved":
            feed.subscription_id = feed.subscription_expires_at = None  # a new one made by the next pass
        mailboxes.add(feed.mailbox_id)
    return _due(session, mailboxes)


def gmail_pushed(session: Session, address: str) -> list[int]:
    """A Pub/Sub push for a Gmail address: its Google mailboxes due now."""
    ids = set(
        session.scalars(
            select(Mailbox.id).where(Mailbox.provider == "google", Mailbox.address == address.strip().lower())
        )
    )
    return _due(session, ids)
