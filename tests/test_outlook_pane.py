"""The task pane as Outlook runs it: real Chromium at Outlook's pane widths, with Microsoft's
Office.js address answered by a local stub (tests/stubs/office.js) that speaks the documented
shapes of Office.context.mailbox."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from services.mail import activities
from services.models import Activity, ActivityParticipant, Contact, Opportunity, StageChange, User
from tests.factories import PASSWORD, World
from tests.browsing import shot as save_shot

pytestmark = pytest.mark.browser
OFFICE_JS = "https://appsforoffice.microsoft.com/lib/1/hosted/office.js"
STUB = Path(__file__).resolve().parent / "stubs" / "office.js"
REP = "rita@northwind.test"


def message(sender: str = "ann@acme.test", message_id: str = "<m1@acme.test>", **extra) -> dict:
    return {
        "itemType": "message",
        "from": sender,
        "to": [REP],
        "subject": "Rates for Q1",
        "internetMessageId": message_id,
        "body": "Hi Rita, can you send the rates?",
        **extra,
    }


@pytest.fixture
def open_pane(browser, live_url):
    pages = []

    def open_pane(item: dict | None, width: int = 350, time_zone: str | None = None):
        context = browser.new_context(viewport={"width": width, "height": 900})
        page = context.new_page()
        pages.append(context)
        page.route(OFFICE_JS, lambda route: route.fulfill(path=str(STUB), content_type="application/javascript"))
        page.goto(f"{live_url}/login")
        page.fill("input[name=email]", REP)
        page.fill("input[name=password]", PASSWORD)
        page.click("button.primary")
        page.add_init_script(
            f"window.__officeInitial = {json.dumps({'user': REP, 'item': item, 'timeZone': time_zone})};"
        )
        page.goto(f"{live_url}/pane")
        return page

    yield open_pane
    for context in pages:
        context.close()


def rows(app, model, *where) -> int:
    with app.extensions["inboxcrm.db"].sessions() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where))


def shot(page, name: str) -> None:
    save_shot(page, f"outlook-{name}")


def no_horizontal_scroll(page) -> None:
    for details in page.locator("details").all():
        details.evaluate("element => element.open = true")
    scroll, client = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert scroll <= client, (scroll, client)


@pytest.mark.parametrize("width", [320, 350])
def test_known_sender_log_then_log_again(open_pane, app, app_world: World, width):
    page = open_pane(message(), width)
    page.locator(".contact h2", has_text="Ann Buyer").wait_for()
    assert page.locator(".deal h4").inner_text() == "Reefer contract"
    assert "Qualify" in page.locator(".deal .badge").inner_text()
    shot(page, f"context-{width}")
    no_horizontal_scroll(page)

    page.get_by_role("button", name="Log this email").click()
    page.locator(".logged").wait_for()
    assert "Email logged." in page.locator(".toast").inner_text()
    assert page.locator(".toast button", has_text="Undo").is_visible()
    shot(page, f"logged-{width}")
    with app.extensions["inboxcrm.db"].sessions() as session:
        logged = session.scalars(select(Activity)).one()
        assert (logged.direction, logged.subject, logged.body_text) == (
            "inbound",
            "Rates for Q1",
            "Hi Rita, can you send the rates?",
        )

    # The pinned pane is shown the same message again: it stays logged, once.
    page.evaluate(f"window.__office.show({json.dumps(message())})")
    page.locator(".logged").wait_for()
    assert rows(app, Activity) == 1
    no_horizontal_scroll(page)


def test_two_quick_submits_log_one_activity(open_pane, app, app_world: World):
    page = open_pane(message(message_id="<twice@acme.test>"))
    page.get_by_role("button", name="Log this email").wait_for()
    page.evaluate("""() => { const form = document.querySelector('[data-form=log_email]');
                             htmx.trigger(form, 'submit'); htmx.trigger(form, 'submit'); }""")
    page.locator(".logged").wait_for()
    page.wait_for_load_state("networkidle")
    assert rows(app, Activity) == 1


def test_undo_takes_the_log_back(open_pane, app, app_world: World):
    page = open_pane(message())
    page.get_by_role("button", name="Log this email").click()
    page.locator(".toast button", has_text="Undo").click()
    page.locator(".toast", has_text="Log undone.").wait_for()
    assert page.get_by_role("button", name="Log this email").is_visible()
    assert rows(app, Activity, Activity.deleted_at.is_(None)) == 0
    page.get_by_role("button", name="Log this email").click()
    page.locator(".logged").wait_for()
    assert rows(app, Activity, Activity.deleted_at.is_(None)) == 1 and rows(app, Activity) == 1


def test_unknown_sender_becomes_a_contact_with_a_deal(open_pane, app, app_world: World):
    page = open_pane(message("priya@granite-robotics.test", "<p1@granite.test>"), 320)
    page.get_by_text("Nobody on this email is in the CRM yet").wait_for()
    form = page.locator("[data-form=new_contact]")
    assert form.locator("input[name=company]").input_value() == "Granite Robotics"
    form.locator("input[name=name]").fill("Priya Natarajan")
    form.locator("input[name=deal_name]").fill("Denver to Austin")
    form.locator("input[name=amount]").fill("48000")
    shot(page, "new-contact-form")
    form.get_by_role("button", name="Add to CRM").click()
    page.locator(".contact h2", has_text="Priya Natarajan").wait_for()
    assert page.locator(".deal h4").inner_text() == "Denver to Austin"
    shot(page, "new-contact-created")
    with app.extensions["inboxcrm.db"].sessions() as session:
        contact = session.scalars(select(Contact).where(Contact.name == "Priya Natarajan")).one()
        assert contact.account.name == "Granite Robotics"
        assert session.scalars(select(Opportunity.amount).where(Opportunity.name == "Denver to Austin")).one() == 48000
    no_horizontal_scroll(page)


def test_lost_without_reason_is_refused_inline(open_pane, app, app_world: World):
    page = open_pane(message())
    page.get_by_text("Change stage").click()
    form = page.locator(f"[data-form=stage-{app_world.deal.id}]")
    form.locator("select[name=stage]").select_option("lost")
    form.get_by_role("button", name="Save stage").click()
    form.locator(".field-error", has_text="Say why the deal was lost.").wait_for()
    # Said once, beside its field (not also as "Required to mark as lost."); the form's line points to it.
    assert page.get_by_text("Say why the deal was lost.").count() == 1
    assert page.get_by_text("Required").count() == 0
    assert form.locator(".form-error").inner_text() == "Check the field marked below."
    # Only Lost's field is shown with Lost chosen: the won amount is not asked.
    assert (
        form.locator("input[name=loss_reason]").is_visible()
        and not form.locator("input[name=final_amount]").is_visible()
    )
    # The form stays open with the choice kept and the field marked.
    assert form.locator("select[name=stage]").input_value() == "lost"
    assert form.locator("input[name=loss_reason]").get_attribute("aria-invalid") == "true"
    shot(page, "lost-without-reason")
    assert rows(app, StageChange) == 2
    with app.extensions["inboxcrm.db"].sessions() as session:
        assert session.get(Opportunity, app_world.deal.id).status == "open"
    form.locator("input[name=loss_reason]").fill("Price")
    form.get_by_role("button", name="Save stage").click()
    page.locator(".toast", has_text="Reefer contract: lost.").wait_for()
    assert rows(app, StageChange) == 3


def change_stage(page, deal_id: int, stage: str, **fields: str):
    """Open the deal's "Change stage" form, choose ``stage``, fill ``fields`` and save: the form."""
    page.get_by_text("Change stage").click()
    form = page.locator(f"[data-form=stage-{deal_id}]")
    form.locator("select[name=stage]").select_option(stage)
    for name, value in fields.items():
        form.locator(f"input[name={name}]").fill(value)
    form.get_by_role("button", name="Save stage").click()
    return form


