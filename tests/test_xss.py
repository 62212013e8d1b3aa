"""Email is untrusted: hostile bodies, subjects, names and notes are stored sanitized and shown
escaped. Each payload goes into the store through the services, then the pane (and the preview)
are opened in Chromium: no dialog opens, ``window.__pwned`` stays unset, and the swapped-in HTML
holds no element, attribute or URL the payload tried to smuggle in."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from urllib.parse import urlencode

import pytest
from sqlalchemy import select

from services.mail import activities, contacts
from services.models import Activity, Contact, Opportunity, User
from tests.factories import PASSWORD, World
from tests.xss_payloads import PAYLOADS

pytestmark = pytest.mark.browser

# What must not be in the pane's DOM after a payload was rendered.
SMUGGLED = """() => {
  const root = document.querySelector('#context') || document.body;
  const found = [];
  for (const el of root.querySelectorAll('*')) {
    const tag = el.tagName.toLowerCase();
    const ourChart = el.closest('svg.chart, svg.heat, svg.sparkline');  // drawn by the server, attributes still checked
    if (!ourChart && ['script', 'iframe', 'object', 'embed', 'svg', 'math', 'style', 'link', 'base', 'meta', 'img', 'video',
         'audio', 'marquee', 'template', 'isindex'].includes(tag)) found.push(tag);
    for (const attr of el.attributes) {
      const name = attr.name.toLowerCase(), value = attr.value.trim().toLowerCase();
      if (name.startsWith('on') || name === 'srcdoc' || name === 'style') found.push(tag + '[' + name + ']');
      if (['href', 'src', 'action', 'formaction', 'data'].includes(name) && /^(javascript|data|vbscript):/.test(value)) found.push(tag + '[' + name + ']=' + value);
      // Our own hx- attributes sit on forms, the pane's main element, the history loader and the
      // checklist hint under a note.
      const ours = tag === 'form' || el.id === 'context' || el.id === 'unanswered' || (tag === 'div' && el.parentElement.tagName === 'DETAILS');
      if (name.startsWith('hx-') && !ours) found.push(tag + '[' + name + ']');
    }
  }
  return found;
}"""


def test_payload_corpus_is_large_and_varied():
    assert len(PAYLOADS) >= 50 and len(set(PAYLOADS)) == len(PAYLOADS)


def test_stored_bodies_are_sanitized(session, world: World):
    rep = session.get(User, world.rep.id)
    for index, payload in enumerate(PAYLOADS):
        activity, _ = activities.log_email(
            session,
            rep,
            {
                "internet_message_id": f"<x{index}@acme.test>",
                "from_address": "ann@acme.test",
                "to": [rep.email],
                "subject": "s",
                "body_html": payload,
            },
        )
        stored = (activity.body_html or "").lower()
        for marker in (
            "<script",
            "onerror",
            "onload",
            "javascript:",
            "<iframe",
            "<svg",
            "<style",
            "srcdoc",
            "onfocus",
            "hx-",
        ):
            assert marker not in stored, (payload, stored)


@pytest.fixture
def hostile(app, app_world: World) -> World:
    """Our world with every payload written in as a contact's name, an email's subject and
    body, and a note."""
    with app.extensions["inboxcrm.db"].sessions() as session:
        rep = session.get(User, app_world.rep.id)
        for index, payload in enumerate(PAYLOADS):
            contact = contacts.create_contact(
                session,
                rep,
                {"name": payload[:200], "email": f"p{index}@acme.test", "account_id": app_world.account.id},
            )
            activities.log_email(
                session,
                rep,
                {
                    "internet_message_id": f"<p{index}@acme.test>",
                    "from_address": f"p{index}@acme.test",
                    "to": [rep.email],
                    "subject": payload[:500],
                    "body_html": payload,
                    "sent_at": datetime.now(timezone.utc).isoformat(),
                },
            )
            activities.add_note(session, rep, {"body": payload, "contact_id": contact.id})
        session.get(Contact, app_world.contact.id).name = PAYLOADS[3]
        # On the dashboard: a stale deal and its account, both named by an attacker.
        deal = session.get(Opportunity, app_world.deal.id)
        deal.name, deal.account.name = PAYLOADS[0][:200], PAYLOADS[8][:200]
        deal.stage_entered_at = datetime.now(timezone.utc) - timedelta(days=60)
        session.commit()
        assert session.scalars(select(Activity)).all()
    return app_world


def test_no_payload_runs_in_the_pane_or_the_preview(browser, hostile: World, live_url):
    page = browser.new_page(viewport={"width": 350, "height": 900})
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(f"{live_url}/login")
    page.fill("input[name=email]", "rita@northwind.test")
    page.fill("input[name=password]", PASSWORD)
    page.click("button.primary")

    for index, payload in enumerate(PAYLOADS):
        # Known sender (name, subjects, bodies, notes from the store) and an unknown sender
        # whose display name and subject come straight from the mail header.
        for query in (
            {"from_address": f"p{index}@acme.test", "subject": payload, "internet_message_id": f"<p{index}@acme.test>"},
            {
                "from_address": f"stranger{index}@evil.test",
                "from_name": payload,
                "subject": payload,
                "internet_message_id": payload,
            },
        ):
            page.goto(
                f"{live_url}/pane/context?{urlencode({'item_type': 'message', 'to': 'rita@northwind.test', **query})}"
            )
            page.locator(".context").wait_for()
            for details in page.locator("details").all():
                details.evaluate("element => element.open = true")
            assert page.evaluate("window.__pwned") is None, payload
            assert page.evaluate(SMUGGLED) == [], payload

    page.goto(f"{live_url}/login")
    page.fill("input[name=email]", "mia@northwind.test")
    page.fill("input[name=password]", PASSWORD)
    page.click("button.primary")
    page.goto(f"{live_url}/dashboard?period=this_year")
    page.get_by_text("Who to talk to").wait_for()
    assert (
        page.evaluate(
            SMUGGLED.replace("document.querySelector('#context') || document.body", "document.querySelector('#report')")
        )
        == []
    )
    assert page.evaluate("window.__pwned") is None

    page.goto(f"{live_url}/preview")
    page.locator("#mailbox").wait_for()
    page.frame_locator("#taskpane").locator(".context").first.wait_for()
    assert page.evaluate("window.__pwned") is None
    assert dialogs == []
