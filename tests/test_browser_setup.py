"""A real team starts, in a real Chromium: on an empty store a new admin creates the
organization, makes a team, invites a rep and a manager, adds a stage and sets a quota; the
invited rep joins by the link and logs a mail from the pane."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import select
from werkzeug.serving import make_server

from addin.routes.setup import setup_code
from services.models import Activity, Contact, Opportunity, Organization, Quota, Stage, User
from tests.browsing import shot

pytestmark = pytest.mark.browser
PASSWORD = "a long enough password"


@pytest.fixture
def empty_live_url(app) -> Iterator[str]:
    """The app on an empty store, as production serves it: no demo picker."""
    app.config["DEMO_SIGN_IN"] = False
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def test_a_new_admin_sets_up_the_team_and_an_invited_rep_logs_a_mail(browser, app, empty_live_url):
    with app.app_context():
        code = setup_code()
    admin = browser.new_context(viewport={"width": 1280, "height": 900})
    page = admin.new_page()
    page.goto(empty_live_url + "/")
    page.wait_for_url("**/setup")
    page.fill("input[name=code]", code)
    page.fill("input[name=name]", "Fjord Logistics")
    page.fill("input[name=domains]", "fjord.example")
    page.fill("input[name=time_zone]", "Europe/Oslo")
    page.select_option("select[name=fiscal_year_start_month]", "4")
    page.fill("input[name=currency]", "NOK")
    page.fill("input[name=locale]", "nb_NO")
    page.fill("input[name=admin_name]", "Ingrid Admin")
    page.fill("input[name=admin_email]", "ingrid@fjord.example")
    page.fill("input[name=password]", PASSWORD)
    page.fill("input[name=password_again]", PASSWORD)
    shot(page, "setup-first-run")
    page.get_by_role("button", name="Create with a password").click()
    page.wait_for_url("**/admin/people")
    assert "Fjord Logistics is ready" in page.inner_text("main")

    page.get_by_role("link", name="Teams").click()
    page.fill("input[name=name]", "Coast")
    page.get_by_role("button", name="Make the team").click()
    page.get_by_text("Team Coast made.").wait_for()

    links = {}
    for email, name, role in (
        ("ola@fjord.example", "Ola Rep", "rep"),
        ("kari@fjord.example", "Kari Manager", "manager"),
    ):
        page.get_by_role("link", name="People").click()
        page.fill("form[action$='/people/invite'] input[name=email]", email)
        page.fill("form[action$='/people/invite'] input[name=name]", name)
        page.select_option("form[action$='/people/invite'] select[name=role]", role)
        page.select_option("form[action$='/people/invite'] select[name=team_id]", label="Coast")
        page.get_by_role("button", name="Invite").click()
        links[role] = page.locator("#invitation-link").inner_text()
    shot(page, "setup-invited")

    page.get_by_role("link", name="Pipeline").click()
    page.fill("form[action$='/admin/stages'] input[name=name]", "Commit")
    page.fill("form[action$='/admin/stages'] input[name=probability]", "90")
    page.get_by_role("button", name="Add at the end").click()
    page.get_by_text("Stage Commit added at the end.").wait_for()

    page.goto(empty_live_url + "/admin/quotas?metric=activities:email")
    # Ola has not joined yet: the team's quota, which she will count towards.
    page.get_by_label(re.compile(r"^Coast, ")).first.fill("40")
    page.get_by_role("button", name="Save the targets").click()
    page.get_by_text("1 target saved.").wait_for()
    shot(page, "setup-quotas")

    # The invited rep, in a browser of their own, joins by the link and logs a mail.
    rep = browser.new_context(viewport={"width": 1280, "height": 900})
    mine = rep.new_page()
    mine.goto(links["rep"])
    assert "Join Fjord Logistics" in mine.inner_text("h1")
    mine.fill("input[name=password]", PASSWORD)
    mine.fill("input[name=password_again]", PASSWORD)
    mine.get_by_role("button", name="Join").click()
    mine.wait_for_selector("#mailbox")
    pane = mine.frame_locator("#taskpane")
    pane.get_by_text("Nobody on this email is in the CRM yet").wait_for()
    pane.locator("input[name=deal_name]").first.fill("Weekly pallets")
    pane.locator("select[name=stage_id]").first.select_option(label="Commit")
    pane.get_by_role("button", name="Add to CRM").first.click()
    pane.locator(".contact h2", has_text="Priya Natarajan").wait_for()
    pane.get_by_role("button", name="Log this email").click()
    pane.locator(".logged").wait_for()
    shot(mine, "setup-rep-logged")
    # The link was single-use.
    again = admin.new_page()
    again.goto(links["rep"])
    assert "does not work" in again.inner_text("h1")

    with app.extensions["inboxcrm.db"].sessions() as session:
        org = session.scalar(select(Organization).where(Organization.name == "Fjord Logistics"))
        ola = session.scalar(select(User).where(User.email == "ola@fjord.example"))
        assert (ola.role, ola.team.name, ola.organization_id) == ("rep", "Coast", org.id)
        kari = session.scalar(select(User).where(User.email == "kari@fjord.example"))
        assert kari is None  # invited, not joined yet
        logged = session.scalar(select(Activity).where(Activity.owner_id == ola.id))
        assert logged.type == "email" and logged.direction == "inbound" and logged.organization_id == org.id
        deal = session.scalar(select(Opportunity).where(Opportunity.owner_id == ola.id))
        assert deal.stage.name == "Commit" and deal.currency == "NOK"
        assert session.scalar(select(Contact.name).where(Contact.organization_id == org.id)) == "Priya Natarajan"
        assert session.scalar(select(Quota.target).where(Quota.team_id == ola.team_id)) == 40
        assert (
            session.scalar(select(Stage.position).where(Stage.organization_id == org.id, Stage.name == "Commit")) == 5
        )
    admin.close()
    rep.close()
