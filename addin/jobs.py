"""Work off the request path, on Huey: webhook deliveries, follow-up reminders, the daily jobs.

One queue, one worker for all of it:

* the embedded default keeps the queue in a SQLite file beside the store (``instance/jobs.db``);
  ``make run`` starts a worker beside the server;
* production keeps it in Redis (``INBOXCRM_REDIS_URL``) and runs the worker as a service:
  ``huey_consumer addin.jobs.huey -w 4 -k thread`` (the README shows the unit).

The web process only enqueues (``deliver_webhooks`` after a commit that wrote deliveries); the
worker runs the tasks, each in an app context of its own, and the periodic ones. Deliveries go
in batches (``deliver_due``: claimed in one transaction, sent several at once, recorded in
another): under an integrator's write load, a delivery's own two write transactions each had
waited their turn for SQLite's lock behind the writers, and the queue fell minutes behind.

* every minute, the webhook deliveries that are due (retries, and any the queue lost);
* every five minutes, the follow-up reminders whose time has come;
* daily, every open deal's health (``services.health``), old evidence weighed again
  (``services.lexicon``), and mail bodies past each organization's retention (``services.privacy``).
"""

from __future__ import annotations

import logging
import os
import smtplib
import threading
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

from flask import Flask
from huey import RedisHuey, SqliteHuey, crontab
from huey.storage import RedisStorage, SqliteStorage
from sqlalchemy import select, text

from addin.capture import reader as capture_reader
from addin.settings import webhook_reach
from services.capture.notices import gone_dark, mail_notices
from services.capture.sync import due_mailboxes, sync_mailbox
from services.integration.outbound import poster
from services.integration import webhooks
from services.integration.api_tokens import forget_idempotency_keys
from services.health import snapshot
from services.lexicon import reweigh
from services.models import DealNotice, Opportunity, Organization
from services.privacy import remove_old_bodies
from services.reminders import send_reminders
from services.setup.importing import continue_import, forget_old_imports, waiting_runs
from services.setup.organizations import rebuild_figures
from services.types import utcnow

log = logging.getLogger(__name__)
INSTANCE = Path(__file__).resolve().parent.parent / "instance"


def _from_environment() -> Any:
    """The queue named by the environment, as the worker finds it (``huey_consumer addin.jobs.huey``)."""
    url = os.environ.get("INBOXCRM_REDIS_URL", "").strip()
    if url:
        return RedisHuey("inboxcrm", url=url)
    path = Path(os.environ.get("INBOXCRM_JOBS_PATH", str(INSTANCE / "jobs.db")))
    path.parent.mkdir(parents=True, exist_ok=True)  # a fresh checkout has no instance folder yet
    return SqliteHuey("inboxcrm", filename=str(path))


huey = _from_environment()
_app: Flask | None = None


def use(app: Flask) -> None:
    """Point the queue at the app's settings (Redis, or its SQLite file), and let its commits
    hand webhook deliveries to the queue."""
    global _app
    _app = app
    config = app.config
    if config.get("JOBS_REDIS_URL"):
        huey.storage = RedisStorage("inboxcrm", url=config["JOBS_REDIS_URL"])
    else:
        huey.storage = SqliteStorage("inboxcrm", filename=config["JOBS_SQLITE_PATH"])


_app_lock = threading.Lock()


def start_worker(make_app: Callable[[], Flask]) -> None:
    """The worker's app, made once as its first thread starts (a startup hook ``addin`` registers:
    ``huey_consumer addin.jobs.huey`` imports the package, and so the app's factory, first)."""
    with _app_lock:  # the worker's threads start at once
        if _app is None:
            use(make_app())


def _current_app() -> Flask:
    if _app is None:
        raise RuntimeError(
            "No app for the job queue: the worker makes one as it starts (addin.create_app registers it)."
        )
    return _app


def _sessions():
    return _current_app().extensions["inboxcrm.db"].sessions


def enqueue_deliveries(ids: list[int]) -> None:
    """After a commit that wrote deliveries (``services.integration.webhooks.NOTIFY``): a task to send what is
    due. A queue that is down loses nothing: the deliveries wait in the store for
    ``send_due_webhooks``."""
    try:
        deliver_webhooks(ids)
    except Exception:  # noqa: BLE001 - the outbox keeps them; the periodic job sends them
        log.exception("webhook deliveries %s not queued; the periodic job will send them", ids[:10])


