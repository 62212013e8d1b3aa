"""Benchmark: how fast the demo generator fills a store, and how fast the pane's context
lookup answers on it. Prints one JSON object.

    python bench/demo_data.py --scale 30            # SQLite in a temporary folder
    DATABASE_URL=postgresql+psycopg://... python bench/demo_data.py --scale 30   # an EMPTY database
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import date

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from sqlalchemy import select  # noqa: E402

from services.mail.context import context_for_addresses  # noqa: E402
from services.db import make_engine, make_session_factory  # noqa: E402
from services.setup.demo import build_demo  # noqa: E402
from services.models import Base, ContactEmail, User  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--lookups", type=int, default=200)
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL") or f"sqlite:///{tempfile.mkdtemp()}/bench.db"
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    sessions = make_session_factory(engine)

    started = time.perf_counter()
    with sessions() as session:
        summary = build_demo(session, seed=7, scale=args.scale, today=date(2026, 11, 20))
        session.commit()
    load_seconds = time.perf_counter() - started
    rows = sum(summary.counts.values())

    timings = []
    with sessions() as session:
        rep = session.scalars(select(User).where(User.role == "rep")).first()
        addresses = session.scalars(select(ContactEmail.address).order_by(ContactEmail.id).limit(args.lookups)).all()
        for address in addresses:
            begin = time.perf_counter()
            context_for_addresses(session, rep, [address])
            timings.append((time.perf_counter() - begin) * 1000)
    timings.sort()
    print(
        json.dumps(
            {
                "backend": engine.dialect.name,
                "scale": args.scale,
                "rows": rows,
                "activities": summary.counts.get("activities", 0),
                "load_seconds": round(load_seconds, 2),
                "rows_per_second": round(rows / load_seconds),
                "context_lookups": len(timings),
                "context_ms_p50": round(statistics.median(timings), 2) if timings else None,
                "context_ms_p95": round(timings[int(len(timings) * 0.95) - 1], 2) if timings else None,
            }
        )
    )


if __name__ == "__main__":
    main()
