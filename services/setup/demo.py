"""A believable demo organization, built deterministically from a seed.

The same seed, scale and anchor day give the same rows, id for id. The benchmark reuses this
generator at 30x and more, so rows go in as bulk ``INSERT``s of plain dictionaries (with ids
assigned here, so that links need no round trip), never one ORM object at a time.

What the data is made to show: two teams with a manager each, reps with their own rhythm
and a weekday pattern, deals over two years with stage history, won and lost with reasons,
a couple of reps slipping in the last week, deals going dark, stale deals, leads from every
source, quotas, checklists and follow-ups.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any, Iterator
from zoneinfo import ZoneInfo

from sqlalchemy import Table, func, select, text
from sqlalchemy.orm import Session

from services import notes
from services.errors import DomainError
from services.models import (
    Account,
    AccountDomain,
    Activity,
    ActivityMonthRollup,
    ActivityRollup,
    ActivityDayTotal,
    ActivityYearRollup,
    Contact,
    ContactEmail,
    ContactPhone,
    FollowUp,
    Lead,
    NoteChecklist,
    Opportunity,
    Organization,
    Quota,
    Stage,
    StageChange,
    Team,
    User,
)
from services import health, latest, sentiment
from services.deals import recompute_stage_facts
from services.rollups import RollupCounter
from services.users import hash_password
from services.models import Base

DEMO_PASSWORD = "demo"
CHUNK = 5_000
ORG_DOMAIN = "northwind.example"
ZONE = "America/New_York"
FISCAL_MONTH = 4  # the demo's fiscal year starts in April

STAGES = [
    ("Qualify", "0.10", 14),
    ("Discovery", "0.25", 21),
    ("Proposal", "0.45", 21),
    ("Negotiation", "0.70", 14),
    ("Commit", "0.90", 10),
]
LOSS_REASONS = ["Price", "Chose competitor", "No budget", "No decision", "Timing", "Missing feature"]
LEAD_SOURCES = ["web_form", "email", "phone", "whatsapp", "referral", "event", "partner"]
FIRST = [
    "Anna",
    "Ben",
    "Carla",
    "David",
    "Elena",
    "Farid",
    "Grace",
    "Hugo",
    "Ines",
    "Jonas",
    "Kira",
    "Luis",
    "Maya",
    "Nils",
    "Olga",
    "Pablo",
    "Quinn",
    "Rosa",
    "Sven",
    "Tara",
    "Umar",
    "Vera",
    "Wes",
    "Xenia",
    "Yusuf",
    "Zoe",
]
LAST = [
    "Adams",
    "Berger",
    "Costa",
    "Dietrich",
    "Evans",
    "Fischer",
    "Garcia",
    "Hansen",
    "Ito",
    "Jensen",
    "Klein",
    "Lopez",
    "Meyer",
    "Nowak",
    "Olsen",
    "Peters",
    "Quist",
    "Rossi",
    "Schmidt",
    "Tanaka",
    "Urban",
    "Vogel",
    "Weber",
    "Young",
]
COMPANY_A = [
    "Blue",
    "Iron",
    "Swift",
    "North",
    "Green",
    "Atlas",
    "Summit",
    "River",
    "Cedar",
    "Granite",
    "Harbor",
    "Pioneer",
    "Silver",
    "Union",
    "Apex",
    "Prairie",
    "Coastal",
    "Metro",
    "Eagle",
    "Keystone",
]
COMPANY_B = [
    "Freight",
    "Foods",
    "Logistics",
    "Builders",
    "Retail",
    "Farms",
    "Pharma",
    "Motors",
    "Textiles",
    "Energy",
    "Paper",
    "Steel",
    "Beverages",
    "Plastics",
    "Supply",
    "Hardware",
]
CITIES = ["Boston", "Chicago", "Denver", "Austin", "Seattle", "Atlanta", "Phoenix", "Miami", "Detroit", "Portland"]
CHECKLISTS = {
    "call": ["Truck size", "Lanes used", "Decision maker"],
    "visit": ["Fleet size", "Current carrier", "Next step"],
    "meeting": ["Attendees", "Budget", "Next step"],
}
SUBJECTS = [
    "Quote for {lane} lane",
    "Re: delivery schedule",
    "Pricing for Q{q}",
    "Follow-up on our call",
    "Contract draft",
    "Re: pallet volumes",
    "Meeting next week?",
    "Invoice question",
    "New lanes from {city}",
    "Re: proposal",
]
PHRASES = [
    "Thanks for the quick reply.",
    "Can you send the updated rates?",
    "We are reviewing the proposal internally.",
    "The volumes look good for next quarter.",
    "Our CFO wants a lower price.",
    "Happy with the service so far.",
    "There was a delay on the last shipment.",
    "Let's talk on Thursday.",
    "We need reefer trucks for two lanes.",
    "Please loop in our procurement team.",
]
# What the customer writes, and what the rep notes, as a deal cools (``_Builder.cooling_deals``):
# the warmest first, a step cooler every few days over its last three weeks.
COOLING_MAIL = [
    "Thanks, this looks good so far.",
    "We still have some questions about the rates.",
    "Honestly we are disappointed with the delays.",
    "This is not acceptable. We are unhappy and considering other carriers.",
]
COOLING_NOTES = [
    "Good call, they like the lanes.",
    "Interested, but the price worries them.",
    "They sounded frustrated about the late deliveries.",
    "Angry call: they threatened to cancel the pilot.",
]
COOLING_DAYS = 21
NOTES = [
    "Discussed volumes for next quarter.",
    "Customer worried about delivery times.",
    "Good meeting, strong interest.",
    "Needs approval from head office.",
    "Competitor offered a lower rate.",
    "Asked for references.",
]
# Relative weight of a weekday (Monday first) in a rep's week.
WEEKDAY_WEIGHT = [1.1, 1.2, 1.15, 1.05, 0.7, 0.06, 0.02]
ACTIVITY_MIX = [("email", 44), ("call", 32), ("meeting", 9), ("visit", 4), ("note", 8), ("task", 3)]


@dataclass
class DemoSummary:
    organization_id: int
    counts: dict[str, int]


class BulkWriter:
    """Writes the demo's rows as a bulk load does: plain dictionaries, in batches of ``CHUNK``
    through each table's insert (no ORM objects: a scale-30 demo is about two million rows),
    with the ids handed out here, continuing after whatever the tables already hold, and how
    many rows went into each table."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.next: dict[str, int] = {}
        self.counts: dict[str, int] = {}

    def take(self, table: Table) -> int:
        if table.name not in self.next:
            self.next[table.name] = (self.session.scalar(select(func.max(table.c.id))) or 0) + 1
        value = self.next[table.name]
        self.next[table.name] += 1
        return value

    def insert(self, model: type, rows: list[dict[str, Any]] | Iterator[dict[str, Any]]) -> None:
        table = model.__table__  # type: ignore[attr-defined]
        batch: list[dict[str, Any]] = []
        for row in rows:
            batch.append(row)
            if len(batch) >= CHUNK:
                self._write(table, batch)
                batch = []
        if batch:
            self._write(table, batch)

    def _write(self, table: Table, batch: list[dict[str, Any]]) -> None:
        self.session.execute(table.insert(), batch)
        self.counts[table.name] = self.counts.get(table.name, 0) + len(batch)