def _poster() -> Any:
    """The app's webhook sender: public addresses only, and the hosts its settings allow."""
    app = _current_app()
    if "inboxcrm.webhook_post" not in app.extensions:
        app.extensions["inboxcrm.webhook_post"] = poster(webhook_reach(app.config))
    return app.extensions["inboxcrm.webhook_post"]


SENDERS = 8  # receivers answered at once within a batch (one slow receiver does not hold the others)
_senders = ThreadPoolExecutor(SENDERS, thread_name_prefix="webhook-send")


def deliver_due(
    delivery_ids: list[int] | None = None, now: datetime | None = None, post: Any = None
) -> tuple[int, dict[int, datetime | None]]:
    """One batch: the deliveries named (else any due) claimed in one transaction, sent outside
    any, several at once, and recorded in another (``services.integration.webhooks``). Returns how many were
    claimed, and when each failed one may be tried again."""

    now = now or utcnow()
    with _sessions()() as session:
        claimed = webhooks.claim_due(session, delivery_ids, now)
        session.commit()
    if not claimed:
        return 0, {}
    post = post or _poster()
    outcomes = dict(
        zip((c.delivery_id for c in claimed), _senders.map(lambda outgoing: webhooks.send(outgoing, post), claimed))
    )
    with _sessions()() as session:
        retries = webhooks.record_all(session, outcomes, now)
        session.commit()
    return len(claimed), retries


def deliver_once(delivery_id: int, now: datetime | None = None, post: Any = None) -> datetime | None:
    """One attempt at one delivery (``deliver_due``). Returns when to try again, if it failed and may."""
    return deliver_due([delivery_id], now, post)[1].get(delivery_id)


def _send_until_done() -> int:
    """Batches of whatever is due, the longest waiting first, until a batch comes back short:
    under write load one task takes what many commits queued, and the tasks after it find
    nothing left (a read, no write lock). A failure is tried again at its back-off."""

    sent = 0
    while True:
        with _current_app().extensions["inboxcrm.db"].read_sessions() as session:
            if not webhooks.any_due(session):
                return sent
        claimed, retries = deliver_due()
        sent += claimed
        if waits := [at for at in retries.values() if at is not None]:  # Huey's times are naive UTC
            deliver_webhooks.schedule((None,), eta=min(waits).astimezone(timezone.utc).replace(tzinfo=None))
        if claimed < webhooks.BATCH:
            return sent


@huey.task()
def deliver_webhooks(delivery_ids: list[int] | None) -> int:
    """Send the deliveries a commit wrote (``delivery_ids``, for the worker's log), with whatever
    else is due meanwhile."""
    return _send_until_done()


@huey.periodic_task(crontab(minute="*"))
def send_due_webhooks() -> int:
    """Whatever is due: retries, and anything the queue lost."""
    return _send_until_done()


@contextmanager
def smtp_server(config: Mapping[str, Any]) -> Iterator[smtplib.SMTP]:
    """The configured SMTP server, signed in: reminders and invitations go through it."""
    if not config["SMTP_HOST"]:
        raise RuntimeError(
            "Sending mail needs an SMTP server: set INBOXCRM_SMTP_HOST (and its port, user and password)."
        )
    with smtplib.SMTP(config["SMTP_HOST"], config["SMTP_PORT"], timeout=30) as smtp:
        if config["SMTP_STARTTLS"]:
            smtp.starttls()
        if config["SMTP_USER"]:
            smtp.login(config["SMTP_USER"], config["SMTP_PASSWORD"])
        yield smtp


def send_reminders_now(at: datetime | None = None) -> tuple[int, int]:
    """Send the reminders due (``services.reminders``) through the configured SMTP server."""

    config = _current_app().config
    with smtp_server(config) as smtp, _sessions()() as session:
        return send_reminders(session, at or utcnow(), smtp.send_message, config["MAIL_FROM"], config["BASE_URL"])


@huey.periodic_task(crontab(minute="*/5"))
def send_reminders_job() -> tuple[int, int] | None:
    if not _current_app().config["SMTP_HOST"]:
        return None  # reminders are off until an SMTP server is set
    return send_reminders_now()


def send_notices_now(at: datetime | None = None) -> int:
    """Deal notices not mailed yet (``services.capture.notices``), each to its owner, linking to
    the deal's account."""
    config = _current_app().config
    base = config["BASE_URL"] or "http://localhost:5000"
    with smtp_server(config) as smtp, _sessions()() as session:

        def link(notice: DealNotice) -> str:
            deal = session.get(Opportunity, notice.opportunity_id)
            return f"{base}/pane/accounts/{deal.account_id}/timeline" if deal else f"{base}/capture"

        return mail_notices(session, smtp.send_message, config["MAIL_FROM"], link, at)


