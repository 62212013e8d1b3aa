"""Sentiment: how warm what the customer wrote reads, in [-1, 1], from VADER.

What is scored (``is_scored``): an inbound email (the customer's own words), and the notes of a
call, meeting, visit or a note (the rep's account of what the customer said). What is read of
it (``clean_text``): the reply alone, with the quoted thread below it, the signature and a legal
footer removed (mail-parser-reply), so that an angry mail quoted under a friendly answer does
not sink the answer. Only English is scored (VADER's lexicon is English): the language is
detected first (lingua), and text in another language, or too short to tell, gets no score
(NULL, "not scored") rather than a wrong one.

Each organization scores with its own copy of VADER's lexicon, moved by what its reps' ratings
taught it (``services.lexicon``). Scores are worked out as an activity is written (about a
tenth of a millisecond for a short mail; the text read is bounded, so a 1 MB body costs no
more than a long mail), and by ``backfill`` for rows written before or straight to the store.
"""

from __future__ import annotations

import copy
import re
import threading
from datetime import datetime
from functools import lru_cache
from typing import Any, Iterable

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from services.models import Activity, LexiconWord, Organization, live
from services.types import utcnow

NOTE_TYPES = (
    "call",
    "meeting",
    "visit",
    "note",
)  # scored whatever their direction: the rep's notes of the conversation
MAX_READ = 20_000  # characters of a body the reply parser reads: its patterns on a 1 MB body take seconds
MAX_SCORED = 4_000  # characters of the clean text scored: a customer's reply, not a document
NEUTRAL = 0.05  # VADER's own neutral band: a compound score within ±0.05 reads as neither
REPLY_LANGUAGES = [
    "en",
    "de",
    "fr",
]  # the quote headers and signatures recognised ("On … wrote:", "Am … schrieb", "Le … a écrit"): each costs 0.05 ms a mail


def is_scored(kind: str, direction: str) -> bool:
    """Whether an activity of this type and direction gets a score: what the customer wrote."""
    return (kind == "email" and direction == "inbound") or kind in NOTE_TYPES


@lru_cache(maxsize=1)
def _reply_parser() -> Any:
    from mailparser_reply import EmailReplyParser

    return EmailReplyParser(languages=REPLY_LANGUAGES)


# A legal footer the reply parser leaves when no sign-off comes before it: a paragraph opening
# like one, and everything after it, is not the customer's words.
_FOOTER = re.compile(
    r"\n\s*\n\s*(?:confidentiality notice|confidential(?:ity)?:|disclaimer|legal notice|privileged (?:and|&) confidential"
    r"|this (?:e-?mail|message|communication)(?: and any attachments?)? (?:is|are|may (?:be|contain)|contains?) (?:confidential|privileged|intended)"
    r"|the information (?:contained )?in this (?:e-?mail|message))",
    re.IGNORECASE,
)


def clean_text(kind: str, text: str | None) -> str:
    """What is scored of an activity's text: for an email, the reply alone (no quoted thread,
    signature or legal footer); for a note, its text. Bounded (``MAX_READ``, ``MAX_SCORED``)."""
    text = (text or "")[:MAX_READ].strip()
    if text and kind == "email":
        replies = _reply_parser().read(text).replies
        # A line quoted with ">" is never the customer's own, wherever it stands.
        text = "\n".join(
            line for line in (replies[0].body if replies else "").splitlines() if not line.lstrip().startswith(">")
        ).strip()
        if footer := _FOOTER.search(text):
            text = text[: footer.start()].strip()
    return text[:MAX_SCORED]


# The languages told apart: English and the other languages in the Latin script a company's
# mail is most often written in; each costs time on every mail (14: about half a millisecond
# a mail). Rare ones (Latin, Esperanto, Tagalog, Norwegian's two written forms) are left out on
# purpose: among all 75, "Thanks for the quick reply." reads as Norwegian and goes unscored. A
# mail in a language left out is read as the nearest one here, never as English in the tests'
# samples (Croatian, Slovak, Hungarian, Romanian, the Baltic languages, Vietnamese, Norwegian).
CANDIDATES = (
    "ENGLISH",
    "GERMAN",
    "FRENCH",
    "SPANISH",
    "ITALIAN",
    "PORTUGUESE",
    "DUTCH",
    "POLISH",
    "SWEDISH",
    "DANISH",
    "FINNISH",
    "CZECH",
    "TURKISH",
    "INDONESIAN",
)
_detector_lock = threading.Lock()
_detector: Any = None


def _language_detector() -> Any:
    """lingua's detector, in its low-accuracy mode (loaded once per process on first use), over
    the languages of ``CANDIDATES``: enough to tell English from the rest. Text in another
    script is never English (no candidate matches it: no score)."""
    global _detector
    if _detector is None:
        with _detector_lock:
            if _detector is None:
                from lingua import Language, LanguageDetectorBuilder

                _detector = (
                    LanguageDetectorBuilder.from_languages(*(getattr(Language, name) for name in CANDIDATES))
                    .with_low_accuracy_mode()
                    .build()
                )
    return _detector