def test_an_amount_typed_as_people_write_it_and_one_that_cannot_be_read(open_pane, app, app_world: World):
    """Won at "12500,50" (no amount in an American organization): refused, said once, beside
    the field, the form's line pointing to it, nothing written. Then "$95,000", as the pane
    itself prints amounts: won at 95,000."""
    page = open_pane(message())
    form = change_stage(page, app_world.deal.id, "won", final_amount="12500,50")
    # Said once, beside the field; the form's line points to it.
    page.locator(".form-error", has_text="Check the field marked below.").wait_for()
    assert form.locator(".field-error").inner_text() == "Enter an amount, like 95,000.50."
    assert page.get_by_text("Enter an amount, like 95,000.50.").count() == 1
    assert form.locator("input[name=final_amount]").get_attribute("aria-invalid") == "true"
    assert form.locator("input[name=final_amount]").input_value() == "12500,50"  # kept as typed
    shot(page, "amount-refused")
    assert rows(app, StageChange) == 2
    form.locator("input[name=final_amount]").fill("$95,000")
    form.get_by_role("button", name="Save stage").click()
    page.locator(".toast", has_text="Reefer contract: won.").wait_for()
    with app.extensions["inboxcrm.db"].sessions() as session:
        deal = session.get(Opportunity, app_world.deal.id)
        assert (deal.status, deal.amount) == ("won", 95000)


def test_pinned_pane_follows_item_changed(open_pane, app_world: World):
    page = open_pane(message())
    page.locator(".contact h2", has_text="Ann Buyer").wait_for()
    page.evaluate(f"window.__office.show({json.dumps(message('tom.baker@gmail.com', '<t1@gmail.com>'))})")
    page.get_by_text("Nobody on this email is in the CRM yet").wait_for()
    assert page.locator(".contact").count() == 0
    page.evaluate("window.__office.show(null)")
    page.get_by_text("Select an email").wait_for()
    page.evaluate(f"window.__office.show({json.dumps(message())})")
    page.locator(".contact h2", has_text="Ann Buyer").wait_for()


def test_compose_shows_the_recipient_and_logs_once_sent(open_pane, app, app_world: World):
    draft = {
        "mode": "compose",
        "key": "draft-1",
        "itemType": "message",
        "to": ["ann@acme.test"],
        "subject": "Our rates",
        "body": "Rates attached.",
    }
    page = open_pane(draft)
    page.locator(".contact h2", has_text="Ann Buyer").wait_for()
    page.get_by_role("button", name="Log when sent").click()
    page.get_by_text("Will be logged when sent.").wait_for()
    shot(page, "compose")
    assert rows(app, Activity) == 0
    # Sent: the rep opens it in Sent Items, where the marked message logs itself.
    sent = {
        "key": "draft-1",
        "itemType": "message",
        "from": REP,
        "to": ["ann@acme.test"],
        "subject": "Our rates",
        "internetMessageId": "<sent-1@northwind.test>",
        "body": "Rates attached.",
    }
    page.evaluate(f"window.__office.show({json.dumps(sent)})")
    page.locator(".logged").wait_for()
    with app.extensions["inboxcrm.db"].sessions() as session:
        logged = session.scalars(select(Activity)).one()
        assert (logged.direction, logged.contact_id, logged.external_id) == (
            "outbound",
            app_world.contact.id,
            "<sent-1@northwind.test>",
        )


def test_appointment_logs_the_meeting_with_its_attendees(open_pane, app, app_world: World):
    meeting = {
        "itemType": "appointment",
        "itemId": "AAMkAD-1",
        "organizer": REP,
        "subject": "Quarterly review",
        "attendees": ["ann@acme.test", "newface@acme.test"],
        "start": "2026-11-02T14:00:00Z",
        "end": "2026-11-02T15:30:00Z",
        "body": "Agenda",
    }
    page = open_pane(meeting)
    page.get_by_role("button", name="Log this meeting").click()
    page.get_by_text("This meeting is logged.").wait_for()
    shot(page, "appointment")
    with app.extensions["inboxcrm.db"].sessions() as session:
        logged = session.scalars(select(Activity)).one()
        assert (logged.type, logged.outcome, logged.duration_minutes, logged.contact_id) == (
            "meeting",
            "held",
            90,
            app_world.contact.id,
        )
        attendees = session.scalars(select(ActivityParticipant.address).order_by(ActivityParticipant.address)).all()
        assert attendees == ["ann@acme.test", "newface@acme.test"]


