"""The demo organisation of `make run`: a fictional group of 300 people in four countries.

Meridian Group makes measuring instruments. Its headquarters in Shanghai is the parent
branch of companies in Shenzhen, San Jose, Munich and Tokyo; its org tree runs group >
division > department > team, and positions report up to the CEO, with a few vacant so
that a vacancy passing the question up the line can be seen.

`build_plan` decides everything in plain Python from seeded random streams, so the same
`as_of` day always gives the same organisation. Names, employee numbers, levels and
positions do not depend on `as_of` at all; dates are counted back from it, so the group
always looks current (hires over the past eight years, people on leave today).
`write_plan` stores a plan in one tenant transaction.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
import uuid
from collections import defaultdict
from decimal import Decimal
from typing import Any

from sqlalchemy import insert

from domain import audit, crypto
from domain.money import Money
from domain.organisation.models import Branch, JobLevel, OrgUnit, OrgUnitVersion, Position
from domain.people.actions import search_text
from domain.people.history import PositionFacts, period_values, replay
from domain.people.models import (
    Employee,
    EmployeePeriod,
    EmploymentEvent,
    PerformanceReview,
    ProjectAssignment,
    RewardOrPenalty,
)
from renshi.demo_names import Name, pick_name
from tenants.binding import tenant_session
from tenants.context import Tenant

SEED = "renshi-demo-1"
# Row ids are derived from names in the plan, so they too are the same on every run.
ID_NAMESPACE = uuid.UUID("5b0f3f7e-3c1a-4c55-9d47-6a0f2f1d8e21")
EMAIL_DOMAIN = "meridian.test"
FOUNDED_DAYS_AGO = 8 * 365 + 40


# --- the shape of the group ------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class BranchSpec:
    key: str
    code: str
    name: str
    country: str
    currency: str
    time_zone: str
    locale: str
    address: str
    style: str  # where its people's names come from
    parent: str | None = None


BRANCHES = (
    BranchSpec(
        "hq", "HQ-SHA", "Meridian Group Headquarters", "CN", "CNY", "Asia/Shanghai", "zh_CN",
        "Zhangjiang Hi-Tech Park, Pudong New Area, Shanghai 201203", "cn",
    ),
    BranchSpec(
        "cn", "CN-SZX", "Meridian Instruments (Shenzhen) Co., Ltd.", "CN", "CNY",
        "Asia/Shanghai", "zh_CN", "Nanshan Science and Technology Park, Shenzhen 518057", "cn",
        "hq",
    ),
    BranchSpec(
        "us", "US-SJC", "Meridian Instruments Inc.", "US", "USD", "America/Los_Angeles",
        "en_US", "North First Street, San Jose, CA 95134", "us", "hq",
    ),
    BranchSpec(
        "de", "DE-MUC", "Meridian Messtechnik GmbH", "DE", "EUR", "Europe/Berlin", "de_DE",
        "Lichtenbergstraße, 85748 Garching bei München", "de", "hq",
    ),
    BranchSpec(
        "jp", "JP-TYO", "Meridian Japan K.K.", "JP", "JPY", "Asia/Tokyo", "ja_JP",
        "東京都港区芝浦 108-0023", "jp", "hq",
    ),
)  # fmt: skip

LEVEL_TITLES = {
    1: "Associate",
    2: "Professional",
    3: "Senior Professional",
    4: "Principal",
    5: "Manager",
    6: "Senior Manager",
    7: "Director",
    8: "Executive",
}

# Monthly pay bands by rank 1..8, in each currency of the group.
BANDS: dict[str, tuple[tuple[int, int], ...]] = {
    "CNY": (
        (8_000, 14_000), (12_000, 22_000), (18_000, 32_000), (28_000, 45_000),
        (35_000, 60_000), (50_000, 85_000), (75_000, 130_000), (120_000, 250_000),
    ),
    "USD": (
        (5_500, 8_000), (7_500, 11_000), (10_000, 15_000), (13_500, 19_000),
        (15_000, 22_000), (19_000, 28_000), (25_000, 38_000), (35_000, 60_000),
    ),
    "EUR": (
        (3_200, 4_500), (4_200, 6_000), (5_500, 7_800), (7_000, 9_800),
        (8_000, 11_500), (10_000, 14_500), (13_000, 19_000), (18_000, 30_000),
    ),
    "JPY": (
        (230_000, 320_000), (300_000, 420_000), (400_000, 560_000), (520_000, 720_000),
        (600_000, 850_000), (800_000, 1_100_000), (1_000_000, 1_500_000),
        (1_500_000, 2_500_000),
    ),
}  # fmt: skip
# Salaries are whole multiples of these, as pay scales are.
PAY_STEP = {"CNY": 100, "USD": 50, "EUR": 50, "JPY": 1_000}
# The yearly pay round: (month, day).
PAY_ROUND = {"CNY": (3, 1), "USD": (1, 1), "EUR": (4, 1), "JPY": (4, 1)}
HEAD_RANK = {"company": 8, "division": 7, "department": 6, "team": 5}

# Staff titles of each job family, rank 1 to 4.
FAMILIES = {
    "hr": ("HR Assistant", "HR Specialist", "Senior HR Specialist", "HR Business Partner"),
    "recruiting": ("Recruiting Coordinator", "Recruiter", "Senior Recruiter", "Lead Recruiter"),
    "accounting": ("Accounting Assistant", "Accountant", "Senior Accountant", "Chief Accountant"),
    "finance": (
        "Junior Financial Analyst", "Financial Analyst", "Senior Financial Analyst",
        "Principal Financial Analyst",
    ),
    "it": ("IT Support Technician", "Systems Administrator", "Senior Systems Engineer",
           "IT Architect"),
    "production": ("Assembly Technician", "Senior Assembly Technician", "Process Engineer",
                   "Senior Process Engineer"),
    "quality": ("Quality Inspector", "Quality Engineer", "Senior Quality Engineer",
                "Principal Quality Engineer"),
    "sales": ("Sales Development Representative", "Account Executive",
              "Senior Account Executive", "Principal Account Executive"),
    "software": ("Associate Software Engineer", "Software Engineer", "Senior Software Engineer",
                 "Staff Software Engineer"),
    "hardware": ("Associate Hardware Engineer", "Hardware Engineer", "Senior Hardware Engineer",
                 "Principal Hardware Engineer"),
    "research": ("Junior Development Engineer", "Development Engineer",
                 "Senior Development Engineer", "Principal Scientist"),
    "service": ("Service Technician", "Field Service Engineer", "Senior Field Service Engineer",
                "Service Specialist"),
    "support": ("Support Associate", "Support Engineer", "Senior Support Engineer",
                "Support Specialist"),
}  # fmt: skip
RANK_WEIGHTS = {"production": (45, 30, 18, 7)}
DEFAULT_RANK_WEIGHTS = (20, 40, 28, 12)


@dataclasses.dataclass(frozen=True)
class UnitSpec:
    key: str
    name: str
    kind: str
    branch: str
    parent: str | None
    head_title: str
    head_vacant: bool = False
    family: str | None = None  # teams: the job family of their staff
    staff: int = 0  # teams: people besides the lead


# In tree order: every parent comes before its children.
UNITS = (
    UnitSpec("group", "Meridian Group", "company", "hq", None, "Chief Executive Officer"),
    UnitSpec("functions", "Group Functions", "division", "hq", "group", "Chief Operating Officer"),
    UnitSpec("hr", "Human Resources", "department", "hq", "functions", "Head of Human Resources"),
    UnitSpec("hr_ops", "HR Operations", "team", "hq", "hr", "HR Operations Manager",
             family="hr", staff=8),
    UnitSpec("talent", "Talent Acquisition", "team", "hq", "hr", "Talent Acquisition Manager",
             family="recruiting", staff=6),
    UnitSpec("finance", "Finance", "department", "hq", "functions", "Head of Finance"),
    UnitSpec("accounting", "Accounting", "team", "hq", "finance", "Accounting Manager",
             family="accounting", staff=10),
    UnitSpec("fpa", "Financial Planning & Analysis", "team", "hq", "finance", "FP&A Manager",
             family="finance", staff=6),
    UnitSpec("it", "Information Technology", "department", "hq", "functions", "Head of IT"),
    UnitSpec("it_ops", "IT Operations", "team", "hq", "it", "IT Operations Manager",
             family="it", staff=8),
    UnitSpec("china", "Greater China", "division", "cn", "group", "President, Greater China"),
    UnitSpec("manufacturing", "Manufacturing", "department", "cn", "china",
             "Head of Manufacturing"),
    UnitSpec("assembly", "Assembly", "team", "cn", "manufacturing", "Assembly Supervisor",
             family="production", staff=30),
    UnitSpec("quality", "Quality Assurance", "team", "cn", "manufacturing", "Quality Manager",
             head_vacant=True, family="quality", staff=12),
    UnitSpec("sales_cn", "Sales China", "department", "cn", "china", "Head of Sales China"),
    UnitSpec("sales_east", "East China Sales", "team", "hq", "sales_cn",
             "Regional Sales Manager, East China", family="sales", staff=12),
    UnitSpec("sales_south", "South China Sales", "team", "cn", "sales_cn",
             "Regional Sales Manager, South China", family="sales", staff=11),
    UnitSpec("rnd_cn", "R&D China", "department", "cn", "china", "Head of R&D China"),
    UnitSpec("embedded", "Embedded Software", "team", "cn", "rnd_cn",
             "Embedded Software Manager", family="software", staff=20),
    UnitSpec("hardware", "Hardware Design", "team", "cn", "rnd_cn", "Hardware Design Manager",
             family="hardware", staff=14),
    UnitSpec("americas", "Americas", "division", "us", "group", "President, Americas"),
    UnitSpec("eng_us", "Engineering Americas", "department", "us", "americas",
             "VP Engineering"),
    UnitSpec("platform", "Cloud Platform", "team", "us", "eng_us",
             "Engineering Manager, Cloud Platform", family="software", staff=18),
    UnitSpec("apps", "Applications", "team", "us", "eng_us",
             "Engineering Manager, Applications", family="software", staff=14),
    UnitSpec("sales_us", "Sales Americas", "department", "us", "americas", "VP Sales Americas",
             head_vacant=True),
    UnitSpec("west", "West Region Sales", "team", "us", "sales_us",
             "Regional Sales Director, West", family="sales", staff=11),
    UnitSpec("key_accounts", "Key Accounts", "team", "us", "sales_us", "Key Account Director",
             family="sales", staff=8),
    UnitSpec("europe", "Europe", "division", "de", "group", "Managing Director, Europe"),
    UnitSpec("rnd_de", "R&D Europe", "department", "de", "europe", "Head of R&D Europe"),
    UnitSpec("sensors", "Sensor Technology", "team", "de", "rnd_de", "Sensor Technology Lead",
             family="research", staff=15),
    UnitSpec("optics", "Optics", "team", "de", "rnd_de", "Optics Lead", head_vacant=True,
             family="research", staff=11),
    UnitSpec("sales_de", "Sales & Service DACH", "department", "de", "europe",
             "Head of Sales & Service DACH"),
    UnitSpec("dach_sales", "DACH Sales", "team", "de", "sales_de", "Sales Manager DACH",
             family="sales", staff=10),
    UnitSpec("field_service", "Field Service", "team", "de", "sales_de",
             "Field Service Manager", family="service", staff=10),
    UnitSpec("japan", "Japan", "division", "jp", "group", "Representative Director, Japan"),
    UnitSpec("sales_jp", "Sales Japan", "department", "jp", "japan", "Head of Sales Japan"),
    UnitSpec("jp_sales", "Enterprise Sales", "team", "jp", "sales_jp",
             "Enterprise Sales Manager", family="sales", staff=15),
    UnitSpec("support_jp", "Customer Support Japan", "department", "jp", "japan",
             "Head of Customer Support Japan"),
    UnitSpec("jp_support", "Technical Support", "team", "jp", "support_jp",
             "Technical Support Manager", family="support", staff=14),
)  # fmt: skip

# People who moved country: (team now, rank, home branch style, team they started in).
EXPATS = (
    ("sensors", 3, "cn", "hardware"),
    ("platform", 3, "cn", "embedded"),
    ("key_accounts", 3, "jp", "jp_sales"),
)


@dataclasses.dataclass(frozen=True)
class ProjectSpec:
    code: str
    teams: tuple[str, ...]
    started_days_ago: int
    ended_days_ago: int | None  # None: still running
    members: int


PROJECTS = (
    ProjectSpec("ATLAS", ("sensors", "optics", "hardware", "embedded"), 1100, None, 14),
    ProjectSpec("BOREAS", ("platform", "apps", "embedded"), 900, None, 12),
    ProjectSpec("COMPASS-ERP", ("accounting", "fpa", "it_ops", "hr_ops"), 1500, 900, 10),
    ProjectSpec("DYNAMO", ("assembly", "quality", "hardware"), 1800, 1100, 12),
    ProjectSpec("EQUINOX", ("jp_sales", "jp_support", "key_accounts"), 700, None, 9),
    ProjectSpec("FATHOM", ("platform", "fpa", "it_ops"), 380, None, 8),
    ProjectSpec("GALILEO", ("field_service", "dach_sales", "sensors"), 1300, 500, 8),
)
PROJECT_ROLES = {
    "software": ("Developer", "Tech Lead", "Reviewer"),
    "hardware": ("Hardware Engineer", "Tech Lead"),
    "research": ("Researcher", "Tech Lead"),
    "production": ("Process Owner", "Line Representative"),
    "quality": ("Test Engineer", "Quality Owner"),
    "sales": ("Account Owner", "Market Analyst"),
    "support": ("Support Engineer", "Customer Liaison"),
    "service": ("Field Engineer", "Service Planner"),
    "accounting": ("Key User", "Process Owner"),
    "finance": ("Analyst", "Key User"),
    "it": ("Systems Engineer", "Integration Lead"),
    "hr": ("Key User", "Change Manager"),
    "recruiting": ("Key User",),
}

LEAVE_REASONS = {
    "CN": ("Maternity leave", "Medical leave", "Marriage leave"),
    "US": ("Family and medical leave (FMLA)", "Parental leave", "Medical leave"),
    "DE": ("Elternzeit (parental leave)", "Sabbatical", "Medical leave"),
    "JP": ("Childcare leave", "Medical leave", "Family care leave"),
}
REVIEW_COMMENTS = {
    2: ("Missed several goals; improvement plan agreed.", "Below expectations this year."),
    3: ("Met expectations.", "Solid year; delivered the agreed goals.", "Reliable and steady."),
    4: ("Exceeded expectations on key goals.", "Strong year; ready for more scope."),
    5: ("Outstanding year; role model for the team.", "Exceptional impact across teams."),
}
RATINGS = ("2.0", "2.5", "3.0", "3.5", "4.0", "4.5", "5.0")
RATING_WEIGHTS = (2, 4, 25, 30, 25, 10, 4)


# --- the plan ----------------------------------------------------------------------------


@dataclasses.dataclass
class PositionPlan:
    key: str
    title: str
    unit: str
    rank: int
    reports_to: str | None
    headcount: int = 1
    is_staff: bool = False  # one of a team's four staff positions


@dataclasses.dataclass
class Change:
    """One effective-dated event of a person's history."""

    kind: str
    day: dt.date
    position: str | None = None
    branch: str | None = None
    salary: Decimal | None = None
    currency: str | None = None
    status: str | None = None
    reason: str | None = None


