"""The preview's Gmail tab in a real Chromium: every card action a rep has, walked by clicks on
the cards the add-on answers (the same handlers Google calls), and the panel drawn as Gmail
draws it (a Back arrow only over a pushed card, a fixed footer that covers no control).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from services.models import Activity, BlockEntry, FollowUp, Opportunity, SendMark
from services.types import utcnow
from tests.browsing import shot
from tests.factories import World
from tests.test_browser import sign_in_to_preview

pytestmark = pytest.mark.browser


def gmail_tab(browser, live_url: str, world: World, errors: list[str]):
    page = sign_in_to_preview(browser, live_url, world)
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda failure: errors.append(str(failure)))
    page.get_by_role("tab", name="Gmail add-on").click()
    gmail = page.locator("#gmail-panel")
    gmail.get_by_text("Ann Buyer").first.wait_for()
    return page, gmail


def status(gmail, text: str) -> None:
    gmail.locator(".card-status", has_text=text).wait_for()


def covered_buttons(gmail) -> list[str]:
    """Buttons of the card that, scrolled into view, are not what a click at their centre hits."""
    return gmail.evaluate(
        """panel => Array.from(panel.querySelectorAll('.card-body button')).filter(button => {
             button.scrollIntoView({block: 'end'});
             const box = button.getBoundingClientRect();
             const hit = document.elementFromPoint(box.left + box.width / 2, box.top + box.height / 2);
             return !(hit === button || button.contains(hit));
           }).map(button => button.textContent)"""
    )


def test_a_rep_walks_every_card_action_in_the_preview(browser, live_url, app, app_world: World) -> None:
    errors: list[str] = []
    page, gmail = gmail_tab(browser, live_url, app_world, errors)
    back = gmail.get_by_role("button", name="← Back")
    assert back.count() == 0  # the message's card is the root: Gmail shows no back arrow
    footer = gmail.locator(".card-footer")
    assert footer.get_by_role("button", name="Open full panel").is_visible()
    assert covered_buttons(gmail) == []

    # A call, from its own card: the checklist named, the outcome of a call.
    gmail.get_by_role("button", name="Call", exact=True).click()
    gmail.get_by_text("Log a call").first.wait_for()
    assert back.is_visible()
    gmail.locator("select[data-name=outcome]").select_option("connected")
    gmail.locator("input[data-name=duration_minutes]").fill("20")
    gmail.locator("input[data-name='answer:0']").fill("26 ft")
    gmail.locator("textarea[data-name=body_text]").fill("Rates for March")
    gmail.get_by_role("button", name="Log the call").click()
    status(gmail, "Call logged. Not answered: Lanes used.")
    assert back.count() == 0  # back on the message's card
    with app.extensions["inboxcrm.db"].sessions() as session:
        call = session.scalars(select(Activity).where(Activity.type == "call")).one()
        assert (call.outcome, call.duration_minutes) == ("connected", 20)
    shot(page, "gmail-call-logged")

    # The call's own card: rate it, take the rating back, make it private.
    gmail.locator(".card-link", has_text="Rates for March").click()
    gmail.get_by_role("button", name="Went well").click()
    status(gmail, "Marked as went well.")
    gmail.get_by_role("button", name="Take back “went well”").click()
    status(gmail, "Rating taken back.")
    gmail.get_by_role("button", name="Make private").click()
    status(gmail, "Private: only you see its subject and text.")
    gmail.get_by_role("button", name="Share with your team again").wait_for()
    with app.extensions["inboxcrm.db"].sessions() as session:
        assert session.get(Activity, call.id).is_private and session.get(Activity, call.id).rating is None
    back.click()

    # A stage move, and its Undo.
    gmail.get_by_role("button", name="Change").first.click()
    stage = app_world.stages[1]
    gmail.locator("select[data-name=stage]").select_option(str(stage.id))
    gmail.get_by_role("button", name="Save stage").click()
    status(gmail, f"Reefer contract: {stage.name}.")
    gmail.get_by_role("button", name="Undo").click()
    status(gmail, "Undone:")
    with app.extensions["inboxcrm.db"].sessions() as session:
        assert (
            session.scalars(select(Opportunity.stage_id).where(Opportunity.name == "Reefer contract")).one() != stage.id
        )

    # A follow-up set, and taken back.
    gmail.locator("input[data-name=follow_up]").fill("Send the March rates")
    gmail.locator("input[data-name=due]").fill((utcnow() + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M"))
    gmail.get_by_role("button", name="Set follow-up").click()
    status(gmail, "Follow-up set.")
    gmail.get_by_role("button", name="Undo").click()
    status(gmail, "Follow-up taken back.")

    # Search the CRM, choose the deal: the mail is filed there.
    gmail.locator("input[data-name=q]").fill("Reefer")
    gmail.get_by_role("button", name="Find in the CRM").click()
    gmail.get_by_role("button", name="Choose").first.click()
    gmail.get_by_text("Chosen from a search").wait_for()
    gmail.get_by_role("button", name="Log this email").click()
    status(gmail, "Email logged.")
    with app.extensions["inboxcrm.db"].sessions() as session:
        mail = session.scalars(select(Activity).where(Activity.type == "email")).one()
        assert mail.opportunity_id is not None

    # The rep's never-log list.
    gmail.get_by_role("button", name="Never-log list").first.click()
    gmail.locator("input[data-name=block_value]").fill("friend@example.org")
    gmail.get_by_role("button", name="Never log their mail").click()
    status(gmail, "Blocked")
    gmail.get_by_role("button", name="Remove").click()
    status(gmail, "Taken off your never-log list.")
    with app.extensions["inboxcrm.db"].sessions() as session:
        assert session.scalars(select(BlockEntry)).all() == []

    # A reply written in Gmail: Log when sent.
    gmail.get_by_role("button", name="Write a reply").click()
    gmail.get_by_role("button", name="Log when sent").click()
    status(gmail, "Will be logged when sent.")
    with app.extensions["inboxcrm.db"].sessions() as session:
        assert session.scalars(select(SendMark.recipients)).all() == ["ann@acme.test"]
    shot(page, "gmail-compose-marked")
    assert errors == [], errors


def test_the_reps_day_in_the_preview_has_done_and_undo(browser, live_url, app, app_world: World) -> None:
    with app.extensions["inboxcrm.db"].sessions() as session:
        session.add(
            FollowUp(
                organization_id=app_world.org.id,
                owner_id=app_world.rep.id,
                title="Call Ann about lanes",
                due_at=utcnow() - timedelta(hours=1),
                account_id=app_world.account.id,
            )
        )
        session.commit()
    errors: list[str] = []
    page, gmail = gmail_tab(browser, live_url, app_world, errors)
    gmail.get_by_role("button", name="Home").click()
    gmail.get_by_text("Call Ann about lanes").wait_for()
    assert gmail.get_by_role("button", name="← Back").count() == 0
    gmail.get_by_role("button", name="Done", exact=True).click()
    status(gmail, "Follow-up done.")
    assert gmail.get_by_text("Call Ann about lanes").count() == 0
    gmail.get_by_role("button", name="Undo").click()
    status(gmail, "Follow-up open again.")
    gmail.get_by_text("Call Ann about lanes").wait_for()
    # Its row opens its account's timeline.
    gmail.locator(".card-link", has_text="Call Ann about lanes").click()
    gmail.get_by_text("Timeline").first.wait_for()
    assert covered_buttons(gmail) == []
    shot(page, "gmail-rep-day")
    assert errors == [], errors


def test_a_managers_team_card_in_the_preview(browser, live_url, app, app_world: World) -> None:
    page = sign_in_to_preview(browser, live_url, app_world, user=app_world.manager)
    page.get_by_role("tab", name="Gmail add-on").click()
    gmail = page.locator("#gmail-panel")
    gmail.get_by_text("Ann Buyer").first.wait_for()  # the first mail's card, drawn before Home is asked for
    gmail.get_by_role("button", name="Home").click()
    for heading in ("This week against last", "Pipeline and conversion", "Leaders this quarter"):
        gmail.get_by_text(heading).first.wait_for()
    assert covered_buttons(gmail) == []
    gmail.locator(".card-link", has_text="Rita Rep").click()
    gmail.get_by_text("Open deals (1)").wait_for()
    assert "Reefer contract" in gmail.inner_text()
    shot(page, "gmail-manager-rep")