@huey.periodic_task(crontab(minute="*/5"))
def send_notices_job() -> int | None:
    if not _current_app().config["SMTP_HOST"]:
        return None  # My day still shows them
    return send_notices_now()


@huey.task()
def import_job(run_id: int) -> int:
    """An import's rows (``services.setup.importing``), from where it stopped."""
    run = continue_import(_sessions(), run_id)
    return run.rows_done if run is not None else 0


@huey.periodic_task(crontab(minute="*"))
def resume_imports() -> int:
    """Imports queued when the queue was down, or left by a worker that stopped."""
    with _sessions()() as session:
        waiting = waiting_runs(session)
    for run_id in waiting:
        continue_import(_sessions(), run_id)
    return len(waiting)


def enqueue_import(run_id: int) -> None:
    try:
        import_job(run_id)
    except Exception:  # noqa: BLE001 - the run waits in the store for resume_imports
        log.exception("import %s not queued; the periodic job will take it up", run_id)


@huey.task()
def rebuild_job(organization_id: int) -> int:
    """An organization's figures recounted after a change of its time zone or fiscal year."""
    with _sessions()() as session:
        return rebuild_figures(session, organization_id)


@huey.periodic_task(crontab(minute="*/10"))
def resume_rebuilds() -> int:
    """Rebuilds asked for while the queue was down (the organization still says it is rebuilding)."""
    with _sessions()() as session:
        waiting = list(
            session.scalars(
                select(Organization.id).where(
                    Organization.rebuilding_since.is_not(None),
                    Organization.rebuilding_since < utcnow() - timedelta(minutes=10),
                )
            )
        )
        for organization_id in waiting:
            rebuild_figures(session, organization_id)
    return len(waiting)


def enqueue_rebuild(organization_id: int) -> None:
    try:
        rebuild_job(organization_id)
    except Exception:  # noqa: BLE001 - resume_rebuilds takes it up
        log.exception("rebuild of organization %s not queued; the periodic job will take it up", organization_id)


@huey.task()
def capture_job(mailbox_id: int) -> int:
    """A pass over a connected mailbox (``services.capture.sync``); a backfill too long for one
    pass leaves the mailbox due at once, and the next poll takes it up again."""
    return sync_mailbox(_sessions(), capture_reader(_current_app()), mailbox_id).captured


@huey.periodic_task(crontab(minute="*"))
def poll_mailboxes() -> int:
    """Every mailbox whose next pass is due (no push configured: every few minutes; a backfill:
    at once; a throttled one: after its Retry-After) handed to the queue, one task each."""
    with _sessions()() as session:
        due = due_mailboxes(session, utcnow())
    for mailbox_id in due:
        enqueue_capture(mailbox_id)
    return len(due)


def enqueue_capture(mailbox_id: int) -> None:
    try:
        capture_job(mailbox_id)
    except Exception:  # noqa: BLE001 - the mailbox stays due; poll_mailboxes takes it up
        log.exception("capture of mailbox %s not queued; the poll will take it up", mailbox_id)


def daily(at: datetime | None = None) -> dict[str, int]:
    """Every organization's daily work: deal health kept for the day, owners told of deals gone
    dark, the learned words weighed again as their evidence ages, mail bodies past retention removed; and the store's: events
    past their 30 days and idempotency keys past their day forgotten."""

    done = {"deals": 0, "words": 0, "bodies": 0, "gone_dark": 0}
    with _sessions()() as session:
        for org in session.scalars(select(Organization).order_by(Organization.id)).all():
            done["deals"] += snapshot(session, org, at)
            done["gone_dark"] += gone_dark(session, org, at)
            done["words"] += reweigh(session, org, None, at)
            done["bodies"] += remove_old_bodies(session, org, at)
            session.commit()
        done["events"] = webhooks.forget_old_events(session, at)
        done["idempotency_keys"] = forget_idempotency_keys(session, at)
        done["import_drafts"] = forget_old_imports(session, at)
        session.commit()
        if session.get_bind().dialect.name == "sqlite":
            session.execute(text("PRAGMA optimize"))  # the planner's statistics kept fresh as the store grows
    return done


@huey.periodic_task(crontab(hour="2", minute="15"))
def daily_job() -> dict[str, int]:
    return daily()


def init_app(app: Flask) -> None:

    use(app)
    if enqueue_deliveries not in webhooks.NOTIFY:
        webhooks.NOTIFY.append(enqueue_deliveries)
