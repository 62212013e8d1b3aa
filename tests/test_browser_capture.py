"""Automatic capture in a real Chromium, as a newcomer tries it in the preview: the sample mailbox
is connected through the stand-in for Microsoft (OAuth with PKCE, in the browser), a customer's
mail arrives and is captured with why, a held meeting is asked about, and the answer is kept."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from addin.settings import use_standin
from services.capture.standin import StandIn
from services.models import Activity, Capture, Mailbox
from tests.browsing import shot
from tests.factories import World
from tests.test_browser import sign_in_to_preview

pytestmark = pytest.mark.browser


@pytest.fixture
def standin(app) -> Iterator[StandIn]:
    server = StandIn()
    use_standin(app.config, server.url)
    app.extensions.pop("inboxcrm.capture_reader", None)
    yield server
    server.close()


def test_a_newcomer_connects_the_sample_mailbox_and_watches_capture(
    browser, live_url, app, app_world: World, standin: StandIn
):
    page = sign_in_to_preview(browser, live_url, app_world)
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.get_by_role("link", name="Automatic capture").click()
    page.wait_for_url("**/capture")
    page.get_by_role("link", name="Connect my Microsoft 365 mailbox").click()
    # To the stand-in's consent screen, and back with the code.
    page.get_by_text("Connected: the last 90 days are being read.").wait_for()
    shot(page, "capture-connected")

    page.get_by_role("button", name="A customer's mail arrives").click()
    page.get_by_text("Read the mailbox: 1 captured.").wait_for()
    main = page.inner_text("main")
    assert "Re: rates for next quarter" in main and "is a contact" in main and "Up to date" in main
    page.get_by_role("button", name="A meeting is held").click()
    page.get_by_text("Read the mailbox: 1 captured.").wait_for()
    assert "Quarterly review" in page.inner_text("main")
    shot(page, "capture-captured")

    # My day asks how the meeting went; the plain form works without htmx too.
    page.goto(f"{live_url}/pane/my-day")
    page.get_by_text("How did it go?").wait_for()
    page.get_by_label("well (+)").check()
    page.fill("textarea[name=note]", "They want the Denver lanes.")
    page.get_by_role("button", name="Save").click()
    page.get_by_text("Saved: thank you.").wait_for()
    with app.extensions["inboxcrm.db"].sessions() as session:
        meeting = session.scalar(select(Activity).where(Activity.type == "meeting"))
        assert meeting.rating == 1 and "Denver lanes" in meeting.body_text and meeting.outcome == "held"
        assert session.scalar(select(Mailbox.state)) == "current"
        assert len(session.scalars(select(Capture)).all()) == 2

    # Taken back: the address offered for the never-log list.
    page.get_by_role("button", name="Take back").first.click()
    page.get_by_role("button", name="Add to my never-log list").wait_for()
    assert errors == []