def is_english(text: str) -> bool:
    from lingua import Language

    return _language_detector().detect_language_of(text) == Language.ENGLISH


def warm() -> None:
    """Load the language models and VADER's lexicon now (a process that will score, at start)."""
    is_english("Warm up the language models.")
    _base_analyzer()


# -- the organization's analyzer ---------------------------------------------------------------


@lru_cache(maxsize=1)
def _base_analyzer() -> Any:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def base_valence(word: str) -> float:
    """VADER's own valence of a word (-4 to 4; 0 for a word it does not know)."""
    return float(_base_analyzer().lexicon.get(word, 0.0))


VALENCE_BOUND = 4.0  # VADER's scale: a learned word stays within it


def analyzer_with(shifts: dict[str, float]) -> Any:
    """VADER with these words' valences moved (added to VADER's own, within its scale)."""
    base = _base_analyzer()
    if not shifts:
        return base
    analyzer = copy.copy(base)
    analyzer.lexicon = dict(base.lexicon)
    for word, shift in shifts.items():
        value = max(-VALENCE_BOUND, min(VALENCE_BOUND, base.lexicon.get(word, 0.0) + shift))
        analyzer.lexicon[word] = value
    return analyzer


_analyzers: dict[int, tuple[int, Any]] = {}  # organization → (its lexicon version, its analyzer)


def analyzer_for(session: Session, organization: Organization) -> Any:
    """The organization's analyzer, read again when its learned lexicon changed (its version
    moved): each process keeps a copy per organization."""
    cached = _analyzers.get(organization.id)
    if cached is not None and cached[0] == organization.lexicon_version:
        return cached[1]
    shifts = {
        word: shift
        for word, shift in session.execute(
            select(LexiconWord.word, LexiconWord.shift).where(
                LexiconWord.organization_id == organization.id, LexiconWord.shift != 0
            )
        )
    }
    analyzer = analyzer_with(shifts)
    _analyzers[organization.id] = (organization.lexicon_version, analyzer)
    return analyzer


def score_with(analyzer: Any, kind: str, text: str | None) -> float | None:
    """The score of an activity's text, or None: nothing of the customer's to read, or not English."""
    clean = clean_text(kind, text)
    if not clean or not is_english(clean):
        return None
    return round(float(analyzer.polarity_scores(clean)["compound"]), 4)


def score_activity(
    session: Session, organization: Organization, activity: Activity, now: datetime | None = None
) -> None:
    """Work out the activity's score as it is written (nothing for a type not scored)."""
    if not is_scored(activity.type, activity.direction):
        return
    activity.sentiment = score_with(analyzer_for(session, organization), activity.type, activity.body_text)
    activity.sentiment_scored_at = now or utcnow()


def reads_as(score: float | None) -> str:
    """A score in words, for the views."""
    if score is None:
        return "not scored"
    if score >= NEUTRAL:
        return "warm"
    if score <= -NEUTRAL:
        return "cool"
    return "neutral"


# -- backfill and rescoring --------------------------------------------------------------------

BATCH = 2_000


def _scored_rows(organization_id: int) -> Any:
    # Walked in id order by the primary key: "+ 0" keeps the organization's indexes out of it
    # (SQLite would otherwise read the organization's every activity by one and sort them, per batch).
    return (
        ((Activity.organization_id + 0) == organization_id)
        & live(Activity)
        & or_((Activity.type == "email") & (Activity.direction == "inbound"), Activity.type.in_(NOTE_TYPES))
    )


def unscored(organization_id: int) -> Any:
    """The organization's activities that would be scored and never were."""
    return _scored_rows(organization_id) & Activity.sentiment_scored_at.is_(None)


def backfill(
    session: Session,
    organization: Organization,
    *,
    rescore: bool = False,
    ids: Iterable[int] | None = None,
    now: datetime | None = None,
    limit: int | None = None,
) -> int:
    """Score the organization's activities never scored (``rescore``: every one with text, with
    the organization's lexicon as it is now; a mail whose body retention removed keeps its
    score). Returns how many were scored. Read and written in batches by id."""
    now = now or utcnow()
    analyzer = analyzer_for(session, organization)
    condition = (
        (_scored_rows(organization.id) & Activity.body_text.is_not(None)) if rescore else unscored(organization.id)
    )
    if ids is not None:
        condition &= Activity.id.in_(list(ids))
    done, after = 0, 0
    while limit is None or done < limit:
        size = BATCH if limit is None else min(BATCH, limit - done)
        rows = session.execute(
            select(Activity.id, Activity.type, Activity.body_text)
            .where(condition, Activity.id > after)
            .order_by(Activity.id)
            .limit(size)
        ).all()
        if not rows:
            break
        session.execute(
            update(Activity),
            [
                {"id": activity_id, "sentiment": score_with(analyzer, kind, body), "sentiment_scored_at": now}
                for activity_id, kind, body in rows
            ],
        )
        done += len(rows)
        after = rows[-1].id
    return done
