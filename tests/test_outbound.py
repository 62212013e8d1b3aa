"""No request to our own network: a webhook endpoint inside it is refused when it is added, and
again at each delivery against the address actually connected to (DNS rebinding); an attempt's
outcome is shown as a category, never the exception's text."""

from __future__ import annotations

import socket
import threading

import pytest
from sqlalchemy import func, select

from addin import jobs
from services.integration import outbound, webhooks
from services.errors import DomainError
from services.models import Contact, User, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from services.integration.outbound import Reach
from tests.factories import World
from tests.servers import Receiver, free_port

INSIDE = [
    "http://127.0.0.1/hook",
    "http://127.1/hook",
    "http://0x7f000001/hook",
    "http://2130706433/hook",
    "http://0177.0.0.1/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://[::1]/hook",
    "http://0.0.0.0/hook",
    "http://localhost:8080/hook",
    "http://10.0.0.1/hook",
    "http://172.16.5.4/hook",
    "http://192.168.1.1/hook",
    "http://100.64.0.1/hook",
    "http://169.254.169.254/latest/meta-data",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://[fd00::1]/hook",
    "http://[fe80::1]/hook",
    "http://[64:ff9b::a00:1]/hook",
    "http://[2002:7f00:1::]/hook",
    "http://224.0.0.1/hook",
    "http://printer.local/hook",
    "https://user:secret@hooks.example.com/in",
    "https://:token@hooks.example.com/in",
]


def public_resolver(*addresses: str):
    """A resolver that answers every name with these addresses (as getaddrinfo does)."""

    def resolve(host, port, *args, **kwargs):
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in addresses
        ]

    return resolve


@pytest.mark.parametrize("url", INSIDE)
def test_an_address_inside_our_network_is_refused_when_added(url):
    with pytest.raises(DomainError) as refused:
        outbound.check_url(url, Reach(allow_http=True))
    assert refused.value.errors["url"]


@pytest.mark.parametrize(
    "addresses", [("10.0.0.1",), ("93.184.216.34", "127.0.0.1"), ("::1",), ("::ffff:192.168.0.1",)]
)
def test_a_name_that_resolves_inside_is_refused(addresses):
    with pytest.raises(DomainError):
        outbound.check_url("https://hooks.example.com/in", Reach(resolve=public_resolver(*addresses)))


def test_a_public_address_and_the_hosts_a_deployment_allows_are_taken():
    public = Reach(resolve=public_resolver("93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"))
    assert outbound.check_url("https://hooks.example.com/in", public) == "https://hooks.example.com/in"
    with pytest.raises(DomainError):  # plain http, unless allowed
        outbound.check_url("http://hooks.example.com/in", public)
    on_premises = Reach.from_setting("crm-hooks.corp, 10.20.0.0/16", allow_http=True)
    assert outbound.check_url("http://crm-hooks.corp:8080/in", on_premises)
    assert outbound.check_url("http://10.20.3.4/in", on_premises)
    with pytest.raises(DomainError):
        outbound.check_url("http://10.21.3.4/in", on_premises)


def test_the_admin_page_refuses_every_inside_address(app, app_world: World, auth):
    auth.login("ada@northwind.test")
    for url in INSIDE:
        answer = auth.post("/admin/webhooks", {"url": url}, htmx=False)
        assert answer.status_code == 422, url
    with app.extensions["inboxcrm.db"].sessions() as session:
        assert session.scalar(select(func.count()).select_from(WebhookEndpoint)) == 0


def _delivery(app, world: World, url: str, reach: Reach) -> int:
    sessions = app.extensions["inboxcrm.db"].sessions
    with sessions() as session:
        webhooks.add_endpoint(session, session.get(User, world.admin.id), url, reach=reach)
        session.commit()
    with sessions() as session:
        session.get(Contact, world.contact.id).name = "Changed"
        session.commit()
        return session.scalar(select(WebhookDelivery.id))


def _attempts(app) -> list[str | None]:
    with app.extensions["inboxcrm.db"].sessions() as session:
        return list(session.scalars(select(WebhookAttempt.error).order_by(WebhookAttempt.id)))


def test_a_name_that_rebinds_to_loopback_is_refused_at_delivery(app, app_world: World, monkeypatch):
    """Public when it was added, 127.0.0.1 when the worker connects: nothing reaches the receiver."""
    receiver = Receiver()
    try:
        port = receiver.server.server_port
        delivery_id = _delivery(
            app, app_world, f"https://rebind.example.com:{port}/events", Reach(resolve=public_resolver("93.184.216.34"))
        )
        real = socket.getaddrinfo
        monkeypatch.setattr(
            socket,
            "getaddrinfo",
            lambda host, *a, **k: real("127.0.0.1" if host == "rebind.example.com" else host, *a, **k),
        )
        assert jobs.deliver_once(delivery_id) is not None  # failed, to be tried again
        assert receiver.requests == []
        assert _attempts(app) == ["refused: not a public address"]
    finally:
        receiver.close()


def test_an_attempt_is_shown_as_a_category_never_the_exceptions_text(app, app_world: World, auth, monkeypatch):
    app.config["WEBHOOKS_ALLOW_HOSTS"] = "127.0.0.1"
    loopback = Reach(allow_http=True, hosts=frozenset({"127.0.0.1"}))
    answers_404 = Receiver([404])
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)  # accepts, never answers
    monkeypatch.setattr(webhooks, "TIMEOUT_SECONDS", 0.5)
    try:
        urls = [
            answers_404.url,
            f"http://127.0.0.1:{free_port()}/closed",
            f"http://127.0.0.1:{silent.getsockname()[1]}/slow",
            f"https://127.0.0.1:{answers_404.server.server_port}/plain-http",
        ]
        sessions = app.extensions["inboxcrm.db"].sessions
        with sessions() as session:
            for url in urls:
                webhooks.add_endpoint(session, session.get(User, app_world.admin.id), url, reach=loopback)
            session.commit()
        with sessions() as session:
            session.get(Contact, app_world.contact.id).name = "Changed"
            session.commit()
            ids = list(session.scalars(select(WebhookDelivery.id).order_by(WebhookDelivery.endpoint_id)))
        threads = [threading.Thread(target=jobs.deliver_once, args=(i,)) for i in ids]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        with sessions() as session:
            by_url = dict(
                session.execute(
                    select(WebhookEndpoint.url, WebhookAttempt.error)
                    .join(WebhookDelivery, WebhookDelivery.endpoint_id == WebhookEndpoint.id)
                    .join(WebhookAttempt, WebhookAttempt.delivery_id == WebhookDelivery.id)
                ).all()
            )
        assert [by_url[url] for url in urls] == ["answered 404", "connection refused", "timed out", "TLS failed"]
        auth.login("ada@northwind.test")
        page = auth.get("/admin/webhooks", htmx=False).get_data(as_text=True)
        assert "connection refused" in page and "timed out" in page and "Error" not in page and "Errno" not in page
    finally:
        answers_404.close()
        silent.close()