# What each step of the build hands the steps after it.


@dataclass
class Staff:
    teams: list[int]  # ids
    reps: list[dict[str, Any]]  # their rows, with the demo's own "pace" and "slipping"


@dataclass
class Book:
    rep_accounts: dict[int, list[int]]  # rep id → the accounts they own
    account_contacts: dict[int, list[int]]  # account id → its contacts


@dataclass
class DealBook:
    by_account: dict[int, list[tuple[int, datetime, datetime | None]]]  # account id → (deal id, created, closed)
    dark: set[int]  # open deals whose customer went quiet
    cooling: set[int]  # open deals whose customer's words cool over the last weeks


def has_data(session: Session) -> bool:
    return bool(session.scalar(select(func.count(Organization.id))))


def build_demo(
    session: Session, *, seed: int = 7, scale: float = 1.0, today: date | None = None, now: datetime | None = None
) -> DemoSummary:
    """The demo organization around ``today`` (the organization's local date of ``now`` by
    default). Nothing it writes happens later than ``now``, the moment it is built: the demo
    day ends at noon, or earlier when it is built in the morning."""
    if scale <= 0 or scale > 1000:
        raise DomainError("Scale must be above 0 and at most 1000.")
    if has_data(session):
        raise DomainError("The database already holds data: demo data goes into an empty one.")
    now = now or datetime.now(timezone.utc)
    return _Builder(session, random.Random(seed), scale, today or now.astimezone(ZoneInfo(ZONE)).date(), now).build()