@dataclasses.dataclass
class PersonPlan:
    slot: str  # stable name of the seat the person was drawn for
    name: Name
    position: str  # held today
    rank: int
    hire_offset: int  # days before `as_of`
    age_at_hire: int  # days
    home_style: str
    start_team: str | None = None  # expats: where they were hired
    status_at_hire: str = "active"
    number: str = ""
    email: str = ""
    phone: str = ""
    national_id: str = ""
    bank_account: str = ""
    hire_date: dt.date = dt.date.min
    birth_date: dt.date = dt.date.min
    changes: list[Change] = dataclasses.field(default_factory=list)

    @property
    def display_name(self) -> str:
        return f"{self.name.preferred or self.name.given} {self.name.family}"

    def currency_on(self, day: dt.date) -> str:
        branch = BRANCH_BY_KEY[self.branch_on(day)]
        return branch.currency

    def branch_on(self, day: dt.date) -> str:
        found = ""
        for change in self.changes:
            if change.day > day:
                break
            found = change.branch or found
        return found


@dataclasses.dataclass(frozen=True)
class ReviewPlan:
    person: str  # employee number
    period: str
    rating: Decimal
    reviewed_on: dt.date
    reviewer: str | None
    comment: str


@dataclasses.dataclass(frozen=True)
class AwardPlan:
    person: str
    kind: str
    category: str
    occurred_on: dt.date
    amount: Decimal | None
    currency: str | None
    note: str


