"""Benchmark: webhooks delivered while an integrator writes through the API.

    python bench/webhooks.py --db sqlite:///bench/results/scale30.db
    python bench/webhooks.py --db postgresql+psycopg://.../bench30

As production runs it: gunicorn serves ``wsgi:app`` on the store (4 workers) and the job worker
(``huey_consumer addin.jobs.huey -w 4 -k thread``, the README's unit) sends the deliveries, on
the embedded SQLite queue. One endpoint wants every change: a receiver on loopback (allowed as
an on-premises deployment allows its own hosts) notes when each event arrives. Then:

* **quiet**: one write a second for ``--quiet-seconds``;
* **busy**: ``--writers`` integrator threads write through the API as fast as it answers for
  ``--seconds``, each write with an ``Idempotency-Key``: a contact renamed (``PATCH`` with
  ``If-Match``) or a call logged (``POST /api/v1/activities``), in turn.

A delivery's latency is from its event (written in the change's own transaction) to its
arrival. Prints, for each phase: writes, writes per second, events, events arrived (within
``--drain`` seconds of the last write), p50, p95 and the slowest, in milliseconds. What the run wrote is taken
back afterwards: names restored, calls deleted (``bench.logs``), the endpoint, token, events
and deliveries removed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import urllib3  # noqa: E402
from sqlalchemy import delete, select  # noqa: E402

from bench.load import _percentile  # noqa: E402
from tests.servers import Gunicorn, Receiver  # noqa: E402

SECRET = "bench-webhooks"


def _arrivals(receiver: Receiver) -> dict[str, float]:
    """Each event's first arrival at the receiver."""
    seen: dict[str, float] = {}
    for (_, body), at in zip(list(receiver.requests), list(receiver.arrived)):
        seen.setdefault(json.loads(body)["id"], at)
    return seen


def _setup(app: Any, url: str) -> dict[str, Any]:
    from services.integration import api_tokens, webhooks
    from services.models import Contact, User
    from services.integration.outbound import Reach

    with app.extensions["inboxcrm.db"].sessions() as session:
        admin = session.scalars(select(User).where(User.role == "admin")).first()
        endpoint, _ = webhooks.add_endpoint(
            session, admin, url, reach=Reach(allow_http=True, hosts=frozenset({"127.0.0.1"}))
        )
        token, text = api_tokens.create_token(session, admin, "Bench webhooks", "read write")
        contacts = session.execute(
            select(Contact.id, Contact.name)
            .where(Contact.organization_id == admin.organization_id)
            .order_by(Contact.id)
            .limit(400)
        ).all()
        reps = list(
            session.scalars(
                select(User.id).where(User.organization_id == admin.organization_id, User.role == "rep").limit(50)
            )
        )
        session.commit()
        return {
            "endpoint": endpoint.id,
            "token_id": token.id,
            "token": text,
            "contacts": dict(contacts),
            "reps": reps,
            "organization_id": admin.organization_id,
        }


def _take_back(app: Any, setup: dict[str, Any], run_id: int) -> None:
    from bench.logs import take_back
    from services.models import ApiToken, ChangeEvent, Contact, IdempotencyKey, WebhookEndpoint

    take_back(app, f"bench-wh-{run_id}-%")
    with app.extensions["inboxcrm.db"].sessions() as session:
        for contact in session.scalars(select(Contact).where(Contact.id.in_(list(setup["contacts"])))):
            contact.name = setup["contacts"][contact.id]
        session.execute(delete(IdempotencyKey).where(IdempotencyKey.token_id == setup["token_id"]))
        session.execute(delete(ApiToken).where(ApiToken.id == setup["token_id"]))
        session.execute(
            delete(WebhookEndpoint).where(WebhookEndpoint.id == setup["endpoint"])
        )  # its deliveries and attempts with it
        session.commit()
        session.execute(delete(ChangeEvent).where(ChangeEvent.organization_id == setup["organization_id"]))
        session.commit()


def _events(app: Any, since: int) -> dict[str, float]:
    """Every event written after ``since`` (its id), with when it was written."""
    from services.models import ChangeEvent

    with app.extensions["inboxcrm.db"].sessions() as session:
        return {
            f"evt_{i}": created.timestamp() if isinstance(created, datetime) else created
            for i, created in session.execute(
                select(ChangeEvent.id, ChangeEvent.created_at).where(ChangeEvent.id > since)
            )
        }


def _last_event(app: Any) -> int:
    from sqlalchemy import func

    from services.models import ChangeEvent

    with app.extensions["inboxcrm.db"].sessions() as session:
        return session.scalar(select(func.coalesce(func.max(ChangeEvent.id), 0))) or 0


