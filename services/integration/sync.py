"""Incremental sync: every change to a record other systems read gets a sequence number, and a
client reads the records changed since its cursor, in sequence order, never missing one.

Each organization keeps a counter (``Organization.change_seq``). A write transaction takes the
next number once, the first time it changes a synced record (``stamp``, from SQLAlchemy's
``before_flush``), by incrementing the counter: the counter's row stays locked until the
transaction ends, so numbers are handed out in the order transactions commit. A reader that
has seen number N has seen every commit up to N: whatever commits later carries a larger
number. (On SQLite the write lock already orders writers; on PostgreSQL the row lock does.)

Each synced record keeps the number of the transaction that last changed it (``sync_seq``,
also its version: an update based on another gets 409). A record deleted outright (a person's
erasure) leaves a ``Tombstone`` with its number; one deleted softly keeps its row with
``deleted_at`` set. A change to a child row (a contact's address, an account's domain) is a
change to its parent. What the store works out for itself (a deal's latest activity, its
stage facts, an activity's sentiment) is not a change.

Bulk statements bypass ``before_flush``: the few that change synced fields go through
``rows_changed`` (the rows' new number, and their webhook events, in the statement's own
transaction); a record deleted outright first lets go of those pointing at it (``release``:
the database's ``ON DELETE SET NULL`` would change them without a version) and leaves its
tombstone (``tombstones_for``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable

from sqlalchemy import ColumnElement, event, inspect, select, update
from sqlalchemy.orm import Session

from services.integration import webhooks
from services.change_numbers import forget_taken, next_seq
from services.integration.cursor import Cursor, rows_past
from services.models import (
    Account,
    AccountDomain,
    Activity,
    Contact,
    ContactEmail,
    ContactPhone,
    FollowUp,
    Lead,
    Opportunity,
    Organization,
    Quota,
    Tombstone,
    User,
)
from services.types import utcnow

# The records other systems sync, by the name the API gives them.
SYNCED: dict[str, type] = {
    "accounts": Account,
    "contacts": Contact,
    "leads": Lead,
    "opportunities": Opportunity,
    "activities": Activity,
    "follow_ups": FollowUp,
    "quotas": Quota,
    "users": User,
}
RECORD_TYPE = {model: name for name, model in SYNCED.items()}
# A child row's change is its parent's: the relationship to it.
PARENT = {
    ContactEmail: ("contact", Contact, "contact_id"),
    ContactPhone: ("contact", Contact, "contact_id"),
    AccountDomain: ("account", Account, "account_id"),
}
# Columns the store keeps for itself: changing them is not a change a client syncs.
KEPT = frozenset(
    {
        "sync_seq",
        "last_activity_at",
        "last_inbound_at",
        "stages_reached",
        "furthest_position",
        "ever_won",
        "sentiment",
        "sentiment_scored_at",
        "checklist_questions",
        "checklist_answered",
        "reminded_at",
        "updated_at",
        "password_hash",
        "token_version",
    }
)


def _changed(obj: Any) -> bool:
    state = inspect(obj)
    return any(
        attr.key not in KEPT and attr.history.has_changes()
        for attr in state.attrs
        if attr.key in state.mapper.column_attrs
    )


def stamp(session: Session, _context: Any, _instances: Any) -> None:
    """Number what this flush changes (``before_flush``): new and changed synced records, the
    parents of changed child rows, and tombstones for deleted records."""
    touched: set[Any] = set()
    for obj in list(session.new) + list(session.dirty) + list(session.deleted):
        if type(obj) in PARENT:
            relation, model, key = PARENT[type(obj)]
            # The parent as loaded, else by its key (a new child made with the key alone).
            parent = obj.__dict__.get(relation) or (
                session.get(model, getattr(obj, key)) if getattr(obj, key) is not None else None
            )
            if parent is not None and parent not in session.deleted:
                touched.add(parent)
        elif type(obj) in RECORD_TYPE and obj not in session.deleted and (obj in session.new or _changed(obj)):
            touched.add(obj)
    for obj in touched:
        org_id, org = obj.organization_id, getattr(obj, "organization", None)
        if org_id is None and org is not None:  # set by relationship, not yet by key
            org_id = org.id
        webhooks.changed(session, org_id, RECORD_TYPE[type(obj)], obj, created=obj in session.new)
        if (
            org_id is None and org in session.new
        ):  # made with its organization in one flush: the organization's first number
            org.change_seq = obj.sync_seq = 1
            continue
        obj.sync_seq = next_seq(session, org_id)
    for obj in session.deleted:
        if type(obj) in RECORD_TYPE:
            tombstones_for(session, obj.organization_id, RECORD_TYPE[type(obj)], [obj.id])


def tombstones_for(
    session: Session, organization_id: int, record_type: str, ids: Iterable[int], now: datetime | None = None
) -> None:
    """Tombstones for records deleted outright, in the deleting transaction (a bulk statement's,
    or a flush's), and the webhooks told."""
    ids = list(ids)
    if ids:
        seq = next_seq(session, organization_id)
        session.execute(
            Tombstone.__table__.insert(),
            [
                {
                    "organization_id": organization_id,
                    "record_type": record_type,
                    "record_id": i,
                    "sync_seq": seq,
                    "deleted_at": now or utcnow(),
                }
                for i in ids
            ],
        )
        for i in ids:
            webhooks.changed(session, organization_id, record_type, record_id=i, version=seq, deleted=True)


_CHUNK = 500  # ids per statement: well inside SQLite's bound parameters


def rows_changed(
    session: Session, organization_id: int, model: type, ids: Iterable[int], values: dict[str, Any] | None = None
) -> int:
    """A bulk change (``UPDATE`` outside the ORM's flush, which ``stamp`` never sees) told as any
    other: these rows take the transaction's number (their new version) and the webhooks their
    events; ``values``, when given, are written in the same statements. Returns how many rows."""
    ids = sorted(set(ids))
    if not ids:
        return 0
    seq = next_seq(session, organization_id)
    record_type = RECORD_TYPE[model]
    done = 0
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        done += session.execute(
            update(model)
            .where(model.organization_id == organization_id, model.id.in_(chunk))
            .values(**(values or {}), sync_seq=seq)
            .execution_options(synchronize_session=False)
        ).rowcount
    for ident in ids:
        webhooks.changed(session, organization_id, record_type, record_id=ident, version=seq)
    return done


def release(session: Session, organization_id: int, model: type, ids: Iterable[int]) -> None:
    """Before rows of ``model`` are deleted outright: the synced records that point at them
    (``ON DELETE SET NULL``) let go in statements of ours, each with a new version and its
    event, rather than by the database's cascade, which no client would ever be told of."""
    ids = list(ids)
    if not ids:
        return
    table = model.__table__
    for synced in SYNCED.values():
        for fk in synced.__table__.foreign_keys:
            if fk.column.table is table and fk.ondelete == "SET NULL":
                column = fk.parent
                holders = [
                    i
                    for start in range(0, len(ids), _CHUNK)
                    for i in session.scalars(
                        select(synced.id).where(
                            synced.organization_id == organization_id, column.in_(ids[start : start + _CHUNK])
                        )
                    )
                ]
                rows_changed(session, organization_id, synced, holders, {column.key: None})


def install(session_class: type[Session] = Session) -> None:
    """Number every change made through sessions of this class (the app's and the commands')."""
    if not event.contains(session_class, "before_flush", stamp):
        event.listen(session_class, "before_flush", stamp)
        for name in ("after_commit", "after_rollback", "after_soft_rollback"):
            event.listen(session_class, name, forget_taken)
    webhooks.install(session_class)


# -- reading changes ------------------------------------------------------------------------------


@dataclass
class Page:
    records: list[Any]  # ORM records, deleted ones (soft) included
    tombstones: list[Tombstone]
    cursor: Cursor  # pass it back for what changed after
    more: bool  # more changes wait past this page


def changes(
    session: Session,
    organization_id: int,
    record_type: str,
    cursor: Cursor,
    limit: int,
    where: ColumnElement[bool] | None = None,
    options: Iterable[Any] = (),
    plain: bool = False,
) -> Page:
    """The records of this type changed after ``cursor`` (all of them from the start), with the
    tombstones of those deleted outright, ``limit`` at most, in (sequence, id) order: the next
    cursor is the last one's place. ``options``: what to load with the records; ``plain``: rows
    of the table's columns rather than ORM records (a sync of a million activities reads them
    once, and never changes them)."""
    model = SYNCED[record_type]
    query = (select(*model.__table__.c) if plain else select(model).options(*options)).where(
        model.organization_id == organization_id
    )
    if where is not None:
        query = query.where(where)
    records = rows_past(session, query, model.sync_seq, model.id, cursor, limit + 1, plain)
    stones = rows_past(
        session,
        select(Tombstone).where(Tombstone.organization_id == organization_id, Tombstone.record_type == record_type),
        Tombstone.sync_seq,
        Tombstone.record_id,
        cursor,
        limit + 1,
    )
    # Merged in order, cut at the limit.
    merged = sorted(
        [((r.sync_seq, r.id), r) for r in records] + [((t.sync_seq, t.record_id), t) for t in stones],
        key=lambda p: p[0],
    )
    more = len(merged) > limit
    merged = merged[:limit]
    last = merged[-1][0] if merged else (cursor.seq, cursor.id)
    return Page(
        [r for _, r in merged if not isinstance(r, Tombstone)],
        [r for _, r in merged if isinstance(r, Tombstone)],
        Cursor(*last),
        more,
    )


def latest_cursor(session: Session, organization_id: int) -> Cursor:
    """A cursor past everything committed so far: for a client that wants only what changes next."""
    seq = session.scalar(select(Organization.change_seq).where(Organization.id == organization_id)) or 0
    return Cursor(seq, 2**62)