@dataclasses.dataclass(frozen=True)
class AssignmentPlan:
    person: str
    project: str
    role: str
    start: dt.date
    end: dt.date | None


@dataclasses.dataclass(frozen=True)
class UserPlan:
    email: str
    roles: tuple[str, ...]
    person: str  # employee number
    display_name: str


@dataclasses.dataclass
class Plan:
    as_of: dt.date
    founded: dt.date
    positions: list[PositionPlan]
    people: list[PersonPlan]  # by employee number
    reviews: list[ReviewPlan]
    awards: list[AwardPlan]
    assignments: list[AssignmentPlan]
    users: list[UserPlan]


BRANCH_BY_KEY = {b.key: b for b in BRANCHES}
UNIT_BY_KEY = {u.key: u for u in UNITS}
TEAMS = [u for u in UNITS if u.kind == "team"]


def head_key(unit: str) -> str:
    return f"{unit}/head"


def staff_key(team: str, rank: int) -> str:
    return f"{team}/L{rank}"


def level_code(rank: int, currency: str) -> str:
    return f"L{rank}-{currency}"


def unit_code(unit: str) -> str:
    return unit.upper().replace("_", "-")


def position_title(key: str) -> str:
    return POSITION_TITLES[key]


def _positions() -> list[PositionPlan]:
    """Heads of every unit, the CEO's assistant, and four staff positions per team."""
    positions: list[PositionPlan] = []
    for unit in UNITS:
        reports_to = head_key(unit.parent) if unit.parent else None
        positions.append(
            PositionPlan(
                head_key(unit.key), unit.head_title, unit.key, HEAD_RANK[unit.kind], reports_to
            )
        )
        if unit.kind == "company":
            positions.append(
                PositionPlan(
                    "group/assistant",
                    "Executive Assistant to the CEO",
                    unit.key,
                    2,
                    head_key(unit.key),
                )
            )
        if unit.family:
            for rank, title in enumerate(FAMILIES[unit.family], start=1):
                positions.append(
                    PositionPlan(
                        staff_key(unit.key, rank),
                        title,
                        unit.key,
                        rank,
                        head_key(unit.key),
                        is_staff=True,
                    )
                )
    return positions


