"""Follow-up reminders by e-mail: the job run against a real SMTP server on loopback
(aiosmtpd), on both back ends for the service."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from email import message_from_bytes

import pytest
from sqlalchemy import select

from services.errors import DomainError
from services.followups import add_follow_up as set_from_pane
from services.models import FollowUp, User
from services.reminders import send_reminders
from tests.factories import World

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=timezone.utc)


@pytest.fixture
def smtp_server():
    """An SMTP server on loopback that keeps what it receives."""
    from aiosmtpd.controller import Controller

    class Keep:
        def __init__(self) -> None:
            self.messages: list = []

        async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
            self.messages.append((envelope.rcpt_tos, message_from_bytes(envelope.content)))
            return "250 OK"

    import socket

    with socket.socket() as probe:  # a free port: aiosmtpd checks it is up by connecting to it
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    handler = Keep()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield controller, handler
    controller.stop()


def add_follow_up(session, world: World, title: str, due: datetime, **extra) -> FollowUp:
    follow_up = FollowUp(
        organization_id=world.org.id,
        title=title,
        due_at=due,
        owner_id=world.rep.id,
        contact_id=world.contact.id,
        **extra,
    )
    session.add(follow_up)
    session.commit()
    return follow_up


def test_each_reminder_whose_time_has_come_is_sent_once(session, world: World):
    """Due (or with a reminder time) by now: sent to its owner, marked; later, done or deleted
    ones: not; a second run sends nothing again; one the server refuses stays for the next."""
    add_follow_up(session, world, "Send the contract", NOW - timedelta(minutes=5))
    add_follow_up(session, world, "Call about rates", NOW + timedelta(days=1), reminder_at=NOW - timedelta(minutes=1))
    add_follow_up(session, world, "Next week", NOW + timedelta(days=7))
    add_follow_up(session, world, "Already done", NOW - timedelta(hours=1), done_at=NOW - timedelta(minutes=30))
    add_follow_up(session, world, "Deleted", NOW - timedelta(hours=1), deleted_at=NOW - timedelta(minutes=30))
    outbox = []
    sent, failed = send_reminders(session, NOW, outbox.append, "crm@northwind.test")
    assert (sent, failed) == (2, 0)
    # Each names what it is about: the contact, and the contact's account.
    assert sorted(m["Subject"] for m in outbox) == [
        "Follow-up: Call about rates (Ann Buyer, Acme Freight)",
        "Follow-up: Send the contract (Ann Buyer, Acme Freight)",
    ]
    rep = session.get(User, world.rep.id)
    assert {m["To"] for m in outbox} == {rep.email}
    body = outbox[0].get_content()
    assert "With: Ann Buyer" in body and "Account: Acme Freight" in body
    assert "(Europe/Berlin)" in body  # set with no mailbox zone: the organization's, named
    assert send_reminders(session, NOW + timedelta(minutes=1), outbox.append, "crm@northwind.test") == (0, 0)

    def refuse(message):
        raise ConnectionRefusedError("down")

    later = add_follow_up(session, world, "Later", NOW + timedelta(hours=2))
    assert send_reminders(session, NOW + timedelta(hours=3), refuse, "crm@northwind.test") == (0, 1)
    assert session.get(FollowUp, later.id).reminded_at is None
    assert send_reminders(session, NOW + timedelta(hours=3), outbox.append, "crm@northwind.test") == (1, 0)


def test_the_reminders_command_sends_over_smtp(app, app_world: World, smtp_server, monkeypatch):
    controller, received = smtp_server
    with app.extensions["inboxcrm.db"].sessions() as session:
        add_follow_up(session, app_world, "Send the contract", NOW - timedelta(minutes=5))
    runner = app.test_cli_runner()
    app.config.update(SMTP_HOST="", SMTP_PORT=controller.port, SMTP_STARTTLS=False, MAIL_FROM="crm@northwind.test")
    unset = runner.invoke(args=["reminders", "send"])
    assert unset.exit_code != 0 and "INBOXCRM_SMTP_HOST" in unset.output
    app.config["SMTP_HOST"] = "127.0.0.1"
    result = runner.invoke(args=["reminders", "send", "--now", "2026-11-20T09:00:00+0000"])
    assert result.exit_code == 0, result.output
    assert "1 reminders sent" in result.output
    [(recipients, message)] = received.messages
    assert recipients == ["rita@northwind.test"] and message["Subject"].startswith("Follow-up: Send the contract")
    assert runner.invoke(args=["reminders", "send", "--now", "2026-11-20T09:05:00+0000"]).output.startswith(
        "0 reminders sent"
    )
    with app.extensions["inboxcrm.db"].sessions() as session:
        assert session.scalars(select(FollowUp.reminded_at)).one() is not None
    app.config["SMTP_PORT"] = 1  # nobody listens
    down = runner.invoke(args=["reminders", "send"])
    assert down.exit_code != 0 and "did not take the reminders" in down.output


def test_a_reminder_speaks_the_zone_it_was_set_in_and_links_to_its_account(session, world: World):
    """Set from a pane in New York (its mailbox's zone), for an organization in Berlin: the
    reminder says New York's time and names it, the deal too, and links to the account."""
    follow_up = set_from_pane(
        session,
        world.rep,
        {
            "title": "Call back",
            "due_at": "2026-11-21T10:00",
            "reminder_at": "2026-11-21T09:30",
            "opportunity_id": world.deal.id,
        },
        now=NOW,
        zone="America/New_York",
    )
    session.commit()
    assert follow_up.time_zone == "America/New_York"
    outbox = []
    assert send_reminders(session, follow_up.reminder_at, outbox.append, "crm@x.test", "https://crm.example.test") == (
        1,
        0,
    )
    body = outbox[0].get_content()
    assert "21 Nov 2026, 10:00 (America/New_York)" in body and "Deal: Reefer contract" in body
    assert f"https://crm.example.test/pane/accounts/{world.account.id}/timeline" in body
    assert "Acme Freight" in outbox[0]["Subject"]


def test_a_reminder_time_after_the_due_time_is_refused(session, world: World):
    with pytest.raises(DomainError, match="before it is due"):
        set_from_pane(
            session,
            world.rep,
            {
                "title": "x",
                "due_at": "2026-11-21T10:00",
                "reminder_at": "2026-11-21T11:00",
                "contact_id": world.contact.id,
            },
            now=NOW,
        )
