"""One SQLAlchemy session per request, handed to the services.

Routes call ``db()`` for the session and ``commit()`` after a successful write. Whatever is
not committed when the request ends is rolled back, so a refused write leaves nothing.
"""

from __future__ import annotations

from flask import Flask, current_app, g
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from services.db import make_engine, make_session_factory


class Database:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sessions: sessionmaker[Session] = make_session_factory(engine)


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
        g.db_session = database().sessions()
    return g.db_session


def commit() -> None:
    db().commit()


def rollback() -> None:
    if "db_session" in g:
        g.db_session.rollback()


def _close(_error: BaseException | None) -> None:
    # Flask-Login caches the signed-in user on ``g``; it is bound to this session, so it
    # goes with it (an app context that outlives the request would otherwise keep it).
    g.pop("_login_user", None)
    g.pop("signed_in_by", None)
    session = g.pop("db_session", None)
    if session is not None:
        session.rollback()
        session.close()