POSITIONS = _positions()
POSITION_BY_KEY = {p.key: p for p in POSITIONS}
POSITION_TITLES = {p.key: p.title for p in POSITIONS}


def unit_of(position: str) -> UnitSpec:
    return UNIT_BY_KEY[POSITION_BY_KEY[position].unit]


def _stream(name: str) -> random.Random:
    """A seeded random stream per concern, so that adding draws to one leaves the rest."""
    return random.Random(f"{SEED}/{name}")  # noqa: S311 (reproducible demo data, not secrets)


def _days(rng: random.Random, low: int, high: int) -> int:
    return rng.randint(low, max(low, high))


def _people(rng: random.Random) -> list[PersonPlan]:
    """Who sits where, with names and how long ago they joined; independent of `as_of`."""
    people: list[PersonPlan] = []
    taken_names: set[tuple[str, str]] = set()

    def person(slot: str, position: str, rank: int, offset: int, style: str) -> PersonPlan:
        for _attempt in range(20):
            name = pick_name(rng, style)
            if (name.given, name.family) not in taken_names:
                break
        taken_names.add((name.given, name.family))
        low_age, high_age = {1: (21, 27), 2: (23, 34), 3: (27, 42), 4: (31, 48)}.get(
            rank, (30 + 3 * (rank - 5), 44 + 3 * (rank - 5))
        )
        age = rng.randint(low_age, high_age) * 365 + rng.randint(0, 364)
        return PersonPlan(slot, name, position, rank, offset, age, style)

    founded = FOUNDED_DAYS_AGO
    for unit in UNITS:
        style = BRANCH_BY_KEY[unit.branch].style
        if not unit.head_vacant:
            offset = {
                "company": founded,
                "division": _days(rng, 2400, founded),
                "department": _days(rng, 1200, 2800),
                "team": _days(rng, 500, 2800),
            }[unit.kind]
            people.append(
                person(head_key(unit.key), head_key(unit.key), HEAD_RANK[unit.kind], offset, style)
            )
        if unit.kind == "company":
            people.append(
                person("group/assistant", "group/assistant", 2, _days(rng, 1100, 2200), style)
            )
        if not unit.family:
            continue
        weights = RANK_WEIGHTS.get(unit.family, DEFAULT_RANK_WEIGHTS)
        expats = [e for e in EXPATS if e[0] == unit.key]
        ranks = sorted(rng.choices((1, 2, 3, 4), weights=weights, k=unit.staff - len(expats)))
        for index, rank in enumerate(ranks):
            # Skewed to recent dates: the group has been growing.
            offset = 7 + int((founded - 40) * rng.random() ** 1.6)
            slot = f"{unit.key}/{index:02d}"
            people.append(person(slot, staff_key(unit.key, rank), rank, offset, style))
        for index, (_team, rank, home, started_in) in enumerate(expats, start=len(ranks)):
            slot = f"{unit.key}/{index:02d}"
            offset = _days(rng, 1500, 2500)
            expat = person(slot, staff_key(unit.key, rank), rank, offset, home)
            expat.start_team = started_in
            people.append(expat)
    return people


def _number(people: list[PersonPlan]) -> list[PersonPlan]:
    """Employee numbers in order of hiring, and unique work e-mail addresses."""
    ordered = sorted(enumerate(people), key=lambda item: (-item[1].hire_offset, item[0]))
    emails: set[str] = set()
    result = []
    for number, (_index, person) in enumerate(ordered, start=1):
        person.number = f"MG{number:05d}"
        stem, suffix = person.name.email_stem, 1
        while f"{stem}@{EMAIL_DOMAIN}" in emails:
            suffix += 1
            stem = f"{person.name.email_stem}{suffix}"
        person.email = f"{stem}@{EMAIL_DOMAIN}"
        emails.add(person.email)
        result.append(person)
    return result


def _identity(rng: random.Random, person: PersonPlan) -> None:
    """Phone, national ID and bank account, fictional but shaped as in the home country."""

    def digits(count: int) -> str:
        return "".join(str(rng.randint(0, 9)) for _ in range(count))

    match person.home_style:
        case "cn":
            person.phone = f"+86 1{rng.choice('3589')}{digits(1)} {digits(4)} {digits(4)}"
            body = f"{rng.choice(('310115', '440305'))}{person.birth_date:%Y%m%d}{digits(3)}"
            person.national_id = body + _cn_check_digit(body)
            person.bank_account = f"6222 {digits(4)} {digits(4)} {digits(4)} {digits(3)}"
        case "us":
            person.phone = f"+1 408 555 01{digits(2)}"
            person.national_id = f"9{digits(2)}-{rng.randint(70, 88)}-{digits(4)}"
            person.bank_account = f"ABA 121000358 / {digits(10)}"
        case "de":
            person.phone = f"+49 89 {digits(4)} {digits(4)}"
            person.national_id = str(rng.randint(1, 9)) + digits(10)
            person.bank_account = _german_iban(digits(8) + digits(10))
        case "jp":
            person.phone = f"+81 3 {digits(4)} {digits(4)}"
            person.national_id = str(rng.randint(1, 9)) + digits(11)
            person.bank_account = f"0001-{digits(3)}-{digits(7)}"


def _cn_check_digit(body: str) -> str:
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    total = sum(int(ch) * w for ch, w in zip(body, weights, strict=True))
    return "10X98765432"[total % 11]


def _german_iban(bban: str) -> str:
    check = 98 - int(bban + "131400") % 97  # "DE" is 13 14, then "00"
    iban = f"DE{check:02d}{bban}"
    return " ".join(iban[i : i + 4] for i in range(0, len(iban), 4))


# --- careers -----------------------------------------------------------------------------