def test_keyboard_reaches_log_with_a_visible_focus(open_pane, app, app_world: World):
    page = open_pane(message())
    page.get_by_role("button", name="Log this email").wait_for()
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent.trim()") == "Log this email":
            break
    else:
        pytest.fail("Tab never reached the Log button")
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("none", "")
    page.keyboard.press("Enter")
    page.locator(".logged").wait_for()
    assert rows(app, Activity) == 1


@pytest.fixture
def sso_pane(browser, live_url, app):
    """Opens the pane as Outlook on the web does with single sign-on: Office.js (the local
    stub) hands out a Microsoft access token, signed by a local key server's key."""
    from tests.helpers import CLIENT_ID, SCOPE, TENANT, JwksServer, claims, sign

    jwks = JwksServer()
    app.config.update(
        MS_JWKS_URL=jwks.url, MS_TENANTS={TENANT: "northwind.test"}, MS_AUDIENCES=[CLIENT_ID], MS_SCOPE=SCOPE
    )
    contexts = []

    def open_pane(who: str = REP, width: int = 350):
        context = browser.new_context(viewport={"width": width, "height": 900})
        contexts.append(context)
        page = context.new_page()
        page.route(OFFICE_JS, lambda route: route.fulfill(path=str(STUB), content_type="application/javascript"))
        token = sign(jwks.key, claims(preferred_username=who, oid=f"oid-{who}"))
        page.add_init_script(
            f"window.__officeInitial = {json.dumps({'user': who, 'item': message(), 'accessToken': token})};"
        )
        page.goto(f"{live_url}/pane")
        page.locator(".contact h2", has_text="Ann Buyer").wait_for()
        return page

    yield open_pane
    for context in contexts:
        context.close()
    jwks.close()


def test_pane_signs_in_with_office_sso_and_no_cookie(sso_pane, live_url, app, app_world: World):
    """Outlook on the web frames the pane as a third party: cookies may be blocked. The pane
    signs in with Office's access token and carries its own bearer token from then on."""
    page = sso_pane()
    page.get_by_role("button", name="Log this email").click()
    page.locator(".logged").wait_for()
    # Signed in by the token alone: the browser's cookies by themselves get nowhere.
    assert page.request.get(f"{live_url}/pane/context", headers={"HX-Request": "true"}).status == 401
    token = page.evaluate("sessionStorage.getItem('inboxcrm.pane-token')")
    with_token = page.request.get(
        f"{live_url}/pane/context?from_address=ann@acme.test",
        headers={"HX-Request": "true", "Authorization": f"Bearer {token}"},
    )
    assert with_token.status == 200 and "Ann Buyer" in with_token.text()
    with app.extensions["inboxcrm.db"].sessions() as session:
        assert session.scalars(select(Activity.owner_id)).one() == app_world.rep.id


def test_pane_falls_back_to_a_password_where_sso_is_not_available(browser, live_url, app, app_world: World):
    context = browser.new_context(viewport={"width": 320, "height": 900})
    page = context.new_page()
    page.route(OFFICE_JS, lambda route: route.fulfill(path=str(STUB), content_type="application/javascript"))
    page.add_init_script(f"window.__officeInitial = {json.dumps({'user': REP, 'item': message()})};")
    page.goto(f"{live_url}/pane")
    form = page.locator("#pane-sign-in form")
    form.wait_for()
    form.locator("input[name=email]").fill(REP)
    form.locator("input[name=password]").fill("wrong")
    form.get_by_role("button", name="Sign in").click()
    page.get_by_text("Wrong e-mail address or password.").wait_for()
    form.locator("input[name=password]").fill(PASSWORD)
    form.get_by_role("button", name="Sign in").click()
    page.locator(".contact h2", has_text="Ann Buyer").wait_for()
    assert page.locator("#pane-sign-in").is_hidden()
    shot(page, "signed-in-with-password")
    # Signed out on purpose: said so (not "your sign-in has ended"), and the form is empty again.
    page.locator("#pane-header").get_by_role("button", name="Sign out").click()
    page.get_by_text("You signed out").wait_for()
    assert page.get_by_text("Your sign-in has ended").count() == 0
    form.wait_for()
    assert form.locator("input[name=email]").input_value() == ""
    assert form.locator("input[name=password]").input_value() == ""
    assert page.locator("[data-sign-in-error]").is_hidden()
    context.close()


@pytest.mark.parametrize(
    "who, name, manager", [("rita@northwind.test", "Rita Rep", False), ("mia@northwind.test", "Mia Manager", True)]
)
def test_a_pane_signed_in_by_token_is_the_same_pane(sso_pane, live_url, app_world: World, who, name, manager):
    """As Outlook signs in (Office SSO, a bearer token, no cookie), the header names the user,
    a manager gets the Team link and reaches the team panel, and Sign out ends the token."""
    page = sso_pane(who, width=320)
    header = page.locator("#pane-header")
    header.get_by_text(name).wait_for()
    assert header.get_by_role("link", name="Notes").is_visible()
    assert header.get_by_role("link", name="Team").count() == (1 if manager else 0)
    if manager:
        header.get_by_role("link", name="Team").click()
        page.get_by_role("heading", name="Team this week").wait_for()
    shot(page, f"token-header-{'manager' if manager else 'rep'}")
    pane_token = page.evaluate("sessionStorage.getItem('inboxcrm.pane-token')")
    header.get_by_role("button", name="Sign out").click()
    page.locator("#pane-sign-in form").wait_for()
    assert page.evaluate("sessionStorage.getItem('inboxcrm.pane-token')") is None
    assert header.get_by_text(name).count() == 0
    dead = page.request.get(
        f"{live_url}/pane/context", headers={"HX-Request": "true", "Authorization": f"Bearer {pane_token}"}
    )
    assert dead.status == 401


