"""The preview and the pane in a real Chromium (Debian's, driven by Playwright).

Screenshots of each step go to ``test-artifacts/`` (not committed) for a human to look at.
"""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from services.models import Activity
from tests.browsing import shot
from tests.factories import World

pytestmark = pytest.mark.browser


def sign_in_to_preview(browser, live_url: str, world: World, width: int = 1280, user=None, query: str = ""):
    page = browser.new_page(viewport={"width": width, "height": 900})
    page.goto(f"{live_url}/preview{query}")
    page.select_option("#user_id", str((user or world.rep).id))
    # The switch reloads the page: wait for the new one, its scripts' handlers in place (a
    # #mailbox found on the old page let a test click a tab before the new one listened).
    with page.expect_navigation():
        page.click("text=Switch")
    page.wait_for_load_state("domcontentloaded")
    page.wait_for_selector("#mailbox")
    return page


def test_preview_known_sender_then_log_then_unknown_sender(browser, live_url, app, app_world: World):
    page = sign_in_to_preview(browser, live_url, app_world)
    pane = page.frame_locator("#taskpane")
    # The first mail is selected on load and handed to the pane as Office.js would.
    pane.locator(".contact h2", has_text="Ann Buyer").wait_for()
    assert pane.locator(".deal h4").first.inner_text() == "Reefer contract"
    assert pane.locator(".account h2").first.inner_text() == "Acme Freight"
    shot(page, "preview-known-sender")

    pane.get_by_role("button", name="Log this email").click()
    pane.locator(".logged").wait_for()
    assert "Email logged." in pane.locator(".toast").inner_text()
    with app.extensions["inboxcrm.db"].sessions() as session:
        logged = session.scalars(select(Activity)).one()
        # The body was read through the adapter and stored as clean text.
        assert logged.direction == "inbound" and "updated rates for the Chicago lane" in logged.body_text
    shot(page, "preview-logged")

    page.get_by_role("button", name="Priya Natarajan").click()
    pane.get_by_text("Nobody on this email is in the CRM yet").wait_for()
    assert pane.locator("input[name=company]").first.input_value() == "Granite Robotics"
    shot(page, "preview-unknown-sender")


def pane_at_320_px(browser, live_url: str):
    """Rita signed in, the pane beside a mail from Ann, 320 px wide."""
    page = browser.new_page(viewport={"width": 320, "height": 800})
    page.goto(f"{live_url}/login")
    page.fill("input[name=email]", "rita@northwind.test")
    page.fill("input[name=password]", "correct horse battery staple")
    page.click("button.primary")
    query = "item_type=message&from_address=ann@acme.test&internet_message_id=%3Cm9%40acme.test%3E&subject=Hi&to=rita@northwind.test"
    page.goto(f"{live_url}/pane/context?{query}")
    page.locator(".contact").wait_for()
    return page


def test_pane_at_320_px_has_no_horizontal_scroll(browser, live_url, app_world: World):
    page = pane_at_320_px(browser, live_url)
    for details in page.locator("details").all():
        details.evaluate("element => element.open = true")
    widths = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert widths[0] <= widths[1], widths
    shot(page, "pane-320")


def test_one_log_from_two_clicks(browser, live_url, app, app_world: World):
    page = sign_in_to_preview(browser, live_url, app_world)
    pane = page.frame_locator("#taskpane")
    pane.get_by_role("button", name="Log this email").click()
    pane.locator(".logged").wait_for()
    page.get_by_role("button", name="Priya Natarajan").click()
    pane.get_by_text("Nobody on this email").wait_for()
    page.locator("button.mail").first.click()
    pane.locator(".logged").wait_for()
    with app.extensions["inboxcrm.db"].sessions() as session:
        assert session.scalar(select(func.count(Activity.id))) == 1


def test_manager_drills_from_team_to_an_account_timeline_and_back(browser, live_url, app, app_world: World):
    from services.mail import activities
    from services.models import User

    with app.extensions["inboxcrm.db"].sessions() as session:
        activities.add_note(
            session,
            session.get(User, app_world.rep.id),
            {"body": "Wants a Denver lane", "account_id": app_world.branch.id},
        )
        session.commit()
    page = sign_in_to_preview(browser, live_url, app_world, user=app_world.manager)
    pane = page.frame_locator("#taskpane")
    pane.locator(".contact h2", has_text="Ann Buyer").wait_for()
    pane.get_by_role("link", name="Team").click()
    pane.get_by_text("Team this week").wait_for()
    shot(page, "manager-team")
    pane.get_by_role("link", name="Rita Rep").click()
    pane.get_by_text("Rita Rep's accounts").wait_for()
    pane.get_by_role("link", name="Acme Freight", exact=True).click()
    pane.get_by_text("Wants a Denver lane").wait_for()
    shot(page, "manager-timeline")
    pane.get_by_role("button", name="← Back to the email").click()
    pane.locator(".contact h2", has_text="Ann Buyer").wait_for()


