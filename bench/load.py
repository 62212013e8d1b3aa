"""Benchmark: 64 panes at once against gunicorn, as production serves them.

    python bench/load.py --db sqlite:///bench/results/scale30.db      # the scale-30 store
    python bench/load.py --db postgresql+psycopg://.../bench30

gunicorn runs ``wsgi:app`` (4 workers on 2 cores, as the README's production line) on the
store. 64 client threads, each a rep signed in with a pane token, open mail after mail for
``--seconds``: 90 % of their requests ``GET /pane/context`` for a mail of their sample
mailbox, 10 % ``POST /activities/email`` logging a new message. Beside them, one prober asks
the bare route (``/healthz``) every 50 ms, so its latency is measured under the same load.
Prints one JSON object (also returned to ``bench/reports.py``): requests, errors (any status
but 200, any connection failure), requests per second, p50 and p99 of each kind and of the
bare route. What was logged is taken back afterwards (the pane's undo), so the store stays the
one the other figures measure.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import urllib3  # noqa: E402
from sqlalchemy import select  # noqa: E402

from tests.servers import Gunicorn  # noqa: E402

SECRET = "bench-load"


def _percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(share * len(ordered)))] * 1000, 1)


def _panes(url: str, clients: int) -> tuple[list[dict[str, Any]], Any]:
    """Per client: a rep, their pane token, and the mail of their sample mailbox."""
    os.environ["DATABASE_URL"], os.environ["SECRET_KEY"] = url, SECRET
    from addin import create_app
    from addin.tokens import issue_token
    from services.models import User
    from services.preview import sample_mailbox

    app = create_app({"TESTING": True})
    panes = []
    with app.app_context(), app.extensions["inboxcrm.db"].sessions() as session:
        reps = session.scalars(
            select(User).where(User.role == "rep", User.is_active.is_(True)).order_by(User.id).limit(clients)
        ).all()
        for n in range(clients):
            rep = reps[n % len(reps)]
            mail = [
                {
                    "item_type": "message",
                    "from_address": i.from_address,
                    "from_name": i.from_name,
                    "subject": i.subject,
                    "internet_message_id": i.internet_message_id,
                    "to": rep.email,
                }
                for i in sample_mailbox(session, rep)
                if i.item_type == "message" and i.from_address != rep.email
            ]
            panes.append({"rep": rep.id, "email": rep.email, "token": issue_token(rep)["token"], "mail": mail})
    return panes, app


def run(url: str, seconds: float = 60, clients: int = 64, workers: int = 4, log_share: float = 0.1) -> dict[str, Any]:
    panes, app = _panes(url, clients)
    server = Gunicorn(url, ROOT / "bench" / "results" / "load-gunicorn.log", workers=workers, secret=SECRET)
    http = urllib3.PoolManager(maxsize=clients + 2, timeout=urllib3.Timeout(total=60), retries=False)
    times: dict[str, list[float]] = {"context": [], "log": [], "bare": []}
    errors: list[str] = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds
    run_id = time.time_ns()

    def record(kind: str, started: float, status: int | None, what: str) -> None:
        with lock:
            if status == 200:
                times[kind].append(time.perf_counter() - started)
            else:
                errors.append(f"{kind} {status} {what}")

    def pane(n: int) -> None:
        rng = random.Random(n)
        me = panes[n]
        headers = {"Authorization": f"Bearer {me['token']}", "HX-Request": "true"}
        count = 0
        while time.monotonic() < stop:
            item = rng.choice(me["mail"])
            kind = "log" if rng.random() < log_share else "context"
            started = time.perf_counter()
            try:
                if kind == "log":
                    count += 1
                    fields = {
                        **item,
                        "internet_message_id": f"<load-{run_id}-{n}-{count}@bench.invalid>",
                        "body_text": "Thanks.",
                    }
                    response = http.request(
                        "POST", f"{server.url}/activities/email", fields=fields, headers=headers, encode_multipart=False
                    )
                    record("log", started, response.status, "")
                else:
                    response = http.request("GET", f"{server.url}/pane/context", fields=item, headers=headers)
                    record("context", started, response.status, "")
            except urllib3.exceptions.HTTPError as error:
                record(kind, started, None, type(error).__name__)

    def prober() -> None:
        while time.monotonic() < stop:
            started = time.perf_counter()
            try:
                record("bare", started, http.request("GET", f"{server.url}/healthz").status, "")
            except urllib3.exceptions.HTTPError as error:
                record("bare", started, None, type(error).__name__)
            time.sleep(0.05)

    threads = [threading.Thread(target=pane, args=(n,)) for n in range(clients)] + [threading.Thread(target=prober)]
    began = time.perf_counter()
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        elapsed = time.perf_counter() - began
        server.stop()
    _take_back(app, run_id)
    requests = len(times["context"]) + len(times["log"]) + len([e for e in errors if not e.startswith("bare")])
    return {
        "load_backend": url.split(":", 1)[0].split("+")[0],
        "load_clients": clients,
        "load_workers": workers,
        "load_seconds": round(elapsed, 1),
        "load_requests": requests,
        "load_errors": len(errors),
        "load_error_kinds": sorted(set(errors))[:5],
        "load_requests_per_second": round(requests / elapsed, 1),
        "load_logs": len(times["log"]),
        "load_context_p50_ms": _percentile(times["context"], 0.5),
        "load_context_p99_ms": _percentile(times["context"], 0.99),
        "load_log_p50_ms": _percentile(times["log"], 0.5),
        "load_log_p99_ms": _percentile(times["log"], 0.99),
        "load_bare_p50_ms": _percentile(times["bare"], 0.5),
        "load_bare_p99_ms": _percentile(times["bare"], 0.99),
    }


def _take_back(app, run_id: int) -> None:
    """The load's logs undone by their reps, as the pane's Undo does, and deleted (``bench.logs``)."""
    from bench.logs import take_back

    take_back(app, f"<load-{run_id}-%")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", default=f"sqlite:///{ROOT / 'bench' / 'results' / 'scale30.db'}")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()
    print(json.dumps(run(args.db, args.seconds, args.clients, args.workers), indent=2))


if __name__ == "__main__":
    main()