def _phase(
    app: Any,
    server_url: str,
    setup: dict[str, Any],
    receiver: Receiver,
    *,
    writers: int,
    seconds: float,
    pause: float,
    drain: float,
    run_id: int,
    name: str,
) -> dict[str, Any]:
    http = urllib3.PoolManager(maxsize=writers + 2, timeout=urllib3.Timeout(total=60), retries=False)
    since = _last_event(app)
    contacts = list(setup["contacts"])
    written, failed = [0], []
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def writer(n: int) -> None:
        count = 0
        while time.monotonic() < stop:
            count += 1
            key = f"{name}-{run_id}-{n}-{count}"
            headers = {
                "Authorization": f"Bearer {setup['token']}",
                "Idempotency-Key": key,
                "Content-Type": "application/json",
            }
            try:
                if count % 2:
                    contact_id = contacts[(n * 997 + count) % len(contacts)]
                    current = json.loads(
                        http.request("GET", f"{server_url}/api/v1/contacts/{contact_id}", headers=headers).data
                    )
                    body = json.dumps({"name": f"{setup['contacts'][contact_id]} ({name} {count})"})
                    answer = http.request(
                        "PATCH",
                        f"{server_url}/api/v1/contacts/{contact_id}",
                        body=body,
                        headers={**headers, "If-Match": str(current["version"])},
                    )
                else:
                    body = json.dumps(
                        {
                            "type": "call",
                            "direction": "outbound",
                            "outcome": "connected",
                            "duration_minutes": 5,
                            "owner_id": setup["reps"][(n + count) % len(setup["reps"])],
                            "external_id": f"bench-wh-{run_id}-{key}",
                            "body_text": "Rang about the lanes.",
                        }
                    )
                    answer = http.request("POST", f"{server_url}/api/v1/activities", body=body, headers=headers)
                with lock:
                    if answer.status in (
                        200,
                        201,
                        409,
                    ):  # a 409: another writer changed the contact first; the write is refused whole
                        written[0] += 1
                    else:
                        failed.append(answer.status)
            except urllib3.exceptions.HTTPError as error:
                with lock:
                    failed.append(type(error).__name__)
            if pause:
                time.sleep(pause)

    began = time.perf_counter()
    threads = [threading.Thread(target=writer, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    events = _events(app, since)
    deadline = time.monotonic() + drain
    while time.monotonic() < deadline and not set(events) <= set(_arrivals(receiver)):
        time.sleep(0.25)
    seen = _arrivals(receiver)
    latencies = [seen[e] - at for e, at in events.items() if e in seen]
    return {
        f"webhooks_{name}_writes": written[0],
        f"webhooks_{name}_write_errors": len(failed),
        f"webhooks_{name}_writes_per_second": round(written[0] / elapsed, 1),
        f"webhooks_{name}_events": len(events),
        f"webhooks_{name}_arrived": len(latencies),
        f"webhooks_{name}_p50_ms": _percentile(latencies, 0.5),
        f"webhooks_{name}_p95_ms": _percentile(latencies, 0.95),
        f"webhooks_{name}_max_ms": _percentile(latencies, 1.0),
    }


def run(
    url: str, seconds: float = 60, writers: int = 8, quiet_seconds: float = 10, drain: float = 120
) -> dict[str, Any]:
    jobs = Path(tempfile.mkdtemp()) / "jobs.db"
    env = {
        "DATABASE_URL": url,
        "SECRET_KEY": SECRET,
        "INBOXCRM_JOBS_PATH": str(jobs),
        "INBOXCRM_WEBHOOKS_ALLOW_HTTP": "1",
        "INBOXCRM_WEBHOOKS_ALLOW_HOSTS": "127.0.0.1",
        "API_RATE_LIMIT": "1000000 per minute",
    }
    os.environ.update(env)
    from addin import create_app

    app = create_app({"TESTING": True})
    receiver = Receiver()
    setup = _setup(app, receiver.url)
    run_id = time.time_ns()
    log = ROOT / "bench" / "results"
    log.mkdir(parents=True, exist_ok=True)
    server = Gunicorn(url, log / "webhooks-gunicorn.log", workers=4, secret=SECRET, env=env)
    worker = subprocess.Popen(
        [sys.executable, "-m", "huey.bin.huey_consumer", "addin.jobs.huey", "-w", "4", "-k", "thread", "-q"],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=(log / "webhooks-worker.log").open("ab"),
        stderr=subprocess.STDOUT,
    )
    try:
        figures = {"webhooks_backend": url.split(":", 1)[0].split("+")[0], "webhooks_writers": writers}
        figures |= _phase(
            app,
            server.url,
            setup,
            receiver,
            writers=1,
            seconds=quiet_seconds,
            pause=1.0,
            drain=drain,
            run_id=run_id,
            name="quiet",
        )
        figures |= _phase(
            app,
            server.url,
            setup,
            receiver,
            writers=writers,
            seconds=seconds,
            pause=0,
            drain=drain,
            run_id=run_id,
            name="busy",
        )
    finally:
        worker.terminate()
        worker.wait(30)
        server.stop()
        receiver.close()
        _take_back(app, setup, run_id)
        app.extensions["inboxcrm.db"].engine.dispose()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", default=f"sqlite:///{ROOT / 'bench' / 'results' / 'scale30.db'}")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--quiet-seconds", type=float, default=10)
    args = parser.parse_args()
    print(json.dumps(run(args.db, args.seconds, args.writers, args.quiet_seconds), indent=2))


if __name__ == "__main__":
    main()
