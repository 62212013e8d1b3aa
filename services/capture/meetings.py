"""Captured meetings after they are held: the rep says how it went, and what was said is kept.

* **How it went**: for a captured meeting held in the last fortnight and not answered yet, the
  rep's *My day* asks: went well or badly (the rating, which the lexicon learns from), the
  outcome (held, no show, rescheduled, cancelled), and a note answering the visit checklist's
  questions (a meeting is a visit held online or in person). The note joins the meeting's text.
* **Transcripts**: Teams' transcript of an online meeting, read through Graph once the meeting
  has ended (``fetch_teams_transcript``), or a WebVTT or text file the rep attaches. It is the
  meeting's: private when the meeting is, searchable by those who may read the meeting, and the
  customer's lines (speakers outside the organization) score the meeting.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Mapping
from urllib.parse import quote

from marshmallow import fields, validate
from sqlalchemy import select
from sqlalchemy.orm import Session

from services import notes, sentiment
from services.access import can_read_content, get_scoped, visible_activities
from services.audit import record_event
from services.capture.providers import Api, ConsentRevoked, CursorExpired, ProviderError
from services.errors import DomainError, Forbidden
from services.mail.activities import change_counted, rate_activity
from services.mail.text import domain_of
from services.models import Activity, Capture, Mailbox, Transcript, User
from services.schemas import InputSchema, load
from services.types import utcnow

ASK_DAYS = 14
DEBRIEF_OUTCOMES = ("held", "no_show", "rescheduled", "cancelled")
CHECKLIST = "visit"
MAX_TRANSCRIPT = 2_000_000  # characters kept: a long meeting's transcript runs to a few hundred thousand
MAX_FILE = 5 * 1024 * 1024


class DebriefSchema(InputSchema):
    rating = fields.Integer(
        load_default=0, validate=validate.OneOf((-1, 0, 1), error="Choose went well or went badly.")
    )
    outcome = fields.String(
        required=True,
        validate=validate.OneOf(DEBRIEF_OUTCOMES, error="Choose held, no show, rescheduled or cancelled."),
    )
    note = fields.String(load_default="", validate=validate.Length(max=20_000))
    answers = fields.Dict(
        keys=fields.String(), values=fields.String(validate=validate.Length(max=2_000)), load_default=dict
    )


@dataclass
class ToAsk:
    activity_id: int
    subject: str
    occurred_at: datetime
    who: str


def to_ask(session: Session, actor: User, now: datetime | None = None) -> list[ToAsk]:
    """The rep's captured meetings held lately that they have not said how they went."""
    now = now or utcnow()
    rows = session.execute(
        select(Activity)
        .join(Capture, Capture.activity_id == Activity.id)
        .where(
            Activity.organization_id == actor.organization_id,
            Activity.owner_id == actor.id,
            Activity.type == "meeting",
            Activity.outcome == "held",
            Activity.deleted_at.is_(None),
            Activity.occurred_at >= now - timedelta(days=ASK_DAYS),
            Capture.answered_at.is_(None),
            Capture.uncaptured_at.is_(None),
        )
        .order_by(Activity.occurred_at.desc())
        .limit(10)
    ).scalars()
    return [
        ToAsk(a.id, a.subject or "(no subject)", a.occurred_at, next((p.address for p in a.participants), ""))
        for a in rows
    ]


def questions(session: Session, organization_id: int) -> list[str]:
    return notes.checklists(session, organization_id).get(CHECKLIST, [])


def _captured_meeting(session: Session, actor: User, activity_id: int) -> tuple[Activity, Capture]:
    activity = get_scoped(session, actor, Activity, activity_id, "meeting", for_update=True)
    capture = session.scalar(select(Capture).where(Capture.activity_id == activity.id))
    if activity.type != "meeting":
        raise DomainError("Only a meeting is asked about.")
    if activity.owner_id != actor.id:
        raise Forbidden("Only the rep whose meeting it is can say how it went.")
    if capture is None:
        raise DomainError("That meeting was not captured from a calendar.")
    return activity, capture


