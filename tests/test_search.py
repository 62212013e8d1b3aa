"""Finding contacts, accounts and deals from the pane, and choosing one for the open mail: the
service on both back ends, the routes, and what a choice does to a log."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, func, select, text, update

from services.mail.activities import log_email
from services.mail.context import context_for_addresses
from services.errors import DomainError, NotFound
from services.models import Activity, Contact
from services import search_index
from services.search import MAX_LENGTH, SHOWN, _search_statement, search_crm
from services.types import utcnow
from tests.factories import World, make_account, make_contact, make_deal

ITEM = {
    "item_type": "message",
    "from_address": "ann@acme.test",
    "from_name": "Ann Buyer",
    "subject": "Rates",
    "internet_message_id": "<s1@acme.test>",
    "to": "rita@northwind.test",
}


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


@pytest.mark.parametrize(
    "query, expected",
    [
        (
            "cold CHAIN",
            (["Cold chain pilot"], [], []),
        ),  # a deal by its name, whatever the case; not a deleted or won one
        (
            "globex",
            (["Cold chain pilot"], ["Globex 50% Logistics"], ["Gus Globex"]),
        ),  # by account name, domain, contact
        ("gus@", (["Cold chain pilot"], [], ["Gus Globex"])),  # by address: the contact and its account's deals
        ("globex.test", (["Cold chain pilot"], ["Globex 50% Logistics"], ["Gus Globex"])),
        ("50%", (["Cold chain pilot"], ["Globex 50% Logistics"], [])),  # a wildcard is a character
        ("5_%", ([], [], [])),
        ("ann", (["Reefer contract"], [], ["Ann Buyer"])),  # Northwind's Ann, never Contoso's
        ("secret", ([], [], [])),  # another organization's deal
        ("  acme   freight ", (["Reefer contract"], ["Acme Freight", "Acme Freight Denver"], [])),
        ("gu", (["Cold chain pilot"], [], ["Gus Globex"])),  # two letters: matched without the index
        ('glo"bex', ([], [], [])),  # a quote is a character, not the index's syntax
        ("50/", ([], [], [])),  # nor is the escape
        ("% L", (["Cold chain pilot"], ["Globex 50% Logistics"], [])),
    ],
)
def test_search_finds_by_name_domain_and_address(session, world: World, globex, query, expected):
    assert names(search_crm(session, world.rep, query)) == expected


def test_search_refuses_nothing_and_caps_length(session, world: World, globex):
    short = search_crm(session, world.rep, "g")
    assert short.too_short and short.empty
    assert not search_crm(session, world.rep, "   ").too_short
    long = search_crm(session, world.rep, "Cold chain pilot" + "x" * 5000)
    assert len(long.query) == MAX_LENGTH and long.empty
    assert names(search_crm(session, world.other_user, "acme")) == (
        ["Their secret deal"],
        ["Acme Freight"],
        ["Ann Elsewhere"],
    )


def test_choosing_a_deal_of_another_account(session, world: World, globex):
    """Ann (Acme) writes about Globex's pilot: chosen, Globex comes first with its deal
    preselected, and the logged mail is the deal's, with the deal's account."""
    account, deal, _ = globex
    context = context_for_addresses(session, world.rep, ["ann@acme.test"], chosen_deal_id=deal.id)
    assert (context.chosen_account_id, context.chosen_deal_id) == (account.id, deal.id)
    assert context.accounts[0].id == account.id
    assert deal.id in [d.id for d in context.deals] and world.deal.id in [d.id for d in context.deals]
    activity, created = log_email(
        session, world.rep, {**ITEM, "to": [ITEM["to"]], "opportunity_id": str(deal.id), "body_text": "Hi"}
    )
    session.commit()
    assert created and (activity.opportunity_id, activity.account_id, activity.contact_id) == (
        deal.id,
        account.id,
        world.contact.id,
    )


def test_choosing_an_account_files_the_mail_there(session, world: World, globex):
    """Ann (Acme) writes about Globex with no deal chosen: the mail is Globex's, with its only
    open deal, her still its contact; another organization's account is refused outright."""
    account, deal, _ = globex
    activity, created = log_email(
        session, world.rep, {**ITEM, "to": [ITEM["to"]], "account_id": str(account.id), "body_text": "Hi"}
    )
    session.commit()
    assert created and (activity.account_id, activity.opportunity_id, activity.contact_id) == (
        account.id,
        deal.id,
        world.contact.id,
    )
    with pytest.raises(NotFound):
        log_email(
            session,
            world.rep,
            {
                **ITEM,
                "internet_message_id": "<other@acme.test>",
                "to": [ITEM["to"]],
                "account_id": str(world.other_account.id),
            },
        )


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
    # Choosing posts the open item with the choice (no address in a URL): the same mail's context, the deal chosen.
    assert 'hx-include="#open-item"' in page and f'"chosen_deal_id": "{app_world.deal.id}"' in page
    assert "acme.test" not in page.split("hx-post=")[1].split(">")[0]
    assert "Type at least two letters." in auth.get("/pane/search", query_string={"q": "r"}).get_data(as_text=True)
    odd = auth.get("/pane/search", query_string={"q": "<script>alert(1)</script>" * 50})
    assert odd.status_code == 200 and "<script>alert" not in odd.get_data(as_text=True)
    assert "Their secret deal" not in auth.get("/pane/search", query_string={"q": "secret"}).get_data(as_text=True)
    chosen = auth.post("/pane/context", {**ITEM, "chosen_deal_id": str(app_world.deal.id)}).get_data(as_text=True)
    assert "Chosen for this mail" in chosen
    assert auth.get("/pane/context", query_string={**ITEM, "chosen_deal_id": "²"}).status_code == 200


