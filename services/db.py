"""Engines and sessions for SQLite (the embedded default) and PostgreSQL (production).

The same models and migrations serve both. SQLite gets the pragmas that make it behave like
a real store: enforced foreign keys, WAL so readers do not block the writer, and a busy
timeout so concurrent writers wait instead of failing.

On SQLite a session is a reader or a writer (``make_session_factory(engine, write=...)``):
a reader's transaction is deferred and never takes the write lock, so reads run side by
side, and beside a writer; a writer's begins ``IMMEDIATE``, so writers queue for the lock
from their first statement. (A deferred transaction that reads and then writes fails at once
with "database is locked" when another writer committed in between, whatever the busy
timeout.) PostgreSQL needs neither: its services take row locks where they change state.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker
from services import deals
from services.integration import sync


def make_engine(url: str, **kwargs: Any) -> Engine:
    if url.startswith("sqlite"):
        kwargs.setdefault("connect_args", {}).setdefault("timeout", 30)
    else:
        kwargs.setdefault("pool_pre_ping", True)
    engine = create_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
        # pysqlite's own transaction handling defers BEGIN until the first write, which
        # breaks SAVEPOINT; so we issue BEGIN ourselves, deferred for readers and IMMEDIATE
        # for writers (see the module's docstring).
        event.listen(engine, "begin", _sqlite_begin)
    return engine


def _sqlite_begin(connection: Any) -> None:
    writer = connection.get_execution_options().get(WRITER_OPTION, True)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if writer else "BEGIN DEFERRED")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    # 32 MiB of page cache per connection (SQLite's default is 2 MiB): a report reads a few
    # megabytes of index pages, which then stay at hand rather than being copied in again.
    cursor.execute("PRAGMA cache_size=-32768")
    cursor.close()


WRITER_OPTION = "inboxcrm_writer"


def make_session_factory(engine: Engine, *, write: bool = True) -> sessionmaker[Session]:
    """Sessions that may write (the default: commands, services called from tests) or, with
    ``write=False``, sessions that only read and so never wait for SQLite's write lock. Every
    change made through them is numbered for sync clients (``services.integration.sync``), and each
    transaction reads the pipeline's stages once (``services.deals.pipeline_stages``)."""

    sync.install()
    deals.install()
    return sessionmaker(bind=engine.execution_options(**{WRITER_OPTION: write}), expire_on_commit=False)