class Pay:
    """Salaries inside the level's band, in whole pay steps of the currency."""

    @staticmethod
    def band(rank: int, currency: str) -> tuple[int, int]:
        return BANDS[currency][rank - 1]

    @staticmethod
    def clamp(amount: float, rank: int, currency: str) -> Decimal:
        low, high = Pay.band(rank, currency)
        step = PAY_STEP[currency]
        rounded = round(amount / step) * step
        return Money.of(Decimal(min(max(rounded, low), high)), currency).amount

    @staticmethod
    def within(rng: random.Random, rank: int, currency: str, low: float, high: float) -> Decimal:
        band_low, band_high = Pay.band(rank, currency)
        return Pay.clamp(band_low + (band_high - band_low) * rng.uniform(low, high), rank, currency)


def _career(rng: random.Random, person: PersonPlan, as_of: dt.date) -> None:
    """Hire, transfers, promotions and pay rounds up to `as_of`, in date order."""
    hire = person.hire_date
    tenure = person.hire_offset
    team = POSITION_BY_KEY[person.position].unit
    placements: list[tuple[dt.date, str, str]] = []  # (day, kind, position)
    start = person.position

    if person.start_team:  # moved country: same rank, new branch and currency
        start = staff_key(person.start_team, person.rank)
        moved = as_of - dt.timedelta(days=_days(rng, 400, min(1000, tenure - 300)))
        placements.append((moved, "transfer", person.position))
    elif person.rank == 5 and tenure > 1100 and rng.random() < 0.4:
        start = staff_key(team, 4)
        placements.append(
            (hire + dt.timedelta(days=_days(rng, 365, tenure - 60)), "promotion", person.position)
        )
    elif POSITION_BY_KEY[person.position].is_staff and person.rank > 1 and tenure > 730:
        promoted_on = None
        if rng.random() < 0.45:
            start = staff_key(team, person.rank - 1)
            promoted_on = hire + dt.timedelta(days=_days(rng, 365, tenure - 45))
        if rng.random() < 0.25:
            # To a sister team: same job family, paid in the same currency.
            here = UNIT_BY_KEY[team]
            currency = BRANCH_BY_KEY[here.branch].currency
            others = [
                t.key
                for t in TEAMS
                if t.key != team
                and t.family == here.family
                and BRANCH_BY_KEY[t.branch].currency == currency
            ]
            latest = ((promoted_on or as_of - dt.timedelta(days=45)) - hire).days - 120
            if others and latest > 180:
                moved = hire + dt.timedelta(days=_days(rng, 180, latest))
                rank_then = POSITION_BY_KEY[start].rank
                placements.append((moved, "transfer", staff_key(team, rank_then)))
                start = staff_key(rng.choice(others), rank_then)
        if promoted_on:
            placements.append((promoted_on, "promotion", person.position))
    placements.sort()

    first_unit = unit_of(start)
    currency = BRANCH_BY_KEY[first_unit.branch].currency
    rank = POSITION_BY_KEY[start].rank
    salary = Pay.within(rng, rank, currency, 0.05, 0.45)
    changes = [
        Change(
            "hire",
            hire,
            position=start,
            branch=first_unit.branch,
            salary=salary,
            currency=currency,
            status=person.status_at_hire,
        )
    ]

    pay_rounds = []
    for year in range(hire.year, as_of.year + 1):
        for code, (month, day_of_month) in PAY_ROUND.items():
            pay_rounds.append((dt.date(year, month, day_of_month), code))
    pay_rounds.sort()

    timeline = [(day, kind, pos) for day, kind, pos in placements]
    timeline += [(day, "pay_round", code) for day, code in pay_rounds]
    timeline.sort(key=lambda item: (item[0], item[1] != "transfer"))
    position = start
    for day, kind, target in timeline:
        if kind == "pay_round":
            round_currency = target
            if round_currency != currency or day < hire + dt.timedelta(days=180):
                continue
            if day >= as_of or any(p[0] == day for p in placements) or rng.random() >= 0.7:
                continue
            raised = Pay.clamp(float(salary) * rng.uniform(1.02, 1.07), rank, currency)
            if raised > salary:
                salary = raised
                changes.append(
                    Change(
                        "salary_change",
                        day,
                        salary=salary,
                        currency=currency,
                        reason=f"Annual pay review {day.year}",
                    )
                )
            continue
        new_unit = unit_of(target)
        new_rank = POSITION_BY_KEY[target].rank
        if kind == "transfer":
            moved_country = BRANCH_BY_KEY[new_unit.branch].currency != currency
            changes.append(
                Change(
                    "transfer",
                    day,
                    position=target,
                    branch=new_unit.branch,
                    reason=f"Moved to {new_unit.name}",
                )
            )
            if moved_country:
                currency = BRANCH_BY_KEY[new_unit.branch].currency
                salary = Pay.within(rng, new_rank, currency, 0.25, 0.55)
                changes.append(
                    Change(
                        "salary_change",
                        day,
                        salary=salary,
                        currency=currency,
                        reason=f"Local contract in {BRANCH_BY_KEY[new_unit.branch].name}",
                    )
                )
        else:
            changes.append(
                Change(
                    "promotion",
                    day,
                    position=target,
                    reason=f"Promoted to {position_title(target)}",
                )
            )
            low, high = Pay.band(new_rank, currency)
            floor = low + (high - low) * 0.05
            salary = Pay.clamp(
                max(float(salary) * rng.uniform(1.08, 1.15), floor), new_rank, currency
            )
            changes.append(
                Change(
                    "salary_change",
                    day,
                    salary=salary,
                    currency=currency,
                    reason="Pay adjusted on promotion",
                )
            )
        position, rank = target, new_rank
    assert position == person.position, (person.slot, position)
    changes.sort(key=lambda c: c.day)  # stable: same-day events keep their order
    person.changes = changes


def _leaves(rng: random.Random, people: list[PersonPlan], as_of: dt.date, spare: set[str]) -> None:
    """Eight people on leave today, sixteen with a leave in the past."""
    candidates = [
        p
        for p in people
        if p.slot not in spare and p.hire_offset > 400 and p.rank <= 5 and p.start_team is None
    ]
    chosen = rng.sample(candidates, 24)
    for index, person in enumerate(chosen):
        country = BRANCH_BY_KEY[person.branch_on(as_of)].country
        reason = rng.choice(LEAVE_REASONS[country])
        if index < 8:
            start = as_of - dt.timedelta(days=_days(rng, 3, 150))
            end = None
        else:
            start = person.hire_date + dt.timedelta(days=_days(rng, 200, person.hire_offset - 260))
            end = start + dt.timedelta(days=_days(rng, 28, 180))
            end = min(end, as_of - dt.timedelta(days=20))
        taken = {c.day for c in person.changes}
        while start in taken:
            start += dt.timedelta(days=1)
        person.changes.append(Change("leave_start", start, reason=reason))
        if end is not None:
            while end in taken or end <= start:
                end += dt.timedelta(days=1)
            person.changes.append(Change("leave_end", end, reason="Returned to work"))
        person.changes.sort(key=lambda c: c.day)