class _Builder:
    def __init__(self, session: Session, rng: random.Random, scale: float, today: date, built_at: datetime) -> None:
        self.s, self.rng, self.scale, self.today = session, rng, scale, today
        self.writer = BulkWriter(session)
        self.zone = ZoneInfo(ZONE)
        self.start = today - timedelta(days=730)
        self.now = min(datetime.combine(today, time(12), tzinfo=self.zone).astimezone(timezone.utc), built_at)
        self.rollups = RollupCounter(ZONE, FISCAL_MONTH)
        self.scores: dict[str | None, float | None] = {}

    def n(self, base: float, minimum: int = 1) -> int:
        return max(minimum, round(base * self.scale))

    def at(self, day: date, hour: float) -> datetime:
        local = datetime.combine(day, time(int(hour), int((hour % 1) * 60)), tzinfo=self.zone)
        return local.astimezone(timezone.utc)

    # -- the organization and its people ------------------------------------------------------

    def build(self) -> DemoSummary:
        self.org_id = self.writer.take(Organization.__table__)
        self.writer.insert(
            Organization,
            [
                {
                    "id": self.org_id,
                    "name": "Northwind Freight",
                    "time_zone": ZONE,
                    "fiscal_year_start_month": FISCAL_MONTH,
                    "currency": "USD",
                    "domains": [ORG_DOMAIN],
                    "settings": {},
                    "created_at": self.at(self.start, 9),
                }
            ],
        )
        self.stage_ids = []
        stage_rows = []
        for position, (name, probability, sla) in enumerate(STAGES, start=1):
            stage_id = self.writer.take(Stage.__table__)
            self.stage_ids.append(stage_id)
            stage_rows.append(
                {
                    "id": stage_id,
                    "organization_id": self.org_id,
                    "name": name,
                    "position": position,
                    "probability": Decimal(probability),
                    "sla_days": sla,
                }
            )
        self.writer.insert(Stage, stage_rows)
        self.writer.insert(
            NoteChecklist,
            [
                {
                    "id": self.writer.take(NoteChecklist.__table__),
                    "organization_id": self.org_id,
                    "activity_type": t,
                    "questions": q,
                }
                for t, q in CHECKLISTS.items()
            ],
        )
        self.staff = self.people()
        self.book = self.accounts_and_contacts()
        self.deal_book = self.deals()
        self.activities()
        self.leads()
        self.follow_ups()
        self.quotas()
        self.writer.insert(ActivityRollup, self.rollups.rows(self.org_id, "day"))
        self.writer.insert(ActivityMonthRollup, self.rollups.rows(self.org_id, "month"))
        self.writer.insert(ActivityYearRollup, self.rollups.rows(self.org_id, "year"))
        self.writer.insert(ActivityDayTotal, self.rollups.rows(self.org_id, "owner_day"))
        self.s.flush()
        latest.recompute(self.s, self.org_id)
        recompute_stage_facts(self.s, self.org_id)
        # Deal health as the daily job would have kept it over the last two weeks.
        organization = self.s.get(Organization, self.org_id)
        for days in range(health.WINDOW_DAYS, -1, -1):
            health.snapshot(self.s, organization, self.now - timedelta(days=days))
        reset_sequences(self.s)
        # A bulk load leaves the planner without statistics: on SQLite, with none, it picks an
        # index by its name's order and walks a whole organization for one lead's first call.
        self.s.execute(text("ANALYZE"))
        return DemoSummary(self.org_id, dict(self.writer.counts))

    def people(self) -> Staff:
        password = hash_password(DEMO_PASSWORD)
        team_count = self.n(2, 2)
        reps_per_team = max(1, round(self.n(12, 2) / team_count))
        team_ids: list[int] = []
        reps: list[dict[str, Any]] = []
        users: list[dict[str, Any]] = []
        teams = []
        used: set[str] = set()

        def person(name: str, role: str, team_id: int | None) -> dict[str, Any]:
            local = re.sub(r"[^a-z]+", ".", name.lower()).strip(".")
            email, k = f"{local}@{ORG_DOMAIN}", 1
            while email in used:
                k += 1
                email = f"{local}{k}@{ORG_DOMAIN}"
            used.add(email)
            return {
                "id": self.writer.take(User.__table__),
                "organization_id": self.org_id,
                "team_id": team_id,
                "email": email,
                "name": name,
                "role": role,
                "password_hash": password,
                "is_active": True,
                "created_at": self.at(self.start, 9),
            }

        users.append(person("Ada Admin", "admin", None))
        for t in range(team_count):
            team_id = self.writer.take(Team.__table__)
            team_ids.append(team_id)
            teams.append(
                {
                    "id": team_id,
                    "organization_id": self.org_id,
                    "name": ["East", "West"][t] if t < 2 else f"Team {t + 1}",
                }
            )
            users.append(
                person(["Maria Manager", "Mark Manager"][t] if t < 2 else f"Manager {t + 1}", "manager", team_id)
            )
            for _ in range(reps_per_team):
                rep = person(f"{self.rng.choice(FIRST)} {self.rng.choice(LAST)}", "rep", team_id)
                rep["pace"] = self.rng.uniform(0.7, 1.3)
                reps.append(rep)
                users.append(rep)
        # A few reps slip in the last week: the drawdown alert should find them.
        for rep in self.rng.sample(reps, k=max(1, len(reps) // 6)):
            rep["slipping"] = True
        self.writer.insert(Team, teams)
        self.writer.insert(User, [{k: v for k, v in u.items() if k not in ("pace", "slipping")} for u in users])
        return Staff(team_ids, reps)

    def accounts_and_contacts(self) -> Book:
        accounts, domains, contacts, emails, phones = [], [], [], [], []
        account_contacts: dict[int, list[int]] = {}
        rep_accounts: dict[int, list[int]] = {rep["id"]: [] for rep in self.staff.reps}
        used_domains: set[str] = set()
        used_names: set[str] = set()
        headquarters: list[tuple[int, str, int]] = []
        for i in range(self.n(300, 4)):
            owner = self.staff.reps[i % len(self.staff.reps)]["id"]
            account_id = self.writer.take(Account.__table__)
            parent = None
            if headquarters and self.rng.random() < 0.18:
                parent = self.rng.choice(headquarters)
                city = self.rng.choice(CITIES)
                name, slug = f"{parent[1]} {city}", f"{city.lower()}.{parent[2]}"
            else:
                name = f"{self.rng.choice(COMPANY_A)} {self.rng.choice(COMPANY_B)}"
                while name in used_names:
                    name = f"{name} {self.rng.choice(['Co', 'Group', 'Inc', 'Partners', 'and Sons'])}"
                slug = re.sub(r"[^a-z]+", "-", name.lower()).strip("-")
            used_names.add(name)
            domain = f"{slug}.example"
            while domain in used_domains:
                domain = f"{slug}{self.rng.randint(2, 999)}.example"
            used_domains.add(domain)
            if parent is None:
                headquarters.append((account_id, name, domain.removesuffix(".example")))
            accounts.append(
                {
                    "id": account_id,
                    "organization_id": self.org_id,
                    "name": name,
                    "parent_id": parent[0] if parent else None,
                    "owner_id": owner,
                    "city": self.rng.choice(CITIES),
                    "created_at": self.at(self.start, 10),
                }
            )
            domains.append(
                {
                    "id": self.writer.take(AccountDomain.__table__),
                    "organization_id": self.org_id,
                    "account_id": account_id,
                    "domain": domain,
                }
            )
            rep_accounts[owner].append(account_id)
            account_contacts[account_id] = []
            local_used: set[str] = set()
            for _ in range(self.rng.randint(2, 8)):
                first, last = self.rng.choice(FIRST), self.rng.choice(LAST)
                local = f"{first}.{last}".lower()
                while local in local_used:
                    local = f"{local}{self.rng.randint(2, 99)}"
                local_used.add(local)
                contact_id = self.writer.take(Contact.__table__)
                account_contacts[account_id].append(contact_id)
                contacts.append(
                    {
                        "id": contact_id,
                        "organization_id": self.org_id,
                        "account_id": account_id,
                        "owner_id": owner,
                        "name": f"{first} {last}",
                        "title": self.rng.choice(["Buyer", "Logistics Manager", "COO", "Procurement", None]),
                        "created_at": self.at(self.start, 10),
                    }
                )
                emails.append(
                    {
                        "id": self.writer.take(ContactEmail.__table__),
                        "organization_id": self.org_id,
                        "contact_id": contact_id,
                        "address": f"{local}@{domain}",
                    }
                )
                if self.rng.random() < 0.6:
                    phones.append(
                        {
                            "id": self.writer.take(ContactPhone.__table__),
                            "organization_id": self.org_id,
                            "contact_id": contact_id,
                            "number": f"+1 555 {self.rng.randint(1000000, 9999999)}",
                            "kind": "work",
                        }
                    )
        self.writer.insert(Account, accounts)
        self.writer.insert(AccountDomain, domains)
        self.writer.insert(Contact, contacts)
        self.writer.insert(ContactEmail, emails)
        self.writer.insert(ContactPhone, phones)
        return Book(rep_accounts, account_contacts)

    # -- deals with their history -------------------------------------------------------------

    def deals(self) -> DealBook:
        rows, changes = [], []
        by_account: dict[int, list[tuple[int, datetime, datetime | None]]] = {}
        dark: set[int] = set()
        cooling: set[int] = set()
        for _ in range(self.n(600, 3)):
            rep = self.rng.choice(self.staff.reps)
            accounts = self.book.rep_accounts[rep["id"]] or [a for v in self.book.rep_accounts.values() for a in v]
            account_id = self.rng.choice(accounts)
            deal_id = self.writer.take(Opportunity.__table__)
            created_day = self.start + timedelta(days=self.rng.randint(0, 725))
            created = self.at(created_day, self.rng.uniform(8, 18))
            stage_index = 0
            moments = [(created, None, 0, None, "open")]
            when = created
            age = (self.today - created_day).days
            outcome = "open"
            if age > 150 or self.rng.random() < min(0.8, age / 200):
                outcome = "won" if self.rng.random() < 0.42 else "lost"
            moves = self.rng.randint(0, len(STAGES) - 1) if outcome != "won" else self.rng.randint(2, len(STAGES) - 1)
            for _ in range(moves):
                step = when + timedelta(days=self.rng.randint(3, 28), hours=self.rng.randint(0, 8))
                if step >= self.now - timedelta(days=1):
                    break
                moments.append((step, stage_index, stage_index + 1, "open", "open"))
                stage_index += 1
                when = step
            closed_at = None
            if outcome != "open":
                closing = when + timedelta(days=self.rng.randint(2, 30))
                if closing < self.now - timedelta(hours=1):
                    closed_at = closing
                    moments.append((closing, stage_index, stage_index, "open", outcome))
                else:
                    outcome = "open"
            amount = Decimal(self.rng.randrange(2_000, 250_000, 500))
            rows.append(
                {
                    "id": deal_id,
                    "organization_id": self.org_id,
                    "name": f"{self.rng.choice(['Dry van', 'Reefer', 'Flatbed', 'LTL', 'Warehousing'])} contract",
                    "account_id": account_id,
                    "contact_id": self.rng.choice(self.book.account_contacts[account_id]),
                    "owner_id": rep["id"],
                    "amount": amount,
                    "currency": "USD",
                    "expected_close_date": (when + timedelta(days=self.rng.randint(10, 90))).date(),
                    "source": self.rng.choice(LEAD_SOURCES),
                    "stage_id": self.stage_ids[stage_index],
                    "status": outcome,
                    "loss_reason": self.rng.choice(LOSS_REASONS) if outcome == "lost" else None,
                    "closed_at": closed_at,
                    "stage_entered_at": when,
                    "created_at": created,
                }
            )
            for changed_at, from_index, to_index, from_status, to_status in moments:
                changes.append(
                    {
                        "id": self.writer.take(StageChange.__table__),
                        "organization_id": self.org_id,
                        "opportunity_id": deal_id,
                        "from_stage_id": self.stage_ids[from_index] if from_index is not None else None,
                        "to_stage_id": self.stage_ids[to_index],
                        "from_status": from_status,
                        "to_status": to_status,
                        "changed_at": changed_at,
                        "changed_by_id": rep["id"],
                    }
                )
            by_account.setdefault(account_id, []).append((deal_id, created, closed_at))
            if outcome == "open" and self.rng.random() < 0.25:
                dark.add(deal_id)
            elif outcome == "open" and deal_id % 5 == 0:  # no draw: the rest of the demo stays as it was
                cooling.add(deal_id)
        self.writer.insert(Opportunity, rows)
        self.writer.insert(StageChange, changes)
        return DealBook(by_account, dark, cooling)

    # -- activities ---------------------------------------------------------------------------

    def activities(self) -> None:
        self.writer.insert(Activity, self._counted(self._activity_rows()))

    def _counted(self, rows: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        """Pass rows through, counting them into the daily rollups as they go by."""
        for row in rows:
            self.rollups.add(
                row["owner_id"],
                row["occurred_at"],
                row["type"],
                row["direction"],
                row["outcome"],
                row["duration_minutes"],
                row["checklist_questions"],
                row["checklist_answered"],
            )
            yield row

    def _activity_rows(self) -> Iterator[dict[str, Any]]:
        per_day = 60_000 / (12 * 520)  # the base scale's ~60,000 activities for 12 reps over two years
        types = [t for t, _ in ACTIVITY_MIX]
        weights = [w for _, w in ACTIVITY_MIX]
        dark_since = self.now - timedelta(days=35)
        all_accounts = [a for v in self.book.rep_accounts.values() for a in v]
        for rep in self.staff.reps:
            accounts = self.book.rep_accounts[rep["id"]] or all_accounts
            day = self.start
            while day <= self.today:
                rate = per_day * rep["pace"] * WEEKDAY_WEIGHT[day.weekday()]
                if rep.get("slipping") and (self.today - day).days < 7:
                    rate *= 0.3
                count = int(rate) + (1 if self.rng.random() < rate % 1 else 0)
                for _ in range(count):
                    row = self._activity(rep, day, accounts, types, weights, dark_since)
                    if row is not None:
                        yield row
                day += timedelta(days=1)

    def _activity(
        self,
        rep: dict[str, Any],
        day: date,
        accounts: list[int],
        types: list[str],
        weights: list[int],
        dark_since: datetime,
    ) -> dict[str, Any] | None:
        rng = self.rng
        occurred = self.at(day, rng.uniform(7.5, 18.5))
        if occurred > self.now:
            return None
        account_id = rng.choice(accounts)
        contact_id = rng.choice(self.book.account_contacts[account_id])
        deal_id = next(
            (
                d
                for d, created, closed in self.deal_book.by_account.get(account_id, ())
                if created <= occurred and (closed is None or occurred <= closed)
            ),
            None,
        )
        kind = rng.choices(types, weights)[0]
        direction, outcome, duration, subject, body = "outbound", None, None, None, None
        if kind == "email":
            direction = "inbound" if rng.random() < 0.45 else "outbound"
            subject = rng.choice(SUBJECTS).format(lane=rng.choice(CITIES), q=rng.randint(1, 4), city=rng.choice(CITIES))
            body = " ".join(rng.sample(PHRASES, 2))
        elif kind == "call":
            direction = "inbound" if rng.random() < 0.15 else "outbound"
            outcome = rng.choices(["connected", "no_answer", "voicemail", "busy"], [50, 25, 20, 5])[0]
            duration = rng.randint(2, 35) if outcome == "connected" else rng.randint(0, 2)
            if outcome == "connected" and rng.random() < 0.7:
                body = "\n".join(
                    f"{q}: {rng.choice(['yes', '26 ft', 'Boston-Chicago', 'CFO', 'pending'])}"
                    for q in CHECKLISTS["call"]
                    if rng.random() < 0.7
                )
        elif kind in ("meeting", "visit"):
            outcome = rng.choices(["held", "no_show", "rescheduled"], [85, 8, 7])[0]
            duration = rng.choice([30, 45, 60, 90]) if outcome == "held" else 0
            subject = f"{kind.title()} with {rng.choice(['buyer', 'operations', 'management'])}"
            body = rng.choice(NOTES) if rng.random() < 0.8 else None
        elif kind == "note":
            direction, body = "internal", rng.choice(NOTES)
        else:
            direction, subject = "internal", "Send revised quote"
        if deal_id in self.deal_book.dark and occurred >= dark_since:
            # Going dark: the customer stopped answering.
            if kind == "email":
                direction = "outbound"
            elif kind == "call":
                outcome, duration = "no_answer", 0
            elif kind in ("meeting", "visit"):
                outcome, duration = "no_show", 0
        if (
            deal_id in self.deal_book.cooling
            and occurred >= self.now - timedelta(days=COOLING_DAYS)
            and body is not None
        ):
            # Cooling: each week a step cooler (the same draws, other words).
            step = min(3, int((occurred - (self.now - timedelta(days=COOLING_DAYS))).days // (COOLING_DAYS / 4)))
            body = (COOLING_MAIL if kind == "email" else COOLING_NOTES)[step]
        activity_id = self.writer.take(Activity.__table__)
        return {
            **self._scored(kind, direction, body, occurred),
            "id": activity_id,
            "organization_id": self.org_id,
            "type": kind,
            "direction": direction,
            "occurred_at": occurred,
            "duration_minutes": duration,
            "outcome": outcome,
            "subject": subject,
            "body_text": body,
            "body_html": None,
            "contact_id": contact_id,
            "account_id": account_id,
            "opportunity_id": deal_id,
            "lead_id": None,
            "owner_id": rep["id"],
            "source": "outlook" if kind == "email" else "web",
            "external_id": f"<demo-{activity_id}@mail.example>" if kind == "email" else None,
            "rating": None,
            "is_private": False,
            "created_at": occurred,
            "updated_at": occurred,
            **self._note_score(kind, body),
            "deleted_at": None,
        }

    def _scored(self, kind: str, direction: str, body: str | None, occurred: datetime) -> dict[str, Any]:
        """The activity's sentiment as logging would have worked it out (the demo's few texts
        each scored once)."""
        if not sentiment.is_scored(kind, direction):
            return {"sentiment": None, "sentiment_scored_at": None}
        if body not in self.scores:
            self.scores[body] = sentiment.score_with(sentiment.analyzer_with({}), kind, body)
        return {"sentiment": self.scores[body], "sentiment_scored_at": occurred}

    @staticmethod
    def _note_score(kind: str, body: str | None) -> dict[str, int | None]:
        questions, answered = notes.score(kind, body, CHECKLISTS)
        return {"checklist_questions": questions, "checklist_answered": answered}

    # -- leads, follow-ups, quotas ------------------------------------------------------------

    def leads(self) -> None:
        leads, responses = [], []
        for i in range(self.n(400, 2)):
            rep = self.rng.choice(self.staff.reps)
            created_day = self.start + timedelta(days=self.rng.randint(0, 729))
            created = self.at(created_day, self.rng.uniform(0, 23.9))
            if created > self.now:
                created = self.now - timedelta(hours=3)
            status = self.rng.choices(["new", "working", "qualified", "disqualified"], [10, 20, 35, 35])[0]
            converted = created + timedelta(days=self.rng.randint(2, 40)) if status == "qualified" else None
            if converted is not None and converted > self.now:
                status, converted = "working", None  # it converts later than the moment the demo is built
            lead_id = self.writer.take(Lead.__table__)
            first, last = self.rng.choice(FIRST), self.rng.choice(LAST)
            leads.append(
                {
                    "id": lead_id,
                    "organization_id": self.org_id,
                    "name": f"{first} {last}",
                    "email": f"{first}.{last}{i}@lead-{i}.example".lower(),
                    "phone": None,
                    "company": f"{self.rng.choice(COMPANY_A)} Prospects",
                    "source": self.rng.choice(LEAD_SOURCES),
                    "owner_id": rep["id"],
                    "status": status,
                    "disqualify_reason": self.rng.choice(["No budget", "Out of area", "Student", "Spam"])
                    if status == "disqualified"
                    else None,
                    "converted_at": converted,
                    "converted_opportunity_id": None,
                    "created_at": created,
                    "deleted_at": None,
                }
            )
            if status != "new":
                answered = created + timedelta(hours=self.rng.expovariate(1 / 20))
                if answered < self.now:
                    responses.append(
                        {
                            "id": self.writer.take(Activity.__table__),
                            "organization_id": self.org_id,
                            "type": "call",
                            "direction": "outbound",
                            "occurred_at": answered,
                            "duration_minutes": self.rng.randint(1, 15),
                            "outcome": "connected",
                            "subject": "First call",
                            "body_text": None,
                            "body_html": None,
                            "contact_id": None,
                            "account_id": None,
                            "opportunity_id": None,
                            "lead_id": lead_id,
                            "owner_id": rep["id"],
                            "source": "web",
                            "external_id": None,
                            "rating": None,
                            "is_private": False,
                            "created_at": answered,
                            "updated_at": answered,
                            **self._scored("call", "outbound", None, answered),
                            **self._note_score("call", None),
                            "deleted_at": None,
                        }
                    )
        self.writer.insert(Lead, leads)
        self.writer.insert(Activity, self._counted(iter(responses)))

    def follow_ups(self) -> None:
        rows = []
        open_deals = [
            (d, a) for a, deals in self.deal_book.by_account.items() for d, _, closed in deals if closed is None
        ]
        for deal_id, account_id in open_deals:
            if deal_id in self.deal_book.dark or self.rng.random() < 0.4:
                continue
            owner = next(r["id"] for r in self.staff.reps if account_id in self.book.rep_accounts[r["id"]])
            due = self.now + timedelta(days=self.rng.randint(-5, 14), hours=self.rng.randint(0, 6))
            rows.append(
                {
                    "id": self.writer.take(FollowUp.__table__),
                    "organization_id": self.org_id,
                    "title": self.rng.choice(
                        ["Call back about pricing", "Send the contract", "Check volumes", "Book a site visit"]
                    ),
                    "due_at": due,
                    "done_at": None,
                    "reminder_at": None,
                    "owner_id": owner,
                    "contact_id": None,
                    "account_id": account_id,
                    "opportunity_id": deal_id,
                    "lead_id": None,
                    "created_at": self.now - timedelta(days=3),
                    "deleted_at": None,
                }
            )
        self.writer.insert(FollowUp, rows)

    def quotas(self) -> None:
        rows = []
        month = date(self.start.year, self.start.month, 1)
        while month <= self.today:
            for rep in self.staff.reps:
                for kind, target in (("call", 110), ("meeting", 14), ("email", 90)):
                    rows.append(
                        {
                            "id": self.writer.take(Quota.__table__),
                            "organization_id": self.org_id,
                            "user_id": rep["id"],
                            "team_id": None,
                            "period": "month",
                            "period_start": month,
                            "metric": "activities",
                            "activity_type": kind,
                            "target": Decimal(target),
                        }
                    )
            if month.month in (1, 4, 7, 10):
                for team_id in self.staff.teams:
                    rows.append(
                        {
                            "id": self.writer.take(Quota.__table__),
                            "organization_id": self.org_id,
                            "user_id": None,
                            "team_id": team_id,
                            "period": "quarter",
                            "period_start": month,
                            "metric": "won_revenue",
                            "activity_type": None,
                            "target": Decimal(900_000),
                        }
                    )
            month = date(month.year + month.month // 12, month.month % 12 + 1, 1)
        self.writer.insert(Quota, rows)


def reset_sequences(session: Session) -> None:
    """After inserting explicit ids, PostgreSQL's sequences must move past them."""
    if session.get_bind().dialect.name != "postgresql":
        return

    for table in Base.metadata.sorted_tables:
        if "id" in table.c and table.c.id.primary_key:
            session.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), COALESCE((SELECT MAX(id) FROM {table.name}), 0) + 1, false)"
                )
            )