def test_preview_plays_the_gmail_add_on_from_its_own_card_json(browser, live_url, app, app_world: World):
    """A newcomer tries the Gmail add-on with no Google account: the preview draws the cards the
    add-on answers, and its buttons post the same action events back."""
    page = sign_in_to_preview(browser, live_url, app_world, width=1280)
    page.get_by_role("tab", name="Gmail add-on").click()
    gmail = page.locator("#gmail-panel")
    gmail.get_by_text("Ann Buyer").first.wait_for()
    assert page.locator("#taskpane").is_hidden()
    assert "Reefer contract" in gmail.inner_text()
    shot(page, "preview-gmail-message")

    gmail.get_by_role("button", name="Log this email").click()
    gmail.get_by_text("This email is logged.").wait_for()
    assert "Email logged." in gmail.locator(".card-status").inner_text()
    with app.extensions["inboxcrm.db"].sessions() as session:
        logged = session.scalars(select(Activity)).one()
        assert (
            logged.source == "gmail" and logged.direction == "inbound" and not logged.is_private
        )  # its box not ticked

    # A note through the card's own form, its Private box ticked; then into the deal card and back.
    gmail.locator("textarea[data-name=note]").fill("Wants 12 reefers in March")
    gmail.locator("input[type=checkbox][data-name=private_note]").check()
    gmail.get_by_role("button", name="Add note").click()
    gmail.locator(".card-status", has_text="Note added.").wait_for()
    with app.extensions["inboxcrm.db"].sessions() as session:
        assert session.scalars(select(Activity.is_private).where(Activity.type == "note")).one() is True
    gmail.get_by_role("button", name="Change").first.click()
    gmail.get_by_text("Move to").wait_for()
    gmail.locator("select[data-name=stage]").select_option("lost")
    gmail.get_by_role("button", name="Save stage").click()
    gmail.locator(".card-status", has_text="Say why the deal was lost.").wait_for()
    gmail.get_by_role("button", name="← Back").click()
    gmail.get_by_role("button", name="Log this email").or_(gmail.get_by_text("This email is logged.")).first.wait_for()
    shot(page, "preview-gmail-after-actions")

    # Card text is drawn as text: a mail's markup never becomes elements.
    assert gmail.locator("script, img, iframe").count() == 0
    # Outlook again: the same store, the log shows there too.
    page.get_by_role("tab", name="Outlook pane").click()
    page.frame_locator("#taskpane").locator(".logged").wait_for()


def test_preview_gmail_homepage_for_a_manager_drills_down(browser, live_url, app, app_world: World):
    page = sign_in_to_preview(browser, live_url, app_world, user=app_world.manager, query="?host=gmail")
    page.goto(f"{live_url}/preview?host=gmail")
    gmail = page.locator("#gmail-panel")
    gmail.get_by_role("button", name="Home").click()
    gmail.get_by_text("Your team").wait_for()
    gmail.locator(".card-link", has_text="Rita Rep").click()
    gmail.locator(".card-link", has_text="Acme Freight").first.click()
    gmail.get_by_text("Timeline").first.wait_for()
    shot(page, "preview-gmail-manager")


def test_the_pane_names_unanswered_questions_as_the_rep_writes_and_shows_deal_health(
    browser, live_url, app_world: World
):
    page = pane_at_320_px(browser, live_url)
    # The deal's health, with what costs it: no word from the customer since it opened.
    page.locator(".deal .health").get_by_text(re.compile(r"Health \d+")).wait_for()
    assert re.search(
        r"no word from the customer since it opened \d+ days ago", page.locator(".deal .health").inner_text()
    )
    page.get_by_text("Log a call, meeting or visit").click()
    hint = page.locator("#unanswered")
    hint.get_by_text("Not answered yet: Truck size · Lanes used.").wait_for()
    page.fill("textarea[name=body_text]", "Truck size: 26 ft")
    hint.get_by_text("Not answered yet: Lanes used.").wait_for()
    page.fill("input[name='answer:Lanes used']", "Boston-Chicago")
    hint.get_by_text("Every checklist question is answered.").wait_for()
    assert page.locator(".deal").count() == 1  # the hint swapped itself only


def test_a_walk_through_the_mailbox_logs_no_console_error(browser, live_url, app_world: World):
    """Mails opened one after another faster than their contexts come (each aborts the last),
    the call form typed in (its checklist hint posts as the rep types): the console says nothing
    but a deliberate 4xx."""
    page = sign_in_to_preview(browser, live_url, app_world)
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda failure: errors.append(str(failure)))
    mails = page.locator("#mailbox button.mail")
    for _ in range(2):
        for index in range(mails.count()):
            mails.nth(index).click()
    mails.first.click()
    pane = page.frame_locator("#taskpane")
    pane.locator(".contact h2", has_text="Ann Buyer").wait_for()
    pane.get_by_text("Log a call, meeting or visit").click()
    pane.locator("[data-form=log_activity] input[name=activity_subject]").fill("Rates call")
    pane.locator("[data-form=log_activity] textarea").first.fill("Talked about the trucks")
    page.wait_for_timeout(800)  # the hint's delayed post
    real = [e for e in errors if not re.search(r"status of 4\d\d", e)]
    assert real == [], real