def _managers(people: list[PersonPlan]) -> dict[str, PersonPlan]:
    """Each person's manager today, by employee number: the holder up the position line."""
    holders: dict[str, list[PersonPlan]] = defaultdict(list)
    for person in people:
        holders[person.position].append(person)
    managers = {}
    for person in people:
        above = POSITION_BY_KEY[person.position].reports_to
        while above is not None and not holders.get(above):
            above = POSITION_BY_KEY[above].reports_to
        if above is not None:
            managers[person.number] = min(holders[above], key=lambda p: p.number)
    return managers


def _reviews(
    rng: random.Random, people: list[PersonPlan], managers: dict[str, PersonPlan], as_of: dt.date
) -> list[ReviewPlan]:
    """Yearly reviews of the last three years, each in the following January."""
    reviews = []
    for person in people:
        for year in range(as_of.year - 3, as_of.year):
            reviewed_on = dt.date(year + 1, 1, 10) + dt.timedelta(days=rng.randint(0, 20))
            if reviewed_on > as_of or person.hire_date > dt.date(year, 9, 30):
                continue
            if rng.random() >= 0.9:
                continue
            rating = Decimal(rng.choices(RATINGS, weights=RATING_WEIGHTS)[0])
            manager = managers.get(person.number)
            reviewer = manager.number if manager and manager.hire_date < reviewed_on else None
            comment = rng.choice(REVIEW_COMMENTS[min(5, max(2, int(rating + Decimal("0.5"))))])
            reviews.append(
                ReviewPlan(person.number, str(year), rating, reviewed_on, reviewer, comment)
            )
    return reviews


# Amounts of one-off awards, in each currency.
AWARD_AMOUNTS = {
    "long_service": {"CNY": 5_000, "USD": 1_000, "EUR": 800, "JPY": 100_000},
    "spot_award": {"CNY": 2_000, "USD": 500, "EUR": 400, "JPY": 50_000},
    "patent_bonus": {"CNY": 10_000, "USD": 2_000, "EUR": 1_500, "JPY": 200_000},
    "sales_excellence": {"CNY": 8_000, "USD": 2_500, "EUR": 2_000, "JPY": 300_000},
    "attendance": {"CNY": 200, "USD": 0, "EUR": 0, "JPY": 0},
}
SPOT_NOTES = (
    "Stayed late to ship the customer fix before the trade fair.",
    "Mentored three new hires through their first quarter.",
    "Found and fixed the calibration drift on line 2.",
    "Covered for two colleagues during the year-end close.",
    "Organised the office move without a day of downtime.",
)
PENALTIES = (
    ("written_warning", "Repeatedly missed the expense report deadline."),
    ("written_warning", "Shared a customer price list outside the company."),
    ("safety_violation", "Entered the clean room without protective gear."),
    ("attendance", "Unexcused absence on two working days."),
)


def _awards(rng: random.Random, people: list[PersonPlan], as_of: dt.date) -> list[AwardPlan]:
    """Long-service awards at five years, spot awards, bonuses and a few penalties."""
    awards = []

    def award(person: PersonPlan, kind: str, category: str, day: dt.date, note: str) -> None:
        currency = person.currency_on(day)
        amount = AWARD_AMOUNTS.get(category, {}).get(currency, 0)
        money = Money.of(amount, currency).amount if amount else None
        awards.append(
            AwardPlan(person.number, kind, category, day, money, currency if money else None, note)
        )

    for person in people:
        try:
            fifth = person.hire_date.replace(year=person.hire_date.year + 5)
        except ValueError:  # hired on 29 February
            fifth = person.hire_date.replace(year=person.hire_date.year + 5, day=28)
        if fifth <= as_of:
            award(person, "reward", "long_service", fifth, "Five years with Meridian.")

    def some_day(person: PersonPlan) -> dt.date:
        return person.hire_date + dt.timedelta(days=_days(rng, 60, person.hire_offset - 7))

    settled = [p for p in people if p.hire_offset > 120]
    for person in rng.sample(settled, 24):
        award(person, "reward", "spot_award", some_day(person), rng.choice(SPOT_NOTES))
    families = ("research", "hardware", "software")
    inventors = [p for p in settled if unit_of(p.position).family in families]
    for person in rng.sample(inventors, 6):
        award(person, "reward", "patent_bonus", some_day(person), "Granted patent family.")
    sellers = [p for p in settled if unit_of(p.position).family == "sales"]
    for person in rng.sample(sellers, 8):
        award(person, "reward", "sales_excellence", some_day(person), "Top 10 % of quota.")
    for category, note in PENALTIES:
        person = rng.choice(settled)
        award(person, "penalty", category, some_day(person), note)
    awards.sort(key=lambda a: (a.person, a.occurred_on))
    return awards


def _assignments(
    rng: random.Random, people: list[PersonPlan], as_of: dt.date
) -> list[AssignmentPlan]:
    """Project teams drawn from the units each project needs, while they were employed."""
    assignments = []
    for project in PROJECTS:
        started = as_of - dt.timedelta(days=project.started_days_ago)
        ended = (
            as_of - dt.timedelta(days=project.ended_days_ago)
            if project.ended_days_ago is not None
            else None
        )
        pool = [
            p
            for p in people
            if unit_of(p.position).key in project.teams
            and p.hire_date < (ended or as_of) - dt.timedelta(days=30)
        ]
        members = rng.sample(pool, min(project.members, len(pool)))
        members.sort(key=lambda p: (-p.rank, p.number))
        for index, person in enumerate(members):
            start = max(started, person.hire_date + dt.timedelta(days=14))
            end = ended
            if end is None and (as_of - start).days > 120 and rng.random() < 0.2:
                # Rolled off early.
                end = start + dt.timedelta(days=_days(rng, 60, (as_of - start).days - 1))
            family = unit_of(person.position).family or "software"
            role = "Project Lead" if index == 0 else rng.choice(PROJECT_ROLES[family])
            assignments.append(AssignmentPlan(person.number, project.code, role, start, end))
    assignments.sort(key=lambda a: (a.person, a.start, a.project))
    return assignments


