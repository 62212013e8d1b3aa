"""The admin's view of the organization: its people and teams, and its pipeline."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from services.access import require_role
from services.deals import pipeline_stages
from services.models import Stage, User


@dataclass
class OrganizationOverview:
    name: str
    time_zone: str
    currency: str
    people: list[User]
    stages: list[Stage]


def organization_overview(session: Session, actor: User) -> OrganizationOverview:
    require_role(actor, "admin")
    people = session.scalars(
        select(User)
        .where(User.organization_id == actor.organization_id)
        .options(selectinload(User.team))
        .order_by(User.name)
    ).all()
    org = actor.organization
    return OrganizationOverview(org.name, org.time_zone, org.currency, list(people), pipeline_stages(session, org.id))
