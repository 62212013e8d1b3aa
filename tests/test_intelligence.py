"""Activity intelligence: sentiment on what the customer wrote, the lexicon the team's ratings
teach, deal health and what cost it, the checklist named as a note is written.

Scores are checked against VADER run here on the text the test expects to be read; health
against the rule applied to facts the test reads from the rows itself."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from services.mail import activities
from services import health, lexicon, sentiment
from services.mail.context import context_for_addresses
from services.followups import add_follow_up
from services.models import Activity, AuditEvent, DealHealth, FollowUp, LexiconEvidence, LexiconWord, Organization, User
from services.reports.panel import team_panel
from services.users import Person
from tests.factories import NOW, World, make_deal

VADER = SentimentIntensityAnalyzer()


def vader(text: str) -> float:
    return round(VADER.polarity_scores(text)["compound"], 4)


def as_user(session, user: User) -> User:
    return session.get(User, user.id)


def mail(n: int, body: str | None = None, **overrides):
    item = {
        "internet_message_id": f"<m{n}@acme.test>",
        "subject": "Rates",
        "from_address": "ann@acme.test",
        "to": ["rita@northwind.test"],
        "body_text": body,
        "sent_at": (NOW - timedelta(hours=n)).isoformat(),
    }
    return {**item, **overrides}


FRIENDLY = "Thanks Rita, this is great news and we are happy to go ahead."
ANGRY = "This is terrible. We are furious about the outage and the awful service."


# -- sentiment on write --------------------------------------------------------------------------


def test_an_inbound_reply_is_scored_on_its_own_words_not_the_thread_it_quotes(session, world: World):
    body = f"{FRIENDLY}\n\nBest regards,\nAnn Buyer\nHead of Logistics\n\nOn Mon, Nov 16, 2026 at 9:00 AM Rita <rita@northwind.test> wrote:\n> {ANGRY}\n> {ANGRY}\n"
    activity, _ = activities.log_email(session, as_user(session, world.rep), mail(1, body), now=NOW)
    assert activity.sentiment == vader(FRIENDLY) > 0.5
    assert vader(body) < activity.sentiment  # read whole, the quoted anger would have pulled it down
    assert activity.sentiment_scored_at == NOW


def test_a_legal_footer_and_an_outlook_quote_header_are_not_read(session, world: World):
    body = (
        f"{ANGRY}\n\nCONFIDENTIALITY NOTICE: This e-mail is confidential and may be privileged. If you are not the intended "
        f"recipient, please notify the sender and delete it.\n\nFrom: Rita <rita@northwind.test>\nSent: Monday\nTo: Ann\n"
        f"Subject: Rates\n\nWonderful, great, perfect, we love it."
    )
    activity, _ = activities.log_email(session, as_user(session, world.rep), mail(2, body), now=NOW)
    assert activity.sentiment == vader(ANGRY) < -0.5


def test_only_what_the_customer_wrote_is_scored(session, world: World):
    rep = as_user(session, world.rep)
    outbound, _ = activities.log_email(
        session, rep, mail(3, FRIENDLY, from_address="rita@northwind.test", to=["ann@acme.test"]), now=NOW
    )
    assert (outbound.direction, outbound.sentiment, outbound.sentiment_scored_at) == ("outbound", None, None)
    call, _ = activities.log_activity(
        session,
        rep,
        {
            "type": "call",
            "outcome": "connected",
            "contact_id": world.contact.id,
            "body_text": "Angry call: they threatened to cancel the pilot.",
        },
        now=NOW,
    )
    assert call.sentiment == vader("Angry call: they threatened to cancel the pilot.") < 0
    note = activities.add_note(
        session, rep, {"contact_id": world.contact.id, "body": "Good meeting, strong interest."}, now=NOW
    )
    assert note.sentiment == vader("Good meeting, strong interest.") > 0
    task, _ = activities.log_activity(
        session, rep, {"type": "task", "contact_id": world.contact.id, "body_text": FRIENDLY}, now=NOW
    )
    assert task.sentiment_scored_at is None


@pytest.mark.parametrize(
    "body, expected",
    [
        (
            "Leider müssen wir das Projekt verschieben, das Budget wurde gekürzt. Wir melden uns im Frühjahr wieder.",
            None,
        ),  # German
        ("Merci pour la démo, nous revenons vers vous la semaine prochaine avec nos questions.", None),  # French
        ("Спасибо, всё отлично, продолжаем работу.", None),  # another script
        (
            "Hvala na pozivu, čujemo se sljedeći tjedan oko ponude.",
            None,
        ),  # Croatian: not a candidate, still not English
        ("Köszönöm a gyors választ, jövő héten jelentkezünk.", None),  # Hungarian, likewise
        (
            "Danke für das Gespräch gestern, wir prüfen das Angebot intern und melden uns, great offer.",
            None,
        ),  # mostly German
        ("", None),  # nothing to read
        ("   \n\n  ", None),
        ("> only a quoted line\n> and another", None),  # nothing of their own
    ],
)
def test_text_that_is_not_english_or_not_theirs_gets_no_score(session, world: World, body, expected):
    activity, _ = activities.log_email(session, as_user(session, world.rep), mail(4, body), now=NOW)
    assert activity.sentiment is expected and activity.sentiment_scored_at == NOW  # scored: "not scored", not "not yet"


def test_mostly_english_with_a_foreign_word_and_emoji_is_scored(session, world: World):
    text = "Love the new lanes 😍 danke, this is great 👍"
    activity, _ = activities.log_email(session, as_user(session, world.rep), mail(5, text), now=NOW)
    assert activity.sentiment == vader(text) > 0.5  # VADER reads the emoji as their words


def test_html_only_mail_is_scored_from_its_text(session, world: World):
    item = mail(
        6,
        None,
        body_html="<div><p>We are <b>delighted</b> with the service, thank you!</p><script>bad()</script></div>",
    )
    activity, _ = activities.log_email(session, as_user(session, world.rep), item, now=NOW)
    assert activity.sentiment == vader("We are delighted with the service, thank you!") > 0.5


def test_a_one_megabyte_body_is_read_only_as_far_as_the_bound(session, world: World):
    html = (
        "<p>Great service, thank you.</p>" + "<p>Lorem ipsum dolor sit amet and the shipment was terrible.</p>" * 15_500
    )
    assert 990_000 < len(html) < 1_000_000  # the API takes up to a million characters of HTML
    activity, created = activities.log_email(
        session, as_user(session, world.rep), mail(7, None, body_html=html), now=NOW
    )
    assert created and activity.body_text.startswith("Great service")
    cleaned = sentiment.clean_text("email", activity.body_text)
    assert len(cleaned) <= sentiment.MAX_SCORED
    assert activity.sentiment == vader(cleaned)


def test_the_pane_shows_the_score_and_not_scored(session, world: World):
    rep = as_user(session, world.rep)
    activities.log_email(session, rep, mail(8, ANGRY), now=NOW)
    activities.log_email(session, rep, mail(9, "Leider nein, wir haben kein Budget mehr für dieses Jahr."), now=NOW)
    rows = {a.summary[:6]: a for a in context_for_addresses(session, rep, ["ann@acme.test"], now=NOW).activities}
    assert rows["This i"].mood == f"cool {vader(ANGRY):+.2f}"
    assert rows["Leider"].mood == "not scored"


def test_backfill_scores_rows_written_straight_to_the_store(session, world: World):
    texts = [FRIENDLY, ANGRY, "Leider nein.", None, "Thanks for the quick reply."]
    rows = [
        {
            "organization_id": world.org.id,
            "type": "email",
            "direction": "inbound",
            "occurred_at": NOW - timedelta(days=i),
            "body_text": text,
            "owner_id": world.rep.id,
            "source": "import",
            "is_private": False,
            "created_at": NOW,
            "updated_at": NOW,
        }
        for i, text in enumerate(texts)
    ]
    rows.append({**rows[0], "direction": "outbound"})
    session.execute(Activity.__table__.insert(), rows)
    org = session.get(Organization, world.org.id)
    assert sentiment.backfill(session, org, now=NOW) == len(texts)  # the outbound one is not theirs
    scored = dict(
        session.execute(select(Activity.body_text, Activity.sentiment).where(Activity.direction == "inbound")).all()
    )
    assert scored[FRIENDLY] == vader(FRIENDLY) and scored[ANGRY] == vader(ANGRY)
    assert scored["Leider nein."] is None and scored[None] is None
    assert sentiment.backfill(session, org, now=NOW) == 0  # each once


def test_the_backfill_command_scores_the_store(app, app_world):
    with app.extensions["inboxcrm.db"].sessions() as session:
        session.execute(
            Activity.__table__.insert(),
            [
                {
                    "organization_id": app_world.org.id,
                    "type": "call",
                    "direction": "outbound",
                    "occurred_at": NOW,
                    "body_text": ANGRY,
                    "owner_id": app_world.rep.id,
                    "source": "import",
                    "is_private": False,
                    "created_at": NOW,
                    "updated_at": NOW,
                }
            ],
        )
        session.commit()
    result = app.test_cli_runner().invoke(args=["sentiment", "backfill"])
    assert result.exit_code == 0 and "Northwind: 1 activities scored" in result.output
    with app.extensions["inboxcrm.db"].sessions() as session:
        assert session.scalar(select(Activity.sentiment)) == vader(ANGRY)


# -- the lexicon the team's ratings teach -------------------------------------------------------

# Words a freight team hears before a won deal and before a lost one, which VADER reads as
# nothing (or the wrong way): the ratings should teach them.
WARM = ["greenlit", "onboarding", "kickoff", "signed", "renewal"]
COOL = ["pushback", "procurement", "ghosted", "redlines", "rfp"]
FILLER = [
    "about the lanes",
    "for next quarter",
    "on the reefer volumes",
    "after the call",
    "with their team",
    "this week",
]


def labelled(rng: random.Random, n: int) -> list[tuple[str, int]]:
    """``n`` texts with the rating a rep would give: a warm or cool team word, in a sentence
    VADER reads as neutral."""
    rows = []
    for _ in range(n):
        label = rng.choice([1, -1])
        words = rng.sample(WARM if label > 0 else COOL, 2)
        rows.append((f"Update {rng.choice(FILLER)}: {words[0]} and {words[1]} {rng.choice(FILLER)}.", label))
    return rows


def agreement(scored: list[tuple[float | None, int]]) -> float:
    """Share of activities whose score reads the way the rep rated them."""
    return sum(
        1 for score, label in scored if score is not None and (score >= 0.05 if label > 0 else score <= -0.05)
    ) / len(scored)


def log_and_rate(
    session, reps: list[User], texts: list[tuple[str, int]], start: int, rate: bool = True
) -> list[Activity]:
    logged = []
    for i, (text, label) in enumerate(texts):
        rep = reps[i % len(reps)]
        activity, _ = activities.log_activity(
            session,
            rep,
            {
                "type": "call",
                "outcome": "connected",
                "contact_id": None,
                "account_id": None,
                "body_text": text,
                "occurred_at": (NOW - timedelta(minutes=start + i)).isoformat(),
            },
            now=NOW,
        )
        if rate:
            activities.rate_activity(session, rep, activity.id, {"rating": str(label)})
        logged.append(activity)
    return logged


def team(session, world: World) -> list[User]:
    return [as_user(session, u) for u in (world.rep, world.teammate, world.west_rep)]


def test_ratings_teach_the_lexicon_and_agreement_rises(session, world: World):
    rng = random.Random(11)
    reps = team(session, world)
    held_out = labelled(rng, 60)
    before = log_and_rate(session, reps, held_out, 0, rate=False)
    agreement_before = agreement([(a.sentiment, label) for a, (_, label) in zip(before, held_out)])

    log_and_rate(session, reps, labelled(rng, 90), 1_000)
    org = session.get(Organization, world.org.id)
    learned = {w.word: w for w in lexicon.learned_words(session, org)}
    # Once a word has moved, mails with it are scored right and stop being evidence: most team
    # words move, none the wrong way, none past the cap.
    assert (
        sum(learned[w].shift > 0 for w in WARM if w in learned) >= 3
        and sum(learned[w].shift < 0 for w in COOL if w in learned) >= 3
    )
    assert not any(learned[w].shift < 0 for w in WARM if w in learned) and not any(
        learned[w].shift > 0 for w in COOL if w in learned
    )
    assert all(abs(w.shift) <= lexicon.CAP for w in learned.values())

    after = log_and_rate(session, reps, held_out, 5_000, rate=False)  # the same texts, logged now
    agreement_after = agreement([(a.sentiment, label) for a, (_, label) in zip(after, held_out)])
    assert agreement_before < 0.2 and agreement_after > 0.9

    # The earlier scores follow once rescored.
    assert sentiment.backfill(session, org, rescore=True, ids=[a.id for a in before], now=NOW) == len(before)
    session.expire_all()
    assert (
        agreement([(session.get(Activity, a.id).sentiment, label) for a, (_, label) in zip(before, held_out)])
        == agreement_after
    )


def test_a_rating_flood_from_one_rep_cannot_move_a_word_alone(session, world: World):
    rep = as_user(session, world.rep)
    texts = [(f"They gave us pushback {FILLER[i % len(FILLER)]} again today.", -1) for i in range(40)]
    log_and_rate(session, [rep], texts, 0)
    org = session.get(Organization, world.org.id)
    word = session.scalar(select(LexiconWord).where(LexiconWord.word == "pushback"))
    assert (word.activities, word.raters, word.shift) == (40, 1, 0.0)
    assert org.lexicon_version == 0
    # Rating one activity again and again is one piece of evidence per word, in its last direction.
    text = "They gave us pushback on pricing today."
    activity = log_and_rate(session, [rep], [(text, -1)], 100)[0]
    for rating in ("1", "-1", "0", "1", "-1"):
        activities.rate_activity(session, rep, activity.id, {"rating": rating})
    evidence = session.execute(
        select(LexiconEvidence.word, LexiconEvidence.direction).where(LexiconEvidence.activity_id == activity.id)
    ).all()
    assert sorted(evidence) == sorted((word, -1) for word in lexicon.words_of(text))
    # A second rep makes it evidence of a team.
    log_and_rate(session, [as_user(session, world.teammate)], texts[:5], 500)
    session.refresh(word)
    assert word.raters == 2 and word.shift == -lexicon.CAP  # 46 pieces of evidence, capped
    assert session.get(Organization, world.org.id).lexicon_version == 1


def test_a_rating_that_agrees_with_the_score_teaches_nothing(session, world: World):
    log_and_rate(session, team(session, world), [(ANGRY, -1), (FRIENDLY, 1)] * 6, 0)
    assert session.scalar(select(func.count()).select_from(LexiconEvidence)) == 0


def test_one_organizations_ratings_never_change_anothers_scores(session, world: World):
    log_and_rate(
        session,
        team(session, world),
        [(f"They gave us pushback and redlines {FILLER[i % 6]} again.", -1) for i in range(12)],
        0,
    )
    text = "They gave us pushback and redlines again."
    ours, _ = activities.log_activity(
        session,
        as_user(session, world.rep),
        {"type": "note", "direction": "internal", "contact_id": world.contact.id, "body_text": text},
        now=NOW,
    )
    theirs, _ = activities.log_activity(
        session,
        as_user(session, world.other_user),
        {"type": "note", "direction": "internal", "contact_id": world.other_contact.id, "body_text": text},
        now=NOW,
    )
    assert ours.sentiment <= -sentiment.NEUTRAL and theirs.sentiment == vader(text) == 0
    assert (
        session.scalar(
            select(func.count()).select_from(LexiconWord).where(LexiconWord.organization_id == world.other_org.id)
        )
        == 0
    )


def test_old_evidence_decays(session, world: World):
    logged = log_and_rate(
        session,
        team(session, world),
        [(f"They gave us pushback {FILLER[i % 6]} again today.", -1) for i in range(6)],
        0,
    )
    org = session.get(Organization, world.org.id)
    word = session.scalar(select(LexiconWord).where(LexiconWord.word == "pushback"))
    # Five pieces move it; the sixth mail is then scored cool already, and the rating agrees.
    assert word.weight == pytest.approx(-5, abs=0.01) and word.shift == -5 * lexicon.STEP
    assert logged[5].sentiment <= -sentiment.NEUTRAL and logged[4].sentiment == 0
    latest = max(session.scalars(select(LexiconEvidence.created_at)))
    lexicon.reweigh(session, org, None, now=latest + timedelta(days=lexicon.HALF_LIFE_DAYS))
    session.refresh(word)
    assert word.weight == pytest.approx(-2.5, abs=0.01) and word.shift == -2.5 * lexicon.STEP


def test_erasing_a_person_takes_the_evidence_their_mail_gave(session, world: World):
    from services.privacy import erase_person

    log_and_rate(
        session,
        team(session, world),
        [(f"They gave us pushback {FILLER[i % 6]} again today.", -1) for i in range(6)],
        0,
    )
    session.execute(Activity.__table__.update().values(contact_id=world.contact.id))
    erase_person(session, session.get(Organization, world.org.id), "ann@acme.test", secret="s")
    assert session.scalar(select(func.count()).select_from(LexiconEvidence)) == 0
    assert session.scalar(select(func.count()).select_from(LexiconWord)) == 0


# -- deal health ----------------------------------------------------------------------------------


def facts(**overrides) -> health.DealFacts:
    values = dict(
        deal_id=1,
        created_at=NOW - timedelta(days=40),
        stage_name="Proposal",
        sla_days=21,
        stage_since=NOW - timedelta(days=5),
        last_inbound=NOW - timedelta(days=1),
        overdue=0,
        oldest_due=None,
        scores=[],
    )
    return health.DealFacts(**{**values, **overrides})


def test_a_healthy_deal_scores_100_with_nothing_against_it():
    assert health.health_of(facts(), NOW, 21) == health.Health(100, ())


def test_health_names_what_cost_it_most():
    result = health.health_of(
        facts(
            last_inbound=NOW - timedelta(days=19, hours=5),
            scores=[("email", -0.6), ("email", -0.2), ("email", 0.3)],
            stage_since=NOW - timedelta(days=42),
            overdue=2,
            oldest_due=NOW - timedelta(days=5),
        ),
        NOW,
        21,
    )
    words = [f.words for f in result.factors]
    assert words == [
        "no reply in 19 days",
        "42 days in Proposal (SLA 21)",
        "2 follow-ups overdue, the oldest by 5 days",
        "three cooler mails in a row",
        "the last 3 mails read cool (-0.17 on average)",
    ]
    quiet = round(health.QUIET_COST * (19 + 5 / 24 - 3) / 18)
    assert result.score == max(0, 100 - quiet - 25 - 20 - 10 - round(25 * 0.5 / 3))
    assert [f.words for f in result.shown] == words[:3]


@pytest.mark.parametrize(
    "scores, cooling",
    [
        ([("call", -0.3), ("call", -0.1), ("call", 0.2)], True),
        ([("call", -0.3), ("call", 0.2), ("call", -0.1)], False),
        ([("call", 0.1), ("call", 0.12), ("call", 0.5)], False),
    ],
)  # a step under 0.05 is not cooling
def test_cooling_is_three_scores_each_lower(scores, cooling):
    kinds = [f.kind for f in health.health_of(facts(scores=scores), NOW, 21).factors]
    assert ("cooling" in kinds) is cooling


def test_health_from_the_store_as_it_stood_then(session, world: World):
    """The facts the service reads at a moment, against the rows read here."""
    rep = as_user(session, world.rep)
    deal_id = world.deal.id  # created 10 days before NOW, in Qualify (SLA 14), its only deal
    for n, (days, text) in enumerate([(9, FRIENDLY), (6, "We still have some questions about the rates."), (3, ANGRY)]):
        activities.log_email(
            session, rep, mail(20 + n, text, sent_at=(NOW - timedelta(days=days)).isoformat()), now=NOW
        )
    add_follow_up(
        session,
        rep,
        {"title": "Send the revised quote", "due_at": (NOW - timedelta(days=2)).isoformat(), "opportunity_id": deal_id},
        now=NOW - timedelta(days=4),
    )
    org = session.get(Organization, world.org.id)

    for at in (NOW, NOW - timedelta(days=5)):
        emails = session.scalars(
            select(Activity)
            .where(Activity.opportunity_id == deal_id, Activity.occurred_at <= at)
            .order_by(Activity.occurred_at.desc())
        ).all()
        follow_ups = [f for f in session.scalars(select(FollowUp)) if f.due_at < at and f.created_at <= at]
        expected = health.health_of(
            health.DealFacts(
                deal_id,
                NOW - timedelta(days=10),
                "Qualify",
                14,
                NOW - timedelta(days=10),
                max((a.occurred_at for a in emails if a.direction == "inbound"), default=None),
                len(follow_ups),
                min((f.due_at for f in follow_ups), default=None),
                [("email", vader(a.body_text)) for a in emails][:3],
            ),
            at,
            21,
        )
        assert health.healths(session, org, [deal_id], at)[deal_id] == expected
    now = health.healths(session, org, [deal_id], NOW)[deal_id]
    assert {f.kind for f in now.factors} == {"cooling", "follow_ups"}  # quiet for 3 days only; 10 days of a 14-day SLA


def test_a_deals_latest_scores_are_its_three_newest_live_scored_activities(session, world: World):
    """Unscored activities between them (the rep's own mail, a call with no note), an undone
    mail newer than all and ties in time are walked past; the order is the newest first, a tie
    by the later id, as the rows read here give it."""
    rep = as_user(session, world.rep)
    deal_id = world.deal.id
    texts = [
        FRIENDLY,
        "We still have some questions about the rates.",
        ANGRY,
        "The demo went fine and the team liked what they saw, thank you.",
        "We are not happy with the delay on the contract again.",
    ]
    for n, text in enumerate(texts):  # a day apart, the last two at the same moment
        sent = NOW - timedelta(days=len(texts) - min(n, len(texts) - 2))
        activities.log_email(session, rep, mail(40 + n, text, sent_at=sent.isoformat()), now=NOW)
        activities.log_email(
            session,
            rep,
            mail(
                60 + n,
                "Our own reply.",
                from_address="rita@northwind.test",
                to=["ann@acme.test"],
                sent_at=(sent + timedelta(hours=1)).isoformat(),
            ),
            now=NOW,
        )
    undone, _ = activities.log_email(
        session, rep, mail(80, ANGRY, sent_at=(NOW - timedelta(hours=1)).isoformat()), now=NOW
    )
    activities.undo_log(session, rep, undone.id, now=NOW)
    session.flush()

    live = session.scalars(
        select(Activity).where(
            Activity.opportunity_id == deal_id, Activity.deleted_at.is_(None), Activity.sentiment.is_not(None)
        )
    ).all()
    newest = sorted(live, key=lambda a: (a.occurred_at, a.id), reverse=True)[:3]
    assert (
        len(live) == len(texts) and undone.sentiment is not None
    )  # the undone mail was scored: it is passed as undone
    [facts] = health.deal_facts(session, session.get(Organization, world.org.id), [deal_id], NOW)
    assert facts.scores == [(a.type, a.sentiment) for a in newest]
    assert [score for _, score in facts.scores] == [vader(texts[4]), vader(texts[3]), vader(texts[2])]


def test_the_pane_shows_each_open_deals_health(session, world: World):
    rep = as_user(session, world.rep)
    activities.log_email(session, rep, mail(30, ANGRY, sent_at=(NOW - timedelta(days=12)).isoformat()), now=NOW)
    deal = context_for_addresses(session, rep, ["ann@acme.test"], now=NOW).deals[0]
    org = session.get(Organization, world.org.id)
    assert deal.health == health.healths(session, org, [world.deal.id], NOW)[world.deal.id]
    assert "no reply in 12 days" in [f.words for f in deal.health.shown]


def test_the_daily_snapshot_and_the_deals_whose_health_fell_most(session, world: World):
    org = session.get(Organization, world.org.id)
    rep, west = as_user(session, world.rep), as_user(session, world.west_rep)
    west_deal = make_deal(
        session, org, world.branch, west, world.stages[1], "West lane", created=NOW - timedelta(days=30)
    )
    quiet_deal = make_deal(
        session, org, world.account, rep, world.stages[0], "Quiet one", created=NOW - timedelta(days=20)
    )
    activities.log_email(
        session,
        rep,
        mail(40, FRIENDLY, sent_at=(NOW - timedelta(days=19)).isoformat(), opportunity_id=quiet_deal.id),
        now=NOW,
    )
    for days in range(health.WINDOW_DAYS, -1, -1):
        health.snapshot(session, org, NOW - timedelta(days=days))
    assert health.snapshot(session, org, NOW) == 3  # run again the same day, the day is kept once
    today = NOW.date()
    kept = {row.opportunity_id: row for row in session.scalars(select(DealHealth).where(DealHealth.day == today))}
    assert set(kept) == {world.deal.id, west_deal.id, quiet_deal.id}  # this organization's only

    def now_and_then(deal_id: int, first_kept: int) -> tuple[int, int]:
        at = health.healths(session, org, [deal_id], NOW)[deal_id].score
        return at, at - health.healths(session, org, [deal_id], NOW - timedelta(days=first_kept))[deal_id].score

    # Each against its earliest kept day of the 14 before: the deal made 10 days ago, its first.
    assert (kept[world.deal.id].health, kept[world.deal.id].change) == now_and_then(world.deal.id, 10)
    assert (kept[west_deal.id].health, kept[west_deal.id].change) == now_and_then(west_deal.id, 14)
    assert (kept[quiet_deal.id].health, kept[quiet_deal.id].change) == now_and_then(quiet_deal.id, 14)
    assert kept[quiet_deal.id].factors == [
        f.words for f in health.healths(session, org, [quiet_deal.id], NOW)[quiet_deal.id].shown
    ]

    everyone = [Person(u.id, u.name, u.organization_id, u.team_id) for u in (rep, west)]
    drops = health.health_drops(session, org, everyone).rows
    assert [d.change for d in drops] == sorted(r.change for r in kept.values() if r.change < 0)
    assert all(d.change < 0 for d in drops) and {d.deal_id for d in drops} <= set(kept)
    # A manager's panel lists their team's deals only.
    panel = team_panel(session, as_user(session, world.manager), NOW.date(), NOW)
    assert {d.deal_id for d in panel.health_drops.rows} == {d.deal_id for d in drops if d.owner_name == rep.name}
    assert west_deal.id not in {d.deal_id for d in panel.health_drops.rows}


# -- the checklist as the note is written ----------------------------------------------------------


def test_the_pane_names_the_questions_not_yet_answered(app, app_world, auth):
    auth.login("rita@northwind.test")
    answer = auth.post("/activities/checklist", {"type": "call", "answer:Truck size": "26 ft", "body_text": ""})
    assert answer.status_code == 200 and "Not answered yet: Lanes used." in answer.get_data(as_text=True)
    typed = auth.post(
        "/activities/checklist", {"type": "call", "body_text": "Truck size: 26 ft\nLanes used: Boston-Chicago"}
    )
    assert "Every checklist question is answered." in typed.get_data(as_text=True)
    none = auth.post("/activities/checklist", {"type": "visit", "body_text": ""}).get_data(as_text=True).strip()
    assert none == ""  # the world has no visit checklist: nothing asked
    flagged = auth.post("/activities/checklist", {"type": "call", "body_text": "Nice chat."}).get_data(as_text=True)
    assert "Truck size · Lanes used" in flagged and "flagged" in flagged
    for bad in ({"type": "meeting"}, {"type": "<script>"}, {}, {"type": "call", "body_text": "x" * 200_000}):
        response = auth.post("/activities/checklist", bad)
        assert response.status_code == 200 and "<script>" not in response.get_data(as_text=True)


def test_the_checklist_needs_a_signed_in_rep(client):
    response = client.post("/activities/checklist", data={"type": "call"}, headers={"HX-Request": "true"})
    assert response.status_code in (302, 400, 401) and "checklist" not in response.get_data(as_text=True)


# -- what managers and admins see ---------------------------------------------------------------


def test_the_dashboard_lists_the_deals_heading_south_and_exports_them(app, app_world, auth):
    with app.extensions["inboxcrm.db"].sessions() as session:
        org = session.get(Organization, app_world.org.id)
        for days in (9, 0):  # the world's deal was made 10 days ago
            health.snapshot(session, org, NOW - timedelta(days=days))
        session.commit()
        drops = health.health_drops(
            session, org, [Person(app_world.rep.id, app_world.rep.name, org.id, app_world.east.id)]
        ).rows
    assert drops, "the world's deal grows quiet and stale over 14 days"
    auth.login("mia@northwind.test")
    page = auth.get("/dashboard?period=this_year", htmx=False).get_data(as_text=True)
    assert "Deals heading south" in page and f"health {drops[0].health} ({drops[0].change} in 14 days)" in page
    csv = auth.get("/dashboard/health.csv?period=this_year", htmx=False).get_data(as_text=True).splitlines()
    assert csv[0] == "deal,account,owner,owner email,health,change in 14 days,what cost it most,as of"
    assert csv[1].startswith(
        f"{drops[0].name},{drops[0].account_name},{drops[0].owner_name},rita@northwind.test,{drops[0].health},"
        f"{drops[0].change},"
    )


def test_the_admin_sees_the_learned_words_and_resets_one(app, app_world, auth):
    with app.extensions["inboxcrm.db"].sessions() as session:
        log_and_rate(
            session,
            team(session, app_world),
            [(f"They gave us pushback {FILLER[i % 6]} again today.", -1) for i in range(6)],
            0,
        )
        session.commit()
    for who in ("rita@northwind.test", "mia@northwind.test"):
        auth.login(who)
        assert auth.get("/admin/lexicon", htmx=False).status_code == 403
        assert auth.post("/admin/lexicon/reset", {"word": "pushback"}).status_code == 403
    auth.login("ada@northwind.test")
    page = auth.get("/admin/lexicon", htmx=False).get_data(as_text=True)
    assert "<td>pushback</td>" in page and f"{-5 * lexicon.STEP:+.2f}" in page
    assert auth.client.post("/admin/lexicon/reset", data={"word": "pushback"}).status_code == 400  # no CSRF token
    assert auth.post("/admin/lexicon/reset", {"word": "pushback"}, htmx=False).status_code == 302
    with app.extensions["inboxcrm.db"].sessions() as session:
        assert session.scalar(select(func.count()).select_from(LexiconWord).where(LexiconWord.word == "pushback")) == 0
        assert (
            session.scalar(select(func.count()).select_from(LexiconEvidence).where(LexiconEvidence.word == "pushback"))
            == 0
        )
        assert session.scalar(select(func.count()).select_from(LexiconWord)) > 0  # the other words stay
        assert session.get(Organization, app_world.org.id).lexicon_version == 2
        assert session.scalar(select(func.count()).where(AuditEvent.action == "reset_word")) == 1
    assert "<td>pushback</td>" not in auth.get("/admin/lexicon", htmx=False).get_data(as_text=True)
    assert "nothing learned to reset" in auth.post(
        "/admin/lexicon/reset", {"word": "nope"}, htmx=False, follow_redirects=True
    ).get_data(as_text=True)