# -- a message logged as it is sent (Outlook's OnMessageSend), then opened from Sent Items -------

KEY = "0123456789abcdef0123456789abcdef"
SENT = {
    "item_type": "message",
    "from_address": "rita@northwind.test",
    "to": ["ann@acme.test"],
    "subject": "Our rates",
    "body_text": "Rates attached.",
    "send_key": KEY,
}


def test_sending_then_sent_items_is_one_activity(session, world: World):
    from services.mail.activities import SENDING

    sent, created = log_email(session, world.rep, SENT, sending=True)
    session.commit()
    assert created and (sent.external_id, sent.direction, sent.contact_id) == (
        SENDING + KEY,
        "outbound",
        world.contact.id,
    )
    # Sent twice (a retry): still one.
    again, created = log_email(session, world.rep, SENT, sending=True)
    assert not created and again.id == sent.id
    # Opened from Sent Items with its key: the same activity takes the message's id.
    opened, created = log_email(session, world.rep, {**SENT, "internet_message_id": "<sent-1@northwind.test>"})
    session.commit()
    assert not created and opened.id == sent.id and opened.external_id == "<sent-1@northwind.test>"
    assert session.scalar(select(func.count(Activity.id))) == 1
    # Without a key, a Sent Items log of another message is a new activity, as before.
    other, created = log_email(
        session, world.rep, {**SENT, "send_key": None, "internet_message_id": "<sent-2@northwind.test>"}
    )
    assert created and other.id != sent.id


@pytest.mark.parametrize(
    "change, field",
    [
        ({"send_key": "not-a-key"}, "send_key"),
        ({"send_key": None}, "send_key"),
        ({"from_address": "ann@acme.test"}, "from_address"),  # only the rep's own message, as it is sent
    ],
)
def test_sending_refuses_what_is_not_the_reps_marked_message(session, world: World, change, field):
    data = {k: v for k, v in {**SENT, **change}.items() if v is not None}
    with pytest.raises(DomainError) as refused:
        log_email(session, world.rep, data, sending=True)
    assert field in refused.value.errors
    assert session.scalar(select(func.count(Activity.id))) == 0


def test_a_send_key_is_its_owners_alone(session, world: World):
    sent, _ = log_email(session, world.rep, SENT, sending=True)
    session.commit()
    # A teammate who knows the key logs their own copy; the rep's stays under the key.
    theirs, created = log_email(
        session, world.teammate, {**SENT, "from_address": world.teammate.email, "internet_message_id": "<t@x.test>"}
    )
    session.commit()
    assert created and theirs.id != sent.id and session.get(Activity, sent.id).external_id.startswith("send:")


def test_sending_route_answers_json(client, app_world: World):
    """The launch event's script signs in with a token (no cookie, no CSRF token) and gets JSON."""
    from addin.security import limiter
    from tests.factories import PASSWORD

    limiter.reset()
    assert client.post("/activities/sending", data=SENT).status_code in (
        302,
        400,
        401,
    )  # signed out (no CSRF token either)
    with client.application.extensions["inboxcrm.db"].sessions() as session:
        assert session.scalar(select(func.count(Activity.id))) == 0
    token = client.post("/auth/token", json={"email": "rita@northwind.test", "password": PASSWORD}).json["token"]
    bearer = {"Authorization": f"Bearer {token}"}
    logged = client.post("/activities/sending", data=SENT, headers=bearer)
    assert logged.status_code == 200 and logged.json["logged"] is True
    assert client.post("/activities/sending", data=SENT, headers=bearer).json == {
        "activity_id": logged.json["activity_id"],
        "logged": False,
    }
    bad = client.post("/activities/sending", data={**SENT, "send_key": "x"}, headers=bearer)
    assert bad.status_code == 422 and "send_key" in bad.json["fields"]
    huge = client.post(
        "/activities/sending", data={**SENT, "send_key": KEY.replace("0", "1"), "subject": "x" * 10_000}, headers=bearer
    )
    assert huge.status_code == 422 and "subject" in huge.json["fields"]
    # Opened later from Sent Items, it says it was logged as it went, not that it is a duplicate.
    opened = client.post(
        "/activities/email",
        data={**SENT, "internet_message_id": "<opened-later@northwind.test>"},
        headers={**bearer, "HX-Request": "true"},
    )
    assert opened.status_code == 200 and "Logged when you sent it." in opened.get_data(as_text=True)