# Who the demo users are: (e-mail, roles, the seat of their employee, description).
DEMO_USERS = (
    ("ceo@demo.renshi.test", ("admin",), head_key("group"), "the CEO"),
    ("hr@demo.renshi.test", ("hr",), head_key("hr"), "head of HR"),
    ("finance@demo.renshi.test", ("finance",), "accounting/*", "accountant"),
    ("manager@demo.renshi.test", ("manager",), head_key("platform"), "engineering manager"),
    ("employee@demo.renshi.test", ("employee",), "platform/*", "software engineer"),
)


def _demo_seats(people: list[PersonPlan]) -> dict[str, PersonPlan]:
    """The people behind the demo users: fixed seats, or the first fitting staff member."""
    seats = {}
    for _email, _roles, seat, _what in DEMO_USERS:
        if seat.endswith("/*"):
            team = seat[:-2]
            wanted = 3 if team == "accounting" else 2
            staff = [p for p in people if unit_of(p.position).key == team and p.rank <= 4]
            staff.sort(key=lambda p: (p.rank != wanted, p.start_team is not None, p.slot))
            seats[seat] = staff[0]
        else:
            seats[seat] = next(p for p in people if p.slot == seat)
    return seats


def build_plan(as_of: dt.date) -> Plan:
    """The whole demo organisation as of `as_of`, identical for the same day."""
    founded = as_of - dt.timedelta(days=FOUNDED_DAYS_AGO)
    people_rng = _stream("people")
    people = _people(people_rng)

    # The demo users' people get a few years of history and are at work today.
    seats = _demo_seats(people)
    for person in seats.values():
        person.hire_offset = max(person.hire_offset, 1000)
    spare = {p.slot for p in seats.values()}
    staff = [p for p in people if p.rank <= 4 and p.slot not in spare and p.start_team is None]
    for person in people_rng.sample(staff, 3):
        person.hire_offset = people_rng.randint(1, 10)
        person.status_at_hire = "onboarding"
    people = _number(people)
    for person in people:
        person.hire_date = as_of - dt.timedelta(days=person.hire_offset)
        person.birth_date = person.hire_date - dt.timedelta(days=person.age_at_hire)
        _identity(people_rng, person)

    careers_rng = _stream("careers")
    for person in people:
        _career(careers_rng, person, as_of)
    onboarding = {p.slot for p in people if p.status_at_hire == "onboarding"}
    _leaves(careers_rng, people, as_of, spare | onboarding)

    # Staff positions have room for their people and, some of them, for a hire or two more.
    holders: dict[str, int] = defaultdict(int)
    for person in people:
        holders[person.position] += 1
    seats_rng = _stream("seats")
    positions = [dataclasses.replace(p) for p in POSITIONS]
    for position in positions:
        if position.is_staff:
            open_seats = seats_rng.choice((0, 0, 1, 2))
            position.headcount = max(1, holders[position.key] + open_seats)

    managers = _managers(people)
    reviews = _reviews(_stream("reviews"), people, managers, as_of)
    awards = _awards(_stream("awards"), people, as_of)
    assignments = _assignments(_stream("projects"), people, as_of)
    users = [
        UserPlan(email, roles, seats[seat].number, seats[seat].display_name)
        for email, roles, seat, _what in DEMO_USERS
    ]
    return Plan(as_of, founded, positions, people, reviews, awards, assignments, users)


# --- storing it --------------------------------------------------------------------------


def stable_id(kind: str, key: str) -> uuid.UUID:
    return uuid.uuid5(ID_NAMESPACE, f"{kind}:{key}")


@dataclasses.dataclass(frozen=True)
class _Event:
    """An `employment_events` row before insertion; what `replay` reads of an event."""

    id: uuid.UUID
    employee_id: uuid.UUID
    kind: str
    effective_date: dt.date
    branch_id: uuid.UUID | None
    position_id: uuid.UUID | None
    status: str | None
    salary_amount: Decimal | None
    salary_currency: str | None
    salary_period: str | None
    reason: str | None
    recorded_by: uuid.UUID
    org_unit_id: None = None
    job_level_id: None = None
    seq: None = None  # list order stands for recording order


EVENT_COLUMNS = [f.name for f in dataclasses.fields(_Event) if f.name != "seq"]


class _Rows:
    """Rows to insert, table by table, with an audit entry per created thing."""

    def __init__(self, actor_id: uuid.UUID) -> None:
        self.actor_id = actor_id
        self.tables: dict[type[Any], list[dict[str, Any]]] = defaultdict(list)

    def add(self, model: type[Any], **values: Any) -> None:
        self.tables[model].append(values)

    def audit(self, action: str, kind: str, entity: uuid.UUID, **after: Any) -> None:
        self.add(
            audit.AuditEntry,
            actor_id=self.actor_id,
            action=action,
            entity_type=kind,
            entity_id=str(entity),
            before=None,
            after={k: v if v is None else str(v) for k, v in after.items()} | {"source": "demo"},
        )


