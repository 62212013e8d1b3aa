"""People and how they sign in.

Local passwords are the embedded default's way in. Token sign-in (Office SSO, Google) is a
second way: it resolves an identity provider's subject to a user through ``UserIdentity``
(``user_for_identity``), and everything after that is the same ``User``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from typing import Iterable

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session, joinedload
from werkzeug.security import check_password_hash, generate_password_hash

from services.models import User, UserIdentity
from services.mail.text import normalise_address


@dataclass(frozen=True)
class Person:
    """Someone a view lists, as a plain row rather than an ORM object (a report covers hundreds):
    a name (``told_apart`` adds the e-mail where two share one), their e-mail, and what
    ``services.access.can_edit`` decides by."""

    id: int
    name: str
    organization_id: int
    team_id: int | None
    email: str = ""
    active: bool = True  # a deactivated person's past work still counts; they are never "slipping"


# The people of an organization, as ``Person`` rows (the query narrowed by the caller).
PEOPLE = select(User.id, User.name, User.organization_id, User.team_id, User.email, User.is_active).where(
    User.organization_id == bindparam("org")
)


def told_apart(people: Iterable[Person]) -> list[Person]:
    """The people as listed, those who share a name with another named with their e-mail too
    ("Olga Adams (olga.adams2@northwind.example)"): every table and CSV of them tells them apart."""
    people = list(people)
    seen = Counter(person.name.casefold() for person in people)
    return [
        replace(person, name=f"{person.name} ({person.email})")
        if seen[person.name.casefold()] > 1 and person.email
        else person
        for person in people
    ]


# A real hash to compare against when the user does not exist, so that a wrong address
# costs as long as a wrong password and does not reveal who has an account.
_DUMMY_HASH = generate_password_hash("not a password")


def hash_password(password: str) -> str:
    return generate_password_hash(password)


def authenticate(session: Session, email: str, password: str) -> User | None:
    user = session.scalar(select(User).where(User.email == normalise_address(email or "")))
    if user is None or not user.password_hash:
        check_password_hash(_DUMMY_HASH, password or "")
        return None
    if not check_password_hash(user.password_hash, password or "") or not user.is_active:
        return None
    return user


def active_user(session: Session, user_id: int) -> User | None:
    # With the organization in the same statement: every signed-in request reads it next.
    user = session.get(User, user_id, options=[joinedload(User.organization)])
    return user if user is not None and user.is_active else None


def user_for_identity(session: Session, provider: str, issuer: str, subject: str) -> User | None:
    return session.scalar(
        select(User)
        .join(UserIdentity, UserIdentity.user_id == User.id)
        .where(
            UserIdentity.provider == provider,
            UserIdentity.issuer == issuer,
            UserIdentity.subject == subject,
            User.is_active,
        )
        .options(joinedload(User.organization))  # every caller reads the organization next
    )


def sign_in_choices(session: Session, signed_in: User | None = None) -> list[User]:
    """The embedded default's sign-in picker: active users, admins and managers first; once
    signed in, only the people of one's own organization."""
    order = {"admin": 0, "manager": 1, "rep": 2}
    query = select(User).where(User.is_active).order_by(User.name)
    if signed_in is not None:
        query = query.where(User.organization_id == signed_in.organization_id)
    users = session.scalars(query).all()
    return sorted(users, key=lambda u: (u.organization_id, order[u.role], u.name))
