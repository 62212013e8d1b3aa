"""Note quality: how many of its type's checklist questions a note answers.

A note answers a question with a line ``Question: answer`` (the pane writes the checklist's
answers that way). The score is kept on the activity as it is written, like the rollups, so
that a year of notes is counted in SQL, not read and parsed again for every report;
``score_notes`` recomputes it for rows written straight to the store (an import).
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from services.models import Activity, NoteChecklist, Organization

SCORED_TYPES = ("call", "visit")  # the notes PRODUCT.md's note quality looks at


def checklists(session: Session, organization_id: int) -> dict[str, list[str]]:
    """The organization's note checklists: activity type → the questions its notes answer."""
    rows = session.execute(
        select(NoteChecklist.activity_type, NoteChecklist.questions).where(
            NoteChecklist.organization_id == organization_id
        )
    )
    return {kind: list(questions or []) for kind, questions in rows}


def unanswered_questions(
    questions: list[str], body_text: str | None, answers: dict[str, str] | None = None
) -> list[str]:
    """The questions neither answered in ``answers`` (the form's checklist fields) nor by a
    non-empty ``Question: answer`` line of the note: what the pane names under the note field
    as the rep writes it."""
    lines: dict[str, str] = {}
    for line in (body_text or "").splitlines():
        question, _, answer = line.partition(":")
        lines[question.strip()] = answer.strip()
    answers = answers or {}
    return [q for q in questions if not (answers.get(q) or "").strip() and not lines.get(q)]


def answered_questions(body_text: str | None, questions: list[str]) -> int:
    """How many of ``questions`` the note answers (a non-empty ``Question: answer`` line)."""
    return len(questions) - len(unanswered_questions(questions, body_text))


def checklist_left(
    session: Session, organization_id: int, activity_type: str, body_text: str | None, answers: dict[str, str]
) -> tuple[list[str], int] | None:
    """For a note being written: the type's checklist questions not yet answered, and how many
    it asks; None for a type whose notes are not scored, or that asks nothing."""
    questions = checklists(session, organization_id).get(activity_type, []) if activity_type in SCORED_TYPES else []
    return (unanswered_questions(questions, body_text, answers), len(questions)) if questions else None


def is_flagged(questions: int | None, answered: int | None) -> int:
    """1 for a note that answers none of a checklist that asked something, else 0 (the rollups
    count these, so note quality reads as fast as activity counts)."""
    return int(bool(questions) and not answered)


def score(activity_type: str, body_text: str | None, checklists: dict[str, list[str]]) -> tuple[int | None, int | None]:
    """(questions, answered) for an activity of this type; (None, None) for a type not scored."""
    if activity_type not in SCORED_TYPES:
        return None, None
    questions = checklists.get(activity_type, [])
    return len(questions), answered_questions(body_text, questions)


def score_notes(session: Session, organization: Organization) -> int:
    """Recompute the score of the organization's calls and visits; returns how many."""
    asked = checklists(session, organization.id)
    rows = session.execute(
        select(Activity.id, Activity.type, Activity.body_text)
        .where(Activity.organization_id == organization.id, Activity.type.in_(SCORED_TYPES))
        .execution_options(yield_per=10_000)
    ).all()
    changes = []
    for activity_id, kind, body in rows:
        questions, answered = score(kind, body, asked)
        changes.append({"id": activity_id, "checklist_questions": questions, "checklist_answered": answered})
    for start in range(0, len(changes), 5_000):
        session.execute(update(Activity), changes[start : start + 5_000])
    return len(changes)