@pytest.mark.parametrize(
    "sender, why",
    [
        ("mailer-daemon@acme.test", "automated sender"),
        ("no-reply@acme.test", "automated sender"),
        ("noreply+billing@acme.test", "automated sender"),
        ("postmaster@acme.test", "automated sender"),
        ("not an address", "not a valid e-mail address"),
    ],
)
def test_no_button_that_can_only_fail_for_a_bounce_or_a_broken_sender(open_pane, app, sender, why):
    """A bounce, a no-reply mailbox or a malformed sender gets a line saying why there is
    nothing to log or add: no "Log this email", no form to add the sender; and the service
    refuses such a log from any path."""
    page = open_pane(message(sender, "<bounce@acme.test>"))
    page.locator("[data-nothing-to-log]", has_text=why).wait_for()
    assert page.get_by_role("button", name="Log this email").count() == 0
    assert page.locator("[data-form=new_contact]").count() == 0
    shot(page, f"nothing-to-log-{why.split()[0]}")
    assert rows(app, Activity) == 0


def test_a_refused_call_keeps_its_deal_and_takes_no_subject_from_the_mail(open_pane, app, app_world: World):
    """A call logged from a mail: refused for its minutes, the form keeps what was typed, the
    chosen deal too; fixed, it is logged on that deal, without the mail's subject, its checklist
    answers one per line in the list. A second call, with "use the mail's subject" ticked,
    takes it."""
    page = open_pane(message())
    page.get_by_text("Log a call, meeting or visit").click()
    form = page.locator("[data-form=log_activity]")
    form.locator("select[name=opportunity_id]").select_option(str(app_world.deal.id))
    form.locator("input[name=duration_minutes]").fill("half an hour")
    form.locator("textarea[name=body_text]").fill("Talked rates")
    form.get_by_role("button", name="Log", exact=True).click()
    form.locator(".field-error", has_text="Enter the duration in whole minutes, like 30.").wait_for()
    assert form.locator("select[name=opportunity_id]").input_value() == str(app_world.deal.id)
    assert form.locator("textarea[name=body_text]").input_value() == "Talked rates"
    shot(page, "call-refused-keeps-deal")
    assert rows(app, Activity) == 0
    # The checklist hint's background post, answered as the rep types an answer, leaves the
    # keyboard in that answer (it went back to the field marked before, typing into Minutes).
    answer = form.locator("input[name='answer:Truck size']")
    answer.fill("26 ft")
    page.locator("#unanswered").get_by_text("Not answered yet: Lanes used.").wait_for()
    assert answer.evaluate("field => field === document.activeElement")
    form.locator("input[name=duration_minutes]").fill("30")
    form.locator("input[name='answer:Lanes used']").fill("Denver to Austin")
    form.get_by_role("button", name="Log", exact=True).click()
    page.locator(".toast", has_text="Call logged.").wait_for()
    # The checklist's answers read one per line in the activity list, under a small type label.
    summary = page.locator(".summary", has_text="Truck size").first.inner_text()
    assert "Truck size: 26 ft\nLanes used: Denver to Austin" in summary
    line = page.locator("li.activity.call").first
    assert line.locator(".badge").bounding_box()["width"] < line.bounding_box()["width"] / 4
    page.get_by_text("Log a call, meeting or visit").click()
    form = page.locator("[data-form=log_activity]")
    # Logged, the form starts afresh: not even what the refusal had drawn back into it stays.
    assert form.locator("input[name=duration_minutes]").input_value() == ""
    assert form.locator("textarea[name=body_text]").input_value() == ""
    form.locator("input[name=use_mail_subject]").check()
    form.get_by_role("button", name="Log", exact=True).click()
    page.locator("li.activity.call").nth(1).wait_for()  # the answer is the call alone, put first
    with app.extensions["inboxcrm.db"].sessions() as session:
        first, second = session.scalars(select(Activity).where(Activity.type == "call").order_by(Activity.id)).all()
        assert (first.opportunity_id, first.duration_minutes, first.subject) == (app_world.deal.id, 30, None)
        assert second.subject == "Rates for Q1"
    # Rated with words, by mouse; the same button takes it back.
    page.locator("li.activity.call").first.get_by_role("button", name="+ went well").click()
    page.locator(".toast", has_text="Marked as went well.").wait_for()
    pressed = page.locator("li.activity.call").first.get_by_role("button", name="+ went well")
    assert pressed.get_attribute("aria-pressed") == "true"
    pressed.click()
    page.locator(".toast", has_text="Rating cleared.").wait_for()
    assert (
        page.locator("li.activity.call").first.get_by_role("button", name="+ went well").get_attribute("aria-pressed")
        == "false"
    )


def test_fast_switching_never_shows_the_wrong_mail(open_pane, app_world: World):
    """The moment another mail is opened, the last one's contact is gone (nothing waits for the
    new one's body or context); two mails opened in one breath end on the second, whichever
    answer comes back last."""
    page = open_pane(message())
    page.locator(".contact h2", has_text="Ann Buyer").wait_for()
    other = message("tom.baker@gmail.com", "<t1@gmail.com>")
    shown_at_once = page.evaluate(
        f"window.__office.show({json.dumps(other)}); document.getElementById('context').textContent"
    )
    assert "Ann Buyer" not in shown_at_once
    page.get_by_text("Nobody on this email is in the CRM yet").wait_for()
    page.evaluate(f"window.__office.show({json.dumps(message())}); window.__office.show({json.dumps(other)})")
    page.get_by_text("Nobody on this email is in the CRM yet").wait_for()
    page.wait_for_timeout(300)
    assert page.locator(".contact h2", has_text="Ann Buyer").count() == 0
    assert page.locator("#context").get_attribute("aria-busy") is None