def test_the_search_index_follows_every_write_and_serves_the_search(session, world: World):
    """The trigram index (``services.search_index``) is kept by the store itself: a row inserted,
    renamed through Core, or deleted is found, found by its new name, or gone, with no code of
    ours in between; and the search's own statement is served by it."""
    made = make_contact(session, world.org, world.account, "Quentin Zappa", "qz@zappa-freight.test", world.rep)
    session.commit()
    assert [c.name for c in search_crm(session, world.rep, "zappa").contacts] == ["Quentin Zappa"]
    session.execute(update(Contact).where(Contact.id == made.id).values(name="Quentin Xylo"))
    session.commit()
    assert [c.name for c in search_crm(session, world.rep, "xylo").contacts] == ["Quentin Xylo"]
    assert [c.name for c in search_crm(session, world.rep, "zappa").contacts] == ["Quentin Xylo"]  # by address
    found = search_crm(session, world.rep, "qz@zappa")
    assert [c.name for c in found.contacts] == ["Quentin Xylo"]
    sqlite = session.get_bind().dialect.name == "sqlite"
    if sqlite:
        plan = search_plan(session, world, "xylo")
        for name, _ in search_index.INDEXED:
            assert f"SCAN {search_index.fts_table(name)} VIRTUAL TABLE INDEX 0:M" in plan, plan
        # No table is read through its organization's index (every row of the organization).
        assert "(organization_id=?)" not in plan, plan
    else:
        # The search's own expression (``_holding``); on a test's few rows the planner rightly
        # prefers the organization's index in the whole statement.
        session.execute(text("SET LOCAL enable_seqscan = off"))
        for name, field in search_index.INDEXED:
            plan = " ".join(
                str(row)
                for row in session.execute(
                    text(f"EXPLAIN SELECT id FROM {name} WHERE lower({field}) LIKE lower(:pattern) ESCAPE '/'"),
                    {"pattern": "%xylo%"},
                )
            )
            assert f"ix_{name}_{field}_trgm" in plan, plan
        session.rollback()
    session.execute(delete(Contact).where(Contact.id == made.id))
    session.commit()
    assert (
        search_crm(session, world.rep, "xylo").contacts == [] and search_crm(session, world.rep, "zappa").contacts == []
    )
    if sqlite:
        assert session.execute(text("SELECT rowid FROM contacts_search WHERE name LIKE '%xylo%'")).all() == []
    # A wildcard typed is a character, through the index as without it.
    assert [a.name for a in search_crm(session, world.rep, "50%").accounts] == []


def search_plan(session, world: World, query: str) -> str:
    """SQLite's plan for the search's own statement (``services.search``)."""
    connection = session.connection()
    phrase = search_index.phrase(query)
    compiled = _search_statement("sqlite", phrase is not None, SHOWN).compile(dialect=connection.dialect)
    values = compiled.construct_params({"org": world.org.id, "phrase": phrase, "pattern": f"%{query}%"})
    rows = connection.exec_driver_sql(
        "EXPLAIN QUERY PLAN " + compiled.string, tuple(values[name] for name in compiled.positiontup)
    )
    return " ".join(str(row) for row in rows)


def test_search_lists_the_first_of_each_kind_in_name_order(session, world: World):
    """More matches than are shown: the first ``SHOWN`` of each kind by name, as the store
    orders them, counted against every match."""
    for n in (8, 3, 5, 1, 7, 2, 6, 4):
        account = make_account(session, world.org, world.rep, f"Quill {n} Haulage", f"quill{n}.test")
        make_contact(session, world.org, account, f"Quill Person {n}", f"p{n}@quill{n}.test", world.rep)
        make_deal(session, world.org, account, world.rep, world.stages[0], f"Quill deal {n}")
    session.commit()
    found = search_crm(session, world.rep, "quill")
    every = session.scalars(select(Contact.name).where(Contact.name.like("Quill%")).order_by(Contact.name)).all()
    assert [c.name for c in found.contacts] == every[:SHOWN] == [f"Quill Person {n}" for n in range(1, SHOWN + 1)]
    assert [d.name for d in found.deals] == [f"Quill deal {n}" for n in range(1, SHOWN + 1)]
    assert [a.name for a in found.accounts] == [f"Quill {n} Haulage" for n in range(1, SHOWN + 1)]
    assert found.accounts[0].domains == ["quill1.test"] and found.contacts[0].address == "p1@quill1.test"
    assert found.contacts[0].account_name == "Quill 1 Haulage"


def test_search_folds_case_beyond_ascii_on_both_back_ends(session, world: World):
    """ "MÜLLER" finds Jürgen Müller: PostgreSQL's ``lower`` and SQLite's trigram index both fold
    the case of any letter, not only of A to Z."""
    make_contact(session, world.org, world.account, "Jürgen Müller", "jm@acme.test", world.rep)
    session.commit()
    assert [c.name for c in search_crm(session, world.rep, "MÜLLER").contacts] == ["Jürgen Müller"]
    assert [c.name for c in search_crm(session, world.rep, "jürgen m").contacts] == ["Jürgen Müller"]
