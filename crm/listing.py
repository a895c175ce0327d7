"""Contact and company lists: search, filters, sorting and pages, computed in SQL and limited to what the actor may read."""
from datetime import date, datetime
from typing import Any, Generic, Literal, TypeVar

import pandas as pd
from pydantic import BaseModel, ConfigDict
from sqlalchemy import ColumnElement, and_, false, func, or_
from sqlmodel import Session, select

from crm.customfields import list_field_defs
from crm.errors import ValidationFailed
from crm.models import (
    Company, CompanyTag, Contact, ContactTag, CustomFieldValue, Entity, FieldType, Lifecycle, Tag, User,
)
from crm.permissions import Actor, readable_owner_ids, require
from crm.search import Query, matching_contact_ids, matching_ids, parse_query

RowT = TypeVar("RowT")
COUNT_CAP = 10_000  # beyond this a list says "10,000+" rather than count every row
EXPORT_LIMIT = 200_000
_VALUE_COLUMN = {FieldType.TEXT: "value_text", FieldType.DROPDOWN: "value_text", FieldType.NUMBER: "value_number",
                 FieldType.CHECKBOX: "value_bool", FieldType.DATE: "value_date"}


class CustomCondition(BaseModel):
    """A filter on one custom field: equals / contains (text), between (number, date), is (checkbox), empty."""
    model_config = ConfigDict(frozen=True)
    key: str
    op: Literal["equals", "contains", "between", "is", "empty"]
    value: Any = None
    upper: Any = None


class ContactFilter(BaseModel):
    """Everything a contacts list can be narrowed by. Frozen and hashable, so pages can cache on it."""
    model_config = ConfigDict(frozen=True)
    query: str = ""
    owner_ids: tuple[int, ...] = ()
    lifecycle: tuple[Lifecycle, ...] = ()
    tag_ids: tuple[int, ...] = ()
    countries: tuple[str, ...] = ()
    score_min: float | None = None
    score_max: float | None = None
    company_id: int | None = None
    custom: tuple[CustomCondition, ...] = ()
    deleted: bool = False  # True lists the deleted ones, for restore


class CompanyFilter(BaseModel):
    model_config = ConfigDict(frozen=True)
    query: str = ""
    owner_ids: tuple[int, ...] = ()
    tag_ids: tuple[int, ...] = ()
    countries: tuple[str, ...] = ()
    industries: tuple[str, ...] = ()
    custom: tuple[CustomCondition, ...] = ()
    deleted: bool = False


ContactSort = Literal["name", "-updated", "-created", "-lead_score", "-last_engaged"]
CompanySort = Literal["name", "-updated", "-created", "-employees"]


class ContactRow(BaseModel):
    id: int
    name: str
    email: str | None
    phone: str | None
    company: str | None
    company_id: int | None
    owner: str | None
    lifecycle_stage: str
    country: str | None
    lead_score: float | None
    tags: list[str]
    updated_at: datetime
    version: int


class CompanyRow(BaseModel):
    id: int
    name: str
    domain: str | None
    industry: str | None
    country: str | None
    city: str | None
    employees: int | None
    owner: str | None
    contacts: int
    tags: list[str]
    updated_at: datetime
    version: int


class Page(BaseModel, Generic[RowT]):
    rows: list[RowT]
    total: int
    capped: bool  # total is a lower bound: more than COUNT_CAP rows match
    page: int
    page_size: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.page_size))


def _custom_conditions(session: Session, actor: Actor, entity: Entity, model, conditions) -> list[ColumnElement]:
    """Custom-field filters, limited to the fields the actor's role may see (filtering on a hidden field would leak it)."""
    if not conditions:
        return []
    fields = {f.key: f for f in list_field_defs(session=session, actor=actor, entity=entity)}
    out = []
    for cond in conditions:
        field = fields.get(cond.key)
        if field is None:
            raise ValidationFailed(cond.key, f"no custom field {cond.key!r} that your role may see")
        column = getattr(CustomFieldValue, _VALUE_COLUMN[FieldType(field.field_type)])
        values = select(CustomFieldValue.record_id).where(CustomFieldValue.field_id == field.id)
        if cond.op == "empty":
            out.append(model.id.not_in(values))
            continue
        if cond.op == "equals":
            values = values.where(column == cond.value)
        elif cond.op == "contains":
            values = values.where(func.lower(column).contains(str(cond.value).lower(), autoescape=True))
        elif cond.op == "is":
            values = values.where(column.is_(bool(cond.value)))
        elif cond.op == "between":
            if cond.value is not None:
                values = values.where(column >= cond.value)
            if cond.upper is not None:
                values = values.where(column <= cond.upper)
        out.append(model.id.in_(values))
    return out