def test_a_deal_won_in_the_pane_stays_in_view_and_can_be_undone(open_pane, app, app_world: World):
    page = open_pane(message())
    change_stage(page, app_world.deal.id, "won", final_amount="31,000")
    page.locator(".toast", has_text="Reefer contract: won.").wait_for()
    closed = page.locator("[data-closed-deal]")
    assert closed.locator("h4").inner_text() == "Reefer contract" and closed.locator(".badge").inner_text() == "Won"
    shot(page, "deal-won-undo")
    page.locator(".toast").get_by_role("button", name="Undo").click()
    page.locator(".toast", has_text="Undone: Reefer contract is back in").wait_for()
    page.locator(f"#deal-{app_world.deal.id}").wait_for()
    assert page.locator("[data-closed-deal]").count() == 0
    assert rows(app, StageChange) == 2
    with app.extensions["inboxcrm.db"].sessions() as session:
        deal = session.get(Opportunity, app_world.deal.id)
        assert (deal.status, deal.closed_at, deal.amount) == ("open", None, 25000)


def test_the_result_shows_where_the_rep_acted(open_pane, app, app_world: World):
    """Rated at the foot of a pane scrolled down: the toast is in view and has the focus (a
    live region, so a screen reader hears it); a refused form's marked field gets the focus."""
    with app.extensions["inboxcrm.db"].sessions() as session:
        from services.mail import activities as activity_service

        rep = session.get(User, app_world.rep.id)
        for n in range(8):
            activity_service.log_activity(
                session,
                rep,
                {
                    "type": "call",
                    "direction": "outbound",
                    "outcome": "connected",
                    "contact_id": app_world.contact.id,
                    "duration_minutes": str(n + 1),
                },
            )
        session.commit()
    page = open_pane(message(), width=320)
    page.set_viewport_size({"width": 320, "height": 480})
    last = page.locator("li.activity").last
    last.scroll_into_view_if_needed()
    last.get_by_role("button", name="+ went well").click()
    toast = page.locator(".toast", has_text="Marked as went well.")
    toast.wait_for()
    box = toast.bounding_box()
    assert 0 <= box["y"] and box["y"] + box["height"] <= 480
    assert page.evaluate("document.activeElement.classList.contains('toast')")
    assert toast.get_attribute("role") == "status"
    # A refused form: the marked field has the focus.
    page.get_by_text("Log a call, meeting or visit").click()
    form = page.locator("[data-form=log_activity]")
    form.locator("input[name=duration_minutes]").fill("lots")
    form.get_by_role("button", name="Log", exact=True).click()
    form.locator(".field-error").wait_for()
    assert page.evaluate("document.activeElement.name") == "duration_minutes"


def test_several_open_deals_the_rep_says_which_and_the_thread_remembers(open_pane, app, app_world: World):
    """Acme has two open deals: logging asks which (or none). The chosen one gets the mail, so
    "no word from the customer" leaves it; the thread's next mail offers that deal first."""
    from datetime import datetime, timedelta, timezone

    from tests.factories import make_deal

    with app.extensions["inboxcrm.db"].sessions() as session:
        org = session.get(type(app_world.org), app_world.org.id)
        lane = make_deal(
            session,
            org,
            session.get(type(app_world.account), app_world.account.id),
            session.get(User, app_world.rep.id),
            session.get(type(app_world.stages[0]), app_world.stages[0].id),
            "Chicago lane",
            created=datetime.now(timezone.utc) - timedelta(days=40),
        )
        session.commit()
        lane_id = lane.id
    page = open_pane(message(conversationId="thread-1"))
    card = page.locator(f"#deal-{lane_id}")
    card.locator(".warning", has_text="No word from the customer").wait_for()
    form = page.locator("[data-form=log_email]")
    assert sorted(form.locator("select[name=opportunity_id] option").all_inner_texts()) == [
        "Chicago lane",
        "None",
        "Reefer contract",
    ]
    # Offered first: the deal with the latest activity (neither has any: the newer), never "None".
    with app.extensions["inboxcrm.db"].sessions() as session:
        latest = session.scalar(
            select(Opportunity.id)
            .where(Opportunity.status == "open", Opportunity.account_id == app_world.account.id)
            .order_by(Opportunity.last_activity_at.desc().nulls_last(), Opportunity.id.desc())
        )
    assert form.locator("select[name=opportunity_id]").input_value() == str(latest)
    form.locator("select[name=opportunity_id]").select_option(str(lane_id))
    form.get_by_role("button", name="Log this email").click()
    page.locator(".logged").wait_for()
    assert page.locator(f"#deal-{lane_id} .warning", has_text="No word from the customer").count() == 0
    with app.extensions["inboxcrm.db"].sessions() as session:
        logged = session.scalars(select(Activity)).one()
        assert (logged.opportunity_id, logged.conversation_id) == (lane_id, "thread-1")
    shot(page, "several-deals-logged")
    page.evaluate(
        f"window.__office.show({json.dumps(message(internetMessageId='<m2@acme.test>', conversationId='thread-1'))})"
    )
    page.locator("[data-form=log_email]").wait_for()
    assert page.locator("[data-form=log_email] select[name=opportunity_id]").input_value() == str(lane_id)


def test_with_no_mail_open_the_pane_shows_my_day(open_pane, app, app_world: World):
    """No mail open: the rep's follow-ups overdue and due later today, not next week's."""
    from datetime import datetime, time, timedelta, timezone
    from zoneinfo import ZoneInfo

    from services.models import FollowUp

    now = datetime.now(timezone.utc)
    zone = ZoneInfo(app_world.org.time_zone)
    end_of_day = datetime.combine(now.astimezone(zone).date() + timedelta(days=1), time(), tzinfo=zone).astimezone(
        timezone.utc
    )
    with app.extensions["inboxcrm.db"].sessions() as session:
        for title, due in (
            ("Overdue call", now - timedelta(hours=5)),
            ("Later today", min(now + timedelta(hours=1), end_of_day - timedelta(minutes=1))),
            ("Next week", now + timedelta(days=7)),
        ):
            session.add(FollowUp(organization_id=app_world.org.id, title=title, due_at=due, owner_id=app_world.rep.id))
        session.commit()
    page = open_pane(None)
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    day = page.locator("section[aria-label='My day']")
    day.wait_for()
    assert day.locator("li span:first-child").all_inner_texts() == ["Overdue call", "Later today"]
    assert "overdue" in day.locator("li.overdue").inner_text()
    assert not day.get_by_text("Nothing due today.").is_visible()
    shot(page, "my-day")
    # Done takes it out; the toast's Undo puts it back, first.
    day.locator("li", has_text="Overdue call").get_by_role("button", name="Done").click()
    page.locator(".toast", has_text="Follow-up done.").get_by_role("button", name="Undo").click()
    page.locator(".toast", has_text="Follow-up open again.").wait_for()
    assert day.locator("li span:first-child").all_inner_texts() == ["Overdue call", "Later today"]
    for title in ("Overdue call", "Later today"):
        day.locator("li", has_text=title).get_by_role("button", name="Done").click()
        day.locator("li", has_text=title).wait_for(state="detached")
    day.get_by_text("Nothing due today.").wait_for()
    assert errors == [], errors


