"""The organization's own lexicon: what its reps' ratings teach the sentiment score.

A rep rates an activity "went well" (+1) or "went badly" (-1). When the rating goes against the
activity's score (rated well, scored cool or neutral; rated badly, scored warm or neutral), each
word of its clean text becomes a piece of evidence in the rating's direction. A word moves when,
and only as far as, the evidence holds:

* **enough of it**: at least ``MIN_ACTIVITIES`` distinct activities, rated by at least
  ``MIN_RATERS`` distinct reps (one rep rating a hundred mails cannot move a word alone; an
  activity holds one rating, so re-rating it replaces its evidence rather than adding to it);
* **bounded**: the shift is ``STEP`` valence points per net piece of evidence, at most ``CAP``
  either way, on VADER's -4 to 4 scale, and the word's valence stays within that scale;
* **recent**: a piece of evidence weighs half as much every ``HALF_LIFE_DAYS`` days.

The shift is added to VADER's own valence (0 for a word VADER does not know: "pushback" can
become a cool word for a team that hears it before every lost deal). Later scores use it at
once (``services.sentiment.analyzer_for``); earlier ones are rescored by ``flask --app wsgi
sentiment rescore``. An admin sees every word with its evidence and can reset one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Iterable

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from services.audit import record_event
from services.models import Activity, LexiconEvidence, LexiconWord, Organization, User
from services.sentiment import NEUTRAL, base_valence, clean_text
from services.types import as_utc, utcnow

MIN_ACTIVITIES = 5
MIN_RATERS = 2
STEP = 0.25
CAP = 2.0
HALF_LIFE_DAYS = 90
MAX_WORDS = 60  # of one activity: a long mail's every word is no more evidence than its first ones

_WORD = re.compile(r"[a-z][a-z'’-]*[a-z]")
# Words that carry no feeling of their own, and VADER's negations and intensifiers, which it
# reads as grammar (a learned "not" would skew every sentence with it).
STOP_WORDS = frozenset(
    """
a about above after again against all also am an and any are aren't as at be because been before being below between both but by
can can't cannot could couldn't did didn't do does doesn't doing don't down during each few for from further had hadn't has hasn't
have haven't having he her here hers herself him himself his how i if in into is isn't it it's its itself just let's me more most
mustn't my myself no nor not now of off on once only or other ought our ours ourselves out over own same shan't she should
shouldn't so some such than that that's the their theirs them themselves then there there's these they this those through to too
under until up very was wasn't we were weren't what when where which while who whom why will with won't would wouldn't you your
yours yourself yourselves hi hello dear thanks thank regards best kind please re fw fwd yes ok okay also get got will would could
absolutely amazingly awfully completely considerably decidedly deeply effing enormously entirely especially exceptionally
extremely fabulously flipping flippin fricking frickin frigging friggin fully fucking greatly hella highly hugely incredibly
intensely majorly marginally mostly particularly purely quite really remarkably slightly somewhat substantially thoroughly
totally tremendously uber unbelievably unusually utterly almost barely hardly kind of kinda kindof less little occasionally partly
scarcely slightly sort sorta sortof never none nope nothing nowhere neither without rarely seldom despite ain't aint
""".split()
)


def words_of(text: str) -> list[str]:
    """The words of a clean text that may carry a team's meaning: lower case, 3 to 40 letters,
    no stop word, each once, the first ``MAX_WORDS``."""
    found = dict.fromkeys(w for w in _WORD.findall(text.lower()) if 3 <= len(w) <= 40 and w not in STOP_WORDS)
    return list(found)[:MAX_WORDS]


def against_score(rating: int | None, score: float | None) -> bool:
    """Whether a rating goes against the score: rated well but not scored warm, or rated badly
    but not scored cool. An activity with no score (not English) teaches nothing."""
    if not rating or score is None:
        return False
    return score < NEUTRAL if rating > 0 else score > -NEUTRAL


def learn_from_rating(
    session: Session, actor: User, activity: Activity, now: datetime | None = None, *, rated_before: bool = True
) -> None:
    """The activity's rating (just set or taken back) as evidence: its earlier evidence is
    replaced, and the words of both are weighed again. ``rated_before`` False: the activity had
    no rating, so no evidence to replace (evidence is only ever of a rating, and goes with it)."""
    now = now or utcnow()
    org = actor.organization
    earlier = (
        set(session.scalars(select(LexiconEvidence.word).where(LexiconEvidence.activity_id == activity.id)))
        if rated_before
        else set()
    )
    if earlier:
        session.execute(delete(LexiconEvidence).where(LexiconEvidence.activity_id == activity.id))
    words: list[str] = []
    if against_score(activity.rating, activity.sentiment):
        words = words_of(clean_text(activity.type, activity.body_text))
        if words:
            session.execute(
                LexiconEvidence.__table__.insert(),
                [
                    {
                        "organization_id": org.id,
                        "activity_id": activity.id,
                        "rater_id": actor.id,
                        "word": word,
                        "direction": activity.rating,
                        "created_at": now,
                    }
                    for word in words
                ],
            )
    if earlier or words:
        reweigh(session, org, earlier | set(words), now)


def forget_activities(
    session: Session, organization: Organization, activity_ids: Iterable[int], now: datetime | None = None
) -> int:
    """Remove the evidence these activities gave (their text was erased) and weigh their words
    again. Returns how many pieces of evidence went."""
    ids = list(activity_ids)
    if not ids:
        return 0
    words = set(
        session.scalars(
            select(LexiconEvidence.word).where(
                LexiconEvidence.organization_id == organization.id, LexiconEvidence.activity_id.in_(ids)
            )
        )
    )
    if not words:
        return 0
    removed = session.execute(
        delete(LexiconEvidence).where(
            LexiconEvidence.organization_id == organization.id, LexiconEvidence.activity_id.in_(ids)
        )
    ).rowcount
    reweigh(session, organization, words, now or utcnow())
    return removed


def decay(at: datetime, now: datetime) -> float:
    return 0.5 ** (max(0.0, (now - as_utc(at)).total_seconds()) / 86400 / HALF_LIFE_DAYS)


def shift_for(weight: float, activities: int, raters: int) -> float:
    """The valence shift the evidence earns (0 short of ``MIN_ACTIVITIES`` and ``MIN_RATERS``)."""
    if activities < MIN_ACTIVITIES or raters < MIN_RATERS:
        return 0.0
    return round(max(-CAP, min(CAP, STEP * weight)), 3)


def reweigh(
    session: Session, organization: Organization, words: Iterable[str] | None, now: datetime | None = None
) -> int:
    """Weigh the evidence of these words (None: every word of the organization) as of ``now``
    (decay moves with time: the daily job weighs every word again), keep each word's shift, and
    move the organization's lexicon version when any shift changed. Returns how many moved."""
    now = now or utcnow()
    query = select(
        LexiconEvidence.word,
        LexiconEvidence.direction,
        LexiconEvidence.created_at,
        LexiconEvidence.activity_id,
        LexiconEvidence.rater_id,
    ).where(LexiconEvidence.organization_id == organization.id)
    kept_query = select(LexiconWord).where(LexiconWord.organization_id == organization.id)
    if words is not None:
        words = list(words)
        query = query.where(LexiconEvidence.word.in_(words))
        kept_query = kept_query.where(LexiconWord.word.in_(words))
    tally: dict[str, list] = {}
    for word, direction, created_at, activity_id, rater_id in session.execute(query):
        entry = tally.setdefault(word, [0.0, set(), set()])
        entry[0] += direction * decay(created_at, now)
        entry[1].add(activity_id)
        entry[2].add(rater_id)
    kept = {row.word: row for row in session.scalars(kept_query)}
    moved = 0
    for word in set(tally) | set(kept):
        weight, activities, raters = tally.get(word, (0.0, set(), set()))
        shift = shift_for(weight, len(activities), len(raters))
        row = kept.get(word)
        if not activities:
            if row is not None:
                moved += row.shift != 0
                session.delete(row)
            continue
        if row is None:
            row = LexiconWord(organization_id=organization.id, word=word, shift=0.0)
            session.add(row)
        moved += row.shift != shift
        row.shift, row.weight, row.activities, row.raters, row.updated_at = (
            shift,
            round(weight, 4),
            len(activities),
            len(raters),
            now,
        )
    if moved:
        session.execute(
            update(Organization)
            .where(Organization.id == organization.id)
            .values(lexicon_version=Organization.lexicon_version + 1)
        )
        session.refresh(organization, ["lexicon_version"])
    session.flush()
    return moved