def _contact_filters(session: Session, actor: Actor, f: ContactFilter) -> tuple[list[ColumnElement], bool]:
    """The conditions of everything but the search, and whether the actor reads only some owners' contacts."""
    conds: list[ColumnElement] = [Contact.deleted_at.is_not(None) if f.deleted else Contact.deleted_at.is_(None)]
    readable = readable_owner_ids(session, actor, "contacts")
    if readable is not None:
        conds.append(Contact.owner_id.in_(readable))
    if f.owner_ids:
        conds.append(Contact.owner_id.in_(f.owner_ids))
    if f.lifecycle:
        conds.append(Contact.lifecycle_stage.in_([str(s) for s in f.lifecycle]))
    if f.countries:
        conds.append(Contact.country.in_(f.countries))
    if f.score_min is not None:
        conds.append(Contact.lead_score >= f.score_min)
    if f.score_max is not None:
        conds.append(Contact.lead_score <= f.score_max)
    if f.company_id is not None:
        conds.append(Contact.company_id == f.company_id)
    if f.tag_ids:
        conds.append(Contact.id.in_(select(ContactTag.contact_id).where(ContactTag.tag_id.in_(f.tag_ids))))
    conds += _custom_conditions(session, actor, Entity.CONTACT, Contact, f.custom)
    return conds, readable is not None


def _contact_search(query: Query, *, scoped: bool) -> ColumnElement:
    """The search as a condition, shaped for the plan SQLite should pick (it has no statistics to choose by):
    - everyone's contacts: own tokens or the company's, two IN-sets that SQLite reads as a MULTI-INDEX OR,
      starting from the matches;
    - some owners' contacts: start from those owners' index entries and probe one set of matching ids (`id + 0`
      hides the id from the planner; harmless on PostgreSQL), so that only matching rows are read, not every
      match's row to check its owner.
    """
    if scoped:
        return (Contact.id + 0).in_(matching_contact_ids(query))
    match = Contact.id.in_(matching_ids("contact", query))
    return match if query.phone else or_(match, Contact.company_id.in_(matching_ids("company", query)))


def _contact_conditions(session: Session, actor: Actor, f: ContactFilter) -> list[ColumnElement]:
    conds, scoped = _contact_filters(session, actor, f)
    query = parse_query(f.query)
    return conds + [_contact_search(query, scoped=scoped)] if query else conds


def _opaque(conds: list[ColumnElement]) -> ColumnElement:
    """All conditions as one expression that no index can serve, so that the planner walks the index of the
    ORDER BY, tests each row and stops when the page is full. Used when more than COUNT_CAP rows match: one in
    every (table size / COUNT_CAP) rows or fewer is read, where starting from a filter could sort most of the table."""
    return func.coalesce(and_(*conds), false())


def _company_conditions(session: Session, actor: Actor, f: CompanyFilter) -> list[ColumnElement]:
    conds: list[ColumnElement] = [Company.deleted_at.is_not(None) if f.deleted else Company.deleted_at.is_(None)]
    if f.owner_ids:
        conds.append(Company.owner_id.in_(f.owner_ids))
    if f.countries:
        conds.append(Company.country.in_(f.countries))
    if f.industries:
        conds.append(Company.industry.in_(f.industries))
    if f.tag_ids:
        conds.append(Company.id.in_(select(CompanyTag.company_id).where(CompanyTag.tag_id.in_(f.tag_ids))))
    conds += _custom_conditions(session, actor, Entity.COMPANY, Company, f.custom)
    query = parse_query(f.query)
    if query:
        conds.append(Company.id.in_(matching_ids("company", query)))
    return conds


_CONTACT_ORDER = {"name": (Contact.name_key, Contact.id), "-updated": (Contact.updated_at.desc(), Contact.id.desc()),
                  "-created": (Contact.id.desc(),), "-lead_score": (Contact.lead_score.desc(), Contact.id),
                  "-last_engaged": (Contact.last_engaged_at.desc(), Contact.id)}