def test_follow_up_typed_in_the_mailbox_zone(open_pane, app, app_world: World):
    """Rita's organization keeps Berlin time, her Outlook New York's (``userProfile.timeZone``
    in Windows form): the follow-up she types for 10:00 is due at 10:00 in New York, and the
    pane says so."""
    from datetime import date, datetime, timedelta, timezone
    from zoneinfo import ZoneInfo

    from services.models import FollowUp
    from services.types import as_utc

    page = open_pane(message(), time_zone="Eastern Standard Time")
    page.locator(".contact h2", has_text="Ann Buyer").wait_for()
    page.get_by_text("Set a follow-up").click()
    form = page.locator("[data-form=follow_up]")
    assert "(America/New_York time)" in form.locator("label", has_text="Due").inner_text()
    day = date.today() + timedelta(days=3)
    form.locator("input[name=title]").fill("Call back")
    form.locator("input[name=due_at]").fill(f"{day.isoformat()}T10:00")
    form.get_by_role("button", name="Set follow-up").click()
    page.locator(".toast", has_text="Follow-up set.").wait_for()
    expected = datetime(day.year, day.month, day.day, 10, tzinfo=ZoneInfo("America/New_York")).astimezone(timezone.utc)
    with app.extensions["inboxcrm.db"].sessions() as session:
        due = session.scalar(select(FollowUp.due_at).where(FollowUp.title == "Call back"))
    assert as_utc(due) == expected
    listed = page.locator("section.follow-ups li", has_text="Call back").inner_text()
    assert f"{day:%d %b} 10:00 E" in listed  # EST or EDT, named: not the organization's zone
    shot(page, "follow-up-mailbox-zone")


def test_search_and_attach_the_mail_to_another_accounts_deal(open_pane, app, app_world: World):
    """Ann (Acme) writes about a deal at another account: the rep finds it from the pane,
    chooses it, and logs the mail and a note to it."""
    from tests.factories import make_account, make_deal

    with app.extensions["inboxcrm.db"].sessions() as session:
        org = session.merge(app_world.org)
        rep = session.merge(app_world.rep)
        globex = make_account(session, org, rep, "Globex Logistics", "globex.test")
        deal_id = make_deal(session, org, globex, rep, session.merge(app_world.stages[1]), "Cold chain pilot").id
        globex_id = globex.id
        session.commit()
    page = open_pane(message(), width=320)
    page.locator(".contact h2", has_text="Ann Buyer").wait_for()
    page.get_by_text("Find in the CRM").click()
    page.get_by_label("Contact, account or deal").fill("globex")
    found = page.locator("#search-results .found-deals li", has_text="Cold chain pilot")
    found.wait_for()
    assert page.locator("#search-results .found-accounts li").all_inner_texts()[0].startswith("Globex Logistics")
    shot(page, "search-results")
    no_horizontal_scroll(page)
    found.get_by_role("button", name="Choose this deal").click()
    page.locator(".account.chosen h2", has_text="Globex Logistics").wait_for()
    assert page.locator("[data-form=log_email] select[name=opportunity_id]").input_value() == str(deal_id)
    page.get_by_role("button", name="Log this email").click()
    page.locator(".toast", has_text="Email logged.").wait_for()
    # The choice holds for the next action on this mail: a note goes to the same deal.
    page.get_by_text("Add a note").click()
    note = page.locator("[data-form=note]")
    assert note.locator("select[name=opportunity_id]").input_value() == str(deal_id)
    note.locator("textarea[name=body]").fill("Pilot starts in March")
    note.get_by_role("button", name="Add note").click()
    page.locator(".toast", has_text="Note added.").wait_for()
    with app.extensions["inboxcrm.db"].sessions() as session:
        logged = {
            a.type: (a.opportunity_id, a.account_id)
            for a in session.scalars(select(Activity).where(Activity.opportunity_id == deal_id))
        }
    assert logged == {"email": (deal_id, globex_id), "note": (deal_id, globex_id)}
    # Cleared, the pane is the sender's again.
    page.locator(".account.chosen").get_by_role("button", name="Clear").click()
    page.locator(".account.chosen").wait_for(state="detached")
    assert page.locator(".account h2").first.inner_text() == "Acme Freight"
    shot(page, "search-chosen-cleared")


