"""The domain services: what they store, what they refuse, and that a refusal writes nothing."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.mail import activities, contacts
from services import deals, followups
from services.mail.context import context_for_addresses
from services.errors import DomainError, Forbidden, NotFound
from services.models import (
    Account,
    AccountDomain,
    Activity,
    ActivityParticipant,
    AuditEvent,
    Base,
    Contact,
    FollowUp,
    Opportunity,
    Stage,
    StageChange,
    User,
)
from tests.factories import NOW, World, make_deal
from tests.helpers import latest_snapshot


def test_deals_and_accounts_keep_their_latest_activity_through_log_undo_and_restore(session, world: World):
    """Going dark and neglected read the latest activity kept on the deal and the account: each
    log, undo and restore keeps it equal to what the activities say."""
    from services.latest import recompute

    rep = as_user(session, world.rep)

    def kept_equals_recomputed() -> set[tuple]:
        session.flush()
        session.expire_all()
        kept = latest_snapshot(session, world.org.id)
        recompute(session, world.org.id)
        session.expire_all()
        assert latest_snapshot(session, world.org.id) == kept
        return kept

    def deal() -> Opportunity:
        return session.get(Opportunity, world.deal.id)

    sent = NOW - timedelta(days=2)
    email, _ = activities.log_email(
        session,
        rep,
        {
            "internet_message_id": "<latest@acme.test>",
            "from_address": "ann@acme.test",
            "to": "rita@northwind.test",
            "sent_at": sent.isoformat(),
        },
        now=NOW,
    )
    kept_equals_recomputed()
    assert (deal().last_inbound_at, deal().last_activity_at) == (sent, sent)
    call, _ = activities.log_activity(
        session,
        rep,
        {
            "type": "call",
            "direction": "outbound",
            "outcome": "no_answer",
            "opportunity_id": world.deal.id,
            "occurred_at": (NOW - timedelta(days=5)).isoformat(),
        },
        now=NOW,
    )
    kept_equals_recomputed()
    assert (deal().last_inbound_at, deal().last_activity_at) == (sent, sent)  # an older call changes neither
    activities.undo_log(session, rep, email.id, now=NOW)
    kept_equals_recomputed()
    assert (deal().last_inbound_at, deal().last_activity_at) == (None, call.occurred_at)
    activities.log_email(
        session,
        rep,
        {
            "internet_message_id": "<latest@acme.test>",
            "from_address": "ann@acme.test",
            "to": "rita@northwind.test",
            "sent_at": sent.isoformat(),
        },
        now=NOW,
    )  # logged again: restored
    kept_equals_recomputed()
    assert (deal().last_inbound_at, deal().last_activity_at) == (sent, sent)
    assert session.get(type(world.account), world.account.id).last_activity_at == sent


def row_counts(session: Session) -> dict[str, int]:
    session.expire_all()
    return {t.name: session.scalar(select(func.count()).select_from(t)) for t in Base.metadata.sorted_tables}


def as_user(session: Session, user: User) -> User:
    return session.get(User, user.id)


def refused(session: Session, call, error=DomainError) -> DomainError:
    """Run a service call that must be refused, roll back as the app does, and prove that
    nothing at all was written."""
    before = row_counts(session)
    with pytest.raises(error) as raised:
        call()
    session.rollback()
    assert row_counts(session) == before
    return raised.value


def test_the_stages_are_read_once_per_transaction_and_again_after_a_change(sessions, session, world: World):
    """``pipeline_stages`` keeps what it read for the rest of the transaction; a stage written
    through the session (flushed) or by anyone else (seen after the commit) is read again."""
    org_id = world.org.id
    first = deals.pipeline_stages(session, org_id)
    assert deals.pipeline_stages(session, org_id) == first
    session.add(
        Stage(
            organization_id=org_id,
            name="Legal review",
            position=max(s.position for s in first) + 1,
            probability=Decimal("0.8"),
            sla_days=5,
        )
    )
    session.flush()
    assert [s.name for s in deals.pipeline_stages(session, org_id)] == [s.name for s in first] + ["Legal review"]
    session.commit()
    with sessions() as other:
        other.get(Stage, first[0].id).sla_days = 99
        other.commit()
    assert deals.pipeline_stages(session, org_id)[0].sla_days == 99  # a new transaction reads them again


# -- context ----------------------------------------------------------------------------------


def test_context_for_a_known_sender(session, world: World):
    context = context_for_addresses(session, as_user(session, world.rep), ["Ann@Acme.test", world.rep.email], now=NOW)
    assert [c.name for c in context.contacts] == ["Ann Buyer"]
    assert [a.name for a in context.accounts] == ["Acme Freight"]
    assert context.accounts[0].branches == [(world.branch.id, "Acme Freight Denver")]
    assert [(d.name, d.stage_name, d.days_in_stage) for d in context.deals] == [("Reefer contract", "Qualify", 10)]
    assert context.unknown == []
    # The other organization's Ann, at the same address, never shows.
    assert "Ann Elsewhere" not in [c.name for c in context.contacts]


def test_context_matches_an_unknown_sender_to_the_account_by_domain(session, world: World):
    context = context_for_addresses(
        session, as_user(session, world.rep), ["newbie@acme.test"], names={"newbie@acme.test": "Nina New"}, now=NOW
    )
    assert context.contacts == []
    assert [a.name for a in context.accounts] == ["Acme Freight"]
    assert [(u.address, u.suggested_name, u.suggested_company) for u in context.unknown] == [
        ("newbie@acme.test", "Nina New", "Acme Freight")
    ]


def test_context_for_a_branch_shows_its_parent(session, world: World):
    context = context_for_addresses(session, as_user(session, world.rep), ["someone@denver.acme.test"], now=NOW)
    assert context.accounts[0].parent == (world.account.id, "Acme Freight")


def test_context_for_a_public_mail_domain_guesses_no_company(session, world: World):
    context = context_for_addresses(session, as_user(session, world.rep), ["jane.doe@gmail.com"], now=NOW)
    assert context.is_empty
    assert context.unknown[0].public_domain and context.unknown[0].suggested_company is None
    assert context.unknown[0].suggested_name == "Jane Doe"


def test_context_ignores_malformed_addresses_and_colleagues(session, world: World):
    context = context_for_addresses(
        session, as_user(session, world.rep), ["not an address", "tom@northwind.test", ""], now=NOW
    )
    assert context.addresses == [] and context.unknown == []


def test_context_warns_about_stale_and_dark_deals(session, world: World):
    later = NOW + timedelta(days=30)
    context = context_for_addresses(session, as_user(session, world.rep), ["ann@acme.test"], now=later)
    kinds = {w.kind for w in context.deals[0].warnings}
    assert kinds == {"going_dark", "stale", "neglected"}
    activities.log_activity(
        session,
        as_user(session, world.rep),
        {
            "type": "call",
            "outcome": "connected",
            "opportunity_id": world.deal.id,
            "occurred_at": (later - timedelta(days=1)).isoformat(),
        },
        now=later,
    )
    context = context_for_addresses(session, as_user(session, world.rep), ["ann@acme.test"], now=later)
    assert {w.kind for w in context.deals[0].warnings} == {"stale"}


def test_reps_see_their_teams_activities_but_not_other_teams(session, world: World):
    for user in (world.teammate, world.west_rep):
        activities.log_activity(
            session,
            as_user(session, user),
            {"type": "call", "contact_id": world.contact.id, "subject": f"by {user.name}"},
            now=NOW,
        )
    session.commit()
    seen = {
        a.subject
        for a in context_for_addresses(session, as_user(session, world.rep), ["ann@acme.test"], now=NOW).activities
    }
    assert seen == {"by Tom Teammate"}
    seen_by_admin = {
        a.subject
        for a in context_for_addresses(session, as_user(session, world.admin), ["ann@acme.test"], now=NOW).activities
    }
    assert seen_by_admin == {"by Tom Teammate", "by Wendy West"}


# -- contacts, accounts, deals ----------------------------------------------------------------


def test_create_from_sender_makes_contact_account_and_deal(session, world: World):
    rep = as_user(session, world.rep)
    contact, deal = contacts.create_from_sender(
        session,
        rep,
        {
            "name": "Priya N",
            "email": " Priya@Granite-Robotics.test ",
            "deal_name": "Denver lane",
            "amount": "12000",
            "stage_id": str(world.stages[0].id),
        },
    )
    session.commit()
    assert contact.emails[0].address == "priya@granite-robotics.test"
    assert contact.account.name == "Granite Robotics"
    assert [d.domain for d in contact.account.domains] == ["granite-robotics.test"]
    assert deal.amount == Decimal("12000.00") and deal.account_id == contact.account_id and deal.owner_id == rep.id
    changes = session.scalars(select(StageChange).where(StageChange.opportunity_id == deal.id)).all()
    assert [(c.from_stage_id, c.to_stage_id, c.to_status) for c in changes] == [(None, world.stages[0].id, "open")]
    audited = session.scalars(select(AuditEvent.record_type).where(AuditEvent.actor_id == rep.id)).all()
    assert sorted(audited) == ["accounts", "contacts", "opportunities"]


def test_create_from_sender_reuses_the_account_of_a_known_domain(session, world: World):
    contact, deal = contacts.create_from_sender(
        session, as_user(session, world.rep), {"name": "Bo", "email": "bo@acme.test"}
    )
    assert contact.account_id == world.account.id and deal is None


def test_create_from_sender_on_a_public_domain_makes_no_account(session, world: World):
    before = session.scalar(select(func.count(Account.id)))
    contact, _ = contacts.create_from_sender(
        session, as_user(session, world.rep), {"name": "Tom", "email": "tom.baker@gmail.com"}
    )
    session.commit()
    assert contact.account is None
    assert session.scalar(select(func.count(Account.id))) == before
    assert session.scalar(select(func.count(AccountDomain.id)).where(AccountDomain.domain == "gmail.com")) == 0


@pytest.mark.parametrize(
    "form, field",
    [
        ({"name": "X", "email": "not-an-address"}, "email"),
        ({"name": "X", "email": "a@b"}, "email"),
        ({"name": "X", "email": ("a" * 250) + "@acme.test"}, "email"),
        ({"name": "X", "email": "x@evil.test\r\nBcc: y@evil.test"}, "email"),
        ({"name": "", "email": "x@new.test"}, "name"),
        ({"name": "X", "email": "x@new.test", "deal_name": "D", "amount": "-5", "stage_id": "1"}, "amount"),
        ({"name": "X", "email": "x@new.test", "deal_name": "D", "amount": "abc", "stage_id": "1"}, "amount"),
        ({"name": "X", "email": "x@new.test", "deal_name": "D"}, "stage_id"),
        ({"name": "X", "email": "ann@acme.test"}, "email"),
    ],
    ids=[
        "malformed",
        "no domain dot",
        "over-long",
        "header injection",
        "no name",
        "negative amount",
        "not a number",
        "deal without stage",
        "already a contact",
    ],
)
def test_create_from_sender_refuses_bad_input(session, world: World, form, field):
    error = refused(session, lambda: contacts.create_from_sender(session, as_user(session, world.rep), form))
    assert field in error.errors


def test_create_from_sender_refuses_a_deal_without_company_on_a_public_domain(session, world: World):
    form = {"name": "Tom", "email": "tom@gmail.com", "deal_name": "One-off", "stage_id": str(world.stages[0].id)}
    error = refused(session, lambda: contacts.create_from_sender(session, as_user(session, world.rep), form))
    assert "company" in error.errors


@pytest.mark.parametrize("which", ["stage", "account"])
def test_another_organizations_ids_are_not_found(session, world: World, which):
    form = {"name": "Deal", "account_id": world.account.id, "stage_id": world.stages[0].id}
    form[f"{which}_id"] = world.other_stage.id if which == "stage" else world.other_account.id
    refused(session, lambda: deals.create_opportunity(session, as_user(session, world.rep), form), NotFound)


# -- moving stages ----------------------------------------------------------------------------


def test_deals_keep_what_stage_conversion_reads_through_every_move(session, world: World):
    """Created at a later stage, moved back, forward, won, reopened and lost: after each, the
    stage facts kept on the deals equal those recomputed from the stage changes."""
    from services.deals import recompute_stage_facts

    rep = as_user(session, world.rep)
    first, second, third = world.stages[0], world.stages[1], world.stages[2]

    def facts() -> set[tuple]:
        return set(
            session.execute(
                select(
                    Opportunity.id, Opportunity.stages_reached, Opportunity.furthest_position, Opportunity.ever_won
                ).where(Opportunity.organization_id == world.org.id)
            )
        )

    def kept_equals_recomputed() -> set[tuple]:
        session.flush()
        session.expire_all()
        kept = facts()
        recompute_stage_facts(session, world.org.id)
        session.expire_all()
        assert facts() == kept
        return kept

    deal = deals.create_opportunity(
        session,
        rep,
        {"name": "Late starter", "account_id": world.account.id, "stage_id": third.id, "amount": "5000"},
        now=NOW,
    )
    assert {row[1:] for row in kept_equals_recomputed() if row[0] == deal.id} == {
        (1 << third.position, third.position, False)
    }
    for move in (
        {"stage": str(first.id)},
        {"stage": str(second.id)},
        {"stage": "won", "final_amount": "5000"},
        {"stage": str(first.id)},
        {"stage": "lost", "loss_reason": "price"},
    ):
        deals.move_stage(session, rep, deal.id, move, now=NOW)
        kept_equals_recomputed()
    bits = (1 << first.position) | (1 << second.position) | (1 << third.position)
    assert {row[1:] for row in kept_equals_recomputed() if row[0] == deal.id} == {(bits, third.position, True)}


def test_move_stage_writes_a_stage_change(session, world: World):
    rep = as_user(session, world.rep)
    deal = deals.move_stage(session, rep, world.deal.id, {"stage": str(world.stages[1].id)}, now=NOW)
    session.commit()
    assert deal.stage_id == world.stages[1].id and deal.stage_entered_at == NOW
    last = session.scalars(
        select(StageChange).where(StageChange.opportunity_id == deal.id).order_by(StageChange.id.desc())
    ).first()
    assert (last.from_stage_id, last.to_stage_id, last.changed_by_id) == (
        world.stages[0].id,
        world.stages[1].id,
        rep.id,
    )
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == "move_stage")).one()
    assert event.before["stage_id"] == world.stages[0].id and event.after["stage_id"] == world.stages[1].id


def test_won_sets_closed_at_and_the_final_amount(session, world: World):
    deal = deals.move_stage(
        session, as_user(session, world.rep), world.deal.id, {"stage": "won", "final_amount": "31000.50"}, now=NOW
    )
    session.commit()
    assert (deal.status, deal.closed_at, deal.amount) == ("won", NOW, Decimal("31000.50"))


def test_lost_keeps_the_reason_and_reopening_clears_it(session, world: World):
    rep = as_user(session, world.rep)
    deal = deals.move_stage(session, rep, world.deal.id, {"stage": "lost", "loss_reason": "Price"}, now=NOW)
    assert (deal.status, deal.loss_reason, deal.closed_at) == ("lost", "Price", NOW)
    deal = deals.move_stage(
        session, rep, world.deal.id, {"stage": str(world.stages[1].id)}, now=NOW + timedelta(days=1)
    )
    session.commit()
    assert (deal.status, deal.loss_reason, deal.closed_at) == ("open", None, None)
    statuses = session.scalars(
        select(StageChange.to_status).where(StageChange.opportunity_id == deal.id).order_by(StageChange.id)
    ).all()
    assert statuses == ["open", "lost", "open"]


@pytest.mark.parametrize(
    "form, message",
    [
        ({"stage": "lost"}, "Say why"),
        ({"stage": "lost", "loss_reason": "   "}, "Say why"),
        ({"stage": "won"}, "final amount"),
        ({"stage": "won", "final_amount": "-10"}, "amount"),
        ({"stage": "9999"}, "not found"),
        ({"stage": "sideways"}, "Choose a stage"),
        ({}, "required"),
    ],
    ids=[
        "lost without reason",
        "blank reason",
        "won without amount",
        "negative amount",
        "unknown stage",
        "nonsense",
        "nothing",
    ],
)
def test_move_stage_refuses_bad_input(session, world: World, form, message):
    error = refused(
        session, lambda: deals.move_stage(session, as_user(session, world.rep), world.deal.id, form, now=NOW)
    )
    assert message.lower() in (error.message + str(error.errors)).lower()


def test_move_stage_to_another_organizations_stage_is_not_found(session, world: World):
    refused(
        session,
        lambda: deals.move_stage(
            session, as_user(session, world.rep), world.deal.id, {"stage": str(world.other_stage.id)}
        ),
        NotFound,
    )


def test_another_organizations_deal_is_not_found(session, world: World):
    refused(
        session,
        lambda: deals.move_stage(
            session, as_user(session, world.admin), world.other_deal.id, {"stage": "lost", "loss_reason": "x"}
        ),
        NotFound,
    )


@pytest.mark.parametrize(
    "who, allowed",
    [
        ("rep", True),
        ("teammate", False),
        ("west_rep", False),
        ("manager", True),
        ("west_manager", False),
        ("admin", True),
    ],
)
def test_who_may_move_a_reps_deal(session, world: World, who, allowed):
    actor = as_user(session, getattr(world, who))
    move = lambda: deals.move_stage(session, actor, world.deal.id, {"stage": str(world.stages[2].id)}, now=NOW)  # noqa: E731
    if allowed:
        assert move().stage_id == world.stages[2].id
    else:
        refused(session, move, Forbidden)


# -- activities -------------------------------------------------------------------------------


def email_item(**overrides):
    item = {
        "internet_message_id": "<abc@acme.test>",
        "subject": "Rates",
        "from_address": "ann@acme.test",
        "to": ["rita@northwind.test"],
        "body_html": "<p>Hello <b>Rita</b></p><script>alert(1)</script>",
        "sent_at": NOW.isoformat(),
    }
    return {**item, **overrides}


def test_log_email_inbound_links_contact_account_and_the_only_open_deal(session, world: World):
    activity, created = activities.log_email(session, as_user(session, world.rep), email_item(), now=NOW)
    session.commit()
    assert created
    assert (activity.type, activity.direction, activity.source) == ("email", "inbound", "outlook")
    assert (activity.contact_id, activity.account_id, activity.opportunity_id) == (
        world.contact.id,
        world.account.id,
        world.deal.id,
    )
    assert "<script>" not in activity.body_html and "<b>Rita</b>" in activity.body_html
    assert activity.body_text == "Hello Rita"
    roles = sorted((p.role, p.address, p.contact_id) for p in session.scalars(select(ActivityParticipant)))
    assert roles == [("from", "ann@acme.test", world.contact.id), ("to", "rita@northwind.test", None)]


def test_log_email_from_the_mailbox_owner_is_outbound(session, world: World):
    item = email_item(from_address="rita@northwind.test", to=["ann@acme.test"])
    activity, _ = activities.log_email(session, as_user(session, world.rep), item, now=NOW)
    assert activity.direction == "outbound" and activity.contact_id == world.contact.id


def test_internal_mail_is_not_logged_unless_allowed(session, world: World):
    item = email_item(from_address="tom@northwind.test", to=["rita@northwind.test"])
    error = refused(session, lambda: activities.log_email(session, as_user(session, world.rep), item, now=NOW))
    assert "internal" in error.message


def test_logging_the_same_email_twice_makes_one_activity(session, world: World):
    rep = as_user(session, world.rep)
    first, created = activities.log_email(session, rep, email_item(), now=NOW)
    session.commit()
    again, created_again = activities.log_email(session, rep, email_item(subject="changed"), now=NOW)
    session.commit()
    assert created and not created_again and again.id == first.id
    assert session.scalar(select(func.count(Activity.id))) == 1


def test_racing_logs_of_one_email_end_with_exactly_one_activity(sessions, world: World):
    threads, results, errors = [], [], []
    barrier = threading.Barrier(6)

    def log() -> None:
        with sessions() as session:
            try:
                barrier.wait()
                activity, created = activities.log_email(
                    session, session.get(User, world.rep.id), email_item(), now=NOW
                )
                session.commit()
                results.append((activity.id, created))
            except Exception as error:  # noqa: BLE001 - the assertion below reports it
                errors.append(error)

    for _ in range(6):
        threads.append(threading.Thread(target=log))
        threads[-1].start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len({activity_id for activity_id, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    with sessions() as session:
        assert session.scalar(select(func.count(Activity.id))) == 1
        assert session.scalar(select(func.count(AuditEvent.id)).where(AuditEvent.action == "log")) == 1


@pytest.mark.parametrize(
    "item",
    [
        {"internet_message_id": ""},
        {"internet_message_id": "x" * 600},
        {"from_address": "nobody"},
        {"subject": "s" * 501},
        {"sent_at": "yesterday"},
    ],
    ids=["no message id", "over-long id", "bad sender", "over-long subject", "bad date"],
)
def test_log_email_refuses_bad_items(session, world: World, item):
    refused(session, lambda: activities.log_email(session, as_user(session, world.rep), email_item(**item), now=NOW))


def test_log_a_call_with_checklist_answers(session, world: World):
    rep = as_user(session, world.rep)
    activity, _ = activities.log_activity(
        session,
        rep,
        {
            "type": "call",
            "outcome": "connected",
            "duration_minutes": "12",
            "contact_id": world.contact.id,
            "answers": {"Truck size": "26 ft", "Lanes used": "", "Budget": "not a call question"},
            "body_text": "Good call",
            "occurred_at": "2026-11-20T09:30",
        },
        now=NOW,
    )
    assert activity.account_id == world.account.id and activity.duration_minutes == 12
    assert activity.body_text == "Truck size: 26 ft\n\nGood call"
    # A time typed without a zone is the organization's (Berlin, UTC+1 in November).
    assert activity.occurred_at.isoformat() == "2026-11-20T08:30:00+00:00"


@pytest.mark.parametrize(
    "form",
    [
        {"type": "fax"},
        {"type": "call", "duration_minutes": "-1"},
        {"type": "call", "duration_minutes": "5000"},
        {"type": "call", "outcome": "exploded"},
        {"type": "call", "contact_id": "abc"},
    ],
    ids=["unknown type", "negative duration", "too long", "unknown outcome", "bad id"],
)
def test_log_activity_refuses_bad_input(session, world: World, form):
    refused(session, lambda: activities.log_activity(session, as_user(session, world.rep), form, now=NOW))


def test_log_activity_for_another_organizations_contact_is_not_found(session, world: World):
    form = {"type": "call", "contact_id": world.other_contact.id}
    refused(session, lambda: activities.log_activity(session, as_user(session, world.rep), form, now=NOW), NotFound)


def test_note_and_rating(session, world: World):
    rep = as_user(session, world.rep)
    note = activities.add_note(session, rep, {"body": "  Wants reefers  ", "contact_id": world.contact.id}, now=NOW)
    assert (note.type, note.direction, note.body_text) == ("note", "internal", "Wants reefers")
    activities.rate_activity(session, rep, note.id, {"rating": "-1"})
    session.commit()
    assert session.get(Activity, note.id).rating == -1
    refused(session, lambda: activities.rate_activity(session, rep, note.id, {"rating": "5"}))
    refused(
        session,
        lambda: activities.rate_activity(session, as_user(session, world.teammate), note.id, {"rating": "1"}),
        Forbidden,
    )
    refused(session, lambda: activities.add_note(session, rep, {"body": "", "contact_id": world.contact.id}))
    refused(session, lambda: activities.add_note(session, rep, {"body": "floating"}))


# -- follow-ups -------------------------------------------------------------------------------


def test_follow_up_added_and_completed(session, world: World):
    rep = as_user(session, world.rep)
    follow_up = followups.add_follow_up(
        session, rep, {"title": "Call back", "due_at": "2026-11-27T10:00", "opportunity_id": world.deal.id}, now=NOW
    )
    session.commit()
    assert follow_up.due_at.isoformat() == "2026-11-27T09:00:00+00:00"
    refused(
        session,
        lambda: followups.complete_follow_up(session, as_user(session, world.west_manager), follow_up.id),
        Forbidden,
    )
    followups.complete_follow_up(session, as_user(session, world.manager), follow_up.id, now=NOW)
    session.commit()
    assert session.get(FollowUp, follow_up.id).done_at == NOW
    refused(session, lambda: followups.complete_follow_up(session, rep, follow_up.id))


@pytest.mark.parametrize(
    "form",
    [
        {"title": "x", "due_at": "2026-11-27T10:00"},
        {"title": "x", "due_at": "2020-01-01T10:00", "contact_id": 1},
        {"title": "", "due_at": "2026-11-27T10:00", "contact_id": 1},
        {"title": "x", "due_at": "soon", "contact_id": 1},
    ],
    ids=["attached to nothing", "in the past", "no title", "bad date"],
)
def test_follow_up_refuses_bad_input(session, world: World, form):
    refused(session, lambda: followups.add_follow_up(session, as_user(session, world.rep), form, now=NOW))


def test_every_write_is_audited(session, world: World):
    rep = as_user(session, world.rep)
    contact = contacts.create_contact(
        session, rep, {"name": "Cy", "email": "cy@acme.test", "account_id": world.account.id}
    )
    activity, _ = activities.log_activity(session, rep, {"type": "call", "contact_id": contact.id}, now=NOW)
    session.commit()
    events = session.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
    assert [(e.action, e.record_type, e.record_id, e.actor_id) for e in events] == [
        ("create", "contacts", contact.id, rep.id),
        ("log", "activities", activity.id, rep.id),
    ]
    assert events[1].after["type"] == "call"
    assert session.scalar(select(func.count(Contact.id)).where(Contact.organization_id == world.org.id)) == 2
    assert session.get(Opportunity, world.deal.id).status == "open"


# -- meetings and undo ------------------------------------------------------------------------


def meeting(**overrides):
    return {
        "event_id": "AAMk-1",
        "subject": "Review",
        "start": "2026-11-19T10:00:00+00:00",
        "end": "2026-11-19T11:00:00+00:00",
        "attendees": ["ann@acme.test", "rita@northwind.test", "stranger@elsewhere.test"],
        **overrides,
    }


def test_log_meeting_matches_attendees_and_is_idempotent(session, world: World):
    rep = as_user(session, world.rep)
    activity, created = activities.log_meeting(session, rep, meeting(), now=NOW)
    again, created_again = activities.log_meeting(session, rep, meeting(subject="renamed"), now=NOW)
    session.commit()
    assert created and not created_again and again.id == activity.id
    assert (activity.type, activity.outcome, activity.duration_minutes, activity.external_id) == (
        "meeting",
        "held",
        60,
        "event:AAMk-1",
    )
    assert (activity.contact_id, activity.opportunity_id) == (world.contact.id, world.deal.id)
    # The organizer (the rep) is not an attendee of their own meeting.
    assert sorted(p.address for p in activity.participants) == ["ann@acme.test", "stranger@elsewhere.test"]


def test_a_meeting_still_ahead_has_no_outcome(session, world: World):
    activity, _ = activities.log_meeting(
        session,
        as_user(session, world.rep),
        meeting(start="2026-12-01T10:00:00+00:00", end="2026-12-01T11:00:00+00:00"),
        now=NOW,
    )
    assert activity.outcome is None


@pytest.mark.parametrize(
    "change",
    [
        {"attendees": []},
        {"event_id": ""},
        {"start": "someday"},
        {"end": "2026-11-19T09:00:00+00:00"},
        {"attendees": ["not-an-address"]},
    ],
    ids=["no attendees", "no event id", "bad start", "ends before it starts", "bad attendee"],
)
def test_log_meeting_refuses_bad_input(session, world: World, change):
    refused(session, lambda: activities.log_meeting(session, as_user(session, world.rep), meeting(**change), now=NOW))


def test_undo_is_the_owners_and_only_for_a_while(session, world: World):
    rep = as_user(session, world.rep)
    activity, _ = activities.log_email(session, rep, email_item(), now=NOW)
    session.commit()
    refused(
        session, lambda: activities.undo_log(session, as_user(session, world.manager), activity.id, now=NOW), Forbidden
    )
    refused(session, lambda: activities.undo_log(session, rep, activity.id, now=NOW + timedelta(minutes=11)))
    activities.undo_log(session, rep, activity.id, now=NOW + timedelta(minutes=1))
    session.commit()
    assert session.get(Activity, activity.id).deleted_at is not None
    # Logged again, the same message is the same activity, restored.
    again, created = activities.log_email(session, rep, email_item(), now=NOW + timedelta(minutes=2))
    session.commit()
    assert created and again.id == activity.id and again.deleted_at is None
    actions = session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)).all()
    assert actions == ["log", "undo", "restore"]


def test_history_is_for_the_owner_their_managers_and_admins(session, world: World):
    from services.audit import record_history

    rep = as_user(session, world.rep)
    deals.move_stage(session, rep, world.deal.id, {"stage": str(world.stages[1].id)}, now=NOW)
    deals.move_stage(
        session, rep, world.deal.id, {"stage": "lost", "loss_reason": "Price"}, now=NOW + timedelta(hours=1)
    )
    session.commit()
    for who in ("rep", "manager", "admin"):
        entries = record_history(session, as_user(session, getattr(world, who)), Opportunity, world.deal.id)
        assert [e.action for e in entries] == ["move_stage", "move_stage"]
        assert ("status", "open", "lost") in entries[0].changes and ("loss_reason", None, "Price") in entries[0].changes
        assert entries[0].actor_name == "Rita Rep"
    for who in ("teammate", "west_manager"):
        refused(
            session,
            lambda: record_history(session, as_user(session, getattr(world, who)), Opportunity, world.deal.id),
            Forbidden,
        )
    refused(
        session,
        lambda: record_history(session, as_user(session, world.other_user), Opportunity, world.deal.id),
        NotFound,
    )


@pytest.mark.parametrize(
    "locale, typed, amount",
    [
        ("en_US", "95,000", Decimal("95000")),
        ("en_US", "95 000", Decimal("95000")),
        ("en_US", "$95,000", Decimal("95000")),
        ("en_US", "USD 65,500", Decimal("65500")),  # what the pane itself prints
        ("en_US", "31000.50", Decimal("31000.50")),
        ("fr_FR", "12 500,50", Decimal("12500.50")),
        ("fr_FR", "12\u202f500,50 €", Decimal("12500.50")),  # Babel's own French grouping, a narrow space
        ("pl_PL", "12 500,50 zł", Decimal("12500.50")),
        ("de_DE", "1.234,5", Decimal("1234.50")),
    ],
)
def test_amounts_as_people_type_them_in_their_organizations_locale(session, world: World, locale, typed, amount):
    from services.models import Organization

    session.get(Organization, world.org.id).settings = {"locale": locale}
    session.flush()
    deal = deals.move_stage(
        session, as_user(session, world.rep), world.deal.id, {"stage": "won", "final_amount": typed}, now=NOW
    )
    assert deal.amount == amount


@pytest.mark.parametrize(
    "locale, typed", [("en_US", "12500,50"), ("en_US", "lots"), ("en_US", "1,2,3"), ("de_DE", "95,000.50")]
)
def test_an_amount_that_cannot_be_read_is_refused_in_plain_words_and_nothing_is_written(
    session, world: World, locale, typed
):
    """An amount the organization's locale cannot read is refused with an example written in
    that locale, said once, on its field; the deal is left as it was."""
    from services.models import Organization
    from services.numbers import example_amount

    session.get(Organization, world.org.id).settings = {"locale": locale}
    session.commit()
    error = refused(
        session,
        lambda: deals.move_stage(
            session, as_user(session, world.rep), world.deal.id, {"stage": "won", "final_amount": typed}, now=NOW
        ),
    )
    assert error.errors == {"final_amount": [f"Enter an amount, like {example_amount(locale)}."]}
    session.rollback()
    deal = session.get(Opportunity, world.deal.id)
    assert (deal.status, deal.amount) == ("open", Decimal("25000.00"))


@pytest.mark.parametrize(
    "sender", ["mailer-daemon@acme.test", "no-reply@acme.test", "Bounces+x1@acme.test", "do_not_reply@acme.test"]
)
def test_mail_from_an_automated_sender_is_nothing_to_log_from_any_path(session, world: World, sender):
    error = refused(
        session,
        lambda: activities.log_email(
            session,
            as_user(session, world.rep),
            {"internet_message_id": "<bounce@acme.test>", "from_address": sender, "to": "rita@northwind.test"},
            now=NOW,
        ),
    )
    assert "automated sender" in error.message and list(error.errors) == ["from_address"]
    assert session.scalar(select(func.count(Activity.id))) == 0


def test_a_person_whose_name_merely_starts_like_a_bounce_is_a_person(session, world: World):
    from services.mail.text import is_automated_address, sender_problem

    for address in ("noreen@acme.test", "post.master.chef@acme.test", "replyall@acme.test", "bouncer@acme.test"):
        assert not is_automated_address(address) and sender_problem(address) is None, address
    activity, _ = activities.log_email(
        session,
        as_user(session, world.rep),
        {"internet_message_id": "<noreen@acme.test>", "from_address": "noreen@acme.test", "to": "rita@northwind.test"},
        now=NOW,
    )
    assert activity.id


def test_won_lost_and_a_stage_move_can_be_undone_like_a_log(session, world: World):
    """Each move is taken back to exactly the deal as it was (stage, status, amount, reason,
    close time, time in stage), its record removed and the kept stage facts recomputed; only
    the rep who moved it, only within ten minutes, only a move there was."""
    from services.deals import recompute_stage_facts

    rep = as_user(session, world.rep)
    deal = session.get(Opportunity, world.deal.id)
    original = (
        deal.stage_id,
        deal.status,
        deal.amount,
        deal.loss_reason,
        deal.closed_at,
        deal.stage_entered_at,
        deal.stages_reached,
        deal.furthest_position,
        deal.ever_won,
    )

    def state():
        d = session.get(Opportunity, world.deal.id)
        return (
            d.stage_id,
            d.status,
            d.amount,
            d.loss_reason,
            d.closed_at,
            d.stage_entered_at,
            d.stages_reached,
            d.furthest_position,
            d.ever_won,
        )

    refused(
        session, lambda: deals.undo_move(session, rep, world.deal.id, now=NOW)
    )  # only its creation: nothing to undo
    changes = session.scalar(select(func.count(StageChange.id)))
    for move in (
        {"stage": "won", "final_amount": "31000"},
        {"stage": "lost", "loss_reason": "Price"},
        {"stage": str(world.stages[2].id)},
    ):
        deals.move_stage(session, rep, world.deal.id, move, now=NOW)
        assert state() != original
        deals.undo_move(session, rep, world.deal.id, now=NOW + timedelta(minutes=9))
        session.expire_all()
        assert state() == original, move
        assert session.scalar(select(func.count(StageChange.id))) == changes
        recompute_stage_facts(session, world.org.id)  # the kept facts are what the changes that stand say
        session.expire_all()
        assert state() == original
    deals.move_stage(session, rep, world.deal.id, {"stage": "won", "final_amount": "31000"}, now=NOW)
    session.commit()
    late = refused(session, lambda: deals.undo_move(session, rep, world.deal.id, now=NOW + timedelta(minutes=11)))
    assert "too late" in late.message
    other = refused(session, lambda: deals.undo_move(session, as_user(session, world.manager), world.deal.id, now=NOW))
    assert "Only the person who moved" in other.message


@pytest.mark.parametrize(
    ("kind", "outcome", "refused"),
    [("call", "held", True), ("call", "no_show", True), ("meeting", "voicemail", True), ("visit", "busy", True),
     ("call", "voicemail", False), ("meeting", "no_show", False), ("visit", "held", False), ("call", None, False)],
)  # fmt: skip
def test_an_outcome_belongs_to_its_type(session: Session, world: World, kind: str, outcome: str | None, refused: bool):
    data = {"type": kind, "contact_id": world.contact.id, **({"outcome": outcome} if outcome else {})}
    if refused:
        with pytest.raises(DomainError) as error:
            activities.log_activity(session, world.rep, data)
        assert f"A {kind}'s outcome is one of" in error.value.errors["outcome"][0]
        assert session.scalar(select(func.count(Activity.id))) == 0
    else:
        activity, _ = activities.log_activity(session, world.rep, data)
        assert activity.outcome == outcome


def test_a_malformed_recipient_is_left_out_and_the_mail_logged(session: Session, world: World):
    """A mail's own header "To: XX" is no address: the mail is logged with the recipients that are."""
    activity, created = activities.log_email(
        session,
        world.rep,
        {"internet_message_id": "<xx@acme.test>", "from_address": "ann@acme.test", "to": ["XX", world.rep.email]},
    )
    assert created and {p.address for p in activity.participants} == {"ann@acme.test", world.rep.email}


