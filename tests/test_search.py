"""Finding contacts, accounts and deals from the pane, and choosing one for the open mail: the
service on both back ends, the routes, and what a choice does to a log."""

from __future__ import annotations

import pytest
from services.activities import log_email
from services.context import context_for_addresses
from services.search import MAX_LENGTH, search_crm
from services.types import utcnow
from tests.factories import World, make_account, make_contact, make_deal

ITEM = {"item_type": "message", "from_address": "ann@acme.test", "from_name": "Ann Buyer", "subject": "Rates",
        "internet_message_id": "<s1@acme.test>", "to": "rita@northwind.test"}


@pytest.fixture
def globex(session, world: World):
    """A second account of Northwind's, with a contact and an open deal, and one of each gone."""
    account = make_account(session, world.org, world.teammate, "Globex 50% Logistics", "globex.test")
    make_contact(session, world.org, account, "Gus Globex", "gus@globex.test", world.teammate)
    deal = make_deal(session, world.org, account, world.teammate, world.stages[1], "Cold chain pilot")
    gone = make_deal(session, world.org, account, world.teammate, world.stages[1], "Cold chain rollout")
    gone.deleted_at = utcnow()
    won = make_deal(session, world.org, account, world.teammate, world.stages[1], "Cold chain 2025")
    won.status, won.closed_at = "won", utcnow()
    session.commit()
    return account, deal, won


def names(results) -> tuple[list[str], list[str], list[str]]:
    return [d.name for d in results.deals], [a.name for a in results.accounts], [c.name for c in results.contacts]


@pytest.mark.parametrize("query, expected", [
    ("cold CHAIN", (["Cold chain pilot"], [], [])),  # a deal by its name, whatever the case; not a deleted or won one
    ("globex", (["Cold chain pilot"], ["Globex 50% Logistics"], ["Gus Globex"])),  # by account name, domain, contact
    ("gus@", (["Cold chain pilot"], [], ["Gus Globex"])),  # by address: the contact and its account's deals
    ("globex.test", (["Cold chain pilot"], ["Globex 50% Logistics"], ["Gus Globex"])),
    ("50%", (["Cold chain pilot"], ["Globex 50% Logistics"], [])),  # a wildcard is a character
    ("5_%", ([], [], [])),
    ("ann", (["Reefer contract"], [], ["Ann Buyer"])),  # Northwind's Ann, never Contoso's
    ("secret", ([], [], [])),  # another organization's deal
    ("  acme   freight ", (["Reefer contract"], ["Acme Freight", "Acme Freight Denver"], [])),
])
def test_search_finds_by_name_domain_and_address(session, world: World, globex, query, expected):
    assert names(search_crm(session, world.rep, query)) == expected


def test_search_refuses_nothing_and_caps_length(session, world: World, globex):
    short = search_crm(session, world.rep, "g")
    assert short.too_short and short.empty
    assert not search_crm(session, world.rep, "   ").too_short
    long = search_crm(session, world.rep, "Cold chain pilot" + "x" * 5000)
    assert len(long.query) == MAX_LENGTH and long.empty
    assert names(search_crm(session, world.other_user, "acme")) == (["Their secret deal"], ["Acme Freight"], ["Ann Elsewhere"])


def test_choosing_a_deal_of_another_account(session, world: World, globex):
    """Ann (Acme) writes about Globex's pilot: chosen, Globex comes first with its deal
    preselected, and the logged mail is the deal's, with the deal's account."""
    account, deal, _ = globex
    context = context_for_addresses(session, world.rep, ["ann@acme.test"], chosen_deal_id=deal.id)
    assert (context.chosen_account_id, context.chosen_deal_id) == (account.id, deal.id)
    assert context.accounts[0].id == account.id
    assert deal.id in [d.id for d in context.deals] and world.deal.id in [d.id for d in context.deals]
    activity, created = log_email(session, world.rep, {**ITEM, "to": [ITEM["to"]], "opportunity_id": str(deal.id), "body_text": "Hi"})
    session.commit()
    assert created and (activity.opportunity_id, activity.account_id, activity.contact_id) == (deal.id, account.id, world.contact.id)


@pytest.mark.parametrize("chosen", ["other_deal", "won", "missing"])
def test_a_choice_that_is_not_a_live_open_deal_of_the_organization_is_ignored(session, world: World, globex, chosen):
    deal_id = {"other_deal": world.other_deal.id, "missing": 10**9, "won": globex[2].id}[chosen]
    context = context_for_addresses(session, world.rep, ["ann@acme.test"], chosen_deal_id=deal_id)
    assert (context.chosen_account_id, context.chosen_deal_id) == (None, None)
    assert [a.name for a in context.accounts] == ["Acme Freight"]
    foreign = context_for_addresses(session, world.rep, ["ann@acme.test"], chosen_account_id=world.other_account.id)
    assert foreign.chosen_account_id is None and [a.name for a in foreign.accounts] == ["Acme Freight"]


def test_search_route(auth, app_world: World):
    auth.login("rita@northwind.test")
    found = auth.get("/pane/search", query_string={**ITEM, "q": "reefer"})
    assert found.status_code == 200
    page = found.get_data(as_text=True)
    assert "Reefer contract" in page and "Choose this deal" in page
    # Choosing keeps the open item: the context it loads is the same mail's, with the deal chosen.
    assert f"&amp;chosen_deal_id={app_world.deal.id}&amp;" in page and "&amp;internet_message_id=%3Cs1@acme.test%3E&amp;" in page
    assert "Type at least two letters." in auth.get("/pane/search", query_string={"q": "r"}).get_data(as_text=True)
    odd = auth.get("/pane/search", query_string={"q": "<script>alert(1)</script>" * 50})
    assert odd.status_code == 200 and "<script>alert" not in odd.get_data(as_text=True)
    assert "Their secret deal" not in auth.get("/pane/search", query_string={"q": "secret"}).get_data(as_text=True)
    chosen = auth.get("/pane/context", query_string={**ITEM, "chosen_deal_id": str(app_world.deal.id)}).get_data(as_text=True)
    assert "Chosen for this mail" in chosen
    assert auth.get("/pane/context", query_string={**ITEM, "chosen_deal_id": "²"}).status_code == 200