def test_small_actions_swap_only_what_changed(open_pane, app, app_world: World):
    """A rating, a note and a follow-up done change their own part of the pane: the rest of it
    is the same page (a mark set on the contact card survives), and the toast says what happened."""
    from datetime import datetime, timedelta, timezone

    from services.models import FollowUp

    with app.extensions["inboxcrm.db"].sessions() as session:
        session.add(
            FollowUp(
                organization_id=app_world.org.id,
                title="Send rates",
                due_at=datetime.now(timezone.utc) + timedelta(days=2),
                owner_id=app_world.rep.id,
                contact_id=app_world.contact.id,
            )
        )
        session.commit()
    page = open_pane(message())
    page.locator(".contact h2", has_text="Ann Buyer").wait_for()
    page.evaluate("document.querySelector('.contact').dataset.kept = 'yes'")
    # A note: first in the recent activities (shown now that there is one), the form emptied.
    assert not page.locator("section.activities").is_visible()
    page.get_by_text("Add a note").click()
    note = page.locator("[data-form=note]")
    note.locator("textarea[name=body]").fill("Prefers mornings")
    note.get_by_role("button", name="Add note").click()
    page.locator(".toast", has_text="Note added.").wait_for()
    assert page.locator("#recent-activities li").first.inner_text().count("Prefers mornings") == 1
    assert page.locator("section.activities").is_visible()
    assert note.locator("textarea[name=body]").input_value() == ""
    # Rated: the item's buttons say so.
    item = page.locator("#recent-activities li").first
    item.get_by_role("button", name="+ went well").click()
    page.locator(".toast", has_text="Marked as went well.").wait_for()
    assert (
        page.locator("#recent-activities li")
        .first.get_by_role("button", name="+ went well")
        .get_attribute("aria-pressed")
        == "true"
    )
    # Done: the follow-up leaves the list.
    page.locator("section.follow-ups li", has_text="Send rates").get_by_role("button", name="Done").click()
    page.locator(".toast", has_text="Follow-up done.").wait_for()
    page.locator("section.follow-ups li", has_text="Send rates").wait_for(state="detached")
    assert page.evaluate("document.querySelector('.contact').dataset.kept") == "yes"
    assert page.evaluate("document.activeElement.classList.contains('toast')")
    shot(page, "small-actions")
    with app.extensions["inboxcrm.db"].sessions() as session:
        assert session.scalar(select(Activity.rating).where(Activity.type == "note")) == 1


def test_a_marked_message_is_logged_as_it_is_sent(browser, live_url, app, app_world: World):
    """Outlook's OnMessageSend runs static/js/launchevent.js in its hidden page: a message the
    rep marked is logged as it goes (signed in by Office's single sign-on), the send is always
    allowed, and the same message opened from Sent Items is that one activity, not a second."""
    from tests.helpers import CLIENT_ID, SCOPE, TENANT, JwksServer, claims, sign

    jwks = JwksServer()
    app.config.update(
        MS_JWKS_URL=jwks.url, MS_TENANTS={TENANT: "northwind.test"}, MS_AUDIENCES=[CLIENT_ID], MS_SCOPE=SCOPE
    )
    token = sign(jwks.key, claims(preferred_username=REP, oid=f"oid-{REP}"))
    draft = {
        "mode": "compose",
        "key": "draft-1",
        "itemType": "message",
        "to": ["ann@acme.test"],
        "subject": "Our rates",
        "body": "Rates attached.",
    }
    contexts = []

    def page_with(item: dict, properties: dict, path: str):
        context = browser.new_context(viewport={"width": 350, "height": 900})
        contexts.append(context)
        page = context.new_page()
        page.route(OFFICE_JS, lambda route: route.fulfill(path=str(STUB), content_type="application/javascript"))
        page.add_init_script(
            f"window.__officeInitial = {json.dumps({'user': REP, 'item': item, 'accessToken': token, 'properties': properties})};"
        )
        page.goto(f"{live_url}{path}")
        return page

    def send(page) -> dict:
        # The page has loaded: its script associated the handler as it ran (Outlook calls it by name).
        return page.evaluate("new Promise(done => window.__office.actions.onMessageSendHandler({ completed: done }))")

    try:
        # Not marked: sent, nothing logged.
        assert send(page_with(draft, {}, "/launch-event")) == {"allowEvent": True}
        assert rows(app, Activity) == 0
        # Marked in the pane ("Log when sent"): logged as it goes, under the key it now carries.
        page = page_with(draft, {"draft-1": {"inboxcrm_log": "1"}}, "/launch-event")
        assert send(page) == {"allowEvent": True}
        properties = page.evaluate("window.__office.properties['draft-1']")
        with app.extensions["inboxcrm.db"].sessions() as session:
            logged = session.scalars(select(Activity)).one()
            assert (logged.external_id, logged.direction, logged.contact_id, logged.subject) == (
                f"send:{properties['inboxcrm_send_key']}",
                "outbound",
                app_world.contact.id,
                "Our rates",
            )
        # Opened from Sent Items (its properties travelled with it): the pane's log finds it.
        sent = {
            "key": "draft-1",
            "itemType": "message",
            "from": REP,
            "to": ["ann@acme.test"],
            "subject": "Our rates",
            "internetMessageId": "<sent-1@northwind.test>",
            "body": "Rates attached.",
        }
        pane = page_with(sent, {"draft-1": properties}, "/pane")
        pane.locator(".logged").wait_for()
        with app.extensions["inboxcrm.db"].sessions() as session:
            assert [(a.id, a.external_id) for a in session.scalars(select(Activity))] == [
                (logged.id, "<sent-1@northwind.test>")
            ]
        # Whatever fails (here: no single sign-on), the message is sent, to be logged from Sent Items.
        app.config.update(MS_TENANTS={})
        assert send(page_with({**draft, "key": "draft-2"}, {"draft-2": {"inboxcrm_log": "1"}}, "/launch-event")) == {
            "allowEvent": True
        }
        assert rows(app, Activity) == 1
    finally:
        for context in contexts:
            context.close()
        jwks.close()


def test_a_rep_blocks_an_address_from_the_pane(open_pane, app, app_world: World):
    """ "Never logged": the rep's own block list, kept in the pane; a mail from a blocked address
    then says why there is nothing to log."""
    page = open_pane(message(), width=320)
    page.locator(".contact h2", has_text="Ann Buyer").wait_for()
    page.get_by_role("link", name="Never logged").click()
    page.get_by_label("Address or domain").fill("foo@")
    page.get_by_role("button", name="Block", exact=True).click()
    page.locator(".form-error", has_text="not an e-mail address").wait_for()
    page.get_by_label("Address or domain").fill("ann@acme.test")
    page.get_by_role("button", name="Block", exact=True).click()
    page.locator("section[aria-label='Your block list'] li", has_text="ann@acme.test").wait_for()
    no_horizontal_scroll(page)
    shot(page, "block-list")
    page.get_by_role("button", name="← Back to the email").click()
    page.locator("[data-nothing-to-log]", has_text="block list").wait_for()
    assert page.locator("[data-form=log_email]").count() == 0
    assert rows(app, Activity) == 0


