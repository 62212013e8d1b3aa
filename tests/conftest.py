"""Fixtures: the store on SQLite and on a real PostgreSQL server, a small world of people,
the app with its client, and a helper to sign in as a role."""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session
from werkzeug.serving import make_server

from addin import create_app
from services.db import make_engine, make_session_factory
from services.models import Base
from tests import google, postgres
from tests.browsing import CHROMIUM, CHROMIUM_ARGS
from tests.factories import PASSWORD, World, build_world
from tests.servers import RedisServer


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that runs on PostgreSQL, by a fixture's parameter or by asking for the server, is
    marked ``postgres`` (as the browser tests are ``browser``): ``make test-fast`` leaves both out."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        on_postgres = callspec is not None and "postgresql" in callspec.params.values()
        if on_postgres or {"postgres_server", "postgres_engine"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.postgres)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[postgres.Server]:
    server = postgres.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres_engine(postgres_server: postgres.Server) -> Iterator[Engine]:
    engine = make_engine(postgres_server.fresh_database("inboxcrm_test"))
    Base.metadata.create_all(engine)
    yield engine
    engine.dispose()


def _truncate(engine: Engine) -> None:
    names = ", ".join(table.name for table in Base.metadata.sorted_tables)
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path) -> Iterator[Engine]:
    """The store, empty, on each back end: a test using it runs twice."""
    if request.param == "sqlite":
        sqlite = make_engine(f"sqlite:///{tmp_path / 'store.db'}")
        Base.metadata.create_all(sqlite)
        yield sqlite
        sqlite.dispose()
    else:
        pg = request.getfixturevalue("postgres_engine")
        yield pg
        _truncate(pg)


@pytest.fixture
def sessions(engine: Engine):
    return make_session_factory(engine)


@pytest.fixture
def session(sessions) -> Iterator[Session]:
    with sessions() as session:
        yield session


@pytest.fixture
def world(session: Session) -> World:
    return build_world(session)


# -- Google, played on loopback (``tests/google.py``) ----------------------------------------------


@pytest.fixture(scope="module")
def google_keys() -> Iterator[google.GoogleKeys]:
    """Google's published keys, and ID tokens signed with them."""
    server = google.GoogleKeys()
    yield server
    server.close()


@pytest.fixture(scope="module")
def gmail_api() -> Iterator[google.GmailApi]:
    """The Gmail API's messages.get, answering the messages a test puts in it."""
    server = google.GmailApi()
    yield server
    server.close()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory) -> Iterator[RedisServer]:
    """A real Redis on loopback, for the job queue's second back end."""
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


# -- the app ---------------------------------------------------------------------------------


@pytest.fixture
def app(tmp_path, monkeypatch) -> Iterator[Flask]:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("INBOXCRM_ENV", raising=False)
    app = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'app.db'}",
            "SECRET_KEY": "test",
            "JOBS_SQLITE_PATH": str(tmp_path / "jobs.db"),
        }
    )
    app.instance_path = str(tmp_path)
    Base.metadata.create_all(app.extensions["inboxcrm.db"].engine)
    yield app
    app.extensions["inboxcrm.db"].engine.dispose()


@pytest.fixture
def app_world(app: Flask) -> World:
    with app.extensions["inboxcrm.db"].sessions() as session:
        return build_world(session)


class AuthActions:
    """Sign in as one of the world's people, and carry the CSRF token as htmx does."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client
        self.token = ""

    def login(self, email: str, password: str = PASSWORD):
        self.refresh_token()
        response = self.client.post("/login", data={"email": email, "password": password, "csrf_token": self.token})
        self.refresh_token()
        return response

    def refresh_token(self) -> str:
        page = self.client.get("/login").get_data(as_text=True)
        self.token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        return self.token

    def post(self, url: str, data=None, htmx: bool = True, **kwargs):
        headers = {"X-CSRFToken": self.token}
        if htmx:
            headers["HX-Request"] = "true"
        return self.client.post(url, data=data or {}, headers=headers, **kwargs)

    def get(self, url: str, htmx: bool = True, **kwargs):
        return self.client.get(url, headers={"HX-Request": "true"} if htmx else {}, **kwargs)


@pytest.fixture
def auth(client: FlaskClient) -> AuthActions:
    return AuthActions(client)


# -- the browser ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """Debian's Chromium, driven by Playwright (never a browser download)."""
    playwright_api = pytest.importorskip("playwright.sync_api")
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"Chromium is not installed at {CHROMIUM}: `make test` installs it")
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def live_url(app: Flask, app_world: World) -> Iterator[str]:
    """The app served on a free loopback port for the browser, as ``make run`` serves the
    embedded demo: with the preview's "sign in as" picker."""
    app.config["DEMO_SIGN_IN"] = True
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