async def write_plan(plan: Plan, tenant: Tenant, *, actor_id: uuid.UUID) -> dict[str, uuid.UUID]:
    """Store `plan` in `tenant` in one transaction; returns employee ids by number.

    NOTE: this inserts rows in bulk instead of calling the domain actions, which take about
    40 ms each: the 2,000-odd events, reviews and awards would keep `make run` waiting more
    than a minute. It writes what the actions would: the same rows, the employee periods
    derived by `replay` (which refuses a history that makes no sense), and an audit entry
    per change.
    """
    branch_ids = {b.key: stable_id("branch", b.key) for b in BRANCHES}
    unit_ids = {u.key: stable_id("unit", u.key) for u in UNITS}
    position_ids = {p.key: stable_id("position", p.key) for p in plan.positions}
    employee_ids = {p.number: stable_id("employee", p.number) for p in plan.people}
    level_ids = {
        (rank, currency): stable_id("level", level_code(rank, currency))
        for currency, bands in BANDS.items()
        for rank in range(1, len(bands) + 1)
    }
    rows = _Rows(actor_id)

    for spec in BRANCHES:  # the parent first
        rows.add(
            Branch,
            id=branch_ids[spec.key],
            code=spec.code,
            name=spec.name,
            country=spec.country,
            currency=spec.currency,
            time_zone=spec.time_zone,
            locale=spec.locale,
            address=spec.address,
            parent_id=branch_ids[spec.parent] if spec.parent else None,
        )
        rows.audit("branch.create", "branch", branch_ids[spec.key], code=spec.code)
    for currency, bands in BANDS.items():
        for rank, (low, high) in enumerate(bands, start=1):
            level_id = level_ids[rank, currency]
            rows.add(
                JobLevel,
                id=level_id,
                code=level_code(rank, currency),
                rank=rank,
                title=LEVEL_TITLES[rank],
                pay_min=Money.of(low, currency).amount,
                pay_max=Money.of(high, currency).amount,
                pay_currency=currency,
            )
            rows.audit("job_level.create", "job_level", level_id, code=level_code(rank, currency))
    for index, unit in enumerate(UNITS):
        rows.add(OrgUnit, id=unit_ids[unit.key], code=unit_code(unit.key), kind=unit.kind)
        rows.add(
            OrgUnitVersion,
            id=stable_id("unit-version", unit.key),
            org_unit_id=unit_ids[unit.key],
            valid_from=plan.founded,
            valid_to=None,
            name=unit.name,
            parent_id=unit_ids[unit.parent] if unit.parent else None,
            branch_id=branch_ids[unit.branch],
            cost_centre=f"CC-{1000 + 10 * index}",
            head_position_id=position_ids[head_key(unit.key)],
        )
        rows.audit("org_unit.create", "org_unit", unit_ids[unit.key], name=unit.name)
    facts = {}
    for position in plan.positions:  # in tree order, so a line's top comes first
        unit = UNIT_BY_KEY[position.unit]
        level_id = level_ids[position.rank, BRANCH_BY_KEY[unit.branch].currency]
        facts[position_ids[position.key]] = PositionFacts(unit_ids[unit.key], level_id)
        rows.add(
            Position,
            id=position_ids[position.key],
            code=f"{unit_code(unit.key)}-{position.key.split('/')[1].upper()}",
            title=position.title,
            org_unit_id=unit_ids[unit.key],
            job_level_id=level_id,
            reports_to_id=position_ids[position.reports_to] if position.reports_to else None,
            headcount=position.headcount,
            opened_on=plan.founded,
            closed_on=None,
        )
        rows.audit("position.create", "position", position_ids[position.key], title=position.title)

    for person in plan.people:
        employee_id = employee_ids[person.number]
        employee = Employee(
            id=employee_id,
            employee_number=person.number,
            given_name=person.name.given,
            family_name=person.name.family,
            local_name=person.name.local,
            preferred_name=person.name.preferred,
            work_email=person.email,
            phone=person.phone,
            birth_date=person.birth_date,
            national_id_encrypted=crypto.encrypt(tenant.id, person.national_id),
            bank_account_encrypted=crypto.encrypt(tenant.id, person.bank_account),
            hire_date=person.hire_date,
        )
        rows.add(
            Employee,
            **{
                c.key: getattr(employee, c.key)
                for c in Employee.__table__.columns
                if c.key not in ("search_text", "created_at", "updated_at")
            },
            search_text=search_text(employee),
        )
        events = [
            _Event(
                id=stable_id("event", f"{person.number}/{index}"),
                employee_id=employee_id,
                kind=change.kind,
                effective_date=change.day,
                branch_id=branch_ids[change.branch] if change.branch else None,
                position_id=position_ids[change.position] if change.position else None,
                status=change.status,
                salary_amount=change.salary,
                salary_currency=change.currency if change.salary is not None else None,
                salary_period="month" if change.salary is not None else None,
                reason=change.reason,
                recorded_by=actor_id,
            )
            for index, change in enumerate(person.changes)
        ]
        for event in events:
            rows.add(EmploymentEvent, **{name: getattr(event, name) for name in EVENT_COLUMNS})
            rows.audit(
                f"employee.{event.kind}",
                "employee",
                employee_id,
                effective_date=event.effective_date,
                position_id=event.position_id,
                salary_amount=event.salary_amount,
                salary_currency=event.salary_currency,
            )
        for period in period_values(employee_id, replay(events, facts)):
            rows.add(EmployeePeriod, **period)

    for review in plan.reviews:
        rows.add(
            PerformanceReview,
            id=stable_id("review", f"{review.person}/{review.period}"),
            employee_id=employee_ids[review.person],
            period=review.period,
            rating=review.rating,
            reviewer_id=employee_ids[review.reviewer] if review.reviewer else None,
            comment=review.comment,
            reviewed_on=review.reviewed_on,
        )
        rows.audit(
            "employee.review",
            "employee",
            employee_ids[review.person],
            period=review.period,
            rating=review.rating,
        )
    for index, award in enumerate(plan.awards):
        rows.add(
            RewardOrPenalty,
            id=stable_id("award", f"{award.person}/{index}"),
            employee_id=employee_ids[award.person],
            occurred_on=award.occurred_on,
            kind=award.kind,
            category=award.category,
            amount=award.amount,
            currency=award.currency,
            note=award.note,
        )
        rows.audit(
            f"employee.{award.kind}",
            "employee",
            employee_ids[award.person],
            category=award.category,
            occurred_on=award.occurred_on,
        )
    for index, assignment in enumerate(plan.assignments):
        rows.add(
            ProjectAssignment,
            id=stable_id("assignment", f"{assignment.person}/{index}"),
            employee_id=employee_ids[assignment.person],
            project_code=assignment.project,
            role=assignment.role,
            start_date=assignment.start,
            end_date=assignment.end,
        )
        rows.audit(
            "employee.assign_project",
            "employee",
            employee_ids[assignment.person],
            project_code=assignment.project,
            role=assignment.role,
        )

    async with tenant_session(tenant) as session:
        # Tables in the order of their foreign keys; `add` kept each table's rows in order.
        for model in (
            Branch,
            JobLevel,
            OrgUnit,
            Position,
            OrgUnitVersion,
            Employee,
            EmploymentEvent,
            EmployeePeriod,
            PerformanceReview,
            RewardOrPenalty,
            ProjectAssignment,
            audit.AuditEntry,
        ):
            await session.execute(insert(model), rows.tables[model])
    return employee_ids


__all__ = ["DEMO_USERS", "Plan", "build_plan", "write_plan"]