def test_opening_a_mail_puts_no_address_or_subject_in_a_url(open_pane, app_world: World):
    """The pane posts the open item: its addresses and subject stay out of every URL it asks
    for (and so out of any access log), however many mails the rep opens."""
    page = open_pane(None)
    urls: list[str] = []
    page.on("request", lambda request: urls.append(request.url))
    page.evaluate(f"window.__office.show({json.dumps(message())})")
    page.locator(".contact h2", has_text="Ann Buyer").wait_for()
    page.evaluate(f"window.__office.show({json.dumps(message(sender='bob@acme.test', message_id='<m2@acme.test>'))})")
    page.locator("[data-form=new_contact]").first.wait_for()
    assert any("/pane/context" in url for url in urls)
    assert not [url for url in urls if "acme.test" in url or "Rates" in url or "northwind.test" in url], urls


def test_the_pane_on_a_phone_is_touch_sized_and_fits(browser, live_url, app, app_world: World):
    """Outlook on a phone: 375 px wide, touch. Every control of a known sender's pane (every
    form opened) is at least 44 px high, nothing scrolls sideways, and a mail is logged by tap."""
    context = browser.new_context(viewport={"width": 375, "height": 800}, has_touch=True, is_mobile=True)
    page = context.new_page()
    page.route(OFFICE_JS, lambda route: route.fulfill(path=str(STUB), content_type="application/javascript"))
    page.goto(f"{live_url}/login")
    page.fill("input[name=email]", REP)
    page.fill("input[name=password]", PASSWORD)
    with page.expect_navigation():  # signed in before the pane is asked for
        page.tap("button.primary")
    page.add_init_script(f"window.__officeInitial = {json.dumps({'user': REP, 'item': message()})};")
    page.goto(f"{live_url}/pane")
    page.locator(".contact h2", has_text="Ann Buyer").wait_for()
    assert page.evaluate("matchMedia('(pointer: coarse)').matches")
    no_horizontal_scroll(page)  # opens every form too
    small = page.evaluate(
        """() => [...document.querySelectorAll('button, a.button, select, summary, textarea, input:not([type=hidden]):not([type=checkbox]):not([type=radio])')]
            .filter(e => e.offsetParent !== null)
            .map(e => [e.outerHTML.slice(0, 80), e.getBoundingClientRect().height])
            .filter(([, h]) => h < 44)"""
    )
    assert small == [], small
    shot(page, "phone-375")
    page.get_by_role("button", name="Log this email").tap()
    page.locator(".logged").wait_for()
    assert rows(app, Activity) == 1
    context.close()


def test_a_check_box_is_drawn_as_a_check_box(open_pane, app_world: World):
    """The Private choice was a 128x32 text box on every form."""
    page = open_pane(message(), 320)
    page.locator(".contact h2", has_text="Ann Buyer").wait_for()
    boxes = page.locator("input[type=checkbox]")
    assert boxes.count() >= 1
    for index in range(boxes.count()):
        box = boxes.nth(index)
        if box.is_visible():
            size = box.bounding_box()
            assert size["width"] < 30 and size["height"] < 30, size


def test_a_pane_signed_in_by_token_opens_notes_signed_in(sso_pane, live_url, app_world: World):
    """In Outlook's token sign-in (no cookie), Notes opened from the pane asked the browser window
    for a second sign-in: it opens by a single-use link instead, signed in."""
    page = sso_pane("rita@northwind.test", width=320)
    header = page.locator("#pane-header")
    header.get_by_text("Rita Rep").wait_for()
    # The pane's handoff endpoint makes links to this server's own pages only.
    token = page.evaluate("sessionStorage.getItem('inboxcrm.pane-token')")
    bearer = {"Authorization": f"Bearer {token}"}
    for elsewhere in ("https://evil.test/", "//evil.test/x", "notes"):
        assert page.request.post(f"{live_url}/pane/handoff", form={"next": elsewhere}, headers=bearer).status == 400
    with page.context.expect_page() as opened:
        header.get_by_role("link", name="Notes").click()
    notes = opened.value
    notes.wait_for_url("**/notes")  # the window opens at once, then goes to the link made for it
    assert notes.locator("input[name=password]").count() == 0  # no second sign-in
    assert "Notes" in notes.title() or notes.locator("h1").count() == 1


def test_a_known_contacts_first_screen_shows_who_the_log_actions_and_the_deal(open_pane, app, app_world: World):
    """At 320 × 640, with no scrolling: the contact, the log actions (the mail, a call, a note,
    a follow-up) and the deal; each activity's buttons share one row under it."""
    with app.extensions["inboxcrm.db"].sessions() as session:
        rep = session.get(User, app_world.rep.id)
        for n in range(3):
            activities.add_note(
                session, rep, {"body": f"Note {n} about the March rates", "account_id": app_world.account.id}
            )
        session.commit()
    page = open_pane(message(), width=320)
    page.set_viewport_size({"width": 320, "height": 640})
    page.locator(".contact h2", has_text="Ann Buyer").wait_for()
    page.locator("li.activity").first.wait_for()
    for shown in (
        page.locator(".contact h2"),
        page.get_by_role("button", name="Log this email"),
        page.get_by_text("Log a call, meeting or visit"),
        page.get_by_text("Add a note"),
        page.get_by_text("Set a follow-up"),
        page.locator(".deal h4", has_text="Reefer contract"),
    ):
        box = shown.first.bounding_box()
        assert box["y"] >= 0 and box["y"] + box["height"] <= 640, (shown, box)
    for item in page.locator("li.activity").all():
        tops = {round(b.bounding_box()["y"]) for b in item.locator(".activity-actions button").all()}
        assert len(tops) == 1, tops
    shot(page, "pane-first-screen-320")
