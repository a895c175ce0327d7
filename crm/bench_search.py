"""Contact-list timings for `python -m crm bench`: `list_contacts` end to end, per role, on queries from the data.

The queries are picked from the database itself (a name in each script, an email, a phone, a company), so the
same code measures any size. Three groups are timed separately, because they have different targets:
- **search**: what people type to find someone; issue 3's target is a median ≤ 50 ms;
- **short prefix**: one or two letters, the worst case (most of the table matches); reported, not targeted;
- **browse**: no query, each filter and each sort order, as the contacts page opens.
"""
import statistics
import time
from dataclasses import dataclass

import phonenumbers
from sqlalchemy import Engine, func
from sqlmodel import Session, select

from crm.db import read_scope
from crm.listing import ContactFilter, ContactSort, list_contacts
from crm.models import Company, Contact, Lifecycle, Role, Tag, User
from crm.permissions import Actor, load_actor
from crm.users import first_active_user_of_role

SEARCH_TARGET_MS = 50
ROLES = (Role.ADMIN, Role.MANAGER, Role.REP)


@dataclass(frozen=True)
class Case:
    group: str  # "search", "short prefix" or "browse"
    label: str
    filters: ContactFilter = ContactFilter()
    sort: ContactSort = "name"


def _contact_in(session: Session, country: str, from_id: int):
    """A live contact of this country at or after from_id (or the first one), or None."""
    stmt = select(Contact).where(Contact.country == country, Contact.deleted_at.is_(None)).order_by(Contact.id)
    return session.exec(stmt.where(Contact.id >= from_id).limit(1)).first() or \
        session.exec(stmt.limit(1)).first()


def _common_surname_prefix(session: Session) -> str | None:
    """The first three letters of the commonest Latin surname among the first contacts."""
    names = session.exec(select(Contact.last_name).order_by(Contact.id).limit(5000)).all()
    latin = [n for n in names if len(n) >= 3 and n.isascii() and n.isalpha()]
    return statistics.mode(latin)[:3].lower() if latin else None