def debrief(
    session: Session, actor: User, activity_id: int, data: Mapping[str, Any], now: datetime | None = None
) -> Activity:
    """How the meeting went: its outcome, the rating, and the note with the checklist's answers."""
    now = now or utcnow()
    activity, capture = _captured_meeting(
        session, actor, activity_id
    )  # first: another's meeting is a 404 whatever was sent
    values = load(DebriefSchema, data)
    asked = questions(session, actor.organization_id)
    answered = [f"{q}: {values['answers'][q].strip()}" for q in asked if (values["answers"].get(q) or "").strip()]
    note = "\n".join([*answered, values["note"].strip()]).strip()
    changes: dict[str, Any] = {}
    if values["outcome"] != activity.outcome:
        changes["outcome"] = values["outcome"]
    if note:
        changes["body_text"] = f"{activity.body_text}\n\n{note}" if activity.body_text else note
        changes["sentiment"] = sentiment.score_with(
            sentiment.analyzer_for(session, actor.organization), "meeting", changes["body_text"]
        )
        changes["sentiment_scored_at"] = now
    before = {k: getattr(activity, k) for k in ("outcome",) if k in changes}
    if changes:
        change_counted(session, actor.organization, activity, changes)
    if values["rating"]:
        rate_activity(session, actor, activity.id, {"rating": values["rating"]})
    capture.answered_at = now
    session.flush()
    record_event(
        session, actor, "debrief", activity, before=before, after={"outcome": activity.outcome, "note": bool(note)}
    )
    return activity


# -- transcripts -----------------------------------------------------------------------------------

_CUE_TIME = re.compile(r"^\d{1,2}:?\d{2}:\d{2}[.,]\d{3}\s+-->")
_VOICE = re.compile(r"^<v(?:\.[^ >]*)?\s+([^>]+)>(.*?)(?:</v>)?$")
_NAMED = re.compile(r"^([A-Z][\w .'-]{1,60}):\s+(.+)$")


def parse_transcript(text: str) -> list[tuple[str, str]]:
    """(speaker, line) of a WebVTT transcript (Teams' ``<v Name>`` voices) or a plain one
    (``Name: line``); a line with no speaker is the previous speaker's."""
    lines: list[tuple[str, str]] = []
    speaker = ""
    for raw in text.replace("\r\n", "\n").split("\n"):
        line = raw.strip()
        if (
            not line
            or line == "WEBVTT"
            or line.startswith(("NOTE", "STYLE"))
            or _CUE_TIME.match(line)
            or line.isdigit()
        ):
            continue
        if voice := _VOICE.match(line):
            speaker, line = voice.group(1).strip(), re.sub(r"<[^>]+>", "", voice.group(2)).strip()
        elif named := _NAMED.match(line):
            speaker, line = named.group(1).strip(), named.group(2).strip()
        if line:
            lines.append((speaker, line))
    return lines


def _customer_lines(lines: list[tuple[str, str]], organization_domains: list[str], names: set[str]) -> str:
    """The lines of speakers who are not the organization's people."""
    ours = {n.lower() for n in names}
    own = set(organization_domains)
    return "\n".join(
        line for speaker, line in lines if speaker.lower() not in ours and domain_of(speaker.lower()) not in own
    )


def keep_transcript(
    session: Session,
    actor: User,
    activity: Activity,
    text: str,
    source: str,
    filename: str | None = None,
    now: datetime | None = None,
) -> Transcript:
    """The transcript kept with the meeting (a second one replaces the first), and the meeting
    scored by what the customer said in it."""
    now = now or utcnow()
    text = text.replace("\x00", "")[:MAX_TRANSCRIPT]
    lines = parse_transcript(text)
    if not lines:
        raise DomainError("That file holds no transcript: expected WebVTT (as Teams saves it) or lines of text.")
    organization = actor.organization
    names = set(session.scalars(select(User.name).where(User.organization_id == organization.id)))
    customer = _customer_lines(lines, organization.domains or [], names)
    transcript = session.scalar(select(Transcript).where(Transcript.activity_id == activity.id))
    if transcript is None:
        transcript = Transcript(organization_id=organization.id, activity_id=activity.id, source=source)
        session.add(transcript)
    transcript.source, transcript.filename, transcript.text = source, filename, text
    transcript.customer_text, transcript.created_at, transcript.created_by_id = customer or None, now, actor.id
    if customer:
        score = sentiment.score_with(sentiment.analyzer_for(session, organization), "meeting", customer)
        change_counted(session, organization, activity, {"sentiment": score, "sentiment_scored_at": now})
    session.flush()
    record_event(session, actor, "transcript", activity, after={"source": source, "lines": len(lines)})
    return transcript


def attach_transcript(
    session: Session, actor: User, activity_id: int, filename: str, content: bytes, now: datetime | None = None
) -> Transcript:
    """A transcript file the rep attaches to their meeting (any meeting of theirs, captured or logged)."""
    activity = get_scoped(session, actor, Activity, activity_id, "meeting", for_update=True)
    if activity.type != "meeting":
        raise DomainError("A transcript goes with a meeting.")
    if activity.owner_id != actor.id:
        raise Forbidden("Only the rep whose meeting it is can attach its transcript.")
    name = (filename or "").rsplit("/", 1)[-1][:255]
    if not name.lower().endswith((".vtt", ".txt")):
        raise DomainError("Attach a .vtt or .txt file.", {"file": ["A .vtt or .txt file."]})
    if len(content) > MAX_FILE:
        raise DomainError("That transcript is larger than 5 MB.", {"file": ["At most 5 MB."]})
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DomainError("That file is not UTF-8 text.", {"file": ["Not UTF-8 text."]}) from None
    return keep_transcript(session, actor, activity, text, "upload", name, now)