_COMPANY_ORDER = {"name": (Company.name_key, Company.id), "-updated": (Company.updated_at.desc(), Company.id.desc()),
                  "-created": (Company.id.desc(),), "-employees": (Company.employees.desc(), Company.id)}


def _count(session: Session, model, conds: list[ColumnElement]) -> tuple[int, bool]:
    ids = select(model.id).where(*conds).limit(COUNT_CAP + 1).subquery()
    total = session.exec(select(func.count()).select_from(ids)).one()
    return min(total, COUNT_CAP), total > COUNT_CAP


def _tags_of(session: Session, link, key, ids: list[int]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {i: [] for i in ids}
    for lo in range(0, len(ids), 5000):
        rows = session.exec(select(key, Tag.name).join(Tag, Tag.id == link.tag_id)
                            .where(key.in_(ids[lo:lo + 5000]), Tag.deleted_at.is_(None)).order_by(Tag.name)).all()
        for record_id, name in rows:
            out[record_id].append(name)
    return out


def _contact_select():
    return (select(Contact.id, Contact.first_name, Contact.last_name, Contact.email, Contact.phone, Company.name,
                   Contact.company_id, User.full_name, Contact.lifecycle_stage, Contact.country, Contact.lead_score,
                   Contact.updated_at, Contact.version)
            .join(Company, Company.id == Contact.company_id, isouter=True)
            .join(User, User.id == Contact.owner_id, isouter=True))


def _contact_rows(session: Session, stmt) -> list[ContactRow]:
    rows = session.exec(stmt).all()
    tags = _tags_of(session, ContactTag, ContactTag.contact_id, [r[0] for r in rows])
    return [ContactRow(id=r[0], name=f"{r[1]} {r[2]}".strip(), email=r[3], phone=r[4], company=r[5], company_id=r[6],
                       owner=r[7], lifecycle_stage=r[8], country=r[9], lead_score=r[10], tags=tags[r[0]],
                       updated_at=r[11], version=r[12]) for r in rows]


def list_contacts(*, session: Session, actor: Actor, filters: ContactFilter = ContactFilter(),
                  sort: ContactSort = "name", page: int = 1, page_size: int = 50) -> Page[ContactRow]:
    """One page of the contacts the actor may read that match the filters, and how many match in all."""
    page, page_size = max(1, page), min(max(1, page_size), 500)
    conds, scoped = _contact_filters(session, actor, filters)
    query = parse_query(filters.query)
    search = [_contact_search(query, scoped=scoped)] if query else []
    if search and scoped:
        # Building the set of matching ids costs most here, so it is done once: the ids of up to COUNT_CAP + 1
        # matches give the count and, unless capped, the page is sorted from them. (Core, not session.exec:
        # 10,000 ids load in half the time.) Otherwise a count and a page cost less than loading the ids.
        found = select(Contact.id).where(*conds, *search).limit(COUNT_CAP + 1)
        ids = session.connection().execute(found).scalars().all()
        total, capped, where = min(len(ids), COUNT_CAP), len(ids) > COUNT_CAP, Contact.id.in_(ids)
    else:
        total, capped = _count(session, Contact, conds + search)
        where = and_(*conds, *search)
    if capped:
        where = _opaque(conds + ([_contact_search(query, scoped=False)] if query else []))
    order = _CONTACT_ORDER[sort]
    # The page's ids first, then its rows and names: joining before the sort would join every match.
    page_ids = select(Contact.id).where(where).order_by(*order).offset((page - 1) * page_size).limit(page_size)
    rows = _contact_rows(session, _contact_select().where(Contact.id.in_(page_ids)).order_by(*order)) if total else []
    return Page[ContactRow](rows=rows, total=total, capped=capped, page=page, page_size=page_size)


def list_companies(*, session: Session, actor: Actor, filters: CompanyFilter = CompanyFilter(),
                   sort: CompanySort = "name", page: int = 1, page_size: int = 50) -> Page[CompanyRow]:
    """Companies are visible to everyone who may read contacts; their contact counts respect the reader's scope."""
    page, page_size = max(1, page), min(max(1, page_size), 500)
    conds = _company_conditions(session, actor, filters)
    total, capped = _count(session, Company, conds)
    stmt = (select(Company, User.full_name).join(User, User.id == Company.owner_id, isouter=True).where(*conds)
            .order_by(*_COMPANY_ORDER[sort]).offset((page - 1) * page_size).limit(page_size))
    rows = session.exec(stmt).all()
    ids = [c.id for c, _ in rows]
    counts = _contact_counts(session, actor, ids)
    tags = _tags_of(session, CompanyTag, CompanyTag.company_id, ids)
    return Page[CompanyRow](rows=[CompanyRow(
        id=c.id, name=c.name, domain=c.domain, industry=c.industry, country=c.country, city=c.city,
        employees=c.employees, owner=owner, contacts=counts.get(c.id, 0), tags=tags[c.id], updated_at=c.updated_at,
        version=c.version) for c, owner in rows], total=total, capped=capped, page=page, page_size=page_size)


def _contact_counts(session: Session, actor: Actor, company_ids: list[int]) -> dict[int, int]:
    if not company_ids:
        return {}
    stmt = select(Contact.company_id, func.count()).where(Contact.company_id.in_(company_ids),
                                                          Contact.deleted_at.is_(None))
    readable = readable_owner_ids(session, actor, "contacts")
    if readable is not None:  # + 0: start from the page's companies, not from every contact of the team
        stmt = stmt.where((Contact.owner_id + 0).in_(readable))
    return dict(session.exec(stmt.group_by(Contact.company_id)).all())


def _cell(value: Any) -> Any:
    return value.isoformat() if isinstance(value, (datetime, date)) else value


def export_contacts(*, session: Session, actor: Actor, filters: ContactFilter = ContactFilter(),
                    ids: list[int] | None = None, sort: ContactSort = "name",
                    where: ColumnElement | None = None) -> pd.DataFrame:
    """The matching contacts (or just `ids`, or those meeting `where` — a segment's members), within what the actor
    may read, as a table for the safe exporter."""
    require(actor, "data.export", "export data")
    conds = _contact_conditions(session, actor, filters)
    if ids is not None:
        conds.append(Contact.id.in_(ids))
    if where is not None:
        conds.append(where)
    stmt = (select(Contact.id, Contact.first_name, Contact.last_name, Contact.email, Contact.phone, Contact.job_title,
                   Company.name.label("company"), Contact.city, Contact.country, Contact.lifecycle_stage,
                   Contact.source, User.email.label("owner_email"), Contact.lead_score, Contact.email_opt_in,
                   Contact.do_not_contact, Contact.external_id, Contact.created_at, Contact.updated_at)
            .join(Company, Company.id == Contact.company_id, isouter=True)
            .join(User, User.id == Contact.owner_id, isouter=True)
            .where(*conds).order_by(*_CONTACT_ORDER[sort]).limit(EXPORT_LIMIT + 1))
    result = session.exec(stmt)
    columns = list(result.keys())
    rows = [[_cell(v) for v in row] for row in result.all()]
    if len(rows) > EXPORT_LIMIT:
        raise ValidationFailed("filters", f"more than {EXPORT_LIMIT:,} contacts match; narrow the filters "
                                          "or export in parts")
    frame = pd.DataFrame(rows, columns=columns)
    tags = _tags_of(session, ContactTag, ContactTag.contact_id, frame["id"].tolist())
    frame["tags"] = [", ".join(tags[i]) for i in frame["id"]]
    return frame


def export_companies(*, session: Session, actor: Actor, filters: CompanyFilter = CompanyFilter(),
                     ids: list[int] | None = None, where: ColumnElement | None = None) -> pd.DataFrame:
    require(actor, "data.export", "export data")
    conds = _company_conditions(session, actor, filters)
    if ids is not None:
        conds.append(Company.id.in_(ids))
    if where is not None:
        conds.append(where)
    stmt = (select(Company.id, Company.name, Company.domain, Company.industry, Company.employees,
                   Company.annual_revenue, Company.city, Company.country, User.email.label("owner_email"),
                   Company.external_id, Company.created_at, Company.updated_at)
            .join(User, User.id == Company.owner_id, isouter=True).where(*conds).order_by(Company.name_key)
            .limit(EXPORT_LIMIT + 1))
    result = session.exec(stmt)
    columns = list(result.keys())
    rows = [[_cell(v) for v in row] for row in result.all()]
    if len(rows) > EXPORT_LIMIT:
        raise ValidationFailed("filters", f"more than {EXPORT_LIMIT:,} companies match; narrow the filters")
    return pd.DataFrame(rows, columns=columns)