@dataclass
class LearnedWord:
    word: str
    base: float  # VADER's own valence
    shift: float  # what the team's ratings added (0 while the evidence is short)
    weight: float
    activities: int
    raters: int
    warmer: int  # distinct activities rated well against their score
    cooler: int
    updated_at: datetime

    @property
    def valence(self) -> float:
        return self.base + self.shift

    @property
    def active(self) -> bool:
        return self.shift != 0


def learned_words(session: Session, organization: Organization) -> list[LearnedWord]:
    """Every word the organization's ratings gave evidence for: those that moved first (by how
    far), then the rest by how much evidence they have."""
    sides = dict(
        ((word, direction), count)
        for word, direction, count in session.execute(
            select(LexiconEvidence.word, LexiconEvidence.direction, func.count())
            .where(LexiconEvidence.organization_id == organization.id)
            .group_by(LexiconEvidence.word, LexiconEvidence.direction)
        )
    )
    rows = session.scalars(select(LexiconWord).where(LexiconWord.organization_id == organization.id))
    words = [
        LearnedWord(
            r.word,
            base_valence(r.word),
            r.shift,
            r.weight,
            r.activities,
            r.raters,
            sides.get((r.word, 1), 0),
            sides.get((r.word, -1), 0),
            r.updated_at,
        )
        for r in rows
    ]
    return sorted(words, key=lambda w: (not w.active, -abs(w.shift), -w.activities, w.word))


def reset_word(session: Session, actor: User, word: str, now: datetime | None = None) -> bool:
    """Forget a word: its evidence and its shift (an admin's). False when there was none."""
    org = actor.organization
    row = session.scalar(select(LexiconWord).where(LexiconWord.organization_id == org.id, LexiconWord.word == word))
    if row is None:
        return False
    before = {"word": word, "shift": row.shift, "activities": row.activities, "raters": row.raters}
    session.execute(
        delete(LexiconEvidence).where(LexiconEvidence.organization_id == org.id, LexiconEvidence.word == word)
    )
    reweigh(session, org, [word], now)  # no evidence left: the word goes, and the version moves if its shift did
    record_event(session, actor, "reset_word", org, before=before, after={"word": word, "shift": 0})
    return True