def transcript_of(session: Session, actor: User, activity_id: int) -> Transcript | None:
    """The meeting's transcript, for whoever may read the meeting's content."""
    activity = get_scoped(session, actor, Activity, activity_id, "meeting")
    if not session.scalar(select(Activity.id).where(Activity.id == activity.id, visible_activities(actor))):
        raise Forbidden("That meeting is not your team's.")
    if not can_read_content(actor, activity):
        raise Forbidden("That meeting is private.")
    return session.scalar(select(Transcript).where(Transcript.activity_id == activity.id))


@dataclass
class FoundLine:
    activity_id: int
    subject: str
    occurred_at: datetime
    line: str


def search_transcripts(session: Session, actor: User, text: str | None, limit: int = 20) -> list[FoundLine]:
    """Meetings whose transcript says ``text``, among those the actor may read (a private
    meeting's only for its rep), with the first line saying it."""
    query = (text or "").strip()[:200]
    if len(query) < 3:
        return []
    rows = session.execute(
        select(Activity, Transcript.text)
        .join(Transcript, Transcript.activity_id == Activity.id)
        .where(
            visible_activities(actor),
            (Activity.is_private.is_(False)) | (Activity.owner_id == actor.id),
            Transcript.text.icontains(query, autoescape=True),
        )
        .order_by(Activity.occurred_at.desc())
        .limit(limit)
    ).all()
    found = []
    for activity, body in rows:
        line = next((ln for _, ln in parse_transcript(body or "") if query.lower() in ln.lower()), "")
        found.append(FoundLine(activity.id, activity.subject or "(no subject)", activity.occurred_at, line[:300]))
    return found


def teams_meetings_waiting(session: Session, mailbox: Mailbox, now: datetime) -> list[Capture]:
    """The mailbox's captured Teams meetings held in the last two days with no transcript yet."""
    return list(
        session.scalars(
            select(Capture)
            .join(Activity, Activity.id == Capture.activity_id)
            .outerjoin(Transcript, Transcript.activity_id == Activity.id)
            .where(
                Capture.mailbox_id == mailbox.id,
                Capture.online_link.icontains("teams.microsoft.com", autoescape=True),
                Activity.outcome == "held",
                Activity.deleted_at.is_(None),
                Activity.occurred_at >= now - timedelta(days=2),
                Transcript.id.is_(None),
            )
            .limit(5)
        )
    )


def fetch_teams_transcript(
    session: Session, api: Api, graph: str, mailbox: Mailbox, capture: Capture, now: datetime
) -> bool:
    """Teams' transcript of a captured online meeting, through Graph (``onlineMeetings`` found
    by the join URL, then its ``transcripts`` and their WebVTT ``content``). Returns whether one was kept."""
    activity = session.get(Activity, capture.activity_id)
    if activity is None or not capture.online_link:
        return False
    user = f"users/{quote(mailbox.address, safe='@')}" if mailbox.grant_id else "me"
    try:
        meetings = api.get(
            f"{graph}/v1.0/{user}/onlineMeetings?$filter=JoinWebUrl eq '{quote(capture.online_link, safe='')}'"
        )
        meeting = next(
            (m for m in meetings.get("value") or [] if isinstance(m, dict) and isinstance(m.get("id"), str)), None
        )
        if meeting is None:
            return False
        listed = api.get(f"{graph}/v1.0/{user}/onlineMeetings/{quote(meeting['id'], safe='')}/transcripts")
        first = next(
            (t for t in listed.get("value") or [] if isinstance(t, dict) and isinstance(t.get("id"), str)), None
        )
        if first is None:
            return False
        vtt = api.get_text(
            f"{graph}/v1.0/{user}/onlineMeetings/{quote(meeting['id'], safe='')}/transcripts/{quote(first['id'], safe='')}/content?$format=text/vtt"
        )
    except (CursorExpired, ProviderError, ConsentRevoked):
        return False  # tried again at the next pass, for two days
    if not vtt.strip():
        return False
    try:
        keep_transcript(session, mailbox.user, activity, vtt, "teams", None, now)
    except DomainError:
        return False
    return True
