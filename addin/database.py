"""One SQLAlchemy session per request, handed to the services.

Routes call ``db()`` for the session and ``commit()`` after a successful write. Whatever is
not committed when the request ends is rolled back, so a refused write leaves nothing.

A request's method says whether it writes: POST, PUT, PATCH and DELETE get a writer's
session, everything else a reader's, which on SQLite never takes the write lock (see
``services.db``). A GET that writes (a sign-in callback) says so with ``@writes``.
"""

from __future__ import annotations

from typing import Any, Callable, TypeVar

from flask import Flask, current_app, g, has_request_context, request
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from services.db import make_engine, make_session_factory


F = TypeVar("F", bound=Callable[..., Any])
WRITING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class Database:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sessions: sessionmaker[Session] = make_session_factory(engine)
        self.read_sessions: sessionmaker[Session] = make_session_factory(engine, write=False)


def writes(view: F) -> F:
    """Mark a GET view that writes (an OAuth callback links an identity)."""
    view.writes = True  # type: ignore[attr-defined]
    return view


def _request_writes() -> bool:
    view = current_app.view_functions.get(request.endpoint or "")
    if getattr(view, "reads_only", False):
        return False
    if request.method in WRITING_METHODS:
        return True
    return bool(getattr(view, "writes", False))


def reads_only(view: Callable[..., Any]) -> Callable[..., Any]:
    """Mark a view that only reads, though it takes POST (to keep what it is sent out of URLs
    and their logs): it gets a reading session, which on SQLite does not take the write lock."""
    view.reads_only = True  # type: ignore[attr-defined]
    return view


def init_app(app: Flask) -> None:
    app.extensions["inboxcrm.db"] = Database(make_engine(app.config["SQLALCHEMY_DATABASE_URI"]))
    # Close at the end of each request: an app context can outlive many requests (the test
    # client's, a CLI command's), and an open SQLite transaction holds the write lock.
    app.teardown_request(_close)
    app.teardown_appcontext(_close)


def database() -> Database:
    return current_app.extensions["inboxcrm.db"]


def db() -> Session:
    if "db_session" not in g:
        store = database()
        g.db_session = store.sessions() if not has_request_context() or _request_writes() else store.read_sessions()
    return g.db_session


def one_snapshot() -> Session:
    """The request's session, reading from here on in one snapshot: a read that takes several
    statements (a sync page's records and its tombstones) sees one moment. SQLite's reading
    transaction already does; PostgreSQL's READ COMMITTED gives each statement its own, so the
    transaction starts again as REPEATABLE READ (what it read before is read again)."""
    session = db()
    session.rollback()
    if session.get_bind().dialect.name == "postgresql":
        session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
    return session


def commit() -> None:
    db().commit()


def rollback() -> None:
    if "db_session" in g:
        g.db_session.rollback()


def _close(_error: BaseException | None) -> None:
    session = g.pop("db_session", None)
    if session is not None:
        session.rollback()
        session.close()