def test_of_several_open_deals_the_form_offers_the_threads_else_the_latest(session: Session, world: World):
    older = world.deal
    newer = make_deal(session, world.org, world.account, world.rep, world.stages[0], "Second lane")
    older.last_activity_at, newer.last_activity_at = NOW - timedelta(days=1), NOW - timedelta(days=3)
    session.commit()
    context = context_for_addresses(session, world.rep, ["ann@acme.test"])
    assert {d.id for d in context.deals} == {older.id, newer.id}
    assert context.default_deal_id == older.id  # the latest activity's
    activities.log_email(
        session,
        world.rep,
        {"internet_message_id": "<t@acme.test>", "from_address": "ann@acme.test", "conversation_id": "T1",
         "opportunity_id": newer.id},
    )  # fmt: skip
    older.last_activity_at = datetime(2030, 1, 1, tzinfo=timezone.utc)  # the other deal is the latest's now
    session.commit()
    threaded = context_for_addresses(session, world.rep, ["ann@acme.test"], conversation_id="T1")
    assert threaded.latest_deal_id == older.id
    assert threaded.default_deal_id == newer.id  # the thread's, first


def test_a_follow_up_set_or_done_can_be_taken_back_for_a_while(session: Session, world: World):
    follow_up = followups.add_follow_up(
        session,
        world.rep,
        {"title": "Call back", "due_at": "2099-01-01T10:00", "contact_id": world.contact.id},
        now=NOW,
    )
    with pytest.raises(Forbidden):
        followups.undo_follow_up(session, world.manager, follow_up.id, now=NOW)
    with pytest.raises(DomainError, match="too late"):
        followups.undo_follow_up(session, world.rep, follow_up.id, now=NOW + timedelta(minutes=11))
    followups.undo_follow_up(session, world.rep, follow_up.id, now=NOW + timedelta(minutes=1))
    assert follow_up.deleted_at is not None
    with pytest.raises(NotFound):  # gone: nothing more to take back
        followups.undo_follow_up(session, world.rep, follow_up.id, now=NOW + timedelta(minutes=2))

    second = followups.add_follow_up(
        session,
        world.rep,
        {"title": "Send rates", "due_at": "2099-01-01T10:00", "contact_id": world.contact.id},
        now=NOW,
    )
    with pytest.raises(DomainError, match="not done"):
        followups.reopen_follow_up(session, world.rep, second.id, now=NOW)
    followups.complete_follow_up(session, world.rep, second.id, now=NOW)
    with pytest.raises(DomainError, match="too late"):
        followups.reopen_follow_up(session, world.rep, second.id, now=NOW + timedelta(minutes=11))
    followups.reopen_follow_up(session, world.rep, second.id, now=NOW + timedelta(minutes=1))
    assert second.done_at is None
    actions = session.scalars(select(AuditEvent.action).where(AuditEvent.record_type == "follow_ups")).all()
    assert {"undo", "reopen"} <= set(actions)