def search_cases(session: Session) -> list[Case]:
    """Realistic queries taken from the data, deterministically: the same database gives the same cases."""
    middle = (session.exec(select(func.max(Contact.id))).one() or 0) // 2
    cases: list[Case] = []

    def search(label: str, query: str | None, group: str = "search") -> None:
        if query:
            cases.append(Case(group, f"{label}: {query}", ContactFilter(query=query)))

    search("common surname prefix", _common_surname_prefix(session))
    latin = _contact_in(session, "US", middle) or _contact_in(session, "GB", middle)
    if latin:
        search("full name", f"{latin.first_name} {latin.last_name}")
        search("email prefix", (latin.email or "").split("@")[0][:-2] or None)
        if latin.phone:
            national = str(phonenumbers.parse(latin.phone, None).national_number)
            search("phone, national digits", national)
            search("phone fragment", national[:7])
    company = session.exec(select(Company.name).where(Company.id >= middle // 10, Company.deleted_at.is_(None))
                           .order_by(Company.id).limit(1)).first()
    search("company name", company)
    typed_as = (("Thai name", "TH", "{first} {last}"), ("Persian name", "IR", "{first} {last}"),
                ("Chinese name, unspaced", "CN", "{last}{first}"), ("Japanese surname", "JP", "{last}"))
    for label, country, typed in typed_as:
        person = _contact_in(session, country, middle)
        if person:
            search(label, typed.format(first=person.first_name, last=person.last_name))
    search("one letter", "m", "short prefix")
    search("two letters", "ma", "short prefix")
    return cases + _browse_cases(session)


def _browse_cases(session: Session) -> list[Case]:
    cases = [Case("browse", f"no query, sort {sort}", sort=sort)
             for sort in ("name", "-updated", "-created", "-lead_score", "-last_engaged")]
    owner = session.exec(select(User.id).where(User.role == Role.REP).order_by(User.id).limit(1)).first()
    tag = session.exec(select(Tag.id).where(Tag.deleted_at.is_(None)).order_by(Tag.id).limit(1)).first()
    filters = {"owner": ContactFilter(owner_ids=(owner,) if owner else ()),
               "lifecycle customer": ContactFilter(lifecycle=(Lifecycle.CUSTOMER,)),
               "country DE": ContactFilter(countries=("DE",)),
               "tag": ContactFilter(tag_ids=(tag,) if tag else ()),
               "lead score 80–100": ContactFilter(score_min=80, score_max=100),
               "country DE, lifecycle customer, score ≥ 50": ContactFilter(
                   countries=("DE",), lifecycle=(Lifecycle.CUSTOMER,), score_min=50)}
    cases += [Case("browse", f"filter {label}", f) for label, f in filters.items()]
    return cases


def _time_case(engine: Engine, actor: Actor, case: Case, repeats: int) -> dict:
    """Median of `repeats` warm runs (one unmeasured run first warms SQLite's page cache)."""
    wall, cpu = [], []
    for i in range(repeats + 1):
        with read_scope(engine) as session:
            start, start_cpu = time.perf_counter(), time.process_time()
            page = list_contacts(session=session, actor=actor, filters=case.filters, sort=case.sort)
            elapsed, elapsed_cpu = (time.perf_counter() - start) * 1000, (time.process_time() - start_cpu) * 1000
        if i:
            wall.append(elapsed)
            cpu.append(elapsed_cpu)
    return {"group": case.group, "label": case.label, "ms": round(statistics.median(wall), 1),
            "cpu_ms": round(statistics.median(cpu), 1), "rows": len(page.rows), "total": page.total,
            "capped": page.capped}


def bench_search(engine: Engine, *, repeats: int = 5) -> dict:
    """{"roles": {role: [case timings]}} for the first active admin, manager and rep."""
    with read_scope(engine) as session:
        cases = search_cases(session)
        users = {role: first_active_user_of_role(session=session, role=role) for role in ROLES}
        actors = {role: load_actor(session, user) for role, user in users.items() if user is not None}
    return {"repeats": repeats,
            "roles": {role.value: [_time_case(engine, actor, case, repeats) for case in cases]
                      for role, actor in actors.items()}}


def _p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[-1] if len(values) > 1 else values[0]


GROUPS = {"search": SEARCH_TARGET_MS, "short prefix": None, "browse": None}


def summary_rows(result: dict) -> list[tuple[str, str, str]]:
    """(measure, value, target) rows for the bench table: median and p95 over the cases, per group and role."""
    rows = []
    for group, target in GROUPS.items():
        for role, timings in result["roles"].items():
            ms = [t["ms"] for t in timings if t["group"] == group]
            if not ms:
                continue
            median = statistics.median(ms)
            mark = "—" if target is None else f"median ≤ {target} ms {'✅' if median <= target else '❌ over target'}"
            rows.append((f"contact list, {group} ({len(ms)} queries), {role}",
                         f"median {median:.0f} ms, p95 {_p95(ms):.0f} ms", mark))
    return rows


def case_table(result: dict) -> list[str]:
    """Markdown lines: every case's median per role, with how many contacts matched for that role."""
    roles = list(result["roles"])
    lines = [f"Contact list, `list_contacts` end to end (count, page of 50, tags), warm, median of "
             f"{result.get('repeats', 5)} runs; in brackets the matches the role may see (10,000+ is the cap):", "",
             "| group | case | " + " | ".join(f"{r} (ms)" for r in roles) + " |", "|---|---|" + "---|" * len(roles)]
    for i, case in enumerate(result["roles"][roles[0]]):
        cells = [result["roles"][r][i] for r in roles]
        lines.append(f"| {case['group']} | {case['label']} | " + " | ".join(
            f"{c['ms']:.0f} ({c['total']:,}{'+' if c['capped'] else ''})" for c in cells) + " |")
    return lines
